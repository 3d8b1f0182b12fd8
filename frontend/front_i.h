/*
 * mount.xenfs internals shared by main.c (options, mount, lifetime) and
 * fwd.c (the forwarding workers).  Private to frontend/.
 *
 * Threads: the main thread sets everything up, then only supervises
 * (backend liveness, signals, worker exits).  One worker per queue moves
 * FUSE frames between its own /dev/fuse clone and its own ring; queue 0's
 * worker also serves the control channel and owns a short-lived syncfs
 * thread.  Workers share nothing mutable except struct fwd's end_reason
 * (atomic) and the eventfds listed there.
 */
#ifndef XF_FRONT_I_H
#define XF_FRONT_I_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "transport.h"

/* Why forwarding ended; the first reason recorded wins. */
enum fwd_end {
	FWD_RUNNING = 0,
	FWD_UNMOUNTED,		/* /dev/fuse said ENODEV: umount or abort */
	FWD_BACKEND_BROKEN,	/* protocol violation on a ring */
	FWD_LOCAL_ERROR,	/* our own resources failed */
	FWD_STOPPED,		/* the main thread asked */
};

struct fwd_queue;

struct fwd {
	/* set by main before fwd_start, read-only afterwards */
	struct xf_conn *conn;
	int fuse_fd;			/* the master /dev/fuse descriptor */
	const char *mountpoint;		/* absolute */
	dev_t mnt_dev;			/* st_dev of the mounted root */
	uint32_t max_write;		/* clamp for the INIT reply */

	/* runtime */
	int stop_fd;			/* eventfd: main -> workers, "stop" */
	int done_fd;			/* eventfd: workers -> main, "ended" */
	int end_reason;			/* enum fwd_end, atomic */
	uint32_t nq;
	struct fwd_queue *q;		/* nq of them */
};

/* Create every worker (clone fds, threads).  0 or -errno; on error
 * nothing is left running. */
int fwd_start(struct fwd *f);
/* Tell the workers to stop (if they have not already), wait for them and
 * release their resources.  The caller must have closed (or be about to
 * have closed) the master fuse fd so that requests in flight fail. */
void fwd_join(struct fwd *f);
/* Record an end reason (first wins) and wake the main thread. */
void fwd_set_end(struct fwd *f, int reason);

#endif /* XF_FRONT_I_H */
