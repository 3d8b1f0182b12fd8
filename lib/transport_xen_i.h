/*
 * Xen transport internals shared by lib/transport_xen.c (both sides) and
 * the backend's device manager (backend/xen.c): xenstore key names, xenbus
 * states and the backend-side accept call.  The protocol these names make
 * up is specified in docs/xen.md; keep the two in step.
 *
 * Trust: every value read from a frontend directory was written by the
 * guest and is parsed with xf_xen_parse_u32() (decimal, bounded, no sign,
 * no trailing junk) before use.
 */
#ifndef XF_TRANSPORT_XEN_I_H
#define XF_TRANSPORT_XEN_I_H

#include <stddef.h>
#include <stdint.h>

#include "transport.h"

struct xs_handle;

/* xenbus states, numerically as in Xen's public io/xenbus.h */
enum xf_xenbus_state {
	XF_XB_UNKNOWN		= 0,
	XF_XB_INITIALISING	= 1,
	XF_XB_INITWAIT		= 2,
	XF_XB_INITIALISED	= 3,
	XF_XB_CONNECTED		= 4,
	XF_XB_CLOSING		= 5,
	XF_XB_CLOSED		= 6,
};

#define XF_XEN_DEVTYPE		"xenfs"
/* directories (printf formats) */
#define XF_XEN_FE_FMT		"/local/domain/%u/device/xenfs/%u"
#define XF_XEN_BE_FMT		"/local/domain/0/backend/xenfs/%u/%u"

/* keys common to both directories */
#define XF_XK_STATE		"state"
#define XF_XK_TAG		"tag"
/* backend directory, written by the backend */
#define XF_XK_FRONTEND		"frontend"
#define XF_XK_FRONTEND_ID	"frontend-id"
#define XF_XK_VERSIONS		"versions"
#define XF_XK_MAX_QUEUES	"max-queues"
#define XF_XK_MAX_RING_ORDER	"max-ring-order"
#define XF_XK_MAX_REGION_PAGES	"max-region-pages"
#define XF_XK_GRANTED_FLAGS	"granted-flags"
#define XF_XK_ERROR		"error"
/* frontend directory: backend/backend-id by the backend, rest by the guest */
#define XF_XK_BACKEND		"backend"
#define XF_XK_BACKEND_ID	"backend-id"
#define XF_XK_VERSION		"version"
#define XF_XK_NUM_QUEUES	"num-queues"
#define XF_XK_RING_ORDER	"ring-order"
#define XF_XK_BUF_SIZE		"buf-size"
#define XF_XK_FLAGS		"flags"
#define XF_XK_REGION_PAGES	"region-pages"
#define XF_XK_REF_DIR_FMT	"ref-dir-%u"		/* grant of directory page i */
#define XF_XK_EVTCHN_FMT	"event-channel-%u"	/* port of queue q */

/* One directory page lists this many grant refs (uint32_t, little endian). */
#define XF_XEN_REFS_PER_PAGE	(XENFS_PAGE_SIZE / sizeof(uint32_t))

/* The flag bits of "flags"/"granted-flags" (same values as the local
 * transport's enum xenfs_local_flags). */
#define XF_XEN_F_RO		1u
#define XF_XEN_F_NOEXEC		2u	/* granted only: mount MS_NOEXEC */
#define XF_XEN_F_KNOWN		(XF_XEN_F_RO | XF_XEN_F_NOEXEC)

/* Strict decimal parse of an untrusted xenstore value: 0 or -EINVAL. */
int xf_xen_parse_u32(const char *s, uint32_t max, uint32_t *out);

/*
 * Largest reference directory an offer carries: enough for the largest
 * region xenfs.conf allows ([global] max-region <= 1 GiB, policy/config.c).
 * A layout needing more is refused whatever max_region says.
 */
#define XF_XEN_OFFER_MAX_REGION	(1ull << 30)
#define XF_XEN_OFFER_MAX_DIR	\
	(XF_XEN_OFFER_MAX_REGION / XENFS_PAGE_SIZE / XF_XEN_REFS_PER_PAGE)

/*
 * What a frontend offered, as read from its xenstore directory: the
 * layout, the grant refs of the reference directory and one port per
 * queue.  Flat (no pointers): xenfsd's privileged parent reads it and
 * sends it as raw bytes to the domain's worker process, which maps it.
 * The receiver must treat it as untrusted (xf_xen_back_map_offer checks
 * every field again).
 */
struct xf_xen_offer {
	uint32_t domid;
	uint32_t flags;			/* asked by the frontend: XF_XEN_F_* */
	struct xenfs_layout layout;
	uint32_t npages;		/* region pages, = the layout's */
	uint32_t ndir;			/* reference directory pages */
	uint32_t dir_refs[XF_XEN_OFFER_MAX_DIR];
	uint32_t ports[XENFS_MAX_QUEUES];	/* frontend's unbound ports */
};
_Static_assert(XF_XEN_OFFER_MAX_DIR == 256, "1 GiB of refs in 256 pages");

/*
 * Backend, step 1 (no grant or event channel touched): read and validate
 * every value the frontend of domain domid published in fe_path (version,
 * layout against max_queues and max_region, page count, directory grants,
 * ports) into *o.  0, or -errno with err filled for the frontend's error
 * node and the log.
 */
int xf_xen_back_read_offer(struct xs_handle *xs, uint32_t domid,
			   const char *fe_path, uint32_t max_queues,
			   uint64_t max_region, struct xf_xen_offer *o,
			   char *err, size_t errlen);

/*
 * Backend, step 2 (no xenstore): check every field of o again (it may
 * have crossed a process boundary), map the reference directory
 * read-only, copy the refs out, unmap it, map the whole region as one
 * contiguous range, check the control page's magic and bind one
 * interdomain port per queue (the spurious first event of each bind is
 * drained).  On success *out is a connection (peer_fd -1: whoever speaks
 * xenstore watches the frontend's state); on failure -errno with err
 * filled.  Main thread of the process that serves the connection.
 */
int xf_xen_back_map_offer(const struct xf_xen_offer *o, uint32_t max_queues,
			  uint64_t max_region, struct xf_conn **out, char *err,
			  size_t errlen);

/*
 * Backend, both steps in one process (xenfsd --no-sandbox, the probe):
 * read the offer, map it; *flags are the flags the frontend asked for.
 */
int xf_xen_back_accept(struct xs_handle *xs, uint32_t domid,
		       const char *fe_path, uint32_t max_queues,
		       uint64_t max_region, struct xf_conn **out,
		       uint32_t *flags, char *err, size_t errlen);

/* Counters for leak checks in tests: live mapped pages and bound ports
 * held by backend-side connections of this process (the one that called
 * xf_xen_back_map_offer: a worker, or xenfsd with --no-sandbox). */
void xf_xen_back_counts(uint64_t *pages, uint64_t *ports);

#endif /* XF_TRANSPORT_XEN_I_H */
