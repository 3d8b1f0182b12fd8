/*
 * Unit tests for lib/ring.c: both ends of a request ring and of the
 * control channel, driven against a fake shared page in ordinary memory.
 *
 * The "peer" is this test writing the shared fields directly, which is how
 * the hostile-index cases are built: a backend must return -EPROTO (and
 * never read outside the ring) whatever the frontend wrote, and vice versa.
 * Index arithmetic is checked across the 2^32 wrap of the free-running
 * producer indices, and event suppression is checked to notify exactly
 * when the peer asked to be woken.
 *
 * Single-threaded; no shared state between tests (each setup allocates).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ring.h"

struct fixture {
	struct xenfs_sring *s;
	struct xenfs_ctrl *c;
	struct xf_fring f;
	struct xf_bring b;
	uint32_t size;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	if (fx == NULL)
		return -1;
	fx->s = aligned_alloc(XENFS_PAGE_SIZE, XENFS_PAGE_SIZE);
	fx->c = aligned_alloc(XENFS_PAGE_SIZE, XENFS_PAGE_SIZE);
	if (fx->s == NULL || fx->c == NULL)
		return -1;
	memset(fx->s, 0xa5, XENFS_PAGE_SIZE);	/* garbage until init */
	memset(fx->c, 0, XENFS_PAGE_SIZE);
	fx->size = 8;
	xf_fring_init(&fx->f, fx->s, fx->size);
	xf_bring_init(&fx->b, fx->s, fx->size);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	free(fx->s);
	free(fx->c);
	free(fx);
	return 0;
}

/* Move both ends (and the shared page) to index `at`, as if `at`
 * requests had already gone through and been answered. */
static void move_indices(struct fixture *fx, uint32_t at)
{
	fx->f.req_prod_pvt = fx->f.req_pushed = fx->f.rsp_cons = at;
	fx->b.req_cons = fx->b.rsp_prod_pvt = fx->b.rsp_pushed = at;
	fx->s->req_prod = fx->s->rsp_prod = at;
	fx->s->req_event = fx->s->rsp_event = at + 1;
}

static struct xenfs_ring_req mkreq(uint64_t id)
{
	struct xenfs_ring_req r = { .id = id, .buf = (uint32_t)(id % 8),
				    .len = (uint32_t)(40 + id % 100) };
	return r;
}

/* One full round trip of n requests; checks ids/bufs/lens echo back. */
static void round_trip(struct fixture *fx, uint64_t first_id, uint32_t n)
{
	struct xenfs_ring_req req;
	struct xenfs_ring_rsp rsp;
	uint32_t i;

	assert_true(xf_fring_free(&fx->f) >= n);
	for (i = 0; i < n; i++) {
		req = mkreq(first_id + i);
		xf_fring_put(&fx->f, &req);
	}
	(void)xf_fring_push(&fx->f);
	for (i = 0; i < n; i++) {
		assert_int_equal(xf_bring_get(&fx->b, &req), 1);
		assert_int_equal(req.id, first_id + i);
		assert_int_equal(req.buf, (first_id + i) % 8);
		rsp.id = req.id;
		rsp.buf = req.buf;
		rsp.len = req.len + 1;
		xf_bring_put(&fx->b, &rsp);
	}
	assert_int_equal(xf_bring_get(&fx->b, &req), 0);
	(void)xf_bring_push(&fx->b);
	for (i = 0; i < n; i++) {
		assert_int_equal(xf_fring_get(&fx->f, &rsp), 1);
		assert_int_equal(rsp.id, first_id + i);
		assert_int_equal(rsp.len, 40 + (first_id + i) % 100 + 1);
	}
	assert_int_equal(xf_fring_get(&fx->f, &rsp), 0);
	assert_int_equal(xf_fring_free(&fx->f), fx->size);
}

/* ---- layout ---- */

static void test_layout_check(void **state)
{
	static const struct {
		uint32_t q, order, buf, pad;
		uint64_t max;
		int ok;
	} cases[] = {
		{ 1, 1, XENFS_MIN_BUF_SIZE, 0, 0, 1 },
		{ XENFS_MAX_QUEUES, XENFS_MAX_RING_ORDER, XENFS_MAX_BUF_SIZE,
		  0, 0, 1 },
		{ 4, 5, 64 * 1024, 0, 64u << 20, 1 },
		{ 0, 5, 64 * 1024, 0, 0, 0 },			/* no queue */
		{ XENFS_MAX_QUEUES + 1, 5, 64 * 1024, 0, 0, 0 },
		{ UINT32_MAX, 5, 64 * 1024, 0, 0, 0 },
		{ 1, 0, 64 * 1024, 0, 0, 0 },			/* order */
		{ 1, XENFS_MAX_RING_ORDER + 1, 64 * 1024, 0, 0, 0 },
		{ 1, 31, 64 * 1024, 0, 0, 0 },
		{ 1, 32, 64 * 1024, 0, 0, 0 },
		{ 1, 1, XENFS_MIN_BUF_SIZE - XENFS_PAGE_SIZE, 0, 0, 0 },
		{ 1, 1, XENFS_MAX_BUF_SIZE + XENFS_PAGE_SIZE, 0, 0, 0 },
		{ 1, 1, XENFS_MIN_BUF_SIZE + 1, 0, 0, 0 },	/* unaligned */
		{ 1, 1, 0, 0, 0, 0 },
		{ 1, 1, UINT32_MAX, 0, 0, 0 },
		{ 1, 1, XENFS_MIN_BUF_SIZE, 1, 0, 0 },		/* padding */
		/* region bigger than the backend allows */
		{ 16, 7, XENFS_MAX_BUF_SIZE, 0, 64u << 20, 0 },
		/* exactly the limit is fine, one byte less is not */
		{ 1, 1, XENFS_MIN_BUF_SIZE, 0,
		  2 * XENFS_PAGE_SIZE + 2 * XENFS_MIN_BUF_SIZE, 1 },
		{ 1, 1, XENFS_MIN_BUF_SIZE, 0,
		  2 * XENFS_PAGE_SIZE + 2 * XENFS_MIN_BUF_SIZE - 1, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct xenfs_layout l = {
			.nr_queues = cases[i].q, .ring_order = cases[i].order,
			.buf_size = cases[i].buf, .pad = cases[i].pad,
		};
		const char *why = NULL;
		int rc = xf_layout_check(&l, cases[i].max, &why);

		if (cases[i].ok) {
			assert_int_equal(rc, 0);
			assert_null(why);
		} else {
			assert_int_equal(rc, -EINVAL);
			assert_non_null(why);
			assert_true(strlen(why) > 0);
		}
		/* why may be NULL */
		assert_int_equal(xf_layout_check(&l, cases[i].max, NULL), rc);
	}
}

static void test_layout_math(void **state)
{
	struct xenfs_layout l = { .nr_queues = 2, .ring_order = 3,
				  .buf_size = 3 * XENFS_PAGE_SIZE };
	uint8_t *base = (uint8_t *)0x100000;

	(void)state;
	assert_int_equal(xenfs_ring_slots(&l), 8);
	assert_int_equal(xenfs_nr_bufs(&l), 16);
	assert_int_equal(xenfs_pool_offset(&l), 3 * XENFS_PAGE_SIZE);
	assert_int_equal(xenfs_region_size(&l),
			 3 * XENFS_PAGE_SIZE + 16 * 3 * XENFS_PAGE_SIZE);
	assert_int_equal(xenfs_region_pages(&l), 3 + 48);
	assert_ptr_equal(xf_region_ctrl(base), base);
	assert_ptr_equal(xf_region_sring(base, 0), base + XENFS_PAGE_SIZE);
	assert_ptr_equal(xf_region_sring(base, 1), base + 2 * XENFS_PAGE_SIZE);
	assert_ptr_equal(xf_region_buf(base, &l, 0), base + 3 * XENFS_PAGE_SIZE);
	assert_ptr_equal(xf_region_buf(base, &l, 15),
			 base + 3 * XENFS_PAGE_SIZE + 15 * 3 * XENFS_PAGE_SIZE);
}

/* ---- ring basics ---- */

static void test_init_state(void **state)
{
	struct fixture *fx = *state;

	/* the frontend owns the page and initialises it */
	assert_int_equal(fx->s->req_prod, 0);
	assert_int_equal(fx->s->rsp_prod, 0);
	assert_int_equal(fx->s->req_event, 1);
	assert_int_equal(fx->s->rsp_event, 1);
	assert_int_equal(xf_fring_free(&fx->f), fx->size);
}

static void test_round_trip(void **state)
{
	struct fixture *fx = *state;
	uint64_t id = 1;
	int i;

	for (i = 0; i < 20; i++) {
		round_trip(fx, id, 1 + i % fx->size);
		id += 1 + i % fx->size;
	}
}

static void test_ring_full(void **state)
{
	struct fixture *fx = *state;
	struct xenfs_ring_req req;
	struct xenfs_ring_rsp rsp;
	uint32_t i;

	for (i = 0; i < fx->size; i++) {
		req = mkreq(i);
		xf_fring_put(&fx->f, &req);
	}
	assert_int_equal(xf_fring_free(&fx->f), 0);
	(void)xf_fring_push(&fx->f);
	/* consuming requests does not free slots: responses do */
	for (i = 0; i < fx->size; i++)
		assert_int_equal(xf_bring_get(&fx->b, &req), 1);
	assert_int_equal(xf_fring_free(&fx->f), 0);
	rsp = (struct xenfs_ring_rsp){ .id = 0, .buf = 0, .len = 0 };
	xf_bring_put(&fx->b, &rsp);
	(void)xf_bring_push(&fx->b);
	assert_int_equal(xf_fring_get(&fx->f, &rsp), 1);
	assert_int_equal(xf_fring_free(&fx->f), 1);
}

/* The slot is copied before it is looked at: a later change of the shared
 * slot does not reach the copy. */
static void test_copy_out(void **state)
{
	struct fixture *fx = *state;
	struct xenfs_ring_req req = mkreq(7), got;

	xf_fring_put(&fx->f, &req);
	(void)xf_fring_push(&fx->f);
	assert_int_equal(xf_bring_get(&fx->b, &got), 1);
	fx->s->ring[0].req.len = 0xffffffff;
	fx->s->ring[0].req.buf = 0xffffffff;
	assert_int_equal(got.len, req.len);
	assert_int_equal(got.buf, req.buf);
}

/* ---- index wrap-around ---- */

static void test_wrap_2_32(void **state)
{
	struct fixture *fx = *state;
	static const uint32_t starts[] = {
		UINT32_MAX - 20, UINT32_MAX - 7, UINT32_MAX - 1, UINT32_MAX,
		0x80000000u - 3,
	};
	size_t k;
	int i;

	for (k = 0; k < sizeof(starts) / sizeof(starts[0]); k++) {
		uint64_t id = 1000;

		move_indices(fx, starts[k]);
		assert_int_equal(xf_fring_free(&fx->f), fx->size);
		for (i = 0; i < 12; i++) {
			round_trip(fx, id, 1 + (uint32_t)i % fx->size);
			id += 1 + (uint32_t)i % fx->size;
		}
		/* we really crossed zero */
		assert_true(fx->f.req_prod_pvt < starts[k] ||
			    starts[k] < 0x80000000u);
	}
}

/* A full ring straddling the wrap: still full, still drains. */
static void test_wrap_full(void **state)
{
	struct fixture *fx = *state;
	struct xenfs_ring_req req;
	struct xenfs_ring_rsp rsp;
	uint32_t i;

	move_indices(fx, UINT32_MAX - 3);
	for (i = 0; i < fx->size; i++) {
		req = mkreq(i);
		xf_fring_put(&fx->f, &req);
	}
	assert_int_equal(xf_fring_free(&fx->f), 0);
	(void)xf_fring_push(&fx->f);
	for (i = 0; i < fx->size; i++) {
		assert_int_equal(xf_bring_get(&fx->b, &req), 1);
		assert_int_equal(req.id, i);
		rsp = (struct xenfs_ring_rsp){ .id = req.id, .buf = req.buf };
		xf_bring_put(&fx->b, &rsp);
	}
	assert_int_equal(xf_bring_get(&fx->b, &req), 0);
	(void)xf_bring_push(&fx->b);
	for (i = 0; i < fx->size; i++) {
		assert_int_equal(xf_fring_get(&fx->f, &rsp), 1);
		assert_int_equal(rsp.id, i);
	}
	assert_int_equal(xf_fring_free(&fx->f), fx->size);
}

/* ---- event suppression ---- */

static void check_req_notify(struct fixture *fx, uint32_t start)
{
	struct xenfs_ring_req req = mkreq(1);
	struct xenfs_ring_rsp rsp = { 0 };

	move_indices(fx, start);
	/* nothing queued: never notify */
	assert_false(xf_fring_push(&fx->f));

	/* backend idle and armed (req_event = cons + 1): first push wakes */
	xf_fring_put(&fx->f, &req);
	assert_true(xf_fring_push(&fx->f));
	/* backend has not re-armed: further pushes stay silent */
	xf_fring_put(&fx->f, &req);
	assert_false(xf_fring_push(&fx->f));
	xf_fring_put(&fx->f, &req);
	xf_fring_put(&fx->f, &req);
	assert_false(xf_fring_push(&fx->f));

	/* backend drains and re-arms: nothing raced in */
	while (xf_bring_get(&fx->b, &req) == 1)
		xf_bring_put(&fx->b, &rsp);
	assert_false(xf_bring_final_check(&fx->b));
	assert_int_equal(fx->s->req_event, fx->b.req_cons + 1);

	/* a batch of three pushed at once: exactly one wakeup */
	xf_fring_put(&fx->f, &req);
	xf_fring_put(&fx->f, &req);
	xf_fring_put(&fx->f, &req);
	assert_true(xf_fring_push(&fx->f));

	/* backend consumes only one, re-arms: the final check sees the
	 * two still pending, so no wakeup is lost */
	assert_int_equal(xf_bring_get(&fx->b, &req), 1);
	assert_true(xf_bring_final_check(&fx->b));
	/* a push now is past the event index: wake again */
	xf_bring_put(&fx->b, &rsp);
	assert_int_equal(xf_bring_get(&fx->b, &req), 1);
	xf_bring_put(&fx->b, &rsp);
	assert_int_equal(xf_bring_get(&fx->b, &req), 1);
	xf_bring_put(&fx->b, &rsp);
	assert_false(xf_bring_final_check(&fx->b));
}

static void test_event_req(void **state)
{
	struct fixture *fx = *state;

	check_req_notify(fx, 0);
	check_req_notify(fx, UINT32_MAX);
	check_req_notify(fx, UINT32_MAX - 2);
}

static void check_rsp_notify(struct fixture *fx, uint32_t start)
{
	struct xenfs_ring_req req = mkreq(1);
	struct xenfs_ring_rsp rsp = { .id = 1 };
	int i;

	move_indices(fx, start);
	for (i = 0; i < 6; i++)
		xf_fring_put(&fx->f, &req);
	(void)xf_fring_push(&fx->f);
	for (i = 0; i < 6; i++)
		assert_int_equal(xf_bring_get(&fx->b, &req), 1);

	assert_false(xf_bring_push(&fx->b));	/* nothing queued */
	/* frontend armed at rsp_cons + 1: first response wakes it */
	xf_bring_put(&fx->b, &rsp);
	assert_true(xf_bring_push(&fx->b));
	/* not re-armed: silent */
	xf_bring_put(&fx->b, &rsp);
	assert_false(xf_bring_push(&fx->b));

	/* frontend drains, re-arms with nothing pending */
	assert_int_equal(xf_fring_get(&fx->f, &rsp), 1);
	assert_int_equal(xf_fring_get(&fx->f, &rsp), 1);
	assert_int_equal(xf_fring_get(&fx->f, &rsp), 0);
	assert_false(xf_fring_final_check(&fx->f));
	assert_int_equal(fx->s->rsp_event, fx->f.rsp_cons + 1);

	/* two in one push: one wakeup */
	xf_bring_put(&fx->b, &rsp);
	xf_bring_put(&fx->b, &rsp);
	assert_true(xf_bring_push(&fx->b));

	/* a response that races the re-arm is seen by the final check */
	assert_int_equal(xf_fring_get(&fx->f, &rsp), 1);
	assert_true(xf_fring_final_check(&fx->f));
	assert_int_equal(xf_fring_get(&fx->f, &rsp), 1);
	assert_false(xf_fring_final_check(&fx->f));

	/* a frontend that asks to be woken later (event far ahead) is not
	 * woken for the next response */
	fx->s->rsp_event = fx->f.rsp_cons + 2;
	xf_bring_put(&fx->b, &rsp);
	assert_false(xf_bring_push(&fx->b));
	xf_bring_put(&fx->b, &rsp);
	assert_true(xf_bring_push(&fx->b));
}

static void test_event_rsp(void **state)
{
	struct fixture *fx = *state;

	check_rsp_notify(fx, 0);
	check_rsp_notify(fx, UINT32_MAX);
	check_rsp_notify(fx, UINT32_MAX - 3);
}

/* ---- hostile indices ---- */

static void test_hostile_req_prod(void **state)
{
	struct fixture *fx = *state;
	struct xenfs_ring_req req;
	static const uint32_t bad[] = { 9, 100, 0x80000000u, UINT32_MAX };
	size_t i;

	/* more unconsumed requests than slots */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fx->s->req_prod = fx->b.req_cons + bad[i];
		memset(&req, 0x5a, sizeof(req));
		assert_int_equal(xf_bring_get(&fx->b, &req), -EPROTO);
		assert_int_equal(fx->b.req_cons, 0);	/* nothing consumed */
	}
	/* exactly a full ring is legal */
	fx->s->req_prod = fx->size;
	assert_int_equal(xf_bring_get(&fx->b, &req), 1);
}

/* Requests consumed but not answered still occupy slots: a frontend that
 * publishes more than size outstanding requests is broken. */
static void test_hostile_outstanding(void **state)
{
	struct fixture *fx = *state;
	struct xenfs_ring_req req;
	uint32_t i;

	move_indices(fx, UINT32_MAX - 2);
	fx->s->req_prod = fx->b.req_cons + fx->size;
	for (i = 0; i < fx->size; i++)
		assert_int_equal(xf_bring_get(&fx->b, &req), 1);
	assert_int_equal(xf_bring_get(&fx->b, &req), 0);
	/* one more request while all size are unanswered */
	fx->s->req_prod++;
	assert_int_equal(xf_bring_get(&fx->b, &req), -EPROTO);
}

static void test_hostile_req_prod_backwards(void **state)
{
	struct fixture *fx = *state;
	struct xenfs_ring_req req = mkreq(1);

	xf_fring_put(&fx->f, &req);
	xf_fring_put(&fx->f, &req);
	(void)xf_fring_push(&fx->f);
	assert_int_equal(xf_bring_get(&fx->b, &req), 1);
	assert_int_equal(xf_bring_get(&fx->b, &req), 1);
	/* the frontend moves its producer index back behind our consumer */
	fx->s->req_prod = 1;
	assert_int_equal(xf_bring_get(&fx->b, &req), -EPROTO);
}

static void test_hostile_rsp_prod(void **state)
{
	struct fixture *fx = *state;
	struct xenfs_ring_req req = mkreq(1);
	struct xenfs_ring_rsp rsp;

	move_indices(fx, UINT32_MAX - 1);
	/* no request published: any response is impossible */
	fx->s->rsp_prod = fx->f.rsp_cons + 1;
	assert_int_equal(xf_fring_get(&fx->f, &rsp), -EPROTO);

	/* two published: a third response is impossible */
	fx->s->rsp_prod = fx->f.rsp_cons;
	xf_fring_put(&fx->f, &req);
	xf_fring_put(&fx->f, &req);
	(void)xf_fring_push(&fx->f);
	fx->s->rsp_prod = fx->f.rsp_cons + 3;
	assert_int_equal(xf_fring_get(&fx->f, &rsp), -EPROTO);
	/* queued but not yet pushed requests do not count */
	xf_fring_put(&fx->f, &req);
	assert_int_equal(xf_fring_get(&fx->f, &rsp), -EPROTO);
	/* behind our consumer (huge unsigned distance) */
	fx->s->rsp_prod = fx->f.rsp_cons - 1;
	assert_int_equal(xf_fring_get(&fx->f, &rsp), -EPROTO);
	/* two is fine */
	fx->s->rsp_prod = fx->f.rsp_cons + 2;
	assert_int_equal(xf_fring_get(&fx->f, &rsp), 1);
	assert_int_equal(xf_fring_get(&fx->f, &rsp), 1);
	assert_int_equal(xf_fring_get(&fx->f, &rsp), 0);
}

/* ---- control channel ---- */

static void test_ctrl_basic(void **state)
{
	struct fixture *fx = *state;
	struct xf_ctrl_back cb = { .c = fx->c };
	struct xf_ctrl_front cf = { .c = fx->c };
	struct xenfs_ctrl_msg m;
	uint32_t seq, status;
	const char payload[] = "notify frame";

	assert_int_equal(xf_ctrl_get(&cf, &m), 0);
	assert_int_equal(xf_ctrl_post(&cb, XENFS_CTRL_FUSE_NOTIFY, 1,
				      payload, sizeof(payload)), 0);
	assert_int_equal(fx->c->msg_prod, 1);
	assert_int_equal(xf_ctrl_get(&cf, &m), 1);
	assert_int_equal(fx->c->msg_cons, 1);
	assert_int_equal(m.type, XENFS_CTRL_FUSE_NOTIFY);
	assert_int_equal(m.seq, 1);
	assert_int_equal(m.len, sizeof(payload));
	assert_memory_equal(m.data, payload, sizeof(payload));
	assert_int_equal(xf_ctrl_get(&cf, &m), 0);

	/* zero-length message, and the acknowledgement path */
	assert_int_equal(xf_ctrl_post(&cb, XENFS_CTRL_SYNCFS, 42, NULL, 0), 0);
	assert_int_equal(xf_ctrl_get(&cf, &m), 1);
	assert_int_equal(m.type, XENFS_CTRL_SYNCFS);
	assert_int_equal(m.len, 0);
	xf_ctrl_ack(&cf, 42, 5);
	xf_ctrl_read_ack(&cb, &seq, &status);
	assert_int_equal(seq, 42);
	assert_int_equal(status, 5);
	xf_ctrl_ack(&cf, UINT32_MAX, 0);
	xf_ctrl_read_ack(&cb, &seq, &status);
	assert_int_equal(seq, UINT32_MAX);
	assert_int_equal(status, 0);
}

static void test_ctrl_full(void **state)
{
	struct fixture *fx = *state;
	struct xf_ctrl_back cb = { .c = fx->c };
	struct xf_ctrl_front cf = { .c = fx->c };
	struct xenfs_ctrl_msg m;
	uint32_t i, start;

	/* across the 2^32 wrap as well as from zero */
	for (start = 0; start != 2; start++) {
		uint32_t base = start ? UINT32_MAX - 3 : 0;

		cb.msg_prod_pvt = base;
		cf.msg_cons_pvt = base;
		fx->c->msg_prod = fx->c->msg_cons = base;
		for (i = 0; i < XENFS_CTRL_SLOTS; i++)
			assert_int_equal(xf_ctrl_post(&cb, XENFS_CTRL_SYNCFS,
						      i, NULL, 0), 0);
		assert_int_equal(xf_ctrl_post(&cb, XENFS_CTRL_SYNCFS, 99,
					      NULL, 0), -EAGAIN);
		assert_int_equal(cb.msg_prod_pvt, base + XENFS_CTRL_SLOTS);
		assert_int_equal(xf_ctrl_get(&cf, &m), 1);
		assert_int_equal(m.seq, 0);
		assert_int_equal(xf_ctrl_post(&cb, XENFS_CTRL_SYNCFS, 8,
					      NULL, 0), 0);
		for (i = 1; i <= XENFS_CTRL_SLOTS; i++) {
			assert_int_equal(xf_ctrl_get(&cf, &m), 1);
			assert_int_equal(m.seq, i);
		}
		assert_int_equal(xf_ctrl_get(&cf, &m), 0);
	}
}

static void test_ctrl_hostile(void **state)
{
	struct fixture *fx = *state;
	struct xf_ctrl_back cb = { .c = fx->c };
	struct xf_ctrl_front cf = { .c = fx->c };
	struct xenfs_ctrl_msg m;
	uint8_t big[XENFS_CTRL_DATA + 1];

	memset(big, 'x', sizeof(big));
	/* oversize payload: refused, nothing published */
	assert_int_equal(xf_ctrl_post(&cb, XENFS_CTRL_FUSE_NOTIFY, 1, big,
				      XENFS_CTRL_DATA + 1), -EMSGSIZE);
	assert_int_equal(xf_ctrl_post(&cb, XENFS_CTRL_FUSE_NOTIFY, 1, big,
				      UINT32_MAX), -EMSGSIZE);
	assert_int_equal(fx->c->msg_prod, 0);
	/* the largest payload fits */
	assert_int_equal(xf_ctrl_post(&cb, XENFS_CTRL_FUSE_NOTIFY, 1, big,
				      XENFS_CTRL_DATA), 0);

	/* frontend claims to have consumed more than was posted */
	fx->c->msg_cons = cb.msg_prod_pvt + 1;
	assert_int_equal(xf_ctrl_post(&cb, XENFS_CTRL_SYNCFS, 2, NULL, 0),
			 -EPROTO);
	fx->c->msg_cons = cb.msg_prod_pvt + 0x80000000u;
	assert_int_equal(xf_ctrl_post(&cb, XENFS_CTRL_SYNCFS, 2, NULL, 0),
			 -EPROTO);
	fx->c->msg_cons = 0;

	/* backend's producer more than a ring ahead of us */
	fx->c->msg_prod = XENFS_CTRL_SLOTS + 1;
	assert_int_equal(xf_ctrl_get(&cf, &m), -EPROTO);
	fx->c->msg_prod = UINT32_MAX;
	assert_int_equal(xf_ctrl_get(&cf, &m), -EPROTO);
	assert_int_equal(cf.msg_cons_pvt, 0);

	/* a slot whose length lies */
	fx->c->msg_prod = 1;
	fx->c->msg[0].len = XENFS_CTRL_DATA + 1;
	assert_int_equal(xf_ctrl_get(&cf, &m), -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_check),
		cmocka_unit_test(test_layout_math),
		cmocka_unit_test_setup_teardown(test_init_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ring_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_2_32, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_req, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_rsp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_req_prod, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile_outstanding, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_hostile_req_prod_backwards,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_hostile_rsp_prod, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ctrl_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctrl_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctrl_hostile, setup,
						teardown),
	};

	return cmocka_run_group_tests_name("ring", tests, NULL, NULL);
}
