/*
 * libFuzzer target: what a (compromised) xenfsd worker can send its
 * privileged parent (backend/priv.c).  The input is one datagram on a
 * channel: it goes through bk_chan_recv's framing checks, and a payload
 * that passes is decoded as an operation event (xf_stream_decode, what
 * the parent's stream thread does) and, when it decodes, re-encoded and
 * decoded again: the two must agree (the parent appends what it decoded).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xenfs/event.h>

#include "../../backend/chan.h"
#include "../../lib/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int sp[2] = { -1, -1 };
static unsigned char buf[BK_MSG_MAX];

static void check_event(const unsigned char *p, size_t n)
{
	static unsigned char enc[XENFS_REC_MAX];
	struct xenfs_event *ev, *ev2;
	size_t len;

	if (xf_stream_decode(p, n, &ev) != 0)
		return;
	len = xf_stream_encode(ev, enc);
	if (xf_stream_decode(enc, len, &ev2) != 0)
		abort();	/* our own encoding must decode */
	if (ev->op != ev2->op || ev->ino != ev2->ino ||
	    strcmp(ev->domain, ev2->domain) ||
	    strcmp(ev->export_tag, ev2->export_tag) ||
	    strcmp(ev->path, ev2->path) || strcmp(ev->path2, ev2->path2))
		abort();
	free(ev);
	free(ev2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bk_msg_hdr h;
	ssize_t n;
	int fd;

	if (sp[0] < 0 &&
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		abort();
	if (size > BK_MSG_MAX + sizeof(h))
		size = BK_MSG_MAX + sizeof(h);
	if (send(sp[0], data, size, 0) != (ssize_t)size)
		return 0;
	n = bk_chan_recv(sp[1], &h, buf, sizeof(buf), &fd);
	if (fd >= 0)
		abort();	/* nobody sent a descriptor */
	if (n < 0)
		return 0;
	if ((size_t)n != size - sizeof(h) || h.len != (size_t)n)
		abort();
	/* the payload as the stream thread sees it, and also the raw input
	 * (a decoder bug should not hide behind the header) */
	check_event(buf, (size_t)n);
	check_event(data, size);
	return 0;
}
