/*
 * Private to backend/conn*.c and its unit test: the request framing of one
 * queue, separated from threads, transports and the fs layer so that every
 * check on guest-controlled ring and buffer contents can be exercised with
 * a fake region in ordinary memory (tests/unit/test_conn.c).
 *
 * Trust: ring slots and buffers are shared with a hostile frontend.
 * conn_next_request() copies the slot once (xf_bring_get), checks the
 * buffer index against the queue's range and the in-flight bitmap, bounds
 * the length, copies the FUSE header once and the arguments once into
 * private memory, and only then hands out a struct fs_req.  The only
 * pointers into shared memory that leave this function are req->wdata
 * (WRITE payload) and req->out (reply area), as backend/fs.h documents.
 */
#ifndef XF_BACKEND_CONN_I_H
#define XF_BACKEND_CONN_I_H

#include <stdint.h>

#include "fs.h"
#include "ring.h"

#define CONN_MAX_SLOTS	(1u << XENFS_MAX_RING_ORDER)

/* The framing state of one queue.  Owned by that queue's worker; busy[] is
 * also cleared by whoever posts a response, under the queue's lock. */
struct conn_frame {
	void *base;			/* mapped region */
	struct xenfs_layout layout;	/* validated copy */
	uint32_t q;			/* queue index */
	struct xf_bring *ring;		/* this queue's backend ring */
	uint64_t busy[CONN_MAX_SLOTS / 64];	/* buffers in flight */
	uint8_t *priv;			/* private copy area, buf_size bytes */
};

/*
 * Take the next request of the queue.  Returns 1 with *req filled (token
 * left NULL), *id the frontend's opaque id and *slot the buffer's index
 * within the queue (now marked busy); 0 if the ring is empty; -EPROTO if
 * the frontend broke the protocol, with *why set to a static message: the
 * connection must then be stopped.
 */
int conn_next_request(struct conn_frame *f, struct fs_req *req,
		      uint64_t *id, uint32_t *slot, const char **why);

/* Decode one already-copied ring request (the part above, minus the ring). */
int conn_decode_request(struct conn_frame *f,
			const struct xenfs_ring_req *rr, struct fs_req *req,
			uint32_t *slot, const char **why);

/* Mark slot free again (its response was queued).  Caller holds the
 * queue's response lock if other threads post responses. */
void conn_slot_release(struct conn_frame *f, uint32_t slot);
int conn_slot_busy(const struct conn_frame *f, uint32_t slot);

/* Buffer index (region-wide) of a queue-relative slot. */
static inline uint32_t conn_slot_buf(const struct conn_frame *f, uint32_t slot)
{
	return (f->q << f->layout.ring_order) + slot;
}

#endif /* XF_BACKEND_CONN_I_H */
