/*
 * A domain's worker process (docs/security.md, "Sandbox"): xenfsd
 * re-executed by its parent (backend/priv.c) as `xenfsd --worker DOMAIN`
 * in new mount, pid, network, IPC and UTS namespaces, with its four
 * channels on descriptors 3..6 (chan.h).
 *
 * Start: receive the configuration text, parse it, build the namespace
 * root and confine the process (bk_sandbox_process), answer the parent.
 * Only then does the parent hand over guests: local client sockets
 * (backend/local.c runs the handshake here, bk_local_adopt) and Xen
 * offers (backend/xen.c maps them here, bk_xen_adopt).  From there on the
 * worker is an ordinary xenfsd for one domain: conn.c and the fs layer
 * serve its connections, its queue threads confine themselves further
 * (bk_sandbox_worker).  What only the parent can do is asked over the
 * channels: journal appends (bk_worker_emit), verdicts
 * (bk_worker_verdict); connection starts and ends are announced
 * (bk_worker_conn_up/down) so that the parent's proxies and xenfsctl see
 * them.
 *
 * Threads: the main thread runs the event loop and serves the main
 * channel (config, adopt, stop, info, reload, shutdown); one thread
 * serves the ctl channel (freeze and thaw block while the frontend
 * flushes).  The stream and misc channels are called from queue threads
 * under their mutexes.
 *
 * Lifetime: the worker ends when the parent says SHUTDOWN, when its main
 * channel reaches EOF (the parent is gone) or by SIGKILL (the parent's
 * death signal, or the parent's verdict on a worker that misbehaved).
 *
 * Trust: the parent is trusted; guests are not (everything the fs layer
 * and the transports do about that holds here unchanged).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <xenfs/event.h>

#include "bk.h"
#include "chan.h"
#include "log.h"
#include "priv.h"
#include "stream.h"
#ifdef XENFS_HAVE_XEN
#include "transport_xen_i.h"
#endif

#define FD_MAIN		3
#define FD_CTL		4
#define FD_STREAM	5
#define FD_MISC		6

#define EMIT_TIMEOUT_MS	30000

static int is_worker;
static const char *wk_domain;
static struct bk_chan ch_stream, ch_misc;
static struct bk_conn *last_up;		/* main thread: for ADOPT_XEN */
static unsigned char *main_buf;

/*
 * Test hook (t_worker_busy.sh): XENFSD_TEST_WORKER_STALL="N:MS" makes the
 * worker's main thread sleep MS milliseconds before it takes its Nth
 * local client, as a long first-connection quota scan of a big export
 * would; the parent must neither hang nor kill it meanwhile.
 */
static unsigned long stall_nth, stall_ms, adopts;

static void stall_hook(void)
{
	struct timespec ts;

	if (!stall_ms || ++adopts != stall_nth)
		return;
	log_info("worker %s: test hook: stalling %lu ms", wk_domain,
		 stall_ms);
	ts.tv_sec = (time_t)(stall_ms / 1000);
	ts.tv_nsec = (long)(stall_ms % 1000) * 1000000;
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int bk_is_worker(void)
{
	return is_worker;
}

/* ---- worker -> parent ---- */

int bk_worker_emit(struct xenfs_event *ev)
{
	unsigned char buf[XENFS_REC_MAX];
	uint64_t seq = 0;
	size_t len, rlen = 0;
	int r;

	ev->seq = 0;
	len = xf_stream_encode(ev, buf);
	r = bk_chan_call(&ch_stream, BK_M_EVENT, buf, len, -1, &seq,
			 sizeof(seq), &rlen, EMIT_TIMEOUT_MS);
	if (r == 0 && rlen == sizeof(seq))
		ev->seq = seq;
	else if (r == 0)
		r = -EPROTO;
	return r;
}

int bk_worker_verdict(const char *tag, const char *path, int rfd,
		      uint32_t open_flags, int on_open)
{
	unsigned char buf[sizeof(struct bk_m_verdict) + XENFS_EV_PATH_MAX];
	struct bk_m_verdict v;
	size_t pl = strnlen(path, XENFS_EV_PATH_MAX);

	memset(&v, 0, sizeof(v));
	v.open_flags = open_flags;
	v.on_open = on_open ? 1 : 0;
	snprintf(v.tag, sizeof(v.tag), "%s", tag);
	memcpy(buf, &v, sizeof(v));
	memcpy(buf + sizeof(v), path, pl);
	/* the parent's own wait, plus slack for the round trip */
	return bk_chan_call(&ch_misc, BK_M_VERDICT, buf, sizeof(v) + pl, rfd,
			    NULL, 0, NULL,
			    bk_verdict_timeout_ms(bk_srv.cfg) + 2000);
}

static void conn_notice(struct bk_conn *c, uint32_t type)
{
	struct bk_m_info m;
	int r;

	bk_conn_wire_info(c, &m);
	r = bk_chan_send(FD_MISC, type, 0, 0, &m, sizeof(m), -1);
	if (r < 0)
		log_warnx("worker %s: cannot tell the parent about a "
			  "connection: %s", wk_domain, strerror(-r));
}

void bk_worker_conn_up(struct bk_conn *c)
{
	last_up = c;
	conn_notice(c, BK_M_CONN_UP);
}

void bk_worker_conn_down(struct bk_conn *c)
{
	if (last_up == c)
		last_up = NULL;
	conn_notice(c, BK_M_CONN_DOWN);
}

/* ---- parent -> worker, main channel ---- */

static int reply(uint64_t id, int status, const void *p, size_t len)
{
	return bk_chan_send(FD_MAIN, BK_M_REPLY, id, status, p, len, -1);
}

static int reply_msg(uint64_t id, int status, const char *msg)
{
	return reply(id, status, msg, strlen(msg));
}

static int do_reload(uint64_t id, const char *text, size_t len)
{
	struct xf_config *ncfg, *old = bk_srv.cfg;
	char err[512];

	ncfg = xf_config_parse_checked("configuration from xenfsd", text, len, err,
			       sizeof(err));
	if (!ncfg)
		return reply_msg(id, -EINVAL, err);
	bk_srv.cfg = ncfg;
	bk_conns_reload(ncfg);
	xf_config_free(old);
	log_info("worker %s: configuration reloaded", wk_domain);
	return reply(id, 0, NULL, 0);
}

#ifdef XENFS_HAVE_XEN
static int do_adopt_xen(uint64_t id, const unsigned char *buf, size_t n)
{
	struct bk_m_adopt_xen a;
	struct xf_xen_offer o;
	struct bk_m_info m;
	char err[256] = "";
	int r;

	if (n != sizeof(a) + sizeof(o))
		return reply_msg(id, -EPROTO, "bad adopt message");
	memcpy(&a, buf, sizeof(a));
	memcpy(&o, buf + sizeof(a), sizeof(o));
	if (a.offer_size != sizeof(o))
		return reply_msg(id, -EPROTO, "offer size mismatch");
	a.tag[sizeof(a.tag) - 1] = '\0';
	last_up = NULL;
	r = bk_xen_adopt(wk_domain, a.domid, a.tag, a.readonly != 0, &o, err,
			 sizeof(err));
	if (r < 0 || !last_up)
		return reply_msg(id, r < 0 ? r : -EIO, err[0] ? err :
				 "cannot start serving the connection");
	bk_conn_wire_info(last_up, &m);
	return reply(id, 0, &m, sizeof(m));
}
#endif

static void main_cb(int fd, uint32_t events, void *arg)
{
	struct bk_msg_hdr h;
	struct bk_m_stop st;
	struct bk_m_info m;
	struct bk_conn *c;
	uint64_t rid;
	ssize_t n;
	int rfd = -1, r;

	(void)events;
	(void)arg;
	n = bk_chan_recv(fd, &h, main_buf, BK_MSG_MAX, &rfd);
	if (n < 0) {
		if (n != -ECONNRESET)
			log_warnx("worker %s: main channel: %s", wk_domain,
				  strerror((int)-n));
		else
			log_info("worker %s: the parent is gone; exiting",
				 wk_domain);
		bk_loop_stop();
		return;
	}
	if (rfd >= 0 && h.type != BK_M_ADOPT_LOCAL) {
		close(rfd);
		rfd = -1;
	}
	switch (h.type) {
	case BK_M_ADOPT_LOCAL:		/* one way: no reply */
		stall_hook();
		if (rfd < 0) {
			log_warnx("worker %s: adopt without a descriptor",
				  wk_domain);
			break;
		}
		if ((r = bk_local_adopt(wk_domain, rfd)) < 0)
			log_warnx("worker %s: cannot take a client: %s",
				  wk_domain, strerror(-r));
		break;
	case BK_M_ADOPT_XEN:
#ifdef XENFS_HAVE_XEN
		(void)do_adopt_xen(h.id, main_buf, (size_t)n);
#else
		(void)reply_msg(h.id, -EOPNOTSUPP, "built without Xen");
#endif
		break;
	case BK_M_STOP:
		if ((size_t)n != sizeof(st)) {
			(void)reply(h.id, -EPROTO, NULL, 0);
			break;
		}
		memcpy(&st, main_buf, sizeof(st));
		st.why[sizeof(st.why) - 1] = '\0';
		c = bk_conn_by_rid(st.rid);
		if (c)
			bk_conn_stop(c, st.why);
		(void)reply(h.id, c ? 0 : -ENOENT, NULL, 0);
		break;
	case BK_M_INFO:
		if ((size_t)n != sizeof(rid)) {
			(void)reply(h.id, -EPROTO, NULL, 0);
			break;
		}
		memcpy(&rid, main_buf, sizeof(rid));
		if (!(c = bk_conn_by_rid(rid))) {
			(void)reply(h.id, -ENOENT, NULL, 0);
			break;
		}
		bk_conn_wire_info(c, &m);
		(void)reply(h.id, 0, &m, sizeof(m));
		break;
	case BK_M_RELOAD:
		(void)do_reload(h.id, (const char *)main_buf, (size_t)n);
		break;
	case BK_M_SHUTDOWN:
		log_info("worker %s: shutting down", wk_domain);
		bk_conns_stop_all("shutting down");
		(void)reply(h.id, 0, NULL, 0);
		bk_loop_stop();
		break;
	default:
		(void)reply(h.id, -EOPNOTSUPP, NULL, 0);
		break;
	}
}

/* ---- parent -> worker, ctl channel ---- */

static void *ctl_main(void *arg)
{
	char err[512];
	struct bk_msg_hdr h;
	int32_t tmo;
	unsigned char buf[64];
	ssize_t n;
	int r;

	(void)arg;
	for (;;) {
		n = bk_chan_recv(FD_CTL, &h, buf, sizeof(buf), NULL);
		if (n < 0)
			break;
		err[0] = '\0';
		switch (h.type) {
		case BK_M_FREEZE:
			tmo = 0;
			if ((size_t)n == sizeof(tmo))
				memcpy(&tmo, buf, sizeof(tmo));
			r = bk_domain_freeze(wk_domain, tmo, err,
					     sizeof(err));
			break;
		case BK_M_THAW:
			r = bk_domain_thaw(wk_domain, err, sizeof(err));
			break;
		default:
			r = -EOPNOTSUPP;
			break;
		}
		if (bk_chan_send(FD_CTL, BK_M_REPLY, h.id, r, err,
				 strlen(err), -1) < 0)
			break;
	}
	return NULL;
}

/* ---- start ---- */

int bk_worker_main(const char *domain)
{
	struct xf_config *cfg;
	struct bk_msg_hdr h;
	struct stat st;
	pthread_t ctl;
	char err[512];
	ssize_t n;
	int i, r;
	sigset_t set;

	is_worker = 1;
	wk_domain = domain;
	{
		const char *t = getenv("XENFSD_TEST_WORKER_STALL");

		if (t && sscanf(t, "%lu:%lu", &stall_nth, &stall_ms) != 2)
			stall_nth = stall_ms = 0;
	}
	/* exec'ed as /proc/self/exe: name it for ps and top */
	(void)prctl(PR_SET_NAME, "xenfsd-worker", 0, 0, 0);
	for (i = FD_MAIN; i <= FD_MISC; i++)
		if (fstat(i, &st) < 0 || !S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "xenfsd: --worker is started by xenfsd "
				"itself, not by hand\n");
			return 2;
		}
	/* pid 1 of our namespace: only SIGKILL from outside stops us, which
	 * is what the parent uses; keep the usual ones from interrupting */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGPIPE);
	(void)sigprocmask(SIG_BLOCK, &set, NULL);

	bk_chan_init(&ch_stream, FD_STREAM);
	bk_chan_init(&ch_misc, FD_MISC);
	if (!(main_buf = malloc(BK_MSG_MAX)))
		return 1;
	n = bk_chan_recv(FD_MAIN, &h, main_buf, BK_MSG_MAX, NULL);
	if (n < 0 || h.type != BK_M_CONFIG) {
		log_warnx("worker %s: no configuration from the parent",
			  domain);
		return 1;
	}
	cfg = xf_config_parse_checked("configuration from xenfsd", (char *)main_buf,
			      (size_t)n, err, sizeof(err));
	if (!cfg) {
		(void)reply_msg(h.id, -EINVAL, err);
		return 1;
	}
	bk_srv.cfg = cfg;
	bk_srv.started = time(NULL);
	if ((r = bk_sandbox_process(domain, cfg, err, sizeof(err))) < 0) {
		log_warnx("worker %s: %s", domain, err);
		(void)reply_msg(h.id, r, err);
		return 1;
	}
	if ((r = bk_loop_init()) < 0 ||
	    (r = bk_loop_add(FD_MAIN, EPOLLIN, main_cb, NULL)) < 0) {
		snprintf(err, sizeof(err), "event loop: %s", strerror(-r));
		(void)reply_msg(h.id, r, err);
		return 1;
	}
	if ((r = pthread_create(&ctl, NULL, ctl_main, NULL)) != 0) {
		snprintf(err, sizeof(err), "thread: %s", strerror(r));
		(void)reply_msg(h.id, -r, err);
		return 1;
	}
	(void)pthread_detach(ctl);
	log_info("worker %s: ready", domain);
	(void)reply(h.id, 0, NULL, 0);

	r = bk_loop_run();
	bk_local_stop();
	bk_conns_stop_all("worker exiting");
	xf_config_free(bk_srv.cfg);
	bk_srv.cfg = NULL;
	free(main_buf);
	return r < 0 ? 1 : 0;
}
