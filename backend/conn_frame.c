/*
 * Request framing for one queue: the checks between a hostile ring slot
 * and a struct fs_req the fs layer may trust.  See conn_i.h.
 *
 * Concurrency: called by the queue's worker only; the busy bitmap is
 * shared with response posters (fs_complete from other threads), who
 * serialize with the worker through the queue's lock held by the caller
 * (backend/conn.c).  No locking here, no threads, no transport: the unit
 * test drives it with a region in ordinary memory.
 *
 * Trust boundary: every value read from shared memory is read once into a
 * local or a private copy before it is checked and used.
 */
#include <errno.h>
#include <string.h>

#include "conn_i.h"

int conn_slot_busy(const struct conn_frame *f, uint32_t slot)
{
	return !!(f->busy[slot / 64] & (1ull << (slot % 64)));
}

void conn_slot_release(struct conn_frame *f, uint32_t slot)
{
	if (slot < CONN_MAX_SLOTS)
		f->busy[slot / 64] &= ~(1ull << (slot % 64));
}

int conn_decode_request(struct conn_frame *f,
			const struct xenfs_ring_req *rr, struct fs_req *req,
			uint32_t *slot, const char **why)
{
	const uint32_t hdr = sizeof(struct fuse_in_header);
	const uint32_t first = f->q << f->layout.ring_order;
	const uint32_t nslots = xenfs_ring_slots(&f->layout);
	uint32_t buf = rr->buf, len = rr->len, s;
	const uint8_t *shared;

	/* rr is already our private copy of the slot */
	if (buf < first || buf - first >= nslots) {
		*why = "request names a buffer outside its queue";
		return -EPROTO;
	}
	s = buf - first;
	if (conn_slot_busy(f, s)) {
		*why = "request reuses a buffer that is still in flight";
		return -EPROTO;
	}
	if (len < hdr) {
		*why = "request shorter than a FUSE header";
		return -EPROTO;
	}
	if (len > f->layout.buf_size) {
		*why = "request longer than its buffer";
		return -EPROTO;
	}
	shared = xf_region_buf(f->base, &f->layout, buf);
	memset(req, 0, sizeof(*req));
	/* the header is read from shared memory exactly once */
	memcpy(&req->in, shared, hdr);
	if (req->in.len != len) {
		*why = "FUSE header length differs from the ring's";
		return -EPROTO;
	}
	if (req->in.opcode == FUSE_WRITE) {
		const uint32_t wi = sizeof(struct fuse_write_in);

		if (len - hdr < wi) {
			*why = "WRITE shorter than its argument";
			return -EPROTO;
		}
		memcpy(f->priv, shared + hdr, wi);
		req->arg = f->priv;
		req->arglen = wi;
		/* payload stays shared: handed to pwrite, never inspected */
		req->wdata = shared + hdr + wi;
		req->wlen = len - hdr - wi;
	} else {
		memcpy(f->priv, shared + hdr, len - hdr);
		req->arg = f->priv;
		req->arglen = len - hdr;
	}
	req->out = (void *)xf_region_buf(f->base, &f->layout, buf);
	req->outcap = f->layout.buf_size;
	f->busy[s / 64] |= 1ull << (s % 64);
	*slot = s;
	return 0;
}

int conn_next_request(struct conn_frame *f, struct fs_req *req,
		      uint64_t *id, uint32_t *slot, const char **why)
{
	struct xenfs_ring_req rr;
	int r;

	r = xf_bring_get(f->ring, &rr);
	if (r < 0) {
		*why = "ring indices out of range";
		return -EPROTO;
	}
	if (r == 0)
		return 0;
	r = conn_decode_request(f, &rr, req, slot, why);
	if (r < 0)
		return r;
	*id = rr.id;
	return 1;
}
