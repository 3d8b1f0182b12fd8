/*
 * xenfs-scan: the admin's view of the scanner service.
 *
 *   xenfs-scan [-c CONFIG] [-v] report [--vm NAME] [--since DATE] [--json]
 *   xenfs-scan [-c CONFIG] [-v] full VM [--restart] [--no-nice] [--quiet]
 *   xenfs-scan [-c CONFIG] [-v] release ID
 *   xenfs-scan [-c CONFIG] [-v] restore ID
 *   xenfs-scan [-c CONFIG] [-v] status [--json]
 *
 * Exit status: 0 done (full: nothing infected), 1 full found infected
 * files, 2 usage error, 3 runtime error (config, database, engine).
 *
 * It reads the same config as xenfsd and the scanner plugin and shares
 * the plugin's database (STATE_DIR/scanner/scan.db).  `full` walks every
 * export the VM may access (sorted, so a checkpoint names a position and
 * an interrupted scan resumes after it), at idle CPU and I/O priority,
 * handing each file to its own xenfs-scand (unprivileged, see scand.c).
 *
 * XENFS_SCAN_TEST_DELAY_MS=N in the environment makes `full` sleep N ms
 * per file: only for the test of an interrupted scan.
 *
 * Threads: one.  Trust: paths and signature names in the database are
 * guest-chosen or engine-provided text: escaped on the terminal, JSON
 * escaped in --json.  The export walk never follows symlinks.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "policy.h"
#include "scan_i.h"
#include "stream.h"

#define DEFAULT_CONFIG	XENFS_SYSCONFDIR "/xenfs/xenfs.conf"
#define EX_FOUND	1
#define EX_USAGE	2
#define EX_ERR		3

static struct xf_config *cfg;
static int verbose;

static void cli_log(int prio, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (prio <= SCAN_LOG_INFO)
		syslog(prio, "%s", buf);
	if (prio <= SCAN_LOG_WARN || verbose)
		fprintf(stderr, "xenfs-scan: %s\n", buf);
}
scan_log_fn scan_log = cli_log;

static const char *cfg_get(const char *section, const char *key)
{
	return xf_config_get(cfg, section, key);
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: xenfs-scan [-c CONFIG] [-v] COMMAND [ARGS]\n"
"  report [--vm NAME] [--since DATE] [--json]   detections found\n"
"  full VM [--restart] [--no-nice] [--quiet]     scan every export of VM\n"
"  release ID                                   unblock a blocked file\n"
"  restore ID                                   bring a quarantined file back\n"
"  status [--json]                              engine, signatures, queue,\n"
"                                               throughput, counters\n"
"DATE: YYYY-MM-DD[ HH:MM[:SS]], @EPOCH, or an age like 30m, 12h, 7d.\n"
"Exit: 0 ok, 1 full found infected files, 2 usage, 3 error.\n");
}

/* ---- output helpers ---- */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static const char *col(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);

	return s ? (const char *)s : "";
}

static void fmt_time(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (localtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
}

static int parse_since(const char *s, int64_t *out)
{
	struct tm tm;
	char *end;
	long long v;
	const char *fmts[] = { "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M",
			       "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", NULL };

	if (*s == '@') {
		v = strtoll(s + 1, &end, 10);
		if (end == s + 1 || *end)
			return -EINVAL;
		*out = v;
		return 0;
	}
	v = strtoll(s, &end, 10);
	if (end != s && end[0] && !end[1] && strchr("smhd", *end)) {
		long long mul = *end == 's' ? 1 : *end == 'm' ? 60 :
				*end == 'h' ? 3600 : 86400;
		*out = (int64_t)time(NULL) - v * mul;
		return 0;
	}
	for (int i = 0; fmts[i]; i++) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, fmts[i], &tm);
		if (end && !*end) {
			tm.tm_isdst = -1;
			*out = (int64_t)mktime(&tm);
			return 0;
		}
	}
	return -EINVAL;
}

static int open_db(int readonly, sqlite3 **db, struct scan_policy *pol)
{
	int r;

	if ((r = scan_policy_load(pol, cfg_get, cfg->global.state_dir)) < 0) {
		fprintf(stderr, "xenfs-scan: bad [scan] policy\n");
		return r;
	}
	if (readonly) {
		char p[4200];
		snprintf(p, sizeof(p), "%s/scan.db", pol->state);
		if (access(p, F_OK) < 0) {
			*db = NULL;
			return -ENOENT;
		}
	}
	if ((r = scan_db_open(pol->state, readonly, db)) < 0 && !readonly)
		fprintf(stderr, "xenfs-scan: cannot open the database in %s: "
			"%s\n", pol->state, strerror(-r));
	return r;
}

/* ---- report ---- */

static int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vm", required_argument, NULL, 'm' },
		{ "since", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	struct scan_policy pol;
	const char *vm = NULL;
	int64_t since = 0;
	int json = 0, ch, n = 0, r;
	sqlite3 *db;
	sqlite3_stmt *st;

	optind = 0;	/* glibc: full re-initialisation (permute again) */
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'm': vm = optarg; break;
		case 'j': json = 1; break;
		case 's':
			if (parse_since(optarg, &since) < 0) {
				fprintf(stderr, "xenfs-scan: bad date '%s'\n",
					optarg);
				return EX_USAGE;
			}
			break;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EX_USAGE;
	}
	if ((r = open_db(1, &db, &pol)) < 0) {
		scan_policy_free(&pol);
		if (r == -ENOENT) {	/* nothing scanned yet */
			printf(json ? "[]\n" : "no detections\n");
			return 0;
		}
		return EX_ERR;
	}
	if (sqlite3_prepare_v2(db, "SELECT id, time, vm, export, path, "
			       "signature, action, state, source, qfile "
			       "FROM detections WHERE (?1 IS NULL OR vm=?1) "
			       "AND time >= ?2 ORDER BY id", -1, &st,
			       NULL) != SQLITE_OK) {
		fprintf(stderr, "xenfs-scan: %s\n", sqlite3_errmsg(db));
		scan_db_close(db);
		return EX_ERR;
	}
	if (vm)		/* dom0's own writes are stored with VM "" */
		sqlite3_bind_text(st, 1, strcmp(vm, "dom0") ? vm : "", -1,
				  SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, since);
	if (json)
		printf("[");
	while (sqlite3_step(st) == SQLITE_ROW) {
		char t[64], e1[8192], e2[512];

		fmt_time(sqlite3_column_int64(st, 1), t, sizeof(t));
		if (json) {
			printf("%s\n {\"id\":%lld,\"time\":%lld,\"vm\":",
			       n ? "," : "",
			       (long long)sqlite3_column_int64(st, 0),
			       (long long)sqlite3_column_int64(st, 1));
			json_str(stdout, col(st, 2));
			printf(",\"export\":");
			json_str(stdout, col(st, 3));
			printf(",\"path\":");
			json_str(stdout, col(st, 4));
			printf(",\"signature\":");
			json_str(stdout, col(st, 5));
			printf(",\"action\":");
			json_str(stdout, col(st, 6));
			printf(",\"state\":");
			json_str(stdout, col(st, 7));
			printf(",\"source\":");
			json_str(stdout, col(st, 8));
			printf(",\"quarantine\":");
			json_str(stdout, col(st, 9));
			printf("}");
		} else {
			if (n == 0)
				printf("%-5s %-19s %-8s %-11s %-10s %-30s %s\n",
				       "ID", "TIME", "VM", "STATE", "ACTION",
				       "SIGNATURE", "EXPORT:PATH");
			printf("%-5lld %-19s %-8s %-11s %-10s %-30s %s:%s\n",
			       (long long)sqlite3_column_int64(st, 0), t,
			       *col(st, 2) ? col(st, 2) : "dom0", col(st, 7),
			       col(st, 6),
			       scan_esc(col(st, 5), e2, sizeof(e2)),
			       col(st, 3),
			       scan_esc(col(st, 4), e1, sizeof(e1)));
		}
		n++;
	}
	if (json)
		printf("%s]\n", n ? "\n" : "");
	else if (n == 0)
		printf("no detections\n");
	sqlite3_finalize(st);
	scan_db_close(db);
	scan_policy_free(&pol);
	return 0;
}

/* ---- release / restore ---- */

static int cmd_undo(int argc, char **argv, int restore)
{
	struct scan_policy pol;
	char err[512], *end;
	sqlite3 *db;
	long long id;
	int r;

	if (argc != 2) {
		usage(stderr);
		return EX_USAGE;
	}
	id = strtoll(argv[1], &end, 10);
	if (*end || id <= 0) {
		fprintf(stderr, "xenfs-scan: bad detection ID '%s'\n", argv[1]);
		return EX_USAGE;
	}
	if (open_db(0, &db, &pol) < 0)
		return EX_ERR;
	err[0] = '\0';
	r = restore ? scan_restore(db, &pol, id, err, sizeof(err)) :
		      scan_release(db, &pol, id, err, sizeof(err));
	scan_db_close(db);
	scan_policy_free(&pol);
	if (r < 0) {
		fprintf(stderr, "xenfs-scan: %s\n", err);
		return EX_ERR;
	}
	printf("detection %lld %s\n", id, restore ? "restored" : "released");
	return 0;
}

/* ---- full ---- */

#define PIPE_DEPTH	4

struct pending {
	int fd;
	int cached;		/* VR_* from the cache, or -1: scanning */
	int err;		/* submit failed with this */
	uint64_t id;
	struct stat st;
	char path[4096];
};

struct full {
	const char *vm;
	struct scan_policy pol;
	struct scand sd;
	sqlite3 *db;
	int tty, quiet;
	int exidx;			/* export being walked */
	const char *tag;
	int rootfd;
	/* resume point: export index and path; -1 = none */
	int resume_ex;
	char resume_path[4096];
	uint64_t total_files, total_bytes;	/* counted first, for the bar */
	uint64_t files, bytes, hits, found, errors, skipped;
	int64_t t0_ms, last_ckpt_ms, last_bar_ms;
	int counting;
	int failed;
	char last_done[4096];		/* last file handled (checkpoint) */
	int last_ex;
	int test_delay_ms;
	struct pending pend[PIPE_DEPTH];	/* ring, oldest at phead */
	int phead, npend;
};

static volatile sig_atomic_t stop_req;

static void on_stop(int sig)
{
	stop_req = 1;
}

/* Component-wise order of export-relative paths: the walk's order. */
static int pathcmp(const char *a, const char *b)
{
	for (;;) {
		size_t la = strcspn(a, "/"), lb = strcspn(b, "/");
		size_t m = la < lb ? la : lb;
		int c = memcmp(a, b, m);

		if (c)
			return c;
		if (la != lb)
			return la < lb ? -1 : 1;
		a += la;
		b += lb;
		if (!*a || !*b)
			return *a ? 1 : *b ? -1 : 0;
		a++;
		b++;
	}
}

/* Already done in the run we resume? */
static int before_resume(const struct full *f, const char *path)
{
	if (f->resume_ex < 0)
		return 0;
	if (f->exidx != f->resume_ex)
		return f->exidx < f->resume_ex;
	return pathcmp(path, f->resume_path) <= 0;
}

static void checkpoint(struct full *f, int ex, const char *path, int done)
{
	sqlite3_stmt *st;
	char last[4200];

	snprintf(last, sizeof(last), "%d\t%s", ex, path);
	if (sqlite3_prepare_v2(f->db, "UPDATE fullscan SET updated=?2, "
			       "last=?3, files=?4, bytes=?5, found=?6, "
			       "done=?7 WHERE vm=?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return;
	sqlite3_bind_text(st, 1, f->vm, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
	sqlite3_bind_text(st, 3, last, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)f->files);
	sqlite3_bind_int64(st, 5, (int64_t)f->bytes);
	sqlite3_bind_int64(st, 6, (int64_t)f->found);
	sqlite3_bind_int(st, 7, done);
	(void)sqlite3_step(st);
	sqlite3_finalize(st);
}

static void bar(struct full *f, int final)
{
	int64_t now = scan_now_ms();
	double sec = (double)(now - f->t0_ms) / 1000.0;
	uint64_t done = f->files + f->skipped;
	int pct, w = 30, fill;

	if (!f->tty || f->quiet || (!final && now - f->last_bar_ms < 200))
		return;
	f->last_bar_ms = now;
	pct = f->total_files ? (int)(done * 100 / f->total_files) : 100;
	if (pct > 100)
		pct = 100;
	fill = pct * w / 100;
	fprintf(stderr, "\r[%.*s%*s] %3d%% %" PRIu64 "/%" PRIu64 " files "
		"%.1f MB/s, %" PRIu64 " infected ", fill,
		"##############################", w - fill, "", pct, done,
		f->total_files, sec > 0 ? (double)f->bytes / sec / 1e6 : 0.0,
		f->found);
	if (final)
		fputc('\n', stderr);
}

/*
 * Files go to the engine through a short pipeline: while it scans one,
 * the next requests are already queued, so it never waits for us to
 * wake up (the cost of having the engine in another process).  Items
 * complete strictly in order, cache hits included, so the checkpoint
 * never claims a file whose verdict is still out.
 */
static struct pending *pend_push(struct full *f);
static void pend_finish(struct full *f);

static void visit_file(struct full *f, int dfd, const char *name,
		       const char *path, const struct stat *lst)
{
	struct scan_ident id;
	struct pending *p;
	struct stat st;
	int fd, r;

	if (f->counting) {
		if (!before_resume(f, path)) {
			f->total_files++;
			f->total_bytes += (uint64_t)lst->st_size;
		}
		return;
	}
	if (before_resume(f, path))
		return;
	if (scan_policy_excluded(&f->pol, path) ||
	    (uint64_t)lst->st_size > f->pol.max_size) {
		f->skipped++;
		return;
	}
	/* O_NOATIME: a full scan leaves the guests' atimes alone */
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC | O_NOCTTY | O_NOATIME);
	if (fd < 0 && errno == EPERM)
		fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
			    O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return;		/* gone meanwhile */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return;
	}
	p = pend_push(f);
	p->st = st;
	p->fd = fd;
	p->id = 0;
	p->err = 0;
	snprintf(p->path, sizeof(p->path), "%s", path);
	scan_ident_of(&id, &st);
	r = scan_db_verdict_get(f->db, &id, NULL, 0);
	if (r == VR_CLEAN || r == VR_RELEASED || r == VR_INFECTED) {
		p->cached = r;
		return;
	}
	p->cached = -1;
	if ((r = scand_submit(&f->sd, fd, &p->id)) < 0)
		p->err = r;	/* pend_finish retries it alone */
}

/* A slot at the tail; finishes the oldest item first when full. */
static struct pending *pend_push(struct full *f)
{
	if (f->npend == PIPE_DEPTH)
		pend_finish(f);
	return &f->pend[(f->phead + f->npend++) % PIPE_DEPTH];
}

/* Complete the oldest item: its verdict, the action, the checkpoint. */
static void pend_finish(struct full *f)
{
	struct pending *p = &f->pend[f->phead];
	struct scan_ident id;
	char sig[192], esc[1024];
	enum scan_action act;
	int r;

	f->phead = (f->phead + 1) % PIPE_DEPTH;
	f->npend--;
	f->files++;
	if (p->cached >= 0) {
		f->hits++;
		if (p->cached == VR_INFECTED)
			f->found++;
		goto done;
	}
	r = p->err ? p->err : scand_collect(&f->sd, p->id, sig, sizeof(sig),
					    120000);
	if (r == -EPIPE || r == -EAGAIN || r == -ETIMEDOUT || r == -EPROTO) {
		/* the engine died (or was restarting): once more, alone */
		r = scand_scan(&f->sd, p->fd, sig, sizeof(sig), 120000);
		if (r == -EAGAIN) {
			usleep(1100000);
			r = scand_scan(&f->sd, p->fd, sig, sizeof(sig),
				       120000);
		}
	}
	f->bytes += (uint64_t)p->st.st_size;
	scan_ident_of(&id, &p->st);
	if (r < 0) {
		f->errors++;
		cli_log(SCAN_LOG_WARN, "%s:%s: not scanned: %s", f->tag,
			scan_esc(p->path, esc, sizeof(esc)),
			r == -EIO ? sig : strerror(-r));
		if (f->sd.fd < 0 && f->sd.info.result < 0)
			f->failed = 1;
	} else if (r == SCAN_CLEAN) {
		(void)scan_db_verdict_put(f->db, &id, VR_CLEAN, NULL);
		(void)scan_db_cleaned(f->db, &id, f->tag, p->path);
	} else {
		struct scan_hit h = {
			.vm = f->vm, .export_tag = f->tag, .path = p->path,
			.source = "full", .signature = sig, .fd = p->fd,
			.st = &p->st,
		};
		if (f->tty && !f->quiet)
			fputc('\n', stderr);
		if (scan_act(f->db, &f->pol, f->rootfd, &h, &act) > 0)
			f->found++;
		else
			f->errors++;
	}
done:
	close(p->fd);
	p->fd = -1;
	if (f->test_delay_ms > 0)
		usleep((useconds_t)f->test_delay_ms * 1000);
	snprintf(f->last_done, sizeof(f->last_done), "%s", p->path);
	f->last_ex = f->exidx;
	if (scan_now_ms() - f->last_ckpt_ms >= 1000) {
		/* one transaction a second: verdicts and the checkpoint
		 * become durable together; the plugin may write between */
		checkpoint(f, f->last_ex, f->last_done, 0);
		(void)scan_db_exec(f->db, "COMMIT");
		(void)scan_db_exec(f->db, "BEGIN IMMEDIATE");
		f->last_ckpt_ms = scan_now_ms();
	}
	bar(f, 0);
}

static void pend_drain(struct full *f)
{
	while (f->npend > 0)
		pend_finish(f);
}

static int namecmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walk dfd (owned: closed here), whose export-relative path is rel. */
static void walk(struct full *f, int dfd, const char *rel, int depth)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL, path[4096];
	size_t n = 0, cap = 0;

	if (depth > 256 || (d = fdopendir(dfd)) == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap ? cap * 2 : 64) *
					    sizeof(*nn));
			if (nn == NULL)
				break;
			names = nn;
			cap = cap ? cap * 2 : 64;
		}
		if ((names[n] = strdup(de->d_name)) == NULL)
			break;
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), namecmp);
	for (size_t i = 0; i < n && !stop_req && !f->failed; i++) {
		struct stat st;

		if ((size_t)snprintf(path, sizeof(path), "%s/%s", rel,
				     names[i]) >= sizeof(path))
			continue;
		if (fstatat(dirfd(d), names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd(d), names[i], O_RDONLY |
					 O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0)
				walk(f, sub, path, depth + 1);
		} else if (S_ISREG(st.st_mode)) {
			visit_file(f, dirfd(d), names[i], path, &st);
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
}

static void walk_exports(struct full *f)
{
	for (size_t i = 0; i < cfg->nexports && !stop_req && !f->failed;
	     i++) {
		const struct xf_export *ex = &cfg->exports[i];
		int fd;

		if (xf_policy_access(cfg, f->vm, ex->tag) == XF_ACCESS_NONE)
			continue;
		f->exidx = (int)i;
		f->tag = ex->tag;
		if ((f->rootfd = scan_open_root(ex->path)) < 0) {
			cli_log(SCAN_LOG_WARN, "export %s: %s: %s", ex->tag,
				ex->path, strerror(-f->rootfd));
			continue;
		}
		fd = openat(f->rootfd, ".", O_RDONLY | O_DIRECTORY |
			    O_CLOEXEC);
		if (fd >= 0)
			walk(f, fd, "", 0);
		pend_drain(f);	/* their actions need this export's root */
		close(f->rootfd);
		f->rootfd = -1;
	}
}

static int load_resume(struct full *f, int restart)
{
	sqlite3_stmt *st;
	int found = 0;

	f->resume_ex = -1;
	if (!restart &&
	    sqlite3_prepare_v2(f->db, "SELECT last, done, files, bytes, "
			       "found FROM fullscan WHERE vm=?1", -1, &st,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, f->vm, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW &&
		    sqlite3_column_int(st, 1) == 0) {
			const char *last = col(st, 0);
			const char *tab = strchr(last, '\t');

			if (tab) {
				f->resume_ex = atoi(last);
				snprintf(f->resume_path,
					 sizeof(f->resume_path), "%s",
					 tab + 1);
				f->files = (uint64_t)
					sqlite3_column_int64(st, 2);
				f->bytes = (uint64_t)
					sqlite3_column_int64(st, 3);
				f->found = (uint64_t)
					sqlite3_column_int64(st, 4);
				found = 1;
			}
		}
		sqlite3_finalize(st);
	}
	if (found)
		return 1;
	if (sqlite3_prepare_v2(f->db, "INSERT OR REPLACE INTO fullscan(vm, "
			       "started, updated, last, files, bytes, found, "
			       "done) VALUES(?1, ?2, ?2, '', 0, 0, 0, 0)", -1,
			       &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, f->vm, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
		(void)sqlite3_step(st);
		sqlite3_finalize(st);
	}
	return 0;
}

static int cmd_full(int argc, char **argv, const char *self)
{
	static const struct option opts[] = {
		{ "restart", no_argument, NULL, 'r' },
		{ "no-nice", no_argument, NULL, 'n' },
		{ "quiet", no_argument, NULL, 'q' },
		{ NULL, 0, NULL, 0 },
	};
	struct full *f;
	char hint[PATH_MAX + 32], selfdir[PATH_MAX];
	int restart = 0, nice = 1, ch, rc;
	double sec;
	uint64_t files0, bytes0;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return EX_ERR;
	optind = 0;	/* glibc: full re-initialisation (permute again) */
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'r': restart = 1; break;
		case 'n': nice = 0; break;
		case 'q': f->quiet = 1; break;
		default: usage(stderr); free(f); return EX_USAGE;
		}
	}
	if (optind + 1 != argc) {
		usage(stderr);
		free(f);
		return EX_USAGE;
	}
	f->vm = argv[optind];
	if (xf_config_domain(cfg, f->vm) == NULL) {
		fprintf(stderr, "xenfs-scan: no [domain %s] in %s\n", f->vm,
			cfg->file);
		free(f);
		return EX_USAGE;
	}
	if (open_db(0, &f->db, &f->pol) < 0) {
		free(f);
		return EX_ERR;
	}
	if (nice) {
		/* a full scan must not compete with the guests */
		if (setpriority(PRIO_PROCESS, 0, 19) < 0 ||
		    syscall(SYS_ioprio_set, 1, 0, 3 << 13) < 0)
			cli_log(SCAN_LOG_DEBUG, "cannot lower priority");
	}
	f->sd.fd = -1;
	f->sd.nice = nice;
	snprintf(f->sd.db, sizeof(f->sd.db), "%s", f->pol.db);
	snprintf(f->sd.tmp, sizeof(f->sd.tmp), "%s", f->pol.tmp);
	ssize_t sl = readlink(self, selfdir, sizeof(selfdir) - 1);
	if (sl > 0) {
		selfdir[sl] = '\0';
		char *s = strrchr(selfdir, '/');
		if (s)
			*s = '\0';
		snprintf(hint, sizeof(hint), "%s/xenfs-scand", selfdir);
	} else {
		hint[0] = '\0';
	}
	scand_locate(&f->sd, hint);
	if (scand_start(&f->sd, 120000) < 0) {
		fprintf(stderr, "xenfs-scan: %s\n", f->sd.info.name);
		rc = EX_ERR;
		goto out;
	}
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	f->tty = isatty(2);
	if (getenv("XENFS_SCAN_TEST_DELAY_MS"))
		f->test_delay_ms = atoi(getenv("XENFS_SCAN_TEST_DELAY_MS"));
	if (load_resume(f, restart))
		fprintf(stderr, "xenfs-scan: resuming the full scan of %s "
			"after %s\n", f->vm, f->resume_path);
	f->rootfd = -1;
	files0 = f->files;
	bytes0 = f->bytes;
	if (f->tty && !f->quiet) {
		f->counting = 1;
		walk_exports(f);
		f->counting = 0;
		f->total_files += f->files;
	}
	f->t0_ms = scan_now_ms();
	(void)scan_db_exec(f->db, "BEGIN IMMEDIATE");
	walk_exports(f);
	bar(f, 1);
	sec = (double)(scan_now_ms() - f->t0_ms) / 1000.0;
	if (stop_req || f->failed) {
		if (f->last_done[0])
			checkpoint(f, f->last_ex, f->last_done, 0);
		(void)scan_db_exec(f->db, "COMMIT");
		fprintf(stderr, "xenfs-scan: %s: progress saved; run it again "
			"to resume\n", f->failed ? f->sd.info.name :
			"interrupted");
		rc = EX_ERR;
		goto out;
	}
	/* the last position: mark done */
	(void)scan_db_exec(f->db, "COMMIT");
	{
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(f->db, "UPDATE fullscan SET done=1, "
				       "updated=?2, files=?3, bytes=?4, "
				       "found=?5 WHERE vm=?1", -1, &st,
				       NULL) == SQLITE_OK) {
			sqlite3_bind_text(st, 1, f->vm, -1, SQLITE_STATIC);
			sqlite3_bind_int64(st, 2, (int64_t)time(NULL));
			sqlite3_bind_int64(st, 3, (int64_t)f->files);
			sqlite3_bind_int64(st, 4, (int64_t)f->bytes);
			sqlite3_bind_int64(st, 5, (int64_t)f->found);
			(void)sqlite3_step(st);
			sqlite3_finalize(st);
		}
	}
	(void)scan_db_stat_add(f->db, "scans", (int64_t)(f->files - files0 -
							 f->hits));
	(void)scan_db_stat_add(f->db, "bytes", (int64_t)(f->bytes - bytes0));
	(void)scan_db_stat_add(f->db, "cache_hits", (int64_t)f->hits);
	(void)scan_db_stat_add(f->db, "full_scans", 1);
	{
		/* engine facts, for status when no plugin runs */
		char v[64];
		(void)scan_db_stat_set(f->db, "engine", f->sd.info.engine);
		snprintf(v, sizeof(v), "%" PRIu64, f->sd.info.sigs);
		(void)scan_db_stat_set(f->db, "sigs", v);
		snprintf(v, sizeof(v), "%" PRId64, f->sd.info.db_time);
		(void)scan_db_stat_set(f->db, "db_time", v);
	}
	printf("full scan of %s: %" PRIu64 " files, %.1f MB in %.1f s "
	       "(%.1f MB/s), %" PRIu64 " from cache, %" PRIu64 " skipped, %"
	       PRIu64 " errors, %" PRIu64 " infected\n", f->vm, f->files,
	       (double)f->bytes / 1e6, sec,
	       sec > 0 ? (double)(f->bytes - bytes0) / sec / 1e6 : 0.0,
	       f->hits, f->skipped, f->errors, f->found);
	rc = f->found ? EX_FOUND : 0;
out:
	scand_stop(&f->sd);
	scan_db_close(f->db);
	scan_policy_free(&f->pol);
	free(f);
	return rc;
}

/* ---- status ---- */

static void services_state(char *buf, size_t len)
{
	char path[PATH_MAX], line[1024];
	FILE *fp;
	struct stat st;

	snprintf(buf, len, "not running");
	snprintf(path, sizeof(path), "%.3000s/services/status",
		 cfg->global.state_dir);
	if ((fp = fopen(path, "re")) == NULL)
		return;
	if (fstat(fileno(fp), &st) == 0 && time(NULL) - st.st_mtime > 10) {
		fclose(fp);
		return;		/* stale: no services host */
	}
	while (fgets(line, sizeof(line), fp)) {
		char name[80], state[32];

		if (sscanf(line, "%79s %31s", name, state) == 2 &&
		    !strcmp(name, "scanner")) {
			snprintf(buf, len, "%s", state);
			break;
		}
	}
	fclose(fp);
}

static int cmd_status(int argc, char **argv)
{
	struct scan_policy pol;
	char jdir[PATH_MAX], svc[64], engine[64], rf[32], rb[32], t[64];
	uint64_t head = 0, cur = 0;
	int64_t sigs, dbt, scans, hits, bytes, us, pid, upd;
	int json = argc > 1 && !strcmp(argv[1], "--json");
	sqlite3 *db = NULL;
	int64_t nblocked = 0, nquar = 0, ndet = 0;

	if (argc > 2 || (argc == 2 && !json)) {
		usage(stderr);
		return EX_USAGE;
	}
	if (open_db(1, &db, &pol) < 0) {
		scan_policy_free(&pol);
		fprintf(stderr, "xenfs-scan: no scanner database yet (is the "
			"scanner plugin in [services] plugins?)\n");
		return EX_ERR;
	}
	snprintf(jdir, sizeof(jdir), "%.3000s/journal", cfg->global.state_dir);
	(void)xf_stream_head_seq(jdir, &head);
	(void)xf_stream_read_cursor(jdir, "scanner", &cur);
	services_state(svc, sizeof(svc));
	scan_db_stat_text(db, "engine", engine, sizeof(engine));
	scan_db_stat_text(db, "rate_files", rf, sizeof(rf));
	scan_db_stat_text(db, "rate_bytes", rb, sizeof(rb));
	sigs = scan_db_stat_int(db, "sigs");
	dbt = scan_db_stat_int(db, "db_time");
	scans = scan_db_stat_int(db, "scans");
	hits = scan_db_stat_int(db, "cache_hits");
	bytes = scan_db_stat_int(db, "bytes");
	us = scan_db_stat_int(db, "scan_us");
	pid = scan_db_stat_int(db, "engine_pid");
	upd = scan_db_stat_int(db, "updated");
	{
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(db, "SELECT count(*), "
				       "sum(state='blocked'), "
				       "sum(state='quarantined') FROM "
				       "detections", -1, &st, NULL) ==
		    SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW) {
				ndet = sqlite3_column_int64(st, 0);
				nblocked = sqlite3_column_int64(st, 1);
				nquar = sqlite3_column_int64(st, 2);
			}
			sqlite3_finalize(st);
		}
	}
	int alive = pid > 0 && kill((pid_t)pid, 0) == 0;
	uint64_t queue = head > cur ? head - cur : 0;
	double avg = us > 0 ? (double)bytes / ((double)us / 1e6) / 1e6 : 0;
	int64_t age = dbt > 0 ? (int64_t)time(NULL) - dbt : -1;

	if (json) {
		printf("{\"plugin\":");
		json_str(stdout, svc);
		printf(",\"engine\":");
		json_str(stdout, engine);
		printf(",\"engine_running\":%s,\"signatures\":%lld,"
		       "\"database\":", alive ? "true" : "false",
		       (long long)sigs);
		json_str(stdout, pol.db);
		printf(",\"database_time\":%lld,\"database_age_s\":%lld,"
		       "\"queue\":%llu,\"cursor\":%llu,\"head\":%llu,"
		       "\"scans\":%lld,\"cache_hits\":%lld,\"bytes\":%lld,"
		       "\"avg_mb_s\":%.1f,\"recent_files_s\":%s,"
		       "\"recent_bytes_s\":%s,\"errors\":%lld,"
		       "\"skipped\":%lld,\"detections\":%lld,"
		       "\"blocked\":%lld,\"quarantined\":%lld,"
		       "\"updated\":%lld}\n", (long long)dbt,
		       (long long)age, (unsigned long long)queue,
		       (unsigned long long)cur, (unsigned long long)head,
		       (long long)scans, (long long)hits, (long long)bytes,
		       avg, rf[0] ? rf : "0", rb[0] ? rb : "0",
		       (long long)scan_db_stat_int(db, "errors"),
		       (long long)scan_db_stat_int(db, "skipped"),
		       (long long)ndet, (long long)nblocked,
		       (long long)nquar, (long long)upd);
	} else {
		fmt_time(dbt, t, sizeof(t));
		printf("plugin:      %s\n", svc);
		printf("engine:      ClamAV %s, %s\n", engine[0] ? engine :
		       "?", alive ? "running" : "not running");
		printf("signatures:  %lld from %s", (long long)sigs, pol.db);
		if (age >= 0)
			printf(", newest file %s (%lld h %lld min old)", t,
			       (long long)(age / 3600),
			       (long long)(age % 3600 / 60));
		printf("\nqueue:       %llu events (cursor %llu, head %llu)\n",
		       (unsigned long long)queue, (unsigned long long)cur,
		       (unsigned long long)head);
		printf("scans:       %lld files, %.1f MB, %lld cache hits, "
		       "%lld skipped, %lld errors\n", (long long)scans,
		       (double)bytes / 1e6, (long long)hits,
		       (long long)scan_db_stat_int(db, "skipped"),
		       (long long)scan_db_stat_int(db, "errors"));
		printf("throughput:  %.1f MB/s, %.0f files/s while scanning; "
		       "recent %s files/s, %.1f MB/s\n", avg,
		       us > 0 ? (double)scans / ((double)us / 1e6) : 0.0,
		       rf[0] ? rf : "0", rb[0] ? atof(rb) / 1e6 : 0.0);
		printf("detections:  %lld (%lld blocked, %lld quarantined)\n",
		       (long long)ndet, (long long)nblocked,
		       (long long)nquar);
	}
	scan_db_close(db);
	scan_policy_free(&pol);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *conf = DEFAULT_CONFIG, *cmd;
	char err[512];
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "+c:vh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': conf = optarg; break;
		case 'v': verbose = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EX_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EX_USAGE;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (!strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "report") && strcmp(cmd, "full") &&
	    strcmp(cmd, "release") && strcmp(cmd, "restore") &&
	    strcmp(cmd, "status")) {
		fprintf(stderr, "xenfs-scan: unknown command '%s'\n", cmd);
		usage(stderr);
		return EX_USAGE;
	}
	openlog("xenfs-scan", LOG_PID, LOG_DAEMON);
	if ((cfg = xf_config_load(conf, err, sizeof(err))) == NULL) {
		fprintf(stderr, "xenfs-scan: %s\n", err);
		return EX_ERR;
	}
	if (!strcmp(cmd, "report"))
		rc = cmd_report(argc, argv);
	else if (!strcmp(cmd, "full"))
		rc = cmd_full(argc, argv, "/proc/self/exe");
	else if (!strcmp(cmd, "release"))
		rc = cmd_undo(argc, argv, 0);
	else if (!strcmp(cmd, "restore"))
		rc = cmd_undo(argc, argv, 1);
	else
		rc = cmd_status(argc, argv);
	xf_config_free(cfg);
	return rc;
}
