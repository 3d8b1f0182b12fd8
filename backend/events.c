/*
 * xenfsd's side of the operation stream: turns the fs layer's
 * fs_emit_event() calls (and the dom0 watcher's and the control socket's
 * records) into journal appends, keeps the journal flushed once a second
 * and trimmed behind the slowest consumer.
 *
 * Durability contract (docs/stream.md): fs_emit_event() returns after the
 * record was written with write(2) to an O_APPEND segment, before the fs
 * layer releases the reply, so every change a guest saw succeed survives
 * a crash of xenfsd.  A machine crash may lose at most the last second
 * (the sync thread's period); the journal detects that at the next start.
 *
 * In a sandboxed worker process (backend/worker.c) bk_stream_emit sends
 * the record to the parent over the stream channel and waits for the
 * append; the parent's channel thread calls bk_stream_emit itself.
 *
 * Threads: fs_emit_event() and bk_stream_emit() run on any thread (queue
 * workers, the watcher, the control thread); the writer's mutex orders
 * them.  bk_stream_start/stop run on the main thread, before the first
 * connection and after the last one.  One extra thread ("stream-sync")
 * fdatasyncs and trims.
 *
 * Trust: paths come from the fs layer, which built them from names it
 * validated; they are still guest-chosen bytes and stored verbatim.
 */
#include <errno.h>
#include <unistd.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bk.h"
#include "log.h"
#include "priv.h"
#include "stream.h"

static struct xf_stream_writer *stream_w;
static pthread_t stream_thr;
static int stream_thr_running;
static pthread_mutex_t stream_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stream_cond = PTHREAD_COND_INITIALIZER;
static int stream_quit;
static struct log_ratelimit stream_rl = LOG_RATELIMIT_INIT;
static char stream_dir[PATH_MAX];

#define STREAM_SYNC_MS		1000
#define STREAM_TRIM_EVERY	10	/* sync periods */

const char *bk_stream_dir(void)
{
	return stream_dir[0] ? stream_dir : NULL;
}

uint64_t bk_stream_head(void)
{
	return stream_w ? xf_stream_head(stream_w) : 0;
}

int bk_stream_emit(struct xenfs_event *ev)
{
	int r;

	/* a worker's events go through its parent, which owns the journal
	 * (and notes them for the dom0 watcher) */
	if (bk_is_worker())
		return bk_worker_emit(ev);
	if (stream_w == NULL)
		return -ENOTCONN;
	r = xf_stream_append(stream_w, ev);
	if (r < 0)
		log_warnx_rl(&stream_rl, "stream: cannot append %s event for "
			     "%s:%s%s: %s", xenfs_event_op_name(ev->op),
			     ev->domain ? ev->domain : "",
			     ev->export_tag ? ev->export_tag : "",
			     ev->path ? ev->path : "", strerror(-r));
	return r;
}

void fs_emit_event(struct fs_session *s, const struct fs_event *fe)
{
	struct xenfs_event ev;

	memset(&ev, 0, sizeof(ev));
	/* fs_event_op and xenfs_event_op share values 1..11 (checked below) */
	ev.op = (uint32_t)fe->op;
	ev.flags = fe->flags;
	ev.origin = XENFS_ORIGIN_GUEST;
	ev.mode = fe->mode;
	ev.dev = fe->dev;
	ev.ino = fe->ino;
	ev.generation = fe->generation;
	ev.size = fe->size;
	ev.mtime_sec = fe->mtime_sec;
	ev.mtime_nsec = fe->mtime_nsec;
	ev.domain = fs_session_domain(s);
	ev.export_tag = fs_session_export(s);
	ev.path = fe->path ? fe->path : "";
	ev.path2 = fe->path2 ? fe->path2 : "";
	/* tell the dom0 watcher this change is ours, not dom0's */
	bk_dom0watch_note(ev.export_tag, ev.path);
	if (fe->path2)
		bk_dom0watch_note(ev.export_tag, fe->path2);
	(void)bk_stream_emit(&ev);	/* never fails the operation */
}

_Static_assert((int)FS_EV_CREATE == XENFS_EV_CREATE &&
	       (int)FS_EV_MKDIR == XENFS_EV_MKDIR &&
	       (int)FS_EV_MKNOD == XENFS_EV_MKNOD &&
	       (int)FS_EV_SYMLINK == XENFS_EV_SYMLINK &&
	       (int)FS_EV_LINK == XENFS_EV_LINK &&
	       (int)FS_EV_MODIFY == XENFS_EV_MODIFY &&
	       (int)FS_EV_SETATTR == XENFS_EV_SETATTR &&
	       (int)FS_EV_RENAME == XENFS_EV_RENAME &&
	       (int)FS_EV_UNLINK == XENFS_EV_UNLINK &&
	       (int)FS_EV_RMDIR == XENFS_EV_RMDIR &&
	       (int)FS_EV_XATTR == XENFS_EV_XATTR &&
	       FS_EV_F_SIZE == XENFS_EV_F_SIZE &&
	       FS_EV_F_EXCHANGE == XENFS_EV_F_EXCHANGE,
	       "fs.h event ops must match <xenfs/event.h>");

static void *stream_sync_main(void *arg)
{
	unsigned n = 0;
	int r;

	pthread_mutex_lock(&stream_lock);
	while (!stream_quit) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += STREAM_SYNC_MS / 1000;
		pthread_cond_timedwait(&stream_cond, &stream_lock, &ts);
		if (stream_quit)
			break;
		pthread_mutex_unlock(&stream_lock);
		if ((r = xf_stream_sync(stream_w)) < 0)
			log_warnx_rl(&stream_rl, "stream: fdatasync: %s",
				     strerror(-r));
		if (++n % STREAM_TRIM_EVERY == 0 &&
		    (r = xf_stream_trim(stream_w)) < 0)
			log_warnx_rl(&stream_rl, "stream: trim: %s",
				     strerror(-r));
		pthread_mutex_lock(&stream_lock);
	}
	pthread_mutex_unlock(&stream_lock);
	return NULL;
}

/* Sizes from [services] journal-max: segments are 1/16 of it, 4K..64M. */
static void stream_opts(const struct xf_config *cfg,
			struct xf_stream_wopts *o)
{
	const char *v = xf_config_get(cfg, "services", "journal-max");
	uint64_t max = 1ull << 30;

	if (v && xf_parse_size(v, &max) < 0) {
		log_warnx("stream: bad journal-max '%s': using 1G", v);
		max = 1ull << 30;
	}
	o->journal_max = max;
	o->segment_max = max / 16;
	if (o->segment_max < 4096)
		o->segment_max = 4096;
	if (o->segment_max > (64ull << 20))
		o->segment_max = 64ull << 20;
}

int bk_stream_start(const struct xf_config *cfg)
{
	struct xf_stream_wopts o;
	const char *v;
	int r;

	if (stream_w)
		return 0;
	v = getenv("XENFS_NO_STREAM");
	if (v && !strcmp(v, "1")) {
		/* benchmarks only (tests/bench/40-stream.sh): measures what
		 * the stream costs.  Services miss every change. */
		log_warnx("stream: DISABLED by XENFS_NO_STREAM=1: no events "
			  "are recorded");
		return 0;
	}
	snprintf(stream_dir, sizeof(stream_dir), "%s/journal",
		 cfg->global.state_dir);
	stream_opts(cfg, &o);
	r = xf_stream_writer_open(stream_dir, &o, &stream_w);
	/* A previous xenfsd that was just killed (kill -9, systemd restart)
	 * may still be exiting and holding the journal lock: wait for it a
	 * little before calling the state-dir taken. */
	for (int i = 0; r == -EWOULDBLOCK && i < 50; i++) {
		if (i == 0)
			log_info("stream: journal %s is locked; waiting up to "
				 "5 s for the previous xenfsd to exit",
				 stream_dir);
		usleep(100 * 1000);
		r = xf_stream_writer_open(stream_dir, &o, &stream_w);
	}
	if (r < 0) {
		log_warnx("stream: cannot open journal %s: %s%s", stream_dir,
			  strerror(-r), r == -EWOULDBLOCK ?
			  " (another xenfsd uses this state-dir)" : "");
		stream_dir[0] = '\0';
		return r;
	}
	stream_quit = 0;
	r = pthread_create(&stream_thr, NULL, stream_sync_main, NULL);
	if (r != 0) {
		log_warnx("stream: cannot start sync thread: %s", strerror(r));
		xf_stream_writer_close(stream_w);
		stream_w = NULL;
		return -r;
	}
	stream_thr_running = 1;
	log_info("stream: journal %s, head %llu", stream_dir,
		 (unsigned long long)xf_stream_head(stream_w));
	r = bk_dom0watch_start(cfg);
	if (r < 0)
		log_warnx("stream: dom0 watcher not started: %s: changes made "
			  "in dom0 will not be in the stream", strerror(-r));
	return 0;
}

void bk_stream_stop(void)
{
	bk_dom0watch_stop();
	if (stream_thr_running) {
		pthread_mutex_lock(&stream_lock);
		stream_quit = 1;
		pthread_cond_signal(&stream_cond);
		pthread_mutex_unlock(&stream_lock);
		pthread_join(stream_thr, NULL);
		stream_thr_running = 0;
	}
	if (stream_w) {
		(void)xf_stream_trim(stream_w);
		xf_stream_writer_close(stream_w);
		stream_w = NULL;
	}
}
