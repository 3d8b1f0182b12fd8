/*
 * xenfs-xen-probe: a transport-level test of the Xen transport on a real
 * Xen host, independent of the FUSE layers.  Built and run by tests/xen/run.
 *
 *   xenfs-xen-probe back CONF      dom0: backend/xen.c (the real device
 *                                  manager) with a stub connection layer
 *                                  that answers each request by echoing
 *                                  its buffer with "ECHO:" prepended
 *   xenfs-xen-probe front TAG N [ro|hold]  domU: connect with
 *                                  xf_xen_front_connect, send N requests on
 *                                  every queue, check the echoes, close
 *
 * With XFT_PROBE_SPLIT=1 in the environment the stub says it is a
 * privileged parent (bk_priv_on), so backend/xen.c takes the path of
 * xenfsd's parent: it only reads the offer (xf_xen_back_read_offer) and
 * hands it to bk_priv_adopt_xen, which here sends the offer's bytes
 * through a socketpair, as to a worker, and maps what comes out with
 * xf_xen_back_map_offer.
 *
 * Markers on stdout (PROBE-...) are what the harness checks.  Single
 * threaded: the stub loop polls xenstore and every queue's doorbell.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bk.h"
#include "log.h"
#include "policy.h"
#include "ring.h"
#include "transport.h"
#include "transport_xen_i.h"

/* ---- stub event loop and connection layer for backend/xen.c ---- */

#define MAXFD 64

struct stub_conn {
	struct xf_conn *xc;
	struct xf_bring ring[XENFS_MAX_QUEUES];
	void (*on_close)(struct bk_conn *c, void *arg);
	void *arg;
	int live;
};

static struct {
	int fd;
	bk_loop_cb cb;
	void *arg;
} fds[MAXFD];
static int nfds;
static volatile sig_atomic_t stop;
static int split;			/* XFT_PROBE_SPLIT */

struct bk_server bk_srv;

int bk_priv_on(void)
{
	return split;
}

int bk_priv_adopt_xen(const char *domain, uint32_t domid, const char *tag,
		      int readonly, const struct xf_xen_offer *offer,
		      void (*on_close)(struct bk_conn *c, void *arg),
		      void *arg, struct bk_conn **out, char *err,
		      size_t errlen)
{
	const struct xf_global *g = &bk_srv.cfg->global;
	struct xf_xen_offer *o = malloc(sizeof(*o));
	struct xf_conn *xc;
	int sv[2], rc;

	if (o == NULL)
		return -ENOMEM;
	/* the bytes a worker would get */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(o);
		return -errno;
	}
	if (write(sv[0], offer, sizeof(*offer)) != (ssize_t)sizeof(*offer) ||
	    read(sv[1], o, sizeof(*o)) != (ssize_t)sizeof(*o)) {
		snprintf(err, errlen, "offer lost in transit");
		rc = -EIO;
	} else
		rc = xf_xen_back_map_offer(o, g->max_queues, g->max_region,
					   &xc, err, errlen);
	close(sv[0]);
	close(sv[1]);
	free(o);
	if (rc < 0)
		return rc;
	printf("PROBE-BACK-SPLIT offer mapped\n");
	return bk_conn_start(xc, domain, domid, tag, readonly, on_close, arg,
			     out);
}

int bk_loop_add(int fd, uint32_t events, bk_loop_cb cb, void *arg)
{
	(void)events;
	if (nfds == MAXFD)
		return -ENOSPC;
	fds[nfds].fd = fd;
	fds[nfds].cb = cb;
	fds[nfds].arg = arg;
	nfds++;
	return 0;
}

void bk_loop_del(int fd)
{
	for (int i = 0; i < nfds; i++)
		if (fds[i].fd == fd) {
			fds[i] = fds[--nfds];
			return;
		}
}

static void stub_serve(int fd, uint32_t events, void *arg)
{
	struct stub_conn *sc = arg;
	struct xf_conn *xc = sc->xc;
	struct xenfs_ring_req req;
	struct xenfs_ring_rsp rsp;
	uint32_t q;
	int rc;

	(void)events;
	for (q = 0; q < xc->layout.nr_queues; q++)
		if (xf_conn_event_fd(xc, q) == fd)
			break;
	if (q == xc->layout.nr_queues)
		return;
	(void)xf_conn_event_ack(xc, q);
	do {
		while ((rc = xf_bring_get(&sc->ring[q], &req)) == 1) {
			uint8_t *b;
			char tmp[256];

			if (req.buf >> xc->layout.ring_order != q ||
			    req.len >= 200) {
				printf("PROBE-BACK-FAIL bad request\n");
				return;
			}
			b = xf_region_buf(xc->base, &xc->layout, req.buf);
			memcpy(tmp, b, req.len);
			tmp[req.len] = '\0';
			rsp.id = req.id;
			rsp.buf = req.buf;
			rsp.len = (uint32_t)snprintf((char *)b, 256, "ECHO:%s",
						     tmp);
			xf_bring_put(&sc->ring[q], &rsp);
		}
		if (rc < 0) {
			printf("PROBE-BACK-FAIL broken ring\n");
			return;
		}
		if (xf_bring_push(&sc->ring[q]))
			(void)xf_conn_notify(xc, q);
	} while (xf_bring_final_check(&sc->ring[q]));
}

int bk_conn_start(struct xf_conn *xc, const char *domain, uint32_t domid,
		  const char *tag, int readonly,
		  void (*on_close)(struct bk_conn *c, void *arg), void *arg,
		  struct bk_conn **out)
{
	struct stub_conn *sc = calloc(1, sizeof(*sc));
	uint32_t q;

	if (sc == NULL) {
		xf_conn_destroy(xc);
		return -ENOMEM;
	}
	sc->xc = xc;
	sc->on_close = on_close;
	sc->arg = arg;
	sc->live = 1;
	for (q = 0; q < xc->layout.nr_queues; q++) {
		xf_bring_init(&sc->ring[q], xf_region_sring(xc->base, q),
			      xenfs_ring_slots(&xc->layout));
		(void)bk_loop_add(xf_conn_event_fd(xc, q), 0, stub_serve, sc);
	}
	printf("PROBE-BACK-CONNECTED domain=%s domid=%u tag=%s ro=%d "
	       "queues=%u\n", domain, domid, tag, readonly,
	       xc->layout.nr_queues);
	fflush(stdout);
	*out = (struct bk_conn *)sc;
	return 0;
}

void bk_conn_stop(struct bk_conn *c, const char *why)
{
	struct stub_conn *sc = (struct stub_conn *)c;
	uint64_t pages, ports;
	uint32_t q;

	if (!sc->live)
		return;
	sc->live = 0;
	for (q = 0; q < sc->xc->layout.nr_queues; q++)
		bk_loop_del(xf_conn_event_fd(sc->xc, q));
	xf_conn_destroy(sc->xc);
	xf_xen_back_counts(&pages, &ports);
	printf("PROBE-BACK-STOPPED why=\"%s\" pages=%llu ports=%llu\n", why,
	       (unsigned long long)pages, (unsigned long long)ports);
	fflush(stdout);
	sc->on_close(c, sc->arg);
	free(sc);
}

static void on_sig(int s)
{
	(void)s;
	stop = 1;
}

static int run_back(const char *conf)
{
	struct xf_config *cfg;
	char err[512];
	struct pollfd p[MAXFD];

	cfg = xf_config_load(conf, err, sizeof(err));
	if (cfg == NULL) {
		fprintf(stderr, "probe: %s\n", err);
		return 1;
	}
	bk_srv.cfg = cfg;
	split = getenv("XFT_PROBE_SPLIT") != NULL &&
		strcmp(getenv("XFT_PROBE_SPLIT"), "1") == 0;
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	if (bk_xen_start(cfg) < 0 || nfds == 0) {
		printf("PROBE-BACK-FAIL bk_xen_start\n");
		return 1;
	}
	printf("PROBE-BACK-READY\n");
	fflush(stdout);
	while (!stop) {
		int n = nfds;

		for (int i = 0; i < n; i++) {
			p[i].fd = fds[i].fd;
			p[i].events = POLLIN;
			p[i].revents = 0;
		}
		if (poll(p, (nfds_t)n, 1000) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n && i < nfds; i++)
			if (p[i].revents && fds[i].fd == p[i].fd)
				fds[i].cb(fds[i].fd, p[i].revents, fds[i].arg);
	}
	bk_xen_stop();
	xf_config_free(cfg);
	printf("PROBE-BACK-EXIT\n");
	return 0;
}

/* ---- frontend ---- */

static int run_front(const char *tag, int n, int ro, int hold)
{
	struct xenfs_layout l = { .nr_queues = 2, .ring_order = 2,
				  .buf_size = 3 * XENFS_PAGE_SIZE };
	struct xf_conn *c;
	struct xf_fring fr[2];
	uint32_t granted = 0, q;
	char err[512] = "";
	int rc, i, bad = 0;

	rc = xf_xen_front_connect(tag, 0, ro ? XF_XEN_F_RO : 0, &l, &c,
				  &granted, err, sizeof(err));
	if (rc < 0) {
		printf("PROBE-FRONT-CONNECT-FAIL rc=%d %s\n", rc, err);
		return 1;
	}
	printf("PROBE-FRONT-CONNECTED granted=%u pages=%llu\n", granted,
	       (unsigned long long)xenfs_region_pages(&c->layout));
	for (q = 0; q < 2; q++)
		xf_fring_init(&fr[q], xf_region_sring(c->base, q),
			      xenfs_ring_slots(&l));
	for (i = 0; i < n && !bad; i++) {
		for (q = 0; q < 2; q++) {
			struct xenfs_ring_req req = { 0 };
			struct xenfs_ring_rsp rsp;
			struct pollfd p = { .fd = xf_conn_event_fd(c, q),
					    .events = POLLIN };
			char want[64], *b;

			req.id = (uint64_t)i;
			req.buf = q << l.ring_order;
			b = (char *)xf_region_buf(c->base, &l, req.buf);
			req.len = (uint32_t)snprintf(b, 64, "ping %d q%u", i,
						     q);
			xf_fring_put(&fr[q], &req);
			if (xf_fring_push(&fr[q]))
				(void)xf_conn_notify(c, q);
			for (;;) {
				rc = xf_fring_get(&fr[q], &rsp);
				if (rc != 0)
					break;
				if (xf_fring_final_check(&fr[q]))
					continue;
				if (poll(&p, 1, 10000) != 1) {
					rc = -ETIMEDOUT;
					break;
				}
				(void)xf_conn_event_ack(c, q);
			}
			snprintf(want, sizeof(want), "ECHO:ping %d q%u", i, q);
			if (rc != 1 || rsp.id != (uint64_t)i ||
			    rsp.len != strlen(want) ||
			    memcmp(b, want, rsp.len) != 0) {
				printf("PROBE-FRONT-FAIL i=%d q=%u rc=%d\n",
				       i, q, rc);
				bad = 1;
				break;
			}
		}
	}
	if (!bad)
		printf("PROBE-FRONT-ECHO-OK n=%d\n", n);
	fflush(stdout);
	if (hold) {
		/* stay connected until the domain is destroyed */
		printf("PROBE-FRONT-HOLDING\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	xf_conn_destroy(c);
	printf("PROBE-FRONT-CLOSED\n");
	fflush(stdout);
	return bad;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init(1, 1, "xenfs-xen-probe");
	if (argc == 3 && strcmp(argv[1], "back") == 0)
		return run_back(argv[2]);
	if (argc >= 4 && strcmp(argv[1], "front") == 0)
		return run_front(argv[2], atoi(argv[3]),
				 argc > 4 && strcmp(argv[4], "ro") == 0,
				 argc > 4 && strcmp(argv[4], "hold") == 0);
	fprintf(stderr, "usage: xenfs-xen-probe back CONF | "
		"front TAG N [ro|hold]\n");
	return 2;
}
