/*
 * Unit tests for the local transport (lib/transport_local.c): a full
 * handshake between a frontend thread and the test acting as backend over
 * a temporary unix socket, a refusal, and hostile hellos sent by hand over
 * a socketpair, each of which must be rejected without leaking any of the
 * descriptors it carried.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <xenfs/local.h>

#include "ring.h"
#include "transport.h"

static const struct xenfs_layout good_layout = {
	.nr_queues = 2, .ring_order = 2, .buf_size = 3 * XENFS_PAGE_SIZE,
};

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;	/* the DIR's own descriptor */
}

/* ---- full handshake over a listening socket ---- */

struct front_args {
	char path[108];
	uint32_t flags;
	struct xf_conn *conn;
	uint32_t granted;
	int rc;
	char err[256];
};

static void *front_thread(void *arg)
{
	struct front_args *a = arg;

	a->rc = xf_local_connect(a->path, "shared", a->flags, &good_layout,
				 &a->conn, &a->granted, a->err,
				 sizeof(a->err));
	return NULL;
}

static int listen_tmp(char *path, size_t len)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/xf-lt-XXXXXX";
	int s;

	assert_non_null(mkdtemp(dir));
	snprintf(path, len, "%s/sock", dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	assert_int_equal(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(s, 4), 0);
	return s;
}

static void unlisten_tmp(int s, const char *path)
{
	char dir[108];

	close(s);
	unlink(path);
	snprintf(dir, sizeof(dir), "%s", path);
	*strrchr(dir, '/') = '\0';
	rmdir(dir);
}

static void test_handshake(void **state)
{
	struct front_args a;
	struct xenfs_local_hello hello;
	struct xf_conn *back = NULL;
	char err[256];
	pthread_t t;
	int ls, s, before;
	uint32_t q;
	uint8_t *fb, *bb;

	(void)state;
	before = count_fds();
	memset(&a, 0, sizeof(a));
	a.flags = XENFS_LOCAL_F_RO;
	ls = listen_tmp(a.path, sizeof(a.path));
	assert_int_equal(pthread_create(&t, NULL, front_thread, &a), 0);
	s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	assert_int_equal(xf_local_accept(s, 1 << 30, &hello, &back, err,
					 sizeof(err)), 0);
	assert_string_equal(hello.tag, "shared");
	assert_int_equal(hello.flags, XENFS_LOCAL_F_RO);
	assert_int_equal(back->size, xenfs_region_size(&good_layout));
	assert_int_equal(xf_local_welcome(s, 0, XENFS_LOCAL_F_RO, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(a.rc, 0);
	assert_non_null(a.conn);
	assert_int_equal(a.granted, XENFS_LOCAL_F_RO);

	/* the frontend prepared the control page before the hello */
	assert_int_equal(xf_region_ctrl(back->base)->magic, XENFS_RING_MAGIC);
	assert_int_equal(xf_region_ctrl(back->base)->version,
			 XENFS_PROTO_VERSION);
	/* same memory on both sides */
	fb = xf_region_buf(a.conn->base, &good_layout, 7);
	bb = xf_region_buf(back->base, &good_layout, 7);
	memcpy(fb, "hello", 6);
	assert_string_equal((char *)bb, "hello");

	/* doorbells in both directions, per queue */
	for (q = 0; q < good_layout.nr_queues; q++) {
		uint64_t v;

		assert_int_equal(xf_conn_notify(a.conn, q), 0);
		assert_int_equal(read(xf_conn_event_fd(back, q), &v,
				      sizeof(v)), sizeof(v));
		assert_int_equal(xf_conn_notify(back, q), 0);
		assert_int_equal(xf_conn_event_ack(a.conn, q), 0);
		/* nothing pending: ack is still fine */
		assert_int_equal(xf_conn_event_ack(a.conn, q), 0);
	}
	assert_int_equal(xf_conn_notify(a.conn, 5), -EINVAL);

	assert_int_equal(xf_conn_peer_check(back), 0);
	assert_int_equal(xf_conn_peer_check(a.conn), 0);
	assert_int_equal(xf_conn_peer_fd(back), s);
	xf_conn_destroy(a.conn);
	assert_int_equal(xf_conn_peer_check(back), -ENOTCONN);
	xf_conn_destroy(back);		/* closes s */
	unlisten_tmp(ls, a.path);
	assert_int_equal(count_fds(), before);
}

static void test_refused(void **state)
{
	struct front_args a;
	struct xenfs_local_hello hello;
	struct xf_conn *back = NULL;
	char err[256];
	pthread_t t;
	int ls, s, before;

	(void)state;
	before = count_fds();
	memset(&a, 0, sizeof(a));
	ls = listen_tmp(a.path, sizeof(a.path));
	assert_int_equal(pthread_create(&t, NULL, front_thread, &a), 0);
	s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	assert_int_equal(xf_local_accept(s, 0, &hello, &back, err,
					 sizeof(err)), 0);
	assert_int_equal(xf_local_welcome(s, EACCES, 0,
		"domain vm2 has no access to export shared\n"), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(a.rc, -EACCES);
	assert_null(a.conn);
	/* the newline was made printable, the text kept */
	assert_non_null(strstr(a.err, "no access to export shared"));
	xf_conn_destroy(back);
	unlisten_tmp(ls, a.path);
	assert_int_equal(count_fds(), before);
}

static void test_connect_errors(void **state)
{
	struct xenfs_layout l = good_layout;
	struct xf_conn *c = NULL;
	char err[256];
	int before = count_fds();

	(void)state;
	assert_int_equal(xf_local_connect("/nonexistent/sock", "x", 0, &l,
					  &c, NULL, err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "cannot connect"));
	l.nr_queues = 0;
	assert_int_equal(xf_local_connect("/nonexistent/sock", "x", 0, &l,
					  &c, NULL, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(xf_local_connect("/nonexistent/sock", "", 0,
					  &good_layout, &c, NULL, err,
					  sizeof(err)), -EINVAL);
	assert_null(c);
	assert_int_equal(count_fds(), before);
}

/* ---- hostile hellos ---- */

struct bad_case {
	const char *name;
	size_t len;		/* bytes of hello sent */
	uint32_t magic;
	struct xenfs_layout layout;
	int nfds;		/* -1: the right number */
	int memfd_pages_delta;	/* memfd size off by this many pages */
	int unsealed;
	int pipe_not_eventfd;
	uint16_t vmin, vmax;
	int no_nul_tag;
	int expect;
};

static void send_hello(int s, const struct bad_case *bc, int *sent_fds,
		       int *nsent)
{
	struct xenfs_local_hello h;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 40)];
	} cbuf;
	struct iovec iov;
	struct msghdr mh;
	struct cmsghdr *cm;
	struct xenfs_layout l = bc->layout;
	int fds[40], n, i, pfd[2];
	uint64_t size;

	memset(&h, 0, sizeof(h));
	h.magic = bc->magic;
	h.version_min = bc->vmin;
	h.version_max = bc->vmax;
	h.layout = l;
	if (bc->no_nul_tag)
		memset(h.tag, 'a', sizeof(h.tag));
	else
		strcpy(h.tag, "shared");

	/* build plausible descriptors for the (possibly bogus) layout */
	n = bc->nfds >= 0 ? bc->nfds :
	    1 + 2 * (int)(l.nr_queues > 16 ? 16 : l.nr_queues);
	assert_true(n <= 40);
	for (i = 0; i < n; i++) {
		if (i == 0) {
			fds[0] = memfd_create("t", MFD_CLOEXEC |
					      MFD_ALLOW_SEALING);
			assert_true(fds[0] >= 0);
			size = l.nr_queues <= 16 ? xenfs_region_size(&l) :
			       XENFS_PAGE_SIZE * 4;
			size += (int64_t)bc->memfd_pages_delta *
				XENFS_PAGE_SIZE;
			assert_int_equal(ftruncate(fds[0], (off_t)size), 0);
			if (!bc->unsealed)
				assert_int_equal(fcntl(fds[0], F_ADD_SEALS,
					F_SEAL_SHRINK | F_SEAL_GROW), 0);
		} else if (i == 1 && bc->pipe_not_eventfd) {
			assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
			close(pfd[0]);
			fds[i] = pfd[1];
		} else {
			fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			assert_true(fds[i] >= 0);
		}
	}
	iov.iov_base = &h;
	iov.iov_len = bc->len;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (n) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	}
	assert_int_equal(sendmsg(s, &mh, 0), (ssize_t)bc->len);
	memcpy(sent_fds, fds, sizeof(int) * n);
	*nsent = n;
}

#define GOOD_L { 2, 2, 3 * XENFS_PAGE_SIZE, 0 }
#define V1 XENFS_PROTO_VERSION, XENFS_PROTO_VERSION
#define HS sizeof(struct xenfs_local_hello)
#define MAGIC XENFS_LOCAL_HELLO_MAGIC

static const struct bad_case bad_cases[] = {
	{ "control: good", HS, MAGIC, GOOD_L, -1, 0, 0, 0, V1, 0, 0 },
	{ "wrong magic", HS, 0xdeadbeef, GOOD_L, -1, 0, 0, 0, V1, 0, -EPROTO },
	{ "short message", 50, MAGIC, GOOD_L, -1, 0, 0, 0, V1, 0, -EBADMSG },
	{ "missing fds", HS, MAGIC, GOOD_L, 0, 0, 0, 0, V1, 0, -EPROTO },
	{ "one fd short", HS, MAGIC, GOOD_L, 4, 0, 0, 0, V1, 0, -EPROTO },
	{ "one fd extra", HS, MAGIC, GOOD_L, 6, 0, 0, 0, V1, 0, -EPROTO },
	{ "too many fds", HS, MAGIC, GOOD_L, 38, 0, 0, 0, V1, 0, -EBADMSG },
	{ "memfd too small", HS, MAGIC, GOOD_L, -1, -1, 0, 0, V1, 0, -EPROTO },
	{ "memfd too large", HS, MAGIC, GOOD_L, -1, 1, 0, 0, V1, 0, -EPROTO },
	{ "memfd unsealed", HS, MAGIC, GOOD_L, -1, 0, 1, 0, V1, 0, -EPROTO },
	{ "pipe as doorbell", HS, MAGIC, GOOD_L, -1, 0, 0, 1, V1, 0, -EPROTO },
	{ "zero queues", HS, MAGIC, { 0, 2, 3 * XENFS_PAGE_SIZE, 0 }, 1, 0, 0,
	  0, V1, 0, -EINVAL },
	{ "17 queues", HS, MAGIC, { 17, 2, 3 * XENFS_PAGE_SIZE, 0 }, -1, 0, 0,
	  0, V1, 0, -EINVAL },
	{ "ring order 8", HS, MAGIC, { 1, 8, 3 * XENFS_PAGE_SIZE, 0 }, -1, 0,
	  0, 0, V1, 0, -EINVAL },
	{ "buf not aligned", HS, MAGIC, { 1, 2, 3 * XENFS_PAGE_SIZE + 1, 0 },
	  -1, 0, 0, 0, V1, 0, -EINVAL },
	{ "buf too big", HS, MAGIC, { 1, 2, 2u << 20, 0 }, -1, 0, 0, 0, V1, 0,
	  -EINVAL },
	{ "layout pad", HS, MAGIC, { 1, 2, 3 * XENFS_PAGE_SIZE, 1 }, -1, 0, 0,
	  0, V1, 0, -EINVAL },
	{ "region over max", HS, MAGIC, { 16, 7, XENFS_MAX_BUF_SIZE, 0 }, -1,
	  0, 0, 0, V1, 0, -EINVAL },
	{ "future version", HS, MAGIC, GOOD_L, -1, 0, 0, 0, 2, 3, 0,
	  -EPROTONOSUPPORT },
	{ "tag not terminated", HS, MAGIC, GOOD_L, -1, 0, 0, 0, V1, 1,
	  -EPROTO },
};

static void test_bad_hellos(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *bc = &bad_cases[i];
		struct xenfs_local_hello h;
		struct xf_conn *c = NULL;
		char err[256] = "";
		int sv[2], sent[40], nsent, before, rc, k;

		before = count_fds();
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM |
					    SOCK_CLOEXEC, 0, sv), 0);
		send_hello(sv[1], bc, sent, &nsent);
		for (k = 0; k < nsent; k++)
			close(sent[k]);
		rc = xf_local_accept(sv[0], 64u << 20, &h, &c, err,
				     sizeof(err));
		if (rc != bc->expect)
			fail_msg("case '%s': got %d (%s), expected %d",
				 bc->name, rc, err, bc->expect);
		if (rc == 0) {
			xf_conn_destroy(c);	/* closes sv[0] */
		} else {
			assert_null(c);
			assert_true(err[0] != '\0');
			close(sv[0]);
		}
		close(sv[1]);
		if (count_fds() != before)
			fail_msg("case '%s' leaked descriptors", bc->name);
	}
}

/* A welcome that is not one: the frontend must refuse it. */
static void *bad_backend(void *arg)
{
	int ls = *(int *)arg, s;
	char buf[512];
	uint32_t junk[62];

	s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (s < 0)
		return NULL;
	if (read(s, buf, sizeof(buf)) > 0) {
		memset(junk, 0x41, sizeof(junk));
		if (write(s, junk, sizeof(junk)) < 0)
			perror("bad_backend: write");
	}
	close(s);
	return NULL;
}

static void test_bad_welcome(void **state)
{
	struct xf_conn *c = NULL;
	char path[108], err[256];
	pthread_t t;
	int ls, before, rc;

	(void)state;
	before = count_fds();
	ls = listen_tmp(path, sizeof(path));
	assert_int_equal(pthread_create(&t, NULL, bad_backend, &ls), 0);
	rc = xf_local_connect(path, "shared", 0, &good_layout, &c, NULL,
			      err, sizeof(err));
	assert_int_equal(rc, -EPROTO);
	assert_null(c);
	assert_int_equal(pthread_join(t, NULL), 0);
	unlisten_tmp(ls, path);
	assert_int_equal(count_fds(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_connect_errors),
		cmocka_unit_test(test_bad_hellos),
		cmocka_unit_test(test_bad_welcome),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
