/*
 * XenFS services plugin API (public).  A plugin is a shared object loaded
 * by xenfs-services; it sees only this header and <xenfs/event.h>.
 *
 * A plugin exports one symbol:
 *
 *	const struct xenfs_plugin *xenfs_plugin_entry(void);
 *
 * returning a pointer to a static const struct (use designated
 * initializers).  The host copies min(struct_size, sizeof(what the host
 * knows)) bytes of it into a zeroed struct of its own, so:
 *   - a plugin built against an older header (smaller struct_size) has
 *     its missing tail callbacks read as NULL = "not implemented";
 *   - a plugin built against a newer header has callbacks the host does
 *     not know ignored.
 * The host refuses a plugin whose major ABI version (abi_version >> 16)
 * differs from XENFS_PLUGIN_ABI_MAJOR.  New members are only ever appended
 * at the end, with a "valid from ABI 1.N" marker.
 *
 * Process and threading model: each plugin runs in its OWN child process
 * of xenfs-services (fork + exec of xenfs-services --plugin NAME), so a
 * crash or a hang costs only that plugin: the parent restarts it with
 * exponential backoff (1 s doubling to 30 s) and kills it when one
 * on_event call exceeds the watchdog (60 s).  Inside the child every
 * callback is called from the same single thread, never concurrently,
 * in this order: init, then any interleaving of on_event / verdict /
 * on_resync, then fini (fini is not called after a crash or a kill).
 * A plugin may start its own threads; it must join them in fini.
 *
 * Delivery guarantee: events reach on_event in journal order, in batches.
 * The host commits the consumer cursor (STATE_DIR/journal/cursors/NAME)
 * only after on_event returned 0 for a batch, so after a crash or restart
 * the plugin sees again exactly the events after its last committed
 * batch: nothing missed, nothing delivered twice after a commit (the
 * uncommitted batch may be delivered again: make handling idempotent,
 * e.g. keyed on seq or on (dev, ino)).  When records were trimmed before
 * the plugin read them (it lagged beyond [services] journal-max), or the
 * journal reports lost records, on_resync is called instead: the plugin
 * must treat its state for that domain/export as stale (re-crawl).
 */
#ifndef XENFS_PLUGIN_H
#define XENFS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <xenfs/event.h>

#define XENFS_PLUGIN_ABI_MAJOR	1u
#define XENFS_PLUGIN_ABI_MINOR	0u
#define XENFS_PLUGIN_ABI_VERSION \
	((XENFS_PLUGIN_ABI_MAJOR << 16) | XENFS_PLUGIN_ABI_MINOR)

/* Log priorities for xenfs_host_services.log (same as syslog's). */
#define XENFS_LOG_ERR		3
#define XENFS_LOG_WARNING	4
#define XENFS_LOG_INFO		6
#define XENFS_LOG_DEBUG		7

/*
 * What the host offers a plugin.  The table and everything it points to
 * stay valid from init until fini returns; the plugin may keep the
 * pointer.  Every function may be called from any thread of the plugin.
 * Members are appended only; check struct_size before using one marked
 * with a later ABI version.
 */
struct xenfs_host_services {
	uint32_t abi_version;	/* host's XENFS_PLUGIN_ABI_VERSION */
	uint32_t struct_size;	/* sizeof(struct xenfs_host_services) */
	/* ---- valid from ABI 1.0 ---- */

	/* Log a line under the plugin's name (printf format; no newline
	 * needed).  prio is XENFS_LOG_*.  Goes where xenfs-services logs. */
	void (*log)(int prio, const char *fmt, ...)
		__attribute__((format(printf, 2, 3)));

	/*
	 * Value of `key` in config `section` ("scan", "index", "services",
	 * "global", "domain vm1", "export shared"), with the config parser's
	 * defaults applied; NULL if unset.  The string is owned by the host
	 * and valid until fini (the host does not reload a running plugin's
	 * config: it restarts the plugin instead).
	 */
	const char *(*config_get)(const char *section, const char *key);

	/*
	 * Send one request line to xenfsd's control socket ("status json",
	 * "guests json", "freeze vm1", "thaw vm1", "head"; see
	 * docs/control.md) and wait for the answer.  On success returns 0
	 * and *reply is a malloc'ed NUL-terminated body the plugin frees
	 * with free(); on failure returns -errno and, for an "ERR" answer,
	 * *reply holds the message (also to be freed) or NULL.
	 */
	int (*control)(const char *request, char **reply);

	const char *state_dir;	/* [global] state-dir: the plugin may keep
				 * its data in state_dir/NAME/ (created by
				 * the host, owned by the plugin) */
	const char *plugin_name;
};

/* Answers of verdict(). */
enum xenfs_verdict {
	XENFS_VERDICT_ALLOW = 0,
	XENFS_VERDICT_DENY = 1,	/* the guest's open fails with EACCES */
};

/* What verdict() is asked about.  Borrowed for the call only. */
struct xenfs_verdict_req {
	const char *domain;	/* who opens */
	const char *export_tag;
	const char *path;	/* export-relative, guest-chosen bytes */
	uint64_t dev, ino;	/* identity; the answer is cached on */
	uint64_t size;		/* (dev, ino, size, ctime) by xenfsd */
	int64_t ctime_sec;
	uint32_t ctime_nsec;
	uint32_t flags;		/* open flags (O_ACCMODE etc.) */
	int fd;			/* read-only descriptor of the file, owned
				 * by the host: do not close; valid for the
				 * call only (dup it to keep it) */
};

struct xenfs_plugin {
	uint32_t abi_version;	/* XENFS_PLUGIN_ABI_VERSION built against */
	uint32_t struct_size;	/* sizeof(struct xenfs_plugin) */
	const char *name;	/* [A-Za-z0-9._-], <= 64: cursor and log name */
	/* ---- valid from ABI 1.0 ---- */

	/*
	 * Called once in the plugin's process.  svc: see above.  *state is
	 * the plugin's own pointer, handed back to every callback.  Returns
	 * 0 or -errno (the host logs it and retries later with backoff).
	 */
	int (*init)(const struct xenfs_host_services *svc, void **state);

	/*
	 * A batch of n >= 1 events, in journal order.  batch[] and every
	 * event and string in it are owned by the host and valid only for
	 * this call (copy what you keep).  Return 0 when the batch is
	 * handled (the cursor moves past it) or -errno to have the same
	 * batch redelivered after a backoff (1 s doubling to 30 s).
	 * Runtime bounded by the host's watchdog: a call that takes longer
	 * gets the process killed and restarted.
	 */
	int (*on_event)(void *state, const struct xenfs_event *const *batch,
			size_t n);

	/*
	 * Optional (NULL: this plugin never gives verdicts).  May domain
	 * open the file?  Called synchronously while a guest's open waits,
	 * so answer fast (xenfsd gives up after [services]
	 * verdict-timeout-ms and applies the domain's fail-open/closed
	 * policy).  Returns enum xenfs_verdict, or -errno = cannot decide
	 * (treated like a timeout).
	 */
	int (*verdict)(void *state, const struct xenfs_verdict_req *req);

	/*
	 * Optional.  Events were lost for this domain and export ("" and ""
	 * = for everything): a full re-crawl is needed.  Strings borrowed
	 * for the call.  Returns 0, or -errno to be called again after a
	 * backoff (the cursor does not move past the gap until it succeeds).
	 */
	int (*on_resync)(void *state, const char *domain,
			 const char *export_tag);

	/* Optional.  Orderly shutdown: release state.  Not called after a
	 * crash or a watchdog kill. */
	void (*fini)(void *state);
};

/* The one symbol a plugin exports. */
const struct xenfs_plugin *xenfs_plugin_entry(void);
typedef const struct xenfs_plugin *(*xenfs_plugin_entry_fn)(void);

#endif /* XENFS_PLUGIN_H */
