/*
 * xenfsd internals shared between its modules: the main event loop, the
 * server state (config, connections) and the connection API that each
 * transport's acceptor uses.  Only backend/ includes this.
 *
 * Threads: the main thread runs the event loop (bk_loop_*), owns the
 * config and the list of connections, and runs every function here unless
 * a comment says otherwise.  Each connection has one worker thread per
 * queue (backend/conn.c) which only touches its own rings and calls
 * fs_handle(); workers talk to the main thread through the documented
 * per-connection lock and an eventfd.
 */
#ifndef XF_BACKEND_BK_H
#define XF_BACKEND_BK_H

#include <stdint.h>
#include <time.h>

#include "fs.h"
#include "policy.h"
#include "transport.h"

/* ---- event loop (backend/loop.c) ---- */

typedef void (*bk_loop_cb)(int fd, uint32_t events, void *arg);
/* Watch fd for epoll events; 0 or -errno.  Callbacks run on the main thread. */
int bk_loop_add(int fd, uint32_t events, bk_loop_cb cb, void *arg);
int bk_loop_mod(int fd, uint32_t events);
void bk_loop_del(int fd);
/* Run a callback on the main thread soon (thread-safe, from workers too). */
int bk_loop_defer(void (*fn)(void *arg), void *arg);
/* Run until bk_loop_stop(); returns 0. */
int bk_loop_run(void);
void bk_loop_stop(void);

/* ---- server state (backend/main.c) ---- */

struct bk_conn;

struct bk_server {
	struct xf_config *cfg;		/* current config; replaced on reload */
	int foreground;
	int no_sandbox;
	struct bk_conn *conns;		/* list of live connections */
	unsigned nconns;
	time_t started;
};

extern struct bk_server bk_srv;		/* the one server of this process */

/* ---- connections (backend/conn.c) ---- */

struct bk_conn_info {
	const char *domain;
	const char *tag;
	const char *transport;		/* "local" or "xen" */
	uint32_t domid;			/* Xen domid, or 0 for local */
	uint32_t nr_queues;
	int readonly;
	int frozen;
	time_t since;
	struct fs_stats stats;
};

/*
 * Start serving a connection whose transport is set up and whose domain
 * was admitted for tag (the caller checked xf_policy_access() and passes
 * the result as readonly).  Takes ownership of xc in all cases.  on_close
 * is called on the main thread after the connection stopped (peer gone,
 * broken ring, policy revoked): the transport acceptor then cleans its own
 * state (closes the socket, removes xenstore nodes).  Returns 0 or -errno.
 */
int bk_conn_start(struct xf_conn *xc, const char *domain, uint32_t domid,
		  const char *tag, int readonly,
		  void (*on_close)(struct bk_conn *c, void *arg), void *arg,
		  struct bk_conn **out);

/* Stop a connection: workers end, deferred requests are cancelled,
 * resources freed, on_close called.  Safe to call twice. */
void bk_conn_stop(struct bk_conn *c, const char *why);

void bk_conn_get_info(struct bk_conn *c, struct bk_conn_info *info);
void bk_conn_foreach(void (*fn)(struct bk_conn *c, void *arg), void *arg);

/*
 * Freeze a domain (every connection of it): post SYNCFS to its frontend
 * and wait for the acknowledgement while still serving (the flush's own
 * writes are admitted), then stop admitting requests that change the
 * export (fs_opcode_mutates), wait until none is in flight, and return 0.
 * Blocking until then (the caller is the control socket's thread, not the
 * main loop).  -ETIMEDOUT, -ENOENT (no such connected domain) or another
 * -errno with err filled.  Thaw resumes admission.
 */
int bk_domain_freeze(const char *domain, int timeout_ms, char *err,
		     size_t errlen);
int bk_domain_thaw(const char *domain, char *err, size_t errlen);

/* Re-check every live connection against a newly loaded config; those
 * whose access was revoked are stopped, those downgraded to ro get EROFS
 * for changes from now on. */
void bk_conns_reload(const struct xf_config *cfg);

/* ---- transports' acceptors ---- */

/* backend/local.c: listen on every [domain] local-socket. */
int bk_local_start(const struct xf_config *cfg);
void bk_local_reload(const struct xf_config *cfg);
void bk_local_stop(void);

/* backend/xen.c: create xenfs devices for configured domains (by name) and
 * serve them over the Xen transport (docs/xen.md).  start returns 0 also
 * when xenstore is unavailable (not a Xen dom0: transport off). */
int bk_xen_start(const struct xf_config *cfg);
void bk_xen_reload(const struct xf_config *cfg);
void bk_xen_stop(void);

/* ---- additions: loop internals, server, services hooks ---- */

/*
 * A caller-owned deferral (no allocation, so a worker can always report a
 * broken connection).  Queuing a node that is already queued is a no-op;
 * bk_loop_defer_cancel() unqueues it (call it before freeing the node).
 * fn and arg are set by the owner before queueing.
 */
struct bk_defer {
	struct bk_defer *next;		/* private to loop.c */
	void (*fn)(void *arg);
	void *arg;
	int queued;			/* private to loop.c */
};
int bk_loop_init(void);
int bk_loop_defer_node(struct bk_defer *d);	/* thread-safe */
void bk_loop_defer_cancel(struct bk_defer *d);	/* thread-safe */
void bk_loop_free(void);
/* Run the deferrals queued now (at shutdown, after the loop stopped and
 * before bk_loop_free drops what is left). */
void bk_loop_run_pending(void);

/* Stop every live connection (shutdown). */
void bk_conns_stop_all(const char *why);

/*
 * Reload the configuration from bk_srv.cfg->file as SIGHUP does: on
 * failure returns -errno with "file:line: what" in err and keeps the old
 * config; on success swaps it and pushes it to the acceptors, the
 * connections and the control socket.  Main thread.
 */
int bk_server_reload(char *err, size_t errlen);

/*
 * Services hooks, implemented by backend/events.c (the operation stream)
 * and backend/control.c (the control socket).  main.c calls them on the
 * main thread: *_start before serving (non-zero is fatal at startup),
 * bk_control_reload after a successful reload, *_stop at shutdown after
 * every connection stopped.
 */
int bk_stream_start(const struct xf_config *cfg);
void bk_stream_stop(void);
int bk_control_start(const struct xf_config *cfg);
void bk_control_stop(void);
void bk_control_reload(const struct xf_config *cfg);

/*
 * Services hooks, part 2 (backend/events.c, backend/dom0watch.c).
 * bk_stream_emit appends a record built by xenfsd itself (dom0 changes,
 * freeze/thaw markers); thread-safe; 0 or -errno (already logged).
 * bk_stream_head is the seq of the newest record, bk_stream_dir the
 * journal directory (NULL before start).  The dom0 watcher follows every
 * export's tree with inotify and emits origin-dom0 records; the fs layer's
 * own changes are suppressed through bk_dom0watch_note (any thread).
 */
struct xenfs_event;
int bk_stream_emit(struct xenfs_event *ev);
uint64_t bk_stream_head(void);
const char *bk_stream_dir(void);
int bk_dom0watch_start(const struct xf_config *cfg);
void bk_dom0watch_stop(void);
void bk_dom0watch_note(const char *export_tag, const char *path);

/*
 * Addition (issue 8), backend/sandbox.c: confine the calling queue
 * thread (and what it starts) further than its worker process is:
 * no_new_privs, Landlock to its export and the state directory, reduced
 * capabilities, the queue threads' seccomp allow-list.  0, or -errno and
 * the thread must not serve.  No-op with --no-sandbox.
 */
int bk_sandbox_worker(const char *domain, const char *export_path);

/*
 * Addition (issue 8), privilege separation (docs/security.md,
 * "Sandbox").  Unless --no-sandbox, xenfsd is a privileged parent that
 * never maps guest memory nor runs the fs layer: it listens, speaks
 * xenstore, owns the journal, the control socket and the services' verdict
 * sockets, and hands each connection to its domain's worker process
 * (backend/priv.c).  A worker (backend/worker.c) is xenfsd re-executed
 * with --worker DOMAIN in new mount, pid, network, IPC and UTS
 * namespaces whose root holds only that domain's exports; it runs the
 * transports' per-connection side, conn.c and the fs layer.
 *
 * In the parent, connections served by workers appear as proxy struct
 * bk_conn (conn.c): bk_conn_stop/get_info/foreach, bk_domain_freeze/thaw
 * and bk_conns_reload reach the worker over its channels.
 */
int bk_priv_on(void);		/* this process is the parent of workers */
int bk_is_worker(void);		/* this process is a domain's worker */

/* Parent, main thread: give an accepted local client socket (its hello
 * not yet read) to the domain's worker, spawning it if needed.  Takes fd
 * in every case.  0 or -errno with err filled. */
int bk_priv_adopt_local(const char *domain, int fd, char *err,
			size_t errlen);

/* Parent, main thread: serve a Xen frontend, in the domain's worker,
 * from the offer (grant refs, ports, layout) the parent read from
 * xenstore.  On
 * success *out is the proxy connection; on_close(proxy, arg) runs on the
 * main thread when it ends (as for bk_conn_start).  0 or -errno with err
 * filled. */
struct xf_xen_offer;
int bk_priv_adopt_xen(const char *domain, uint32_t domid, const char *tag,
		      int readonly, const struct xf_xen_offer *offer,
		      void (*on_close)(struct bk_conn *c, void *arg),
		      void *arg, struct bk_conn **out, char *err,
		      size_t errlen);

/* Worker, main thread (backend/xen.c): map an offer the parent read and
 * start serving it with bk_conn_start.  0 or -errno with err filled. */
int bk_xen_adopt(const char *domain, uint32_t domid, const char *tag,
		 int readonly, const struct xf_xen_offer *offer, char *err,
		 size_t errlen);

/* Worker, main thread (backend/local.c): serve an adopted client socket
 * as if it had been accepted on domain's listener.  Takes fd. */
int bk_local_adopt(const char *domain, int fd);

#endif /* XF_BACKEND_BK_H */
