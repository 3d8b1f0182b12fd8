/*
 * xenfsd's main event loop: one epoll set, a table of watchers indexed by
 * descriptor, and a deferred-call queue that other threads use to hand
 * work to the main thread (Redis ae.c sized on purpose).
 *
 * Concurrency: everything here except bk_loop_defer*() runs on the main
 * thread.  bk_loop_defer() and bk_loop_defer_node() may be called from
 * any thread: they append to a queue under defer_lock and write an
 * eventfd; the main thread drains the queue from the loop.
 *
 * Re-entrancy rules (callbacks rely on them):
 *  - A callback may bk_loop_del() any descriptor, its own included, and
 *    may close it afterwards.  Events of the same epoll_wait batch for a
 *    deleted descriptor are dropped: every registration carries a
 *    generation number in its epoll data, and a stale one is ignored, so
 *    an fd number reused by a bk_loop_add() inside the batch never gets
 *    the old registration's events.
 *  - A callback may bk_loop_add() new descriptors; they are reported from
 *    the next epoll_wait on.
 *  - A deferred function may defer again; it runs on a later iteration
 *    (the queue is detached before running it, so no livelock).
 *  - bk_loop_stop() takes effect after the current batch.
 *
 * Trust: only our own descriptors; no guest input is parsed here.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "bk.h"
#include "log.h"

struct watcher {
	bk_loop_cb cb;			/* NULL: slot free */
	void *arg;
	uint32_t gen;
};

struct defer_item {
	struct defer_item *next;
	void (*fn)(void *arg);
	void *arg;
};

static int ep_fd = -1;
static int defer_efd = -1;
static struct watcher *watchers;
static size_t nwatchers;
static uint32_t next_gen = 1;
static int loop_running;

/* The defer queue: allocated items and caller-owned nodes share a FIFO. */
static pthread_mutex_t defer_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bk_defer *defer_head, *defer_tail;

static void defer_drain(int fd, uint32_t events, void *arg);

int bk_loop_init(void)
{
	if (ep_fd >= 0)
		return 0;
	ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (ep_fd < 0)
		return -errno;
	defer_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (defer_efd < 0) {
		int e = -errno;

		close(ep_fd);
		ep_fd = -1;
		return e;
	}
	return bk_loop_add(defer_efd, EPOLLIN, defer_drain, NULL);
}

static int watcher_grow(int fd)
{
	size_t n = nwatchers ? nwatchers : 64;
	struct watcher *w;

	while (n <= (size_t)fd)
		n *= 2;
	w = realloc(watchers, n * sizeof(*w));
	if (!w)
		return -ENOMEM;
	memset(w + nwatchers, 0, (n - nwatchers) * sizeof(*w));
	watchers = w;
	nwatchers = n;
	return 0;
}

int bk_loop_add(int fd, uint32_t events, bk_loop_cb cb, void *arg)
{
	struct epoll_event ev;
	int r;

	if (fd < 0 || !cb)
		return -EINVAL;
	if (ep_fd < 0 && (r = bk_loop_init()) < 0)
		return r;
	if ((size_t)fd >= nwatchers && (r = watcher_grow(fd)) < 0)
		return r;
	if (watchers[fd].cb)
		return -EEXIST;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u64 = (uint64_t)next_gen << 32 | (uint32_t)fd;
	if (epoll_ctl(ep_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	watchers[fd].cb = cb;
	watchers[fd].arg = arg;
	watchers[fd].gen = next_gen++;
	if (next_gen == 0)
		next_gen = 1;
	return 0;
}

int bk_loop_mod(int fd, uint32_t events)
{
	struct epoll_event ev;

	if (fd < 0 || (size_t)fd >= nwatchers || !watchers[fd].cb)
		return -ENOENT;
	memset(&ev, 0, sizeof(ev));
	ev.events = events;
	ev.data.u64 = (uint64_t)watchers[fd].gen << 32 | (uint32_t)fd;
	if (epoll_ctl(ep_fd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	return 0;
}

void bk_loop_del(int fd)
{
	if (fd < 0 || (size_t)fd >= nwatchers || !watchers[fd].cb)
		return;
	/* the descriptor may already be closed by its owner: ignore errors */
	(void)epoll_ctl(ep_fd, EPOLL_CTL_DEL, fd, NULL);
	watchers[fd].cb = NULL;
	watchers[fd].arg = NULL;
	watchers[fd].gen = 0;
}

/* ---- deferred calls ---- */

static void defer_kick(void)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is saturated: a wakeup is pending anyway */
	(void)!write(defer_efd, &one, sizeof(one));
}

int bk_loop_defer_node(struct bk_defer *d)
{
	if (!d || !d->fn)
		return -EINVAL;
	pthread_mutex_lock(&defer_lock);
	if (!d->queued) {
		d->next = NULL;
		d->queued = 1;
		if (defer_tail)
			defer_tail->next = d;
		else
			defer_head = d;
		defer_tail = d;
	}
	pthread_mutex_unlock(&defer_lock);
	if (defer_efd >= 0)
		defer_kick();
	return 0;
}

void bk_loop_defer_cancel(struct bk_defer *d)
{
	struct bk_defer **pp, *prev = NULL;

	pthread_mutex_lock(&defer_lock);
	if (d->queued) {
		for (pp = &defer_head; *pp; prev = *pp, pp = &(*pp)->next) {
			if (*pp != d)
				continue;
			*pp = d->next;
			if (defer_tail == d)
				defer_tail = prev;
			break;
		}
		d->queued = 0;
		d->next = NULL;
	}
	pthread_mutex_unlock(&defer_lock);
}

/* Allocated nodes free themselves after running. */
struct defer_alloc {
	struct bk_defer node;
	void (*fn)(void *arg);
	void *arg;
};

static void defer_alloc_run(void *arg)
{
	struct defer_alloc *a = arg;
	void (*fn)(void *) = a->fn;
	void *fnarg = a->arg;

	free(a);
	fn(fnarg);
}

int bk_loop_defer(void (*fn)(void *arg), void *arg)
{
	struct defer_alloc *a;

	if (!fn)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->fn = fn;
	a->arg = arg;
	a->node.fn = defer_alloc_run;
	a->node.arg = a;
	return bk_loop_defer_node(&a->node);
}

/* Unqueue the oldest deferral and run it; 0 if none was queued. */
static int defer_run_one(void)
{
	void (*fn)(void *) = NULL;
	void *fnarg = NULL;
	struct bk_defer *d;

	pthread_mutex_lock(&defer_lock);
	d = defer_head;
	if (d) {
		defer_head = d->next;
		if (!defer_head)
			defer_tail = NULL;
		d->next = NULL;
		d->queued = 0;
		fn = d->fn;
		fnarg = d->arg;
	}
	pthread_mutex_unlock(&defer_lock);
	if (!d)
		return 0;
	/* d may be freed by fn (allocated nodes, stopped conns) */
	fn(fnarg);
	return 1;
}

static void defer_drain(int fd, uint32_t events, void *arg)
{
	uint64_t v;

	(void)!read(fd, &v, sizeof(v));	/* EAGAIN: spurious, harmless */
	/* Run only what is queued now; new deferrals wake us again. */
	while (defer_run_one() && loop_running)
		;
}

/* ---- running ---- */

int bk_loop_run(void)
{
	struct epoll_event evs[64];
	int n, i, r;

	if (ep_fd < 0 && (r = bk_loop_init()) < 0)
		return r;
	loop_running = 1;
	/* Deferrals queued before the loop ran (or before init) */
	defer_kick();
	while (loop_running) {
		n = epoll_wait(ep_fd, evs, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_warn("epoll_wait");
			return -errno;
		}
		for (i = 0; i < n && loop_running; i++) {
			int fd = (int)(uint32_t)evs[i].data.u64;
			uint32_t gen = (uint32_t)(evs[i].data.u64 >> 32);
			struct watcher *w;

			if ((size_t)fd >= nwatchers)
				continue;
			w = &watchers[fd];
			/* deleted (or replaced) earlier in this batch */
			if (!w->cb || w->gen != gen)
				continue;
			w->cb(fd, evs[i].events, w->arg);
		}
	}
	return 0;
}

void bk_loop_stop(void)
{
	loop_running = 0;
}

void bk_loop_run_pending(void)
{
	/* unlike defer_drain, which stops after one call once the loop has
	 * stopped (a callback may have stopped it): the loop is over */
	while (defer_run_one())
		;
}

void bk_loop_free(void)
{
	struct bk_defer *d;

	if (defer_efd >= 0) {
		bk_loop_del(defer_efd);
		close(defer_efd);
		defer_efd = -1;
	}
	if (ep_fd >= 0) {
		close(ep_fd);
		ep_fd = -1;
	}
	/* Drop pending deferrals: only allocated ones are ours to free. */
	pthread_mutex_lock(&defer_lock);
	while ((d = defer_head)) {
		defer_head = d->next;
		d->queued = 0;
		if (d->fn == defer_alloc_run)
			free(d->arg);
	}
	defer_tail = NULL;
	pthread_mutex_unlock(&defer_lock);
	free(watchers);
	watchers = NULL;
	nwatchers = 0;
}
