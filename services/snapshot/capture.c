/*
 * xenfs-snapshot: taking a snapshot of a domain's exports.
 *
 * Algorithm (docs/snapshot.md has the guarantees):
 *
 *  round 0   pre-hook; freeze DOMAIN through xenfsd's control socket
 *            (the guest's dirty pages are flushed, changes stop, in-flight
 *            ones drain; the reply carries the seq F0 of the freeze
 *            record).  Read the operation journal from the previous
 *            snapshot's base seq up to its end: the changed paths.  For
 *            each: lstat and compare with the catalog's current entry
 *            (ino, ctime, mtime, size, mode, owner, nlink); changed ones
 *            get a new entry (metadata, xattrs, symlink target).  Content
 *            of changed regular files: reflinked (FICLONE) into
 *            REPO/staging if the filesystems allow, else stored right away
 *            while the bytes copied under freeze stay below
 *            freeze-copy-max, else left "pending" with its identity
 *            (ino, size, mtime, ctime).  Thaw.
 *  store     pending files are read with the guest running; a file whose
 *            identity changed before or while it was read is "raced".
 *  round 1   only if something raced: freeze again (seq F1), read the
 *            journal since round 0 and refresh every changed path (the
 *            raced ones included), this time copying content under the
 *            freeze whatever its size.  The snapshot's point in time is
 *            then F1: what round 0 captured and nobody touched since is
 *            still that state at F1.
 *
 * A journal gap (trimmed before we read it, a resync record) or no
 * previous snapshot means a full walk of the export, which compares every
 * object with the catalog the same way (only changed files are read), as
 * --verify-walk does on demand.
 *
 * The catalog keeps one row per (vm, export, path, version) valid over a
 * range of snapshots [from_snap, to_snap): an incremental snapshot touches
 * only the rows of what changed.
 *
 * Single-threaded.  Trust: export contents are guest data; objects are
 * reached with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) and
 * O_NOFOLLOW, never following a guest's symlink.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xenfs/event.h>

#include "log.h"
#include "snap_i.h"
#include "stream.h"

/* ---- control socket ---- */

/* One request; the answer's body (or the ERR message) goes to out. */
int snap_ctl(const char *sock, const char *req, char *out, size_t outlen)
{
	struct sockaddr_un sun;
	char line[1100], c;
	size_t n = 0, len, got = 0;
	int fd, rc = -EIO;

	out[0] = '\0';
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, sock, strlen(sock));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		rc = -errno;
		snprintf(out, outlen, "cannot connect to %s: %s", sock,
			 strerror(errno));
		goto out;
	}
	n = (size_t)snprintf(line, sizeof(line), "%s\n", req);
	if (n >= sizeof(line) || write(fd, line, n) != (ssize_t)n)
		goto out;
	n = 0;
	for (;;) {
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || n + 1 >= sizeof(line))
			goto out;
		if (c == '\n')
			break;
		line[n++] = c;
	}
	line[n] = '\0';
	if (!strncmp(line, "ERR ", 4)) {
		snprintf(out, outlen, "%s", line + 4);
		rc = -EPERM;
		goto out;
	}
	if (sscanf(line, "OK %zu", &len) != 1)
		goto out;
	while (got < len) {
		ssize_t r = read(fd, line, len - got < sizeof(line) ?
				 len - got : sizeof(line));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto out;
		if (got < outlen - 1) {
			size_t k = (size_t)r;
			if (got + k > outlen - 1)
				k = outlen - 1 - got;
			memcpy(out + got, line, k);
			out[got + k] = '\0';
		}
		got += (size_t)r;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

/* ---- state of one take ---- */

struct dirty {
	int exp;
	int recursive;
	char *path;
};

struct pending {
	int64_t entry;
	int exp;
	char *path;
	char *staged;		/* reflink clone in REPO/staging, or NULL */
	uint64_t ino, size;
	int64_t mtime_ns, ctime_ns;
};

struct take {
	struct snap_repo *repo;
	const struct snap_take_opts *o;
	int64_t snap;
	int round;
	int frozen;
	int reflink_ok;		/* -1 unknown, 0 no, 1 yes */
	uint64_t copy_budget;	/* bytes still allowed under freeze */
	struct dirty *dv;
	size_t dn, dcap;
	struct pending *pv;
	size_t pn, pcap;
	uint64_t files, bytes, changed, read_bytes, reflinked;
	int64_t *dfiles, *dbytes;	/* per export: change of the totals */
	int64_t freeze_ns;
	sqlite3_stmt *q_open, *q_close, *q_del, *q_ins, *q_reuse, *q_setc,
		     *q_under, *q_ino;
};

static int64_t now_ns(int clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

static int prep(struct take *t, sqlite3_stmt **st, const char *sql)
{
	if (sqlite3_prepare_v2(t->repo->db, sql, -1, st, NULL) != SQLITE_OK) {
		log_warnx("catalog: %s", sqlite3_errmsg(t->repo->db));
		return -EIO;
	}
	return 0;
}

static int take_prepare(struct take *t)
{
	int rc = 0;

	rc |= prep(t, &t->q_open, "SELECT id, from_snap, ino, ctime_ns, "
		   "mtime_ns, size, mode, uid, gid, nlink, content, type "
		   "FROM entries WHERE vm = ?1 AND export = ?2 AND path = ?3 "
		   "AND to_snap IS NULL");
	rc |= prep(t, &t->q_close, "UPDATE entries SET to_snap = ?2 WHERE "
		   "id = ?1");
	rc |= prep(t, &t->q_del, "DELETE FROM entries WHERE id = ?1");
	rc |= prep(t, &t->q_ins, "INSERT INTO entries(vm, export, path, "
		   "from_snap, type, mode, uid, gid, size, atime_ns, "
		   "mtime_ns, ctime_ns, dev, ino, nlink, rdev, target, xattrs, "
		   "content) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
		   "?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)");
	rc |= prep(t, &t->q_reuse, "SELECT content FROM entries WHERE "
		   "vm = ?1 AND export = ?2 AND ino = ?3 AND size = ?4 AND "
		   "mtime_ns = ?5 AND ctime_ns = ?6 AND content IS NOT NULL "
		   "LIMIT 1");
	rc |= prep(t, &t->q_setc, "UPDATE entries SET content = ?2 WHERE "
		   "id = ?1");
	rc |= prep(t, &t->q_under, "SELECT path FROM entries WHERE vm = ?1 "
		   "AND export = ?2 AND to_snap IS NULL AND (path = ?3 OR "
		   "(path > ?4 AND path < ?5))");
	rc |= prep(t, &t->q_ino, "SELECT path FROM entries WHERE vm = ?1 "
		   "AND export = ?2 AND ino = ?3 AND to_snap IS NULL");
	return rc ? -EIO : 0;
}

static void take_finalize(struct take *t)
{
	sqlite3_finalize(t->q_open);
	sqlite3_finalize(t->q_close);
	sqlite3_finalize(t->q_del);
	sqlite3_finalize(t->q_ins);
	sqlite3_finalize(t->q_reuse);
	sqlite3_finalize(t->q_setc);
	sqlite3_finalize(t->q_under);
	sqlite3_finalize(t->q_ino);
}

static int dirty_add(struct take *t, int exp, const char *path, int rec)
{
	struct dirty *d;

	if (!path[0] || path[0] != '/')
		return 0;
	if (t->dn == t->dcap) {
		size_t nc = t->dcap ? t->dcap * 2 : 256;
		if ((d = realloc(t->dv, nc * sizeof(*d))) == NULL)
			return -ENOMEM;
		t->dv = d;
		t->dcap = nc;
	}
	d = &t->dv[t->dn];
	if ((d->path = strdup(path)) == NULL)
		return -ENOMEM;
	d->exp = exp;
	d->recursive = rec;
	t->dn++;
	return 0;
}

/* Parent directory of path ("/a/b" -> "/a", "/a" -> "/"). */
static int dirty_add_parent(struct take *t, int exp, const char *path)
{
	char buf[XENFS_EV_PATH_MAX + 1];
	char *s;

	snprintf(buf, sizeof(buf), "%s", path);
	s = strrchr(buf, '/');
	if (!s)
		return 0;
	if (s == buf)
		s[1] = '\0';
	else
		*s = '\0';
	return dirty_add(t, exp, buf, 0);
}

static void dirty_clear(struct take *t)
{
	size_t i;

	for (i = 0; i < t->dn; i++)
		free(t->dv[i].path);
	t->dn = 0;
}

static int dirty_cmp(const void *a, const void *b)
{
	const struct dirty *x = a, *y = b;
	int c;

	if (x->exp != y->exp)
		return x->exp - y->exp;
	c = strcmp(x->path, y->path);
	if (c)
		return c;
	return y->recursive - x->recursive;	/* recursive first */
}

/* ---- objects ---- */

int snap_open_beneath(int root, const char *rel, int flags)
{
	struct open_how how;
	long fd;

	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)flags | O_CLOEXEC | O_NOFOLLOW;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
		      RESOLVE_NO_MAGICLINKS;
	fd = syscall(SYS_openat2, root, rel, &how, sizeof(how));
	return fd < 0 ? -errno : (int)fd;
}

static int same_identity(sqlite3_stmt *q, const struct stat *st)
{
	return (uint64_t)sqlite3_column_int64(q, 2) == st->st_ino &&
	       sqlite3_column_int64(q, 3) == ts_ns(&st->st_ctim) &&
	       sqlite3_column_int64(q, 4) == ts_ns(&st->st_mtim) &&
	       sqlite3_column_int64(q, 5) == st->st_size &&
	       (uint32_t)sqlite3_column_int64(q, 6) == st->st_mode &&
	       (uint32_t)sqlite3_column_int64(q, 7) == st->st_uid &&
	       (uint32_t)sqlite3_column_int64(q, 8) == st->st_gid &&
	       (uint64_t)sqlite3_column_int64(q, 9) == st->st_nlink &&
	       (!S_ISREG(st->st_mode) || sqlite3_column_type(q, 10) !=
		SQLITE_NULL);
}

static void bind_ve(struct take *t, sqlite3_stmt *q, int exp)
{
	sqlite3_bind_text(q, 1, t->o->vm, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, t->o->exports[exp].tag, -1, SQLITE_STATIC);
}

/*
 * Close the current entry of path (if any).  Returns whether it was a
 * regular file with other names; those are queued for a refresh (their
 * link count and ctime changed with it).
 */
static int entry_close_row(struct take *t, int exp, const char *path)
{
	int64_t id, from, ino = 0;
	int multi = 0;

	/* q_open stands on the current entry's row */
	{
		id = sqlite3_column_int64(t->q_open, 0);
		from = sqlite3_column_int64(t->q_open, 1);
		multi = sqlite3_column_int64(t->q_open, 9) > 1 &&
			sqlite3_column_int64(t->q_open, 11) == S_IFREG;
		ino = sqlite3_column_int64(t->q_open, 2);
		t->dfiles[exp]--;
		if (sqlite3_column_int64(t->q_open, 11) == S_IFREG)
			t->dbytes[exp] -= sqlite3_column_int64(t->q_open, 5);
		sqlite3_reset(t->q_open);
		if (from == t->snap) {
			sqlite3_bind_int64(t->q_del, 1, id);
			sqlite3_step(t->q_del);
			sqlite3_reset(t->q_del);
		} else {
			sqlite3_bind_int64(t->q_close, 1, id);
			sqlite3_bind_int64(t->q_close, 2, t->snap);
			sqlite3_step(t->q_close);
			sqlite3_reset(t->q_close);
		}
		if (multi) {
			bind_ve(t, t->q_ino, exp);
			sqlite3_bind_int64(t->q_ino, 3, ino);
			while (sqlite3_step(t->q_ino) == SQLITE_ROW) {
				const char *p = (const char *)
					sqlite3_column_text(t->q_ino, 0);
				if (p && strcmp(p, path) &&
				    dirty_add(t, exp, p, 0) < 0)
					break;	/* ENOMEM: the walk finds it */
			}
			sqlite3_reset(t->q_ino);
		}
	}
	return multi;
}

static int entry_close(struct take *t, int exp, const char *path)
{
	bind_ve(t, t->q_open, exp);
	sqlite3_bind_text(t->q_open, 3, path, -1, SQLITE_STATIC);
	if (sqlite3_step(t->q_open) == SQLITE_ROW)
		return entry_close_row(t, exp, path);
	sqlite3_reset(t->q_open);
	return 0;
}

static int pending_add(struct take *t, int64_t entry, int exp,
		       const char *path, const struct stat *st, char *staged)
{
	struct pending *p;

	if (t->pn == t->pcap) {
		size_t nc = t->pcap ? t->pcap * 2 : 64;
		if ((p = realloc(t->pv, nc * sizeof(*p))) == NULL)
			return -ENOMEM;
		t->pv = p;
		t->pcap = nc;
	}
	p = &t->pv[t->pn];
	if ((p->path = strdup(path)) == NULL)
		return -ENOMEM;
	p->entry = entry;
	p->exp = exp;
	p->staged = staged;
	p->ino = st->st_ino;
	p->size = (uint64_t)st->st_size;
	p->mtime_ns = ts_ns(&st->st_mtim);
	p->ctime_ns = ts_ns(&st->st_ctim);
	t->pn++;
	return 0;
}

static int set_content(struct take *t, int64_t entry, int64_t content)
{
	int rc;

	sqlite3_bind_int64(t->q_setc, 1, entry);
	sqlite3_bind_int64(t->q_setc, 2, content);
	rc = sqlite3_step(t->q_setc) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_reset(t->q_setc);
	return rc;
}

/* Try FICLONE of fd into REPO/staging; returns the clone's name or NULL. */
static char *stage_reflink(struct take *t, int fd)
{
	static unsigned long seq;
	char name[64], *s;
	int out;

	if (t->reflink_ok == 0 || t->o->no_reflink)
		return NULL;
	snprintf(name, sizeof(name), "staging/%ld-%lu", (long)getpid(),
		 ++seq);
	out = openat(t->repo->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC |
		     O_CLOEXEC, 0600);
	if (out < 0)
		return NULL;
	if (ioctl(out, FICLONE, fd) < 0) {
		if (t->reflink_ok < 0)
			log_debug("no reflink into the repository (%s): "
				  "copying", strerror(errno));
		t->reflink_ok = 0;
		close(out);
		(void)unlinkat(t->repo->dirfd, name, 0);
		return NULL;
	}
	t->reflink_ok = 1;
	t->reflinked++;
	close(out);
	if ((s = strdup(name)) == NULL)
		(void)unlinkat(t->repo->dirfd, name, 0);
	return s;
}

/*
 * Capture one object: dirfd + name (name "." with dirfd = the export
 * root for "/").  st is its lstat.  Returns 0 or -errno.
 */
static int capture_obj(struct take *t, int exp, int dirfd, const char *name,
		       const char *path, const struct stat *st)
{
	char xp[64], target[PATH_MAX + 1];
	uint8_t *xattrs = NULL;
	size_t xlen = 0;
	int64_t entry, content = -1;
	ssize_t tl = -1;
	int fd = -1, rc = 0, multi;
	char *staged = NULL;

	t->files++;
	if (S_ISREG(st->st_mode))
		t->bytes += (uint64_t)st->st_size;
	snap_progress(t->files, 0, t->read_bytes, t->frozen ? "frozen" :
		      "scanning");
	bind_ve(t, t->q_open, exp);
	sqlite3_bind_text(t->q_open, 3, path, -1, SQLITE_STATIC);
	if (sqlite3_step(t->q_open) == SQLITE_ROW) {
		if (same_identity(t->q_open, st)) {
			sqlite3_reset(t->q_open);
			return 0;		/* unchanged */
		}
		multi = entry_close_row(t, exp, path);
	} else {
		sqlite3_reset(t->q_open);
		multi = 0;
	}
	t->changed++;

	if (S_ISREG(st->st_mode) || S_ISDIR(st->st_mode)) {
		fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NOATIME |
			    O_NONBLOCK | O_CLOEXEC);
		if (fd < 0 && errno == EPERM)
			fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW |
				    O_NONBLOCK | O_CLOEXEC);
		if (fd < 0) {
			rc = -errno;
			log_warn("%s: open %s", t->o->exports[exp].tag, path);
			return rc == -ENOENT ? 0 : rc;
		}
		rc = snap_xattrs_read_fd(fd, &xattrs, &xlen);
	} else {
		snprintf(xp, sizeof(xp), "/proc/self/fd/%d/", dirfd);
		{
			char full[PATH_MAX];
			snprintf(full, sizeof(full), "%s%s", xp, name);
			rc = snap_xattrs_read(full, 0, &xattrs, &xlen);
			if (S_ISLNK(st->st_mode)) {
				tl = readlinkat(dirfd, name, target, PATH_MAX);
				if (tl < 0)
					tl = 0;
				target[tl] = '\0';
			}
		}
	}
	if (rc < 0) {
		log_warnx("%s: xattrs of %s: %s", t->o->exports[exp].tag, path,
			  strerror(-rc));
		rc = 0;
	}
	if (S_ISREG(st->st_mode)) {
		/* same object and version seen before (rename, hard link)? */
		bind_ve(t, t->q_reuse, exp);
		sqlite3_bind_int64(t->q_reuse, 3, (sqlite3_int64)st->st_ino);
		sqlite3_bind_int64(t->q_reuse, 4, st->st_size);
		sqlite3_bind_int64(t->q_reuse, 5, ts_ns(&st->st_mtim));
		sqlite3_bind_int64(t->q_reuse, 6, ts_ns(&st->st_ctim));
		if (sqlite3_step(t->q_reuse) == SQLITE_ROW)
			content = sqlite3_column_int64(t->q_reuse, 0);
		sqlite3_reset(t->q_reuse);
		if (content < 0 && t->frozen &&
		    (uint64_t)st->st_size > 65536)
			staged = stage_reflink(t, fd);
		if (content < 0 && !staged &&
		    (!t->frozen || t->round > 0 ||
		     (uint64_t)st->st_size <= t->copy_budget)) {
			uint64_t got;

			rc = snap_store_fd(t->repo, fd, (uint64_t)st->st_size,
					   &content, &got);
			if (rc < 0) {
				log_warnx("%s: reading %s: %s",
					  t->o->exports[exp].tag, path,
					  strerror(-rc));
				goto out;
			}
			t->read_bytes += got;
			if (t->frozen && t->copy_budget >= got)
				t->copy_budget -= got;
			else if (t->frozen)
				t->copy_budget = 0;
		}
	}
	sqlite3_stmt *q = t->q_ins;
	bind_ve(t, q, exp);
	sqlite3_bind_text(q, 3, path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, t->snap);
	sqlite3_bind_int64(q, 5, st->st_mode & S_IFMT);
	sqlite3_bind_int64(q, 6, st->st_mode);
	sqlite3_bind_int64(q, 7, st->st_uid);
	sqlite3_bind_int64(q, 8, st->st_gid);
	sqlite3_bind_int64(q, 9, st->st_size);
	sqlite3_bind_int64(q, 10, ts_ns(&st->st_atim));
	sqlite3_bind_int64(q, 11, ts_ns(&st->st_mtim));
	sqlite3_bind_int64(q, 12, ts_ns(&st->st_ctim));
	sqlite3_bind_int64(q, 13, (sqlite3_int64)st->st_dev);
	sqlite3_bind_int64(q, 14, (sqlite3_int64)st->st_ino);
	sqlite3_bind_int64(q, 15, (sqlite3_int64)st->st_nlink);
	sqlite3_bind_int64(q, 16, (sqlite3_int64)st->st_rdev);
	if (tl >= 0)
		sqlite3_bind_blob(q, 17, target, (int)tl, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, 17);
	if (xlen)
		sqlite3_bind_blob(q, 18, xattrs, (int)xlen, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, 18);
	if (content >= 0)
		sqlite3_bind_int64(q, 19, content);
	else
		sqlite3_bind_null(q, 19);
	rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_reset(q);
	if (rc < 0)
		goto out;
	entry = sqlite3_last_insert_rowid(t->repo->db);
	t->dfiles[exp]++;
	if (S_ISREG(st->st_mode))
		t->dbytes[exp] += st->st_size;
	if (S_ISREG(st->st_mode) && content < 0) {
		rc = pending_add(t, entry, exp, path, st, staged);
		if (rc < 0)
			goto out;
		staged = NULL;
	}
	/* other names of a hard-linked file changed with it */
	if ((multi || (S_ISREG(st->st_mode) && st->st_nlink > 1))) {
		bind_ve(t, t->q_ino, exp);
		sqlite3_bind_int64(t->q_ino, 3, (sqlite3_int64)st->st_ino);
		while (sqlite3_step(t->q_ino) == SQLITE_ROW) {
			const char *p = (const char *)
				sqlite3_column_text(t->q_ino, 0);
			if (p && strcmp(p, path))
				if ((rc = dirty_add(t, exp, p, 0)) < 0)
					break;
		}
		sqlite3_reset(t->q_ino);
	}
out:
	if (staged) {
		(void)unlinkat(t->repo->dirfd, staged, 0);
		free(staged);
	}
	free(xattrs);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---- walking ---- */

struct seenset {
	char **v;
	uint8_t *seen;
	size_t n, cap;
};

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void seen_mark(struct seenset *s, const char *path)
{
	char **f;

	if (!s->n)
		return;
	f = bsearch(&path, s->v, s->n, sizeof(*s->v), str_cmp);
	if (f)
		s->seen[f - s->v] = 1;
}

static int walk_dir(struct take *t, int exp, int dfd, char *path,
		    size_t plen, struct seenset *ss, int depth)
{
	DIR *d;
	struct dirent *de;
	int rc = 0, fd2;

	if (depth > 4096)
		return -ELOOP;
	if ((fd2 = dup(dfd)) < 0)
		return -errno;
	if ((d = fdopendir(fd2)) == NULL) {
		close(fd2);
		return -errno;
	}
	while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
		struct stat st;
		size_t nl = strlen(de->d_name);

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (plen + 1 + nl >= XENFS_EV_PATH_MAX) {
			log_warnx("%s: path too long under %s: skipped",
				  t->o->exports[exp].tag, path);
			continue;
		}
		if (plen == 1) {
			memcpy(path + 1, de->d_name, nl + 1);
		} else {
			path[plen] = '/';
			memcpy(path + plen + 1, de->d_name, nl + 1);
		}
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			path[plen] = '\0';
			if (plen == 1)
				path[1] = '\0';
			continue;	/* gone meanwhile */
		}
		seen_mark(ss, path);
		rc = capture_obj(t, exp, dfd, de->d_name, path, &st);
		if (rc == 0 && S_ISDIR(st.st_mode)) {
			int cfd = openat(dfd, de->d_name, O_RDONLY |
					 O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd >= 0) {
				rc = walk_dir(t, exp, cfd, path,
					      strlen(path), ss, depth + 1);
				close(cfd);
			}
		}
		path[plen] = '\0';
		if (plen == 1)
			path[1] = '\0';
	}
	closedir(d);
	return rc;
}

/* Refresh path and everything below it. */
static int refresh_tree(struct take *t, int exp, int root, const char *path)
{
	struct seenset ss = { 0 };
	char lo[XENFS_EV_PATH_MAX + 2], hi[XENFS_EV_PATH_MAX + 2];
	char *buf = NULL;
	struct stat st;
	size_t i, plen = strlen(path);
	int rc = 0, fd = -1;

	if (plen == 1) {
		snprintf(lo, sizeof(lo), "/");
		snprintf(hi, sizeof(hi), "0");
	} else {
		snprintf(lo, sizeof(lo), "%s/", path);
		snprintf(hi, sizeof(hi), "%s0", path);
	}
	bind_ve(t, t->q_under, exp);
	sqlite3_bind_text(t->q_under, 3, path, -1, SQLITE_STATIC);
	sqlite3_bind_text(t->q_under, 4, lo, -1, SQLITE_STATIC);
	sqlite3_bind_text(t->q_under, 5, hi, -1, SQLITE_STATIC);
	while (sqlite3_step(t->q_under) == SQLITE_ROW) {
		const char *p = (const char *)sqlite3_column_text(t->q_under,
								  0);
		if (ss.n == ss.cap) {
			size_t nc = ss.cap ? ss.cap * 2 : 256;
			char **nv = realloc(ss.v, nc * sizeof(*nv));
			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			ss.v = nv;
			ss.cap = nc;
		}
		if ((ss.v[ss.n] = strdup(p ? p : "")) == NULL) {
			rc = -ENOMEM;
			break;
		}
		ss.n++;
	}
	sqlite3_reset(t->q_under);
	if (rc < 0)
		goto out;
	if (ss.n)
		qsort(ss.v, ss.n, sizeof(*ss.v), str_cmp);
	if ((ss.seen = calloc(ss.n ? ss.n : 1, 1)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if ((buf = malloc(XENFS_EV_PATH_MAX + 2)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	snprintf(buf, XENFS_EV_PATH_MAX + 2, "%s", path);
	fd = plen == 1 ? dup(root) :
		snap_open_beneath(root, path + 1, O_RDONLY | O_DIRECTORY);
	if (fd >= 0 && fstat(fd, &st) == 0) {
		seen_mark(&ss, path);
		rc = capture_obj(t, exp, fd, ".", path, &st);
		if (rc == 0)
			rc = walk_dir(t, exp, fd, buf, plen, &ss, 0);
	} else if (fd < 0 && fd != -ENOENT && fd != -ENOTDIR &&
		   fd != -ELOOP) {
		rc = fd;
		fd = -1;
		goto out;
	} else if (plen > 1) {
		/* not a directory (any more): one object */
		char par[XENFS_EV_PATH_MAX + 2], *s;
		int pfd;

		snprintf(par, sizeof(par), "%s", path);
		s = strrchr(par, '/');
		*s = '\0';
		pfd = s == par ? dup(root) :
			snap_open_beneath(root, par + 1,
					  O_RDONLY | O_DIRECTORY);
		if (pfd >= 0) {
			if (fstatat(pfd, s + 1, &st, AT_SYMLINK_NOFOLLOW) == 0) {
				seen_mark(&ss, path);
				rc = capture_obj(t, exp, pfd, s + 1, path,
						 &st);
			}
			close(pfd);
		}
	}
	for (i = 0; rc == 0 && i < ss.n; i++)
		if (!ss.seen[i]) {
			(void)entry_close(t, exp, ss.v[i]);
			t->changed++;
		}
out:
	if (fd >= 0)
		close(fd);
	for (i = 0; i < ss.n; i++)
		free(ss.v[i]);
	free(ss.v);
	free(ss.seen);
	free(buf);
	return rc;
}

/* Refresh one object (not its children). */
static int refresh_one(struct take *t, int exp, int root, const char *path)
{
	char par[XENFS_EV_PATH_MAX + 2], *s;
	struct stat st;
	int pfd, rc = 0;

	if (!strcmp(path, "/")) {
		if (fstat(root, &st) < 0)
			return -errno;
		return capture_obj(t, exp, root, ".", path, &st);
	}
	snprintf(par, sizeof(par), "%s", path);
	s = strrchr(par, '/');
	*s = '\0';
	pfd = s == par ? dup(root) :
		snap_open_beneath(root, par + 1, O_RDONLY | O_DIRECTORY);
	if (pfd < 0) {
		if (pfd == -ENOENT || pfd == -ENOTDIR || pfd == -ELOOP ||
		    pfd == -EXDEV) {
			/* parent gone or replaced: the path is gone */
			return refresh_tree(t, exp, root, path);
		}
		return pfd;
	}
	if (fstatat(pfd, s + 1, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		rc = errno == ENOENT ? 0 : -errno;
		if (rc == 0)	/* removed: it and whatever was below */
			rc = refresh_tree(t, exp, root, path);
	} else if (S_ISDIR(st.st_mode)) {
		/* was it a directory before?  If not, walk it whole */
		int was_dir = 0;

		bind_ve(t, t->q_open, exp);
		sqlite3_bind_text(t->q_open, 3, path, -1, SQLITE_STATIC);
		if (sqlite3_step(t->q_open) == SQLITE_ROW)
			was_dir = sqlite3_column_int64(t->q_open, 11) ==
				  S_IFDIR;
		sqlite3_reset(t->q_open);
		rc = was_dir ? capture_obj(t, exp, pfd, s + 1, path, &st) :
			       refresh_tree(t, exp, root, path);
	} else {
		rc = capture_obj(t, exp, pfd, s + 1, path, &st);
	}
	close(pfd);
	return rc;
}

/* Is (exp, p) below a recursive item of the sorted v[0..n)? */
static int covered(const struct dirty *v, size_t n, int exp, const char *p)
{
	char buf[XENFS_EV_PATH_MAX + 2];
	size_t l = strlen(p), k;

	if (l >= sizeof(buf) || l <= 1)
		return 0;
	memcpy(buf, p, l + 1);
	for (k = l; k-- > 0;) {
		struct dirty key, *f;
		size_t lo = 0, hi = n;

		if (buf[k] != '/')
			continue;
		buf[k ? k : 1] = '\0';
		key.exp = exp;
		key.path = buf;
		key.recursive = 1;
		/* lower bound */
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (dirty_cmp(&v[mid], &key) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		f = lo < n ? (struct dirty *)&v[lo] : NULL;
		if (f && f->exp == exp && f->recursive &&
		    !strcmp(f->path, buf))
			return 1;
		if (!k)
			break;
	}
	return 0;
}

/* Process the dirty list (sorted, deduplicated, covered paths skipped). */
static int process_dirty(struct take *t, int *roots)
{
	size_t i, n;
	int rc = 0;

	/* capture_obj may append (hard links): loop until stable */
	while (t->dn && rc == 0) {
		struct dirty *v = t->dv;

		n = t->dn;
		t->dv = NULL;
		t->dn = t->dcap = 0;
		qsort(v, n, sizeof(*v), dirty_cmp);
		for (i = 0; i < n && rc == 0; i++) {
			const char *p = v[i].path;

			if (i && v[i - 1].exp == v[i].exp &&
			    !strcmp(v[i - 1].path, p))
				continue;	/* recursive one came first */
			if (covered(v, n, v[i].exp, p))
				continue;
			rc = v[i].recursive ?
				refresh_tree(t, v[i].exp, roots[v[i].exp], p) :
				refresh_one(t, v[i].exp, roots[v[i].exp], p);
			if (rc == -ENOENT)
				rc = 0;
		}
		for (i = 0; i < n; i++)
			free(v[i].path);
		free(v);
	}
	return rc;
}

/* ---- journal ---- */

struct jstate {
	struct xf_stream_reader *r;
	uint64_t last;		/* last seq read */
	uint64_t *base;		/* per export: records > base matter */
	int *full;		/* per export: full walk needed */
};

static int exp_index(const struct snap_take_opts *o, const char *tag)
{
	int i;

	for (i = 0; i < o->nexports; i++)
		if (!strcmp(o->exports[i].tag, tag))
			return i;
	return -1;
}

static int journal_read(struct take *t, struct jstate *j)
{
	struct xenfs_event *ev;
	uint64_t gf, gl;
	int st, i, e, rc = 0;

	if (!j->r)
		return 0;
	for (;;) {
		st = xf_stream_next(j->r, &ev, &gf, &gl);
		if (st < 0) {
			log_warnx("journal: %s: full walk", strerror(-st));
			for (i = 0; i < t->o->nexports; i++)
				j->full[i] = 1;
			return 0;
		}
		if (st == XF_STREAM_EMPTY)
			break;
		if (st == XF_STREAM_GAP) {
			for (i = 0; i < t->o->nexports; i++)
				if (j->base[i] < gl)
					j->full[i] = 1;
			if (gl > j->last)
				j->last = gl;
			continue;
		}
		j->last = ev->seq;
		if (ev->op == XENFS_EV_RESYNC) {
			for (i = 0; i < t->o->nexports; i++)
				if ((!*ev->export_tag ||
				     !strcmp(ev->export_tag,
					     t->o->exports[i].tag)) &&
				    ev->seq > j->base[i])
					j->full[i] = 1;
			free(ev);
			continue;
		}
		e = exp_index(t->o, ev->export_tag);
		if (e < 0 || ev->seq <= j->base[e] || j->full[e] ||
		    ev->op >= XENFS_EV_RESYNC) {
			free(ev);
			continue;
		}
		switch (ev->op) {
		case XENFS_EV_MKDIR:
			rc = dirty_add(t, e, ev->path, 1);
			if (!rc)
				rc = dirty_add_parent(t, e, ev->path);
			break;
		case XENFS_EV_RMDIR:
			rc = dirty_add(t, e, ev->path, 1);
			if (!rc)
				rc = dirty_add_parent(t, e, ev->path);
			break;
		case XENFS_EV_RENAME:
			rc = dirty_add(t, e, ev->path, 1);
			if (!rc)
				rc = dirty_add(t, e, ev->path2, 1);
			if (!rc)
				rc = dirty_add_parent(t, e, ev->path);
			if (!rc)
				rc = dirty_add_parent(t, e, ev->path2);
			break;
		case XENFS_EV_LINK:
			rc = dirty_add(t, e, ev->path, 0);
			if (!rc)
				rc = dirty_add(t, e, ev->path2, 0);
			if (!rc)
				rc = dirty_add_parent(t, e, ev->path2);
			break;
		case XENFS_EV_CREATE:
		case XENFS_EV_MKNOD:
		case XENFS_EV_SYMLINK:
		case XENFS_EV_UNLINK:
			rc = dirty_add(t, e, ev->path, 0);
			if (!rc)
				rc = dirty_add_parent(t, e, ev->path);
			break;
		default:
			rc = dirty_add(t, e, ev->path, 0);
			break;
		}
		free(ev);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* ---- freeze ---- */

static void run_hook(const struct snap_take_opts *o, const char *phase)
{
	pid_t pid;
	int status;

	if (!o->hook || !*o->hook)
		return;
	if ((pid = fork()) < 0) {
		log_warn("hook %s", o->hook);
		return;
	}
	if (pid == 0) {
		execl(o->hook, o->hook, phase, o->vm, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		log_warnx("hook %s %s %s failed (status %d): going on", o->hook,
			  phase, o->vm, status);
}

static sigset_t oldmask;

static int do_freeze(struct take *t, uint64_t *seq)
{
	char req[300], ans[512];
	const char *s;
	sigset_t m;
	int rc;

	*seq = 0;
	if (t->o->no_freeze)
		return 0;
	sigemptyset(&m);
	sigaddset(&m, SIGINT);
	sigaddset(&m, SIGTERM);
	sigaddset(&m, SIGHUP);
	sigaddset(&m, SIGPIPE);
	sigprocmask(SIG_BLOCK, &m, &oldmask);	/* never die frozen */
	snprintf(req, sizeof(req), "freeze %s %u", t->o->vm,
		 t->o->freeze_timeout_ms);
	rc = snap_ctl(t->o->ctl_socket, req, ans, sizeof(ans));
	if (rc == -EPERM && strstr(ans, "not connected")) {
		log_info("%s is not connected: nothing to freeze",
			 t->o->vm);
		sigprocmask(SIG_SETMASK, &oldmask, NULL);
		return 0;
	}
	if (rc < 0) {
		log_warnx("freeze %s: %s", t->o->vm, *ans ? ans :
			  strerror(-rc));
		sigprocmask(SIG_SETMASK, &oldmask, NULL);
		return rc;
	}
	if ((s = strstr(ans, " seq ")) != NULL)
		*seq = strtoull(s + 5, NULL, 10);
	t->frozen = 1;
	t->freeze_ns -= now_ns(CLOCK_MONOTONIC);
	return 0;
}

static int do_thaw(struct take *t)
{
	char req[300], ans[512];
	int rc, i;

	if (!t->frozen)
		return 0;
	snprintf(req, sizeof(req), "thaw %s", t->o->vm);
	for (i = 0; i < 5; i++) {
		rc = snap_ctl(t->o->ctl_socket, req, ans, sizeof(ans));
		if (rc == 0)
			break;
		log_warnx("thaw %s: %s (retrying)", t->o->vm, ans);
		usleep(200000);
	}
	t->frozen = 0;
	t->freeze_ns += now_ns(CLOCK_MONOTONIC);
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	if (rc < 0)
		log_warnx("could not thaw %s: run `xenfsctl thaw %s`",
			  t->o->vm, t->o->vm);
	return rc;
}

/* ---- pending content ---- */

static int store_pending(struct take *t, int *roots, size_t *raced)
{
	size_t i;
	int rc = 0;

	*raced = 0;
	for (i = 0; i < t->pn && rc == 0; i++) {
		struct pending *p = &t->pv[i];
		struct stat a, b;
		int64_t content;
		uint64_t got;
		int fd;

		snap_progress(i, t->pn, t->read_bytes, "storing");
		if (p->staged) {
			fd = openat(t->repo->dirfd, p->staged, O_RDONLY |
				    O_CLOEXEC);
		} else {
			fd = snap_open_beneath(roots[p->exp], p->path + 1,
					       O_RDONLY | O_NOATIME | O_NONBLOCK);
			if (fd == -EPERM)
				fd = snap_open_beneath(roots[p->exp],
						       p->path + 1,
						       O_RDONLY | O_NONBLOCK);
			if (fd < 0)
				errno = -fd;
		}
		if (fd < 0) {
			(*raced)++;
			if ((rc = dirty_add(t, p->exp, p->path, 0)) < 0)
				break;
			continue;
		}
		if (!p->staged && (fstat(fd, &a) < 0 || a.st_ino != p->ino ||
		    ts_ns(&a.st_ctim) != p->ctime_ns ||
		    (uint64_t)a.st_size != p->size)) {
			close(fd);
			(*raced)++;
			rc = dirty_add(t, p->exp, p->path, 0);
			continue;
		}
		rc = snap_store_fd(t->repo, fd, p->size, &content, &got);
		if (rc == 0 && !p->staged && (fstat(fd, &b) < 0 ||
		    ts_ns(&b.st_ctim) != p->ctime_ns ||
		    ts_ns(&b.st_mtim) != p->mtime_ns ||
		    (uint64_t)b.st_size != p->size)) {
			/* changed while we read: the bytes may be torn */
			close(fd);
			(*raced)++;
			rc = dirty_add(t, p->exp, p->path, 0);
			continue;
		}
		close(fd);
		if (rc < 0)
			break;
		t->read_bytes += got;
		rc = set_content(t, p->entry, content);
	}
	snap_progress_end();
	for (i = 0; i < t->pn; i++) {
		if (t->pv[i].staged) {
			(void)unlinkat(t->repo->dirfd, t->pv[i].staged, 0);
			free(t->pv[i].staged);
		}
		free(t->pv[i].path);
	}
	t->pn = 0;
	return rc;
}

/* Delete entries still lacking content (raced ones were re-captured). */
static int drop_raced(struct take *t)
{
	sqlite3_stmt *q = NULL;
	int rc;

	int i;

	for (i = 0; i < t->o->nexports; i++) {
		if (prep(t, &q, "SELECT count(*), coalesce(sum(size), 0) FROM "
			 "entries WHERE vm = ?1 AND export = ?2 AND from_snap = "
			 "?3 AND type = 32768 AND content IS NULL") < 0)
			return -EIO;
		bind_ve(t, q, i);
		sqlite3_bind_int64(q, 3, t->snap);
		if (sqlite3_step(q) == SQLITE_ROW) {
			t->dfiles[i] -= sqlite3_column_int64(q, 0);
			t->dbytes[i] -= sqlite3_column_int64(q, 1);
		}
		sqlite3_finalize(q);
		q = NULL;
	}
	if (prep(t, &q, "DELETE FROM entries WHERE from_snap = ?1 AND "
		 "type = 32768 AND content IS NULL") < 0)
		return -EIO;
	sqlite3_bind_int64(q, 1, t->snap);
	rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(q);
	return rc;
}

/* ---- take ---- */

static int last_base(struct take *t, int exp, uint64_t *base)
{
	sqlite3_stmt *q = NULL;
	int rc = 0;

	if (prep(t, &q, "SELECT s.base_seq, e.files, e.bytes FROM snapshots s "
		 "JOIN snap_exports e ON e.snap = s.id WHERE s.vm = ?1 AND "
		 "e.export = ?2 AND s.id < ?3 ORDER BY s.id DESC LIMIT 1") < 0)
		return -EIO;
	bind_ve(t, q, exp);
	sqlite3_bind_int64(q, 3, t->snap);
	if (sqlite3_step(q) == SQLITE_ROW &&
	    sqlite3_column_type(q, 0) != SQLITE_NULL) {
		*base = (uint64_t)sqlite3_column_int64(q, 0);
		/* totals carry over: entries still open are in the new one */
		t->dfiles[exp] = sqlite3_column_int64(q, 1);
		t->dbytes[exp] = sqlite3_column_int64(q, 2);
	} else {
		rc = -ENOENT;
	}
	sqlite3_finalize(q);
	return rc;
}

int snap_take(struct snap_repo *repo, const struct snap_take_opts *o,
	      struct snap_take_result *res)
{
	struct take t;
	struct jstate j;
	sqlite3_stmt *q = NULL;
	int *roots = NULL, rc, i, full_any = 0;
	uint64_t seq, minbase = UINT64_MAX;
	size_t raced = 0;
	char ans[64];

	memset(&t, 0, sizeof(t));
	memset(&j, 0, sizeof(j));
	memset(res, 0, sizeof(*res));
	t.repo = repo;
	t.o = o;
	t.reflink_ok = -1;
	repo->new_chunks = repo->new_bytes = repo->new_cbytes = 0;
	repo->dedup_chunks = 0;
	roots = calloc((size_t)o->nexports, sizeof(*roots));
	t.dfiles = calloc((size_t)o->nexports, sizeof(*t.dfiles));
	t.dbytes = calloc((size_t)o->nexports, sizeof(*t.dbytes));
	j.base = calloc((size_t)o->nexports, sizeof(*j.base));
	j.full = calloc((size_t)o->nexports, sizeof(*j.full));
	if (!roots || !j.base || !j.full || !t.dfiles || !t.dbytes) {
		rc = -ENOMEM;
		goto out0;
	}
	for (i = 0; i < o->nexports; i++)
		roots[i] = -1;
	for (i = 0; i < o->nexports; i++) {
		roots[i] = open(o->exports[i].path, O_RDONLY | O_DIRECTORY |
				O_CLOEXEC);
		if (roots[i] < 0) {
			rc = -errno;
			log_warn("export %s: %s", o->exports[i].tag,
				 o->exports[i].path);
			goto out0;
		}
	}
	if ((rc = snap_repo_begin(repo)) < 0)
		goto out0;
	if ((rc = take_prepare(&t)) < 0)
		goto fail;
	if (prep(&t, &q, "INSERT INTO snapshots(vm, label, time_ns, kind) "
		 "VALUES(?1, ?2, ?3, 'running')") < 0) {
		rc = -EIO;
		goto fail;
	}
	sqlite3_bind_text(q, 1, o->vm, -1, SQLITE_STATIC);
	if (o->label)
		sqlite3_bind_text(q, 2, o->label, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, now_ns(CLOCK_REALTIME));
	rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(q);
	q = NULL;
	if (rc < 0)
		goto fail;
	t.snap = sqlite3_last_insert_rowid(repo->db);
	for (i = 0; i < o->nexports; i++) {
		if (prep(&t, &q, "INSERT INTO snap_exports(snap, export) VALUES(?1, ?2)") < 0) {
			rc = -EIO;
			goto fail;
		}
		sqlite3_bind_int64(q, 1, t.snap);
		sqlite3_bind_text(q, 2, o->exports[i].tag, -1, SQLITE_STATIC);
		sqlite3_step(q);
		sqlite3_finalize(q);
		q = NULL;
		if (last_base(&t, i, &j.base[i]) < 0 || o->verify_walk)
			j.full[i] = 1;
		else if (j.base[i] < minbase)
			minbase = j.base[i];
	}
	/* journal reader, positioned at the oldest base we need */
	if (o->journal_dir) {
		char cname[128];

		snprintf(cname, sizeof(cname), "snapshot-%s", o->vm);
		rc = xf_stream_reader_open(o->journal_dir, cname, &j.r);
		if (rc < 0) {
			log_debug("journal %s: %s: full walk", o->journal_dir,
				  strerror(-rc));
			j.r = NULL;
			for (i = 0; i < o->nexports; i++)
				j.full[i] = 1;
		} else {
			if (minbase == UINT64_MAX) {
				uint64_t h = 0;
				(void)xf_stream_head_seq(o->journal_dir, &h);
				minbase = h;	/* full walks cover the past */
			}
			xf_stream_seek(j.r, minbase + 1);
			j.last = minbase;
		}
	} else {
		for (i = 0; i < o->nexports; i++)
			j.full[i] = 1;
	}

	/*
	 * Full walks first, unfrozen: with a journal, whatever changes
	 * while we walk has a record after `head` and is captured again
	 * under the freeze below.  Without one, the walk is done frozen.
	 */
	if (j.r) {
		uint64_t head = 0;

		if (xf_stream_head_seq(o->journal_dir, &head) < 0)
			head = j.last;
		for (i = 0; i < o->nexports; i++) {
			if (!j.full[i])
				continue;
			full_any = 1;
			t.round = -1;
			if ((rc = refresh_tree(&t, i, roots[i], "/")) < 0)
				goto fail;
			j.full[i] = 0;
			j.base[i] = head;
		}
		t.round = 0;
		if ((rc = store_pending(&t, roots, &raced)) < 0)
			goto fail;
	}

	/* round 0 */
	run_hook(o, "pre");
	t.copy_budget = o->freeze_copy_max;
	if ((rc = do_freeze(&t, &seq)) < 0)
		goto fail;
	log_debug("round 0: frozen at %lld ms", (long long)(now_ns(
		  CLOCK_MONOTONIC) / 1000000));
	rc = journal_read(&t, &j);
	log_debug("journal read to %llu: %zu paths, %lld ms",
		  (unsigned long long)j.last, t.dn,
		  (long long)(now_ns(CLOCK_MONOTONIC) / 1000000));
	for (i = 0; rc == 0 && i < o->nexports; i++) {
		if (j.full[i]) {
			full_any = 1;
			rc = refresh_tree(&t, i, roots[i], "/");
		}
	}
	if (rc == 0)
		rc = process_dirty(&t, roots);
	log_debug("captured: %lld ms", (long long)(now_ns(CLOCK_MONOTONIC) /
						    1000000));
	if (do_thaw(&t) < 0 && rc == 0)
		rc = -EIO;
	if (rc < 0)
		goto fail;
	/* store what was left pending */
	if ((rc = store_pending(&t, roots, &raced)) < 0)
		goto fail;
	if (raced || t.dn) {
		/* round 1: copy under freeze whatever changed meanwhile */
		t.round = 1;
		for (i = 0; i < o->nexports; i++) {
			j.base[i] = j.last;
			j.full[i] = 0;
		}
		if ((rc = do_freeze(&t, &seq)) < 0)
			goto fail;
		rc = journal_read(&t, &j);
		for (i = 0; rc == 0 && i < o->nexports; i++)
			if (j.full[i])
				rc = refresh_tree(&t, i, roots[i], "/");
		if (rc == 0)
			rc = process_dirty(&t, roots);
		if (do_thaw(&t) < 0 && rc == 0)
			rc = -EIO;
		if (rc < 0)
			goto fail;
		if ((rc = store_pending(&t, roots, &raced)) < 0)
			goto fail;
		if (raced)
			log_warnx("%zu files changed again without a freeze "
				  "(not quiesced writers?): stored as of "
				  "the last read", raced);
	}
	run_hook(o, "post");
	if ((rc = drop_raced(&t)) < 0)
		goto fail;
	/* totals: the previous snapshot's plus what changed, per export */
	{
		int64_t files = 0, bytes = 0;

		for (i = 0; i < o->nexports; i++) {
			if (prep(&t, &q, "UPDATE snap_exports SET files = ?3, "
				 "bytes = ?4 WHERE snap = ?1 AND export = ?2")
			    < 0) {
				rc = -EIO;
				goto fail;
			}
			sqlite3_bind_int64(q, 1, t.snap);
			sqlite3_bind_text(q, 2, o->exports[i].tag, -1,
					  SQLITE_STATIC);
			sqlite3_bind_int64(q, 3, t.dfiles[i]);
			sqlite3_bind_int64(q, 4, t.dbytes[i]);
			rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -EIO;
			sqlite3_finalize(q);
			q = NULL;
			if (rc < 0)
				goto fail;
			files += t.dfiles[i];
			bytes += t.dbytes[i];
		}
		t.dfiles[0] = files;
		t.dbytes[0] = bytes;
	}
	if (prep(&t, &q, "UPDATE snapshots SET base_seq = ?2, kind = ?3, "
		 "freeze_ms = ?4, added_bytes = ?5, files = ?6, bytes = ?7 "
		 "WHERE id = ?1") < 0) {
		rc = -EIO;
		goto fail;
	}
	sqlite3_bind_int64(q, 1, t.snap);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)j.last);
	sqlite3_bind_text(q, 3, full_any ? "full" : "incremental", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, t.freeze_ns / 1000000);
	sqlite3_bind_int64(q, 5, (sqlite3_int64)repo->new_cbytes);
	sqlite3_bind_int64(q, 6, t.dfiles[0]);
	sqlite3_bind_int64(q, 7, t.dbytes[0]);
	rc = sqlite3_step(q) == SQLITE_DONE ? 0 : -EIO;
	sqlite3_finalize(q);
	q = NULL;
	if (rc < 0)
		goto fail;
	take_finalize(&t);
	log_debug("committing: %lld ms", (long long)(now_ns(CLOCK_MONOTONIC) /
						     1000000));
	if ((rc = snap_repo_commit(repo)) < 0)
		goto out0;
	log_debug("committed: %lld ms", (long long)(now_ns(CLOCK_MONOTONIC) /
						    1000000));
	if (j.r)	/* pin the journal from here for the next one */
		(void)xf_stream_commit(j.r, j.last);
	res->id = t.snap;
	res->full = full_any;
	res->freeze_ms = t.freeze_ns / 1000000;
	res->visited = t.files;
	res->changed = t.changed;
	res->read_bytes = t.read_bytes;
	res->reflinked = t.reflinked;
	res->rounds = t.round + 1;
	res->new_bytes = repo->new_cbytes;
	res->base_seq = j.last;
	(void)ans;
	rc = 0;
	goto out0;
fail:
	if (t.frozen)
		(void)do_thaw(&t);
	sqlite3_finalize(q);
	take_finalize(&t);
	snap_repo_rollback(repo);
	for (size_t k = 0; k < t.pn; k++) {
		if (t.pv[k].staged) {
			(void)unlinkat(repo->dirfd, t.pv[k].staged, 0);
			free(t.pv[k].staged);
		}
		free(t.pv[k].path);
	}
out0:
	snap_progress_end();
	dirty_clear(&t);
	free(t.dv);
	free(t.pv);
	if (j.r)
		xf_stream_reader_close(j.r);
	if (roots)
		for (i = 0; i < o->nexports; i++)
			if (roots[i] >= 0)
				close(roots[i]);
	free(roots);
	free(j.base);
	free(j.full);
	free(t.dfiles);
	free(t.dbytes);
	return rc;
}
