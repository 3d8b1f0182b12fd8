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
 * Backend: accept the frontend whose directory is fe_path (domain domid).
 * Reads and validates every value the frontend published (version,
 * layout against max_queues and max_region, page count, directory grants,
 * ports), maps the reference directory read-only, copies the refs out,
 * unmaps it, maps the whole region as one contiguous range, checks the
 * control page's magic and binds one interdomain port per queue (the
 * spurious first event of each bind is drained).  On success *out is a
 * connection (peer_fd -1: backend/xen.c watches the frontend state) and
 * *flags the flags the frontend asked for; on failure -errno with err
 * filled for the frontend's error node and the log.  Main thread.
 */
int xf_xen_back_accept(struct xs_handle *xs, uint32_t domid,
		       const char *fe_path, uint32_t max_queues,
		       uint64_t max_region, struct xf_conn **out,
		       uint32_t *flags, char *err, size_t errlen);

/* Counters for leak checks in tests: live mapped pages and bound ports
 * held by backend-side connections of this process. */
void xf_xen_back_counts(uint64_t *pages, uint64_t *ports);

#endif /* XF_TRANSPORT_XEN_I_H */
