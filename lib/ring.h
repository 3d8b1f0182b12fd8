/*
 * Ring operations over the shared ABI of <xenfs/ring.h>, for both sides.
 *
 * Trust boundary: the struct xenfs_sring and struct xenfs_ctrl these
 * functions touch live in memory the peer can write at any time.  Every
 * shared field is loaded once into a local (with acquire ordering where it
 * publishes data), checked, and only the local is used.  Slots are copied
 * out whole before any field is looked at.  A check that fails returns
 * -EPROTO: the caller must then treat the connection as broken.
 *
 * Concurrency: a ring has one producer and one consumer per direction.
 * The backend may post responses from several threads; it serializes
 * xf_bring_put/xf_bring_push with its own lock.  Nothing here locks.
 */
#ifndef XF_RING_H
#define XF_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <xenfs/ring.h>

/* Full barrier, and the acquire/release accessors used on shared fields. */
#define xf_mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)
#define xf_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define xf_store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* Check a layout proposed by a peer; returns 0 or -EINVAL with *why set. */
int xf_layout_check(const struct xenfs_layout *l, uint64_t max_region,
		    const char **why);

static inline struct xenfs_ctrl *xf_region_ctrl(void *base)
{
	return (struct xenfs_ctrl *)base;
}

static inline struct xenfs_sring *xf_region_sring(void *base, uint32_t q)
{
	return (struct xenfs_sring *)((uint8_t *)base +
				      (uint64_t)(1 + q) * XENFS_PAGE_SIZE);
}

static inline uint8_t *xf_region_buf(void *base, const struct xenfs_layout *l,
				     uint32_t idx)
{
	return (uint8_t *)base + xenfs_pool_offset(l) +
	       (uint64_t)idx * l->buf_size;
}

/* ---- backend side: consumes requests, produces responses ---- */

struct xf_bring {
	struct xenfs_sring *s;	/* shared */
	uint32_t size;		/* number of slots, power of two */
	uint32_t req_cons;	/* private: next request to consume */
	uint32_t rsp_prod_pvt;	/* private: next response slot */
	uint32_t rsp_pushed;	/* private: last value published */
};

void xf_bring_init(struct xf_bring *r, struct xenfs_sring *s, uint32_t size);
/* Copy the next request into *out.  1: got one, 0: none, -EPROTO: broken. */
int xf_bring_get(struct xf_bring *r, struct xenfs_ring_req *out);
/* Re-arm the request event; returns true if more requests raced in. */
bool xf_bring_final_check(struct xf_bring *r);
/* Queue a response (caller has consumed its request). */
void xf_bring_put(struct xf_bring *r, const struct xenfs_ring_rsp *rsp);
/* Publish queued responses; returns true if the frontend must be notified. */
bool xf_bring_push(struct xf_bring *r);

/* ---- frontend side: produces requests, consumes responses ---- */

struct xf_fring {
	struct xenfs_sring *s;	/* shared */
	uint32_t size;
	uint32_t req_prod_pvt;	/* private: next request slot */
	uint32_t req_pushed;	/* private: last value published */
	uint32_t rsp_cons;	/* private: next response to consume */
};

void xf_fring_init(struct xf_fring *r, struct xenfs_sring *s, uint32_t size);
static inline uint32_t xf_fring_free(const struct xf_fring *r)
{
	return r->size - (r->req_prod_pvt - r->rsp_cons);
}
/* Queue a request; the caller checked xf_fring_free() > 0. */
void xf_fring_put(struct xf_fring *r, const struct xenfs_ring_req *req);
/* Publish queued requests; returns true if the backend must be notified. */
bool xf_fring_push(struct xf_fring *r);
/* Copy the next response.  1: got one, 0: none, -EPROTO: broken. */
int xf_fring_get(struct xf_fring *r, struct xenfs_ring_rsp *out);
/* Re-arm the response event; returns true if more responses raced in. */
bool xf_fring_final_check(struct xf_fring *r);

/* ---- control channel (page 0) ---- */

struct xf_ctrl_back {
	struct xenfs_ctrl *c;	/* shared */
	uint32_t msg_prod_pvt;
};

/* Post a message; -EAGAIN if the frontend has not consumed enough,
 * -EPROTO if its consumer index is impossible, -EMSGSIZE if len too big. */
int xf_ctrl_post(struct xf_ctrl_back *cb, uint32_t type, uint32_t seq,
		 const void *data, uint32_t len);
/* Read the frontend's last acknowledgement (one 64-bit load). */
void xf_ctrl_read_ack(const struct xf_ctrl_back *cb, uint32_t *seq,
		      uint32_t *status);

struct xf_ctrl_front {
	struct xenfs_ctrl *c;	/* shared */
	uint32_t msg_cons_pvt;
};

/* Copy the next message.  1: got one, 0: none, -EPROTO: broken. */
int xf_ctrl_get(struct xf_ctrl_front *cf, struct xenfs_ctrl_msg *out);
void xf_ctrl_ack(struct xf_ctrl_front *cf, uint32_t seq, uint32_t status);

#endif /* XF_RING_H */
