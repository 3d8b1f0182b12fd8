/*
 * The forwarding workers of mount.xenfs: FUSE frames from the guest
 * kernel go onto a shared ring unparsed, replies come back and are written
 * to /dev/fuse after a few checks.
 *
 * Concurrency: one worker thread per queue.  Each worker has its own
 * /dev/fuse descriptor (FUSE_DEV_IOC_CLONE; the kernel wants a reply on
 * the descriptor its request was read from), its own ring and its own
 * buffers [q << order, (q + 1) << order) of the pool, so workers share
 * no mutable state.  A worker reads a request only when it has a free
 * buffer, straight into that buffer.  Queue 0's worker also drains the
 * control channel; a SYNCFS runs in a separate thread (the flush itself
 * produces FUSE requests that this worker must keep forwarding) which
 * hands its result back through an eventfd.
 *
 * Trust boundary: the backend is dom0 and trusted more than the guest's
 * own processes are, but it is still checked like libfuse checks the
 * kernel: a response must name a buffer of this queue that is in flight
 * with the same id (otherwise the ring is broken and the mount aborted),
 * its length must fit the buffer, and the reply header (copied into
 * private memory and written from there, so the backend cannot change it
 * after the check) must carry the request's unique and the ring length
 * and a sane error.  Any other bad reply is answered with EIO by us so
 * that no guest process waits forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "front_i.h"
#include "log.h"
#include "ring.h"

struct fwd_slot {
	uint64_t id;		/* ring id of the request in this buffer */
	uint64_t unique;	/* its FUSE unique, saved privately */
	uint32_t opcode;
	int busy;
};

struct fwd_queue {
	struct fwd *f;
	uint32_t q;
	int fd;				/* this worker's /dev/fuse clone */
	pthread_t th;
	int started;
	struct xf_fring ring;
	uint32_t nslots;		/* buffers of this queue == ring slots */
	uint32_t first_buf;
	struct fwd_slot *slots;
	uint32_t *freelist;
	uint32_t nfree;
	uint64_t next_id;
	struct log_ratelimit rl;

	/* queue 0 only: control channel and the syncfs helper */
	struct xf_ctrl_front ctrl;
	int sync_fd;			/* eventfd: syncfs thread finished */
	pthread_t sync_th;
	int sync_running;		/* a syncfs thread exists (joinable) */
	int sync_pending;		/* another SYNCFS arrived meanwhile */
	uint32_t sync_pending_seq;
	uint32_t sync_seq;		/* seq of the running/finished one */
	uint32_t sync_status;		/* written by the thread before the
					 * eventfd, read by the worker after */
};

void fwd_set_end(struct fwd *f, int reason)
{
	int expected = FWD_RUNNING;
	uint64_t one = 1;

	if (__atomic_compare_exchange_n(&f->end_reason, &expected, reason, 0,
					__ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
		if (write(f->done_fd, &one, sizeof(one)) < 0)
			log_warn("waking the main thread");
	}
}

static int is_noreply(uint32_t opcode)
{
	return opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET ||
	       opcode == FUSE_NOTIFY_REPLY;
}

/* Answer a request ourselves with an error. */
static void fwd_reply_error(struct fwd_queue *wq, uint64_t unique, int err)
{
	struct fuse_out_header oh = {
		.len = sizeof(oh), .error = -err, .unique = unique,
	};

	if (write(wq->fd, &oh, sizeof(oh)) < 0 && errno != ENOENT)
		log_warnx_rl(&wq->rl, "queue %u: error reply: %s", wq->q,
			     strerror(errno));
}

/*
 * The INIT reply sets max_write and max_pages; a request must always fit
 * one pool buffer, so clamp them to our buffer size.  Works on a private
 * copy of the whole reply.
 */
static void fwd_write_init(struct fwd_queue *wq, const uint8_t *buf,
			   const struct fuse_out_header *oh)
{
	uint8_t copy[sizeof(struct fuse_out_header) +
		     sizeof(struct fuse_init_out)];
	struct fuse_init_out io;
	uint32_t max_pages = wq->f->max_write / XENFS_PAGE_SIZE;

	if (oh->error != 0 || oh->len > sizeof(copy) ||
	    oh->len < sizeof(*oh) + FUSE_COMPAT_22_INIT_OUT_SIZE) {
		/* an error, or a size the kernel will refuse: pass through */
		struct iovec iov[2] = {
			{ (void *)(uintptr_t)oh, sizeof(*oh) },
			{ (void *)(uintptr_t)(buf + sizeof(*oh)),
			  oh->len - sizeof(*oh) },
		};
		if (writev(wq->fd, iov, 2) < 0 && errno != ENOENT)
			log_warn("queue %u: writing the INIT reply", wq->q);
		return;
	}
	memset(copy, 0, sizeof(copy));
	memcpy(copy, buf, oh->len);
	memcpy(copy, oh, sizeof(*oh));
	memcpy(&io, copy + sizeof(*oh), sizeof(io));
	if (io.max_write == 0 || io.max_write > wq->f->max_write) {
		log_info("limiting max_write from %u to %u", io.max_write,
			 wq->f->max_write);
		io.max_write = wq->f->max_write;
	}
	if ((io.flags & FUSE_MAX_PAGES) && io.max_pages > max_pages)
		io.max_pages = (uint16_t)max_pages;
	memcpy(copy + sizeof(*oh), &io, oh->len - sizeof(*oh));
	if (write(wq->fd, copy, oh->len) < 0 && errno != ENOENT)
		log_warn("queue %u: writing the INIT reply", wq->q);
	else
		log_info("connected: FUSE %u.%u, max_write %u", io.major,
			 io.minor, io.max_write);
}

/*
 * One response from the ring.  Returns 0, or -EPROTO if the response
 * cannot belong to any request of ours (the ring is then broken).
 */
static int fwd_handle_rsp(struct fwd_queue *wq,
			  const struct xenfs_ring_rsp *rsp)
{
	struct fwd *f = wq->f;
	struct fwd_slot *s;
	struct fuse_out_header oh;
	uint32_t idx;
	uint8_t *buf;
	const char *bad = NULL;

	if (rsp->buf < wq->first_buf ||
	    rsp->buf - wq->first_buf >= wq->nslots) {
		log_warnx("queue %u: response names buffer %u, not ours",
			  wq->q, rsp->buf);
		return -EPROTO;
	}
	idx = rsp->buf - wq->first_buf;
	s = &wq->slots[idx];
	if (!s->busy || s->id != rsp->id) {
		log_warnx("queue %u: response for buffer %u with unknown id "
			  "%llu", wq->q, rsp->buf,
			  (unsigned long long)rsp->id);
		return -EPROTO;
	}
	buf = xf_region_buf(f->conn->base, &f->conn->layout, rsp->buf);

	if (is_noreply(s->opcode))
		goto done;			/* nothing to tell the kernel */
	if (rsp->len == 0) {
		if (s->opcode != FUSE_INTERRUPT)
			bad = "empty reply";
	} else if (rsp->len > f->conn->layout.buf_size ||
		   rsp->len < sizeof(oh)) {
		bad = "reply length out of range";
	} else {
		memcpy(&oh, buf, sizeof(oh));	/* check the copy only */
		if (oh.len != rsp->len)
			bad = "reply header length differs from the ring's";
		else if (oh.unique != s->unique)
			bad = "reply for another request";
		else if (oh.error > 0 || oh.error <= -4096)
			bad = "reply error out of range";
	}
	if (bad) {
		log_warnx_rl(&wq->rl, "queue %u: bad reply to opcode %u: %s",
			     wq->q, s->opcode, bad);
		if (s->opcode != FUSE_INTERRUPT)
			fwd_reply_error(wq, s->unique, EIO);
		goto done;
	}
	if (rsp->len == 0)
		goto done;
	if (s->opcode == FUSE_INIT) {
		fwd_write_init(wq, buf, &oh);
	} else {
		struct iovec iov[2] = {
			{ &oh, sizeof(oh) },
			{ buf + sizeof(oh), rsp->len - sizeof(oh) },
		};

		/* ENOENT: the request was interrupted and is gone */
		if (writev(wq->fd, iov, 2) < 0 && errno != ENOENT)
			log_warnx_rl(&wq->rl, "queue %u: reply to opcode %u "
				     "refused by the kernel: %s", wq->q,
				     s->opcode, strerror(errno));
	}
done:
	s->busy = 0;
	wq->freelist[wq->nfree++] = idx;
	return 0;
}

/* Read requests while there are free buffers.  Returns the number
 * queued, or -ENODEV (unmounted) or another -errno (fatal). */
static int fwd_read_requests(struct fwd_queue *wq)
{
	struct fwd *f = wq->f;
	struct fuse_in_header ih;
	struct xenfs_ring_req req;
	struct fwd_slot *s;
	uint8_t *buf;
	uint32_t idx;
	ssize_t n;
	int queued = 0;

	while (wq->nfree > 0 && xf_fring_free(&wq->ring) > 0) {
		idx = wq->freelist[wq->nfree - 1];
		buf = xf_region_buf(f->conn->base, &f->conn->layout,
				    wq->first_buf + idx);
		n = read(wq->fd, buf, f->conn->layout.buf_size);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			if (errno == ENOENT)	/* interrupted meanwhile */
				continue;
			return -errno;
		}
		if ((size_t)n < sizeof(ih)) {
			log_warnx_rl(&wq->rl, "queue %u: short FUSE request",
				     wq->q);
			continue;
		}
		memcpy(&ih, buf, sizeof(ih));	/* private copy */
		wq->nfree--;
		s = &wq->slots[idx];
		s->busy = 1;
		s->id = wq->next_id++;
		s->unique = ih.unique;
		s->opcode = ih.opcode;
		req.id = s->id;
		req.buf = wq->first_buf + idx;
		req.len = (uint32_t)n;
		xf_fring_put(&wq->ring, &req);
		queued++;
	}
	return queued;
}

/* ---- control channel (queue 0) ---- */

static void *fwd_sync_thread(void *arg)
{
	struct fwd_queue *wq = arg;
	struct stat st;
	uint64_t one = 1;
	uint32_t status = 0;
	int fd;

	fd = open(wq->f->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		status = (uint32_t)errno;
	} else {
		/* only flush if the path still names our mount */
		if (fstat(fd, &st) < 0)
			status = (uint32_t)errno;
		else if (st.st_dev != wq->f->mnt_dev)
			status = ESTALE;
		else if (syncfs(fd) < 0)
			status = (uint32_t)errno;
		(void)close(fd);
	}
	if (status)
		log_warnx("syncfs for the backend: %s",
			  strerror((int)status));
	__atomic_store_n(&wq->sync_status, status, __ATOMIC_RELEASE);
	if (write(wq->sync_fd, &one, sizeof(one)) < 0)
		log_warn("syncfs thread: eventfd");
	return NULL;
}

static void fwd_sync_start(struct fwd_queue *wq, uint32_t seq)
{
	int rc;

	if (wq->sync_running) {
		wq->sync_pending = 1;
		wq->sync_pending_seq = seq;
		return;
	}
	wq->sync_seq = seq;
	rc = pthread_create(&wq->sync_th, NULL, fwd_sync_thread, wq);
	if (rc != 0) {
		log_warnx("cannot start a syncfs thread: %s", strerror(rc));
		xf_ctrl_ack(&wq->ctrl, seq, (uint32_t)rc);
		(void)xf_conn_notify(wq->f->conn, 0);
		return;
	}
	wq->sync_running = 1;
}

static void fwd_sync_done(struct fwd_queue *wq)
{
	uint64_t v;
	uint32_t status;

	if (read(wq->sync_fd, &v, sizeof(v)) < 0 || !wq->sync_running)
		return;
	(void)pthread_join(wq->sync_th, NULL);	/* it has finished */
	wq->sync_running = 0;
	status = __atomic_load_n(&wq->sync_status, __ATOMIC_ACQUIRE);
	log_debug("syncfs %u done: %u", wq->sync_seq, status);
	xf_ctrl_ack(&wq->ctrl, wq->sync_seq, status);
	(void)xf_conn_notify(wq->f->conn, 0);
	if (wq->sync_pending) {
		wq->sync_pending = 0;
		fwd_sync_start(wq, wq->sync_pending_seq);
	}
}

static int fwd_drain_ctrl(struct fwd_queue *wq)
{
	struct xenfs_ctrl_msg m;
	struct fuse_out_header oh;
	int rc;

	while ((rc = xf_ctrl_get(&wq->ctrl, &m)) == 1) {
		switch (m.type) {
		case XENFS_CTRL_FUSE_NOTIFY:
			if (m.len < sizeof(oh)) {
				log_warnx_rl(&wq->rl, "short notification");
				break;
			}
			memcpy(&oh, m.data, sizeof(oh));
			if (oh.unique != 0 || oh.len != m.len) {
				log_warnx_rl(&wq->rl, "malformed notification");
				break;
			}
			/* ENOENT: the inode is no longer cached; fine */
			if (write(wq->fd, m.data, m.len) < 0 &&
			    errno != ENOENT)
				log_warnx_rl(&wq->rl, "notification %d "
					     "refused: %s", oh.error,
					     strerror(errno));
			break;
		case XENFS_CTRL_SYNCFS:
			log_debug("backend asks for syncfs (seq %u)", m.seq);
			fwd_sync_start(wq, m.seq);
			break;
		default:
			log_warnx_rl(&wq->rl, "unknown control message %u",
				     m.type);
			break;
		}
	}
	if (rc < 0)
		log_warnx("control channel broken");
	return rc;
}

/* ---- the worker ---- */

/*
 * Adaptive polling: with requests in flight, a worker watches the ring's
 * response index for up to fwd_spin_us microseconds before it re-arms
 * rsp_event and sleeps in poll(2).  A reply that arrives meanwhile is
 * taken without a doorbell (the backend does not ring while rsp_event is
 * not re-armed) or a wakeup.  New FUSE requests wait at most that long
 * for this worker (the other queues' workers may take them).
 * XENFS_SPIN_US in mount.xenfs's environment sets the bound (0: off, at
 * most 1000); docs/performance.md has the measurements.
 */
#define FWD_SPIN_US_DEFAULT	0	/* off: see docs/performance.md */
#define FWD_SPIN_US_MAX		1000

static int fwd_spin_us(void)
{
	static int v = -1;
	int r = __atomic_load_n(&v, __ATOMIC_RELAXED);

	if (r < 0) {
		const char *e = getenv("XENFS_SPIN_US");
		char *end;
		long l;

		r = FWD_SPIN_US_DEFAULT;
		if (e != NULL && *e) {
			l = strtol(e, &end, 10);
			if (*end == '\0' && l >= 0)
				r = l > FWD_SPIN_US_MAX ? FWD_SPIN_US_MAX :
				    (int)l;
		}
		__atomic_store_n(&v, r, __ATOMIC_RELAXED);
	}
	return r;
}

static int64_t fwd_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* 1 if a response showed up within us microseconds. */
static int fwd_spin(struct fwd_queue *wq, int us)
{
	int64_t end = fwd_mono_ns() + (int64_t)us * 1000;
	unsigned i;

	for (i = 1;; i++) {
		if (xf_load_acquire(&wq->ring.s->rsp_prod) !=
		    wq->ring.rsp_cons)
			return 1;
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
		if (i % 32 == 0 && fwd_mono_ns() >= end)
			return 0;
	}
}

/*
 * Waiting without a thundering herd: the workers' /dev/fuse clones share
 * one kernel request queue, and poll(2) on it wakes every worker for each
 * request (all but one then read EAGAIN), which on a host with few CPUs
 * costs about as much as the request itself.  So a worker with a free
 * buffer waits in its own epoll set, where its /dev/fuse descriptor is
 * registered with EPOLLEXCLUSIVE (the kernel wakes one such waiter per
 * request); the doorbell, the stop and the syncfs eventfds are ordinary
 * members.  A worker is in the exclusive set only while it sleeps there:
 * it joins right before epoll_wait (joining reports a request that is
 * already queued, so none is missed) and leaves when it wakes, because
 * an awake worker's entry would swallow wakeups meant for a sleeping
 * one.  A worker without a free buffer waits in poll(2) as before.  If epoll fails, or with XENFS_FUSE_POLL=1 in mount.xenfs's
 * environment, the worker uses poll(2) throughout.
 */
static int fwd_ep_open(struct fwd_queue *wq, int evfd)
{
	struct epoll_event ev;
	int ep, fds[3] = { evfd, wq->f->stop_fd, wq->sync_fd };
	uint32_t i;

	/* XENFS_FUSE_POLL=1: the old poll(2) wait (for comparisons) */
	if (getenv("XENFS_FUSE_POLL") && !strcmp(getenv("XENFS_FUSE_POLL"),
	    "1"))
		return -1;
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -1;
	for (i = 0; i < 3; i++) {
		if (fds[i] < 0 || (i == 2 && wq->q != 0))
			continue;
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.u32 = i + 1;	/* index into the poll array */
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) {
			(void)close(ep);
			return -1;
		}
	}
	return ep;
}

/* The fuse descriptor in (want) or out of the exclusive set.  0 or -1. */
static int fwd_ep_fuse(struct fwd_queue *wq, int ep, int *in, int want)
{
	struct epoll_event ev;

	if (*in == want)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.u32 = 0;
	if (epoll_ctl(ep, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, wq->fd,
		      &ev) < 0)
		return -1;
	*in = want;
	return 0;
}

/* epoll_wait, results as poll(2) revents in pfd[0..3].  poll's return. */
static int fwd_ep_wait(int ep, struct pollfd *pfd)
{
	struct epoll_event evs[4];
	int i, n;

	for (i = 0; i < 4; i++)
		pfd[i].revents = 0;
	n = epoll_wait(ep, evs, 4, -1);
	for (i = 0; i < n; i++) {
		uint32_t k = evs[i].data.u32;

		if (k < 4)
			pfd[k].revents = (short)(evs[i].events &
			    (EPOLLIN | EPOLLERR | EPOLLHUP));
	}
	return n;
}

static void *fwd_worker(void *arg)
{
	struct fwd_queue *wq = arg;
	struct fwd *f = wq->f;
	struct xenfs_ring_rsp rsp;
	struct pollfd pfd[4];
	int rc, n, us, evfd = xf_conn_event_fd(f->conn, wq->q);
	int reason = FWD_LOCAL_ERROR;
	int ep = fwd_ep_open(wq, evfd), ep_in = 0;

	for (;;) {
		while ((rc = xf_fring_get(&wq->ring, &rsp)) == 1)
			if ((rc = fwd_handle_rsp(wq, &rsp)) < 0)
				break;
		if (rc < 0) {
			log_warnx("queue %u: ring broken by the backend",
				  wq->q);
			reason = FWD_BACKEND_BROKEN;
			break;
		}
		if (wq->q == 0 && fwd_drain_ctrl(wq) < 0) {
			reason = FWD_BACKEND_BROKEN;
			break;
		}
		rc = fwd_read_requests(wq);
		if (rc == -ENODEV) {
			reason = FWD_UNMOUNTED;
			break;
		}
		if (rc < 0) {
			errno = -rc;
			log_warn("queue %u: reading /dev/fuse", wq->q);
			break;
		}
		if (xf_fring_push(&wq->ring) &&
		    (rc = xf_conn_notify(f->conn, wq->q)) < 0) {
			errno = -rc;
			log_warn("queue %u: notify", wq->q);
			break;
		}
		/* replies due: watch for them a little before sleeping */
		if (wq->nfree < wq->nslots && (us = fwd_spin_us()) > 0 &&
		    fwd_spin(wq, us))
			continue;
		/* Re-arm the response event; if responses raced in, go
		 * round again instead of sleeping (no lost wakeup). */
		if (xf_fring_final_check(&wq->ring))
			continue;

		/* with no free buffer, still watch for POLLERR (always
		 * reported): a umount must end us even if the backend
		 * never answers what is in flight */
		pfd[0].fd = wq->fd;
		pfd[0].events = wq->nfree > 0 ? POLLIN : 0;
		pfd[1].fd = evfd;
		pfd[1].events = POLLIN;
		pfd[2].fd = f->stop_fd;
		pfd[2].events = POLLIN;
		pfd[3].fd = wq->q == 0 ? wq->sync_fd : -1;
		pfd[3].events = POLLIN;
		if (ep >= 0 && fwd_ep_fuse(wq, ep, &ep_in, wq->nfree > 0) < 0) {
			log_warn("queue %u: epoll: using poll", wq->q);
			(void)close(ep);
			ep = -1;
		}
		if (ep >= 0 && ep_in) {
			n = fwd_ep_wait(ep, pfd);
			/* awake: out of the exclusive set, so that wakeups
			 * go to a worker that is asleep */
			if (fwd_ep_fuse(wq, ep, &ep_in, 0) < 0) {
				log_warn("queue %u: epoll: using poll",
					 wq->q);
				(void)close(ep);
				ep = -1;
			}
		} else {
			n = poll(pfd, 4, -1);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_warn("queue %u: poll", wq->q);
			break;
		}
		if (pfd[2].revents) {
			reason = FWD_STOPPED;
			break;
		}
		if (pfd[1].revents & POLLIN) {
			rc = xf_conn_event_ack(f->conn, wq->q);
			if (rc < 0) {
				errno = -rc;
				log_warn("queue %u: doorbell", wq->q);
				break;
			}
		}
		if (pfd[3].revents & POLLIN)
			fwd_sync_done(wq);
		/* POLLERR with a free buffer: the next read says ENODEV */
		if ((pfd[0].revents & (POLLERR | POLLHUP)) &&
		    wq->nfree == 0) {
			reason = FWD_UNMOUNTED;
			break;
		}
	}
	if (ep >= 0)
		(void)close(ep);
	fwd_set_end(f, reason);
	return NULL;
}

/* ---- setup and teardown ---- */

static int fwd_queue_init(struct fwd *f, struct fwd_queue *wq, uint32_t q)
{
	uint32_t i, slots = xenfs_ring_slots(&f->conn->layout);
	uint32_t devfd = (uint32_t)f->fuse_fd;
	int fl;

	memset(wq, 0, sizeof(*wq));
	wq->f = f;
	wq->q = q;
	wq->fd = -1;
	wq->sync_fd = -1;
	wq->nslots = slots;
	wq->first_buf = q << f->conn->layout.ring_order;
	wq->next_id = 1;
	wq->slots = calloc(slots, sizeof(*wq->slots));
	wq->freelist = calloc(slots, sizeof(*wq->freelist));
	if (!wq->slots || !wq->freelist)
		return -ENOMEM;
	for (i = 0; i < slots; i++)
		wq->freelist[i] = slots - 1 - i;
	wq->nfree = slots;
	xf_fring_init(&wq->ring, xf_region_sring(f->conn->base, q), slots);

	wq->fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (wq->fd < 0)
		return -errno;
	if (ioctl(wq->fd, FUSE_DEV_IOC_CLONE, &devfd) < 0)
		return -errno;
	fl = fcntl(wq->fd, F_GETFL);
	if (fl < 0 || fcntl(wq->fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	if (q == 0) {
		wq->ctrl.c = xf_region_ctrl(f->conn->base);
		wq->ctrl.msg_cons_pvt = 0;
		wq->sync_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (wq->sync_fd < 0)
			return -errno;
	}
	return 0;
}

static void fwd_queue_fini(struct fwd_queue *wq)
{
	if (wq->fd >= 0)
		(void)close(wq->fd);
	wq->fd = -1;
	/* with every fuse fd closed the flush fails fast, so this ends */
	if (wq->sync_running)
		(void)pthread_join(wq->sync_th, NULL);
	wq->sync_running = 0;
	if (wq->sync_fd >= 0)
		(void)close(wq->sync_fd);
	wq->sync_fd = -1;
	free(wq->slots);
	free(wq->freelist);
	wq->slots = NULL;
	wq->freelist = NULL;
}

int fwd_start(struct fwd *f)
{
	uint32_t q;
	int rc;

	f->nq = f->conn->layout.nr_queues;
	f->end_reason = FWD_RUNNING;
	f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	f->q = calloc(f->nq, sizeof(*f->q));
	if (f->stop_fd < 0 || f->done_fd < 0 || !f->q) {
		rc = f->q ? -errno : -ENOMEM;
		goto fail;
	}
	for (q = 0; q < f->nq; q++)
		f->q[q].fd = f->q[q].sync_fd = -1;
	for (q = 0; q < f->nq; q++) {
		rc = fwd_queue_init(f, &f->q[q], q);
		if (rc) {
			errno = -rc;
			log_warn("queue %u: setup", q);
			goto fail;
		}
	}
	for (q = 0; q < f->nq; q++) {
		rc = pthread_create(&f->q[q].th, NULL, fwd_worker, &f->q[q]);
		if (rc) {
			rc = -rc;
			goto fail;
		}
		f->q[q].started = 1;
	}
	return 0;
fail:
	fwd_join(f);
	return rc;
}

void fwd_join(struct fwd *f)
{
	uint64_t one = 1;
	uint32_t q;

	if (f->stop_fd >= 0 && write(f->stop_fd, &one, sizeof(one)) < 0)
		log_warn("stopping the workers");
	if (f->q) {
		for (q = 0; q < f->nq; q++)
			if (f->q[q].started)
				(void)pthread_join(f->q[q].th, NULL);
		/* close every clone before waiting for a syncfs thread */
		for (q = 0; q < f->nq; q++) {
			if (f->q[q].fd >= 0)
				(void)close(f->q[q].fd);
			f->q[q].fd = -1;
		}
		for (q = 0; q < f->nq; q++)
			fwd_queue_fini(&f->q[q]);
		free(f->q);
		f->q = NULL;
	}
	if (f->stop_fd >= 0)
		(void)close(f->stop_fd);
	if (f->done_fd >= 0)
		(void)close(f->done_fd);
	f->stop_fd = f->done_fd = -1;
}
