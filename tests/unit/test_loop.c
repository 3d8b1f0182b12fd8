/*
 * Unit tests of xenfsd's event loop (backend/loop.c): the re-entrancy
 * rules its callers rely on (a callback deletes its own or another
 * descriptor of the same batch; a descriptor number reused within a batch
 * does not inherit stale events) and deferrals from other threads.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../backend/bk.h"

static int efd[2];
static int calls[2];
static int reused_calls;

static void kick(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

static void stop_soon(void *arg)
{
	bk_loop_stop();
}

static void reused_cb(int fd, uint32_t ev, void *arg)
{
	reused_calls++;
}

/* Whichever runs first deletes both and closes the other; the other's
 * pending event of this batch must be dropped. */
static void del_both_cb(int fd, uint32_t ev, void *arg)
{
	int me = (int)(intptr_t)arg, other = !me;

	calls[me]++;
	bk_loop_del(efd[0]);
	bk_loop_del(efd[1]);
	close(efd[other]);
	/* reuse the other's number at once: it must not see the old event */
	efd[other] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(efd[other] >= 0);
	assert_int_equal(bk_loop_add(efd[other], EPOLLIN, reused_cb, NULL), 0);
	(void)bk_loop_defer(stop_soon, NULL);
}

static void test_del_in_batch(void **state)
{
	int i;

	assert_int_equal(bk_loop_init(), 0);
	for (i = 0; i < 2; i++) {
		efd[i] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		assert_true(efd[i] >= 0);
		assert_int_equal(bk_loop_add(efd[i], EPOLLIN, del_both_cb,
					     (void *)(intptr_t)i), 0);
		kick(efd[i]);
	}
	assert_int_equal(bk_loop_add(efd[0], EPOLLIN, del_both_cb, NULL),
			 -EEXIST);
	assert_int_equal(bk_loop_run(), 0);
	assert_int_equal(calls[0] + calls[1], 1);
	assert_int_equal(reused_calls, 0);
	for (i = 0; i < 2; i++) {
		bk_loop_del(efd[i]);
		close(efd[i]);
	}
	bk_loop_free();
}

static int deferred_count;

static void count_cb(void *arg)
{
	if (++deferred_count == 1000)
		bk_loop_stop();
}

static void *deferrer(void *arg)
{
	struct bk_defer *nodes = arg;
	int i;

	for (i = 0; i < 500; i++)
		assert_int_equal(bk_loop_defer(count_cb, NULL), 0);
	/* a caller-owned node queued twice runs once */
	assert_int_equal(bk_loop_defer_node(&nodes[0]), 0);
	assert_int_equal(bk_loop_defer_node(&nodes[0]), 0);
	return NULL;
}

static void test_defer_threads(void **state)
{
	struct bk_defer nodes[2] = {
		{ .fn = count_cb }, { .fn = count_cb },
	};
	struct bk_defer cancelled = { .fn = count_cb };
	pthread_t t[2];

	assert_int_equal(bk_loop_init(), 0);
	/* queued then cancelled: never runs */
	assert_int_equal(bk_loop_defer_node(&cancelled), 0);
	bk_loop_defer_cancel(&cancelled);
	assert_int_equal(pthread_create(&t[0], NULL, deferrer, &nodes[0]), 0);
	assert_int_equal(pthread_create(&t[1], NULL, deferrer, &nodes[1]), 0);
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	/* 1000 allocated + 2 nodes; stop fires at 1000 */
	assert_int_equal(bk_loop_run(), 0);
	assert_true(deferred_count >= 1000);
	bk_loop_free();
	assert_true(deferred_count <= 1002);
}

static int pending_ran;

static void pending_cb(void *arg)
{
	(void)arg;
	pending_ran++;
}

/* After the loop stopped, bk_loop_run_pending runs every deferral queued
 * (xenfsd's workers' last notices at shutdown), not just one. */
static void test_run_pending_after_stop(void **state)
{
	int i;

	(void)state;
	assert_int_equal(bk_loop_init(), 0);
	assert_int_equal(bk_loop_defer(stop_soon, NULL), 0);
	assert_int_equal(bk_loop_run(), 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(bk_loop_defer(pending_cb, NULL), 0);
	bk_loop_run_pending();
	assert_int_equal(pending_ran, 5);
	bk_loop_run_pending();		/* nothing left: a no-op */
	assert_int_equal(pending_ran, 5);
	bk_loop_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_del_in_batch),
		cmocka_unit_test(test_defer_threads),
		cmocka_unit_test(test_run_pending_after_stop),
	};

	return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
