/*
 * The parent's worker registry (backend/priv.c), as conn.c and main.c
 * see it; bk.h has the part the transports use.  Main thread unless
 * noted.
 */
#ifndef XF_BACKEND_PRIV_H
#define XF_BACKEND_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "chan.h"

struct bk_worker;
struct bk_conn;
struct xf_config;
struct xenfs_event;

/* Turn privilege separation on, with the text of the loaded config (the
 * workers parse the same bytes). */
int bk_priv_init(const char *text, size_t len);
/* After a reload: the text new workers and RELOAD get. */
int bk_priv_set_config(const char *text, size_t len);
/* Push a reloaded config to every worker; mark those whose namespace no
 * longer fits the domain's exports stale. */
void bk_priv_reload(const struct xf_config *cfg);
/* Shut every worker down (after their connections were stopped). */
void bk_priv_stop_all(void);

/* A proxy's operations, reaching its worker. */
int bk_priv_stop(struct bk_worker *w, uint64_t rid, const char *why);
int bk_priv_info(struct bk_worker *w, uint64_t rid, struct bk_m_info *info);
const char *bk_priv_worker_domain(const struct bk_worker *w);
pid_t bk_priv_worker_pid(const struct bk_worker *w);
/* conn.c counts proxies per worker: a stale worker goes at zero. */
void bk_priv_conn_count(struct bk_worker *w, int delta);

/* Control thread: freeze/thaw every worker of domain. */
int bk_priv_freeze(const char *domain, int timeout_ms, char *err,
		   size_t errlen);
int bk_priv_thaw(const char *domain, char *err, size_t errlen);

/* conn.c: proxy connections in the parent. */
int bk_conn_proxy_new(struct bk_worker *w, const struct bk_m_info *info,
		      void (*on_close)(struct bk_conn *c, void *arg),
		      void *arg, struct bk_conn **out);
struct bk_conn *bk_conn_proxy_find(struct bk_worker *w, uint64_t rid);
/* The worker said the connection ended, or the worker is gone: unlink,
 * on_close, free. */
void bk_conn_proxy_gone(struct bk_conn *c, const char *why);
void bk_conn_proxies_gone(struct bk_worker *w, const char *why);

/* conn.c, in a worker: find a connection by its id; fill the wire info. */
struct bk_conn *bk_conn_by_rid(uint64_t rid);
void bk_conn_wire_info(struct bk_conn *c, struct bk_m_info *info);

/* backend/verdict.c: [services] verdict-timeout-ms (default 2000). */
int bk_verdict_timeout_ms(const struct xf_config *cfg);

/* backend/verdict.c: the parent's decision on a file a worker is about to
 * let its guest open (rfd read-only, st its fstat).  0 or -EACCES. */
struct stat;
int bk_verdict_decide(const char *domain, const char *tag, const char *path,
		      int rfd, const struct stat *st, uint32_t open_flags,
		      int on_open);

/* backend/worker.c */
int bk_worker_main(const char *domain);
int bk_worker_emit(struct xenfs_event *ev);
int bk_worker_verdict(const char *tag, const char *path, int rfd,
		      uint32_t open_flags, int on_open);
void bk_worker_conn_up(struct bk_conn *c);
void bk_worker_conn_down(struct bk_conn *c);

/* backend/sandbox.c: in a fresh worker, before any guest: build the
 * namespace root (the domain's exports, the quota state, the Xen devices,
 * a private /proc), pivot into it, then no_new_privs, Landlock to what it
 * holds, the fs capability set.  0 or -errno with err filled. */
int bk_sandbox_process(const char *domain, const struct xf_config *cfg,
		       char *err, size_t errlen);

#endif /* XF_BACKEND_PRIV_H */
