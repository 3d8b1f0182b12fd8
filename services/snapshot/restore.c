/*
 * xenfs-snapshot restore: write a snapshot (or one subtree of it) into a
 * directory with its modes, owners, times, xattrs, hard links, symlink
 * targets, device nodes and sparse holes; or back into the export itself
 * (--in-place, the caller freezes the guest around it).
 *
 * Order: entries come sorted by path, so a directory precedes what it
 * holds.  Files, links and nodes get their metadata at once; directories
 * get theirs at the end, deepest first, since creating children changes a
 * directory's mtime.  Owners before modes (chown clears set-id bits).
 *
 * In place: objects of the export not in the snapshot are removed; a
 * regular file whose inode and ctime are still those recorded is left
 * alone (it has not changed since); anything else is rewritten under a
 * temporary name and renamed over, so a failure leaves either version.
 *
 * Single-threaded.  Trust: names and targets are guest bytes; every
 * parent is reached with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
 * under the target, so a symlink restored earlier can never redirect a
 * later write outside it.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "log.h"
#include "snap_i.h"

struct rdir {
	char *rel;		/* relative to the target root ("." = root) */
	uint32_t mode, uid, gid;
	int64_t atime_ns, mtime_ns;
	uint8_t *xattrs;
	size_t xlen;
};

struct hlink {
	uint64_t dev, ino;
	char *rel;
};

struct rctx {
	struct snap_repo *repo;
	const struct snap_restore_opts *o;
	int root;
	struct rdir *dv;
	size_t dn, dcap;
	struct hlink *hv;
	size_t hn, hcap;
	int errors;
	uint64_t files, bytes;
};

static struct timespec ns_ts(int64_t ns)
{
	struct timespec t;

	t.tv_sec = ns / 1000000000;
	t.tv_nsec = ns % 1000000000;
	if (t.tv_nsec < 0) {
		t.tv_nsec += 1000000000;
		t.tv_sec--;
	}
	return t;
}

/* Create the missing directories of rel's parent (plain 0755). */
static int parent_fd(struct rctx *c, const char *rel, const char **base)
{
	char buf[PATH_MAX], *s, *p;
	int fd;

	snprintf(buf, sizeof(buf), "%s", rel);
	s = strrchr(buf, '/');
	if (!s) {
		*base = rel;
		return snap_open_beneath(c->root, ".", O_RDONLY | O_DIRECTORY);
	}
	*base = rel + (s - buf) + 1;
	*s = '\0';
	fd = snap_open_beneath(c->root, buf, O_RDONLY | O_DIRECTORY);
	if (fd != -ENOENT)
		return fd;
	for (p = buf; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		if (mkdirat(c->root, buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdirat(c->root, buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return snap_open_beneath(c->root, buf, O_RDONLY | O_DIRECTORY);
}

static int apply_xattrs_at(int dfd, const char *name, const uint8_t *x,
			   size_t xlen)
{
	char p[PATH_MAX];

	if (!xlen)
		return 0;
	snprintf(p, sizeof(p), "/proc/self/fd/%d/%s", dfd, name);
	return snap_xattrs_apply(p, x, xlen);
}

/* Remove whatever is at dfd/name (recursively for directories). */
static int remove_at(int dfd, const char *name)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	int fd;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) < 0 ? -errno : 0;
	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		(void)remove_at(dirfd(d), de->d_name);	/* rmdir reports */
	}
	closedir(d);
	return unlinkat(dfd, name, AT_REMOVEDIR) < 0 ? -errno : 0;
}

static int restore_one(struct rctx *c, sqlite3_stmt *q, const char *rel)
{
	uint32_t type = (uint32_t)sqlite3_column_int64(q, 1);
	uint32_t mode = (uint32_t)sqlite3_column_int64(q, 2);
	uint32_t uid = (uint32_t)sqlite3_column_int64(q, 3);
	uint32_t gid = (uint32_t)sqlite3_column_int64(q, 4);
	int64_t atime = sqlite3_column_int64(q, 6);
	int64_t mtime = sqlite3_column_int64(q, 7);
	int64_t ctime_ns = sqlite3_column_int64(q, 8);
	uint64_t dev = (uint64_t)sqlite3_column_int64(q, 9);
	uint64_t ino = (uint64_t)sqlite3_column_int64(q, 10);
	uint64_t nlink = (uint64_t)sqlite3_column_int64(q, 11);
	uint64_t rdev = (uint64_t)sqlite3_column_int64(q, 12);
	const uint8_t *x = sqlite3_column_blob(q, 14);
	size_t xlen = (size_t)sqlite3_column_bytes(q, 14);
	struct timespec tv[2] = { ns_ts(atime), ns_ts(mtime) };
	const char *base;
	char tmpname[NAME_MAX + 1];
	struct stat st;
	int pfd, fd, rc = 0;
	size_t i;

	c->files++;
	if (!strcmp(rel, ".")) {
		pfd = snap_open_beneath(c->root, ".", O_RDONLY | O_DIRECTORY);
		base = ".";
	} else {
		pfd = parent_fd(c, rel, &base);
	}
	if (pfd < 0) {
		log_warnx("restore %s: parent: %s", rel, strerror(-pfd));
		return pfd;
	}
	if (type == S_IFDIR) {
		struct rdir *d;

		if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    !S_ISDIR(st.st_mode))
			(void)remove_at(pfd, base);
		if (mkdirat(pfd, base, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			goto out;
		}
		if (c->dn == c->dcap) {
			size_t nc = c->dcap ? c->dcap * 2 : 64;
			if ((d = realloc(c->dv, nc * sizeof(*d))) == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			c->dv = d;
			c->dcap = nc;
		}
		d = &c->dv[c->dn];
		memset(d, 0, sizeof(*d));
		if ((d->rel = strdup(rel)) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		d->mode = mode;
		d->uid = uid;
		d->gid = gid;
		d->atime_ns = atime;
		d->mtime_ns = mtime;
		if (xlen) {
			if ((d->xattrs = malloc(xlen)) == NULL) {
				free(d->rel);
				rc = -ENOMEM;
				goto out;
			}
			memcpy(d->xattrs, x, xlen);
			d->xlen = xlen;
		}
		c->dn++;
		goto out;
	}
	/* hard link to a name restored before? */
	if (type == S_IFREG && nlink > 1) {
		for (i = 0; i < c->hn; i++) {
			if (c->hv[i].dev == dev && c->hv[i].ino == ino) {
				(void)remove_at(pfd, base);
				if (linkat(c->root, c->hv[i].rel, pfd, base,
					   0) < 0)
					rc = -errno;
				goto out;
			}
		}
		if (c->hn == c->hcap) {
			size_t nc = c->hcap ? c->hcap * 2 : 64;
			struct hlink *h = realloc(c->hv, nc * sizeof(*h));
			if (!h) {
				rc = -ENOMEM;
				goto out;
			}
			c->hv = h;
			c->hcap = nc;
		}
		c->hv[c->hn].dev = dev;
		c->hv[c->hn].ino = ino;
		if ((c->hv[c->hn].rel = strdup(rel)) == NULL) {
			rc = -ENOMEM;
			goto out;
		}
		c->hn++;
	}
	if (c->o->in_place && type == S_IFREG &&
	    fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && st.st_ino == ino &&
	    (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec ==
	    ctime_ns && (uint64_t)st.st_nlink == nlink)
		goto out;		/* untouched since the snapshot */
	snprintf(tmpname, sizeof(tmpname), ".xenfs-restore.%ld",
		 (long)getpid());
	(void)unlinkat(pfd, tmpname, 0);
	switch (type) {
	case S_IFREG:
		fd = openat(pfd, tmpname, O_WRONLY | O_CREAT | O_EXCL |
			    O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = -errno;
			break;
		}
		rc = snap_content_write(c->repo, sqlite3_column_int64(q, 15),
					fd);
		if (rc == 0 && fchown(fd, uid, gid) < 0)
			rc = -errno;
		if (rc == 0 && fchmod(fd, mode & 07777) < 0)
			rc = -errno;
		c->bytes += (uint64_t)sqlite3_column_int64(q, 5);
		close(fd);
		break;
	case S_IFLNK: {
		char t[PATH_MAX + 1];
		int tl = sqlite3_column_bytes(q, 13);

		if (tl > PATH_MAX)
			tl = PATH_MAX;
		if (tl > 0)
			memcpy(t, sqlite3_column_blob(q, 13), (size_t)tl);
		t[tl] = '\0';
		if (symlinkat(t, pfd, tmpname) < 0)
			rc = -errno;
		else if (fchownat(pfd, tmpname, uid, gid,
				  AT_SYMLINK_NOFOLLOW) < 0)
			rc = -errno;
		break;
	}
	default:
		if (mknodat(pfd, tmpname, type | (mode & 07777),
			    (dev_t)rdev) < 0)
			rc = -errno;
		else if (fchownat(pfd, tmpname, uid, gid,
				  AT_SYMLINK_NOFOLLOW) < 0 ||
			 fchmodat(pfd, tmpname, mode & 07777, 0) < 0)
			rc = -errno;
		break;
	}
	if (rc == 0 && xlen)
		rc = apply_xattrs_at(pfd, tmpname, x, xlen);
	if (rc == 0 && utimensat(pfd, tmpname, tv, AT_SYMLINK_NOFOLLOW) < 0)
		rc = -errno;
	if (rc == 0) {
		if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode))
			(void)remove_at(pfd, base);
		if (renameat(pfd, tmpname, pfd, base) < 0)
			rc = -errno;
	}
	if (rc < 0)
		(void)unlinkat(pfd, tmpname, 0);
out:
	if (rc < 0) {
		log_warnx("restore %s: %s", rel, strerror(-rc));
		c->errors++;
	}
	close(pfd);
	return rc == -ENOMEM ? rc : 0;
}

/* In place: remove what the snapshot does not have under dfd (rel). */
static int prune_extra(struct rctx *c, sqlite3 *db, sqlite3_stmt *has,
		       int dfd, char *rel, size_t rlen)
{
	DIR *d;
	struct dirent *de;
	int fd;

	if ((fd = dup(dfd)) < 0)
		return -errno;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);
		struct stat st;
		int keep = 0;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (rlen + nl + 2 >= PATH_MAX)
			continue;
		rel[rlen] = '/';
		memcpy(rel + rlen + 1, de->d_name, nl + 1);
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			goto next;
		sqlite3_bind_text(has, 4, rel, -1, SQLITE_STATIC);
		if (sqlite3_step(has) == SQLITE_ROW)
			keep = (uint32_t)sqlite3_column_int64(has, 0) ==
			       (st.st_mode & S_IFMT);
		sqlite3_reset(has);
		if (!keep) {
			(void)remove_at(dfd, de->d_name);
		} else if (S_ISDIR(st.st_mode)) {
			int cfd = openat(dfd, de->d_name, O_RDONLY |
					 O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd >= 0) {
				(void)prune_extra(c, db, has, cfd, rel,
						  rlen + 1 + nl);
				close(cfd);
			}
		}
next:
		rel[rlen] = '\0';
	}
	closedir(d);
	return 0;
}

static int restore_export(struct rctx *c, const char *tag, const char *dir)
{
	sqlite3_stmt *q = NULL;
	char lo[PATH_MAX + 2], hi[PATH_MAX + 2];
	const char *sub = c->o->path && strcmp(c->o->path, "/") ?
		c->o->path : NULL;
	size_t i;
	int rc = 0;

	c->root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->root < 0 && errno == ENOENT && mkdir(dir, 0700) == 0)
		c->root = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->root < 0) {
		log_warn("restore target %s", dir);
		return -errno;
	}
	if (sqlite3_prepare_v2(c->repo->db, "SELECT path, type, mode, uid, "
			       "gid, size, atime_ns, mtime_ns, ctime_ns, dev, "
			       "ino, nlink, rdev, target, xattrs, content "
			       "FROM entries WHERE vm = ?1 AND export = ?2 AND "
			       "from_snap <= ?3 AND (to_snap IS NULL OR "
			       "to_snap > ?3) AND (?4 IS NULL OR path = ?4 OR "
			       "(path > ?5 AND path < ?6)) ORDER BY path", -1,
			       &q, NULL) != SQLITE_OK) {
		rc = -EIO;
		goto out;
	}
	sqlite3_bind_text(q, 1, c->o->vm, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, tag, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, c->o->snap);
	if (sub) {
		snprintf(lo, sizeof(lo), "%s/", sub);
		snprintf(hi, sizeof(hi), "%s0", sub);
		sqlite3_bind_text(q, 4, sub, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 5, lo, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 6, hi, -1, SQLITE_STATIC);
	}
	if (c->o->in_place && !sub) {
		sqlite3_stmt *has = NULL;
		char rel[PATH_MAX];

		if (sqlite3_prepare_v2(c->repo->db, "SELECT type FROM entries "
				       "WHERE vm = ?1 AND export = ?2 AND "
				       "from_snap <= ?3 AND (to_snap IS NULL "
				       "OR to_snap > ?3) AND path = ?4", -1,
				       &has, NULL) == SQLITE_OK) {
			sqlite3_bind_text(has, 1, c->o->vm, -1,
					  SQLITE_STATIC);
			sqlite3_bind_text(has, 2, tag, -1, SQLITE_STATIC);
			sqlite3_bind_int64(has, 3, c->o->snap);
			rel[0] = '\0';
			(void)prune_extra(c, c->repo->db, has, c->root, rel,
					  0);
		}
		sqlite3_finalize(has);
	}
	while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(q, 0);

		if (!p || p[0] != '/')
			continue;
		rc = restore_one(c, q, p[1] ? p + 1 : ".");
		snap_progress(c->files, 0, c->bytes, "restoring");
	}
	snap_progress_end();
	/* directories last, deepest first */
	for (i = c->dn; i-- > 0;) {
		struct rdir *d = &c->dv[i];
		struct timespec tv[2] = { ns_ts(d->atime_ns),
					  ns_ts(d->mtime_ns) };

		if (fchownat(c->root, d->rel, d->uid, d->gid,
			     AT_SYMLINK_NOFOLLOW) < 0 ||
		    fchmodat(c->root, d->rel, d->mode & 07777, 0) < 0) {
			log_warn("restore %s", d->rel);
			c->errors++;
		}
		if (d->xlen) {
			char pp[PATH_MAX];
			int dfd = snap_open_beneath(c->root, d->rel,
						    O_RDONLY | O_DIRECTORY);
			if (dfd >= 0) {
				snprintf(pp, sizeof(pp), "/proc/self/fd/%d/.",
					 dfd);
				if (snap_xattrs_apply(pp, d->xattrs,
						      d->xlen) < 0)
					c->errors++;
				close(dfd);
			}
		}
		if (utimensat(c->root, d->rel, tv, AT_SYMLINK_NOFOLLOW) < 0) {
			log_warn("restore times of %s", d->rel);
			c->errors++;
		}
		free(d->rel);
		free(d->xattrs);
	}
	c->dn = 0;
out:
	for (i = 0; i < c->hn; i++)
		free(c->hv[i].rel);
	c->hn = 0;
	sqlite3_finalize(q);
	close(c->root);
	return rc;
}

int snap_restore(struct snap_repo *repo, const struct snap_restore_opts *o)
{
	struct rctx c;
	sqlite3_stmt *q = NULL;
	char dir[PATH_MAX];
	int rc = 0, n = 0;

	memset(&c, 0, sizeof(c));
	c.repo = repo;
	c.o = o;
	if (sqlite3_prepare_v2(repo->db, "SELECT export FROM snap_exports x "
			       "JOIN snapshots s ON s.id = x.snap WHERE "
			       "x.snap = ?1 AND s.vm = ?2 AND (?3 IS NULL OR "
			       "x.export = ?3) ORDER BY export", -1, &q,
			       NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_int64(q, 1, o->snap);
	sqlite3_bind_text(q, 2, o->vm, -1, SQLITE_STATIC);
	if (o->export_tag)
		sqlite3_bind_text(q, 3, o->export_tag, -1, SQLITE_STATIC);
	while (rc == 0 && sqlite3_step(q) == SQLITE_ROW) {
		const char *tag = (const char *)sqlite3_column_text(q, 0);

		if (o->multi)
			snprintf(dir, sizeof(dir), "%s/%s", o->to, tag);
		else
			snprintf(dir, sizeof(dir), "%s", o->to);
		if (o->multi && mkdir(o->to, 0700) < 0 && errno != EEXIST) {
			rc = -errno;
			break;
		}
		rc = restore_export(&c, tag, dir);
		n++;
	}
	sqlite3_finalize(q);
	free(c.dv);
	free(c.hv);
	if (rc == 0 && n > 0 && c.files == 0 && o->path) {
		log_warnx("%s is not in snapshot %lld", o->path,
			  (long long)o->snap);
		return -ENOENT;
	}
	if (rc == 0 && n == 0) {
		log_warnx("snapshot %lld of %s%s%s not found",
			  (long long)o->snap, o->vm,
			  o->export_tag ? " export " : "",
			  o->export_tag ? o->export_tag : "");
		return -ENOENT;
	}
	if (rc == 0 && c.errors)
		rc = -EIO;
	return rc;
}
