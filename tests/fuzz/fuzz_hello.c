/*
 * Fuzz target: the backend side of the local handshake,
 * xf_local_accept() in lib/transport_local.c, the first code in xenfsd
 * that reads what a (possibly hostile) local frontend sends: one hello
 * message plus SCM_RIGHTS descriptors.
 *
 * Input: a small header choosing the descriptors to send (a memfd of a
 * chosen or of the honest size, sealed or not, eventfds of the honest or
 * a chosen count, a pipe in the middle) and max_region, then the hello
 * bytes as sent (any length).  The harness sends them over a socketpair,
 * closes its end and calls xf_local_accept on the other.
 *
 * Invariants (abort on violation): success implies a layout that passes
 * xf_layout_check, a region of exactly xenfs_region_size bytes and one
 * doorbell pair per queue; failure leaves an error message; and no
 * descriptor leaks either way (the lowest free descriptor number is the
 * same before and after each input).
 *
 * Single-threaded; every input creates and closes its own descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xenfs/local.h>
#include "ring.h"
#include "transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define H_MAXFDS	40
#define H_MAXREGION	(64ull << 20)

static int lowest_free_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		abort();
	close(fd);
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xenfs_local_hello hello, got;
	struct xf_conn *c = NULL;
	uint8_t flags, nextra, maxr;
	uint32_t rawsize;
	int fds[H_MAXFDS], nfds = 0, sv[2], before, i, r;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * H_MAXFDS)];
	} cbuf;
	struct iovec iov;
	struct msghdr mh;
	char err[256];
	uint64_t region;
	uint32_t nq;

	if (size < 7)
		return 0;
	flags = data[0];
	nextra = data[1];
	maxr = data[2];
	memcpy(&rawsize, data + 3, 4);
	data += 7;
	size -= 7;
	if (size > 512)
		size = 512;

	before = lowest_free_fd();
	/* what the layout in the hello asks for, if it is there */
	memset(&hello, 0, sizeof(hello));
	memcpy(&hello, data, size < sizeof(hello) ? size : sizeof(hello));
	nq = hello.layout.nr_queues;
	/* the ring.h size helpers assume a checked layout (they shift by
	 * ring_order): only an honest layout gets an honest size */
	region = xf_layout_check(&hello.layout, 0, NULL) == 0 ?
		 xenfs_region_size(&hello.layout) : rawsize;

	if (flags & 1) {	/* a memfd first */
		uint64_t sz = (flags & 2) ? region : rawsize;
		int m = memfd_create("fuzz-region", MFD_CLOEXEC |
				     MFD_ALLOW_SEALING);

		if (m < 0)
			abort();
		if (sz > H_MAXREGION)
			sz = rawsize & 0xffff;
		if (ftruncate(m, (off_t)sz) < 0)
			abort();
		if ((flags & 4) && fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK |
					 F_SEAL_GROW | F_SEAL_SEAL) < 0)
			abort();
		fds[nfds++] = m;
	}
	{
		int want = (flags & 8) && nq <= XENFS_MAX_QUEUES ?
			   (int)(2 * nq) : nextra % 36;

		for (i = 0; i < want && nfds < H_MAXFDS; i++) {
			int e;

			if ((flags & 16) && i == want / 2) {
				int p[2];

				if (pipe2(p, O_CLOEXEC) < 0)
					abort();
				close(p[1]);
				e = p[0];
			} else if ((e = eventfd(0, EFD_CLOEXEC)) < 0)
				abort();
			fds[nfds++] = e;
		}
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	iov.iov_base = (void *)data;
	iov.iov_len = size;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (nfds && size) {
		struct cmsghdr *cm;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)nfds);
	}
	if (size && sendmsg(sv[0], &mh, MSG_NOSIGNAL) < 0)
		abort();
	close(sv[0]);
	for (i = 0; i < nfds; i++)
		close(fds[i]);

	err[0] = '\0';
	r = xf_local_accept(sv[1], maxr & 1 ? H_MAXREGION :
			    (uint64_t)maxr << 16, &got, &c, err, sizeof(err));
	if (r == 0) {
		const char *why;

		if (!c || !c->base || xf_layout_check(&c->layout, 0, &why) ||
		    c->size != xenfs_region_size(&c->layout) ||
		    memcmp(&c->layout, &got.layout, sizeof(got.layout)))
			abort();
		for (i = 0; i < (int)c->layout.nr_queues; i++)
			if (xf_conn_event_fd(c, (uint32_t)i) < 0)
				abort();
		/* touch both ends of the mapping */
		((volatile uint8_t *)c->base)[0] = 1;
		((volatile uint8_t *)c->base)[c->size - 1] = 1;
		xf_conn_destroy(c);	/* closes sv[1] */
	} else {
		if (c || !err[0] || r >= 0)
			abort();
		close(sv[1]);
	}
	if (lowest_free_fd() != before)
		abort();	/* a descriptor leaked */
	return 0;
}
