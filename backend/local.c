/*
 * The local transport's acceptor: one listening unix socket per
 * [domain NAME] with local-socket; the socket a client reaches is its
 * domain identity.  A client's hello is received, checked against the
 * current policy, answered, and the connection handed to bk_conn_start().
 *
 * With privilege separation (bk_priv_on), the parent only listens and
 * hands each accepted socket to its domain's worker process, which runs
 * the handshake below through bk_local_adopt() as if it had accepted the
 * client itself.
 *
 * Concurrency: main thread only.  Handshakes never block the loop: an
 * accepted socket is watched for its hello (xf_local_accept is called
 * once it is readable, and then finds the whole message queued), and a
 * one-second sweep timer drops clients that sent nothing within
 * HELLO_TIMEOUT seconds, so a silent client pins one descriptor for a
 * bounded time.  Pending handshakes are capped overall and connections
 * are capped per domain (EBUSY).
 *
 * Trust boundary: everything on an accepted socket is hostile; its
 * validation is xf_local_accept's (lib/transport_local.c).  Here we only
 * decide with policy (xf_policy_access) what the domain may do.
 *
 * Listener lifetime: refcounted; a listener removed by a reload stays
 * allocated until its last pending handshake and connection are gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <xenfs/local.h>

#include "bk.h"
#include "log.h"
#include "util.h"

#define HELLO_TIMEOUT		5	/* seconds for a client to say hello */
#define MAX_PENDING		64	/* handshakes in progress, all domains */
#define MAX_CONNS_PER_DOMAIN	16

struct listener {
	struct listener *next;
	char *domain;
	char *path;
	int fd;			/* -1 once closed */
	dev_t dev;		/* the socket file we created */
	ino_t ino;
	int refs;
	unsigned nconns;
	int keep;		/* reload mark */
};

struct pending {
	struct pending *next;
	struct listener *l;
	int fd;
	time_t deadline;
};

static struct listener *listeners;
static struct listener *adopted;	/* a worker's (fd -2, no socket) */
static struct pending *pendings;
static unsigned npending;
static int sweep_fd = -1;
static struct log_ratelimit local_rl = LOG_RATELIMIT_INIT;

static int sweep_start(void);

static void listener_unref(struct listener *l)
{
	if (--l->refs > 0)
		return;
	free(l->domain);
	free(l->path);
	free(l);
}

static time_t now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* ---- connections ---- */

static void local_on_close(struct bk_conn *c, void *arg)
{
	struct listener *l = arg;

	l->nconns--;
	listener_unref(l);
}

static void pending_remove(struct pending *p)
{
	struct pending **pp;

	for (pp = &pendings; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	npending--;
	bk_loop_del(p->fd);
	listener_unref(p->l);
	free(p);
}

/* Refuse after a good hello: answer, then drop the transport. */
static void refuse(struct xf_conn *xc, int fd, int error, const char *msg)
{
	(void)xf_local_welcome(fd, error, 0, msg);	/* best effort */
	xf_conn_destroy(xc);				/* closes fd */
}

static void hello_cb(int fd, uint32_t events, void *arg)
{
	struct pending *p = arg;
	struct listener *l = p->l;
	struct xenfs_local_hello hello;
	const struct xf_config *cfg = bk_srv.cfg;
	struct xf_conn *xc = NULL;
	char err[200], msg[232];
	enum xf_access a;
	uint32_t flags = 0;
	int r, dupfd;

	l->refs++;		/* survive pending_remove */
	pending_remove(p);	/* fd is ours again, unwatched */
	r = xf_local_accept(fd, cfg->global.max_region, &hello, &xc, err,
			    sizeof(err));
	if (r == -ECONNRESET) {
		log_debug("dom %s: client left before its hello", l->domain);
		close(fd);
		goto out;
	}
	if (r < 0) {
		log_warnx_rl(&local_rl, "dom %s: local handshake refused: %s",
			     l->domain, err);
		(void)xf_local_welcome(fd, -r, 0, err);
		close(fd);
		goto out;
	}
	hello.tag[XENFS_TAG_MAX - 1] = '\0';
	if (l->fd == -1) {
		snprintf(msg, sizeof(msg), "domain %s is no longer served",
			 l->domain);
		refuse(xc, fd, ESHUTDOWN, msg);
		goto out;
	}
	if (!xf_config_export(cfg, hello.tag)) {
		snprintf(msg, sizeof(msg), "no export '%s'", hello.tag);
		log_warnx_rl(&local_rl, "dom %s: %s", l->domain, msg);
		refuse(xc, fd, ENOENT, msg);
		goto out;
	}
	a = xf_policy_access(cfg, l->domain, hello.tag);
	if (a == XF_ACCESS_NONE) {
		snprintf(msg, sizeof(msg), "domain %s has no access to "
			 "export '%s'", l->domain, hello.tag);
		log_warnx_rl(&local_rl, "dom %s: %s", l->domain, msg);
		refuse(xc, fd, EACCES, msg);
		goto out;
	}
	if (l->nconns >= MAX_CONNS_PER_DOMAIN) {
		snprintf(msg, sizeof(msg), "domain %s has too many "
			 "connections (%u)", l->domain, l->nconns);
		log_warnx_rl(&local_rl, "dom %s: %s", l->domain, msg);
		refuse(xc, fd, EBUSY, msg);
		goto out;
	}
	if (a == XF_ACCESS_RO || (hello.flags & XENFS_LOCAL_F_RO))
		flags |= XENFS_LOCAL_F_RO;
	{
		char sect[16 + XENFS_TAG_MAX];
		uint64_t noexec = 0;

		snprintf(sect, sizeof(sect), "export %s", hello.tag);
		if (xf_config_get_u64(cfg, sect, "noexec", &noexec) == 0 &&
		    noexec)
			flags |= XENFS_LOCAL_F_NOEXEC;
	}

	/* bk_conn_start owns xc (and the socket) even when it fails; keep
	 * a duplicate to answer either way. */
	dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dupfd < 0) {
		log_warn("dom %s: dup", l->domain);
		refuse(xc, fd, EMFILE, "backend out of descriptors");
		goto out;
	}
	l->refs++;
	l->nconns++;
	r = bk_conn_start(xc, l->domain, 0, hello.tag,
			  (flags & XENFS_LOCAL_F_RO) != 0, local_on_close, l,
			  NULL);
	if (r < 0) {
		l->nconns--;
		listener_unref(l);
		snprintf(msg, sizeof(msg), "backend cannot serve export "
			 "'%s': %s", hello.tag, strerror(-r));
		log_warnx("dom %s: %s", l->domain, msg);
		(void)xf_local_welcome(dupfd, -r, 0, msg);
	} else if ((r = xf_local_welcome(dupfd, 0, flags, "")) < 0) {
		/* the peer is gone already: its EOF stops the connection */
		log_debug("dom %s: welcome: %s", l->domain, strerror(-r));
	}
	close(dupfd);
out:
	listener_unref(l);
}

/* Watch fd for its hello on behalf of listener l; takes fd. */
static void pending_add(struct listener *l, int fd)
{
	struct pending *p;
	int r;

	if (npending >= MAX_PENDING) {
		log_warnx_rl(&local_rl, "dom %s: too many handshakes in "
			     "progress; dropping a client", l->domain);
		(void)xf_local_welcome(fd, EBUSY, 0,
				       "backend busy, retry later");
		close(fd);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		close(fd);
		return;
	}
	p->l = l;
	p->fd = fd;
	p->deadline = now_mono() + HELLO_TIMEOUT;
	r = bk_loop_add(fd, EPOLLIN | EPOLLRDHUP, hello_cb, p);
	if (r < 0) {
		log_warnx("dom %s: watch client: %s", l->domain,
			  strerror(-r));
		close(fd);
		free(p);
		return;
	}
	l->refs++;
	p->next = pendings;
	pendings = p;
	npending++;
}

/* Parent of sandboxed workers: the domain's worker does the handshake. */
static void accept_to_worker(struct listener *l, int fd)
{
	char err[256];
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	if (bk_priv_adopt_local(l->domain, fd, err, sizeof(err)) < 0) {
		log_warnx_rl(&local_rl, "dom %s: cannot hand a client to its "
			     "worker: %s", l->domain, err);
		if (dfd >= 0)
			(void)xf_local_welcome(dfd, EAGAIN, 0, err);
	}
	if (dfd >= 0)
		close(dfd);
}

int bk_local_adopt(const char *domain, int fd)
{
	int r;

	if ((r = sweep_start()) < 0) {
		(void)xf_local_welcome(fd, -r, 0, "backend cannot take a "
				       "connection now (handshake timer)");
		close(fd);
		return r;
	}
	if (!adopted) {
		if (!(adopted = calloc(1, sizeof(*adopted))) ||
		    !(adopted->domain = strdup(domain))) {
			free(adopted);
			adopted = NULL;
			(void)xf_local_welcome(fd, ENOMEM, 0, "backend out of "
					       "memory");
			close(fd);
			return -ENOMEM;
		}
		adopted->fd = -2;
		adopted->refs = 1;
	}
	pending_add(adopted, fd);
	return 0;
}

static void accept_cb(int lfd, uint32_t events, void *arg)
{
	struct listener *l = arg;
	int i, fd;

	for (i = 0; i < 16; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    errno != ECONNABORTED)
				log_warn("dom %s: accept", l->domain);
			return;
		}
		if (bk_priv_on())
			accept_to_worker(l, fd);
		else
			pending_add(l, fd);
	}
}

static void sweep_cb(int fd, uint32_t events, void *arg)
{
	struct pending *p, *next;
	uint64_t ticks;
	time_t now = now_mono();
	int cfd;

	(void)!read(fd, &ticks, sizeof(ticks));
	for (p = pendings; p; p = next) {
		next = p->next;
		if (now < p->deadline)
			continue;
		log_warnx_rl(&local_rl, "dom %s: client sent no hello within "
			     "%d s; dropped", p->l->domain, HELLO_TIMEOUT);
		(void)xf_local_welcome(p->fd, ETIMEDOUT, 0,
				       "no hello received in time");
		cfd = p->fd;
		pending_remove(p);	/* unwatches cfd: close it after */
		close(cfd);
	}
}

/* ---- listeners ---- */

static int listener_open(const struct xf_domain *d, struct listener **out)
{
	struct sockaddr_un sa;
	struct listener *l;
	struct stat st;
	int fd = -1, r;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(d->local_socket) >= sizeof(sa.sun_path)) {
		log_warnx("domain %s: local-socket path too long: %s",
			  d->name, d->local_socket);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, d->local_socket, strlen(d->local_socket));
	if ((r = xf_mkdir_parents(d->local_socket, 0755)) < 0) {
		errno = -r;
		log_warn("domain %s: cannot create the directory of %s",
			 d->name, d->local_socket);
		return r;
	}
	if (lstat(d->local_socket, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			log_warnx("domain %s: %s exists and is not a socket",
				  d->name, d->local_socket);
			return -EEXIST;
		}
		/* a live server behind it: do not steal its socket */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa,
					  sizeof(sa)) == 0) {
			close(probe);
			log_warnx("domain %s: %s is in use by another "
				  "process", d->name, d->local_socket);
			return -EADDRINUSE;
		}
		if (probe >= 0)
			close(probe);
		if (unlink(d->local_socket) < 0 && errno != ENOENT) {
			r = -errno;
			log_warn("domain %s: unlink stale %s", d->name,
				 d->local_socket);
			return r;
		}
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		log_warn("socket");
		return r;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		log_warn("domain %s: bind %s", d->name, d->local_socket);
		goto fail;
	}
	/* before listen(): nobody can connect until the mode is right */
	if (chmod(d->local_socket, 0600) < 0 ||
	    stat(d->local_socket, &st) < 0) {
		r = -errno;
		log_warn("domain %s: chmod %s", d->name, d->local_socket);
		goto fail_unlink;
	}
	if (listen(fd, 64) < 0) {
		r = -errno;
		log_warn("domain %s: listen %s", d->name, d->local_socket);
		goto fail_unlink;
	}
	l = calloc(1, sizeof(*l));
	if (!l || !(l->domain = strdup(d->name)) ||
	    !(l->path = strdup(d->local_socket))) {
		if (l) {
			free(l->domain);
			free(l);
		}
		r = -ENOMEM;
		goto fail_unlink;
	}
	l->fd = fd;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->refs = 1;
	r = bk_loop_add(fd, EPOLLIN, accept_cb, l);
	if (r < 0) {
		log_warnx("domain %s: watch %s: %s", d->name,
			  d->local_socket, strerror(-r));
		listener_unref(l);
		goto fail_unlink;
	}
	log_info("domain %s: listening on %s", d->name, d->local_socket);
	*out = l;
	return 0;

fail_unlink:
	(void)unlink(d->local_socket);
fail:
	close(fd);
	return r;
}

/* Stop listening; connections and pending handshakes keep their ref. */
static void listener_close(struct listener *l)
{
	struct stat st;

	if (l->fd < 0)
		return;
	bk_loop_del(l->fd);
	close(l->fd);
	l->fd = -1;
	/* remove the file only if it is still the one we bound */
	if (lstat(l->path, &st) == 0 && st.st_dev == l->dev &&
	    st.st_ino == l->ino)
		(void)unlink(l->path);
	log_info("domain %s: stopped listening on %s", l->domain, l->path);
}

static int sweep_start(void)
{
	struct itimerspec its = {
		.it_interval = { 1, 0 },
		.it_value = { 1, 0 },
	};
	int r;

	if (sweep_fd >= 0)
		return 0;
	sweep_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (sweep_fd < 0)
		return -errno;
	if (timerfd_settime(sweep_fd, 0, &its, NULL) < 0) {
		r = -errno;
		goto fail;
	}
	if ((r = bk_loop_add(sweep_fd, EPOLLIN, sweep_cb, NULL)) < 0)
		goto fail;
	return 0;
fail:
	close(sweep_fd);
	sweep_fd = -1;
	return r;
}

int bk_local_start(const struct xf_config *cfg)
{
	struct listener *l;
	size_t i;
	int r;

	if ((r = sweep_start()) < 0) {
		log_warnx("handshake timer: %s", strerror(-r));
		return r;
	}
	for (i = 0; i < cfg->ndomains; i++) {
		const struct xf_domain *d = &cfg->domains[i];

		if (!d->local_socket)
			continue;
		if ((r = listener_open(d, &l)) < 0)
			return r;
		l->next = listeners;
		listeners = l;
	}
	return 0;
}

void bk_local_reload(const struct xf_config *cfg)
{
	struct listener *l, **pp, *nl;
	size_t i;

	for (l = listeners; l; l = l->next)
		l->keep = 0;
	for (i = 0; i < cfg->ndomains; i++) {
		const struct xf_domain *d = &cfg->domains[i];

		if (!d->local_socket)
			continue;
		for (l = listeners; l; l = l->next)
			if (strcmp(l->domain, d->name) == 0 &&
			    strcmp(l->path, d->local_socket) == 0)
				l->keep = 1;
	}
	/* close what went away first: a path may move between domains */
	for (pp = &listeners; (l = *pp);) {
		if (l->keep) {
			pp = &l->next;
			continue;
		}
		*pp = l->next;
		listener_close(l);
		listener_unref(l);
	}
	for (i = 0; i < cfg->ndomains; i++) {
		const struct xf_domain *d = &cfg->domains[i];
		int found = 0;

		if (!d->local_socket)
			continue;
		for (l = listeners; l; l = l->next)
			if (strcmp(l->domain, d->name) == 0 &&
			    strcmp(l->path, d->local_socket) == 0)
				found = 1;
		if (found)
			continue;
		if (listener_open(d, &nl) == 0) {
			nl->keep = 1;
			nl->next = listeners;
			listeners = nl;
		}
	}
}

void bk_local_stop(void)
{
	struct listener *l;

	while (pendings) {
		struct pending *p = pendings;
		int fd = p->fd;

		pending_remove(p);
		close(fd);
	}
	while ((l = listeners)) {
		listeners = l->next;
		listener_close(l);
		listener_unref(l);
	}
	if (adopted) {
		adopted->fd = -1;	/* its pending hellos: "no longer served" */
		listener_unref(adopted);
		adopted = NULL;
	}
	if (sweep_fd >= 0) {
		bk_loop_del(sweep_fd);
		close(sweep_fd);
		sweep_fd = -1;
	}
}
