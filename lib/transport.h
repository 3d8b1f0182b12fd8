/*
 * The transport interface: what the backend and the frontend need from a
 * connection, whatever carries it.  Two implementations exist:
 *   local  (transport_local.c)  memfd region + eventfd doorbells, handed
 *                               over a unix socket with SCM_RIGHTS
 *   xen    (transport_xen.c)    granted pages (gntshr / gnttab) + event
 *                               channels, advertised through xenstore
 * Everything above this interface (ring.c, the backend's request loop, the
 * frontend's forwarding loop) is identical for both.
 *
 * A connection is a contiguous mapping of the shared region (layout in
 * <xenfs/ring.h>) plus one doorbell per queue.  A doorbell is pollable:
 * xf_conn_event_fd() returns a descriptor that becomes readable when the
 * peer rang queue q; after waking, call xf_conn_event_ack() once, then
 * drain the ring (the ring, not the doorbell, is the source of truth).
 *
 * Threading: each queue's doorbell is used by exactly one thread (that
 * queue's worker); notify/ack on different queues may run concurrently.
 * destroy is called once, after every worker has stopped.
 */
#ifndef XF_TRANSPORT_H
#define XF_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <xenfs/ring.h>

struct xf_conn;

struct xf_transport_ops {
	const char *name;				/* "local", "xen" */
	/* ring the peer's doorbell for queue q; 0 or -errno */
	int (*notify)(struct xf_conn *c, uint32_t q);
	/* pollable descriptor signalled when the peer rings queue q */
	int (*event_fd)(struct xf_conn *c, uint32_t q);
	/* consume a wakeup on queue q (read the eventfd; or pending+unmask) */
	int (*event_ack)(struct xf_conn *c, uint32_t q);
	/* descriptor that becomes readable when the peer's connection state
	 * may have changed (local: the unix socket; xen: a xenstore watch),
	 * or -1 if the transport reports peer loss some other way */
	int (*peer_fd)(struct xf_conn *c);
	/* after peer_fd became readable: 0 if the peer is still connected,
	 * -ENOTCONN if it closed or died */
	int (*peer_check)(struct xf_conn *c);
	/* unmap the region, close doorbells and the peer descriptor, free priv */
	void (*destroy)(struct xf_conn *c);
};

struct xf_conn {
	const struct xf_transport_ops *ops;
	void *base;			/* shared region, mapped */
	size_t size;			/* == xenfs_region_size(&layout) */
	struct xenfs_layout layout;	/* validated copy */
	void *priv;			/* transport-private */
};

static inline int xf_conn_notify(struct xf_conn *c, uint32_t q)
{
	return c->ops->notify(c, q);
}
static inline int xf_conn_event_fd(struct xf_conn *c, uint32_t q)
{
	return c->ops->event_fd(c, q);
}
static inline int xf_conn_event_ack(struct xf_conn *c, uint32_t q)
{
	return c->ops->event_ack(c, q);
}
static inline int xf_conn_peer_fd(struct xf_conn *c)
{
	return c->ops->peer_fd ? c->ops->peer_fd(c) : -1;
}
static inline int xf_conn_peer_check(struct xf_conn *c)
{
	return c->ops->peer_check ? c->ops->peer_check(c) : 0;
}
static inline void xf_conn_destroy(struct xf_conn *c)
{
	if (c && c->ops)
		c->ops->destroy(c);
}

/* ---- local transport (transport_local.c) ---- */

/*
 * Frontend: create the region and doorbells for *layout, connect to the
 * unix socket at path, send the hello for tag/flags and wait for the
 * welcome.  On success *out is a connection (it owns the socket: its
 * peer_fd is the socket, EOF means the backend is gone) and *granted_flags
 * the flags the backend granted.  On failure returns -errno and fills
 * err/errlen with a message for the admin (the backend's reason when it
 * refused).
 */
int xf_local_connect(const char *path, const char *tag, uint32_t flags,
		     const struct xenfs_layout *layout, struct xf_conn **out,
		     uint32_t *granted_flags,
		     char *err, size_t errlen);

/*
 * Backend: receive a hello on an accepted socket.  Validates everything
 * (sizes, magic, layout against max_region, memfd size and seals, number
 * of descriptors) and maps the region.  Does not answer: the caller checks
 * policy for hello->tag and then calls xf_local_welcome().  Returns 0 with
 * *out set (the connection then owns sockfd: peer_fd returns it and
 * destroy closes it), or -errno with err filled (sockfd stays the
 * caller's, so it can still send a welcome carrying the error).
 */
struct xenfs_local_hello;
int xf_local_accept(int sockfd, uint64_t max_region,
		    struct xenfs_local_hello *hello, struct xf_conn **out,
		    char *err, size_t errlen);
/* Send the answer: error 0 (with granted flags) or a positive errno and a
 * message.  Returns 0 or -errno. */
int xf_local_welcome(int sockfd, int error, uint32_t flags,
		     const char *message);

/* ---- Xen transport (transport_xen.c); xenstore protocol in docs/xen.md ---- */

/*
 * Frontend (guest): find our device whose tag matches under
 * device/xenfs/ of this domain (created by the backend), share the region
 * for *layout and one unbound event channel per queue with backend_domid,
 * publish them, and walk the xenbus states to Connected.  peer_fd of the
 * result is a xenstore watch on the backend's state; destroy walks
 * Closing -> Closed and unshares.  Returns 0 or -errno with err filled.
 */
int xf_xen_front_connect(const char *tag, uint32_t backend_domid,
			 uint32_t flags, const struct xenfs_layout *layout,
			 struct xf_conn **out, uint32_t *granted_flags,
			 char *err, size_t errlen);

#endif /* XF_TRANSPORT_H */
