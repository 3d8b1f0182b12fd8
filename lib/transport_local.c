/*
 * Local transport: the shared region is a memfd, the doorbells are
 * eventfds, and both are handed from frontend to backend over a unix
 * socket with SCM_RIGHTS (handshake in <xenfs/local.h>).  Used by tests,
 * dom0-local mounts and containers; everything above the transport is the
 * same as for Xen.
 *
 * Trust boundary: on the backend side (xf_local_accept) every byte and
 * every descriptor comes from a guest stand-in and is hostile: the hello is
 * read into private memory in one recvmsg, its length, magic, versions,
 * tag, flags and layout are checked before the descriptors are looked at,
 * the descriptor count must match the layout exactly, the memfd must be a
 * regular file of exactly the region size with its size sealed (so the
 * frontend cannot truncate it under our mapping and make us SIGBUS), and
 * the doorbells must be eventfds.  On any error every received descriptor
 * is closed.  The frontend (xf_local_connect) treats the welcome the same
 * way: fixed size, magic, version, a message that is sanitized before the
 * admin sees it.
 *
 * Residual risk, accepted: the eventfds' file descriptions are shared with
 * the frontend, which can clear O_NONBLOCK or drain a counter under us;
 * that can stall only the worker of its own connection, never another
 * guest's.
 *
 * Concurrency: notify/event_ack of different queues may run on different
 * threads (they only touch that queue's eventfds); peer_check and destroy
 * belong to the owner of the connection.  No locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <xenfs/local.h>

#include "ring.h"
#include "transport.h"

/* How long either side waits for the other's half of the handshake. */
#define LOCAL_HANDSHAKE_MS	30000
/* Descriptors in a hello: memfd + two eventfds per queue. */
#define LOCAL_MAX_FDS		(1 + 2 * XENFS_MAX_QUEUES)

struct local_priv {
	int sock;		/* the unix socket; EOF = peer gone */
	uint32_t nr_queues;
	int kick[XENFS_MAX_QUEUES];	/* we write: rings the peer */
	int wait[XENFS_MAX_QUEUES];	/* we poll/read: the peer rang us */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void close_fds(int *fds, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (fds[i] >= 0) {
			(void)close(fds[i]);	/* nothing to do on error */
			fds[i] = -1;
		}
	}
}

/* ---- transport ops ---- */

static int local_notify(struct xf_conn *c, uint32_t q)
{
	struct local_priv *p = c->priv;
	uint64_t one = 1;

	if (q >= p->nr_queues)
		return -EINVAL;
	if (write(p->kick[q], &one, sizeof(one)) != sizeof(one)) {
		/* counter saturated: the peer has a wakeup pending anyway */
		if (errno == EAGAIN)
			return 0;
		return -errno;
	}
	return 0;
}

static int local_event_fd(struct xf_conn *c, uint32_t q)
{
	struct local_priv *p = c->priv;

	if (q >= p->nr_queues)
		return -EINVAL;
	return p->wait[q];
}

static int local_event_ack(struct xf_conn *c, uint32_t q)
{
	struct local_priv *p = c->priv;
	uint64_t v;

	if (q >= p->nr_queues)
		return -EINVAL;
	if (read(p->wait[q], &v, sizeof(v)) != sizeof(v)) {
		/* spurious wakeup: nothing to consume */
		if (errno == EAGAIN)
			return 0;
		return -errno;
	}
	return 0;
}

static int local_peer_fd(struct xf_conn *c)
{
	struct local_priv *p = c->priv;

	return p->sock;
}

/*
 * Nothing travels on the socket after the handshake, so readable means EOF,
 * an error, or a peer that violates the protocol; all three end the
 * connection.  A spurious wakeup (nothing there) is "still connected".
 */
static int local_peer_check(struct xf_conn *c)
{
	struct local_priv *p = c->priv;
	char b;
	ssize_t n;

	n = recv(p->sock, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	return -ENOTCONN;
}

static void local_destroy(struct xf_conn *c)
{
	struct local_priv *p = c->priv;

	if (c->base && c->base != MAP_FAILED)
		(void)munmap(c->base, c->size);	/* cannot fail on our map */
	if (p) {
		close_fds(p->kick, p->nr_queues);
		close_fds(p->wait, p->nr_queues);
		if (p->sock >= 0)
			(void)close(p->sock);
		free(p);
	}
	free(c);
}

static const struct xf_transport_ops local_ops = {
	.name = "local",
	.notify = local_notify,
	.event_fd = local_event_fd,
	.event_ack = local_event_ack,
	.peer_fd = local_peer_fd,
	.peer_check = local_peer_check,
	.destroy = local_destroy,
};

static struct xf_conn *conn_alloc(uint32_t nr_queues)
{
	struct xf_conn *c = calloc(1, sizeof(*c));
	struct local_priv *p = calloc(1, sizeof(*p));
	uint32_t q;

	if (!c || !p) {
		free(c);
		free(p);
		return NULL;
	}
	p->sock = -1;
	p->nr_queues = nr_queues;
	for (q = 0; q < XENFS_MAX_QUEUES; q++)
		p->kick[q] = p->wait[q] = -1;
	c->ops = &local_ops;
	c->priv = p;
	c->base = NULL;
	return c;
}

/* Wait until fd is readable or the handshake timeout passes. */
static int wait_readable(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int n;

	do
		n = poll(&pfd, 1, LOCAL_HANDSHAKE_MS);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ETIMEDOUT;
	return 0;
}

/*
 * Receive one fixed-size message and up to maxfds descriptors in a single
 * recvmsg.  The message must arrive whole (the peer sends it with one
 * sendmsg; on a unix stream socket that arrives as one unit); a short,
 * long (more bytes queued in the same read) or truncated-ancillary
 * message is -EBADMSG.  Received descriptors are stored in fds (count in
 * *nfds) and are close-on-exec; on error they are all closed.
 */
static int recv_msg_fds(int sock, void *msg, size_t len, int *fds,
			size_t maxfds, size_t *nfds, char *err, size_t errlen)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * LOCAL_MAX_FDS)];
	} cbuf;
	unsigned char data[sizeof(struct xenfs_local_welcome) + 1];
	struct iovec iov = { .iov_base = data, .iov_len = len + 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf.buf, .msg_controllen = sizeof(cbuf.buf),
	};
	struct cmsghdr *cm;
	ssize_t n;
	size_t i, cnt = 0, total = 0;
	int rc;

	*nfds = 0;
	if (len >= sizeof(data) || maxfds > LOCAL_MAX_FDS)
		return -EINVAL;		/* our own bug */
	rc = wait_readable(sock);
	if (rc) {
		set_err(err, errlen, "%s", rc == -ETIMEDOUT ?
			"timed out waiting for the peer" :
			"poll on the socket failed");
		return rc;
	}
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		rc = -errno;
		set_err(err, errlen, "receive failed: %s", strerror(errno));
		return rc;
	}
	/* Collect every descriptor first so that all of them get closed on
	 * any error, including ones beyond what we expect. */
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t k;

		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len < CMSG_LEN(0))
			continue;
		k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < k; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(fd));
			total++;
			if (cnt < maxfds)
				fds[cnt++] = fd;
			else
				(void)close(fd);	/* too many: drop */
		}
	}
	if (total > maxfds || (mh.msg_flags & MSG_CTRUNC)) {
		rc = -EBADMSG;
		set_err(err, errlen, "too many descriptors sent");
	} else if (n == 0) {
		rc = -ECONNRESET;
		set_err(err, errlen, "peer closed the connection");
	} else if ((size_t)n != len) {
		rc = -EBADMSG;
		set_err(err, errlen, "message of %zd bytes, expected %zu",
			n, len);
	}
	if (rc) {
		close_fds(fds, cnt);
		return rc;
	}
	memcpy(msg, data, len);
	*nfds = cnt;
	return 0;
}

static int send_msg_fds(int sock, const void *msg, size_t len,
			const int *fds, size_t nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * LOCAL_MAX_FDS)];
	} cbuf;
	struct iovec iov = { .iov_base = (void *)(uintptr_t)msg,
			     .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t n;

	if (nfds > LOCAL_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if ((size_t)n != len)
		return -EMSGSIZE;	/* a unix stream socket takes it whole */
	return 0;
}

/* ---- frontend ---- */

/* Copy the backend's message for the admin: NUL-terminated, printable. */
static void copy_message(char *dst, size_t dstlen, const char *src,
			 size_t srclen)
{
	size_t i;

	if (!dst || dstlen == 0)
		return;
	for (i = 0; i < srclen && i + 1 < dstlen && src[i]; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = '\0';
}

int xf_local_connect(const char *path, const char *tag, uint32_t flags,
		     const struct xenfs_layout *layout, struct xf_conn **out,
		     uint32_t *granted_flags, char *err, size_t errlen)
{
	struct xenfs_local_hello hello;
	struct xenfs_local_welcome wel;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct xf_conn *c = NULL;
	struct local_priv *p;
	int fds[LOCAL_MAX_FDS], memfd = -1, junk[LOCAL_MAX_FDS];
	size_t nfds = 0, njunk = 0, i;
	const char *why = NULL;
	uint64_t size;
	uint32_t q;
	int rc;

	*out = NULL;
	for (i = 0; i < LOCAL_MAX_FDS; i++)
		fds[i] = -1;
	if (xf_layout_check(layout, 0, &why) != 0) {
		set_err(err, errlen, "bad layout: %s", why);
		return -EINVAL;
	}
	if (!tag || !*tag || strlen(tag) >= XENFS_TAG_MAX) {
		set_err(err, errlen, "tag must be 1 to %u characters",
			XENFS_TAG_MAX - 1);
		return -EINVAL;
	}
	if (flags & ~(uint32_t)XENFS_LOCAL_F_RO) {
		set_err(err, errlen, "unknown flags 0x%x", flags);
		return -EINVAL;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		set_err(err, errlen, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	size = xenfs_region_size(layout);
	if (size > SIZE_MAX) {
		set_err(err, errlen, "shared region too large");
		return -EFBIG;
	}

	c = conn_alloc(layout->nr_queues);
	if (!c) {
		set_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	p = c->priv;
	c->layout = *layout;
	c->size = (size_t)size;

	memfd = memfd_create("xenfs-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (memfd < 0) {
		rc = -errno;
		set_err(err, errlen, "memfd_create: %s", strerror(errno));
		goto fail;
	}
	if (ftruncate(memfd, (off_t)size) < 0 ||
	    fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW |
		  F_SEAL_SEAL) < 0) {
		rc = -errno;
		set_err(err, errlen, "sizing the shared region: %s",
			strerror(errno));
		goto fail;
	}
	c->base = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       memfd, 0);
	if (c->base == MAP_FAILED) {
		c->base = NULL;
		rc = -errno;
		set_err(err, errlen, "mapping the shared region: %s",
			strerror(errno));
		goto fail;
	}
	/* The region is valid before the backend sees it: control page
	 * identified, every ring empty with events armed at index 1. */
	xf_region_ctrl(c->base)->magic = XENFS_RING_MAGIC;
	xf_region_ctrl(c->base)->version = XENFS_PROTO_VERSION;
	for (q = 0; q < layout->nr_queues; q++) {
		struct xenfs_sring *s = xf_region_sring(c->base, q);

		s->req_event = 1;
		s->rsp_event = 1;
	}

	fds[0] = memfd;
	for (q = 0; q < layout->nr_queues; q++) {
		p->kick[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		p->wait[q] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (p->kick[q] < 0 || p->wait[q] < 0) {
			rc = -errno;
			set_err(err, errlen, "eventfd: %s", strerror(errno));
			goto fail;
		}
		fds[1 + 2 * q] = p->kick[q];
		fds[2 + 2 * q] = p->wait[q];
	}
	nfds = 1 + 2 * (size_t)layout->nr_queues;

	p->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->sock < 0) {
		rc = -errno;
		set_err(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	while ((rc = connect(p->sock, (struct sockaddr *)&sun,
			     sizeof(sun))) < 0 && errno == EINTR)
		;
	if (rc < 0) {
		rc = -errno;
		set_err(err, errlen, "cannot connect to %s: %s", path,
			strerror(errno));
		goto fail;
	}

	memset(&hello, 0, sizeof(hello));
	hello.magic = XENFS_LOCAL_HELLO_MAGIC;
	hello.version_min = XENFS_PROTO_VERSION;
	hello.version_max = XENFS_PROTO_VERSION;
	hello.layout = *layout;
	hello.flags = flags;
	memcpy(hello.tag, tag, strlen(tag) + 1);
	rc = send_msg_fds(p->sock, &hello, sizeof(hello), fds, nfds);
	if (rc) {
		set_err(err, errlen, "sending the hello to %s: %s", path,
			strerror(-rc));
		goto fail;
	}
	/* The backend holds its own copies now; the mapping keeps the
	 * region alive for us. */
	(void)close(memfd);
	memfd = -1;

	rc = recv_msg_fds(p->sock, &wel, sizeof(wel), junk, LOCAL_MAX_FDS,
			  &njunk, err, errlen);
	if (rc)
		goto fail;
	close_fds(junk, njunk);		/* a welcome carries none */
	if (wel.magic != XENFS_LOCAL_WELCOME_MAGIC) {
		rc = -EPROTO;
		set_err(err, errlen, "backend sent a bad welcome (magic)");
		goto fail;
	}
	if (wel.error != 0) {
		char msg[sizeof(wel.message) + 1];

		copy_message(msg, sizeof(msg), wel.message,
			     sizeof(wel.message));
		rc = (wel.error > 0 && wel.error < 4096) ? -wel.error
							   : -EPROTO;
		set_err(err, errlen, "%s", msg[0] ? msg : strerror(-rc));
		goto fail;
	}
	if (wel.version != XENFS_PROTO_VERSION) {
		rc = -EPROTONOSUPPORT;
		set_err(err, errlen, "backend chose protocol version %u",
			wel.version);
		goto fail;
	}
	if (wel.flags & ~(uint32_t)(XENFS_LOCAL_F_RO | XENFS_LOCAL_F_NOEXEC)) {
		rc = -EPROTO;
		set_err(err, errlen, "backend granted unknown flags 0x%x",
			wel.flags);
		goto fail;
	}
	if (granted_flags)
		*granted_flags = wel.flags;
	*out = c;
	return 0;

fail:
	if (memfd >= 0)
		(void)close(memfd);
	local_destroy(c);
	return rc;
}

/* ---- backend ---- */

/* Is fd an eventfd?  The kernel names its anonymous inode. */
static int is_eventfd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return 0;
	link[n] = '\0';
	return strcmp(link, "anon_inode:[eventfd]") == 0;
}

int xf_local_accept(int sockfd, uint64_t max_region,
		    struct xenfs_local_hello *hello, struct xf_conn **out,
		    char *err, size_t errlen)
{
	struct xenfs_local_hello h;
	struct xf_conn *c = NULL;
	struct local_priv *p;
	int fds[LOCAL_MAX_FDS];
	size_t nfds = 0, i;
	const char *why = NULL;
	struct stat st;
	uint64_t size;
	uint32_t q;
	int seals, rc, fl;

	*out = NULL;
	rc = recv_msg_fds(sockfd, &h, sizeof(h), fds, LOCAL_MAX_FDS, &nfds,
			  err, errlen);
	if (rc)
		return rc;

	rc = -EPROTO;
	if (h.magic != XENFS_LOCAL_HELLO_MAGIC) {
		set_err(err, errlen, "bad hello magic");
		goto fail;
	}
	if (h.version_min > h.version_max ||
	    h.version_min > XENFS_PROTO_VERSION ||
	    h.version_max < XENFS_PROTO_VERSION) {
		rc = -EPROTONOSUPPORT;
		set_err(err, errlen, "no common protocol version "
			"(frontend %u-%u, backend %u)", h.version_min,
			h.version_max, XENFS_PROTO_VERSION);
		goto fail;
	}
	if (memchr(h.tag, '\0', sizeof(h.tag)) == NULL || h.tag[0] == '\0') {
		set_err(err, errlen, "bad export tag");
		goto fail;
	}
	if (h.flags & ~(uint32_t)XENFS_LOCAL_F_RO || h.pad != 0) {
		set_err(err, errlen, "unknown flags in hello");
		goto fail;
	}
	if (xf_layout_check(&h.layout, max_region, &why) != 0) {
		rc = -EINVAL;
		set_err(err, errlen, "bad layout: %s", why);
		goto fail;
	}
	if (nfds != 1 + 2 * (size_t)h.layout.nr_queues) {
		set_err(err, errlen, "hello carried %zu descriptors, "
			"expected %u", nfds, 1 + 2 * h.layout.nr_queues);
		goto fail;
	}
	size = xenfs_region_size(&h.layout);
	if (fstat(fds[0], &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size < 0 || (uint64_t)st.st_size != size ||
	    size > SIZE_MAX) {
		set_err(err, errlen, "shared region is not a file of "
			"%llu bytes", (unsigned long long)size);
		goto fail;
	}
	seals = fcntl(fds[0], F_GET_SEALS);
	if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) !=
	    (F_SEAL_SHRINK | F_SEAL_GROW)) {
		set_err(err, errlen, "shared region is not sealed against "
			"resizing");
		goto fail;
	}
	for (i = 1; i < nfds; i++) {
		if (!is_eventfd(fds[i])) {
			set_err(err, errlen, "descriptor %zu is not an eventfd",
				i);
			goto fail;
		}
		/* The description is shared with the peer; see the top. */
		fl = fcntl(fds[i], F_GETFL);
		if (fl < 0 || fcntl(fds[i], F_SETFL, fl | O_NONBLOCK) < 0) {
			rc = -errno;
			set_err(err, errlen, "fcntl on an eventfd: %s",
				strerror(errno));
			goto fail;
		}
	}

	c = conn_alloc(h.layout.nr_queues);
	if (!c) {
		rc = -ENOMEM;
		set_err(err, errlen, "out of memory");
		goto fail;
	}
	p = c->priv;
	c->layout = h.layout;
	c->size = (size_t)size;
	c->base = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED,
		       fds[0], 0);
	if (c->base == MAP_FAILED) {
		c->base = NULL;
		rc = -errno;
		set_err(err, errlen, "mapping the shared region: %s",
			strerror(errno));
		goto fail;
	}
	(void)close(fds[0]);	/* the mapping keeps the region */
	fds[0] = -1;
	for (q = 0; q < h.layout.nr_queues; q++) {
		/* the frontend kicks us on [1 + 2q], we kick it on [2 + 2q] */
		p->wait[q] = fds[1 + 2 * q];
		p->kick[q] = fds[2 + 2 * q];
		fds[1 + 2 * q] = fds[2 + 2 * q] = -1;
	}
	p->sock = sockfd;
	if (hello)
		*hello = h;
	*out = c;
	return 0;

fail:
	close_fds(fds, nfds);
	if (c) {
		/* the socket is still the caller's */
		((struct local_priv *)c->priv)->sock = -1;
		local_destroy(c);
	}
	return rc;
}

int xf_local_welcome(int sockfd, int error, uint32_t flags,
		     const char *message)
{
	struct xenfs_local_welcome w;

	memset(&w, 0, sizeof(w));
	w.magic = XENFS_LOCAL_WELCOME_MAGIC;
	w.version = XENFS_PROTO_VERSION;
	w.error = error < 0 ? -error : error;
	w.flags = error ? 0 : flags;
	if (message)
		snprintf(w.message, sizeof(w.message), "%s", message);
	return send_msg_fds(sockfd, &w, sizeof(w), NULL, 0);
}
