/*
 * The Xen transport: the shared region is granted by the guest (frontend,
 * libxengnttab's gntshr side over gntalloc) and mapped by dom0 (backend,
 * gnttab side over gntdev) as one contiguous range; each queue's doorbell
 * is an interdomain event channel (libxenevtchn, one handle per queue so
 * that each queue's worker polls its own descriptor); the handshake is the
 * xenbus state machine over xenstore.  docs/xen.md specifies every key.
 *
 * Grant references: the region can be thousands of pages, too many for
 * one xenstore node each.  The frontend writes the refs of all region
 * pages into "reference directory" pages (1024 refs per page), grants
 * those read-only and publishes only their refs (ref-dir-<i>), like
 * blkif's indirect descriptors.  The backend copies the directory out
 * once and unmaps it; the frontend unshares it when Connected.
 *
 * The backend's accept is split in two so that xenfsd's privileged parent
 * never maps guest memory: xf_xen_back_read_offer() (xenstore only, in
 * the parent) fills a flat struct xf_xen_offer that is sent to the
 * domain's worker process, where xf_xen_back_map_offer() checks it again
 * and maps it.  xf_xen_back_accept() does both in one process.
 *
 * Concurrency: connect/accept/map/destroy run on one thread (the caller's
 * main thread).  notify/event_fd/event_ack of queue q are used only by
 * q's worker; each queue has its own xenevtchn handle, so they never
 * share state.  peer_fd/peer_check (frontend) run on the main thread.
 *
 * Trust boundary: on the backend every xenstore value of the frontend's
 * directory is guest-written and parsed strictly; the layout goes through
 * xf_layout_check() and the page count must match it exactly; the refs
 * are copied out of the directory before use (the guest could change
 * them under us).  On the frontend the backend's limits are read and
 * checked too, although dom0 is trusted more.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

#include "log.h"
#include "ring.h"
#include "transport.h"
#include "transport_xen_i.h"

#define XEN_PATH_MAX	128

enum xen_side { XEN_FRONT, XEN_BACK };

struct xen_priv {
	enum xen_side side;
	uint32_t peer;			/* the other domain */
	uint32_t nq;
	xenevtchn_handle *xce[XENFS_MAX_QUEUES];
	evtchn_port_t lport[XENFS_MAX_QUEUES];	/* our end of each channel */
	int bound[XENFS_MAX_QUEUES];
	uint64_t npages;
	/* frontend */
	xengntshr_handle *xgs;
	void *dir;			/* ref directory, until Connected */
	uint32_t ndir;
	struct xs_handle *xs;
	char fe[XEN_PATH_MAX];
	char be[XEN_PATH_MAX];
	/* backend */
	xengnttab_handle *xgt;
};

static uint64_t back_pages, back_ports;	/* main thread only */

int xf_xen_parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 10)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

static void xen_errf(char *err, size_t errlen, const char *fmt, ...)
	XF_PRINTF(3, 4);
static void xen_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Read dir/key; returns a malloc'ed string or NULL (errno set). */
static char *xs_get(struct xs_handle *xs, const char *dir, const char *key)
{
	char path[XEN_PATH_MAX + 32];
	unsigned int len;
	char *v;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, key) >=
	    sizeof(path)) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	v = xs_read(xs, XBT_NULL, path, &len);
	if (v && strlen(v) != len) {	/* embedded NUL: not a value of ours */
		free(v);
		errno = EINVAL;
		return NULL;
	}
	return v;
}

static int xs_get_u32(struct xs_handle *xs, const char *dir, const char *key,
		      uint32_t max, uint32_t *out)
{
	char *v = xs_get(xs, dir, key);
	int rc;

	if (v == NULL)
		return errno ? -errno : -ENOENT;
	rc = xf_xen_parse_u32(v, max, out);
	free(v);
	return rc;
}

static int xs_put(struct xs_handle *xs, xs_transaction_t t, const char *dir,
		  const char *key, const char *val)
{
	char path[XEN_PATH_MAX + 32];

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, key) >=
	    sizeof(path))
		return -ENAMETOOLONG;
	if (!xs_write(xs, t, path, val, strlen(val)))
		return errno ? -errno : -EIO;
	return 0;
}

static int xs_put_u32(struct xs_handle *xs, xs_transaction_t t,
		      const char *dir, const char *key, uint32_t v)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%" PRIu32, v);
	return xs_put(xs, t, dir, key, buf);
}

/* ---- doorbells, both sides ---- */

static int xen_notify(struct xf_conn *c, uint32_t q)
{
	struct xen_priv *p = c->priv;

	if (q >= p->nq)
		return -EINVAL;
	if (xenevtchn_notify(p->xce[q], p->lport[q]) < 0)
		return -errno;
	return 0;
}

static int xen_event_fd(struct xf_conn *c, uint32_t q)
{
	struct xen_priv *p = c->priv;

	if (q >= p->nq)
		return -EINVAL;
	return xenevtchn_fd(p->xce[q]);
}

/* Called once after the descriptor polled readable. */
static int xen_event_ack(struct xf_conn *c, uint32_t q)
{
	struct xen_priv *p = c->priv;
	xenevtchn_port_or_error_t port;

	if (q >= p->nq)
		return -EINVAL;
	port = xenevtchn_pending(p->xce[q]);
	if (port < 0)
		return -errno;
	if (xenevtchn_unmask(p->xce[q], (evtchn_port_t)port) < 0)
		return -errno;
	return 0;
}

static void xen_close_ports(struct xen_priv *p)
{
	uint32_t q;

	for (q = 0; q < XENFS_MAX_QUEUES; q++) {
		if (p->xce[q] == NULL)
			continue;
		if (p->bound[q]) {
			if (xenevtchn_unbind(p->xce[q], p->lport[q]) < 0)
				log_warn("xen: unbind port %u", p->lport[q]);
			else if (p->side == XEN_BACK)
				back_ports--;
		}
		xenevtchn_close(p->xce[q]);
		p->xce[q] = NULL;
		p->bound[q] = 0;
	}
}

/* ---- frontend ---- */

static int front_state(struct xen_priv *p, const char *dir)
{
	uint32_t st;

	if (xs_get_u32(p->xs, dir, XF_XK_STATE, XF_XB_CLOSED, &st) < 0)
		return -1;
	return (int)st;
}

static int front_set_state(struct xen_priv *p, enum xf_xenbus_state st)
{
	return xs_put_u32(p->xs, XBT_NULL, p->fe, XF_XK_STATE, st);
}

static void drain_watches(struct xs_handle *xs)
{
	char **w;

	while ((w = xs_check_watch(xs)) != NULL)
		free(w);
}

/*
 * Wait until the backend's state satisfies want(st) or timeout_ms passed.
 * Returns the state seen last (-1 when the node is missing).
 */
static int front_wait_backend(struct xen_priv *p, int (*want)(int st),
			      int timeout_ms)
{
	struct timespec t0, t1;
	struct pollfd pfd = { .fd = xs_fileno(p->xs), .events = POLLIN };
	int st, left;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		drain_watches(p->xs);
		st = front_state(p, p->be);
		if (want(st))
			return st;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		left = timeout_ms - (int)((t1.tv_sec - t0.tv_sec) * 1000 +
					  (t1.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0)
			return st;
		if (poll(&pfd, 1, left > 250 ? 250 : left) < 0 &&
		    errno != EINTR)
			return st;
	}
}

static int want_initwait(int st)
{
	return st == XF_XB_INITWAIT || st >= XF_XB_CLOSING || st < 0;
}

static int want_connected(int st)
{
	return st == XF_XB_CONNECTED || st >= XF_XB_CLOSING || st < 0;
}

static int want_closed(int st)
{
	return st == XF_XB_CLOSED || st == XF_XB_INITWAIT || st < 0;
}

static int front_peer_fd(struct xf_conn *c)
{
	struct xen_priv *p = c->priv;

	return xs_fileno(p->xs);
}

static int front_peer_check(struct xf_conn *c)
{
	struct xen_priv *p = c->priv;

	uint32_t st;
	int rc;

	drain_watches(p->xs);
	rc = xs_get_u32(p->xs, p->be, XF_XK_STATE, XF_XB_CLOSED, &st);
	if (rc == -ENOENT || rc == -EACCES || rc == -EINVAL)
		return -ENOTCONN;	/* directory gone, or junk in it */
	if (rc < 0) {
		/* A failed read is not a verdict on the backend: the
		 * watch fires again when the state really changes. */
		log_warnx("xen: reading %s/state: %s", p->be, strerror(-rc));
		return 0;
	}
	return st == XF_XB_CONNECTED ? 0 : -ENOTCONN;
}

static void front_release(struct xen_priv *p, void *base)
{
	xen_close_ports(p);
	if (p->dir) {
		(void)xengntshr_unshare(p->xgs, p->dir, p->ndir);
		p->dir = NULL;
	}
	if (base)
		(void)xengntshr_unshare(p->xgs, base, (uint32_t)p->npages);
	if (p->xgs)
		xengntshr_close(p->xgs);
	p->xgs = NULL;
}

static void front_destroy(struct xf_conn *c)
{
	struct xen_priv *p = c->priv;
	int st;

	/* Closing -> (backend stops serving, unmaps, Closed) -> unshare. */
	if (front_set_state(p, XF_XB_CLOSING) < 0)
		log_warn("xen: %s: cannot write state Closing", p->fe);
	st = front_wait_backend(p, want_closed, 10000);
	if (!want_closed(st))
		log_warnx("xen: backend %s did not close (state %d); "
			  "unsharing anyway", p->be, st);
	front_release(p, c->base);
	if (front_set_state(p, XF_XB_CLOSED) < 0)
		log_warn("xen: %s: cannot write state Closed", p->fe);
	xs_unwatch(p->xs, p->be, "xenfs-be");
	xs_close(p->xs);
	free(p);
	free(c);
}

static const struct xf_transport_ops xen_front_ops = {
	.name = "xen",
	.notify = xen_notify,
	.event_fd = xen_event_fd,
	.event_ack = xen_event_ack,
	.peer_fd = front_peer_fd,
	.peer_check = front_peer_check,
	.destroy = front_destroy,
};

/* Find device/xenfs/<devid> of this domain whose tag is `tag`. */
static int front_find(struct xen_priv *p, uint32_t self, const char *tag,
		      char *err, size_t errlen)
{
	char base[64], **ents;
	unsigned int n, i;
	int rc = -ENOENT;

	snprintf(base, sizeof(base), "/local/domain/%u/device/%s", self,
		 XF_XEN_DEVTYPE);
	ents = xs_directory(p->xs, XBT_NULL, base, &n);
	if (ents == NULL) {
		xen_errf(err, errlen, "no xenfs devices in %s (is xenfsd "
			 "running in dom0, and does its configuration export "
			 "anything to this domain?)", base);
		return -ENOENT;
	}
	for (i = 0; i < n; i++) {
		uint32_t devid;
		char *t;

		if (xf_xen_parse_u32(ents[i], 65535, &devid) < 0)
			continue;
		snprintf(p->fe, sizeof(p->fe), "%s/%u", base, devid);
		t = xs_get(p->xs, p->fe, XF_XK_TAG);
		if (t && strcmp(t, tag) == 0) {
			free(t);
			rc = 0;
			break;
		}
		free(t);
	}
	free(ents);
	if (rc < 0)
		xen_errf(err, errlen, "no xenfs device with tag \"%s\" in %s "
			 "(the backend's configuration does not export it to "
			 "this domain)", tag, base);
	return rc;
}

/* Read and check the backend's path, id and limits. */
static int front_read_backend(struct xen_priv *p, uint32_t backend_domid,
			      const struct xenfs_layout *l, char *err,
			      size_t errlen)
{
	uint32_t bid, mq, mro, mrp, dummy;
	char *be, *vers, *tok, *save = NULL;
	char prefix[64];
	int ok = 0, st;
	const char *why;

	if (xs_get_u32(p->xs, p->fe, XF_XK_BACKEND_ID, 0x7fef, &bid) < 0 ||
	    (be = xs_get(p->xs, p->fe, XF_XK_BACKEND)) == NULL) {
		xen_errf(err, errlen, "%s: no valid backend/backend-id", p->fe);
		return -EPROTO;
	}
	snprintf(prefix, sizeof(prefix), "/local/domain/%u/backend/%s/",
		 bid, XF_XEN_DEVTYPE);
	if (strncmp(be, prefix, strlen(prefix)) != 0 ||
	    strlen(be) >= sizeof(p->be)) {
		xen_errf(err, errlen, "%s: unexpected backend path %s",
			 p->fe, be);
		free(be);
		return -EPROTO;
	}
	snprintf(p->be, sizeof(p->be), "%s", be);
	free(be);
	if (bid != backend_domid) {
		xen_errf(err, errlen, "device is served by domain %u, not by "
			 "domain %u as requested", bid, backend_domid);
		return -EPROTO;
	}
	p->peer = bid;

	/* Ask for a fresh session and wait for the backend to be ready. */
	if (front_set_state(p, XF_XB_INITIALISING) < 0) {
		xen_errf(err, errlen, "cannot write %s/state: %s", p->fe,
			 strerror(errno));
		return -EACCES;
	}
	if (!xs_watch(p->xs, p->be, "xenfs-be")) {
		xen_errf(err, errlen, "cannot watch %s: %s", p->be,
			 strerror(errno));
		return -EIO;
	}
	st = front_wait_backend(p, want_initwait, 15000);
	if (st != XF_XB_INITWAIT) {
		xen_errf(err, errlen, "backend %s is not ready (state %d); is "
			 "xenfsd running?", p->be, st);
		return -ETIMEDOUT;
	}

	vers = xs_get(p->xs, p->be, XF_XK_VERSIONS);
	for (tok = vers ? strtok_r(vers, " ", &save) : NULL; tok;
	     tok = strtok_r(NULL, " ", &save))
		if (xf_xen_parse_u32(tok, UINT32_MAX, &dummy) == 0 &&
		    dummy == XENFS_PROTO_VERSION)
			ok = 1;
	free(vers);
	if (!ok) {
		xen_errf(err, errlen, "backend does not speak protocol "
			 "version %u", XENFS_PROTO_VERSION);
		return -EPROTONOSUPPORT;
	}
	if (xs_get_u32(p->xs, p->be, XF_XK_MAX_QUEUES, XENFS_MAX_QUEUES,
		       &mq) < 0 ||
	    xs_get_u32(p->xs, p->be, XF_XK_MAX_RING_ORDER,
		       XENFS_MAX_RING_ORDER, &mro) < 0 ||
	    xs_get_u32(p->xs, p->be, XF_XK_MAX_REGION_PAGES, UINT32_MAX,
		       &mrp) < 0) {
		xen_errf(err, errlen, "backend %s publishes invalid limits",
			 p->be);
		return -EPROTO;
	}
	if (xf_layout_check(l, (uint64_t)mrp * XENFS_PAGE_SIZE, &why) < 0 ||
	    l->nr_queues > mq || l->ring_order > mro) {
		xen_errf(err, errlen, "layout %u queues, ring order %u, "
			 "buffers of %u bytes (%" PRIu64 " pages) exceeds the "
			 "backend's limits (%u queues, ring order %u, %u "
			 "pages)%s%s", l->nr_queues, l->ring_order,
			 l->buf_size, xenfs_region_pages(l), mq, mro, mrp,
			 why ? ": " : "", why ? why : "");
		return -E2BIG;
	}
	return 0;
}

/* Explain a failed gntalloc allocation. */
static void front_share_error(uint64_t pages, uint32_t domid, int e,
			      char *err, size_t errlen)
{
	char lim[32] = "?";
	FILE *f = fopen("/sys/module/xen_gntalloc/parameters/limit", "re");

	if (f) {
		if (fgets(lim, sizeof(lim), f) == NULL)
			snprintf(lim, sizeof(lim), "?");
		lim[strcspn(lim, "\n")] = '\0';
		fclose(f);
	}
	xen_errf(err, errlen, "cannot share %" PRIu64 " pages with domain %u: "
		 "%s (gntalloc allows %s grants per guest; raise "
		 "/sys/module/xen_gntalloc/parameters/limit or use a smaller "
		 "layout)", pages, domid, strerror(e), lim);
}

static int front_publish(struct xen_priv *p, const struct xenfs_layout *l,
			 uint32_t flags, const uint32_t *dirrefs)
{
	xs_transaction_t t;
	char key[32];
	uint32_t i;
	int rc;

	for (int tries = 0; tries < 10; tries++) {
		t = xs_transaction_start(p->xs);
		if (t == XBT_NULL)
			return -errno;
		rc = xs_put_u32(p->xs, t, p->fe, XF_XK_VERSION,
				XENFS_PROTO_VERSION);
		rc = rc ?: xs_put_u32(p->xs, t, p->fe, XF_XK_NUM_QUEUES,
				      l->nr_queues);
		rc = rc ?: xs_put_u32(p->xs, t, p->fe, XF_XK_RING_ORDER,
				      l->ring_order);
		rc = rc ?: xs_put_u32(p->xs, t, p->fe, XF_XK_BUF_SIZE,
				      l->buf_size);
		rc = rc ?: xs_put_u32(p->xs, t, p->fe, XF_XK_FLAGS, flags);
		rc = rc ?: xs_put_u32(p->xs, t, p->fe, XF_XK_REGION_PAGES,
				      (uint32_t)p->npages);
		for (i = 0; rc == 0 && i < p->ndir; i++) {
			snprintf(key, sizeof(key), XF_XK_REF_DIR_FMT, i);
			rc = xs_put_u32(p->xs, t, p->fe, key, dirrefs[i]);
		}
		for (i = 0; rc == 0 && i < p->nq; i++) {
			snprintf(key, sizeof(key), XF_XK_EVTCHN_FMT, i);
			rc = xs_put_u32(p->xs, t, p->fe, key, p->lport[i]);
		}
		rc = rc ?: xs_put_u32(p->xs, t, p->fe, XF_XK_STATE,
				      XF_XB_INITIALISED);
		if (rc) {
			(void)xs_transaction_end(p->xs, t, true);
			return rc;
		}
		if (xs_transaction_end(p->xs, t, false))
			return 0;
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

int xf_xen_front_connect(const char *tag, uint32_t backend_domid,
			 uint32_t flags, const struct xenfs_layout *layout,
			 struct xf_conn **out, uint32_t *granted_flags,
			 char *err, size_t errlen)
{
	struct xen_priv *p = NULL;
	struct xf_conn *c = NULL;
	uint32_t self, *refs = NULL, *dirrefs = NULL, granted = 0, i;
	struct xenfs_ctrl *ctrl;
	char *msg;
	int rc, st;

	*out = NULL;
	if ((flags & ~XF_XEN_F_KNOWN) != 0) {
		xen_errf(err, errlen, "unknown flags 0x%x", flags);
		return -EINVAL;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		rc = -ENOMEM;
		xen_errf(err, errlen, "out of memory");
		goto fail;
	}
	p->side = XEN_FRONT;
	c->priv = p;
	c->ops = &xen_front_ops;
	c->layout = *layout;

	if ((p->xs = xs_open(0)) == NULL) {
		rc = -errno;
		xen_errf(err, errlen, "cannot open xenstore: %s (not a Xen "
			 "guest, or /dev/xen/xenbus missing: load xen-evtchn, "
			 "xen-gntalloc and mount xenfs?)", strerror(errno));
		goto fail;
	}
	{
		/* relative path: this domain's own /local/domain/<id>/domid */
		unsigned int len;
		char *v = xs_read(p->xs, XBT_NULL, "domid", &len);

		rc = v ? xf_xen_parse_u32(v, 0x7fef, &self) : -ENOENT;
		free(v);
		if (rc < 0) {
			xen_errf(err, errlen, "cannot read our own domid "
				 "from xenstore");
			goto fail;
		}
	}
	if ((rc = front_find(p, self, tag, err, errlen)) < 0)
		goto fail;
	if ((rc = front_read_backend(p, backend_domid, layout, err,
				     errlen)) < 0)
		goto fail;

	/* Share the region: one contiguous allocation from gntalloc. */
	p->nq = layout->nr_queues;
	p->npages = xenfs_region_pages(layout);
	p->ndir = (uint32_t)((p->npages + XF_XEN_REFS_PER_PAGE - 1) /
			     XF_XEN_REFS_PER_PAGE);
	refs = calloc(p->npages, sizeof(*refs));
	dirrefs = calloc(p->ndir, sizeof(*dirrefs));
	if (refs == NULL || dirrefs == NULL) {
		rc = -ENOMEM;
		xen_errf(err, errlen, "out of memory");
		goto fail;
	}
	if ((p->xgs = xengntshr_open(NULL, 0)) == NULL) {
		rc = -errno;
		xen_errf(err, errlen, "cannot open /dev/xen/gntalloc: %s "
			 "(load the xen-gntalloc module)", strerror(errno));
		goto fail;
	}
	c->base = xengntshr_share_pages(p->xgs, p->peer, (int)p->npages,
					refs, 1);
	if (c->base == NULL) {
		rc = -(errno ? errno : ENOMEM);
		front_share_error(p->npages, p->peer, -rc, err, errlen);
		goto fail;
	}
	c->size = xenfs_region_size(layout);
	p->dir = xengntshr_share_pages(p->xgs, p->peer, (int)p->ndir, dirrefs,
				       0);
	if (p->dir == NULL) {
		rc = -(errno ? errno : ENOMEM);
		front_share_error(p->npages + p->ndir, p->peer, -rc, err,
				  errlen);
		goto fail;
	}
	memset(p->dir, 0, (size_t)p->ndir * XENFS_PAGE_SIZE);
	memcpy(p->dir, refs, p->npages * sizeof(*refs));
	ctrl = xf_region_ctrl(c->base);
	ctrl->version = XENFS_PROTO_VERSION;
	xf_store_release(&ctrl->magic, XENFS_RING_MAGIC);

	for (i = 0; i < p->nq; i++) {
		xenevtchn_port_or_error_t port;

		if ((p->xce[i] = xenevtchn_open(NULL, 0)) == NULL) {
			rc = -errno;
			xen_errf(err, errlen, "cannot open /dev/xen/evtchn: "
				 "%s (load xen-evtchn)", strerror(errno));
			goto fail;
		}
		port = xenevtchn_bind_unbound_port(p->xce[i], p->peer);
		if (port < 0) {
			rc = -errno;
			xen_errf(err, errlen, "cannot allocate an event "
				 "channel: %s", strerror(errno));
			goto fail;
		}
		p->lport[i] = (evtchn_port_t)port;
		p->bound[i] = 1;
	}

	if ((rc = front_publish(p, layout, flags, dirrefs)) < 0) {
		xen_errf(err, errlen, "cannot publish to %s: %s", p->fe,
			 strerror(-rc));
		goto fail;
	}
	st = front_wait_backend(p, want_connected, 30000);
	if (st != XF_XB_CONNECTED) {
		msg = xs_get(p->xs, p->be, XF_XK_ERROR);
		xen_errf(err, errlen, "backend refused the connection "
			 "(state %d): %s", st, msg ? msg : "no reason given");
		rc = -ETIMEDOUT;
		if (msg) {
			/* "<errno> <reason>", written by backend/xen.c */
			int e = atoi(msg);

			rc = (e > 0 && e < 4096) ? -e : -ECONNREFUSED;
		}
		free(msg);
		(void)front_set_state(p, XF_XB_CLOSING);
		goto fail;
	}
	if (xs_get_u32(p->xs, p->be, XF_XK_GRANTED_FLAGS, XF_XEN_F_KNOWN,
		       &granted) < 0)
		granted = flags;
	/* The backend copied the directory before it went Connected. */
	(void)xengntshr_unshare(p->xgs, p->dir, p->ndir);
	p->dir = NULL;
	(void)front_set_state(p, XF_XB_CONNECTED);
	free(refs);
	free(dirrefs);
	*granted_flags = granted;
	*out = c;
	return 0;

fail:
	if (p) {
		front_release(p, c ? c->base : NULL);
		if (p->xs) {
			if (p->fe[0] && p->be[0])
				(void)front_set_state(p, XF_XB_CLOSED);
			xs_close(p->xs);
		}
	}
	free(refs);
	free(dirrefs);
	free(p);
	free(c);
	return rc;
}

/* ---- backend ---- */

static void back_destroy(struct xf_conn *c)
{
	struct xen_priv *p = c->priv;

	xen_close_ports(p);
	if (c->base) {
		if (xengnttab_unmap(p->xgt, c->base, (uint32_t)p->npages) < 0)
			log_warn("xen: dom %u: unmap of %" PRIu64 " pages",
				 p->peer, p->npages);
		else
			back_pages -= p->npages;
	}
	if (p->xgt)
		xengnttab_close(p->xgt);
	free(p);
	free(c);
}

static const struct xf_transport_ops xen_back_ops = {
	.name = "xen",
	.notify = xen_notify,
	.event_fd = xen_event_fd,
	.event_ack = xen_event_ack,
	.peer_fd = NULL,	/* backend/xen.c watches the frontend's state */
	.peer_check = NULL,
	.destroy = back_destroy,
};

void xf_xen_back_counts(uint64_t *pages, uint64_t *ports)
{
	*pages = back_pages;
	*ports = back_ports;
}

/*
 * Check an offer: everything in it came from the guest, possibly through
 * another process.  0, or -errno with err filled.
 */
static int back_check_offer(const struct xf_xen_offer *o,
			    uint32_t max_queues, uint64_t max_region,
			    char *err, size_t errlen)
{
	const char *why = NULL;
	uint64_t pages;

	if (o->domid == 0 || o->domid > 0x7fef) {
		xen_errf(err, errlen, "invalid domid %u", o->domid);
		return -EINVAL;
	}
	if ((o->flags & ~XF_XEN_F_KNOWN) != 0) {
		xen_errf(err, errlen, "unknown flags 0x%x", o->flags);
		return -EPROTO;
	}
	if (xf_layout_check(&o->layout, max_region, &why) < 0 ||
	    o->layout.nr_queues > max_queues) {
		xen_errf(err, errlen, "layout refused: %s",
			 why ? why : "too many queues");
		return -EINVAL;
	}
	pages = xenfs_region_pages(&o->layout);
	if (o->npages != pages) {
		xen_errf(err, errlen, "region-pages %u does not match the "
			 "layout (%" PRIu64 ")", o->npages, pages);
		return -EPROTO;
	}
	if (pages > XF_XEN_OFFER_MAX_DIR * XF_XEN_REFS_PER_PAGE) {
		xen_errf(err, errlen, "region of %" PRIu64 " pages exceeds "
			 "the %llu MiB the Xen transport supports (lower "
			 "[global] max-region)", pages,
			 XF_XEN_OFFER_MAX_REGION >> 20);
		return -E2BIG;
	}
	if (o->ndir != (pages + XF_XEN_REFS_PER_PAGE - 1) /
	    XF_XEN_REFS_PER_PAGE) {
		xen_errf(err, errlen, "%u reference directory pages for %"
			 PRIu64 " region pages", o->ndir, pages);
		return -EPROTO;
	}
	return 0;
}

int xf_xen_back_read_offer(struct xs_handle *xs, uint32_t domid,
			   const char *fe, uint32_t max_queues,
			   uint64_t max_region, struct xf_xen_offer *o,
			   char *err, size_t errlen)
{
	uint32_t ver, i;
	char key[32];
	int rc;

	memset(o, 0, sizeof(*o));
	o->domid = domid;
	/* Everything below comes from the guest. */
	if (xs_get_u32(xs, fe, XF_XK_VERSION, UINT32_MAX, &ver) < 0 ||
	    ver != XENFS_PROTO_VERSION) {
		xen_errf(err, errlen, "missing or unsupported version");
		return -EPROTONOSUPPORT;
	}
	if (xs_get_u32(xs, fe, XF_XK_NUM_QUEUES, XENFS_MAX_QUEUES,
		       &o->layout.nr_queues) < 0 ||
	    xs_get_u32(xs, fe, XF_XK_RING_ORDER, XENFS_MAX_RING_ORDER,
		       &o->layout.ring_order) < 0 ||
	    xs_get_u32(xs, fe, XF_XK_BUF_SIZE, XENFS_MAX_BUF_SIZE,
		       &o->layout.buf_size) < 0 ||
	    xs_get_u32(xs, fe, XF_XK_FLAGS, XF_XEN_F_KNOWN, &o->flags) < 0 ||
	    xs_get_u32(xs, fe, XF_XK_REGION_PAGES, UINT32_MAX,
		       &o->npages) < 0) {
		xen_errf(err, errlen, "missing or invalid num-queues, "
			 "ring-order, buf-size, flags or region-pages");
		return -EPROTO;
	}
	/* ndir follows from the layout (checked below with the rest). */
	o->ndir = (uint32_t)((xenfs_region_pages(&o->layout) +
			      XF_XEN_REFS_PER_PAGE - 1) /
			     XF_XEN_REFS_PER_PAGE);
	if ((rc = back_check_offer(o, max_queues, max_region, err,
				   errlen)) < 0)
		return rc;
	for (i = 0; i < o->ndir; i++) {
		snprintf(key, sizeof(key), XF_XK_REF_DIR_FMT, i);
		if (xs_get_u32(xs, fe, key, UINT32_MAX, &o->dir_refs[i]) < 0) {
			xen_errf(err, errlen, "missing or invalid %s", key);
			return -EPROTO;
		}
	}
	for (i = 0; i < o->layout.nr_queues; i++) {
		snprintf(key, sizeof(key), XF_XK_EVTCHN_FMT, i);
		if (xs_get_u32(xs, fe, key, UINT32_MAX, &o->ports[i]) < 0) {
			xen_errf(err, errlen, "missing or invalid %s", key);
			return -EPROTO;
		}
	}
	return 0;
}

/* Copy the refs out of the (read-only mapped) reference directory. */
static int back_read_dir(struct xen_priv *p, const struct xf_xen_offer *o,
			 uint32_t *refs, char *err, size_t errlen)
{
	uint32_t dirrefs[XF_XEN_OFFER_MAX_DIR];
	void *dir;

	memcpy(dirrefs, o->dir_refs, o->ndir * sizeof(dirrefs[0]));
	dir = xengnttab_map_domain_grant_refs(p->xgt, o->ndir, p->peer,
					      dirrefs, PROT_READ);
	if (dir == NULL) {
		xen_errf(err, errlen, "cannot map %u reference directory "
			 "pages: %s", o->ndir, strerror(errno));
		return -EFAULT;
	}
	/* One copy; only the private array is used from here on. */
	memcpy(refs, dir, p->npages * sizeof(*refs));
	if (xengnttab_unmap(p->xgt, dir, o->ndir) < 0)
		log_warn("xen: dom %u: unmap of the reference directory",
			 p->peer);
	return 0;
}

int xf_xen_back_map_offer(const struct xf_xen_offer *o, uint32_t max_queues,
			  uint64_t max_region, struct xf_conn **out, char *err,
			  size_t errlen)
{
	struct xf_conn *c = NULL;
	struct xen_priv *p = NULL;
	uint32_t *refs = NULL, i;
	int rc;

	*out = NULL;
	if ((rc = back_check_offer(o, max_queues, max_region, err,
				   errlen)) < 0)
		return rc;
	if ((p = calloc(1, sizeof(*p))) == NULL ||
	    (c = calloc(1, sizeof(*c))) == NULL) {
		rc = -ENOMEM;
		xen_errf(err, errlen, "out of memory");
		goto fail;
	}
	p->side = XEN_BACK;
	p->peer = o->domid;
	c->priv = p;
	c->ops = &xen_back_ops;
	c->layout = o->layout;
	c->size = xenfs_region_size(&o->layout);
	p->nq = o->layout.nr_queues;
	p->npages = o->npages;
	p->ndir = o->ndir;

	if ((refs = calloc(p->npages, sizeof(*refs))) == NULL) {
		rc = -ENOMEM;
		xen_errf(err, errlen, "out of memory");
		goto fail;
	}
	if ((p->xgt = xengnttab_open(NULL, 0)) == NULL) {
		rc = -errno;
		xen_errf(err, errlen, "cannot open /dev/xen/gntdev: %s",
			 strerror(errno));
		goto fail;
	}
	if ((rc = back_read_dir(p, o, refs, err, errlen)) < 0)
		goto fail;
	c->base = xengnttab_map_domain_grant_refs(p->xgt, (uint32_t)p->npages,
						  p->peer, refs,
						  PROT_READ | PROT_WRITE);
	if (c->base == NULL) {
		rc = -EFAULT;
		xen_errf(err, errlen, "cannot map the %" PRIu64 "-page region: "
			 "%s", p->npages, strerror(errno));
		goto fail;
	}
	back_pages += p->npages;
	if (xf_load_acquire(&xf_region_ctrl(c->base)->magic) !=
	    XENFS_RING_MAGIC) {
		rc = -EPROTO;
		xen_errf(err, errlen, "bad magic in the control page");
		goto fail;
	}

	for (i = 0; i < p->nq; i++) {
		xenevtchn_port_or_error_t port;
		struct pollfd pfd;

		if ((p->xce[i] = xenevtchn_open(NULL, 0)) == NULL) {
			rc = -errno;
			xen_errf(err, errlen, "cannot open /dev/xen/evtchn: "
				 "%s", strerror(errno));
			goto fail;
		}
		port = xenevtchn_bind_interdomain(p->xce[i], p->peer,
						  o->ports[i]);
		if (port < 0) {
			rc = -errno;
			xen_errf(err, errlen, "cannot bind " XF_XK_EVTCHN_FMT
				 "=%u: %s", i, o->ports[i], strerror(errno));
			goto fail;
		}
		p->lport[i] = (evtchn_port_t)port;
		p->bound[i] = 1;
		back_ports++;
		/* Xen leaves a freshly bound port pending: consume that
		 * spurious event so the first wakeup is a real one. */
		pfd.fd = xenevtchn_fd(p->xce[i]);
		pfd.events = POLLIN;
		if (poll(&pfd, 1, 20) == 1) {
			port = xenevtchn_pending(p->xce[i]);
			if (port >= 0)
				(void)xenevtchn_unmask(p->xce[i],
						       (evtchn_port_t)port);
		}
	}
	free(refs);
	*out = c;
	return 0;

fail:
	free(refs);
	if (c && p)
		back_destroy(c);
	else {
		free(p);
		free(c);
	}
	return rc;
}

int xf_xen_back_accept(struct xs_handle *xs, uint32_t domid,
		       const char *fe, uint32_t max_queues,
		       uint64_t max_region, struct xf_conn **out,
		       uint32_t *flags, char *err, size_t errlen)
{
	struct xf_xen_offer *o;
	int rc;

	*out = NULL;
	/* ~1 KiB: off the stack, like the rest of the connection state */
	if ((o = malloc(sizeof(*o))) == NULL) {
		xen_errf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = xf_xen_back_read_offer(xs, domid, fe, max_queues, max_region, o,
				    err, errlen);
	if (rc == 0)
		rc = xf_xen_back_map_offer(o, max_queues, max_region, out,
					   err, errlen);
	if (rc == 0)
		*flags = o->flags;
	free(o);
	return rc;
}
