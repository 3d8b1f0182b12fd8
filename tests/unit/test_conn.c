/*
 * Unit tests of the backend's request framing (backend/conn_frame.c)
 * against a fake shared region in ordinary memory: a frontend ring
 * (xf_fring) produces requests, the framing consumes them, and every
 * hostile variant must come back -EPROTO ("connection broken") without
 * touching memory outside the region.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../backend/conn_i.h"

#define NQ		2
#define ORDER		2		/* 4 slots per queue */
#define BUFSZ		(3 * XENFS_PAGE_SIZE)
#define QUEUE		1		/* the queue under test */

struct fixture {
	struct xenfs_layout l;
	uint8_t *base;
	struct xf_fring fr;		/* frontend side of QUEUE */
	struct xf_bring br;		/* backend side of QUEUE */
	struct conn_frame f;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	size_t size;

	assert_non_null(fx);
	fx->l.nr_queues = NQ;
	fx->l.ring_order = ORDER;
	fx->l.buf_size = BUFSZ;
	size = xenfs_region_size(&fx->l);
	fx->base = aligned_alloc(XENFS_PAGE_SIZE, size);
	assert_non_null(fx->base);
	memset(fx->base, 0, size);
	xf_fring_init(&fx->fr, xf_region_sring(fx->base, QUEUE),
		      xenfs_ring_slots(&fx->l));
	xf_bring_init(&fx->br, xf_region_sring(fx->base, QUEUE),
		      xenfs_ring_slots(&fx->l));
	fx->f.base = fx->base;
	fx->f.layout = fx->l;
	fx->f.q = QUEUE;
	fx->f.ring = &fx->br;
	fx->f.priv = malloc(BUFSZ);
	assert_non_null(fx->f.priv);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	free(fx->f.priv);
	free(fx->base);
	free(fx);
	return 0;
}

/* First buffer index of QUEUE. */
static uint32_t qbuf(uint32_t slot)
{
	return (QUEUE << ORDER) + slot;
}

/* Write a FUSE frame (header + arg bytes) into buffer buf; frame len. */
static uint32_t put_frame(struct fixture *fx, uint32_t buf, uint32_t opcode,
			  uint64_t unique, const void *arg, uint32_t arglen)
{
	uint8_t *b = xf_region_buf(fx->base, &fx->l, buf);
	struct fuse_in_header in;

	memset(&in, 0, sizeof(in));
	in.len = sizeof(in) + arglen;
	in.opcode = opcode;
	in.unique = unique;
	in.nodeid = 1;
	memcpy(b, &in, sizeof(in));
	if (arglen)
		memcpy(b + sizeof(in), arg, arglen);
	return in.len;
}

static void push(struct fixture *fx, uint64_t id, uint32_t buf, uint32_t len)
{
	struct xenfs_ring_req r = { .id = id, .buf = buf, .len = len };

	xf_fring_put(&fx->fr, &r);
	(void)xf_fring_push(&fx->fr);
}

static int next(struct fixture *fx, struct fs_req *req, uint64_t *id,
		uint32_t *slot, const char **why)
{
	*why = NULL;
	return conn_next_request(&fx->f, req, id, slot, why);
}

static void test_empty(void **state)
{
	struct fixture *fx = *state;
	struct fs_req req;
	const char *why;
	uint64_t id;
	uint32_t slot;

	assert_int_equal(next(fx, &req, &id, &slot, &why), 0);
}

static void test_good_lookup(void **state)
{
	struct fixture *fx = *state;
	struct fs_req req;
	const char *why;
	uint64_t id;
	uint32_t slot, len;

	len = put_frame(fx, qbuf(2), FUSE_LOOKUP, 77, "name", 5);
	push(fx, 1234, qbuf(2), len);
	assert_int_equal(next(fx, &req, &id, &slot, &why), 1);
	assert_int_equal(id, 1234);
	assert_int_equal(slot, 2);
	assert_int_equal(req.in.opcode, FUSE_LOOKUP);
	assert_int_equal(req.in.unique, 77);
	assert_int_equal(req.in.len, len);
	assert_int_equal(req.arglen, 5);
	assert_memory_equal(req.arg, "name", 5);
	/* the arguments are a private copy, not the shared buffer */
	assert_ptr_equal(req.arg, fx->f.priv);
	assert_null(req.wdata);
	assert_ptr_equal(req.out, xf_region_buf(fx->base, &fx->l, qbuf(2)));
	assert_int_equal(req.outcap, BUFSZ);
	assert_true(conn_slot_busy(&fx->f, 2));
	assert_int_equal(conn_slot_buf(&fx->f, 2), qbuf(2));

	/* the guest rewrites the buffer afterwards: our copy is unchanged */
	memset(xf_region_buf(fx->base, &fx->l, qbuf(2)), 0xff, 64);
	assert_int_equal(req.in.opcode, FUSE_LOOKUP);
	assert_memory_equal(req.arg, "name", 5);
}

static void test_write_payload_stays_shared(void **state)
{
	struct fixture *fx = *state;
	struct fuse_write_in wi;
	uint8_t frame[sizeof(wi) + 100];
	struct fs_req req;
	const char *why;
	uint64_t id;
	uint32_t slot, len;
	uint8_t *b;

	memset(&wi, 0, sizeof(wi));
	wi.size = 100;
	wi.offset = 4096;
	memcpy(frame, &wi, sizeof(wi));
	memset(frame + sizeof(wi), 'x', 100);
	len = put_frame(fx, qbuf(0), FUSE_WRITE, 9, frame, sizeof(frame));
	push(fx, 1, qbuf(0), len);
	assert_int_equal(next(fx, &req, &id, &slot, &why), 1);
	b = xf_region_buf(fx->base, &fx->l, qbuf(0));
	assert_int_equal(req.arglen, sizeof(wi));
	assert_ptr_equal(req.arg, fx->f.priv);
	assert_memory_equal(req.arg, &wi, sizeof(wi));
	assert_ptr_equal(req.wdata,
			 b + sizeof(struct fuse_in_header) + sizeof(wi));
	assert_int_equal(req.wlen, 100);
}

static void expect_broken(struct fixture *fx, uint64_t id, uint32_t buf,
			  uint32_t len)
{
	struct fs_req req;
	const char *why;
	uint64_t rid;
	uint32_t slot;

	push(fx, id, buf, len);
	assert_int_equal(next(fx, &req, &rid, &slot, &why), -EPROTO);
	assert_non_null(why);
}

static void test_buf_out_of_range(void **state)
{
	struct fixture *fx = *state;

	expect_broken(fx, 1, NQ << ORDER, sizeof(struct fuse_in_header));
}

static void test_buf_huge(void **state)
{
	struct fixture *fx = *state;

	expect_broken(fx, 1, 0xffffffffu, sizeof(struct fuse_in_header));
}

static void test_buf_of_other_queue(void **state)
{
	struct fixture *fx = *state;
	uint32_t len = put_frame(fx, 0, FUSE_GETATTR, 1, NULL, 0);

	expect_broken(fx, 1, 0, len);	/* buffer 0 belongs to queue 0 */
}

static void test_len_too_small(void **state)
{
	struct fixture *fx = *state;

	(void)put_frame(fx, qbuf(1), FUSE_GETATTR, 1, NULL, 0);
	expect_broken(fx, 1, qbuf(1), sizeof(struct fuse_in_header) - 1);
}

static void test_len_zero(void **state)
{
	struct fixture *fx = *state;

	expect_broken(fx, 1, qbuf(1), 0);
}

static void test_len_too_large(void **state)
{
	struct fixture *fx = *state;
	uint8_t *b = xf_region_buf(fx->base, &fx->l, qbuf(3));
	struct fuse_in_header in = { .len = BUFSZ + 1, .opcode = FUSE_GETATTR };

	memcpy(b, &in, sizeof(in));
	expect_broken(fx, 1, qbuf(3), BUFSZ + 1);
}

static void test_len_max_ok(void **state)
{
	struct fixture *fx = *state;
	uint8_t *b = xf_region_buf(fx->base, &fx->l, qbuf(3));
	struct fuse_in_header in = { .len = BUFSZ, .opcode = FUSE_SETXATTR };
	struct fs_req req;
	const char *why;
	uint64_t id;
	uint32_t slot;

	memcpy(b, &in, sizeof(in));
	push(fx, 5, qbuf(3), BUFSZ);
	assert_int_equal(next(fx, &req, &id, &slot, &why), 1);
	assert_int_equal(req.arglen, BUFSZ - sizeof(in));
}

static void test_inlen_mismatch(void **state)
{
	struct fixture *fx = *state;
	uint32_t len = put_frame(fx, qbuf(1), FUSE_LOOKUP, 1, "abc", 4);

	expect_broken(fx, 1, qbuf(1), len + 1);
}

static void test_inlen_mismatch_short(void **state)
{
	struct fixture *fx = *state;
	uint32_t len = put_frame(fx, qbuf(1), FUSE_LOOKUP, 1, "abc", 4);

	expect_broken(fx, 1, qbuf(1), len - 1);
}

static void test_write_too_short(void **state)
{
	struct fixture *fx = *state;
	uint8_t arg[8] = { 0 };
	uint32_t len = put_frame(fx, qbuf(1), FUSE_WRITE, 1, arg, sizeof(arg));

	expect_broken(fx, 1, qbuf(1), len);
}

static void test_duplicate_in_flight(void **state)
{
	struct fixture *fx = *state;
	struct fs_req req;
	const char *why;
	uint64_t id;
	uint32_t slot, len;

	len = put_frame(fx, qbuf(1), FUSE_GETATTR, 1, NULL, 0);
	push(fx, 1, qbuf(1), len);
	assert_int_equal(next(fx, &req, &id, &slot, &why), 1);
	expect_broken(fx, 2, qbuf(1), len);
}

static void test_reuse_after_release(void **state)
{
	struct fixture *fx = *state;
	struct xenfs_ring_rsp rsp;
	struct fs_req req;
	const char *why;
	uint64_t id;
	uint32_t slot, len;

	len = put_frame(fx, qbuf(1), FUSE_GETATTR, 1, NULL, 0);
	push(fx, 1, qbuf(1), len);
	assert_int_equal(next(fx, &req, &id, &slot, &why), 1);
	/* answer it, as conn.c does */
	rsp.id = id;
	rsp.buf = conn_slot_buf(&fx->f, slot);
	rsp.len = 0;
	xf_bring_put(&fx->br, &rsp);
	conn_slot_release(&fx->f, slot);
	(void)xf_bring_push(&fx->br);
	assert_int_equal(xf_fring_get(&fx->fr, &rsp), 1);
	assert_int_equal(rsp.buf, qbuf(1));
	push(fx, 2, qbuf(1), len);
	assert_int_equal(next(fx, &req, &id, &slot, &why), 1);
	assert_int_equal(id, 2);
}

static void test_ring_index_garbage(void **state)
{
	struct fixture *fx = *state;
	struct xenfs_sring *s = xf_region_sring(fx->base, QUEUE);
	struct fs_req req;
	const char *why;
	uint64_t id;
	uint32_t slot;

	s->req_prod = 1000;	/* far more requests than slots */
	assert_int_equal(next(fx, &req, &id, &slot, &why), -EPROTO);
	assert_non_null(why);
}

static void test_ring_index_backwards(void **state)
{
	struct fixture *fx = *state;
	struct xenfs_sring *s = xf_region_sring(fx->base, QUEUE);
	struct fs_req req;
	const char *why;
	uint64_t id;
	uint32_t slot;

	s->req_prod = (uint32_t)-1;	/* "behind" the consumer */
	assert_int_equal(next(fx, &req, &id, &slot, &why), -EPROTO);
}

static void test_more_outstanding_than_slots(void **state)
{
	struct fixture *fx = *state;
	struct fs_req req;
	const char *why;
	uint64_t id;
	uint32_t slot, i, len;

	/* fill every slot of the queue without answering... */
	for (i = 0; i < (1u << ORDER); i++) {
		len = put_frame(fx, qbuf(i), FUSE_GETATTR, i, NULL, 0);
		push(fx, i, qbuf(i), len);
		assert_int_equal(next(fx, &req, &id, &slot, &why), 1);
	}
	/* ...then publish one more: the ring cannot hold it */
	xf_region_sring(fx->base, QUEUE)->req_prod++;
	assert_int_equal(next(fx, &req, &id, &slot, &why), -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_empty),
		T(test_good_lookup),
		T(test_write_payload_stays_shared),
		T(test_buf_out_of_range),
		T(test_buf_huge),
		T(test_buf_of_other_queue),
		T(test_len_too_small),
		T(test_len_zero),
		T(test_len_too_large),
		T(test_len_max_ok),
		T(test_inlen_mismatch),
		T(test_inlen_mismatch_short),
		T(test_write_too_short),
		T(test_duplicate_in_flight),
		T(test_reuse_after_release),
		T(test_ring_index_garbage),
		T(test_ring_index_backwards),
		T(test_more_outstanding_than_slots),
#undef T
	};

	return cmocka_run_group_tests_name("conn framing", tests, NULL, NULL);
}
