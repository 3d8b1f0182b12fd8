/*
 * Dom0-side changes: follows every export's tree with inotify (plain
 * inotify(7); one watch per directory, added as directories appear) and
 * appends origin-dom0 records to the operation stream, so that services
 * see changes made on the host directly in an export.
 *
 * Echo suppression: the fs layer's own operations also trigger inotify.
 * fs_emit_event() calls bk_dom0watch_note(export, path) for every record
 * it writes; the watcher holds each inotify event for HOLD_MS (so a note
 * that races behind its inotify event still arrives first) and drops it
 * when the same (export, path) was noted within ECHO_MS.  Limitations
 * (docs/stream.md): a dom0 change to a path a guest changed within
 * ECHO_MS is lost as an echo; a guest open-for-write that writes nothing
 * shows as a dom0 modify (no fs record to match its IN_CLOSE_WRITE);
 * the note table is a fixed-size hash, so under heavy load an echo may
 * slip through as a dom0 record (harmless for consumers: a spurious
 * modify).  An inotify queue overflow or watch-limit exhaustion becomes
 * a RESYNC record for the export.
 *
 * Threads: one watcher thread owns the inotify fd, the watch table and
 * the pending queue; bk_dom0watch_note runs on queue workers and touches
 * only the note table (its own mutex).  Start/stop on the main thread.
 *
 * Trust: names come from dom0's own filesystem (possibly created by a
 * guest earlier); stored verbatim, bounded in length.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xenfs/event.h>

#include "bk.h"
#include "log.h"

#define HOLD_MS		150
#define ECHO_MS		2000
#define BATCH_MS	20	/* sleep after a read, so reads batch */
#define NOTE_SLOTS	8192	/* power of two */
#define MAX_WATCHES	65536
#define WATCH_MASK	(IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | \
			 IN_CLOSE_WRITE | IN_ATTRIB | IN_DONT_FOLLOW | \
			 IN_EXCL_UNLINK | IN_ONLYDIR)

struct note {
	uint64_t hash;
	int64_t ms;
};

static struct note notes[NOTE_SLOTS];
static pthread_mutex_t note_lock = PTHREAD_MUTEX_INITIALIZER;
static int dw_active;		/* notes are only kept while watching */

struct wexport {
	char *tag;
	char *root;		/* absolute host path */
};

struct watch {
	int wd;
	int exp;		/* index into exps */
	char *rel;		/* "" for the root, else "/a/b" */
};

struct pend {
	int64_t ms;
	uint32_t mask, cookie;
	int exp;
	char *path;		/* export-relative */
};

static struct wexport *exps;
static size_t nexps;
static struct watch *watches;
static size_t nwatches;
static struct pend *pend;
static size_t npend, cappend;
static int ino_fd = -1;
static int stop_pipe[2] = { -1, -1 };
static pthread_t dw_thr;
static int dw_running;
static struct log_ratelimit dw_rl = LOG_RATELIMIT_INIT;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t note_hash(const char *tag, const char *path)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (; *tag; tag++)
		h = (h ^ (unsigned char)*tag) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull;
	for (; *path; path++)
		h = (h ^ (unsigned char)*path) * 1099511628211ull;
	return h | 1;	/* 0 marks an empty slot */
}

void bk_dom0watch_note(const char *export_tag, const char *path)
{
	uint64_t h;

	if (!dw_active || !export_tag || !path)
		return;
	h = note_hash(export_tag, path);
	pthread_mutex_lock(&note_lock);
	notes[h & (NOTE_SLOTS - 1)].hash = h;
	notes[h & (NOTE_SLOTS - 1)].ms = now_ms();
	pthread_mutex_unlock(&note_lock);
}

static int note_recent(const char *tag, const char *path)
{
	uint64_t h = note_hash(tag, path);
	struct note n;

	pthread_mutex_lock(&note_lock);
	n = notes[h & (NOTE_SLOTS - 1)];
	pthread_mutex_unlock(&note_lock);
	return n.hash == h && now_ms() - n.ms <= ECHO_MS;
}

/* ---- watch table (watcher thread only, after start) ---- */

static struct watch *watch_find(int wd)
{
	for (size_t i = 0; i < nwatches; i++)
		if (watches[i].wd == wd)
			return &watches[i];
	return NULL;
}

static void emit(int exp, uint32_t op, const char *path, const char *path2)
{
	struct xenfs_event ev;
	char full[PATH_MAX];
	struct stat st;

	memset(&ev, 0, sizeof(ev));
	ev.op = op;
	ev.origin = XENFS_ORIGIN_DOM0;
	ev.domain = "";
	ev.export_tag = exps[exp].tag;
	ev.path = path;
	ev.path2 = path2 ? path2 : "";
	snprintf(full, sizeof(full), "%s%s", exps[exp].root,
		 path2 ? path2 : path);
	if (op != XENFS_EV_UNLINK && op != XENFS_EV_RMDIR &&
	    op != XENFS_EV_RESYNC && lstat(full, &st) == 0) {
		ev.dev = st.st_dev;
		ev.ino = st.st_ino;
		ev.size = (uint64_t)st.st_size;
		ev.mtime_sec = st.st_mtim.tv_sec;
		ev.mtime_nsec = (uint32_t)st.st_mtim.tv_nsec;
		ev.mode = st.st_mode;
	}
	(void)bk_stream_emit(&ev);
}

static void resync(int exp, const char *why)
{
	log_warnx_rl(&dw_rl, "dom0watch: %s: %s: consumers must re-crawl",
		     exps[exp].tag, why);
	emit(exp, XENFS_EV_RESYNC, "", NULL);
}

/* Watch dir rel (and, recursively, its subdirectories). */
static void watch_tree(int exp, const char *rel, int depth)
{
	char full[PATH_MAX];
	struct watch *w, *nw;
	DIR *d;
	struct dirent *de;
	int wd;

	if (depth > 64)
		return;
	if (snprintf(full, sizeof(full), "%s%s", exps[exp].root, rel) >=
	    (int)sizeof(full))
		return;
	if (nwatches >= MAX_WATCHES) {
		resync(exp, "too many directories to watch");
		return;
	}
	wd = inotify_add_watch(ino_fd, full, WATCH_MASK);
	if (wd < 0) {
		if (errno == ENOSPC)
			resync(exp, "inotify watch limit reached "
			       "(fs.inotify.max_user_watches)");
		return;
	}
	if ((w = watch_find(wd)) != NULL) {
		char *r = strdup(rel);
		if (r) {
			free(w->rel);
			w->rel = r;
		}
	} else {
		nw = realloc(watches, (nwatches + 1) * sizeof(*nw));
		if (nw == NULL)
			return;
		watches = nw;
		w = &watches[nwatches];
		if ((w->rel = strdup(rel)) == NULL)
			return;
		w->wd = wd;
		w->exp = exp;
		nwatches++;
	}
	if ((d = opendir(full)) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char sub[PATH_MAX];

		if (de->d_type != DT_DIR || !strcmp(de->d_name, ".") ||
		    !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", rel, de->d_name) <
		    (int)sizeof(sub))
			watch_tree(exp, sub, depth + 1);
	}
	closedir(d);
}

/* A directory moved: rewrite the rel paths of its watches. */
static void watch_rename(int exp, const char *from, const char *to)
{
	size_t fl = strlen(from);

	for (size_t i = 0; i < nwatches; i++) {
		struct watch *w = &watches[i];
		char *n;

		if (w->exp != exp || strncmp(w->rel, from, fl) ||
		    (w->rel[fl] != '\0' && w->rel[fl] != '/'))
			continue;
		if (asprintf(&n, "%s%s", to, w->rel + fl) < 0)
			continue;
		free(w->rel);
		w->rel = n;
	}
}

static void watch_drop(int wd)
{
	for (size_t i = 0; i < nwatches; i++)
		if (watches[i].wd == wd) {
			free(watches[i].rel);
			watches[i] = watches[--nwatches];
			return;
		}
}

/* ---- event processing ---- */

static void pend_add(uint32_t mask, uint32_t cookie, int exp, char *path)
{
	if (npend == cappend) {
		size_t nc = cappend ? cappend * 2 : 64;
		struct pend *np = realloc(pend, nc * sizeof(*np));
		if (np == NULL) {
			free(path);
			resync(exp, "out of memory");
			return;
		}
		pend = np;
		cappend = nc;
	}
	pend[npend].ms = now_ms();
	pend[npend].mask = mask;
	pend[npend].cookie = cookie;
	pend[npend].exp = exp;
	pend[npend].path = path;
	npend++;
}

static void read_events(void)
{
	char buf[16384] __attribute__((aligned(8)));
	ssize_t n;

	while ((n = read(ino_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ie = (struct inotify_event *)p;
			struct watch *w;
			char *path;

			p += sizeof(*ie) + ie->len;
			if (ie->mask & IN_Q_OVERFLOW) {
				for (size_t e = 0; e < nexps; e++)
					resync((int)e, "inotify queue overflow");
				continue;
			}
			if (ie->mask & IN_IGNORED) {
				watch_drop(ie->wd);
				continue;
			}
			if ((w = watch_find(ie->wd)) == NULL || ie->len == 0)
				continue;
			if (asprintf(&path, "%s/%s", w->rel, ie->name) < 0)
				continue;
			pend_add(ie->mask, ie->cookie, w->exp, path);
		}
	}
}

static uint32_t create_op(int exp, const char *path, uint32_t mask)
{
	char full[PATH_MAX];
	struct stat st;

	if (mask & IN_ISDIR)
		return XENFS_EV_MKDIR;
	snprintf(full, sizeof(full), "%s%s", exps[exp].root, path);
	if (lstat(full, &st) < 0 || S_ISREG(st.st_mode))
		return XENFS_EV_CREATE;
	if (S_ISLNK(st.st_mode))
		return XENFS_EV_SYMLINK;
	return XENFS_EV_MKNOD;
}

/* Handle pending events older than HOLD_MS, in order. */
static void process(int all)
{
	int64_t now = now_ms();
	size_t i = 0;

	while (i < npend && (all || now - pend[i].ms >= HOLD_MS)) {
		struct pend *e = &pend[i];
		const char *tag = exps[e->exp].tag;
		int echo = note_recent(tag, e->path);
		size_t used = 1;

		if (e->mask & IN_MOVED_FROM) {
			/* pair with the MOVED_TO of the same cookie */
			struct pend *to = NULL;
			for (size_t j = i + 1; j < npend && j < i + 8; j++)
				if ((pend[j].mask & IN_MOVED_TO) &&
				    pend[j].cookie == e->cookie) {
					to = &pend[j];
					break;
				}
			if (to == NULL && !all && now - e->ms < HOLD_MS * 2)
				break;	/* its partner may still come */
			if (to && to->exp == e->exp) {
				if (e->mask & IN_ISDIR)
					watch_rename(e->exp, e->path, to->path);
				if (!echo && !note_recent(tag, to->path))
					emit(e->exp, XENFS_EV_RENAME, e->path,
					     to->path);
				to->mask = 0;	/* consumed */
			} else if (!echo) {
				emit(e->exp, (e->mask & IN_ISDIR) ?
				     XENFS_EV_RMDIR : XENFS_EV_UNLINK,
				     e->path, NULL);
			}
		} else if (e->mask & IN_MOVED_TO) {
			if (e->mask & IN_ISDIR)
				watch_tree(e->exp, e->path, 1);
			if (!echo)
				emit(e->exp, (e->mask & IN_ISDIR) ?
				     XENFS_EV_MKDIR : XENFS_EV_CREATE,
				     e->path, NULL);
		} else if (e->mask & IN_CREATE) {
			if (e->mask & IN_ISDIR)
				watch_tree(e->exp, e->path, 1);
			if (!echo)
				emit(e->exp, create_op(e->exp, e->path,
						       e->mask), e->path, NULL);
		} else if (e->mask & IN_DELETE) {
			if (!echo)
				emit(e->exp, (e->mask & IN_ISDIR) ?
				     XENFS_EV_RMDIR : XENFS_EV_UNLINK,
				     e->path, NULL);
		} else if (e->mask & IN_CLOSE_WRITE) {
			if (!echo)
				emit(e->exp, XENFS_EV_MODIFY, e->path, NULL);
		} else if (e->mask & IN_ATTRIB) {
			if (!echo)
				emit(e->exp, XENFS_EV_SETATTR, e->path, NULL);
		}
		(void)used;
		free(e->path);
		i++;
	}
	if (i) {
		memmove(pend, pend + i, (npend - i) * sizeof(*pend));
		npend -= i;
	}
}

static void *dw_main(void *arg)
{
	struct pollfd pfd[2];

	pfd[0].fd = ino_fd;
	pfd[0].events = POLLIN;
	pfd[1].fd = stop_pipe[0];
	pfd[1].events = POLLIN;
	for (;;) {
		int n = poll(pfd, 2, npend ? HOLD_MS / 3 : -1);

		if (n < 0 && errno != EINTR) {
			log_warn("dom0watch: poll");
			break;
		}
		if (pfd[1].revents)
			break;
		if (n > 0 && pfd[0].revents) {
			read_events();
			/* let events gather: a guest's metadata burst makes
			 * one inotify event per operation, and waking for
			 * each costs the workers CPU time.  Holding them
			 * longer is harmless (HOLD_MS counts from the read) */
			(void)poll(&pfd[1], 1, BATCH_MS);
		}
		process(0);
	}
	process(1);
	return NULL;
}

int bk_dom0watch_start(const struct xf_config *cfg)
{
	int r;

	if (dw_running)
		return 0;
	if ((ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0)
		return -errno;
	if (pipe2(stop_pipe, O_CLOEXEC) < 0) {
		r = -errno;
		close(ino_fd);
		ino_fd = -1;
		return r;
	}
	exps = calloc(cfg->nexports ? cfg->nexports : 1, sizeof(*exps));
	if (exps == NULL) {
		bk_dom0watch_stop();
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->nexports; i++) {
		exps[i].tag = strdup(cfg->exports[i].tag);
		exps[i].root = strdup(cfg->exports[i].path);
		if (!exps[i].tag || !exps[i].root) {
			bk_dom0watch_stop();
			return -ENOMEM;
		}
		nexps++;
		watch_tree((int)i, "", 0);
	}
	dw_active = 1;
	if ((r = pthread_create(&dw_thr, NULL, dw_main, NULL)) != 0) {
		bk_dom0watch_stop();
		return -r;
	}
	dw_running = 1;
	log_info("dom0watch: watching %zu director%s in %zu export(s)",
		 nwatches, nwatches == 1 ? "y" : "ies", nexps);
	return 0;
}

void bk_dom0watch_stop(void)
{
	if (dw_running) {
		if (write(stop_pipe[1], "x", 1) < 0)
			log_warn("dom0watch: stop");
		pthread_join(dw_thr, NULL);
		dw_running = 0;
	}
	dw_active = 0;
	for (size_t i = 0; i < nwatches; i++)
		free(watches[i].rel);
	free(watches);
	watches = NULL;
	nwatches = 0;
	for (size_t i = 0; i < npend; i++)
		free(pend[i].path);
	free(pend);
	pend = NULL;
	npend = cappend = 0;
	for (size_t i = 0; i < nexps; i++) {
		free(exps[i].tag);
		free(exps[i].root);
	}
	free(exps);
	exps = NULL;
	nexps = 0;
	for (int i = 0; i < 2; i++)
		if (stop_pipe[i] >= 0) {
			close(stop_pipe[i]);
			stop_pipe[i] = -1;
		}
	if (ino_fd >= 0) {
		close(ino_fd);
		ino_fd = -1;
	}
}
