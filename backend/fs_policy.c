/*
 * The fs layer's view of policy: the identity map of a session and the
 * quota accounting of exports (docs/security.md, "Identity" and "Quotas").
 *
 * Identity: a session holds a pointer to an immutable struct xf_idmap,
 * replaced atomically by fs_session_set_policy() (connect and reload).
 * Replaced maps are kept until the session is freed, so a handler that
 * loaded the old pointer keeps a valid map; reloads are rare, so the list
 * stays short.
 *
 * Quotas: usage is counted per export (bytes: sizes of regular files and
 * symlinks, inodes: directory entries, a hard link counted like a copy),
 * in one struct fs_acct per export tag and process, shared by every
 * session on it; its counters live in a file mapping shared with the
 * other processes serving the export (struct fs_live below).  A domain's usage is the sum over the distinct exports it
 * has sessions on.  Usage is saved to <state-dir>/quota/<tag>.usage (at
 * most once a second while changing, and when the last session goes) and
 * reloaded at the next start; a missing or unreadable file means a scan of
 * the export tree.  Checks are made before an operation and charges after
 * it with the real size change, so concurrent writers may overshoot by at
 * most what they wrote concurrently.
 *
 * Locking: acct_lock guards the acct list, the session registry and the
 * save path; the counters are atomics.  Never held across an fs syscall
 * except the short state-file write.
 *
 * Trust: the state files live in dom0's state directory (trusted); a
 * corrupt one is only a reason to rescan.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs_i.h"
#include "idmap.h"
#include "log.h"

/*
 * The live counters of an export, shared by every process that serves it
 * (xenfsd's per-domain workers: two domains may share an export and its
 * quota): <state-dir>/quota/<tag>.live mapped MAP_SHARED, or private
 * memory without a state directory.  magic says it was initialized (from
 * the .usage file or a scan); xenfsd's parent removes the .live files at
 * startup, so each start begins from the .usage files as before.
 */
#define FS_LIVE_MAGIC	0x58464c49564531ULL	/* "XFLIVE1" */
struct fs_live {
	uint64_t magic;
	atomic_int_fast64_t bytes, inodes;
};

struct fs_acct {
	struct fs_acct *next;
	char *tag;
	char *path;			/* state file */
	struct fs_live *live;		/* counters (shared mapping) */
	int shared;			/* live is a mapping, not malloc */
	atomic_int dirty;
	time_t saved;
	int refs;			/* acct_lock */
};

struct fs_reg {				/* one session on the registry */
	struct fs_reg *next;
	struct fs_session *s;
};

static pthread_mutex_t acct_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fs_acct *accts;
static struct fs_reg *regs;

static const struct xf_idmap fs_identity = {
	.squash = XF_SQUASH_NONE,
	.anon_uid = XF_OVERFLOW_ID,
	.anon_gid = XF_OVERFLOW_ID,
};

const struct xf_idmap *fs_map(struct fs_session *s)
{
	const struct xf_idmap *m = atomic_load(&s->idmap);

	return m ? m : &fs_identity;
}

/* ---- scanning and the state file ---- */

static void scan_dir(int dfd, int depth, int64_t *bytes, int64_t *inodes)
{
	DIR *d;
	struct dirent *de;

	if (depth > 4096 || (d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		int fd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		(*inodes)++;
		if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
			*bytes += st.st_size;
		if (!S_ISDIR(st.st_mode))
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			scan_dir(fd, depth + 1, bytes, inodes);
	}
	closedir(d);
}

int fs_quota_scan(int root_fd, int64_t *bytes, int64_t *inodes)
{
	int fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*bytes = *inodes = 0;
	if (fd < 0)
		return -errno;
	scan_dir(fd, 0, bytes, inodes);
	return 0;
}

static int acct_read(struct fs_acct *a)
{
	long long b, i;
	FILE *f = fopen(a->path, "re");
	int ok;

	if (!f)
		return -errno;
	ok = fscanf(f, "xenfs-quota 1 bytes %lld inodes %lld", &b, &i) == 2 &&
	     b >= 0 && i >= 0;
	fclose(f);
	if (!ok)
		return -EINVAL;
	atomic_store(&a->live->bytes, b);
	atomic_store(&a->live->inodes, i);
	return 0;
}

/* acct_lock held. */
static void acct_save(struct fs_acct *a)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (!a->path)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", a->path);
	if ((f = fopen(tmp, "we")) == NULL) {
		log_warn("quota: %s", tmp);
		return;
	}
	fprintf(f, "xenfs-quota 1 bytes %" PRId64 " inodes %" PRId64 "\n",
		(int64_t)atomic_load(&a->live->bytes),
		(int64_t)atomic_load(&a->live->inodes));
	if (fclose(f) != 0 || rename(tmp, a->path) != 0) {
		log_warn("quota: %s", a->path);
		(void)unlink(tmp);
		return;
	}
	atomic_store(&a->dirty, 0);
	a->saved = time(NULL);
}

/* Map (creating) dir/<tag>.live; NULL if that cannot be done.  *fdp is
 * the open file, locked (LOCK_EX) for the caller's initialization. */
static struct fs_live *live_map(const char *dir, const char *tag, int *fdp)
{
	char path[PATH_MAX];
	struct fs_live *l;
	struct stat st;
	int fd;

	*fdp = -1;
	if (snprintf(path, sizeof(path), "%s/%s.live", dir, tag) >=
	    (int)sizeof(path))
		return NULL;
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_warn("quota: %s", path);
		return NULL;
	}
	if (flock(fd, LOCK_EX) < 0 || fstat(fd, &st) < 0 ||
	    (st.st_size < (off_t)sizeof(*l) &&
	     ftruncate(fd, sizeof(*l)) < 0)) {
		log_warn("quota: %s", path);
		close(fd);
		return NULL;
	}
	l = mmap(NULL, sizeof(*l), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (l == MAP_FAILED) {
		log_warn("quota: mmap %s", path);
		close(fd);
		return NULL;
	}
	*fdp = fd;
	return l;
}

/* acct_lock held.  Find or make the acct of tag; NULL on ENOMEM. */
static struct fs_acct *acct_get(struct fs_session *s, const char *state_dir)
{
	struct fs_acct *a;
	char dir[PATH_MAX];
	int64_t b, i;
	int fd = -1;

	for (a = accts; a; a = a->next)
		if (!strcmp(a->tag, s->tag)) {
			if (a->refs++ == 0 && a->live->magic != FS_LIVE_MAGIC &&
			    (!a->path || acct_read(a) != 0)) {
				(void)fs_quota_scan(s->root_fd, &b, &i);
				atomic_store(&a->live->bytes, b);
				atomic_store(&a->live->inodes, i);
				acct_save(a);
			}
			a->live->magic = FS_LIVE_MAGIC;
			return a;
		}
	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->tag = strdup(s->tag)) == NULL) {
		free(a);
		return NULL;
	}
	if (state_dir) {
		snprintf(dir, sizeof(dir), "%s/quota", state_dir);
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			log_warn("quota: %s", dir);
		if (asprintf(&a->path, "%s/%s.usage", dir, s->tag) < 0)
			a->path = NULL;
		if ((a->live = live_map(dir, s->tag, &fd)) != NULL)
			a->shared = 1;
	}
	if (!a->live && (a->live = calloc(1, sizeof(*a->live))) == NULL) {
		free(a->path);
		free(a->tag);
		free(a);
		return NULL;
	}
	/* another process (a worker of another domain on this export) may
	 * have set the counters up already: then they are current */
	if (a->live->magic != FS_LIVE_MAGIC) {
		if (!a->path || acct_read(a) != 0) {
			(void)fs_quota_scan(s->root_fd, &b, &i);
			atomic_store(&a->live->bytes, b);
			atomic_store(&a->live->inodes, i);
			log_info("quota: export '%s': usage scanned: %" PRId64
				 " bytes, %" PRId64 " inodes", s->tag, b, i);
			acct_save(a);
		}
		a->live->magic = FS_LIVE_MAGIC;
	}
	if (fd >= 0) {
		/* explicitly: the mapping keeps the open file (and with it
		 * a flock) alive past close() */
		(void)flock(fd, LOCK_UN);
		close(fd);
	}
	a->refs = 1;
	a->next = accts;
	accts = a;
	return a;
}

void fs_quota_reset_shared(const char *state_dir)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent *de;
	DIR *d;
	size_t l;

	if (!state_dir)
		return;
	snprintf(dir, sizeof(dir), "%s/quota", state_dir);
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".live"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) < 0)
			log_warn("quota: %s", path);
	}
	closedir(d);
}

/*
 * acct_lock held.  An unused acct is saved but stays in the list (a
 * worker of a session whose quota a reload just removed may still read
 * it); it is re-read from its file when the export is used again.
 */
static void acct_put(struct fs_acct *a)
{
	if (!a || --a->refs > 0)
		return;
	acct_save(a);
}

static int map_has_quota(const struct xf_idmap *m)
{
	return m->quota_bytes_dom || m->quota_inodes_dom ||
	       m->quota_bytes_exp || m->quota_inodes_exp;
}

int fs_session_set_policy(struct fs_session *s, const struct xf_config *cfg)
{
	struct xf_idmap *m, *old;
	struct fs_reg *r, **pp;
	int rc;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return -ENOMEM;
	if ((rc = xf_idmap_load(cfg, s->domain, s->tag, m)) < 0) {
		free(m);
		log_warnx("fs %s/%s: bad identity or quota settings",
			  s->domain, s->tag);
		return rc;
	}
	pthread_mutex_lock(&acct_lock);
	if (map_has_quota(m) && !s->acct) {
		s->acct = acct_get(s, cfg ? cfg->global.state_dir : NULL);
		if (s->acct && (r = calloc(1, sizeof(*r))) != NULL) {
			r->s = s;
			r->next = regs;
			regs = r;
		}
	} else if (!map_has_quota(m) && s->acct) {
		for (pp = &regs; *pp; pp = &(*pp)->next)
			if ((*pp)->s == s) {
				r = *pp;
				*pp = r->next;
				free(r);
				break;
			}
		/* counting stops: a stale file must not be trusted later */
		if (--s->acct->refs == 0 && s->acct->path) {
			(void)unlink(s->acct->path);
			s->acct->live->magic = 0;
		}
		s->acct = NULL;
	}
	old = (struct xf_idmap *)atomic_exchange(&s->idmap, m);
	if (old) {
		/* kept until the session goes: a handler may still read it */
		*(struct xf_idmap **)(void *)old = s->old_maps;
		s->old_maps = old;
	}
	pthread_mutex_unlock(&acct_lock);
	if (!xf_idmap_is_identity(m) || map_has_quota(m) || m->noexec)
		log_info("fs %s/%s: squash %s, %u uid / %u gid ranges, "
			 "quota %" PRIu64 "/%" PRIu64 " bytes %" PRIu64 "/%"
			 PRIu64 " inodes (domain/export)%s", s->domain, s->tag,
			 m->squash == XF_SQUASH_ALL ? "all" :
			 m->squash == XF_SQUASH_ROOT ? "root" : "none",
			 m->uid.n, m->gid.n, m->quota_bytes_dom,
			 m->quota_bytes_exp, m->quota_inodes_dom,
			 m->quota_inodes_exp, m->noexec ? ", noexec" : "");
	return 0;
}

void fs_policy_free(struct fs_session *s)
{
	struct xf_idmap *m, *next;
	struct fs_reg *r, **pp;

	pthread_mutex_lock(&acct_lock);
	for (pp = &regs; *pp; pp = &(*pp)->next)
		if ((*pp)->s == s) {
			r = *pp;
			*pp = r->next;
			free(r);
			break;
		}
	acct_put(s->acct);
	s->acct = NULL;
	pthread_mutex_unlock(&acct_lock);
	free((void *)atomic_load(&s->idmap));
	for (m = s->old_maps; m; m = next) {
		next = *(struct xf_idmap **)(void *)m;
		free(m);
	}
}

/* Domain usage: the sum over distinct accts of the domain's sessions. */
static void domain_usage(struct fs_session *s, int64_t *b, int64_t *i)
{
	const struct fs_acct *seen[64];
	size_t n = 0, k;
	struct fs_reg *r;

	*b = *i = 0;
	pthread_mutex_lock(&acct_lock);
	for (r = regs; r; r = r->next) {
		const struct fs_acct *a = r->s->acct;

		if (!a || strcmp(r->s->domain, s->domain))
			continue;
		for (k = 0; k < n; k++)
			if (seen[k] == a)
				break;
		if (k < n)
			continue;
		if (n < sizeof(seen) / sizeof(seen[0]))
			seen[n++] = a;
		*b += atomic_load(&a->live->bytes);
		*i += atomic_load(&a->live->inodes);
	}
	pthread_mutex_unlock(&acct_lock);
}

static int over(uint64_t limit, int64_t used, int64_t add)
{
	if (!limit || add <= 0)
		return 0;
	if (used < 0)
		used = 0;
	return (uint64_t)used + (uint64_t)add > limit;
}

int64_t fs_quota_room(struct fs_session *s)
{
	const struct xf_idmap *m = fs_map(s);
	struct fs_acct *a = s->acct;
	int64_t room = INT64_MAX, db, di;

	if (!a)
		return room;
	if (m->quota_bytes_exp)
		room = (int64_t)m->quota_bytes_exp -
		    atomic_load(&a->live->bytes);
	if (m->quota_bytes_dom) {
		domain_usage(s, &db, &di);
		if ((int64_t)m->quota_bytes_dom - db < room)
			room = (int64_t)m->quota_bytes_dom - db;
	}
	return room < 0 ? 0 : room;
}

int fs_quota_check(struct fs_session *s, int64_t bytes, int64_t inodes)
{
	const struct xf_idmap *m = fs_map(s);
	struct fs_acct *a = s->acct;
	int64_t db, di;

	if (!a || (bytes <= 0 && inodes <= 0))
		return 0;
	if (over(m->quota_bytes_exp, atomic_load(&a->live->bytes), bytes) ||
	    over(m->quota_inodes_exp, atomic_load(&a->live->inodes), inodes))
		return -EDQUOT;
	if (m->quota_bytes_dom || m->quota_inodes_dom) {
		domain_usage(s, &db, &di);
		if (over(m->quota_bytes_dom, db, bytes) ||
		    over(m->quota_inodes_dom, di, inodes))
			return -EDQUOT;
	}
	return 0;
}

void fs_quota_charge(struct fs_session *s, int64_t bytes, int64_t inodes)
{
	struct fs_acct *a = s->acct;
	time_t now;

	if (!a || (bytes == 0 && inodes == 0))
		return;
	if (atomic_fetch_add(&a->live->bytes, bytes) + bytes < 0)
		atomic_store(&a->live->bytes, 0);
	if (atomic_fetch_add(&a->live->inodes, inodes) + inodes < 0)
		atomic_store(&a->live->inodes, 0);
	atomic_store(&a->dirty, 1);
	now = time(NULL);
	if (now != a->saved && pthread_mutex_trylock(&acct_lock) == 0) {
		if (atomic_load(&a->dirty) && now != a->saved)
			acct_save(a);
		pthread_mutex_unlock(&acct_lock);
	}
}

void fs_quota_stats(struct fs_session *s, struct fs_stats *st)
{
	const struct xf_idmap *m = fs_map(s);
	struct fs_acct *a = s->acct;
	int64_t db, di;

	if (!a)
		return;
	st->quota_bytes_used = (uint64_t)atomic_load(&a->live->bytes);
	st->quota_inodes_used = (uint64_t)atomic_load(&a->live->inodes);
	st->quota_bytes_limit = m->quota_bytes_exp;
	st->quota_inodes_limit = m->quota_inodes_exp;
	if (m->quota_bytes_dom || m->quota_inodes_dom) {
		domain_usage(s, &db, &di);
		if (m->quota_bytes_dom && (!st->quota_bytes_limit ||
		    m->quota_bytes_dom < st->quota_bytes_limit)) {
			st->quota_bytes_limit = m->quota_bytes_dom;
			st->quota_bytes_used = (uint64_t)db;
		}
		if (m->quota_inodes_dom && (!st->quota_inodes_limit ||
		    m->quota_inodes_dom < st->quota_inodes_limit)) {
			st->quota_inodes_limit = m->quota_inodes_dom;
			st->quota_inodes_used = (uint64_t)di;
		}
	}
}

/* Size of a name under dirfd, and whether it counts bytes; for credits. */
int64_t fs_quota_entry_bytes(int dirfd, const char *name, int *exists)
{
	struct stat st;

	*exists = 0;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	*exists = 1;
	return (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) ? st.st_size : 0;
}
