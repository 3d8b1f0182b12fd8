/*
 * Scanner policy and actions, shared by the scanner plugin and
 * xenfs-scan: reading the [scan] policy (with the [domain NAME]
 * scan-action override), confined opens of export files, and what happens
 * to an infected file -- logged, blocked (the verdict hook denies opens of
 * that exact file version) or quarantined (moved out of the export into
 * quarantine-dir with its metadata) -- and the admin's undo (release,
 * restore).
 *
 * Threads: called from one thread per process.
 * Trust: export paths come from guests.  Every one is resolved beneath
 * the export root with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), and
 * before moving a file we check that the name still refers to the inode
 * we scanned, so a guest racing renames cannot make us move (or restore
 * over) anything else.  Names are escaped before they are logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "scan_i.h"

/* ---- policy ---- */

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -EINVAL;
	switch (*end) {
	case 'K': case 'k': v <<= 10; end++; break;
	case 'M': case 'm': v <<= 20; end++; break;
	case 'G': case 'g': v <<= 30; end++; break;
	case 'T': case 't': v <<= 40; end++; break;
	default: break;
	}
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int is_yes(const char *v)
{
	return v && (!strcmp(v, "yes") || !strcmp(v, "true") ||
		     !strcmp(v, "on") || !strcmp(v, "1"));
}

int scan_policy_load(struct scan_policy *p, scan_cfg_fn get,
		     const char *state_dir)
{
	const char *v;
	char *words, *save = NULL, *w;
	size_t n = 0;

	memset(p, 0, sizeof(*p));
	p->get = get;
	v = get("scan", "on-write");
	p->on_write = v ? is_yes(v) : 1;
	p->on_open = is_yes(get("scan", "on-open"));
	p->max_size = 100ull << 20;
	if ((v = get("scan", "max-file-size")) && parse_size(v, &p->max_size))
		return -EINVAL;
	v = get("scan", "quarantine-dir");
	snprintf(p->qdir, sizeof(p->qdir), "%s",
		 v ? v : "/var/lib/xenfs/quarantine");
	v = get("scan", "database");
	snprintf(p->db, sizeof(p->db), "%s", v ? v : "/var/lib/clamav");
	v = get("scan", "tmp-dir");
	snprintf(p->tmp, sizeof(p->tmp), "%s", v ? v : "");
	snprintf(p->state, sizeof(p->state), "%.4000s/scanner", state_dir);
	v = get("scan", "exclude");
	if ((words = strdup(v ? v : "")) == NULL)
		return -ENOMEM;
	if ((p->exclude = calloc(strlen(words) / 2 + 2, sizeof(char *))) ==
	    NULL) {
		free(words);
		return -ENOMEM;
	}
	for (w = strtok_r(words, " \t", &save); w;
	     w = strtok_r(NULL, " \t", &save))
		if ((p->exclude[n++] = strdup(w)) == NULL) {
			free(words);
			return -ENOMEM;
		}
	free(words);
	return 0;
}

void scan_policy_free(struct scan_policy *p)
{
	if (p->exclude)
		for (size_t i = 0; p->exclude[i]; i++)
			free(p->exclude[i]);
	free(p->exclude);
	p->exclude = NULL;
}

enum scan_action scan_policy_action(const struct scan_policy *p,
				    const char *domain)
{
	char sect[300];
	const char *v = NULL;

	if (domain && *domain) {
		snprintf(sect, sizeof(sect), "domain %s", domain);
		v = p->get(sect, "scan-action");
	}
	if (v == NULL)
		v = p->get("scan", "action");
	if (v && !strcmp(v, "block"))
		return ACT_BLOCK;
	if (v && !strcmp(v, "quarantine"))
		return ACT_QUARANTINE;
	return ACT_LOG;
}

const char *scan_action_name(enum scan_action a)
{
	return a == ACT_BLOCK ? "block" : a == ACT_QUARANTINE ?
	       "quarantine" : "log";
}

int scan_policy_excluded(const struct scan_policy *p, const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	for (size_t i = 0; p->exclude && p->exclude[i]; i++) {
		const char *g = p->exclude[i];
		/* a glob with a '/' ("/dir/x*") anchors at the export
		 * root; one without ("*.iso") matches the name anywhere */
		if (!fnmatch(g, strchr(g, '/') ? path : base, 0))
			return 1;
		if (strchr(g, '/') && !fnmatch(g, path, FNM_LEADING_DIR))
			return 1;
	}
	return 0;
}

const char *scan_export_path(const struct scan_policy *p, const char *tag)
{
	char sect[300];

	if (!tag || !*tag)
		return NULL;
	snprintf(sect, sizeof(sect), "export %s", tag);
	return p->get(sect, "path");
}

const char *scan_esc(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	for (; *s && o + 5 < len; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c == 0x7f || c == '\\')
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

/* ---- confined opens ---- */

int scan_open_root(const char *dir)
{
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

int scan_open_beneath(int rootfd, const char *path, int flags)
{
	struct open_how how;
	int fd;

	while (*path == '/')
		path++;
	if (!*path)
		path = ".";
	memset(&how, 0, sizeof(how));
	/* openat2 is strict: O_PATH takes no other open flags */
	how.flags = (uint64_t)(flags | O_CLOEXEC |
			       ((flags & O_PATH) ? 0 : O_NOCTTY));
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
		      RESOLVE_NO_MAGICLINKS;
	fd = (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

/* Parent directory of path (O_PATH) and the last component. */
static int open_parent(int rootfd, const char *path, char *base,
		       size_t baselen)
{
	char dir[4096];
	const char *sl;

	while (*path == '/')
		path++;
	sl = strrchr(path, '/');
	if (sl == NULL) {
		snprintf(dir, sizeof(dir), ".");
		snprintf(base, baselen, "%s", path);
	} else {
		snprintf(dir, sizeof(dir), "%.*s", (int)(sl - path), path);
		snprintf(base, baselen, "%s", sl + 1);
	}
	if (!*base || !strcmp(base, ".") || !strcmp(base, ".."))
		return -EINVAL;
	return scan_open_beneath(rootfd, dir, O_PATH | O_DIRECTORY);
}

static int mkdir_p(const char *dir)
{
	char tmp[4096];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *s = tmp + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Copy all of src (from offset 0) to a new file dfd/name, mode 0600. */
static int copy_fd(int src, int dfd, const char *name)
{
	char buf[65536];
	off_t off = 0;
	int out, r = 0;

	out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
		     0600);
	if (out < 0)
		return -errno;
	for (;;) {
		ssize_t n = pread(src, buf, sizeof(buf), off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		if (write(out, buf, (size_t)n) != n) {
			r = -EIO;
			break;
		}
		off += n;
	}
	if (r == 0 && fsync(out) < 0)
		r = -errno;
	close(out);
	if (r < 0)
		(void)unlinkat(dfd, name, 0);
	return r;
}

static int same_file(int dirfd, const char *name, const struct stat *want)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return -errno;
	return st.st_dev == want->st_dev && st.st_ino == want->st_ino ?
	       0 : -ESTALE;
}

static int write_meta(int qfd, const struct scan_detection *d, int64_t id)
{
	char name[64], esc[8192];
	FILE *f;
	int fd;

	snprintf(name, sizeof(name), "%lld.meta", (long long)id);
	fd = openat(qfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
		    0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	fprintf(f, "id %lld\nvm %s\nexport %s\n", (long long)id, d->vm,
		d->export_tag);
	fprintf(f, "path %s\n", scan_esc(d->path, esc, sizeof(esc)));
	fprintf(f, "signature %s\n", scan_esc(d->signature, esc,
					       sizeof(esc)));
	fprintf(f, "time %lld\nsize %llu\nmode %o\nuid %u\ngid %u\n",
		(long long)d->time, (unsigned long long)d->ident.size,
		d->mode, d->uid, d->gid);
	return fclose(f) == 0 ? 0 : -EIO;
}

/* Move the scanned file out of the export into qdir/ID. */
static int quarantine(const struct scan_policy *p, int rootfd,
		      const struct scan_hit *h, const struct scan_detection *d,
		      int64_t id, char *qfile, size_t qlen)
{
	char base[256], qname[32];
	int pfd, qfd, r;

	if ((r = mkdir_p(p->qdir)) < 0)
		return r;
	if ((qfd = open(p->qdir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	if ((pfd = open_parent(rootfd, h->path, base, sizeof(base))) < 0) {
		close(qfd);
		return pfd;
	}
	snprintf(qname, sizeof(qname), "%lld", (long long)id);
	if ((r = same_file(pfd, base, h->st)) < 0)
		goto out;
	if (renameat2(pfd, base, qfd, qname, RENAME_NOREPLACE) < 0) {
		if (errno != EXDEV) {
			r = -errno;
			goto out;
		}
		/* another filesystem: copy what we scanned, then unlink */
		if ((r = copy_fd(h->fd, qfd, qname)) < 0)
			goto out;
		if ((r = same_file(pfd, base, h->st)) < 0 ||
		    unlinkat(pfd, base, 0) < 0) {
			r = r < 0 ? r : -errno;
			(void)unlinkat(qfd, qname, 0);
			goto out;
		}
	}
	if (fchmodat(qfd, qname, 0600, 0) < 0)	/* root only */
		scan_log(SCAN_LOG_WARN, "quarantine %s/%s: chmod: %s",
			 p->qdir, qname, strerror(errno));
	if (write_meta(qfd, d, id) < 0)
		scan_log(SCAN_LOG_WARN, "quarantine %s/%s.meta: cannot write",
			 p->qdir, qname);
	snprintf(qfile, qlen, "%s/%s", p->qdir, qname);
	r = 0;
out:
	close(pfd);
	close(qfd);
	return r;
}

int64_t scan_act(struct sqlite3 *db, const struct scan_policy *p,
		 int rootfd, const struct scan_hit *h,
		 enum scan_action *final_action)
{
	enum scan_action a = scan_policy_action(p, h->vm);
	struct scan_detection *d;
	char qfile[4200], e1[1024], e2[256];
	int64_t id = 0;
	int r;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		return -ENOMEM;
	d->time = (int64_t)time(NULL);
	snprintf(d->vm, sizeof(d->vm), "%s", h->vm);
	snprintf(d->export_tag, sizeof(d->export_tag), "%s", h->export_tag);
	snprintf(d->path, sizeof(d->path), "%s", h->path);
	snprintf(d->signature, sizeof(d->signature), "%s", h->signature);
	snprintf(d->action, sizeof(d->action), "%s", scan_action_name(a));
	snprintf(d->state, sizeof(d->state), "%s", a == ACT_LOG ? "logged" :
		 a == ACT_BLOCK ? "blocked" : "quarantining");
	snprintf(d->source, sizeof(d->source), "%s", h->source ? h->source :
		 "");
	scan_ident_of(&d->ident, h->st);
	d->mode = h->st->st_mode & 07777;
	d->uid = h->st->st_uid;
	d->gid = h->st->st_gid;
	if ((r = scan_db_detection_add(db, d, &id)) < 0)
		goto out;
	(void)scan_db_verdict_put(db, &d->ident, VR_INFECTED, h->signature);
	if (a == ACT_QUARANTINE) {
		r = quarantine(p, rootfd, h, d, id, qfile, sizeof(qfile));
		if (r == 0) {
			(void)scan_db_detection_set(db, id, "quarantined",
						    qfile);
		} else {
			/* could not move it: keep guests away from it */
			scan_log(SCAN_LOG_ERR, "detection %lld: quarantine "
				 "failed (%s): blocking instead",
				 (long long)id, strerror(-r));
			a = ACT_BLOCK;
			(void)scan_db_detection_set(db, id, "blocked", NULL);
		}
	}
	scan_log(SCAN_LOG_WARN, "dom %s: %s:%s: infected: %s: %s "
		 "(detection %lld)", *h->vm ? h->vm : "dom0", h->export_tag,
		 scan_esc(h->path, e1, sizeof(e1)),
		 scan_esc(h->signature, e2, sizeof(e2)),
		 a == ACT_LOG ? "logged" : a == ACT_BLOCK ? "blocked" :
		 "quarantined", (long long)id);
	(void)scan_db_stat_add(db, "detections", 1);
	if (final_action)
		*final_action = a;
	r = 0;
out:
	free(d);
	return r < 0 ? r : id;
}

/* ---- undo ---- */

static int export_root(const struct scan_policy *p, const char *tag,
		       char *err, size_t errlen)
{
	const char *dir = scan_export_path(p, tag);
	int fd;

	if (dir == NULL) {
		snprintf(err, errlen, "export %s is not in the config", tag);
		return -ENOENT;
	}
	if ((fd = scan_open_root(dir)) < 0)
		snprintf(err, errlen, "%s: %s", dir, strerror(-fd));
	return fd;
}

int scan_release(struct sqlite3 *db, const struct scan_policy *p,
		 int64_t id, char *err, size_t errlen)
{
	struct scan_detection d;
	struct scan_ident ni;
	struct stat st;
	int rootfd, fd, r;

	if ((r = scan_db_detection_get(db, id, &d)) < 0) {
		snprintf(err, errlen, "no detection %lld", (long long)id);
		return r;
	}
	if (strcmp(d.state, "blocked") && strcmp(d.state, "logged")) {
		snprintf(err, errlen, "detection %lld is %s%s", (long long)id,
			 d.state, !strcmp(d.state, "quarantined") ?
			 " (use restore)" : "");
		return -EINVAL;
	}
	if ((rootfd = export_root(p, d.export_tag, err, errlen)) < 0)
		return rootfd;
	fd = scan_open_beneath(rootfd, d.path, O_RDONLY | O_NOFOLLOW |
			       O_NONBLOCK);
	close(rootfd);
	if (fd >= 0 && fstat(fd, &st) == 0 &&
	    (uint64_t)st.st_dev == d.ident.dev &&
	    (uint64_t)st.st_ino == d.ident.ino) {
		/*
		 * xenfsd caches the deny on (dev, ino, size, ctime): change
		 * the ctime (same mode) so it asks again, then remember that
		 * the admin allowed this exact version.
		 */
		if (fchmod(fd, st.st_mode & 07777) < 0 || fstat(fd, &st) < 0) {
			r = -errno;
			snprintf(err, errlen, "%s: %s", d.path, strerror(-r));
			close(fd);
			return r;
		}
		scan_ident_of(&ni, &st);
		(void)scan_db_verdict_put(db, &ni, VR_RELEASED, d.signature);
	}
	if (fd >= 0)
		close(fd);
	if ((r = scan_db_detection_set(db, id, "released", NULL)) < 0) {
		snprintf(err, errlen, "database update failed");
		return r;
	}
	scan_log(SCAN_LOG_INFO, "detection %lld released by the admin",
		 (long long)id);
	return 0;
}

int scan_restore(struct sqlite3 *db, const struct scan_policy *p,
		 int64_t id, char *err, size_t errlen)
{
	struct scan_detection d;
	struct scan_ident ni;
	struct stat st;
	char base[256], meta[4300];
	int rootfd, pfd, fd, src, r;

	if ((r = scan_db_detection_get(db, id, &d)) < 0) {
		snprintf(err, errlen, "no detection %lld", (long long)id);
		return r;
	}
	if (strcmp(d.state, "quarantined")) {
		snprintf(err, errlen, "detection %lld is %s, not quarantined",
			 (long long)id, d.state);
		return -EINVAL;
	}
	if ((rootfd = export_root(p, d.export_tag, err, errlen)) < 0)
		return rootfd;
	pfd = open_parent(rootfd, d.path, base, sizeof(base));
	close(rootfd);
	if (pfd < 0) {
		snprintf(err, errlen, "%s: parent directory: %s", d.path,
			 strerror(-pfd));
		return pfd;
	}
	if (renameat2(AT_FDCWD, d.qfile, pfd, base, RENAME_NOREPLACE) < 0) {
		r = -errno;
		if (r == -EXDEV) {
			src = open(d.qfile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
			r = src < 0 ? -errno : copy_fd(src, pfd, base);
			if (src >= 0)
				close(src);
			if (r == 0)
				(void)unlink(d.qfile);
		}
		if (r < 0) {
			snprintf(err, errlen, "cannot restore %s to %s: %s",
				 d.qfile, d.path, r == -EEXIST ?
				 "a file of that name exists" : strerror(-r));
			close(pfd);
			return r;
		}
	}
	fd = openat(pfd, base, O_RDONLY | O_NOFOLLOW | O_CLOEXEC |
		    O_NONBLOCK);
	close(pfd);
	if (fd < 0 || fchown(fd, d.uid, d.gid) < 0 ||
	    fchmod(fd, d.mode & 07777) < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: restored, but metadata: %s",
			 d.path, strerror(-r));
		if (fd >= 0)
			close(fd);
	} else {
		/* the admin allowed this version: do not catch it again */
		scan_ident_of(&ni, &st);
		(void)scan_db_verdict_put(db, &ni, VR_RELEASED, d.signature);
		close(fd);
	}
	snprintf(meta, sizeof(meta), "%s.meta", d.qfile);
	(void)unlink(meta);
	if ((r = scan_db_detection_set(db, id, "restored", NULL)) < 0) {
		snprintf(err, errlen, "database update failed");
		return r;
	}
	scan_log(SCAN_LOG_INFO, "detection %lld restored to %s:%s by the admin",
		 (long long)id, d.export_tag, d.path);
	return 0;
}
