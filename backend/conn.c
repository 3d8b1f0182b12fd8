/*
 * Guest connections: one struct bk_conn per connected frontend, one worker
 * thread per queue that moves requests from the shared rings to the fs
 * layer and posts the replies back.
 *
 * Threads and locks:
 *  - The main thread creates and stops connections, owns the list
 *    bk_srv.conns (it mutates it under conns_lock so that the control
 *    thread can walk it for freeze/thaw), watches each connection's
 *    peer descriptor, and is the only one that frees a connection's
 *    resources (after joining its workers).
 *  - Worker q is the only consumer of ring q's requests and the only
 *    user of its doorbell's wait side.  Responses of ring q are posted
 *    under q->lock, by the worker or by fs_complete() from any thread
 *    (deferred replies), which also protects the in-flight bitmap.
 *  - c->lock with c->cond guards the freeze state (frozen,
 *    inflight_mut), the control page (ctrl, ctrl_seq) and the stopping
 *    flag as seen by the control thread.  Lock order: c->lock before
 *    q->lock; never the reverse.
 *  - conns_lock guards the list links, refcounts and the set of frozen
 *    domains.  Lock order: conns_lock is never held while taking c->lock.
 *  - A worker that finds the connection broken queues c->stop_node to
 *    the main loop, which stops the connection; workers never free.
 *  - Freeze: a changing request of a frozen domain is parked on its
 *    queue's private list (arguments copied, buffer kept in flight) and
 *    the worker goes on serving the ring; a later request on the same
 *    inode is parked behind it.  After thaw the worker runs the parked
 *    requests in order before taking new ones.  FUSE allows requests
 *    that are outstanding together to complete in any order (a
 *    multi-threaded libfuse server does the same), so this only reorders
 *    what the kernel already treats as concurrent.
 *
 * Trust boundary: the rings and buffers are written by the guest at any
 * time.  Framing checks live in conn_frame.c (see conn_i.h); a framing
 * violation stops only this connection, logged once and rate-limited.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "bk.h"
#include "conn_i.h"
#include "log.h"
#include "priv.h"
#include "ring.h"

/* Optional fs-layer setter (runtime rw -> ro); see fs.h.  Weak so that the
 * backend still links against an fs layer that predates it: conn.c
 * refuses the changing opcodes itself in any case. */
#pragma weak fs_session_set_readonly
#pragma weak fs_session_flush_events

struct bk_queue;

/* One request in flight: the token handed to the fs layer. */
struct bk_slot {
	struct bk_queue *q;
	uint64_t id;
	uint32_t slot;
	uint8_t mutating;	/* counted in c->inflight_mut */
};

/* A request held while its domain is frozen (worker-private list). */
struct bk_parked {
	struct bk_parked *next;
	struct fs_req req;		/* arg points to arg[] below */
	uint64_t id;
	uint32_t slot;
	int mutating;
	uint8_t arg[];
};

struct bk_queue {
	struct bk_conn *c;
	uint32_t idx;
	struct xf_bring ring;
	struct conn_frame fr;
	pthread_mutex_t lock;		/* responses, fr.busy, ring.rsp_* */
	pthread_t thread;
	int started;
	struct bk_slot slots[CONN_MAX_SLOTS];
	struct bk_parked *park_head;	/* worker only */
	struct bk_parked *park_tail;
};

struct bk_conn {
	struct bk_conn *next;
	struct xf_conn *xc;
	char *domain;
	char *tag;
	char *export_path;
	uint32_t domid;
	const char *transport;
	time_t since;
	struct fs_session *fs;
	uint32_t nq;
	struct bk_queue *queues;
	int stop_efd;			/* wakes workers at stop */
	int peer_fd;			/* watched by the main loop, or -1 */
	atomic_int stopping;		/* workers: finish now */
	atomic_int broken;		/* a framing violation was seen */
	atomic_int readonly;
	int stopped;			/* main thread: bk_conn_stop ran */
	int refs;			/* conns_lock */

	pthread_mutex_t lock;		/* freeze state, control page */
	pthread_cond_t cond;
	int frozen;
	uint32_t inflight_mut;
	struct xf_ctrl_back ctrl;
	uint32_t ctrl_seq;

	struct bk_defer stop_node;	/* worker -> main: stop me */
	const char *broken_why;
	void (*on_close)(struct bk_conn *c, void *arg);
	void *on_close_arg;

	/* privilege separation: in a worker, the id the parent knows this
	 * connection by; in the parent, a proxy of (w, rid) */
	uint64_t rid;
	struct bk_worker *w;		/* non-NULL: a proxy */
	char transport_buf[16];
};

static uint64_t next_rid = 1;		/* main thread */

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static char **frozen_domains;		/* conns_lock */
static size_t nfrozen;
static struct log_ratelimit broken_rl = LOG_RATELIMIT_INIT;

/* ---- frozen-domain set (conns_lock held) ---- */

static ssize_t frozen_find(const char *domain)
{
	size_t i;

	for (i = 0; i < nfrozen; i++)
		if (strcmp(frozen_domains[i], domain) == 0)
			return (ssize_t)i;
	return -1;
}

static int frozen_add(const char *domain)
{
	char **n, *d;

	if (frozen_find(domain) >= 0)
		return 0;
	d = strdup(domain);
	if (!d)
		return -ENOMEM;
	n = realloc(frozen_domains, (nfrozen + 1) * sizeof(*n));
	if (!n) {
		free(d);
		return -ENOMEM;
	}
	frozen_domains = n;
	frozen_domains[nfrozen++] = d;
	return 0;
}

static int frozen_remove(const char *domain)
{
	ssize_t i = frozen_find(domain);

	if (i < 0)
		return 0;
	free(frozen_domains[i]);
	frozen_domains[i] = frozen_domains[--nfrozen];
	return 1;
}

/* ---- lifetime ---- */

static void conn_free(struct bk_conn *c)
{
	uint32_t i;

	for (i = 0; c->queues && i < c->nq; i++) {
		pthread_mutex_destroy(&c->queues[i].lock);
		free(c->queues[i].fr.priv);
	}
	free(c->queues);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c->domain);
	free(c->tag);
	free(c->export_path);
	free(c);
}

static void conn_unref(struct bk_conn *c)
{
	int last;

	pthread_mutex_lock(&conns_lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&conns_lock);
	if (last)
		conn_free(c);
}

/* ---- responses ---- */

/* Write a bare FUSE error reply into the shared out area (write-only). */
static uint32_t reply_error(void *out, uint64_t unique, int err)
{
	struct fuse_out_header oh = {
		.len = sizeof(oh),
		.error = err,
		.unique = unique,
	};

	memcpy(out, &oh, sizeof(oh));
	return sizeof(oh);
}

/*
 * Post the reply of a request in flight: any thread.  len 0 means no reply
 * frame (FORGET); the frontend still needs the buffer back.
 */
static void queue_post(struct bk_queue *q, uint32_t slot, uint32_t len)
{
	struct bk_conn *c = q->c;
	struct bk_slot *t = &q->slots[slot];
	struct xenfs_ring_rsp rsp;
	int mutating;

	pthread_mutex_lock(&q->lock);
	rsp.id = t->id;
	rsp.buf = conn_slot_buf(&q->fr, slot);
	rsp.len = len;
	mutating = t->mutating;
	t->mutating = 0;
	xf_bring_put(&q->ring, &rsp);
	conn_slot_release(&q->fr, slot);
	if (xf_bring_push(&q->ring)) {
		int r = xf_conn_notify(c->xc, q->idx);

		if (r < 0 && !atomic_load(&c->stopping))
			log_debug("dom %s: notify queue %u: %s", c->domain,
				  q->idx, strerror(-r));
	}
	pthread_mutex_unlock(&q->lock);
	if (mutating) {
		pthread_mutex_lock(&c->lock);
		if (--c->inflight_mut == 0)
			pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
	}
}

void fs_complete(void *token, uint32_t len)
{
	struct bk_slot *t = token;
	struct bk_queue *q = t->q;

	if (len > q->fr.layout.buf_size) {
		log_warnx("dom %s: fs layer completed with %u bytes, "
			  "buffer holds %u", q->c->domain, len,
			  q->fr.layout.buf_size);
		len = 0;
	}
	queue_post(q, t->slot, len);
}

/* ---- workers ---- */

static void conn_stop_cb(void *arg)
{
	struct bk_conn *c = arg;

	bk_conn_stop(c, c->broken_why ? c->broken_why : "protocol error");
}

/* Worker: the frontend broke the protocol.  Log once, ask main to stop. */
static void conn_break(struct bk_conn *c, uint32_t q, const char *why)
{
	if (atomic_exchange(&c->broken, 1))
		return;
	c->broken_why = why;
	log_warnx_rl(&broken_rl, "dom %s: queue %u: %s; closing connection",
		     c->domain, q, why);
	(void)bk_loop_defer_node(&c->stop_node);	/* never fails */
}

/* The open flags of an OPEN request; 0 if it is not one (or too short:
 * the fs layer rejects that). */
static uint32_t req_open_flags(const struct fs_req *req)
{
	struct fuse_open_in oi;

	if (req->in.opcode != FUSE_OPEN || req->arglen < sizeof(oi))
		return 0;
	memcpy(&oi, req->arg, sizeof(oi));
	return oi.flags;
}

/* A read-only connection refuses every opcode the fs layer marks as
 * changing the export (its table, so the lists cannot drift apart) and an
 * OPEN for writing or with O_TRUNC.  The fs layer refuses them too; this
 * covers a rw -> ro downgrade by reload. */
static int ro_refuses(const struct fs_req *req)
{
	uint32_t fl = req_open_flags(req);

	return fs_opcode_mutates(req->in.opcode) ||
	       (fl & O_ACCMODE) != O_RDONLY || (fl & O_TRUNC);
}

/*
 * Freeze admission of a changing request: 1 admitted (counted in
 * inflight_mut), 0 frozen (the caller parks it).  Checked and counted
 * under one lock so that a freeze that saw inflight_mut == 0 cannot be
 * overtaken by a change.
 */
static int queue_admit(struct bk_conn *c)
{
	int ok;

	pthread_mutex_lock(&c->lock);
	ok = !c->frozen || atomic_load(&c->stopping);
	if (ok)
		c->inflight_mut++;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

static int conn_is_frozen(struct bk_conn *c)
{
	int f;

	pthread_mutex_lock(&c->lock);
	f = c->frozen;
	pthread_mutex_unlock(&c->lock);
	return f;
}

/*
 * Run one decoded request.  admitted: 1 if it changes the export and was
 * counted by queue_admit() (the reply's posting uncounts it).
 */
static void queue_run(struct bk_queue *q, struct fs_req *req, uint64_t id,
		      uint32_t slot, int admitted)
{
	struct bk_conn *c = q->c;
	struct bk_slot *t = &q->slots[slot];
	uint32_t r;

	t->q = q;
	t->id = id;
	t->slot = slot;
	t->mutating = admitted;
	req->token = t;
	if (admitted && atomic_load(&c->stopping))
		/* released by a stop while frozen: never let it through */
		r = reply_error(req->out, req->in.unique, -EIO);
	else if (atomic_load(&c->readonly) && ro_refuses(req))
		r = reply_error(req->out, req->in.unique, -EROFS);
	else
		r = fs_handle(c->fs, req);
	if (r == FS_DEFERRED)
		return;		/* fs_complete() posts it */
	if (r > req->outcap ||
	    (r != 0 && r < sizeof(struct fuse_out_header))) {
		log_warnx("dom %s: fs layer returned a %u-byte reply to "
			  "opcode %u", c->domain, r, req->in.opcode);
		r = reply_error(req->out, req->in.unique, -EIO);
	}
	queue_post(q, slot, r);
}

/*
 * Park a request while the domain is frozen: its arguments are copied
 * (the worker's private buffer is reused), its buffer stays in flight.
 * Returns 0, or -ENOMEM (the caller then waits for thaw instead).
 */
static int queue_park(struct bk_queue *q, const struct fs_req *req,
		      uint64_t id, uint32_t slot, int mutating)
{
	struct bk_parked *pk = malloc(sizeof(*pk) + req->arglen);

	if (!pk)
		return -ENOMEM;
	pk->next = NULL;
	pk->req = *req;
	memcpy(pk->arg, req->arg, req->arglen);
	pk->req.arg = pk->arg;
	pk->id = id;
	pk->slot = slot;
	pk->mutating = mutating;
	if (q->park_tail)
		q->park_tail->next = pk;
	else
		q->park_head = pk;
	q->park_tail = pk;
	return 0;
}

/* A later request touching an inode a parked one touches waits behind it,
 * so per-inode order is kept (a RELEASE never overtakes its WRITE). */
static int queue_parked_node(const struct bk_queue *q, uint64_t nodeid)
{
	const struct bk_parked *pk;

	for (pk = q->park_head; pk; pk = pk->next)
		if (pk->req.in.nodeid == nodeid)
			return 1;
	return 0;
}

/* Run parked requests in order while the domain is not frozen. */
static void queue_unpark(struct bk_queue *q)
{
	struct bk_conn *c = q->c;
	struct bk_parked *pk;
	int admitted;

	while ((pk = q->park_head) && !atomic_load(&c->stopping)) {
		admitted = 0;
		if (pk->mutating) {
			if (!queue_admit(c))
				return;		/* frozen again */
			admitted = 1;
		}
		q->park_head = pk->next;
		if (!q->park_head)
			q->park_tail = NULL;
		queue_run(q, &pk->req, pk->id, pk->slot, admitted);
		free(pk);
	}
}

/* At worker exit: answer what is still parked with EIO. */
static void queue_park_flush(struct bk_queue *q)
{
	struct bk_parked *pk;

	while ((pk = q->park_head)) {
		q->park_head = pk->next;
		q->slots[pk->slot].id = pk->id;
		q->slots[pk->slot].mutating = 0;
		queue_post(q, pk->slot,
			   reply_error(pk->req.out, pk->req.in.unique, -EIO));
		free(pk);
	}
	q->park_tail = NULL;
}

/*
 * Freeze admission for one new request.  Changing requests of a frozen
 * domain are parked, not waited for, so the queue keeps serving reads
 * (and the FLUSH of a process exiting while frozen) meanwhile; a request
 * on an inode with parked requests is parked behind them.
 */
/* Does this request change the export?  The opcode says so, except for
 * an OPEN with O_TRUNC, which truncates (freeze must hold it too). */
static int req_mutates(const struct fs_req *req)
{
	return fs_opcode_mutates(req->in.opcode) ||
	       (req_open_flags(req) & O_TRUNC);
}

static void queue_dispatch(struct bk_queue *q, struct fs_req *req,
			   uint64_t id, uint32_t slot)
{
	struct bk_conn *c = q->c;
	int mutating = req_mutates(req);

	if (q->park_head && queue_parked_node(q, req->in.nodeid) &&
	    queue_park(q, req, id, slot, mutating) == 0)
		return;
	if (!mutating) {
		queue_run(q, req, id, slot, 0);
		return;
	}
	if (queue_admit(c)) {
		queue_run(q, req, id, slot, 1);
		return;
	}
	if (queue_park(q, req, id, slot, 1) == 0)
		return;
	/* out of memory: hold this queue until thaw instead */
	pthread_mutex_lock(&c->lock);
	while (c->frozen && !atomic_load(&c->stopping))
		pthread_cond_wait(&c->cond, &c->lock);
	c->inflight_mut++;
	pthread_mutex_unlock(&c->lock);
	queue_run(q, req, id, slot, 1);
}

/* Handle what the ring holds.  0, or -EPROTO (connection broken). */
static int queue_drain(struct bk_queue *q)
{
	struct bk_conn *c = q->c;
	struct fs_req req;
	const char *why = NULL;
	uint64_t id;
	uint32_t slot;
	int r;

	while (!atomic_load(&c->stopping)) {
		if (q->park_head && !conn_is_frozen(c))
			queue_unpark(q);
		/* under q->lock: xf_bring_get reads rsp_prod_pvt and the
		 * bitmap is shared with fs_complete() posters */
		pthread_mutex_lock(&q->lock);
		r = conn_next_request(&q->fr, &req, &id, &slot, &why);
		pthread_mutex_unlock(&q->lock);
		if (r < 0) {
			conn_break(c, q->idx, why);
			return r;
		}
		if (r == 0)
			return 0;
		queue_dispatch(q, &req, id, slot);
	}
	return 0;
}

/*
 * Adaptive polling: after draining its ring, a worker watches the ring's
 * producer index for up to bk_spin_us microseconds before it re-arms
 * req_event and sleeps on the doorbell.  A request that arrives while it
 * spins is taken without an eventfd write by the frontend or a wakeup of
 * this thread (req_event is not re-armed, so the frontend does not ring).
 * XENFS_SPIN_US in xenfsd's environment sets the bound (0 turns spinning
 * off, at most 1000); docs/performance.md has the measurements behind the
 * default.  Spinning reads only the shared index (a hostile value just
 * ends the spin: queue_drain validates it).
 */
#define BK_SPIN_US_DEFAULT	0	/* off: see docs/performance.md */
#define BK_SPIN_US_MAX		1000

static int bk_spin_us = -1;

static int spin_us(void)
{
	int v = __atomic_load_n(&bk_spin_us, __ATOMIC_RELAXED);

	if (v < 0) {
		const char *e = getenv("XENFS_SPIN_US");
		char *end;
		long l;

		v = BK_SPIN_US_DEFAULT;
		if (e != NULL && *e) {
			l = strtol(e, &end, 10);
			if (*end == '\0' && l >= 0)
				v = l > BK_SPIN_US_MAX ? BK_SPIN_US_MAX : (int)l;
		}
		__atomic_store_n(&bk_spin_us, v, __ATOMIC_RELAXED);
	}
	return v;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* 1 if a request (or a stop) showed up within us microseconds. */
static int queue_spin(struct bk_queue *q, int us)
{
	int64_t end = mono_ns() + (int64_t)us * 1000;
	unsigned i;

	for (i = 1;; i++) {
		if (xf_load_acquire(&q->ring.s->req_prod) != q->ring.req_cons ||
		    atomic_load(&q->c->stopping))
			return 1;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
		if (i % 32 == 0 && mono_ns() >= end)
			return 0;
	}
}

static void *queue_worker(void *arg)
{
	struct bk_queue *q = arg;
	struct bk_conn *c = q->c;
	struct pollfd pfd[2];
	int r, us;

	/* confine this thread before the first guest request (sandbox.c) */
	if (bk_sandbox_worker(c->domain, c->export_path) < 0) {
		conn_break(c, q->idx, "cannot sandbox the worker");
		return NULL;
	}
	pfd[0].fd = xf_conn_event_fd(c->xc, q->idx);
	pfd[0].events = POLLIN;
	pfd[1].fd = c->stop_efd;
	pfd[1].events = POLLIN;
	while (!atomic_load(&c->stopping)) {
		if (queue_drain(q) < 0)
			break;
		/* no spinning while requests are parked (frozen domain) */
		if (q->park_head == NULL && (us = spin_us()) > 0 &&
		    queue_spin(q, us))
			continue;
		/* re-arm req_event; requests that raced in are drained now */
		if (xf_bring_final_check(&q->ring))
			continue;
		/* parked requests: look for a thaw every 10 ms */
		r = poll(pfd, 2, q->park_head ? 10 : 1000);
		if (r < 0 && errno != EINTR) {
			log_warn("dom %s: queue %u: poll", c->domain, q->idx);
			conn_break(c, q->idx, "cannot wait for the doorbell");
			break;
		}
		if (r > 0 && (pfd[0].revents & POLLIN))
			(void)xf_conn_event_ack(c->xc, q->idx);
		if (r > 0 && (pfd[0].revents & (POLLERR | POLLNVAL))) {
			conn_break(c, q->idx, "doorbell failed");
			break;
		}
	}
	queue_park_flush(q);
	return NULL;
}

/* ---- main thread: start / stop ---- */

static void conn_peer_cb(int fd, uint32_t events, void *arg)
{
	struct bk_conn *c = arg;

	if (xf_conn_peer_check(c->xc) == -ENOTCONN)
		bk_conn_stop(c, "frontend disconnected");
	else if (events & (EPOLLERR | EPOLLHUP))
		bk_conn_stop(c, "frontend socket error");
}

/* Stop workers, fail deferred requests, release the session and the
 * transport.  Used by bk_conn_stop and by a failed start. */
static void conn_teardown(struct bk_conn *c)
{
	uint64_t one = 1;
	uint32_t i;

	if (c->peer_fd >= 0) {
		bk_loop_del(c->peer_fd);
		c->peer_fd = -1;
	}
	pthread_mutex_lock(&c->lock);
	atomic_store(&c->stopping, 1);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (c->stop_efd >= 0)
		(void)!write(c->stop_efd, &one, sizeof(one));
	for (i = 0; c->queues && i < c->nq; i++) {
		if (c->queues[i].started)
			pthread_join(c->queues[i].thread, NULL);
		c->queues[i].started = 0;
	}
	/* a worker may have queued the node before it ended */
	bk_loop_defer_cancel(&c->stop_node);
	if (c->fs) {
		fs_session_cancel_deferred(c->fs);
		fs_session_free(c->fs);
		c->fs = NULL;
	}
	/* Nobody touches the control page after this: the control thread
	 * checks stopping under c->lock (set above) before every access. */
	pthread_mutex_lock(&c->lock);
	pthread_mutex_unlock(&c->lock);
	xf_conn_destroy(c->xc);
	c->xc = NULL;
	if (c->stop_efd >= 0) {
		close(c->stop_efd);
		c->stop_efd = -1;
	}
}

int bk_conn_start(struct xf_conn *xc, const char *domain, uint32_t domid,
		  const char *tag, int readonly,
		  void (*on_close)(struct bk_conn *c, void *arg), void *arg,
		  struct bk_conn **out)
{
	const struct xf_export *exp;
	struct fs_session_params p;
	struct bk_conn *c;
	uint32_t i;
	int r, fd;

	exp = xf_config_export(bk_srv.cfg, tag);
	if (!exp) {
		xf_conn_destroy(xc);
		return -ENOENT;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		xf_conn_destroy(xc);
		return -ENOMEM;
	}
	c->xc = xc;
	c->stop_efd = -1;
	c->peer_fd = -1;
	c->refs = 1;
	c->domid = domid;
	c->transport = xc->ops->name;
	c->since = time(NULL);
	c->on_close = on_close;
	c->on_close_arg = arg;
	c->stop_node.fn = conn_stop_cb;
	c->stop_node.arg = c;
	atomic_init(&c->readonly, readonly ? 1 : 0);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->ctrl.c = xf_region_ctrl(xc->base);
	c->ctrl.msg_prod_pvt = 0;
	c->domain = strdup(domain);
	c->tag = strdup(tag);
	c->export_path = strdup(exp->path);
	c->nq = xc->layout.nr_queues;
	c->queues = calloc(c->nq, sizeof(*c->queues));
	if (!c->domain || !c->tag || !c->export_path || !c->queues) {
		r = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < c->nq; i++) {
		struct bk_queue *q = &c->queues[i];

		q->c = c;
		q->idx = i;
		pthread_mutex_init(&q->lock, NULL);
		xf_bring_init(&q->ring, xf_region_sring(xc->base, i),
			      xenfs_ring_slots(&xc->layout));
		q->fr.base = xc->base;
		q->fr.layout = xc->layout;
		q->fr.q = i;
		q->fr.ring = &q->ring;
		q->fr.priv = malloc(xc->layout.buf_size);
		if (!q->fr.priv) {
			c->nq = i + 1;
			r = -ENOMEM;
			goto fail;
		}
	}
	c->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->stop_efd < 0) {
		r = -errno;
		goto fail;
	}

	fd = open(exp->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		log_warn("dom %s: export '%s': %s", domain, tag, exp->path);
		goto fail;
	}
	memset(&p, 0, sizeof(p));
	p.domain = c->domain;
	p.export_tag = c->tag;
	p.export_path = c->export_path;
	p.export_fd = fd;
	p.readonly = readonly;
	p.max_write = xc->layout.buf_size - XENFS_BUF_HEADROOM;
	p.max_inodes_cached = bk_srv.cfg->global.max_fds;
	p.policy = NULL;	/* decisions come from bk_srv.cfg */
	c->fs = fs_session_new(&p);
	if (!c->fs) {
		r = errno ? -errno : -ENOMEM;
		log_warn("dom %s: export '%s': cannot start session",
			 domain, tag);
		goto fail;
	}
	/* identity map, quotas, noexec (docs/security.md) */
	if ((r = fs_session_set_policy(c->fs, bk_srv.cfg)) < 0)
		goto fail;

	pthread_mutex_lock(&conns_lock);
	c->frozen = frozen_find(domain) >= 0;
	pthread_mutex_unlock(&conns_lock);

	for (i = 0; i < c->nq; i++) {
		r = -pthread_create(&c->queues[i].thread, NULL, queue_worker,
				    &c->queues[i]);
		if (r < 0) {
			log_warnx("dom %s: cannot start worker: %s", domain,
				  strerror(-r));
			goto fail;
		}
		c->queues[i].started = 1;
	}

	c->peer_fd = xf_conn_peer_fd(xc);
	if (c->peer_fd >= 0) {
		r = bk_loop_add(c->peer_fd, EPOLLIN | EPOLLRDHUP,
				conn_peer_cb, c);
		if (r < 0) {
			c->peer_fd = -1;
			log_warnx("dom %s: cannot watch the frontend: %s",
				  domain, strerror(-r));
			goto fail;
		}
	}

	c->rid = next_rid++;
	pthread_mutex_lock(&conns_lock);
	c->next = bk_srv.conns;
	bk_srv.conns = c;
	bk_srv.nconns++;
	pthread_mutex_unlock(&conns_lock);
	if (bk_is_worker())
		bk_worker_conn_up(c);

	log_info("dom %s: connected to export '%s' (%s, %s, %u queue%s, "
		 "%u slots, %u-byte buffers)", domain, tag, c->transport,
		 readonly ? "ro" : "rw", c->nq, c->nq == 1 ? "" : "s",
		 xenfs_ring_slots(&xc->layout), xc->layout.buf_size);
	if (out)
		*out = c;
	return 0;

fail:
	conn_teardown(c);
	conn_unref(c);
	return r;
}

void bk_conn_stop(struct bk_conn *c, const char *why)
{
	struct bk_conn **pp;

	if (!c || c->stopped)
		return;
	c->stopped = 1;
	if (c->w) {
		/* a proxy: the worker stops the real one and answers */
		(void)bk_priv_stop(c->w, c->rid, why);
		bk_conn_proxy_gone(c, why);
		return;
	}
	log_info("dom %s: export '%s' disconnected: %s", c->domain, c->tag,
		 why ? why : "stopped");
	conn_teardown(c);
	if (bk_is_worker())
		bk_worker_conn_down(c);
	pthread_mutex_lock(&conns_lock);
	for (pp = &bk_srv.conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			bk_srv.nconns--;
			break;
		}
	}
	pthread_mutex_unlock(&conns_lock);
	if (c->on_close)
		c->on_close(c, c->on_close_arg);
	conn_unref(c);
}

void bk_conns_stop_all(const char *why)
{
	while (bk_srv.conns)
		bk_conn_stop(bk_srv.conns, why);
}

void bk_conn_get_info(struct bk_conn *c, struct bk_conn_info *info)
{
	memset(info, 0, sizeof(*info));
	info->domain = c->domain;
	info->tag = c->tag;
	info->transport = c->transport;
	info->domid = c->domid;
	info->nr_queues = c->nq;
	info->readonly = atomic_load(&c->readonly);
	info->since = c->since;
	if (c->w) {
		/* a proxy: the live state is its worker's */
		struct bk_m_info m;

		if (bk_priv_info(c->w, c->rid, &m) == 0) {
			info->readonly = m.readonly;
			info->frozen = m.frozen;
			info->stats = m.stats;
		}
		return;
	}
	pthread_mutex_lock(&c->lock);
	info->frozen = c->frozen;
	pthread_mutex_unlock(&c->lock);
	if (c->fs)
		fs_session_stats(c->fs, &info->stats);
}

void bk_conn_foreach(void (*fn)(struct bk_conn *c, void *arg), void *arg)
{
	struct bk_conn *c, *next;

	/* main thread: fn may stop c */
	for (c = bk_srv.conns; c; c = next) {
		next = c->next;
		fn(c, arg);
	}
}

void bk_conns_reload(const struct xf_config *cfg)
{
	struct bk_conn *c, *next;

	if (bk_priv_on()) {
		bk_priv_reload(cfg);	/* each worker re-checks its own */
		return;
	}

	for (c = bk_srv.conns; c; c = next) {
		const struct xf_export *exp = xf_config_export(cfg, c->tag);
		enum xf_access a = xf_policy_access(cfg, c->domain, c->tag);

		next = c->next;
		if (!exp || a == XF_ACCESS_NONE) {
			bk_conn_stop(c, "access revoked by reload");
			continue;
		}
		if (strcmp(exp->path, c->export_path) != 0) {
			bk_conn_stop(c, "export path changed by reload");
			continue;
		}
		if (a == XF_ACCESS_RO && !atomic_load(&c->readonly)) {
			atomic_store(&c->readonly, 1);
			if (fs_session_set_readonly)
				fs_session_set_readonly(c->fs, 1);
			log_info("dom %s: export '%s' is read-only from now on",
				 c->domain, c->tag);
		}
		/* rw again after ro: the frontend mounted ro; keep it so */
		/* squash/map/quota/noexec apply from the next request on */
		(void)fs_session_set_policy(c->fs, cfg);
	}
}

/* ---- freeze / thaw (control thread) ---- */

static int conns_of_domain(const char *domain, struct bk_conn ***out)
{
	struct bk_conn *c, **v = NULL, **nv;
	int n = 0;

	pthread_mutex_lock(&conns_lock);
	for (c = bk_srv.conns; c; c = c->next) {
		if (strcmp(c->domain, domain) != 0)
			continue;
		nv = realloc(v, (n + 1) * sizeof(*v));
		if (!nv) {
			while (n > 0)
				v[--n]->refs--;	/* > 0: the list holds one */
			pthread_mutex_unlock(&conns_lock);
			free(v);
			return -ENOMEM;
		}
		v = nv;
		c->refs++;
		v[n++] = c;
	}
	pthread_mutex_unlock(&conns_lock);
	*out = v;
	return n;
}

static void conns_put(struct bk_conn **v, int n)
{
	while (n > 0)
		conn_unref(v[--n]);
	free(v);
}

static void ms_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static int past(const struct timespec *dl)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > dl->tv_sec ||
	       (now.tv_sec == dl->tv_sec && now.tv_nsec >= dl->tv_nsec);
}

static void nap(void)
{
	struct timespec ts = { 0, 5 * 1000000 };

	nanosleep(&ts, NULL);
}

/* Post SYNCFS to c's frontend and wait for its acknowledgement. */
static int conn_syncfs(struct bk_conn *c, const struct timespec *dl,
		       char *err, size_t errlen)
{
	uint32_t seq = 0, aseq, status;
	int r, posted = 0;

	for (;;) {
		pthread_mutex_lock(&c->lock);
		if (atomic_load(&c->stopping)) {
			pthread_mutex_unlock(&c->lock);
			snprintf(err, errlen, "domain %s disconnected",
				 c->domain);
			return -ENOTCONN;
		}
		if (!posted) {
			seq = ++c->ctrl_seq;
			if (seq == 0)
				seq = ++c->ctrl_seq;
			r = xf_ctrl_post(&c->ctrl, XENFS_CTRL_SYNCFS, seq,
					 NULL, 0);
			if (r == 0) {
				posted = 1;
				pthread_mutex_lock(&c->queues[0].lock);
				(void)xf_conn_notify(c->xc, 0);
				pthread_mutex_unlock(&c->queues[0].lock);
			} else if (r != -EAGAIN) {
				pthread_mutex_unlock(&c->lock);
				snprintf(err, errlen, "domain %s: control "
					 "channel broken", c->domain);
				return r;
			}
		} else {
			xf_ctrl_read_ack(&c->ctrl, &aseq, &status);
			if (aseq == seq) {
				pthread_mutex_unlock(&c->lock);
				if (status == 0)
					return 0;
				snprintf(err, errlen, "domain %s: frontend "
					 "could not flush: %s", c->domain,
					 strerror((int)status));
				return -EIO;
			}
		}
		pthread_mutex_unlock(&c->lock);
		if (past(dl)) {
			snprintf(err, errlen, "domain %s: frontend did not "
				 "flush in time", c->domain);
			return -ETIMEDOUT;
		}
		nap();	/* the flush's requests keep being served meanwhile */
	}
}

static void conn_set_frozen(struct bk_conn *c, int frozen)
{
	pthread_mutex_lock(&c->lock);
	c->frozen = frozen;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

int bk_domain_freeze(const char *domain, int timeout_ms, char *err,
		     size_t errlen)
{
	struct bk_conn **v;
	struct timespec dl, rdl;
	int n, i, r = 0;

	if (bk_priv_on())
		return bk_priv_freeze(domain, timeout_ms, err, errlen);
	if (timeout_ms <= 0)
		timeout_ms = 30000;
	n = conns_of_domain(domain, &v);
	if (n < 0) {
		snprintf(err, errlen, "out of memory");
		return n;
	}
	if (n == 0) {
		free(v);
		snprintf(err, errlen, "domain %s is not connected", domain);
		return -ENOENT;
	}
	ms_deadline(&dl, timeout_ms);
	for (i = 0; i < n && r == 0; i++)
		r = conn_syncfs(v[i], &dl, err, errlen);
	if (r == 0) {
		pthread_mutex_lock(&conns_lock);
		r = frozen_add(domain);
		pthread_mutex_unlock(&conns_lock);
		if (r < 0)
			snprintf(err, errlen, "out of memory");
	}
	if (r == 0) {
		for (i = 0; i < n; i++)
			conn_set_frozen(v[i], 1);
		/* drain changes in flight; cond waits use CLOCK_REALTIME */
		clock_gettime(CLOCK_REALTIME, &rdl);
		{
			struct timespec now;

			clock_gettime(CLOCK_MONOTONIC, &now);
			rdl.tv_sec += dl.tv_sec - now.tv_sec;
			rdl.tv_nsec += dl.tv_nsec - now.tv_nsec;
			while (rdl.tv_nsec < 0) {
				rdl.tv_sec--;
				rdl.tv_nsec += 1000000000;
			}
			while (rdl.tv_nsec >= 1000000000) {
				rdl.tv_sec++;
				rdl.tv_nsec -= 1000000000;
			}
		}
		for (i = 0; i < n && r == 0; i++) {
			struct bk_conn *c = v[i];

			pthread_mutex_lock(&c->lock);
			while (c->inflight_mut > 0 &&
			       !atomic_load(&c->stopping) && r == 0)
				r = -pthread_cond_timedwait(&c->cond,
							    &c->lock, &rdl);
			pthread_mutex_unlock(&c->lock);
			if (r < 0)
				snprintf(err, errlen, "domain %s: changes "
					 "still in flight", domain);
		}
		/* open files written since their last MODIFY get one now,
		 * before control.c appends the freeze record */
		for (i = 0; i < n && r == 0 && fs_session_flush_events; i++) {
			struct bk_conn *c = v[i];

			pthread_mutex_lock(&c->lock);
			if (!atomic_load(&c->stopping) && c->fs)
				fs_session_flush_events(c->fs);
			pthread_mutex_unlock(&c->lock);
		}
		if (r < 0) {
			pthread_mutex_lock(&conns_lock);
			frozen_remove(domain);
			pthread_mutex_unlock(&conns_lock);
			for (i = 0; i < n; i++)
				conn_set_frozen(v[i], 0);
		}
	}
	conns_put(v, n);
	if (r == 0)
		log_info("dom %s: frozen", domain);
	else
		log_warnx("dom %s: freeze failed: %s", domain, err);
	return r;
}

int bk_domain_thaw(const char *domain, char *err, size_t errlen)
{
	struct bk_conn **v;
	int n, i, was;

	if (bk_priv_on())
		return bk_priv_thaw(domain, err, errlen);
	pthread_mutex_lock(&conns_lock);
	was = frozen_remove(domain);
	pthread_mutex_unlock(&conns_lock);
	n = conns_of_domain(domain, &v);
	if (n < 0) {
		snprintf(err, errlen, "out of memory");
		return n;
	}
	for (i = 0; i < n; i++)
		conn_set_frozen(v[i], 0);
	conns_put(v, n);
	if (!was) {
		snprintf(err, errlen, "domain %s is not frozen", domain);
		return -ENOENT;
	}
	log_info("dom %s: thawed", domain);
	return 0;
}

/* ---- privilege separation ---- */

/* Parent: a proxy for connection info->rid of worker w. */
int bk_conn_proxy_new(struct bk_worker *w, const struct bk_m_info *info,
		      void (*on_close)(struct bk_conn *c, void *arg),
		      void *arg, struct bk_conn **out)
{
	struct bk_conn *c = calloc(1, sizeof(*c));

	if (out)
		*out = NULL;
	if (!c)
		return -ENOMEM;
	c->w = w;
	c->rid = info->rid;
	c->refs = 1;
	c->stop_efd = -1;
	c->peer_fd = -1;
	c->domid = info->domid;
	c->nq = info->nr_queues;
	c->since = (time_t)info->since;
	snprintf(c->transport_buf, sizeof(c->transport_buf), "%s",
		 info->transport);
	c->transport = c->transport_buf;
	c->on_close = on_close;
	c->on_close_arg = arg;
	atomic_init(&c->readonly, info->readonly ? 1 : 0);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	/* the domain is the worker's, whatever the message said */
	c->domain = strdup(bk_priv_worker_domain(w));
	c->tag = strdup(info->tag);
	if (!c->domain || !c->tag) {
		conn_free(c);
		return -ENOMEM;
	}
	pthread_mutex_lock(&conns_lock);
	c->next = bk_srv.conns;
	bk_srv.conns = c;
	bk_srv.nconns++;
	pthread_mutex_unlock(&conns_lock);
	bk_priv_conn_count(w, 1);
	log_info("dom %s: export '%s' served by worker pid %ld (%s, %s)",
		 c->domain, c->tag, (long)bk_priv_worker_pid(w), c->transport,
		 info->readonly ? "ro" : "rw");
	if (out)
		*out = c;
	return 0;
}

struct bk_conn *bk_conn_proxy_find(struct bk_worker *w, uint64_t rid)
{
	struct bk_conn *c;

	for (c = bk_srv.conns; c; c = c->next)
		if (c->w == w && c->rid == rid)
			return c;
	return NULL;
}

void bk_conn_proxy_gone(struct bk_conn *c, const char *why)
{
	struct bk_conn **pp;
	struct bk_worker *w = c->w;
	int found = 0;

	pthread_mutex_lock(&conns_lock);
	for (pp = &bk_srv.conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			bk_srv.nconns--;
			found = 1;
			break;
		}
	}
	pthread_mutex_unlock(&conns_lock);
	if (!found)
		return;		/* already gone */
	c->stopped = 1;
	log_info("dom %s: export '%s' disconnected: %s", c->domain, c->tag,
		 why ? why : "stopped");
	if (c->on_close)
		c->on_close(c, c->on_close_arg);
	conn_unref(c);
	bk_priv_conn_count(w, -1);	/* may retire w: last */
}

void bk_conn_proxies_gone(struct bk_worker *w, const char *why)
{
	struct bk_conn *c, *next;

	for (c = bk_srv.conns; c; c = next) {
		next = c->next;
		if (c->w == w)
			bk_conn_proxy_gone(c, why);
	}
}

/* Worker, main thread. */
struct bk_conn *bk_conn_by_rid(uint64_t rid)
{
	struct bk_conn *c;

	for (c = bk_srv.conns; c; c = c->next)
		if (c->rid == rid)
			return c;
	return NULL;
}

void bk_conn_wire_info(struct bk_conn *c, struct bk_m_info *m)
{
	struct bk_conn_info info;

	bk_conn_get_info(c, &info);
	memset(m, 0, sizeof(*m));
	m->rid = c->rid;
	snprintf(m->domain, sizeof(m->domain), "%s", info.domain);
	snprintf(m->tag, sizeof(m->tag), "%s", info.tag);
	snprintf(m->transport, sizeof(m->transport), "%s", info.transport);
	m->domid = info.domid;
	m->nr_queues = info.nr_queues;
	m->readonly = info.readonly;
	m->frozen = info.frozen;
	m->since = info.since;
	m->stats = info.stats;
}
