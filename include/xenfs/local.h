/*
 * XenFS local transport handshake (public).
 *
 * The local transport stands in for Xen grant tables and event channels
 * with a memfd and eventfds, so that frontend and backend can run as two
 * processes of one host (tests, dom0-local mounts, containers).  The
 * frontend connects to the backend's per-domain unix socket (the socket it
 * reaches *is* its domain identity), sends one struct xenfs_local_hello with
 * SCM_RIGHTS descriptors, and reads one struct xenfs_local_welcome.  The
 * socket then stays open for the life of the connection: EOF on either side
 * means the peer is gone.
 *
 * Descriptors sent with the hello, in this order:
 *   [0]                 memfd of exactly xenfs_region_size(layout) bytes
 *   [1 + 2q]            eventfd the frontend writes to kick the backend (queue q)
 *   [2 + 2q]            eventfd the backend writes to kick the frontend (queue q)
 */
#ifndef XENFS_LOCAL_H
#define XENFS_LOCAL_H

#include <stdint.h>
#include "ring.h"

#define XENFS_LOCAL_HELLO_MAGIC		0x4c4e4658u	/* "XFNL" */
#define XENFS_LOCAL_WELCOME_MAGIC	0x574e4658u	/* "XFNW" */
#define XENFS_TAG_MAX			64u		/* incl. NUL */

enum xenfs_local_flags {
	XENFS_LOCAL_F_RO = 1u << 0,	/* frontend asks for a read-only mount */
	/* addition (issue 8), welcome only: the export is noexec, mount it
	 * MS_NOEXEC (the backend also refuses exec opens) */
	XENFS_LOCAL_F_NOEXEC = 1u << 1,
};

struct xenfs_local_hello {
	uint32_t magic;			/* XENFS_LOCAL_HELLO_MAGIC */
	uint16_t version_min;		/* protocol versions the frontend speaks */
	uint16_t version_max;
	struct xenfs_layout layout;	/* shape of the shared region */
	uint32_t flags;			/* enum xenfs_local_flags */
	uint32_t pad;
	char tag[XENFS_TAG_MAX];	/* export tag, NUL-terminated */
};

struct xenfs_local_welcome {
	uint32_t magic;			/* XENFS_LOCAL_WELCOME_MAGIC */
	uint16_t version;		/* chosen protocol version */
	uint16_t pad;
	int32_t error;			/* 0, or a positive errno */
	uint32_t flags;			/* granted flags (RO forced by policy) */
	char message[232];		/* human-readable reason when error != 0 */
};

_Static_assert(sizeof(struct xenfs_local_hello) == 96, "hello size");
_Static_assert(sizeof(struct xenfs_local_welcome) == 248, "welcome size");

#endif /* XENFS_LOCAL_H */
