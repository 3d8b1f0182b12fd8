/*
 * The scanner plugin (scanner.so, loaded by xenfs-services): scans what
 * guests write and answers the verdict hook, under the [scan] policy.
 *
 *   on_event   CREATE/MODIFY/truncate (and the new name of a RENAME) of
 *              a regular file: open it read-only beneath its export root,
 *              look its identity (dev, ino, size, ctime) up in the cache,
 *              else hand the descriptor to xenfs-scand and act on the
 *              answer (act.c).  If the engine is down the batch is
 *              refused (-EAGAIN), so the host redelivers it: the cursor
 *              only moves past what was really scanned.
 *   verdict    xenfsd asks before a guest's open (when on-open is on):
 *              blocked versions are denied; an unknown version is
 *              scanned now when [scan] on-open = yes; an engine that
 *              cannot answer makes us answer "cannot decide", and xenfsd
 *              applies the domain's fail-open/closed policy.
 *
 * The engine runs in its own unprivileged process (scand.c), restarted
 * by proto.c when it dies.  Counters go to STATE_DIR/scanner/scan.db
 * (stats) at most once a second, for `xenfs-scan status`.
 *
 * Threads: every callback on the plugin process's one thread (the host's
 * rule), so nothing here locks.
 * Trust: event paths and verdict paths are guest-chosen and only used
 * beneath an export root (act.c); nothing of a file's content reaches
 * this process except through the engine's verdict.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>
#include <xenfs/plugin.h>

#include "scan_i.h"

#define ENGINE_START_MS	120000	/* the full ClamAV database takes a while */
#define WRITE_SCAN_MS	30000
#define FAIL_SKIP	3	/* a file that kills the engine this often
				 * is logged as unscannable and skipped */

static const struct xenfs_host_services *hs;

static void plug_log(int prio, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (hs)
		hs->log(prio, "%s", buf);
}
scan_log_fn scan_log = plug_log;

static const char *cfg_get(const char *section, const char *key)
{
	return hs->config_get(section, key);
}

struct root {
	char tag[256];
	int fd;
};

struct counters {
	int64_t scans, hits, bytes, scan_us, errors, skipped;
};

struct scanner {
	struct scan_policy pol;
	struct scand sd;
	sqlite3 *db;
	struct root *roots;
	size_t nroots;
	struct counters pend;	/* not yet in the database */
	int64_t last_flush_ms;
	int64_t win_start_ms, win_scans, win_bytes;
	uint64_t last_seq;
	uint64_t seen_sigs;
	int64_t seen_db_time;
	struct scan_ident fail_id;
	int fail_count;
	int verdict_ms;
	int bg;			/* background priority in force */
};

/*
 * Scanning after a write is background work: the guests' own I/O comes
 * first, so while on_event scans, this process and the engine run under
 * SCHED_IDLE, nice 19 and idle I/O priority; an on-open verdict (a guest waits)
 * brings both back to normal first.  Root may raise priority again
 * (CAP_SYS_NICE); without it we simply stay where we are.
 */
static void prio_set(struct scanner *s, int bg)
{
	int nice = bg ? 19 : 0;
	/* ioprio_set(IOPRIO_WHO_PROCESS, pid, class << 13): 3 idle,
	 * 2 best-effort (level 4, the default) */
	long io = bg ? 3L << 13 : (2L << 13) | 4;

	/* SCHED_IDLE: any guest-serving thread that wakes up preempts us
	 * at once, which nice 19 alone does not guarantee */
	struct sched_param sp = { 0 };
	int pol = bg ? SCHED_IDLE : SCHED_OTHER;

	if (s->bg == bg)
		return;
	s->bg = bg;
	(void)sched_setscheduler(0, pol, &sp);
	(void)setpriority(PRIO_PROCESS, 0, nice);
	(void)syscall(SYS_ioprio_set, 1, 0, io);
	if (s->sd.fd >= 0 && s->sd.pid > 0) {
		(void)sched_setscheduler(s->sd.pid, pol, &sp);
		(void)setpriority(PRIO_PROCESS, (id_t)s->sd.pid, nice);
		(void)syscall(SYS_ioprio_set, 1, s->sd.pid, io);
	}
}

static int root_fd(struct scanner *s, const char *tag)
{
	const char *dir;
	struct root *nr;
	int fd;

	for (size_t i = 0; i < s->nroots; i++)
		if (!strcmp(s->roots[i].tag, tag))
			return s->roots[i].fd;
	if ((dir = scan_export_path(&s->pol, tag)) == NULL)
		return -ENOENT;
	if ((fd = scan_open_root(dir)) < 0)
		return fd;
	if ((nr = realloc(s->roots, (s->nroots + 1) * sizeof(*nr))) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	s->roots = nr;
	snprintf(nr[s->nroots].tag, sizeof(nr[0].tag), "%s", tag);
	nr[s->nroots++].fd = fd;
	return fd;
}

/*
 * Counters to the stats table whenever there are some (one small
 * transaction per batch or verdict), engine facts and rates once a
 * second or when forced.
 */
static void stats_flush(struct scanner *s, int force)
{
	int64_t now = scan_now_ms();
	struct counters zero = { 0 };
	char v[64];

	if (!force && now - s->last_flush_ms < 1000 &&
	    !memcmp(&s->pend, &zero, sizeof(zero)))
		return;
	if (scan_db_exec(s->db, "BEGIN") < 0)
		return;
	if (s->pend.scans)
		scan_db_stat_add(s->db, "scans", s->pend.scans);
	if (s->pend.hits)
		scan_db_stat_add(s->db, "cache_hits", s->pend.hits);
	if (s->pend.bytes)
		scan_db_stat_add(s->db, "bytes", s->pend.bytes);
	if (s->pend.scan_us)
		scan_db_stat_add(s->db, "scan_us", s->pend.scan_us);
	if (s->pend.errors)
		scan_db_stat_add(s->db, "errors", s->pend.errors);
	if (s->pend.skipped)
		scan_db_stat_add(s->db, "skipped", s->pend.skipped);
	memset(&s->pend, 0, sizeof(s->pend));
	if (!force && now - s->last_flush_ms < 1000) {
		(void)scan_db_exec(s->db, "COMMIT");
		return;
	}
	scan_db_stat_set(s->db, "engine", s->sd.info.engine);
	snprintf(v, sizeof(v), "%" PRIu64, s->sd.info.sigs);
	scan_db_stat_set(s->db, "sigs", v);
	snprintf(v, sizeof(v), "%" PRIu64, s->sd.info.db_version);
	scan_db_stat_set(s->db, "db_version", v);
	snprintf(v, sizeof(v), "%" PRId64, s->sd.info.db_time);
	scan_db_stat_set(s->db, "db_time", v);
	snprintf(v, sizeof(v), "%ld", (long)(s->sd.fd >= 0 ? s->sd.pid : 0));
	scan_db_stat_set(s->db, "engine_pid", v);
	snprintf(v, sizeof(v), "%lld", (long long)time(NULL));
	scan_db_stat_set(s->db, "updated", v);
	snprintf(v, sizeof(v), "%" PRIu64, s->last_seq);
	scan_db_stat_set(s->db, "last_seq", v);
	if (now - s->win_start_ms >= 5000) {
		double sec = (double)(now - s->win_start_ms) / 1000.0;
		snprintf(v, sizeof(v), "%.1f", (double)s->win_scans / sec);
		scan_db_stat_set(s->db, "rate_files", v);
		snprintf(v, sizeof(v), "%.0f", (double)s->win_bytes / sec);
		scan_db_stat_set(s->db, "rate_bytes", v);
		s->win_start_ms = now;
		s->win_scans = s->win_bytes = 0;
	}
	(void)scan_db_exec(s->db, "COMMIT");
	s->last_flush_ms = now;
}

/* A new database (freshclam ran): clean verdicts are no longer final. */
static void db_changed_check(struct scanner *s)
{
	if (s->sd.info.sigs == s->seen_sigs &&
	    s->sd.info.db_time == s->seen_db_time)
		return;
	if (s->seen_sigs)
		plug_log(SCAN_LOG_INFO, "scanner: signature database changed "
			 "(%" PRIu64 " signatures): clean verdicts forgotten",
			 s->sd.info.sigs);
	(void)scan_db_exec(s->db, "DELETE FROM verdicts WHERE result=0");
	s->seen_sigs = s->sd.info.sigs;
	s->seen_db_time = s->sd.info.db_time;
}

static int same_ident(const struct scan_ident *a, const struct scan_ident *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->ctime_sec == b->ctime_sec && a->ctime_nsec == b->ctime_nsec;
}

/*
 * Scan one file given by descriptor (read-only, caller's).  Returns
 * SCAN_CLEAN, SCAN_VIRUS (acted upon per policy; *act says how), or
 * -EAGAIN when the engine cannot answer now.
 */
static int scan_fd(struct scanner *s, int rootfd, int fd,
		   const struct stat *st, const char *vm, const char *tag,
		   const char *path, const char *source, int timeout_ms,
		   enum scan_action *act)
{
	struct scan_ident id;
	char sig[192], esc[1024];
	int64_t t0;
	int r;

	if (st->st_size == 0)
		return SCAN_CLEAN;	/* nothing to match (O_TRUNC opens) */
	scan_ident_of(&id, st);
	if (scan_db_blocked(s->db, &id) == 1) {
		s->pend.hits++;
		*act = ACT_BLOCK;
		return SCAN_VIRUS;
	}
	r = scan_db_verdict_get(s->db, &id, sig, sizeof(sig));
	if (r == VR_CLEAN || r == VR_RELEASED) {
		s->pend.hits++;
		return SCAN_CLEAN;
	}
	if (r == VR_INFECTED) {
		/* seen and acted on already; only "logged" lets it be */
		s->pend.hits++;
		*act = ACT_LOG;
		return SCAN_VIRUS;
	}
	t0 = scan_now_ms();
	r = scand_scan(&s->sd, fd, sig, sizeof(sig), timeout_ms);
	db_changed_check(s);
	if (r < 0 && r != -EIO) {
		/* the engine cannot answer now (down, restarting, hung,
		 * out of resources): retry, unless this file is the
		 * cause every time */
		if (r != -EAGAIN && same_ident(&id, &s->fail_id) &&
		    ++s->fail_count >= FAIL_SKIP) {
			plug_log(SCAN_LOG_ERR, "dom %s: %s:%s: cannot be "
				 "scanned (the engine fails on it: %s): "
				 "skipped", *vm ? vm : "dom0", tag,
				 scan_esc(path, esc, sizeof(esc)),
				 strerror(-r));
			s->pend.errors++;
			s->fail_count = 0;
			return SCAN_CLEAN;
		}
		if (!same_ident(&id, &s->fail_id)) {
			s->fail_id = id;
			s->fail_count = r == -EAGAIN ? 0 : 1;
		}
		return -EAGAIN;
	}
	s->pend.scans++;
	s->pend.bytes += st->st_size;
	s->pend.scan_us += (scan_now_ms() - t0) * 1000;
	s->win_scans++;
	s->win_bytes += st->st_size;
	if (r < 0) {
		/* libclamav could not parse it: say so, do not loop */
		plug_log(SCAN_LOG_WARN, "dom %s: %s:%s: scan error: %s",
			 *vm ? vm : "dom0", tag,
			 scan_esc(path, esc, sizeof(esc)), sig);
		s->pend.errors++;
		return SCAN_CLEAN;
	}
	if (r == SCAN_CLEAN) {
		(void)scan_db_verdict_put(s->db, &id, VR_CLEAN, NULL);
		if (scan_db_cleaned(s->db, &id, tag, path) > 0)
			plug_log(SCAN_LOG_INFO, "dom %s: %s:%s: rewritten "
				 "clean: released", *vm ? vm : "dom0", tag,
				 scan_esc(path, esc, sizeof(esc)));
		return SCAN_CLEAN;
	}
	struct scan_hit h = {
		.vm = vm, .export_tag = tag, .path = path, .source = source,
		.signature = sig, .fd = fd, .st = st,
	};
	if (scan_act(s->db, &s->pol, rootfd, &h, act) < 0)
		return -EAGAIN;		/* not recorded: try again */
	return SCAN_VIRUS;
}

static int scan_path(struct scanner *s, const char *vm, const char *tag,
		     const char *path)
{
	enum scan_action act;
	struct stat st;
	int rootfd, fd, r;

	if (scan_policy_excluded(&s->pol, path)) {
		s->pend.skipped++;
		return 0;
	}
	if ((rootfd = root_fd(s, tag)) < 0)
		return 0;	/* export gone from the config */
	/* O_NOATIME: reading must not write (an atime update per new file
	 * is a journal entry competing with the guest's writes) */
	fd = scan_open_beneath(rootfd, path, O_RDONLY | O_NOFOLLOW |
			       O_NONBLOCK | O_NOATIME);
	if (fd == -EPERM)	/* not the owner and no CAP_FOWNER */
		fd = scan_open_beneath(rootfd, path, O_RDONLY | O_NOFOLLOW |
				       O_NONBLOCK);
	if (fd < 0)
		return 0;	/* gone, or not a plain name any more */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	if ((uint64_t)st.st_size > s->pol.max_size) {
		s->pend.skipped++;
		close(fd);
		return 0;
	}
	r = scan_fd(s, rootfd, fd, &st, vm, tag, path, "write",
		    WRITE_SCAN_MS, &act);
	close(fd);
	return r == -EAGAIN ? -EAGAIN : 0;
}

static int sc_on_event(void *state, const struct xenfs_event *const *batch,
		       size_t n)
{
	struct scanner *s = state;
	int r = 0;

	if (!s->pol.on_write) {
		s->last_seq = batch[n - 1]->seq;
		return 0;
	}
	prio_set(s, 1);
	/* one transaction per batch (or per second of it), not one per
	 * statement; the CLI's writes wait at most that long */
	int txn = scan_db_exec(s->db, "BEGIN IMMEDIATE") == 0;
	int64_t txn_ms = scan_now_ms();
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct xenfs_event *ev = batch[i];
		const char *path = ev->path;

		if (txn && scan_now_ms() - txn_ms >= 1000) {
			txn = scan_db_exec(s->db, "COMMIT") == 0 &&
			      scan_db_exec(s->db, "BEGIN IMMEDIATE") == 0;
			txn_ms = scan_now_ms();
		}

		switch (ev->op) {
		case XENFS_EV_CREATE:
		case XENFS_EV_MODIFY:
			break;
		case XENFS_EV_RENAME:
			path = ev->path2;	/* cheap if already scanned */
			break;
		case XENFS_EV_SETATTR:
			if (!(ev->flags & XENFS_EV_F_SIZE))
				continue;
			break;		/* truncated: another content */
		case XENFS_EV_UNLINK:
			(void)scan_db_gone(s->db, ev->export_tag, ev->path);
			continue;
		default:
			continue;
		}
		if (ev->mode && !S_ISREG(ev->mode))
			continue;
		r = scan_path(s, ev->domain, ev->export_tag, path);
		if (r == 0)
			s->last_seq = ev->seq;
	}
	if (r == 0 && n)
		s->last_seq = batch[n - 1]->seq;
	/* what was scanned stays scanned, even if the batch comes again */
	if (txn && scan_db_exec(s->db, "COMMIT") < 0)
		r = -EIO;
	stats_flush(s, r != 0);
	return r;
}

static int sc_verdict(void *state, const struct xenfs_verdict_req *req)
{
	struct scanner *s = state;
	struct scan_ident id = {
		.dev = req->dev, .ino = req->ino, .size = req->size,
		.ctime_sec = req->ctime_sec, .ctime_nsec = req->ctime_nsec,
	};
	enum scan_action act = ACT_LOG;
	struct stat st;
	int rootfd, r;

	if (scan_db_blocked(s->db, &id) == 1)
		return XENFS_VERDICT_DENY;
	r = scan_db_verdict_get(s->db, &id, NULL, 0);
	if (r >= 0) {
		s->pend.hits++;
		stats_flush(s, 0);
		return XENFS_VERDICT_ALLOW;	/* clean, released, logged */
	}
	if (!s->pol.on_open || req->fd < 0)
		return XENFS_VERDICT_ALLOW;
	prio_set(s, 0);		/* a guest is waiting */
	if (scan_policy_excluded(&s->pol, req->path) ||
	    req->size > s->pol.max_size)
		return XENFS_VERDICT_ALLOW;
	if (fstat(req->fd, &st) < 0 || (uint64_t)st.st_ino != req->ino)
		return -EIO;
	rootfd = root_fd(s, req->export_tag);
	r = scan_fd(s, rootfd, req->fd, &st, req->domain, req->export_tag,
		    req->path, "open", s->verdict_ms, &act);
	stats_flush(s, 0);
	if (r < 0)
		return -EIO;	/* cannot decide: the domain's fail policy */
	return r == SCAN_VIRUS && act != ACT_LOG ? XENFS_VERDICT_DENY :
						   XENFS_VERDICT_ALLOW;
}

static int sc_on_resync(void *state, const char *domain,
			const char *export_tag)
{
	struct scanner *s = state;

	plug_log(SCAN_LOG_WARN, "scanner: changes of %s%s%s were lost from "
		 "the stream: files may be unscanned; run xenfs-scan full %s",
		 *domain ? domain : "every domain", *export_tag ? ":" : "",
		 export_tag, *domain ? domain : "VM");
	(void)scan_db_stat_add(s->db, "resyncs", 1);
	return 0;
}

static void scand_hint(char *buf, size_t len)
{
	Dl_info di;
	char tmp[4096];

	buf[0] = '\0';
	/* in a build tree: O/lib/xenfs/scanner.so next to O/bin */
	if (dladdr((void *)sc_on_resync, &di) == 0 || di.dli_fname == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s", di.dli_fname);
	snprintf(buf, len, "%s/../../bin/xenfs-scand", dirname(tmp));
}

static void sc_fini(void *state)
{
	struct scanner *s = state;

	stats_flush(s, 1);
	(void)scan_db_stat_set(s->db, "engine_pid", "0");
	scand_stop(&s->sd);
	for (size_t i = 0; i < s->nroots; i++)
		close(s->roots[i].fd);
	free(s->roots);
	scan_db_close(s->db);
	scan_policy_free(&s->pol);
	free(s);
}

static int sc_init(const struct xenfs_host_services *svc, void **state)
{
	struct scanner *s;
	const char *v;
	char hint[4200];
	int r;

	hs = svc;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	s->sd.fd = -1;
	if ((r = scan_policy_load(&s->pol, cfg_get, svc->state_dir)) < 0) {
		plug_log(SCAN_LOG_ERR, "scanner: bad [scan] policy");
		free(s);
		return r;
	}
	if ((r = scan_db_open(s->pol.state, 0, &s->db)) < 0) {
		scan_policy_free(&s->pol);
		free(s);
		return r;
	}
	v = svc->config_get("services", "verdict-timeout-ms");
	s->verdict_ms = v ? atoi(v) : 2000;
	s->verdict_ms = s->verdict_ms > 100 ? s->verdict_ms * 8 / 10 : 80;
	snprintf(s->sd.db, sizeof(s->sd.db), "%s", s->pol.db);
	snprintf(s->sd.tmp, sizeof(s->sd.tmp), "%s", s->pol.tmp);
	scand_hint(hint, sizeof(hint));
	scand_locate(&s->sd, hint);
	if ((r = scand_start(&s->sd, ENGINE_START_MS)) < 0) {
		plug_log(SCAN_LOG_ERR, "scanner: %s", s->sd.info.name);
		scan_db_close(s->db);
		scan_policy_free(&s->pol);
		free(s);
		return r;
	}
	s->seen_sigs = (uint64_t)scan_db_stat_int(s->db, "sigs");
	s->seen_db_time = scan_db_stat_int(s->db, "db_time");
	db_changed_check(s);
	s->win_start_ms = scan_now_ms();
	plug_log(SCAN_LOG_INFO, "scanner: ClamAV %s, %" PRIu64 " signatures "
		 "from %s, engine pid %ld; on-write %s, on-open %s, "
		 "action %s", s->sd.info.engine, s->sd.info.sigs, s->pol.db,
		 (long)s->sd.pid, s->pol.on_write ? "yes" : "no",
		 s->pol.on_open ? "yes" : "no",
		 scan_action_name(scan_policy_action(&s->pol, "")));
	stats_flush(s, 1);
	*state = s;
	return 0;
}

static const struct xenfs_plugin scanner_plugin = {
	.abi_version = XENFS_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct xenfs_plugin),
	.name = "scanner",
	.init = sc_init,
	.on_event = sc_on_event,
	.verdict = sc_verdict,
	.on_resync = sc_on_resync,
	.fini = sc_fini,
};

const struct xenfs_plugin *xenfs_plugin_entry(void)
{
	return &scanner_plugin;
}
