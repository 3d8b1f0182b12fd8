/*
 * Channels between xenfsd's privileged parent and its per-domain worker
 * processes (backend/priv.c, backend/worker.c; docs/security.md,
 * "Sandbox").  A channel is one end of a SOCK_SEQPACKET socketpair: one
 * message per datagram, a fixed header, a payload of at most
 * BK_MSG_MAX bytes and at most one descriptor (SCM_RIGHTS).
 *
 * Each channel carries requests one way and their replies the other.
 * bk_chan_call() serializes callers with the channel's mutex, matches the
 * reply by id (a late reply to a call that timed out is discarded) and
 * bounds the wait.  One-way messages (bk_chan_send: ADOPT_LOCAL, the
 * connection notices) travel only in the request direction and get no
 * reply, so they are never mistaken for one.
 *
 * Trust: the parent treats everything a worker sends as hostile (a
 * worker faces a guest and may be compromised): lengths are checked
 * against the datagram, strings are bounded, a descriptor that comes with
 * a message that should not carry one is closed.  The worker trusts the
 * parent.
 */
#ifndef XF_BACKEND_CHAN_H
#define XF_BACKEND_CHAN_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs.h"			/* struct fs_stats */

#define BK_MSG_MAX	(128 * 1024)

enum bk_msg_type {
	/* parent -> worker, "main" channel (worker's main loop) */
	BK_M_CONFIG = 1,	/* config text; reply: status, message */
	BK_M_ADOPT_LOCAL,	/* + fd: an accepted local client (one-way) */
	BK_M_ADOPT_XEN,		/* struct bk_m_adopt_xen; reply: rid */
	BK_M_STOP,		/* struct bk_m_stop */
	BK_M_INFO,		/* u64 rid; reply: struct bk_m_info */
	BK_M_RELOAD,		/* config text; reply: status, message */
	BK_M_SHUTDOWN,		/* stop everything and exit */
	/* parent -> worker, "ctl" channel (worker's control thread) */
	BK_M_FREEZE,		/* int32 timeout_ms; reply: status, message */
	BK_M_THAW,		/* reply: status, message */
	/* worker -> parent, "stream" channel */
	BK_M_EVENT,		/* xf_stream_encode payload; reply: u64 seq */
	/* worker -> parent, "misc" channel */
	BK_M_VERDICT,		/* struct bk_m_verdict + path, + fd */
	BK_M_CONN_UP,		/* struct bk_m_info (one-way) */
	BK_M_CONN_DOWN,		/* struct bk_m_info, rid set (one-way) */
	BK_M_REPLY = 100,
};

struct bk_msg_hdr {
	uint32_t type;
	uint32_t len;		/* payload bytes after the header */
	int32_t status;		/* replies: 0 or -errno */
	uint32_t pad;
	uint64_t id;		/* request id, echoed by the reply */
};

#define BK_NAME_MAX	256	/* domain, export tag, with NUL */

/* A connection as the parent shows it (INFO reply, CONN_UP). */
struct bk_m_info {
	uint64_t rid;
	char domain[BK_NAME_MAX];
	char tag[BK_NAME_MAX];
	char transport[16];
	uint32_t domid, nr_queues;
	int32_t readonly, frozen;
	int64_t since;
	struct fs_stats stats;		/* plain counters: same binary */
};

struct bk_m_stop {
	uint64_t rid;
	char why[128];
};

struct bk_m_adopt_xen {
	uint32_t domid;
	uint32_t readonly;
	uint32_t offer_size;	/* sizeof(struct xf_xen_offer) that follows */
	uint32_t pad;
	char tag[BK_NAME_MAX];
};

struct bk_m_verdict {
	uint32_t open_flags;
	uint32_t on_open;
	char tag[BK_NAME_MAX];
	/* followed by the export-relative path, no NUL */
};

struct bk_chan {
	int fd;
	pthread_mutex_t lock;	/* one call at a time */
	uint64_t next_id;
};

void bk_chan_init(struct bk_chan *ch, int fd);

/* One message; sendfd -1 for none.  0 or -errno. */
int bk_chan_send(int fd, uint32_t type, uint64_t id, int32_t status,
		 const void *p, size_t len, int sendfd);

/*
 * Receive one message into h and buf (cap bytes); *fdp gets a received
 * descriptor or -1 (fdp NULL: any descriptor is closed).  Returns the
 * payload length, -ECONNRESET at EOF, -EMSGSIZE for a datagram that did
 * not fit (it is consumed) or another -errno.
 */
ssize_t bk_chan_recv(int fd, struct bk_msg_hdr *h, void *buf, size_t cap,
		     int *fdp);

/* Wait up to timeout_ms (-1: forever) for fd to be readable: 1, 0 on
 * timeout, -errno. */
int bk_chan_wait(int fd, int timeout_ms);

/*
 * Request and reply under ch->lock.  The reply's payload goes to rbuf
 * (rcap bytes, *rlen its length; rbuf may be NULL).  Returns the reply's
 * status, or -ETIMEDOUT, -ECONNRESET, -EPROTO.
 */
int bk_chan_call(struct bk_chan *ch, uint32_t type, const void *p,
		 size_t len, int sendfd, void *rbuf, size_t rcap,
		 size_t *rlen, int timeout_ms);

#endif /* XF_BACKEND_CHAN_H */
