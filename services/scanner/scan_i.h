/*
 * Scanner service, private header: what the scanner plugin (plugin.c, in
 * a xenfs-services child), the xenfs-scan CLI (cli.c) and the scanning
 * engine process (scand.c, xenfs-scand) share.
 *
 *   engine protocol (proto.c)   plugin/CLI <-> xenfs-scand over a
 *                               SOCK_SEQPACKET socketpair: a request
 *                               carries one read-only descriptor
 *                               (SCM_RIGHTS), a reply carries only a
 *                               verdict and a signature name
 *   database (db.c)             STATE_DIR/scanner/scan.db (SQLite, WAL):
 *                               detections, the verdict cache, counters,
 *                               full-scan checkpoints
 *   actions (act.c)             confined open of an export file, policy
 *                               lookups, quarantine, release, restore
 *
 * Threads: none of this code is thread-safe by itself; each process uses
 * it from one thread.  Several processes (plugin, CLI) share the database
 * through SQLite's locking (busy timeout).
 *
 * Trust: xenfs-scand parses hostile files, so it is sandboxed and its
 * replies are bounded and checked here.  Paths come from guests: they are
 * only ever resolved beneath an export root (openat2 RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS) and escaped before they are printed.
 */
#ifndef XF_SCAN_I_H
#define XF_SCAN_I_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct sqlite3;

/* ---- logging: plugin and CLI plug in their own sink ---- */

#define SCAN_LOG_ERR	3
#define SCAN_LOG_WARN	4
#define SCAN_LOG_INFO	6
#define SCAN_LOG_DEBUG	7
typedef void (*scan_log_fn)(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
extern scan_log_fn scan_log;

/* ---- engine protocol ---- */

#define SCAN_MAGIC	0x4e435358u	/* "XSCN" */
#define SCAN_OP_SCAN	1u		/* + one descriptor */
#define SCAN_OP_INFO	2u

#define SCAN_CLEAN	0
#define SCAN_VIRUS	1

struct scan_req {
	uint32_t magic;
	uint32_t op;
	uint64_t id;
};

struct scan_rep {
	uint32_t magic;
	int32_t result;		/* SCAN_CLEAN, SCAN_VIRUS, or -errno */
	uint64_t id;		/* of the request; 0 = the startup report */
	uint64_t sigs;		/* signatures loaded */
	uint64_t db_version;	/* highest .cvd/.cld version, 0 if none */
	int64_t db_time;	/* newest database file's mtime */
	uint64_t scanned;	/* bytes the engine reports as scanned */
	char engine[32];	/* libclamav version */
	char name[456];		/* signature, or error message */
};
_Static_assert(sizeof(struct scan_rep) == 536, "scan_rep layout");

struct scand {
	pid_t pid;
	int fd;			/* -1: not running */
	uint64_t next_id;
	uint64_t first_id;	/* first request id of the running engine */
	int64_t last_spawn_ms;
	struct scan_rep info;	/* last startup/info report */
	/* replies read while waiting for another request's (pipelined
	 * requests, a retry among them); the oldest is dropped when full */
	struct scan_rep stash[8];
	int nstash;
	char db[4096];
	char tmp[4096];		/* base of the engine's temp dir, "" = auto */
	char tmpdir[4200];	/* the running engine's own temp dir */
	char exe[4096];
	int nice;		/* 1: lower CPU and I/O priority */
};

/* Where xenfs-scand is: $XENFS_SCAND, then hint (may be NULL) if it
 * exists, then XENFS_LIBEXECDIR/xenfs-scand. */
void scand_locate(struct scand *sd, const char *hint);
/* Start it and wait for its startup report (timeout_ms).  0, or -errno
 * with the reason in sd->info.name. */
int scand_start(struct scand *sd, int timeout_ms);
void scand_stop(struct scand *sd);
/* Scan fd (read-only, owned by the caller).  Returns SCAN_CLEAN,
 * SCAN_VIRUS (signature in sig), -ETIMEDOUT, -EPIPE (engine died; it is
 * restarted on the next call) or another -errno. */
int scand_scan(struct scand *sd, int fd, char *sig, size_t siglen,
	       int timeout_ms);
/* The same in two steps, so several requests can be in flight (replies
 * come in request order): submit hands fd over (the caller may close
 * its copy afterwards), collect waits for that request's verdict and
 * returns like scand_scan (-EPIPE: the engine died with it queued). */
int scand_submit(struct scand *sd, int fd, uint64_t *id);
int scand_collect(struct scand *sd, uint64_t id, char *sig, size_t siglen,
		  int timeout_ms);
int scand_info(struct scand *sd, int timeout_ms);
int64_t scan_now_ms(void);

/* ---- configuration view ---- */

/* Raw lookup of section/key (NULL if unset); the plugin wraps the host's
 * config_get, the CLI xf_config_get. */
typedef const char *(*scan_cfg_fn)(const char *section, const char *key);

enum scan_action { ACT_LOG = 0, ACT_BLOCK = 1, ACT_QUARANTINE = 2 };

struct scan_policy {
	scan_cfg_fn get;
	int on_write, on_open;
	uint64_t max_size;
	char **exclude;		/* NULL-terminated glob list */
	char qdir[4096];
	char db[4096];
	char tmp[4096];		/* [scan] tmp-dir, "" = auto */
	char state[4096];	/* STATE_DIR/scanner */
};

int scan_policy_load(struct scan_policy *p, scan_cfg_fn get,
		     const char *state_dir);
void scan_policy_free(struct scan_policy *p);
/* The action for a domain ("" = dom0 / unknown: the [scan] default). */
enum scan_action scan_policy_action(const struct scan_policy *p,
				    const char *domain);
const char *scan_action_name(enum scan_action a);
/* 1 if path (export-relative, "/..."), matches an exclude glob. */
int scan_policy_excluded(const struct scan_policy *p, const char *path);
/* "export TAG" path, or NULL. */
const char *scan_export_path(const struct scan_policy *p, const char *tag);

/* ---- database ---- */

enum scan_vresult { VR_CLEAN = 0, VR_INFECTED = 1, VR_RELEASED = 2 };

struct scan_ident {
	uint64_t dev, ino, size;
	int64_t ctime_sec;
	uint32_t ctime_nsec;
};
void scan_ident_of(struct scan_ident *id, const struct stat *st);

struct scan_detection {
	int64_t id;
	int64_t time;
	char vm[256];
	char export_tag[256];
	char path[4096];
	char signature[192];
	char action[16];
	char state[16];
	char qfile[4096];
	char source[16];		/* write, open, full */
	struct scan_ident ident;
	uint32_t mode, uid, gid;
};

int scan_db_open(const char *state, int readonly, struct sqlite3 **out);
void scan_db_close(struct sqlite3 *db);
/* Cached verdict of this exact identity: VR_* or -ENOENT. */
int scan_db_verdict_get(struct sqlite3 *db, const struct scan_ident *id,
			char *sig, size_t siglen);
int scan_db_verdict_put(struct sqlite3 *db, const struct scan_ident *id,
			int result, const char *sig);
/* Is this identity blocked (a detection in state "blocked")? */
int scan_db_blocked(struct sqlite3 *db, const struct scan_ident *id);
/* Insert a detection; *id_out gets its ID. */
int scan_db_detection_add(struct sqlite3 *db, const struct scan_detection *d,
			  int64_t *id_out);
int scan_db_detection_get(struct sqlite3 *db, int64_t id,
			  struct scan_detection *d);
int scan_db_detection_set(struct sqlite3 *db, int64_t id, const char *state,
			  const char *qfile);
/* The file (dev, ino) or export:path turned out clean: blocked/logged
 * detections of it become "cleaned".  Returns how many. */
int scan_db_cleaned(struct sqlite3 *db, const struct scan_ident *id,
		    const char *export_tag, const char *path);
/* The file export:path was deleted: its blocked/logged detections become
 * "deleted".  Returns how many. */
int scan_db_gone(struct sqlite3 *db, const char *export_tag,
		 const char *path);
/* Counters: add to a named integer, set a text value. */
int scan_db_stat_add(struct sqlite3 *db, const char *key, int64_t delta);
int scan_db_stat_set(struct sqlite3 *db, const char *key, const char *val);
int64_t scan_db_stat_int(struct sqlite3 *db, const char *key);
int scan_db_stat_text(struct sqlite3 *db, const char *key, char *buf,
		      size_t len);
int scan_db_exec(struct sqlite3 *db, const char *sql);

/* ---- actions ---- */

/* Open export-relative path beneath root read-only, no symlinks.
 * Returns fd or -errno. */
int scan_open_beneath(int rootfd, const char *path, int flags);
/* Open an export's root directory (O_PATH). */
int scan_open_root(const char *dir);

struct scan_hit {
	const char *vm, *export_tag, *path, *source;
	const char *signature;
	int fd;			/* the scanned descriptor */
	const struct stat *st;
};
/*
 * Act on a detection per the policy: record it, log it, and block or
 * quarantine.  rootfd: the export root.  Returns the detection ID (> 0)
 * or -errno; *final_action says what was done.
 */
int64_t scan_act(struct sqlite3 *db, const struct scan_policy *p,
		 int rootfd, const struct scan_hit *h,
		 enum scan_action *final_action);
/* Admin undo; 0 or -errno with a message in err. */
int scan_release(struct sqlite3 *db, const struct scan_policy *p,
		 int64_t id, char *err, size_t errlen);
int scan_restore(struct sqlite3 *db, const struct scan_policy *p,
		 int64_t id, char *err, size_t errlen);

/* Escape guest bytes for a log line or a terminal. */
const char *scan_esc(const char *s, char *buf, size_t len);

#endif /* XF_SCAN_I_H */
