/*
 * The backend's filesystem layer: executes FUSE requests of one guest
 * connection against one export.  This header is the boundary between the
 * connection layer (backend/conn.c: transport, rings, worker threads,
 * policy admission) and the operation handlers (backend/fs_*.c, split by
 * family: names, data, attributes+xattrs, locks).
 *
 * Trust: struct fs_req holds *private copies* of the request header and
 * arguments, made by the connection layer after bounding the frame length;
 * handlers may read them freely.  The two pointers into shared memory are
 * marked: wdata (WRITE payload, handed to pwrite once and never inspected)
 * and out (the reply area: write-only, never read back).
 *
 * Threading: fs_handle() is called concurrently from the connection's
 * queue workers (one per ring).  An fs_session is shared by those workers;
 * its inode and file-handle tables are internally locked.
 */
#ifndef XF_BACKEND_FS_H
#define XF_BACKEND_FS_H

#include <stdint.h>
#include <sys/types.h>
#include <linux/fuse.h>

struct fs_session;
struct xf_policy;		/* policy/policy.h */

/* What the connection layer tells the fs layer about a new connection. */
struct fs_session_params {
	const char *domain;		/* domain name, e.g. "vm1" */
	const char *export_tag;		/* e.g. "shared" */
	const char *export_path;	/* absolute host path of the export root */
	int export_fd;			/* O_PATH|O_DIRECTORY fd of the root; fs takes ownership */
	int readonly;			/* policy (or frontend) made it read-only */
	uint32_t max_write;		/* largest payload that fits a buffer */
	uint32_t max_inodes_cached;	/* bound on O_PATH descriptors kept open */
	const struct xf_policy *policy;	/* borrowed; outlives the session */
};

/* A request as the fs layer sees it. */
struct fs_req {
	struct fuse_in_header in;	/* private copy; in.len already checked */
	const void *arg;		/* private copy of the bytes after the header */
	uint32_t arglen;		/* for WRITE: only sizeof(fuse_write_in) */
	const void *wdata;		/* WRITE only: payload in SHARED memory */
	uint32_t wlen;			/* WRITE only: payload length (bounded) */
	void *out;			/* SHARED reply area: write-only */
	uint32_t outcap;		/* its size (>= sizeof(fuse_out_header) + 4096) */
	void *token;			/* for fs_complete() of deferred replies */
};

/* Return values of fs_handle() besides a reply length. */
#define FS_NO_REPLY	0u		/* FORGET, BATCH_FORGET, INTERRUPT */
#define FS_DEFERRED	0xffffffffu	/* reply comes later via fs_complete() */

/*
 * Create a session; returns NULL with errno set.  Ownership of
 * params->export_fd passes to the session even on failure.
 */
struct fs_session *fs_session_new(const struct fs_session_params *params);

/*
 * Handle one request.  Writes a complete FUSE reply frame (out_header with
 * len, error as -errno, unique) into req->out and returns its length, or
 * FS_NO_REPLY, or FS_DEFERRED (the handler keeps req->token and req->out
 * and later calls fs_complete(); the request's private copies are NOT kept
 * valid after return, so a deferring handler copies what it needs).
 * Never fails: every error becomes a FUSE error reply.
 */
uint32_t fs_handle(struct fs_session *s, struct fs_req *req);

/*
 * Implemented by the connection layer: finish a deferred request whose
 * reply (len bytes) is now in its out area.  Thread-safe; may be called
 * from any thread.
 */
void fs_complete(void *token, uint32_t len);

/*
 * Interrupt/teardown support: abort deferred requests (e.g. blocked
 * SETLKW) so that the session can be destroyed.  Their fs_complete() is
 * still called (with an EINTR reply).  Called from the connection layer
 * before fs_session_free().
 */
void fs_session_cancel_deferred(struct fs_session *s);

/*
 * Make a live session read-only (config reload downgraded rw -> ro): from
 * now on requests that change the export get EROFS.  Thread-safe with
 * respect to concurrent fs_handle() (an atomic flag is enough).  Optional:
 * the connection layer calls it through a weak reference and also refuses
 * the changing opcodes itself, so an fs layer without it still links.
 */
void fs_session_set_readonly(struct fs_session *s, int readonly);

/*
 * Apply the identity map, quota limits and noexec of this session's
 * domain and export from cfg (docs/security.md): at connect and after
 * every reload, while requests run (the map is swapped atomically).
 * 0 or -EINVAL/-ENOMEM (the old policy stays).  Main thread.
 */
struct xf_config;
int fs_session_set_policy(struct fs_session *s, const struct xf_config *cfg);

/* Release everything: descriptors, tables.  No fs_handle() may run. */
void fs_session_free(struct fs_session *s);

/* Live counters for xenfsctl status; a consistent-enough snapshot. */
struct fs_stats {
	uint64_t ops;			/* requests handled */
	uint64_t bytes_read;
	uint64_t bytes_written;
	uint64_t inodes;		/* live nodeids */
	uint64_t fds_open;		/* O_PATH + open file descriptors held */
	uint64_t handles;		/* open file/dir handles */
	/* additions (issue 8): quota of the session, 0 limit = none */
	uint64_t quota_bytes_used, quota_bytes_limit;
	uint64_t quota_inodes_used, quota_inodes_limit;
};
void fs_session_stats(struct fs_session *s, struct fs_stats *st);

/* xenfsd at startup, before any session: forget the quota counters that
 * processes shared (<state-dir>/quota/<tag>.live), so that usage comes
 * from the saved .usage files (or a scan) as after any restart. */
void fs_quota_reset_shared(const char *state_dir);

/*
 * Emit one MODIFY event for every open file written since its last one.
 * xenfsd calls it once a domain is frozen and drained, so that the
 * stream's freeze record follows every content change of the domain,
 * even of files the guest keeps open for writing (logs, databases), which
 * otherwise get their MODIFY only at flush or release.  Any thread.
 */
void fs_session_flush_events(struct fs_session *s);

/* True for opcodes that change the export (used by freeze admission). */
int fs_opcode_mutates(uint32_t opcode);

/* ---- operation events (consumed by the operation stream, issue 4) ---- */

enum fs_event_op {
	FS_EV_CREATE = 1,	/* regular file created (CREATE, MKNOD S_IFREG) */
	FS_EV_MKDIR,
	FS_EV_MKNOD,		/* fifo, socket */
	FS_EV_SYMLINK,
	FS_EV_LINK,
	FS_EV_MODIFY,		/* a written file was flushed/released (coalesced) */
	FS_EV_SETATTR,		/* mode/owner/times; truncate sets FS_EV_F_SIZE */
	FS_EV_RENAME,		/* path -> path2 */
	FS_EV_UNLINK,
	FS_EV_RMDIR,
	FS_EV_XATTR,		/* set or remove */
};

#define FS_EV_F_SIZE	1u	/* SETATTR changed the size */
#define FS_EV_F_EXCHANGE 2u	/* RENAME was RENAME_EXCHANGE */

struct fs_event {
	enum fs_event_op op;
	uint32_t flags;
	uint64_t dev, ino;		/* identity of the object */
	uint32_t generation;		/* from the file handle if known, else 0 */
	const char *path;		/* export-relative, starts with '/' */
	const char *path2;		/* RENAME target, LINK new name; else NULL */
	uint64_t size;			/* after the operation */
	int64_t mtime_sec;		/* after the operation */
	uint32_t mtime_nsec;
	uint32_t mode;			/* st_mode after the operation */
};

/*
 * Implemented outside the fs layer (the stream writer).  Called by a
 * handler after the operation succeeded and before it returns its reply
 * (so the event is durable before the guest learns of success).  `s`
 * identifies domain and export.  Must not fail the operation: the stream
 * layer reports its own errors.
 */
void fs_emit_event(struct fs_session *s, const struct fs_event *ev);

/* Accessors for the stream layer. */
const char *fs_session_domain(const struct fs_session *s);
const char *fs_session_export(const struct fs_session *s);

/*
 * Verdict hook (backend/verdict.c, issue 4).  Call in OPEN (and CREATE
 * is not needed: a new file is empty) of a regular file after the file
 * was opened (fd: the opened descriptor, any access mode) and before
 * replying; open_flags as the guest asked.  Returns 0 (allow) or -EACCES
 * (a verdict plugin denied it, or none answered in time and the domain
 * is fail-closed): then close fd and reply the error.  Cheap when
 * [scan] on-open is no (the default): one config lookup.  Thread-safe;
 * may block up to [services] verdict-timeout-ms.
 */
int bk_verdict_check(struct fs_session *s, int fd, uint32_t open_flags);

#endif /* XF_BACKEND_FS_H */
