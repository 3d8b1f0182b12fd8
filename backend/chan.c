/*
 * Message framing of the parent/worker channels (see chan.h).
 *
 * Concurrency: bk_chan_send and bk_chan_recv are plain syscalls (a
 * SOCK_SEQPACKET send is atomic per message, so concurrent senders do not
 * interleave); bk_chan_call holds the channel's mutex from the send to
 * the matching reply.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "chan.h"

void bk_chan_init(struct bk_chan *ch, int fd)
{
	ch->fd = fd;
	pthread_mutex_init(&ch->lock, NULL);
	ch->next_id = 1;
}

int bk_chan_send(int fd, uint32_t type, uint64_t id, int32_t status,
		 const void *p, size_t len, int sendfd)
{
	struct bk_msg_hdr h;
	struct iovec iov[2];
	struct msghdr mh;
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	ssize_t n;

	if (len > BK_MSG_MAX)
		return -EMSGSIZE;
	memset(&h, 0, sizeof(h));
	h.type = type;
	h.len = (uint32_t)len;
	h.status = status;
	h.id = id;
	iov[0].iov_base = &h;
	iov[0].iov_len = sizeof(h);
	iov[1].iov_base = (void *)p;
	iov[1].iov_len = len;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = len ? 2 : 1;
	if (sendfd >= 0) {
		memset(&u, 0, sizeof(u));
		mh.msg_control = u.buf;
		mh.msg_controllen = sizeof(u.buf);
		u.c.cmsg_level = SOL_SOCKET;
		u.c.cmsg_type = SCM_RIGHTS;
		u.c.cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(&u.c), &sendfd, sizeof(int));
	}
	do
		n = sendmsg(fd, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EPIPE ? -ECONNRESET : -errno;
	return n == (ssize_t)(sizeof(h) + len) ? 0 : -EIO;
}

ssize_t bk_chan_recv(int fd, struct bk_msg_hdr *h, void *buf, size_t cap,
		     int *fdp)
{
	struct iovec iov[2];
	struct msghdr mh;
	struct cmsghdr *c;
	union {
		struct cmsghdr c;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} u;
	int got = -1;
	ssize_t n;

	if (fdp)
		*fdp = -1;
	iov[0].iov_base = h;
	iov[0].iov_len = sizeof(*h);
	iov[1].iov_base = buf;
	iov[1].iov_len = cap;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = 2;
	mh.msg_control = u.buf;
	mh.msg_controllen = sizeof(u.buf);
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		return -ECONNRESET;
	/* every descriptor that came along is ours to keep or close */
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		size_t i, nfd;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < nfd; i++) {
			int one;

			memcpy(&one, CMSG_DATA(c) + i * sizeof(int),
			       sizeof(int));
			if (got < 0 && fdp)
				got = one;
			else
				close(one);
		}
	}
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    (size_t)n < sizeof(*h) || h->len != (size_t)n - sizeof(*h)) {
		if (got >= 0)
			close(got);
		return (mh.msg_flags & MSG_TRUNC) ? -EMSGSIZE : -EPROTO;
	}
	if (fdp)
		*fdp = got;
	return (ssize_t)h->len;
}

int bk_chan_wait(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r > 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int bk_chan_call(struct bk_chan *ch, uint32_t type, const void *p,
		 size_t len, int sendfd, void *rbuf, size_t rcap,
		 size_t *rlen, int timeout_ms)
{
	struct bk_msg_hdr h;
	char scratch[256];
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	uint64_t id;
	ssize_t n;
	int r;

	if (rlen)
		*rlen = 0;
	pthread_mutex_lock(&ch->lock);
	id = ch->next_id++;
	r = bk_chan_send(ch->fd, type, id, 0, p, len, sendfd);
	while (r == 0) {
		/* r is 0 at the top of every round */
		int left = deadline < 0 ? -1 : (int)(deadline - now_ms());

		if (deadline >= 0 && left < 0)
			left = 0;
		r = bk_chan_wait(ch->fd, left);
		if (r == 0) {
			r = -ETIMEDOUT;
			break;
		}
		if (r < 0)
			break;
		n = rbuf ? bk_chan_recv(ch->fd, &h, rbuf, rcap, NULL) :
			   bk_chan_recv(ch->fd, &h, scratch, sizeof(scratch),
					NULL);
		r = 0;
		if (n == -EMSGSIZE || n == -EPROTO)
			continue;	/* not ours to understand: skip */
		if (n < 0) {
			r = (int)n;
			break;
		}
		if (h.type != BK_M_REPLY || h.id != id)
			continue;	/* a reply to a call that timed out */
		if (rlen && rbuf)
			*rlen = (size_t)n;
		r = h.status > 0 ? -EPROTO : h.status;
		break;
	}
	pthread_mutex_unlock(&ch->lock);
	return r;
}
