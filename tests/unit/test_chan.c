/*
 * Unit tests of the parent/worker channels (backend/chan.c): framing of
 * one message per datagram with at most one descriptor, the checks on
 * what arrives (truncated datagrams, lengths that disagree with the
 * header, extra descriptors closed), and request/reply matching: a reply
 * that comes after its call timed out is not taken for the next call's.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../backend/chan.h"

static int sp[2];

static int setup(void **state)
{
	(void)state;
	return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp);
}

static int teardown(void **state)
{
	(void)state;
	close(sp[0]);
	close(sp[1]);
	return 0;
}

static int fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void test_send_recv_fd(void **state)
{
	struct bk_msg_hdr h;
	char buf[64];
	struct stat a, b;
	int fd = -1;
	ssize_t n;

	(void)state;
	assert_int_equal(bk_chan_send(sp[0], BK_M_INFO, 7, -2, "hello", 5,
				      0), 0);
	n = bk_chan_recv(sp[1], &h, buf, sizeof(buf), &fd);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(h.type, BK_M_INFO);
	assert_int_equal(h.id, 7);
	assert_int_equal(h.status, -2);
	assert_true(fd >= 0);
	/* the same file as our stdin */
	assert_int_equal(fstat(0, &a), 0);
	assert_int_equal(fstat(fd, &b), 0);
	assert_int_equal(a.st_ino, b.st_ino);
	close(fd);

	/* a descriptor nobody asked for is closed, not leaked */
	assert_int_equal(bk_chan_send(sp[0], BK_M_INFO, 8, 0, NULL, 0, 0), 0);
	n = bk_chan_recv(sp[1], &h, buf, sizeof(buf), NULL);
	assert_int_equal(n, 0);
}

static void test_truncated_and_bad_length(void **state)
{
	struct bk_msg_hdr h;
	char big[512], buf[16];
	ssize_t n;
	int fd;

	(void)state;
	memset(big, 'x', sizeof(big));
	assert_int_equal(bk_chan_send(sp[0], BK_M_EVENT, 1, 0, big,
				      sizeof(big), 0), 0);
	n = bk_chan_recv(sp[1], &h, buf, sizeof(buf), &fd);
	assert_int_equal(n, -EMSGSIZE);
	assert_int_equal(fd, -1);	/* closed along with the message */

	/* a header whose len disagrees with the datagram */
	memset(&h, 0, sizeof(h));
	h.type = BK_M_EVENT;
	h.len = 100;
	assert_int_equal(send(sp[0], &h, sizeof(h), 0), (ssize_t)sizeof(h));
	n = bk_chan_recv(sp[1], &h, buf, sizeof(buf), NULL);
	assert_int_equal(n, -EPROTO);

	/* shorter than a header */
	assert_int_equal(send(sp[0], "ab", 2, 0), 2);
	n = bk_chan_recv(sp[1], &h, buf, sizeof(buf), NULL);
	assert_int_equal(n, -EPROTO);

	/* too big to send at all */
	assert_int_equal(bk_chan_send(sp[0], BK_M_EVENT, 1, 0, big,
				      BK_MSG_MAX + 1, -1), -EMSGSIZE);
}

static void test_eof(void **state)
{
	struct bk_msg_hdr h;
	char buf[8];

	(void)state;
	close(sp[0]);
	assert_int_equal(bk_chan_recv(sp[1], &h, buf, sizeof(buf), NULL),
			 -ECONNRESET);
	sp[0] = open("/dev/null", O_RDONLY);	/* for teardown */
}

/* A server that answers each request with status = -id and payload
 * "r<id>", after delay_ms for the first one. */
static int delay_first_ms;

static void *server(void *arg)
{
	struct bk_msg_hdr h;
	char buf[64], out[32];
	int first = 1;

	(void)arg;
	while (bk_chan_recv(sp[1], &h, buf, sizeof(buf), NULL) >= 0) {
		if (first && delay_first_ms)
			usleep(delay_first_ms * 1000);
		first = 0;
		snprintf(out, sizeof(out), "r%llu", (unsigned long long)h.id);
		if (bk_chan_send(sp[1], BK_M_REPLY, h.id, -(int32_t)h.id, out,
				 strlen(out), -1) < 0)
			break;
	}
	return NULL;
}

static void test_call_matches_reply(void **state)
{
	struct bk_chan ch;
	pthread_t t;
	char r[32];
	size_t rl;
	int st;

	(void)state;
	delay_first_ms = 300;
	bk_chan_init(&ch, sp[0]);
	assert_int_equal(pthread_create(&t, NULL, server, NULL), 0);
	/* the first call times out ... */
	st = bk_chan_call(&ch, BK_M_INFO, "a", 1, -1, r, sizeof(r), &rl, 50);
	assert_int_equal(st, -ETIMEDOUT);
	/* ... and its late reply (id 1) is skipped: this one gets id 2's */
	st = bk_chan_call(&ch, BK_M_INFO, "b", 1, -1, r, sizeof(r) - 1, &rl,
			  2000);
	assert_int_equal(st, -2);
	r[rl] = '\0';
	assert_string_equal(r, "r2");
	shutdown(sp[0], SHUT_WR);
	pthread_join(t, NULL);
	assert_true(fd_open(sp[0]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_send_recv_fd, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_truncated_and_bad_length,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_call_matches_reply, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
