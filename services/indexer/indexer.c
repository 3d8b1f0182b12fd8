/*
 * The indexer plugin of xenfs-services: keeps an SQLite index (names,
 * paths, metadata, text content) of every export exact, from a full crawl
 * the first time an export is seen and then from the operation stream.
 * docs/index.md has the schema and the rules; xenfs-search reads it.
 *
 * Processes and threads: the plugin runs in its own child of
 * xenfs-services.  init forks the content extraction helper (extract.c,
 * unprivileged) before anything else, opens the database, then starts one
 * worker thread that crawls queued directories, extracts pending
 * content and picks up reindex requests.  on_event / on_resync run on the
 * host's thread.  One mutex (idx.lock) serializes every use of the
 * database connection and of the helper, so a crawl step (<= ~50 ms) and
 * an event batch never interleave inside a transaction.
 *
 * Durability: an event batch is applied in one transaction committed
 * before on_event returns 0, and the host commits the stream cursor only
 * after that: a kill -9 loses nothing (the uncommitted batch is
 * delivered again and re-applying it is idempotent: upserts and deletes
 * by path).  The crawl queue lives in the database, so a crawl resumes.
 *
 * Trust: event paths and crawled names are guest-chosen bytes, stored as
 * BLOBs; the tree is walked with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS) and lstat only; file bytes are read by the helper.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xenfs/plugin.h>

#include "index_i.h"
#include "policy.h"

#define DEFAULT_CONFIG	XENFS_SYSCONFDIR "/xenfs/xenfs.conf"

struct indexer {
	struct idx idx;
	const struct xenfs_host_services *svc;
	struct xf_config *cfg;
	char reqdir[PATH_MAX];
	pthread_t worker;
	int worker_started;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	int stop;
	uint64_t crawled;	/* entries crawled in the current crawl(s) */
	int tty;		/* stderr is a terminal: draw progress */
	int64_t rebuild_next_ms;	/* after a failed rebuild */
	int64_t crawl_t0;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The config file xenfs-services was started with (-c PATH). */
static void config_path(char *buf, size_t len)
{
	char cmd[8192];
	ssize_t n;
	int fd;

	snprintf(buf, len, "%s", DEFAULT_CONFIG);
	if ((fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC)) < 0)
		return;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return;
	cmd[n] = '\0';
	for (char *p = cmd; p < cmd + n; p += strlen(p) + 1) {
		if (!strcmp(p, "-c") && p + strlen(p) + 1 < cmd + n) {
			snprintf(buf, len, "%s", p + strlen(p) + 1);
			return;
		}
		if (!strncmp(p, "--config=", 9)) {
			snprintf(buf, len, "%s", p + 9);
			return;
		}
	}
}

static void access_text(const struct xf_export *e, char *buf, size_t len)
{
	size_t o = 0;

	*buf = '\0';
	for (size_t i = 0; i < e->nrules && o < len; i++) {
		int n = snprintf(buf + o, len - o, "%s%s:%s", o ? " " : "",
				 e->rules[i].domain,
				 e->rules[i].mode == XF_ACCESS_RW ? "rw" :
				 e->rules[i].mode == XF_ACCESS_RO ? "ro" :
				 "none");
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

static void crawl_export(struct indexer *ix, const char *tag,
			 const char *why)
{
	int busy = ix->crawled > 0;

	int r;

	if ((r = idx_crawl_start(&ix->idx, tag)) < 0) {
		ix->svc->log(XENFS_LOG_ERR, "indexer: cannot start crawl of %s:"
			     " %s", tag, strerror(-r));
		return;
	}
	ix->svc->log(XENFS_LOG_INFO, "indexer: full crawl of export %s (%s)",
		     tag, why);
	if (!busy) {	/* several exports at once: one running total */
		ix->crawl_t0 = mono_ms();
		ix->crawled = 0;
	}
}

/* Sync the exports table with the config and start the crawls needed.
 * With idx.lock held. */
static int exports_sync(struct indexer *ix, int force)
{
	const struct xf_config *cfg = ix->cfg;
	const char **doms;
	sqlite3_stmt *st;
	char acc[2048], vms[2048], state[32];
	int r = 0, rc;

	if (!(doms = calloc(cfg->ndomains + 1, sizeof(*doms))))
		return -ENOMEM;
	for (size_t i = 0; i < cfg->ndomains; i++)
		doms[i] = cfg->domains[i].name;
	if ((r = idx_begin(&ix->idx)) < 0) {
		free(doms);
		return r;
	}
	for (size_t i = 0; i < cfg->nexports && r == 0; i++) {
		const struct xf_export *e = &cfg->exports[i];

		const char *why = force ? "database rebuilt" : NULL;
		int moved = 0;

		access_text(e, acc, sizeof(acc));
		idx_vms_of(acc, doms, cfg->ndomains, vms, sizeof(vms));
		/* the same tag on another host directory is another tree */
		rc = sqlite3_prepare_v2(ix->idx.db, "SELECT 1 FROM exports"
					" WHERE tag = ?1 AND hostpath IS NOT"
					" ?2", -1, &st, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_bind_text(st, 1, e->tag, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, e->path, -1, SQLITE_STATIC);
			moved = sqlite3_step(st) == SQLITE_ROW;
			sqlite3_finalize(st);
		}
		r = idx_export_put(&ix->idx, e->tag, e->path, acc, vms);
		if (r == 0 && !why && (idx_export_state(&ix->idx, e->tag,
				state, sizeof(state)) <= 0 ||
				       !strcmp(state, "new")))
			why = "first time seen";
		if (r == 0 && !why && moved)
			why = "its host path changed";
		if (r == 0 && why)
			crawl_export(ix, e->tag, why);
	}
	free(doms);
	/* exports gone from the config: their entries go too */
	rc = sqlite3_prepare_v2(ix->idx.db, "SELECT tag FROM exports", -1,
				&st, NULL);
	while (r == 0 && rc == SQLITE_OK &&
	       (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *tag = (const char *)sqlite3_column_text(st, 0);
		uint64_t n;

		if (tag && !xf_config_export(cfg, tag)) {
			char *t = strdup(tag);

			if (!t) {
				r = -ENOMEM;
				break;
			}
			sqlite3_reset(st);
			r = idx_del(&ix->idx, t, "/", 1, &n);
			if (r == 0) {
				sqlite3_stmt *d;
				sqlite3_prepare_v2(ix->idx.db, "DELETE FROM"
						   " exports WHERE tag = ?1",
						   -1, &d, NULL);
				sqlite3_bind_text(d, 1, t, -1, SQLITE_STATIC);
				if (sqlite3_step(d) != SQLITE_DONE)
					r = -EIO;
				sqlite3_finalize(d);
				ix->svc->log(XENFS_LOG_INFO, "indexer: export"
					     " %s is no longer configured: "
					     "%" PRIu64 " entries removed", t,
					     n);
			}
			free(t);
			rc = SQLITE_ROW;
		}
	}
	sqlite3_finalize(st);
	if (r == 0)
		r = idx_commit(&ix->idx);
	if (r < 0)
		idx_rollback(&ix->idx);
	return r;
}

/* With idx.lock held: the database went bad at runtime: start over. */
static int maybe_rebuild(struct indexer *ix)
{
	int r;

	/* a failed rebuild leaves no connection: try again, every 5 s */
	if (!ix->idx.corrupt && ix->idx.db)
		return 0;
	if (mono_ms() < ix->rebuild_next_ms)
		return -EAGAIN;
	ix->svc->log(XENFS_LOG_WARNING, "indexer: index database corrupt: "
		     "moving it aside and rebuilding by a full crawl");
	if ((r = idx_rebuild(&ix->idx)) < 0) {
		ix->rebuild_next_ms = mono_ms() + 5000;
		return r;
	}
	return exports_sync(ix, 1);
}

/* Reindex requests: files "reindex.VM" in our state directory, written
 * by xenfs-search --reindex VM ("*" = every export). */
static void reindex_requests(struct indexer *ix)
{
	struct dirent *de;
	DIR *d;

	if (!(d = opendir(ix->reqdir)))
		return;
	while ((de = readdir(d)) != NULL) {
		const char *vm = de->d_name + 8;
		int any = 0;

		if (strncmp(de->d_name, "reindex.", 8))
			continue;
		(void)unlinkat(dirfd(d), de->d_name, 0);
		if (strcmp(vm, "*") && !idx_valid_name(vm))
			continue;
		if (idx_begin(&ix->idx) < 0)
			break;
		for (size_t i = 0; i < ix->cfg->nexports; i++) {
			const struct xf_export *e = &ix->cfg->exports[i];
			char acc[2048];

			access_text(e, acc, sizeof(acc));
			if (!strcmp(vm, "*") || idx_vm_sees(acc, vm)) {
				crawl_export(ix, e->tag, "reindex requested");
				any = 1;
			}
		}
		if (idx_commit(&ix->idx) < 0)
			idx_rollback(&ix->idx);
		if (!any)
			ix->svc->log(XENFS_LOG_WARNING, "indexer: reindex %s:"
				     " no export is visible to it", vm);
	}
	closedir(d);
}

/*
 * Crawl progress: a log line every 5 s while crawling and a summary at
 * the end; when xenfs-services runs on a terminal (-f), also a one-line
 * progress display on stderr, redrawn 4 times a second.
 */
static void progress(struct indexer *ix, int crawling, int64_t *last_log,
		     int64_t *last_bar)
{
	int64_t now = mono_ms(), dt = now - ix->crawl_t0;
	int64_t rate = dt > 0 ? (int64_t)ix->crawled * 1000 / dt : 0;

	if (!ix->crawled)
		return;
	if (!crawling) {
		if (ix->tty)
			fprintf(stderr, "\033[K");
		ix->svc->log(XENFS_LOG_INFO, "indexer: crawled %" PRIu64
			     " entries in %" PRId64 ".%01" PRId64 " s (%"
			     PRId64 "/s)", ix->crawled, dt / 1000,
			     (dt % 1000) / 100, rate);
		ix->crawled = 0;
		return;
	}
	if (now - *last_log >= 5000) {
		if (ix->tty)
			fprintf(stderr, "\033[K");
		ix->svc->log(XENFS_LOG_INFO, "indexer: crawl progress: %"
			     PRIu64 " entries (%" PRId64 "/s)", ix->crawled,
			     rate);
		*last_log = now;
	}
	if (ix->tty && now - *last_bar >= 250) {
		/* ends with \r: the next log line overwrites it */
		fprintf(stderr, "\033[Kindexer: crawling: %" PRIu64
			" entries, %" PRId64 "/s\r", ix->crawled, rate);
		*last_bar = now;
	}
}

static void *worker_main(void *arg)
{
	struct indexer *ix = arg;
	int64_t last_req = 0, last_log = mono_ms(), last_bar = 0;

	for (;;) {
		struct timespec ts;
		int did = 0, crawling = 0, r;

		pthread_mutex_lock(&ix->stop_lock);
		if (ix->stop) {
			pthread_mutex_unlock(&ix->stop_lock);
			break;
		}
		pthread_mutex_unlock(&ix->stop_lock);

		pthread_mutex_lock(&ix->idx.lock);
		if (maybe_rebuild(ix) == 0) {
			r = idx_crawl_step(&ix->idx, 50, &ix->crawled);
			crawling = r > 0;
			if (r > 0)
				did = 1;
			if (r == 0 && idx_content_step(&ix->idx, 64, 50) > 0)
				did = 1;
			if (mono_ms() - last_req >= 500) {
				reindex_requests(ix);
				last_req = mono_ms();
			}
		}
		progress(ix, crawling, &last_log, &last_bar);
		pthread_mutex_unlock(&ix->idx.lock);
		if (did)
			continue;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&ix->stop_lock);
		if (!ix->stop)
			pthread_cond_timedwait(&ix->stop_cond, &ix->stop_lock,
					       &ts);
		pthread_mutex_unlock(&ix->stop_lock);
	}
	return NULL;
}

static void ix_free(struct indexer *ix)
{
	ext_stop(&ix->idx.ext);
	idx_close(&ix->idx);
	for (size_t i = 0; i < ix->idx.nexports; i++) {
		if (ix->idx.exports[i].rootfd >= 0)
			close(ix->idx.exports[i].rootfd);
		free(ix->idx.exports[i].tag);
		free(ix->idx.exports[i].path);
	}
	free(ix->idx.exports);
	xf_config_free(ix->cfg);
	pthread_mutex_destroy(&ix->idx.lock);
	pthread_mutex_destroy(&ix->stop_lock);
	pthread_cond_destroy(&ix->stop_cond);
	free(ix);
}

static int mkdir_parent(const char *path)
{
	char d[PATH_MAX];
	char *s;

	snprintf(d, sizeof(d), "%s", path);
	if (!(s = strrchr(d, '/')) || s == d)
		return 0;
	*s = '\0';
	if (mkdir(d, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int ix_init(const struct xenfs_host_services *svc, void **state)
{
	struct indexer *ix;
	char cpath[PATH_MAX], err[512];
	const char *db;
	uint64_t max;
	int r, rebuilt;

	if (!(ix = calloc(1, sizeof(*ix))))
		return -ENOMEM;
	ix->svc = svc;
	ix->idx.log = svc->log;
	ix->idx.ext.sock = -1;
	ix->idx.ext.pid = -1;
	ix->tty = isatty(STDERR_FILENO);
	pthread_mutex_init(&ix->idx.lock, NULL);
	pthread_mutex_init(&ix->stop_lock, NULL);
	pthread_cond_init(&ix->stop_cond, NULL);
	/* the helper first: it must not inherit the database or threads */
	if ((r = ext_start(&ix->idx.ext)) < 0) {
		svc->log(XENFS_LOG_ERR, "indexer: content helper: %s",
			 strerror(-r));
		goto fail;
	}
	config_path(cpath, sizeof(cpath));
	if (!(ix->cfg = xf_config_load(cpath, err, sizeof(err)))) {
		svc->log(XENFS_LOG_ERR, "indexer: %s", err);
		r = -EINVAL;
		goto fail;
	}
	ix->idx.max_text = 10u << 20;
	if (xf_config_get_u64(ix->cfg, "index", "max-text-size", &max) == 0)
		ix->idx.max_text = max;
	db = xf_config_value(ix->cfg, "index", "db");
	if (!db)
		db = "/var/lib/xenfs/index.db";
	snprintf(ix->reqdir, sizeof(ix->reqdir), "%s/%s", svc->state_dir,
		 svc->plugin_name);
	if ((r = mkdir_parent(db)) < 0) {
		svc->log(XENFS_LOG_ERR, "indexer: mkdir for %s: %s", db,
			 strerror(-r));
		goto fail;
	}
	if (!(ix->idx.exports = calloc(ix->cfg->nexports + 1,
				       sizeof(*ix->idx.exports)))) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < ix->cfg->nexports; i++) {
		struct idx_export *e = &ix->idx.exports[i];

		e->tag = strdup(ix->cfg->exports[i].tag);
		e->path = strdup(ix->cfg->exports[i].path);
		ix->idx.nexports++;
		if (!e->tag || !e->path) {
			r = -ENOMEM;
			goto fail;
		}
		e->rootfd = open(e->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (e->rootfd < 0)
			svc->log(XENFS_LOG_WARNING, "indexer: export %s: "
				 "%s: %s", e->tag, e->path, strerror(errno));
	}
	if ((r = idx_open(&ix->idx, db, &rebuilt)) < 0) {
		svc->log(XENFS_LOG_ERR, "indexer: cannot open %s: %s", db,
			 strerror(-r));
		goto fail;
	}
	/* every guest's file names: not for every local user (SQLite gives
	 * the -wal and -shm files the same mode) */
	if (chmod(db, 0640) < 0)
		svc->log(XENFS_LOG_WARNING, "indexer: chmod %s: %s", db,
			 strerror(errno));
	pthread_mutex_lock(&ix->idx.lock);
	r = exports_sync(ix, rebuilt);
	pthread_mutex_unlock(&ix->idx.lock);
	if (r < 0)
		goto fail;
	svc->log(XENFS_LOG_INFO, "indexer: database %s, %zu exports, "
		 "max-text-size %" PRIu64, db, ix->cfg->nexports,
		 ix->idx.max_text);
	if ((r = -pthread_create(&ix->worker, NULL, worker_main, ix)) < 0)
		goto fail;
	ix->worker_started = 1;
	*state = ix;
	return 0;
fail:
	ix_free(ix);
	return r;
}

/*
 * Current metadata of path (1), else what the event says (0: we cannot
 * look), or -1 when the path does not exist any more: a later event
 * (unlink, rename) accounts for it, and indexing the stale record would
 * resurrect a deleted name (dom0 echo records can arrive late).
 */
static int meta_of(struct indexer *ix, const struct xenfs_event *ev,
		   const char *path, struct idx_meta *m)
{
	const struct idx_export *e = idx_export_find(&ix->idx,
						     ev->export_tag);
	int r;

	if (e && e->rootfd >= 0) {
		if ((r = idx_lstat(e->rootfd, path, m)) == 0)
			return 1;
		if (r == -ENOENT || r == -ENOTDIR || r == -ELOOP ||
		    r == -EXDEV)
			return -1;
	}
	memset(m, 0, sizeof(*m));
	m->type = ev->mode ? idx_type_of_mode(ev->mode) :
		  ev->op == XENFS_EV_MKDIR ? 'd' :
		  ev->op == XENFS_EV_SYMLINK ? 'l' : 'f';
	m->size = ev->size;
	m->mode = ev->mode;
	m->mtime = ev->mtime_sec;
	m->mtime_nsec = ev->mtime_nsec;
	m->dev = ev->dev;
	m->ino = ev->ino;
	return 0;
}

static int apply(struct indexer *ix, const struct xenfs_event *ev)
{
	struct idx *idx = &ix->idx;
	const char *tag = ev->export_tag;
	struct idx_meta m;
	uint64_t n;
	int64_t gen;
	int r = 0, moved, changed;

	if (!*tag || !idx_export_find(idx, tag) || ev->path[0] != '/')
		return 0;	/* not an export we index */
	/* the export root itself is never created, moved or removed by a
	 * file operation: do not let such a record wipe the export */
	if ((!strcmp(ev->path, "/") || !strcmp(ev->path2, "/")) &&
	    ev->op != XENFS_EV_SETATTR && ev->op != XENFS_EV_XATTR &&
	    ev->op != XENFS_EV_MODIFY)
		return 0;
	gen = idx_export_gen(idx, tag);
	switch (ev->op) {
	case XENFS_EV_CREATE:
	case XENFS_EV_MKDIR:
	case XENFS_EV_MKNOD:
	case XENFS_EV_SYMLINK:
	case XENFS_EV_MODIFY:
	case XENFS_EV_SETATTR:
	case XENFS_EV_XATTR:
		if (!strcmp(ev->path, "/"))
			return 0;
		if (meta_of(ix, ev, ev->path, &m) < 0)
			return 0;
		changed = ev->op != XENFS_EV_XATTR &&
			  (ev->op != XENFS_EV_SETATTR ||
			   (ev->flags & XENFS_EV_F_SIZE));
		r = idx_put(idx, tag, ev->path, strlen(ev->path), &m, gen,
			    changed);
		/* a directory that appeared from outside (dom0 move-in)
		 * may hold anything: crawl it */
		if (r == 0 && m.type == 'd' && ev->op != XENFS_EV_SETATTR &&
		    ev->op != XENFS_EV_XATTR &&
		    ev->origin != XENFS_ORIGIN_GUEST)
			r = idx_queue_add(idx, tag, ev->path,
					  strlen(ev->path));
		break;
	case XENFS_EV_LINK:
		if (ev->path2[0] != '/')
			return 0;
		if (meta_of(ix, ev, ev->path2, &m) < 0)
			return 0;
		r = idx_put(idx, tag, ev->path2, strlen(ev->path2), &m, gen,
			    1);
		break;
	case XENFS_EV_RENAME:
		if (ev->path2[0] != '/')
			return 0;
		if (ev->flags & XENFS_EV_F_EXCHANGE) {
			r = idx_exchange(idx, tag, ev->path, ev->path2);
			if (r == 0 && meta_of(ix, ev, ev->path, &m) >= 0)
				r = idx_put(idx, tag, ev->path,
					    strlen(ev->path), &m, gen, 0);
		} else {
			r = idx_rename(idx, tag, ev->path, ev->path2, &moved);
			if (r == 0 && !moved &&
			    meta_of(ix, ev, ev->path2, &m) >= 0 &&
			    m.type == 'd')
				/* we never saw the source: crawl the
				 * target's subtree */
				r = idx_queue_add(idx, tag, ev->path2,
						  strlen(ev->path2));
		}
		if (r == 0 && meta_of(ix, ev, ev->path2, &m) >= 0)
			r = idx_put(idx, tag, ev->path2, strlen(ev->path2),
				    &m, gen, 0);
		break;
	case XENFS_EV_UNLINK:
	case XENFS_EV_RMDIR:
		r = idx_del(idx, tag, ev->path, strlen(ev->path), &n);
		break;
	default:
		break;		/* freeze, thaw, resync: not file changes */
	}
	return r;
}

static int ix_on_event(void *state, const struct xenfs_event *const *batch,
		       size_t n)
{
	struct indexer *ix = state;
	char v[32];
	int r;

	pthread_mutex_lock(&ix->idx.lock);
	if ((r = maybe_rebuild(ix)) < 0)
		goto out;
	if ((r = idx_begin(&ix->idx)) < 0)
		goto out;
	for (size_t i = 0; i < n && r == 0; i++)
		r = apply(ix, batch[i]);
	if (r == 0) {
		snprintf(v, sizeof(v), "%" PRIu64, batch[n - 1]->seq);
		r = idx_meta_set(&ix->idx, "last_seq", v);
	}
	if (r == 0) {
		snprintf(v, sizeof(v), "%" PRId64, batch[n - 1]->time_ns);
		r = idx_meta_set(&ix->idx, "last_time_ns", v);
	}
	if (r == 0)
		r = idx_commit(&ix->idx);
	if (r < 0) {
		idx_rollback(&ix->idx);
		goto out;
	}
	/* content of what this batch touched, now rather than later: a
	 * write must be searchable within a second or two */
	for (int i = 0; i < 8 && idx_content_step(&ix->idx, 64, 300) > 0;
	     i++)
		;
out:
	pthread_mutex_unlock(&ix->idx.lock);
	if (r < 0)
		ix->svc->log(XENFS_LOG_WARNING, "indexer: batch of %zu events"
			     " not applied: %s", n, strerror(-r));
	return r;
}

static int ix_on_resync(void *state, const char *domain,
			const char *export_tag)
{
	struct indexer *ix = state;
	int r = 0;

	pthread_mutex_lock(&ix->idx.lock);
	if ((r = idx_begin(&ix->idx)) == 0) {
		for (size_t i = 0; i < ix->idx.nexports; i++)
			if (!*export_tag ||
			    !strcmp(export_tag, ix->idx.exports[i].tag))
				crawl_export(ix, ix->idx.exports[i].tag,
					     "events were lost");
		if ((r = idx_commit(&ix->idx)) < 0)
			idx_rollback(&ix->idx);
	}
	pthread_mutex_unlock(&ix->idx.lock);
	(void)domain;	/* we index per export: every VM's view at once */
	return r;
}

static void ix_fini(void *state)
{
	struct indexer *ix = state;

	pthread_mutex_lock(&ix->stop_lock);
	ix->stop = 1;
	pthread_cond_signal(&ix->stop_cond);
	pthread_mutex_unlock(&ix->stop_lock);
	if (ix->worker_started)
		pthread_join(ix->worker, NULL);
	ix_free(ix);
}

static const struct xenfs_plugin indexer_plugin = {
	.abi_version = XENFS_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct xenfs_plugin),
	.name = "indexer",
	.init = ix_init,
	.on_event = ix_on_event,
	.verdict = NULL,
	.on_resync = ix_on_resync,
	.fini = ix_fini,
};

const struct xenfs_plugin *xenfs_plugin_entry(void)
{
	return &indexer_plugin;
}
