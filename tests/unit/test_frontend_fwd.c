/*
 * Unit tests for mount.xenfs's forwarding workers (frontend/fwd.c) against
 * a scripted backend in the same process: a real FUSE mount (root and
 * /dev/fuse needed, skipped otherwise) over the local transport, with the
 * test answering the rings itself.  Checks that the frontend clamps the
 * INIT reply to its buffers (large writes work with small buffers), turns
 * malformed replies into EIO for the caller instead of hanging it, runs a
 * SYNCFS from the control channel, and ends with FWD_BACKEND_BROKEN when
 * a response cannot belong to any request.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include <xenfs/local.h>

#include "front_i.h"
#include "ring.h"
#include "transport.h"

#define BUF_SIZE	(3 * XENFS_PAGE_SIZE)

static const struct xenfs_layout layout = {
	.nr_queues = 2, .ring_order = 1, .buf_size = BUF_SIZE,
};

struct env {
	char dir[64], mnt[96], sock[96];
	struct xf_conn *front, *back;
	int fuse_fd;
	struct fwd f;
	pthread_t bk;
	int bk_stop;			/* eventfd */
	uint64_t written;		/* bytes the backend got in WRITEs */
	uint32_t sync_acked;		/* seq acknowledged, 0 none */
};

/* ---- the scripted backend ---- */

static uint32_t reply(uint8_t *buf, uint64_t unique, int err, const void *p,
		      uint32_t len)
{
	struct fuse_out_header oh = { sizeof(oh) + len, -err, unique };

	memcpy(buf, &oh, sizeof(oh));
	if (len)
		memcpy(buf + sizeof(oh), p, len);
	return oh.len;
}

static void attr(struct fuse_attr *a, uint64_t ino)
{
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->mode = ino == 1 ? 040755 : 0100644;
	a->nlink = 1;
	a->blksize = 4096;
}

/* Answer one request in place; returns the reply length and may tamper
 * with the response (*rsp) to exercise the frontend's checks. */
static uint32_t serve(struct env *e, uint8_t *buf, struct xenfs_ring_rsp *rsp)
{
	struct fuse_in_header ih;
	const uint8_t *arg = buf + sizeof(ih);

	memcpy(&ih, buf, sizeof(ih));
	switch (ih.opcode) {
	case FUSE_INIT: {
		struct fuse_init_out o = { .major = 7, .minor = 31 };

		o.max_write = 1u << 24;		/* must be clamped */
		o.max_readahead = 1u << 20;
		o.max_background = 8;
		return reply(buf, ih.unique, 0, &o, sizeof(o));
	}
	case FUSE_GETATTR: {
		struct fuse_attr_out o = { 0 };

		attr(&o.attr, ih.nodeid);
		return reply(buf, ih.unique, 0, &o, sizeof(o));
	}
	case FUSE_LOOKUP: {
		const char *name = (const char *)arg;
		struct fuse_entry_out o = { 0 };

		if (!strcmp(name, "badunique"))
			return reply(buf, ih.unique + 1, ENOENT, NULL, 0);
		if (!strcmp(name, "toolong")) {
			reply(buf, ih.unique, ENOENT, NULL, 0);
			return BUF_SIZE + 1;
		}
		if (!strcmp(name, "lenmismatch")) {
			reply(buf, ih.unique, ENOENT, NULL, 0);
			return 24;
		}
		if (!strcmp(name, "empty"))
			return 0;
		if (!strcmp(name, "poserror"))
			return reply(buf, ih.unique, -5, NULL, 0);
		if (!strcmp(name, "badid")) {
			rsp->id ^= 0x5a5a;
			return reply(buf, ih.unique, ENOENT, NULL, 0);
		}
		if (strcmp(name, "file"))
			return reply(buf, ih.unique, ENOENT, NULL, 0);
		o.nodeid = 2;
		attr(&o.attr, 2);
		return reply(buf, ih.unique, 0, &o, sizeof(o));
	}
	case FUSE_OPEN: {
		struct fuse_open_out o = { 0 };

		return reply(buf, ih.unique, 0, &o, sizeof(o));
	}
	case FUSE_WRITE: {
		struct fuse_write_in in;
		struct fuse_write_out o = { 0 };

		memcpy(&in, arg, sizeof(in));
		o.size = in.size;
		__atomic_add_fetch(&e->written, in.size, __ATOMIC_SEQ_CST);
		return reply(buf, ih.unique, 0, &o, sizeof(o));
	}
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
		return 0;
	case FUSE_FLUSH:
	case FUSE_RELEASE:
	case FUSE_FSYNC:
	case FUSE_SETATTR:
	default:
		if (ih.opcode == FUSE_SETATTR) {
			struct fuse_attr_out o = { 0 };

			attr(&o.attr, ih.nodeid);
			return reply(buf, ih.unique, 0, &o, sizeof(o));
		}
		return reply(buf, ih.unique, ih.opcode == FUSE_FLUSH ||
			     ih.opcode == FUSE_RELEASE ||
			     ih.opcode == FUSE_FSYNC ? 0 : ENOSYS, NULL, 0);
	}
}

static void *backend(void *arg)
{
	struct env *e = arg;
	struct xf_bring br[2];
	struct xf_ctrl_back cb = { xf_region_ctrl(e->back->base), 0 };
	struct pollfd pfd[3];
	uint32_t q, seq, st;
	int r;

	for (q = 0; q < 2; q++)
		xf_bring_init(&br[q], xf_region_sring(e->back->base, q), 2);
	for (;;) {
		for (q = 0; q < 2; q++) {
			struct xenfs_ring_req rq;

			do {
				while ((r = xf_bring_get(&br[q], &rq)) == 1) {
					struct xenfs_ring_rsp rs = {
						rq.id, rq.buf, 0 };
					uint8_t *b = xf_region_buf(
						e->back->base, &layout,
						rq.buf);

					rs.len = serve(e, b, &rs);
					xf_bring_put(&br[q], &rs);
				}
				if (r < 0)
					return NULL;
				if (xf_bring_push(&br[q]))
					(void)xf_conn_notify(e->back, q);
			} while (xf_bring_final_check(&br[q]));
		}
		xf_ctrl_read_ack(&cb, &seq, &st);
		if (seq && st == 0)
			__atomic_store_n(&e->sync_acked, seq, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&e->sync_acked, __ATOMIC_SEQ_CST) == 0 &&
		    __atomic_load_n(&e->written, __ATOMIC_SEQ_CST) > 0 &&
		    cb.msg_prod_pvt == 0) {
			(void)xf_ctrl_post(&cb, XENFS_CTRL_SYNCFS, 42, NULL, 0);
			(void)xf_conn_notify(e->back, 0);
		}
		for (q = 0; q < 2; q++) {
			pfd[q].fd = xf_conn_event_fd(e->back, q);
			pfd[q].events = POLLIN;
		}
		pfd[2].fd = e->bk_stop;
		pfd[2].events = POLLIN;
		if (poll(pfd, 3, 100) < 0 && errno != EINTR)
			return NULL;
		if (pfd[2].revents)
			return NULL;
		for (q = 0; q < 2; q++)
			if (pfd[q].revents)
				(void)xf_conn_event_ack(e->back, q);
	}
}

/* ---- setup ---- */

struct conn_args {
	struct env *e;
	int rc;
	char err[256];
};

static void *connect_thread(void *arg)
{
	struct conn_args *a = arg;

	a->rc = xf_local_connect(a->e->sock, "t", 0, &layout, &a->e->front,
				 NULL, a->err, sizeof(a->err));
	return NULL;
}

static dev_t mount_dev(const char *mnt)
{
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	char line[4096], mp[4096];
	unsigned maj, min;
	dev_t dev = 0;

	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min,
			   mp) == 3 && !strcmp(mp, mnt))
			dev = makedev(maj, min);
	fclose(fp);
	return dev;
}

static int setup(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct xenfs_local_hello h;
	struct conn_args a;
	struct env *e;
	pthread_t t;
	char err[256], data[256];
	int ls, s;

	if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK) != 0)
		return 0;	/* each test skips */
	e = calloc(1, sizeof(*e));
	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/xf-fwd-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->mnt, sizeof(e->mnt), "%s/mnt", e->dir);
	snprintf(e->sock, sizeof(e->sock), "%s/sock", e->dir);
	assert_int_equal(mkdir(e->mnt, 0755), 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", e->sock);
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(ls >= 0);
	assert_int_equal(bind(ls, (struct sockaddr *)&sun, sizeof(sun)), 0);
	assert_int_equal(listen(ls, 1), 0);

	memset(&a, 0, sizeof(a));
	a.e = e;
	assert_int_equal(pthread_create(&t, NULL, connect_thread, &a), 0);
	s = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	assert_int_equal(xf_local_accept(s, 0, &h, &e->back, err,
					 sizeof(err)), 0);
	assert_int_equal(xf_local_welcome(s, 0, 0, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(a.rc, 0);
	close(ls);

	e->bk_stop = eventfd(0, EFD_CLOEXEC);
	assert_true(e->bk_stop >= 0);
	assert_int_equal(pthread_create(&e->bk, NULL, backend, e), 0);

	e->fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	assert_true(e->fuse_fd >= 0);
	snprintf(data, sizeof(data), "fd=%d,rootmode=40000,user_id=0,"
		 "group_id=0,max_read=%u", e->fuse_fd,
		 BUF_SIZE - XENFS_BUF_HEADROOM);
	assert_int_equal(mount("t", e->mnt, "fuse.xenfs",
			       MS_NOSUID | MS_NODEV, data), 0);
	e->f.conn = e->front;
	e->f.fuse_fd = e->fuse_fd;
	e->f.mountpoint = e->mnt;
	e->f.mnt_dev = mount_dev(e->mnt);
	e->f.max_write = BUF_SIZE - XENFS_BUF_HEADROOM;
	e->f.stop_fd = e->f.done_fd = -1;
	assert_int_equal(fwd_start(&e->f), 0);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	uint64_t one = 1;

	if (!e)
		return 0;
	(void)umount2(e->mnt, MNT_DETACH);
	if (e->fuse_fd >= 0)
		close(e->fuse_fd);
	fwd_join(&e->f);
	assert_int_equal(write(e->bk_stop, &one, sizeof(one)), sizeof(one));
	pthread_join(e->bk, NULL);
	close(e->bk_stop);
	xf_conn_destroy(e->front);
	xf_conn_destroy(e->back);
	rmdir(e->mnt);
	unlink(e->sock);
	rmdir(e->dir);
	free(e);
	*state = NULL;
	return 0;
}

#define NEED_ENV(e) do {						\
	if (!(e)) {							\
		skip();							\
		return;							\
	}								\
} while (0)

static int stat_errno(struct env *e, const char *name)
{
	char p[160];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", e->mnt, name);
	return stat(p, &st) == 0 ? 0 : errno;
}

/* ---- tests ---- */

static void test_bad_replies_give_eio(void **state)
{
	struct env *e = *state;

	NEED_ENV(e);
	assert_int_equal(stat_errno(e, "nothing"), ENOENT);
	assert_int_equal(stat_errno(e, "badunique"), EIO);
	assert_int_equal(stat_errno(e, "toolong"), EIO);
	assert_int_equal(stat_errno(e, "lenmismatch"), EIO);
	assert_int_equal(stat_errno(e, "empty"), EIO);
	assert_int_equal(stat_errno(e, "poserror"), EIO);
	/* still serving afterwards */
	assert_int_equal(stat_errno(e, "file"), 0);
	assert_int_equal(__atomic_load_n(&e->f.end_reason, __ATOMIC_SEQ_CST),
			 FWD_RUNNING);
}

static void test_big_write_and_syncfs(void **state)
{
	struct env *e = *state;
	static char data[256 << 10];
	char p[160];
	int fd, i;

	NEED_ENV(e);
	snprintf(p, sizeof(p), "%s/file", e->mnt);
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	memset(data, 'x', sizeof(data));
	/* 256 KiB in one call: only works if max_write was clamped to
	 * what one 12 KiB buffer holds */
	assert_int_equal(write(fd, data, sizeof(data)), sizeof(data));
	close(fd);
	assert_true(__atomic_load_n(&e->written, __ATOMIC_SEQ_CST) >=
		    sizeof(data));
	/* the backend asks for a syncfs once it saw data */
	for (i = 0; i < 100 && !__atomic_load_n(&e->sync_acked,
						 __ATOMIC_SEQ_CST); i++)
		usleep(20000);
	assert_int_equal(__atomic_load_n(&e->sync_acked, __ATOMIC_SEQ_CST),
			 42);
}

static void *stat_thread(void *arg)
{
	struct env *e = arg;

	return (void *)(intptr_t)stat_errno(e, "badid");
}

static void test_unknown_id_breaks(void **state)
{
	struct env *e = *state;
	struct pollfd pfd;
	pthread_t t;
	void *ret;

	NEED_ENV(e);
	assert_int_equal(pthread_create(&t, NULL, stat_thread, e), 0);
	pfd.fd = e->f.done_fd;
	pfd.events = POLLIN;
	assert_int_equal(poll(&pfd, 1, 10000), 1);
	assert_int_equal(__atomic_load_n(&e->f.end_reason, __ATOMIC_SEQ_CST),
			 FWD_BACKEND_BROKEN);
	/* what main does: drop every fuse fd; the caller gets ENOTCONN */
	close(e->fuse_fd);
	e->fuse_fd = -1;
	fwd_join(&e->f);
	assert_int_equal(pthread_join(t, &ret), 0);
	/* the request in flight is aborted, later ones find no connection */
	assert_true((int)(intptr_t)ret == ECONNABORTED ||
		    (int)(intptr_t)ret == ENOTCONN);
	assert_int_equal(stat_errno(e, "file"), ENOTCONN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_replies_give_eio,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_big_write_and_syncfs,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_id_breaks,
						setup, teardown),
	};

	alarm(60);	/* a hang is a failure, not a stuck test run */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
