/*
 * xf-evil: a malicious frontend for the local transport, to check that a
 * hostile guest costs only its own connection (tests/integration/
 * t_evil_frontend.sh).
 *
 *   xf-evil -s SOCKET -t TAG [-d SECONDS] MODE
 *
 * Modes (each reports one line per case on stdout):
 *   badprod      req_prod far past the ring, and just past it
 *   badbuf       buffer of another queue, past the pool, 0xffffffff
 *   badlen       ring len 0, len > buf_size, FUSE in.len != ring len
 *   toctou       a thread flips the shared header's len and opcode while
 *                requests are in flight (for SECONDS)
 *   flood        fill every ring, never read a response, keep ringing the
 *                doorbell (for SECONDS), then vanish
 *   garbage-op   unknown opcodes, impossible nodeids and file handles,
 *                truncated arguments, bad names: the backend must answer
 *                each with an error and keep the connection
 *   forgetflood  FORGET/BATCH_FORGET of unknown, live and root nodeids,
 *                lying counts; the connection must stay usable
 *   lookupflood  LOOKUP l0..l4999 (which the caller creates) and never
 *                FORGET, then hold the connection for SECONDS: the
 *                backend's descriptors must stay within max-fds
 *   escape       FUSE-level escape attempts ('..', slashes and NULs in
 *                names, symlinks and /proc magic links, devices, FIFOs,
 *                bogus nodeids, released and guessed handles, trusted.*,
 *                a symlink swapped under lookup/open for SECONDS): every
 *                one refused, no reply carrying "XF-OUTSIDE"
 *
 * Exit status: 0 the backend behaved (closed the connection on ring
 * violations; answered and stayed connected for FUSE-level garbage),
 * 1 it misbehaved, 2 usage or setup error.
 *
 * Concurrency: single-threaded except toctou's flipper thread, which only
 * stores into the shared buffer (atomically, relaxed: racing the backend
 * is the point).  Trust: this program trusts nothing it reads back either.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/fuse.h>

#include "ring.h"
#include "transport.h"

#define EV_QUEUES	2u
#define EV_ORDER	3u
#define EV_BUFSZ	(3u * XENFS_PAGE_SIZE)
#define EV_TIMEOUT_MS	5000

static const char *ev_sock, *ev_tag;
static int ev_seconds = 3;
static int ev_failed;

struct evil {
	struct xf_conn *c;
	struct xf_fring r[EV_QUEUES];
	uint64_t unique;
};

static void report(int ok, const char *mode, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void report(int ok, const char *mode, const char *fmt, ...)
{
	va_list ap;

	printf("xf-evil: %s: %s: ", mode, ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (!ok)
		ev_failed = 1;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int ev_connect(struct evil *e)
{
	struct xenfs_layout l = {
		.nr_queues = EV_QUEUES,
		.ring_order = EV_ORDER,
		.buf_size = EV_BUFSZ,
	};
	char err[256];
	uint32_t granted;
	uint32_t q;
	int r;

	memset(e, 0, sizeof(*e));
	r = xf_local_connect(ev_sock, ev_tag, 0, &l, &e->c, &granted, err,
			     sizeof(err));
	if (r < 0) {
		fprintf(stderr, "xf-evil: connect %s tag %s: %s\n", ev_sock,
			ev_tag, err);
		return r;
	}
	for (q = 0; q < EV_QUEUES; q++)
		xf_fring_init(&e->r[q], xf_region_sring(e->c->base, q),
			      1u << EV_ORDER);
	e->unique = 2;
	return 0;
}

static void ev_close(struct evil *e)
{
	xf_conn_destroy(e->c);
	e->c = NULL;
}

static uint8_t *ev_buf(struct evil *e, uint32_t idx)
{
	return xf_region_buf(e->c->base, &e->c->layout, idx);
}

/* The buffer an honest frontend would use for the next slot of queue q. */
static uint32_t ev_next_buf(struct evil *e, uint32_t q)
{
	return (q << EV_ORDER) + (e->r[q].req_prod_pvt & ((1u << EV_ORDER) - 1));
}

static void ev_post(struct evil *e, uint32_t q, uint32_t buf, uint32_t len)
{
	struct xenfs_ring_req req = { .id = e->unique, .buf = buf, .len = len };

	xf_fring_put(&e->r[q], &req);
	(void)xf_fring_push(&e->r[q]);
	(void)xf_conn_notify(e->c, q);	/* always: we are not polite */
}

/* Has the backend closed the connection?  1 yes, 0 no. */
static int ev_peer_gone(struct evil *e, int timeout_ms)
{
	struct pollfd p = { .fd = xf_conn_peer_fd(e->c), .events = POLLIN };

	if (p.fd < 0)
		return 0;
	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	return xf_conn_peer_check(e->c) == -ENOTCONN;
}

/*
 * Wait for the next response on queue q.  1 got one, -ETIMEDOUT,
 * -ENOTCONN (backend closed), -EPROTO (impossible indices).
 */
static int ev_wait(struct evil *e, uint32_t q, struct xenfs_ring_rsp *rsp,
		   int timeout_ms)
{
	long end = now_ms() + timeout_ms;
	struct pollfd p[2];
	int r;

	p[0].fd = xf_conn_event_fd(e->c, q);
	p[0].events = POLLIN;
	p[1].fd = xf_conn_peer_fd(e->c);
	p[1].events = POLLIN;
	for (;;) {
		r = xf_fring_get(&e->r[q], rsp);
		if (r != 0)
			return r;
		if (xf_fring_final_check(&e->r[q]))
			continue;
		if (now_ms() >= end)
			return -ETIMEDOUT;
		r = poll(p, p[1].fd >= 0 ? 2 : 1, (int)(end - now_ms()));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0 && (p[0].revents & POLLIN))
			(void)xf_conn_event_ack(e->c, q);
		if (r > 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) &&
		    xf_conn_peer_check(e->c) == -ENOTCONN)
			return -ENOTCONN;
	}
}

/* Write a FUSE frame into buffer buf; returns its length. */
static uint32_t ev_frame(struct evil *e, uint32_t buf, uint32_t opcode,
			 uint64_t nodeid, const void *arg, uint32_t arglen)
{
	struct fuse_in_header h;
	uint8_t *b = ev_buf(e, buf);

	memset(&h, 0, sizeof(h));
	h.len = (uint32_t)sizeof(h) + arglen;
	h.opcode = opcode;
	h.unique = ++e->unique;
	h.nodeid = nodeid;
	memcpy(b, &h, sizeof(h));
	if (arglen)
		memcpy(b + sizeof(h), arg, arglen);
	return h.len;
}

/*
 * One request on queue 0, answered.  Returns the reply's error (0 or
 * -errno), 1 for "no reply frame" (FORGET), or a transport failure as
 * -ETIMEDOUT/-ENOTCONN/-EPROTO with *transport set.  The reply is checked
 * against the request (unique, length) before it is believed.
 */
static int ev_call(struct evil *e, uint32_t opcode, uint64_t nodeid,
		   const void *arg, uint32_t arglen, void *out,
		   uint32_t outlen, int *transport)
{
	uint32_t buf = ev_next_buf(e, 0), len;
	struct xenfs_ring_rsp rsp;
	struct fuse_out_header oh;
	uint64_t unique;
	int r;

	*transport = 0;
	len = ev_frame(e, buf, opcode, nodeid, arg, arglen);
	unique = e->unique;
	ev_post(e, 0, buf, len);
	r = ev_wait(e, 0, &rsp, EV_TIMEOUT_MS);
	if (r < 0) {
		*transport = 1;
		return r;
	}
	if (rsp.buf != buf || rsp.len > EV_BUFSZ) {
		*transport = 1;
		return -EPROTO;
	}
	if (rsp.len == 0)
		return 1;
	if (rsp.len < sizeof(oh)) {
		*transport = 1;
		return -EPROTO;
	}
	memcpy(&oh, ev_buf(e, buf), sizeof(oh));
	if (oh.unique != unique || oh.len != rsp.len || oh.error > 0 ||
	    oh.error < -4095) {
		*transport = 1;
		return -EPROTO;
	}
	if (out && outlen) {
		uint32_t n = rsp.len - (uint32_t)sizeof(oh);

		memset(out, 0, outlen);
		memcpy(out, ev_buf(e, buf) + sizeof(oh),
		       n < outlen ? n : outlen);
	}
	return oh.error;
}

static int ev_init(struct evil *e)
{
	struct fuse_init_in in;
	int t, r;

	memset(&in, 0, sizeof(in));
	in.major = FUSE_KERNEL_VERSION;
	in.minor = FUSE_KERNEL_MINOR_VERSION;
	in.max_readahead = 65536;
	r = ev_call(e, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, &t);
	if (r != 0) {
		fprintf(stderr, "xf-evil: INIT failed: %s%s\n", strerror(-r),
			t ? " (transport)" : "");
		return r < 0 ? r : -EPROTO;
	}
	return 0;
}

/* A connection that violated the ring protocol must be closed. */
static void expect_closed(struct evil *e, const char *mode, const char *what)
{
	int gone = ev_peer_gone(e, EV_TIMEOUT_MS);

	report(gone, mode, "%s: %s", what, gone ? "backend closed the "
	       "connection" : "connection still open after a violation");
}

/* ---- modes ---- */

static int mode_badprod(void)
{
	static const struct { const char *what; uint32_t delta; } cases[] = {
		{ "req_prod = 0x40000000", 0x40000000u },
		{ "req_prod = ring size + 1", (1u << EV_ORDER) + 1 },
		{ "req_prod = -1", 0xffffffffu },
	};
	struct evil e;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (ev_connect(&e) < 0)
			return 2;
		xf_store_release(&e.r[0].s->req_prod, cases[i].delta);
		(void)xf_conn_notify(e.c, 0);
		expect_closed(&e, "badprod", cases[i].what);
		ev_close(&e);
	}
	return 0;
}

static int mode_badbuf(void)
{
	static const struct { const char *what; uint32_t q, buf; } cases[] = {
		{ "queue 0 names a buffer of queue 1", 0, 1u << EV_ORDER },
		{ "queue 1 names a buffer of queue 0", 1, 0 },
		{ "buffer past the pool", 0, EV_QUEUES << EV_ORDER },
		{ "buffer 0xffffffff", 0, 0xffffffffu },
	};
	struct evil e;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t len;

		if (ev_connect(&e) < 0)
			return 2;
		/* a valid frame in a valid buffer, named wrongly */
		len = ev_frame(&e, 0, FUSE_GETATTR, 1, NULL, 0);
		ev_post(&e, cases[i].q, cases[i].buf, len);
		expect_closed(&e, "badbuf", cases[i].what);
		ev_close(&e);
	}
	return 0;
}

static int mode_badlen(void)
{
	struct fuse_in_header h;
	struct evil e;
	uint32_t len;
	int i;

	for (i = 0; i < 4; i++) {
		const char *what = NULL;

		if (ev_connect(&e) < 0)
			return 2;
		len = ev_frame(&e, 0, FUSE_GETATTR, 1, NULL, 0);
		switch (i) {
		case 0:
			what = "ring len 0";
			ev_post(&e, 0, 0, 0);
			break;
		case 1:
			what = "ring len > buf_size";
			ev_post(&e, 0, 0, EV_BUFSZ + 1);
			break;
		case 2:
			what = "FUSE in.len != ring len";
			memcpy(&h, ev_buf(&e, 0), sizeof(h));
			h.len = len + 100;
			memcpy(ev_buf(&e, 0), &h, sizeof(h));
			ev_post(&e, 0, 0, len);
			break;
		default:
			what = "ring len shorter than a FUSE header";
			ev_post(&e, 0, 0, (uint32_t)sizeof(h) - 1);
			break;
		}
		expect_closed(&e, "badlen", what);
		ev_close(&e);
	}
	return 0;
}

struct flipper {
	uint8_t *hdr;
	volatile int stop;
	unsigned long flips;
};

static void *flip_thread(void *arg)
{
	struct flipper *f = arg;
	static const uint32_t ops[] = { FUSE_GETATTR, FUSE_WRITE, FUSE_INIT,
					FUSE_LOOKUP, FUSE_BATCH_FORGET, 9999 };
	static const uint32_t lens[] = { 56, 0, 39, 40, 0xffffffffu, 4096,
					 EV_BUFSZ, EV_BUFSZ + 1 };
	unsigned long i = 0;

	while (!f->stop) {
		uint8_t *h = f->hdr + (i % (1u << EV_ORDER)) * EV_BUFSZ;
		uint32_t *len = (uint32_t *)(void *)h, *op = len + 1;

		__atomic_store_n(len, lens[i % 8], __ATOMIC_RELAXED);
		__atomic_store_n(op, ops[i % 6], __ATOMIC_RELAXED);
		i++;
	}
	f->flips = i;
	return NULL;
}

static int mode_toctou(void)
{
	long end = now_ms() + ev_seconds * 1000L;
	unsigned long reqs = 0, replies = 0, closes = 0, flips = 0;
	struct fuse_getattr_in ga;
	struct evil e;

	memset(&ga, 0, sizeof(ga));
	while (now_ms() < end) {
		struct flipper f = { 0 };
		pthread_t th;
		int dead = 0;

		if (ev_connect(&e) < 0)
			return 2;
		if (ev_init(&e) < 0) {
			ev_close(&e);
			return 2;
		}
		/* requests rotate over queue 0's buffers: flip them all */
		f.hdr = ev_buf(&e, 0);	/* buffers 0..size-1 are contiguous */
		if (pthread_create(&th, NULL, flip_thread, &f) != 0) {
			ev_close(&e);
			return 2;
		}
		while (!dead && now_ms() < end) {
			struct xenfs_ring_rsp rsp;
			uint32_t buf = ev_next_buf(&e, 0), len;
			int r;

			len = ev_frame(&e, buf, FUSE_GETATTR, 1, &ga,
				       sizeof(ga));
			ev_post(&e, 0, buf, len);
			reqs++;
			r = ev_wait(&e, 0, &rsp, 1000);
			if (r == 1)
				replies++;
			else if (r == -ENOTCONN || ev_peer_gone(&e, 0)) {
				closes++;
				dead = 1;
			} else if (r == -ETIMEDOUT) {
				/* the backend dropped it: it must then have
				 * broken the connection */
				if (!ev_peer_gone(&e, EV_TIMEOUT_MS)) {
					report(0, "toctou", "request neither "
					       "answered nor connection closed");
					dead = 1;
				} else {
					closes++;
					dead = 1;
				}
			} else
				dead = 1;
		}
		f.stop = 1;
		pthread_join(th, NULL);
		flips += f.flips;
		ev_close(&e);
	}
	report(reqs > 0, "toctou", "%lu requests, %lu replies, %lu connections "
	       "closed by the backend, %lu header flips", reqs, replies, closes,
	       flips);
	return 0;
}

static int mode_flood(void)
{
	long end = now_ms() + ev_seconds * 1000L;
	unsigned long kicks = 0;
	struct evil e;
	uint32_t q, i;

	if (ev_connect(&e) < 0)
		return 2;
	if (ev_init(&e) < 0) {
		ev_close(&e);
		return 2;
	}
	/* INIT's response was consumed; now fill every slot of every
	 * queue with honest requests and never look at an answer */
	for (q = 0; q < EV_QUEUES; q++) {
		struct fuse_getattr_in ga;

		memset(&ga, 0, sizeof(ga));
		for (i = 0; xf_fring_free(&e.r[q]) > 0; i++) {
			uint32_t buf = ev_next_buf(&e, q);
			uint32_t len = ev_frame(&e, buf, FUSE_GETATTR, 1, &ga,
						sizeof(ga));

			ev_post(&e, q, buf, len);
		}
	}
	while (now_ms() < end) {
		for (q = 0; q < EV_QUEUES; q++)
			(void)xf_conn_notify(e.c, q);
		kicks++;
		if (ev_peer_gone(&e, 0)) {
			report(0, "flood", "backend closed an honest (if "
			       "rude) connection");
			ev_close(&e);
			return 0;
		}
		usleep(1000);
	}
	report(1, "flood", "%u queues full for %d s, %lu doorbell rounds; "
	       "vanishing without reading a response", EV_QUEUES, ev_seconds,
	       kicks);
	ev_close(&e);
	return 0;
}

/* Expect an error reply (must_fail) or any reply, connection alive. */
static void garbage(struct evil *e, const char *what, uint32_t opcode,
		    uint64_t nodeid, const void *arg, uint32_t arglen,
		    int must_fail)
{
	int t, r = ev_call(e, opcode, nodeid, arg, arglen, NULL, 0, &t);

	if (t)
		report(0, "garbage-op", "%s: no valid reply (%s)", what,
		       strerror(-r));
	else if (must_fail && r == 0)
		report(0, "garbage-op", "%s: succeeded", what);
	else
		report(1, "garbage-op", "%s: %s", what,
		       r == 1 ? "no reply frame" : r ? strerror(-r) : "ok");
}

static int mode_garbage(void)
{
	struct fuse_init_in ii;
	struct fuse_read_in rd;
	struct fuse_write_in wr;
	struct fuse_release_in rl;
	struct fuse_getxattr_in gx;
	struct fuse_interrupt_in in;
	struct fuse_attr_out ao;
	uint8_t big[64];
	struct evil e;
	int t, r;

	if (ev_connect(&e) < 0)
		return 2;
	/* before INIT */
	garbage(&e, "GETATTR before INIT", FUSE_GETATTR, 1, NULL, 0, 1);
	if (ev_init(&e) < 0) {
		ev_close(&e);
		return 2;
	}
	garbage(&e, "opcode 9999", 9999, 1, NULL, 0, 1);
	garbage(&e, "opcode 0", 0, 1, NULL, 0, 1);
	garbage(&e, "opcode 0xffffffff", 0xffffffffu, 1, NULL, 0, 1);
	memset(big, 0, sizeof(big));
	garbage(&e, "GETATTR nodeid 0xdeadbeefcafe", FUSE_GETATTR,
		0xdeadbeefcafeull, big, sizeof(struct fuse_getattr_in), 1);
	garbage(&e, "GETATTR nodeid 0", FUSE_GETATTR, 0, big,
		sizeof(struct fuse_getattr_in), 1);
	garbage(&e, "GETATTR nodeid -1", FUSE_GETATTR, ~0ull, big,
		sizeof(struct fuse_getattr_in), 1);
	garbage(&e, "LOOKUP without a name", FUSE_LOOKUP, 1, NULL, 0, 1);
	garbage(&e, "LOOKUP name without NUL", FUSE_LOOKUP, 1, "abc", 3, 1);
	garbage(&e, "LOOKUP empty name", FUSE_LOOKUP, 1, "", 1, 1);
	garbage(&e, "LOOKUP 'a/b'", FUSE_LOOKUP, 1, "a/b", 4, 1);
	garbage(&e, "LOOKUP '..' of the root", FUSE_LOOKUP, 1, "..", 3, 0);
	garbage(&e, "LOOKUP in nodeid 0xdeadbeef", FUSE_LOOKUP, 0xdeadbeefull,
		"x", 2, 1);
	garbage(&e, "SETATTR, 4-byte argument", FUSE_SETATTR, 1, big, 4, 1);
	garbage(&e, "MKDIR, truncated argument", FUSE_MKDIR, 1, big, 3, 1);
	garbage(&e, "RENAME, truncated argument", FUSE_RENAME, 1, big, 9, 1);
	memset(&rd, 0, sizeof(rd));
	rd.fh = 12345;
	rd.size = 4096;
	garbage(&e, "READ of a handle never opened", FUSE_READ, 1, &rd,
		sizeof(rd), 1);
	rd.fh = 0;
	rd.size = 0xffffffffu;
	garbage(&e, "READ size 4G", FUSE_READ, 1, &rd, sizeof(rd), 1);
	garbage(&e, "READDIR without OPENDIR", FUSE_READDIR, 1, &rd,
		sizeof(rd), 1);
	memset(&wr, 0, sizeof(wr));
	wr.fh = 77;
	wr.size = 1u << 20;	/* far more than the frame carries */
	garbage(&e, "WRITE size beyond the frame", FUSE_WRITE, 1, &wr,
		sizeof(wr), 1);
	memset(&rl, 0, sizeof(rl));
	rl.fh = 999;
	garbage(&e, "RELEASE of a handle never opened", FUSE_RELEASE, 1, &rl,
		sizeof(rl), 0);
	memset(&gx, 0, sizeof(gx));
	gx.size = 0xffffffffu;
	{
		uint8_t b[sizeof(gx) + 16];

		memcpy(b, &gx, sizeof(gx));
		memcpy(b + sizeof(gx), "user.nosuch", 12);
		garbage(&e, "GETXATTR size 4G", FUSE_GETXATTR, 1, b,
			(uint32_t)sizeof(gx) + 12, 1);
	}
	memset(&ii, 0, sizeof(ii));
	ii.major = FUSE_KERNEL_VERSION;
	ii.minor = FUSE_KERNEL_MINOR_VERSION;
	garbage(&e, "second INIT", FUSE_INIT, 0, &ii, sizeof(ii), 1);
	memset(&in, 0, sizeof(in));
	in.unique = 0x123456789ull;
	garbage(&e, "INTERRUPT of an unknown request", FUSE_INTERRUPT, 0, &in,
		sizeof(in), 0);
	/* still connected and serving? */
	r = ev_call(&e, FUSE_GETATTR, 1, big, sizeof(struct fuse_getattr_in),
		    &ao, sizeof(ao), &t);
	report(!t && r == 0, "garbage-op", "GETATTR of the root afterwards: %s",
	       t ? "connection lost" : r ? strerror(-r) : "ok");
	report(!ev_peer_gone(&e, 0), "garbage-op", "connection still open");
	ev_close(&e);
	return 0;
}

static int mode_forgetflood(void)
{
	long end = now_ms() + ev_seconds * 1000L;
	struct fuse_entry_out eo;
	struct fuse_forget_in fi;
	struct fuse_attr_out ao;
	uint8_t frame[EV_BUFSZ - sizeof(struct fuse_in_header)];
	struct fuse_batch_forget_in *bf = (void *)frame;
	struct fuse_forget_one *one =
		(void *)(frame + sizeof(struct fuse_batch_forget_in));
	uint32_t maxone = (uint32_t)((sizeof(frame) - sizeof(*bf)) /
				     sizeof(*one));
	unsigned long forgets = 0, batches = 0;
	uint64_t nid = 0, x = 88172645463325252ull;
	uint8_t ga[sizeof(struct fuse_getattr_in)];
	struct evil e;
	uint32_t i;
	int t, r;

	if (ev_connect(&e) < 0)
		return 2;
	if (ev_init(&e) < 0) {
		ev_close(&e);
		return 2;
	}
	memset(ga, 0, sizeof(ga));
	/* a live inode to forget too much of */
	r = ev_call(&e, FUSE_LOOKUP, 1, "f", 2, &eo, sizeof(eo), &t);
	if (!t && r == 0)
		nid = eo.nodeid;
	while (now_ms() < end) {
		/* single FORGETs: live, root, unknown, with huge counts */
		fi.nlookup = ~0ull;
		(void)ev_call(&e, FUSE_FORGET, nid ? nid : 1, &fi, sizeof(fi),
			    NULL, 0, &t);
		if (t)
			break;
		fi.nlookup = 1ull << 40;
		(void)ev_call(&e, FUSE_FORGET, 1, &fi, sizeof(fi), NULL, 0, &t);
		if (t)
			break;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		(void)ev_call(&e, FUSE_FORGET, x, &fi, sizeof(fi), NULL, 0, &t);
		if (t)
			break;
		/* FORGET with no argument at all */
		(void)ev_call(&e, FUSE_FORGET, x, NULL, 0, NULL, 0, &t);
		if (t)
			break;
		forgets += 4;
		/* BATCH_FORGET: full, lying count, zero count */
		memset(frame, 0, sizeof(frame));
		bf->count = maxone;
		for (i = 0; i < maxone; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			one[i].nodeid = i % 3 == 0 ? 1 : i % 3 == 1 ? nid : x;
			one[i].nlookup = x;
		}
		(void)ev_call(&e, FUSE_BATCH_FORGET, 0, frame, sizeof(frame),
			    NULL, 0, &t);
		if (t)
			break;
		bf->count = 0xffffffffu;
		(void)ev_call(&e, FUSE_BATCH_FORGET, 0, frame,
			    (uint32_t)sizeof(*bf) + 2 * sizeof(*one), NULL, 0,
			    &t);
		if (t)
			break;
		bf->count = 0;
		(void)ev_call(&e, FUSE_BATCH_FORGET, 0, frame, sizeof(*bf), NULL,
			    0, &t);
		if (t)
			break;
		batches += 3;
		/* the forgotten inode again */
		if (nid)
			(void)ev_call(&e, FUSE_GETATTR, nid, ga, sizeof(ga),
				      &ao, sizeof(ao), &t);
		if (t)
			break;
	}
	report(!t, "forgetflood", "%lu FORGETs, %lu BATCH_FORGETs%s", forgets,
	       batches, t ? ": connection lost" : "");
	if (t) {
		ev_close(&e);
		return 0;
	}
	r = ev_call(&e, FUSE_LOOKUP, 1, "f", 2, &eo, sizeof(eo), &t);
	report(!t && (r == 0 || r == -ENOENT), "forgetflood",
	       "LOOKUP afterwards: %s", t ? "connection lost" :
	       r ? strerror(-r) : "ok");
	r = ev_call(&e, FUSE_GETATTR, 1, ga, sizeof(ga), &ao, sizeof(ao), &t);
	report(!t && r == 0, "forgetflood", "GETATTR of the root afterwards: "
	       "%s", t ? "connection lost" : r ? strerror(-r) : "ok");
	ev_close(&e);
	return 0;
}

/*
 * LOOKUP every name "l0".."lN-1" (the test creates them) and never
 * FORGET: the backend's descriptor use must stay within its max-fds bound.
 * Stays connected for SECONDS afterwards so the caller can count.
 */
static int mode_lookupflood(void)
{
	struct fuse_entry_out eo;
	unsigned long ok = 0, fail = 0;
	char name[32];
	struct evil e;
	int i, t, r;

	if (ev_connect(&e) < 0)
		return 2;
	if (ev_init(&e) < 0) {
		ev_close(&e);
		return 2;
	}
	for (i = 0; i < 5000; i++) {
		int n = snprintf(name, sizeof(name), "l%d", i);

		r = ev_call(&e, FUSE_LOOKUP, 1, name, (uint32_t)n + 1, &eo,
			    sizeof(eo), &t);
		if (t)
			break;
		if (r == 0)
			ok++;
		else
			fail++;
	}
	report(!t, "lookupflood", "%lu lookups answered, %lu errors%s", ok,
	       fail, t ? ", connection lost" : "");
	printf("xf-evil: lookupflood: holding the connection for %d s\n",
	       ev_seconds);
	fflush(stdout);
	sleep((unsigned)ev_seconds);
	ev_close(&e);
	return 0;
}

/* ---- escape: FUSE-level attempts to reach outside the export ---- */

/*
 * The export (tests/integration/t_escape_suite.sh) holds: file, dir/,
 * out -> OUTSIDE/marker (absolute), up -> .. , procroot -> /proc/self/root,
 * procfd -> /proc/self/fd/0, fifo, null (char device), race (swapped by
 * the test between a directory and a link to OUTSIDE).  Whatever the
 * backend answers, no reply may carry the marker "XF-OUTSIDE".
 */
static int esc_fail_count;

static void esc(const char *what, int ok, int r)
{
	if (!ok)
		esc_fail_count++;
	report(ok, "escape", "%s: %s", what,
	       r == 1 ? "no reply frame" : r ? strerror(-r) : "ok");
}

static int esc_lookup(struct evil *e, uint64_t dir, const char *name,
		      uint32_t len, uint64_t *nodeid)
{
	struct fuse_entry_out eo;
	int t, r;

	r = ev_call(e, FUSE_LOOKUP, dir, name, len, &eo, sizeof(eo), &t);
	if (t)
		return -EPROTO;
	if (r == 0 && nodeid)
		*nodeid = eo.nodeid;
	return r;
}

static int esc_open(struct evil *e, uint64_t nodeid, uint32_t flags,
		    uint64_t *fh)
{
	struct fuse_open_in oi;
	struct fuse_open_out oo;
	int t, r;

	memset(&oi, 0, sizeof(oi));
	oi.flags = flags;
	r = ev_call(e, FUSE_OPEN, nodeid, &oi, sizeof(oi), &oo, sizeof(oo),
		    &t);
	if (t)
		return -EPROTO;
	if (r == 0)
		*fh = oo.fh;
	return r;
}

/* READ fh; 0 and the bytes in buf, or -errno.  Never the marker. */
static int esc_read(struct evil *e, uint64_t nodeid, uint64_t fh,
		    char *buf, size_t len)
{
	struct fuse_read_in rd;
	int t, r;

	memset(&rd, 0, sizeof(rd));
	rd.fh = fh;
	rd.size = (uint32_t)len - 1;
	r = ev_call(e, FUSE_READ, nodeid, &rd, sizeof(rd), buf,
		    (uint32_t)len - 1, &t);
	buf[len - 1] = '\0';
	if (t)
		return -EPROTO;
	if (strstr(buf, "XF-OUTSIDE"))
		return -EXDEV;	/* an escape: reported by the callers */
	return r;
}

static void esc_release(struct evil *e, uint64_t nodeid, uint64_t fh)
{
	struct fuse_release_in rl;
	int t;

	memset(&rl, 0, sizeof(rl));
	rl.fh = fh;
	(void)ev_call(e, FUSE_RELEASE, nodeid, &rl, sizeof(rl), NULL, 0, &t);
}

static int mode_escape(void)
{
	struct evil e;
	uint64_t n_file = 0, n_dir = 0, n = 0, fh = 0, n2 = 0;
	char buf[256];
	uint8_t arg[512];
	int t, r, i, reads = 0, refused = 0;
	long end;

	if (ev_connect(&e) < 0)
		return 2;
	if (ev_init(&e) < 0) {
		ev_close(&e);
		return 2;
	}
	esc_fail_count = 0;
	r = esc_lookup(&e, 1, "file", 5, &n_file);
	if (r != 0 || esc_lookup(&e, 1, "dir", 4, &n_dir) != 0) {
		report(0, "escape", "setup lookups failed");
		ev_close(&e);
		return 1;
	}

	/* 1-6: names that are not one component */
	r = esc_lookup(&e, 1, "..", 3, &n);
	esc("LOOKUP '..' of the root", r != 0, r);
	r = esc_lookup(&e, n_dir, "..", 3, &n);
	esc("LOOKUP '..' of a subdirectory", r != 0, r);
	r = esc_lookup(&e, 1, ".", 2, &n);
	esc("LOOKUP '.'", r != 0, r);
	r = esc_lookup(&e, 1, "dir/../../etc", 14, &n);
	esc("LOOKUP 'dir/../../etc' (slash inside)", r != 0, r);
	r = esc_lookup(&e, 1, "/etc", 5, &n);
	esc("LOOKUP '/etc' (absolute)", r != 0, r);
	memcpy(arg, "file\0../../etc/passwd", 22);
	r = esc_lookup(&e, 1, (const char *)arg, 22, &n);
	esc("LOOKUP with an embedded NUL ('file\\0../../etc/passwd')",
	    r != 0 || n == n_file, r);

	/* 7-10: creating names outside */
	{
		struct fuse_mkdir_in mi = { .mode = 0755 };

		memcpy(arg, &mi, sizeof(mi));
		memcpy(arg + sizeof(mi), "../ESCAPED", 11);
		r = ev_call(&e, FUSE_MKDIR, 1, arg, sizeof(mi) + 11, NULL, 0,
			    &t);
		esc("MKDIR '../ESCAPED'", !t && r != 0, r);
	}
	{
		struct fuse_create_in ci = { .flags = O_WRONLY | O_CREAT,
					     .mode = 0644 };

		memcpy(arg, &ci, sizeof(ci));
		memcpy(arg + sizeof(ci), "../ESCAPED", 11);
		r = ev_call(&e, FUSE_CREATE, 1, arg, sizeof(ci) + 11, NULL, 0,
			    &t);
		esc("CREATE '../ESCAPED'", !t && r != 0, r);
	}
	memcpy(arg, "a/b\0/tmp\0", 9);
	r = ev_call(&e, FUSE_SYMLINK, 1, arg, 9, NULL, 0, &t);
	esc("SYMLINK named 'a/b'", !t && r != 0, r);
	{
		struct fuse_rename_in ri = { .newdir = 1 };

		memcpy(arg, &ri, sizeof(ri));
		memcpy(arg + sizeof(ri), "file\0../ESCAPED", 16);
		r = ev_call(&e, FUSE_RENAME, 1, arg, sizeof(ri) + 16, NULL, 0,
			    &t);
		esc("RENAME file -> '../ESCAPED'", !t && r != 0, r);
	}

	/* 11-14: symlinks: never followed by the backend */
	r = esc_lookup(&e, 1, "out", 4, &n);
	if (r == 0) {
		r = esc_open(&e, n, O_RDONLY, &fh);
		esc("OPEN of a symlink to an outside file", r != 0, r);
		r = esc_lookup(&e, n, "x", 2, &n2);
		esc("LOOKUP under a symlink's nodeid", r != 0, r);
	} else {
		esc("LOOKUP out (a planted symlink)", 0, r);
	}
	r = esc_lookup(&e, 1, "up", 3, &n);
	if (r == 0) {
		r = esc_lookup(&e, n, "file", 5, &n2);
		esc("LOOKUP through symlink 'up' -> ..", r != 0, r);
	}
	r = esc_lookup(&e, 1, "procroot", 9, &n);
	if (r == 0) {
		r = esc_lookup(&e, n, "etc", 4, &n2);
		esc("LOOKUP through /proc/self/root magic link", r != 0, r);
		r = esc_open(&e, n, O_RDONLY | O_DIRECTORY, &fh);
		esc("OPEN of /proc/self/root magic link", r != 0, r);
	}
	r = esc_lookup(&e, 1, "procfd", 7, &n);
	if (r == 0) {
		r = esc_open(&e, n, O_RDWR, &fh);
		esc("OPEN of /proc/self/fd/0 magic link", r != 0, r);
	}

	/* 15-17: special files */
	r = esc_lookup(&e, 1, "null", 5, &n);
	if (r == 0) {
		r = esc_open(&e, n, O_RDWR, &fh);
		esc("OPEN of a dom0-planted char device", r != 0, r);
	}
	r = esc_lookup(&e, 1, "fifo", 5, &n);
	if (r == 0) {
		long t0 = now_ms();

		r = esc_open(&e, n, O_RDONLY, &fh);
		esc("OPEN of a FIFO (must not block the backend)",
		    r != 0 && now_ms() - t0 < 3000, r);
	}
	{
		struct fuse_mknod_in mn = { .mode = S_IFCHR | 0666,
					    .rdev = 0x103 };

		memcpy(arg, &mn, sizeof(mn));
		memcpy(arg + sizeof(mn), "gdev", 5);
		r = ev_call(&e, FUSE_MKNOD, 1, arg, sizeof(mn) + 5, NULL, 0,
			    &t);
		esc("MKNOD of a char device", !t && r != 0, r);
	}

	/* 18-21: bogus nodeids */
	r = ev_call(&e, FUSE_GETATTR, 0x7fffffffffffull, arg, 16, NULL, 0, &t);
	esc("GETATTR of a nodeid never given", !t && r != 0, r);
	r = esc_lookup(&e, 0xdeadbeefull, "etc", 4, &n);
	esc("LOOKUP in a nodeid never given", r != 0, r);
	{
		struct fuse_link_in li = { .oldnodeid = 0x1234567ull };

		memcpy(arg, &li, sizeof(li));
		memcpy(arg + sizeof(li), "hl", 3);
		r = ev_call(&e, FUSE_LINK, 1, arg, sizeof(li) + 3, NULL, 0,
			    &t);
		esc("LINK of a nodeid never given", !t && r != 0, r);
		li.oldnodeid = n_dir;
		memcpy(arg, &li, sizeof(li));
		r = ev_call(&e, FUSE_LINK, 1, arg, sizeof(li) + 3, NULL, 0,
			    &t);
		esc("LINK of a directory", !t && r != 0, r);
	}
	{
		struct fuse_rename_in ri = { .newdir = 0xabcdefull };

		memcpy(arg, &ri, sizeof(ri));
		memcpy(arg + sizeof(ri), "file\0x", 7);
		r = ev_call(&e, FUSE_RENAME, 1, arg, sizeof(ri) + 7, NULL, 0,
			    &t);
		esc("RENAME into a nodeid never given", !t && r != 0, r);
	}
	{
		struct fuse_forget_in fi = { .nlookup = 1000 };

		r = esc_lookup(&e, 1, "file", 5, &n);
		(void)ev_call(&e, FUSE_FORGET, n, &fi, sizeof(fi), NULL, 0,
			      &t);
		r = ev_call(&e, FUSE_GETATTR, n, arg, 16, NULL, 0, &t);
		esc("GETATTR of a nodeid after FORGET", !t && r != 0, r);
	}

	/* 22-24: handles after release, and guessed */
	r = esc_lookup(&e, 1, "file", 5, &n_file);
	r = r ? r : esc_open(&e, n_file, O_RDWR, &fh);
	if (r == 0) {
		struct fuse_write_in wr;

		esc_release(&e, n_file, fh);
		r = esc_read(&e, n_file, fh, buf, sizeof(buf));
		esc("READ of a released handle", r != 0 && r != -EXDEV, r);
		memset(&wr, 0, sizeof(wr));
		wr.fh = fh;
		wr.size = 4;
		memcpy(arg, &wr, sizeof(wr));
		memcpy(arg + sizeof(wr), "EVIL", 4);
		r = ev_call(&e, FUSE_WRITE, n_file, arg, sizeof(wr) + 4, NULL,
			    0, &t);
		esc("WRITE to a released handle", !t && r != 0, r);
	}
	for (i = 0, r = 0; i < 64; i++) {
		int rr = esc_read(&e, 1, (uint64_t)i * 7919 + 1000, buf,
				  sizeof(buf));

		if (rr == 0 || rr == -EXDEV)
			r = rr ? rr : -1;
	}
	esc("READ of 64 guessed handles", r == 0, r == -1 ? 0 : r);

	/* 25-26: attributes that would be host privilege */
	{
		uint8_t xa[64];
		struct fuse_setxattr_in sx = { .size = 1 };

		memcpy(xa, &sx, 8);
		memcpy(xa + 8, "trusted.overlay.redirect\0/", 26);
		r = ev_call(&e, FUSE_SETXATTR, n_file, xa, 34, NULL, 0, &t);
		esc("SETXATTR trusted.*", !t && r != 0, r);
	}
	{
		struct fuse_rename2_in r2 = { .newdir = 1, .flags = 4 };

		memcpy(arg, &r2, sizeof(r2));
		memcpy(arg + sizeof(r2), "file\0w", 7);
		r = ev_call(&e, FUSE_RENAME2, 1, arg, sizeof(r2) + 7, NULL, 0,
			    &t);
		esc("RENAME2 with RENAME_WHITEOUT", !t && r != 0, r);
	}

	/* 27: the race: 'race' is swapped between a directory holding an
	 * inside file and a symlink to the outside directory; look it up,
	 * look up marker under it, open and read, for SECONDS */
	end = now_ms() + ev_seconds * 1000L;
	while (now_ms() < end) {
		uint64_t rd, m;

		if (esc_lookup(&e, 1, "race", 5, &rd) != 0) {
			refused++;
			continue;
		}
		if (esc_lookup(&e, rd, "marker", 7, &m) != 0 ||
		    esc_open(&e, m, O_RDONLY, &fh) != 0) {
			refused++;
			continue;
		}
		r = esc_read(&e, m, fh, buf, sizeof(buf));
		esc_release(&e, m, fh);
		if (r == -EXDEV) {
			esc("race: read the OUTSIDE marker", 0, r);
			break;
		}
		reads++;
	}
	esc("symlink swapped between lookup and open (race loop)",
	    r != -EXDEV && reads + refused > 0, 0);
	printf("xf-evil: escape: race: %d inside reads, %d refused\n", reads,
	       refused);

	r = ev_call(&e, FUSE_GETATTR, 1, arg, 16, NULL, 0, &t);
	esc("root still served afterwards", !t && r == 0, r);
	printf("xf-evil: escape: %d failure(s)\n", esc_fail_count);
	ev_close(&e);
	return esc_fail_count ? 1 : 0;
}

static const struct {
	const char *name;
	int (*fn)(void);
} modes[] = {
	{ "escape", mode_escape },
	{ "lookupflood", mode_lookupflood },
	{ "badprod", mode_badprod },
	{ "badbuf", mode_badbuf },
	{ "badlen", mode_badlen },
	{ "toctou", mode_toctou },
	{ "flood", mode_flood },
	{ "garbage-op", mode_garbage },
	{ "forgetflood", mode_forgetflood },
};

static void usage(void)
{
	size_t i;

	fprintf(stderr, "usage: xf-evil -s SOCKET -t TAG [-d SECONDS] MODE\n"
		"modes:");
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		fprintf(stderr, " %s", modes[i].name);
	fputc('\n', stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	size_t i;
	int ch, r;

	while ((ch = getopt(argc, argv, "s:t:d:h")) != -1) {
		switch (ch) {
		case 's':
			ev_sock = optarg;
			break;
		case 't':
			ev_tag = optarg;
			break;
		case 'd':
			ev_seconds = atoi(optarg);
			if (ev_seconds < 1 || ev_seconds > 3600)
				usage();
			break;
		default:
			usage();
		}
	}
	if (!ev_sock || !ev_tag || optind != argc - 1)
		usage();
	for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (strcmp(argv[optind], modes[i].name))
			continue;
		r = modes[i].fn();
		if (r)
			return r;
		return ev_failed ? 1 : 0;
	}
	usage();
	return 2;
}
