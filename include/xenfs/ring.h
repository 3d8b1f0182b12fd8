/*
 * XenFS shared-memory ring ABI (public).
 *
 * This header is the contract between a frontend (guest side, which owns
 * and shares the memory) and the backend xenfsd (dom0 side, which maps it).
 * It is transport-independent: the Xen transport shares these pages with
 * grant references, the local transport with a memfd.  Everything in here is
 * read by a party that must not trust the other: fixed-width fields, no
 * pointers, explicit padding, sizes checked at compile time.  A kernel
 * frontend can be written from this file and docs/protocol.md alone.
 *
 * Region layout (all offsets derived from the negotiated parameters, never
 * read from shared memory):
 *
 *   page 0                      struct xenfs_ctrl      control channel
 *   page 1 .. nr_queues         struct xenfs_sring     one ring per queue
 *   pool_offset + i * buf_size  buffer i, 0 <= i < nr_queues << ring_order
 *
 * Queue q owns buffers [q << ring_order, (q + 1) << ring_order).  A request
 * names one of its queue's buffers; the buffer holds one complete FUSE
 * request frame (struct fuse_in_header + arguments, <linux/fuse.h>), and the
 * backend writes the FUSE reply frame into the same buffer.  Buffers are
 * shared once at connect time (the persistent data pool): no grant, map or
 * unmap happens per request.
 *
 * Ring discipline follows Xen's io/ring.h: one array of slots per queue,
 * a request slot is reused for the response once the backend consumed it,
 * producer indices are free-running uint32_t, "event" fields implement
 * notification suppression ("notify me when prod passes event - 1").
 */
#ifndef XENFS_RING_H
#define XENFS_RING_H

#include <stdint.h>

#define XENFS_RING_MAGIC	0x584e4653u	/* "XNFS" */
#define XENFS_PROTO_VERSION	1u		/* bumped on incompatible changes */
#define XENFS_PAGE_SIZE		4096u

#define XENFS_MAX_QUEUES	16u
#define XENFS_MIN_RING_ORDER	1u
#define XENFS_MAX_RING_ORDER	7u		/* 128 slots fill one page */
#define XENFS_MIN_BUF_SIZE	(3u * XENFS_PAGE_SIZE)	/* >= FUSE_MIN_READ_BUFFER + slack */
#define XENFS_MAX_BUF_SIZE	((1u << 20) + XENFS_PAGE_SIZE)
/* Room in a buffer reserved for FUSE headers: max_write = buf_size - this. */
#define XENFS_BUF_HEADROOM	XENFS_PAGE_SIZE

/* One request slot: frontend -> backend. */
struct xenfs_ring_req {
	uint64_t id;		/* opaque to the backend, echoed in the response */
	uint32_t buf;		/* buffer index, must belong to this queue */
	uint32_t len;		/* bytes of FUSE request frame in the buffer */
};

/* One response slot: backend -> frontend. */
struct xenfs_ring_rsp {
	uint64_t id;		/* the request's id */
	uint32_t buf;		/* the request's buffer, now holding the reply */
	uint32_t len;		/* bytes of FUSE reply frame; 0 = no reply (FORGET) */
};

union xenfs_ring_slot {
	struct xenfs_ring_req req;
	struct xenfs_ring_rsp rsp;
};

/*
 * One queue's shared ring, exactly one page.  Written fields:
 *   req_prod   by the frontend   (requests published up to here)
 *   req_event  by the backend    (wake me when req_prod passes req_event - 1)
 *   rsp_prod   by the backend    (responses published up to here)
 *   rsp_event  by the frontend   (wake me when rsp_prod passes rsp_event - 1)
 * Consumer indices are private to each side.
 */
struct xenfs_sring {
	uint32_t req_prod;
	uint32_t req_event;
	uint32_t rsp_prod;
	uint32_t rsp_event;
	uint8_t pad[48];
	union xenfs_ring_slot ring[252];	/* only 1 << ring_order used */
};

/*
 * Control page: messages from backend to frontend that are not replies to
 * a request, and the frontend's acknowledgements.  Signalled through queue
 * 0's doorbell in both directions.
 */
#define XENFS_CTRL_SLOTS	8u
#define XENFS_CTRL_DATA		360u

enum xenfs_ctrl_type {
	XENFS_CTRL_NONE		= 0,
	/* data holds one FUSE notification frame (fuse_out_header with
	 * unique 0 and error = notify code); the frontend writes it to
	 * /dev/fuse as is.  No acknowledgement. */
	XENFS_CTRL_FUSE_NOTIFY	= 1,
	/* flush dirty data: the frontend calls syncfs() on the mount and then
	 * publishes ack_seq = seq with ack_status = 0 or a positive errno.
	 * FUSE requests the flush generates keep flowing meanwhile. */
	XENFS_CTRL_SYNCFS	= 2,
};

struct xenfs_ctrl_msg {
	uint32_t type;		/* enum xenfs_ctrl_type */
	uint32_t seq;		/* backend's sequence number for this message */
	uint32_t len;		/* bytes used in data */
	uint32_t pad;
	uint8_t data[XENFS_CTRL_DATA];
};

struct xenfs_ctrl {
	uint32_t magic;		/* XENFS_RING_MAGIC, written by the frontend */
	uint32_t version;	/* XENFS_PROTO_VERSION, written by the frontend */
	uint32_t msg_prod;	/* written by the backend */
	uint32_t msg_cons;	/* written by the frontend */
	/* written by the frontend as one 64-bit store: low 32 bits ack_seq,
	 * high 32 bits ack_status (0 or errno) of the last SYNCFS done */
	uint64_t ack;
	uint8_t pad[40];
	struct xenfs_ctrl_msg msg[XENFS_CTRL_SLOTS];
};

_Static_assert(sizeof(struct xenfs_ring_req) == 16, "req slot size");
_Static_assert(sizeof(struct xenfs_ring_rsp) == 16, "rsp slot size");
_Static_assert(sizeof(union xenfs_ring_slot) == 16, "slot size");
_Static_assert(sizeof(struct xenfs_sring) == XENFS_PAGE_SIZE, "sring is one page");
_Static_assert(sizeof(struct xenfs_ctrl_msg) == 376, "ctrl msg size");
_Static_assert(sizeof(struct xenfs_ctrl) <= XENFS_PAGE_SIZE, "ctrl fits a page");
_Static_assert((1u << XENFS_MAX_RING_ORDER) <= 252, "ring fits its page");

/* Negotiated shape of a connection. */
struct xenfs_layout {
	uint32_t nr_queues;
	uint32_t ring_order;
	uint32_t buf_size;	/* multiple of XENFS_PAGE_SIZE */
	uint32_t pad;
};
_Static_assert(sizeof(struct xenfs_layout) == 16, "layout size");

static inline uint32_t xenfs_ring_slots(const struct xenfs_layout *l)
{
	return 1u << l->ring_order;
}

static inline uint32_t xenfs_nr_bufs(const struct xenfs_layout *l)
{
	return l->nr_queues << l->ring_order;
}

static inline uint64_t xenfs_pool_offset(const struct xenfs_layout *l)
{
	return (uint64_t)(1 + l->nr_queues) * XENFS_PAGE_SIZE;
}

static inline uint64_t xenfs_region_size(const struct xenfs_layout *l)
{
	return xenfs_pool_offset(l) +
	       (uint64_t)xenfs_nr_bufs(l) * l->buf_size;
}

static inline uint64_t xenfs_region_pages(const struct xenfs_layout *l)
{
	return xenfs_region_size(l) / XENFS_PAGE_SIZE;
}

#endif /* XENFS_RING_H */
