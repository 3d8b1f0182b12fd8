/*
 * Fuzz target: the ring consumers of lib/ring.c against a hostile peer.
 *
 * Input: a layout (checked with xf_layout_check), then the initial bytes
 * of one shared ring page and of the control page, then a script of
 * operations.  Each operation either acts as an honest side (the backend
 * consuming requests and answering them, the frontend posting requests
 * and consuming responses, the frontend reading control messages) or as
 * the attacker scribbling over a shared field.  The pages are separate
 * exact-size heap blocks so the sanitizer sees any access outside them.
 *
 * Invariants checked (abort on violation): an honest side's private
 * indices never describe more outstanding slots than the ring has, and a
 * control message handed out never claims more data than it can hold.
 *
 * Single-threaded: the interleaving of the script stands in for the
 * peer's concurrent writes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t in_u8(struct input *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static uint32_t in_u32(struct input *in)
{
	uint32_t v = 0;
	int i;

	for (i = 0; i < 4; i++)
		v |= (uint32_t)in_u8(in) << (8 * i);
	return v;
}

static void in_bytes(struct input *in, void *dst, size_t len)
{
	size_t n = len < in->n ? len : in->n;

	memcpy(dst, in->p, n);
	in->p += n;
	in->n -= n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct xenfs_layout l;
	struct xenfs_sring *s;
	struct xenfs_ctrl *c;
	struct xf_bring br;
	struct xf_fring fr;
	struct xf_ctrl_front cf = { 0 };
	struct xf_ctrl_back cb = { 0 };
	struct xenfs_ring_req req;
	struct xenfs_ring_rsp rsp;
	struct xenfs_ctrl_msg msg;
	const char *why = NULL;
	uint32_t slots, outstanding = 0, seq = 0, ack_seq, ack_st;
	int steps = 0, r;

	memset(&l, 0, sizeof(l));
	in_bytes(&in, &l, sizeof(l));
	r = xf_layout_check(&l, (uint64_t)in_u8(&in) << 20, &why);
	if (r == 0) {
		if (l.nr_queues < 1 || l.nr_queues > XENFS_MAX_QUEUES ||
		    l.ring_order < XENFS_MIN_RING_ORDER ||
		    l.ring_order > XENFS_MAX_RING_ORDER ||
		    l.buf_size % XENFS_PAGE_SIZE || l.pad)
			abort();
		(void)xenfs_region_size(&l);
	} else if (r != -EINVAL || !why) {
		abort();
	}
	/* the script below always uses a valid ring size */
	slots = 1u << (XENFS_MIN_RING_ORDER +
		       l.ring_order % XENFS_MAX_RING_ORDER);

	s = calloc(1, sizeof(*s));
	c = calloc(1, sizeof(*c));
	if (!s || !c)
		abort();
	xf_fring_init(&fr, s, slots);
	xf_bring_init(&br, s, slots);
	in_bytes(&in, s, in_u8(&in) & 1 ? sizeof(*s) : 64);
	in_bytes(&in, c, in_u8(&in) & 1 ? sizeof(*c) : 64);
	cf.c = c;
	cb.c = c;

	while (in.n && steps++ < 4096) {
		switch (in_u8(&in) % 12) {
		case 0:		/* backend consumes a request */
			r = xf_bring_get(&br, &req);
			if (r < 0 && r != -EPROTO)
				abort();
			if (r == 1)
				outstanding++;
			if (br.req_cons - br.rsp_prod_pvt > slots)
				abort();
			break;
		case 1:		/* backend answers one consumed request */
			if (!outstanding)
				break;
			memset(&rsp, 0, sizeof(rsp));
			rsp.id = in_u32(&in);
			rsp.len = in_u32(&in);
			xf_bring_put(&br, &rsp);
			outstanding--;
			break;
		case 2:
			(void)xf_bring_push(&br);
			break;
		case 3:
			(void)xf_bring_final_check(&br);
			break;
		case 4:		/* frontend posts a request if it has room */
			if (xf_fring_free(&fr) == 0 ||
			    xf_fring_free(&fr) > slots)
				break;
			memset(&req, 0, sizeof(req));
			req.buf = in_u32(&in);
			req.len = in_u32(&in);
			xf_fring_put(&fr, &req);
			(void)xf_fring_push(&fr);
			break;
		case 5:		/* frontend consumes a response */
			r = xf_fring_get(&fr, &rsp);
			if (r < 0 && r != -EPROTO)
				abort();
			if (fr.req_pushed - fr.rsp_cons > slots)
				abort();
			break;
		case 6:
			(void)xf_fring_final_check(&fr);
			break;
		case 7:		/* frontend reads a control message */
			r = xf_ctrl_get(&cf, &msg);
			if (r < 0 && r != -EPROTO)
				abort();
			if (r == 1 && msg.len > XENFS_CTRL_DATA)
				abort();
			break;
		case 8: {	/* backend posts a control message */
			uint8_t buf[64] = { 0 };
			uint32_t len = in_u8(&in) % sizeof(buf);

			in_bytes(&in, buf, len);
			r = xf_ctrl_post(&cb, XENFS_CTRL_SYNCFS, ++seq, buf,
					 len);
			if (r < 0 && r != -EAGAIN && r != -EPROTO)
				abort();
			xf_ctrl_read_ack(&cb, &ack_seq, &ack_st);
			break;
		}
		case 9:		/* attacker writes a ring index */
			switch (in_u8(&in) % 4) {
			case 0: s->req_prod = in_u32(&in); break;
			case 1: s->rsp_prod = in_u32(&in); break;
			case 2: s->req_event = in_u32(&in); break;
			default: s->rsp_event = in_u32(&in); break;
			}
			break;
		case 10:	/* attacker writes a control field */
			switch (in_u8(&in) % 3) {
			case 0: c->msg_prod = in_u32(&in); break;
			case 1: c->msg_cons = in_u32(&in); break;
			default:
				c->msg[in_u8(&in) % XENFS_CTRL_SLOTS].len =
					in_u32(&in);
				break;
			}
			break;
		default:	/* attacker writes a slot */
			in_bytes(&in, &s->ring[in_u8(&in) % 252],
				 sizeof(s->ring[0]));
			break;
		}
	}
	free(s);
	free(c);
	return 0;
}
