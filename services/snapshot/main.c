/*
 * xenfs-snapshot: consistent, incremental, deduplicated snapshots of what
 * a domain keeps on XenFS (docs/snapshot.md, xenfs-snapshot(8)).
 *
 *   xenfs-snapshot [-c CONFIG] [-r REPO] VM [--export TAG] [--label L]
 *                  [--verify-walk] [--no-freeze]
 *   xenfs-snapshot list VM | diff VM A B | check          [--json]
 *   xenfs-snapshot restore VM ID [PATH] --to DIR | --in-place [--export T]
 *   xenfs-snapshot prune VM --keep-last N [--keep-daily N]
 *
 * Exit: 0 ok, 1 error, 2 usage, 3 check found damage.
 * Single-threaded.  Trust: names from guests are escaped when printed.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "policy.h"
#include "snap_i.h"

#define DEFAULT_CONFIG	XENFS_SYSCONFDIR "/xenfs/xenfs.conf"

int snap_quiet;
static int json;

static void usage(int rc)
{
	fprintf(rc ? stderr : stdout,
"usage: xenfs-snapshot [-c CONFIG] [-r REPO] [-q] [-v] COMMAND\n"
"  VM [--export TAG] [--label L] [--verify-walk] [--no-freeze]\n"
"                          take a snapshot of VM's exports\n"
"  all                     one of every domain with a writable export\n"
"  list VM [--json]        its snapshots\n"
"  diff VM A B [--json]    added, removed, modified paths from A to B\n"
"  restore VM ID [PATH] --to DIR [--export TAG]\n"
"  restore VM ID --in-place [--export TAG]   (VM frozen meanwhile)\n"
"  prune VM|all --keep-last N [--keep-daily N]   and collect garbage\n"
"  check [--json]          verify every chunk of the repository\n"
"exit: 0 ok, 1 error, 2 usage, 3 damage found by check\n");
	exit(rc);
}

/* ---- progress ---- */

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int progress_shown;

void snap_progress(uint64_t done, uint64_t total, uint64_t bytes,
		   const char *what)
{
	static int64_t last;
	int64_t now;
	char bar[31];
	int i, w;

	if (snap_quiet || !isatty(2))
		return;
	now = mono_ms();
	if (now - last < 100)
		return;
	last = now;
	if (total) {
		w = (int)(done * 30 / total);
		for (i = 0; i < 30; i++)
			bar[i] = i < w ? '#' : ' ';
		bar[30] = '\0';
		fprintf(stderr, "\r%s [%s] %3d%% %" PRIu64 "/%" PRIu64
			" files %.1f MB ", what, bar,
			(int)(done * 100 / total), done, total, bytes / 1e6);
	} else {
		fprintf(stderr, "\r%s %" PRIu64 " files %.1f MB ", what, done,
			bytes / 1e6);
	}
	progress_shown = 1;
}

void snap_progress_end(void)
{
	if (progress_shown)
		fprintf(stderr, "\r\033[K");
	progress_shown = 0;
}

/* ---- output helpers ---- */

static void put_esc(const char *s, int js)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (js && (c == '"' || c == '\\'))
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f || (!js && c == '\\'))
			printf(js ? "\\u%04x" : "\\x%02x", c);
		else
			putchar(c);
	}
}

static void fmt_time(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int valid_name(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') ||
		      (s[n] >= 'A' && s[n] <= 'Z') ||
		      (s[n] >= '0' && s[n] <= '9') || s[n] == '.' ||
		      s[n] == '_' || s[n] == '-'))
			return 0;
	return n > 0 && n <= 64;
}

/* ---- list ---- */

static int cmd_list(struct snap_repo *r, const char *vm)
{
	sqlite3_stmt *q;
	int first = 1;

	if (sqlite3_prepare_v2(r->db, "SELECT s.id, s.time_ns, s.kind, "
			       "s.files, s.bytes, s.added_bytes, s.freeze_ms, "
			       "s.label, s.base_seq, (SELECT group_concat("
			       "export, ',') FROM snap_exports WHERE snap = "
			       "s.id) FROM snapshots s WHERE vm = ?1 ORDER BY "
			       "id", -1, &q, NULL) != SQLITE_OK)
		return 1;
	sqlite3_bind_text(q, 1, vm, -1, SQLITE_STATIC);
	if (json)
		printf("[");
	else
		printf("%-6s %-20s %-11s %8s %10s %10s %7s %s\n", "ID",
		       "TIME", "KIND", "FILES", "BYTES", "ADDED", "FREEZE",
		       "EXPORTS LABEL");
	while (sqlite3_step(q) == SQLITE_ROW) {
		char tb[32];
		const char *label = (const char *)sqlite3_column_text(q, 7);
		const char *ex = (const char *)sqlite3_column_text(q, 9);

		fmt_time(sqlite3_column_int64(q, 1), tb, sizeof(tb));
		if (json) {
			printf("%s\n{\"id\":%lld,\"time\":\"%s\",\"time_ns\":"
			       "%lld,\"kind\":\"%s\",\"files\":%lld,"
			       "\"bytes\":%lld,\"added_bytes\":%lld,"
			       "\"freeze_ms\":%lld,\"base_seq\":%lld,"
			       "\"exports\":\"%s\",\"label\":\"",
			       first ? "" : ",",
			       (long long)sqlite3_column_int64(q, 0), tb,
			       (long long)sqlite3_column_int64(q, 1),
			       (const char *)sqlite3_column_text(q, 2),
			       (long long)sqlite3_column_int64(q, 3),
			       (long long)sqlite3_column_int64(q, 4),
			       (long long)sqlite3_column_int64(q, 5),
			       (long long)sqlite3_column_int64(q, 6),
			       (long long)sqlite3_column_int64(q, 8),
			       ex ? ex : "");
			put_esc(label ? label : "", 1);
			printf("\"}");
		} else {
			printf("%-6lld %-20s %-11s %8lld %10lld %10lld %5lldms"
			       " %s ", (long long)sqlite3_column_int64(q, 0),
			       tb, (const char *)sqlite3_column_text(q, 2),
			       (long long)sqlite3_column_int64(q, 3),
			       (long long)sqlite3_column_int64(q, 4),
			       (long long)sqlite3_column_int64(q, 5),
			       (long long)sqlite3_column_int64(q, 6),
			       ex ? ex : "");
			put_esc(label ? label : "", 0);
			putchar('\n');
		}
		first = 0;
	}
	if (json)
		printf("%s]\n", first ? "" : "\n");
	sqlite3_finalize(q);
	return 0;
}

/* ---- diff ---- */

static const char diff_sql[] =
	"SELECT export, path, id, type, content, mode, uid, gid, mtime_ns, "
	"size, target, xattrs, rdev FROM entries e WHERE vm = ?1 AND "
	"from_snap <= ?2 AND (to_snap IS NULL OR to_snap > ?2) AND export IN "
	"(SELECT export FROM snap_exports WHERE snap = ?2) ORDER BY export, "
	"path";

static int col_eq(sqlite3_stmt *a, sqlite3_stmt *b, int c)
{
	int ta = sqlite3_column_type(a, c), tb = sqlite3_column_type(b, c);
	int la, lb;

	if (ta != tb)
		return 0;
	if (ta == SQLITE_NULL)
		return 1;
	if (ta == SQLITE_INTEGER)
		return sqlite3_column_int64(a, c) == sqlite3_column_int64(b, c);
	la = sqlite3_column_bytes(a, c);
	lb = sqlite3_column_bytes(b, c);
	return la == lb && !memcmp(sqlite3_column_blob(a, c),
				   sqlite3_column_blob(b, c), (size_t)la);
}

static int diff_modified(sqlite3_stmt *a, sqlite3_stmt *b)
{
	int c;

	if (sqlite3_column_int64(a, 2) == sqlite3_column_int64(b, 2))
		return 0;		/* the same version */
	for (c = 3; c <= 12; c++) {
		/* a directory's mtime and size follow its entries, which
		 * are listed themselves */
		if ((c == 8 || c == 9) &&
		    sqlite3_column_int64(a, 3) == S_IFDIR)
			continue;
		if (!col_eq(a, b, c))
			return 1;
	}
	return 0;
}

static int snap_exists(struct snap_repo *r, const char *vm, int64_t id)
{
	sqlite3_stmt *q;
	int ok;

	if (sqlite3_prepare_v2(r->db, "SELECT 1 FROM snapshots WHERE id = ?1 "
			       "AND vm = ?2", -1, &q, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_text(q, 2, vm, -1, SQLITE_STATIC);
	ok = sqlite3_step(q) == SQLITE_ROW;
	sqlite3_finalize(q);
	return ok;
}

static void diff_out(char kind, sqlite3_stmt *s, int *first)
{
	const char *ex = (const char *)sqlite3_column_text(s, 0);
	const char *p = (const char *)sqlite3_column_text(s, 1);

	if (json) {
		printf("%s\n{\"change\":\"%s\",\"export\":\"%s\",\"path\":\"",
		       *first ? "" : ",", kind == 'A' ? "added" :
		       kind == 'D' ? "removed" : "modified", ex);
		put_esc(p ? p : "", 1);
		printf("\"}");
	} else {
		printf("%c %s ", kind, ex);
		put_esc(p ? p : "", 0);
		putchar('\n');
	}
	*first = 0;
}

static int cmd_diff(struct snap_repo *r, const char *vm, int64_t a,
		    int64_t b)
{
	sqlite3_stmt *qa = NULL, *qb = NULL;
	int ra, rb, first = 1;

	if (!snap_exists(r, vm, a) || !snap_exists(r, vm, b)) {
		fprintf(stderr, "xenfs-snapshot: no snapshot %lld or %lld of "
			"%s\n", (long long)a, (long long)b, vm);
		return 1;
	}
	if (sqlite3_prepare_v2(r->db, diff_sql, -1, &qa, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, diff_sql, -1, &qb, NULL) != SQLITE_OK) {
		sqlite3_finalize(qa);
		return 1;
	}
	sqlite3_bind_text(qa, 1, vm, -1, SQLITE_STATIC);
	sqlite3_bind_int64(qa, 2, a);
	sqlite3_bind_text(qb, 1, vm, -1, SQLITE_STATIC);
	sqlite3_bind_int64(qb, 2, b);
	if (json)
		printf("[");
	ra = sqlite3_step(qa);
	rb = sqlite3_step(qb);
	while (ra == SQLITE_ROW || rb == SQLITE_ROW) {
		int c;

		if (ra != SQLITE_ROW)
			c = 1;
		else if (rb != SQLITE_ROW)
			c = -1;
		else {
			c = strcmp((const char *)sqlite3_column_text(qa, 0),
				   (const char *)sqlite3_column_text(qb, 0));
			if (!c)
				c = strcmp((const char *)
					   sqlite3_column_text(qa, 1),
					   (const char *)
					   sqlite3_column_text(qb, 1));
		}
		if (c < 0) {
			diff_out('D', qa, &first);
			ra = sqlite3_step(qa);
		} else if (c > 0) {
			diff_out('A', qb, &first);
			rb = sqlite3_step(qb);
		} else {
			if (diff_modified(qa, qb))
				diff_out('M', qb, &first);
			ra = sqlite3_step(qa);
			rb = sqlite3_step(qb);
		}
	}
	if (json)
		printf("%s]\n", first ? "" : "\n");
	sqlite3_finalize(qa);
	sqlite3_finalize(qb);
	return 0;
}

/* ---- garbage collection and check ---- */

/* Fill TEMP table live(hash) with every chunk some content uses. */
static int mark_live(struct snap_repo *r)
{
	sqlite3_stmt *q = NULL, *ins = NULL;
	int rc = 0;

	if (snap_exec(r, "DROP TABLE IF EXISTS temp.live;"
		      "CREATE TEMP TABLE live(hash BLOB PRIMARY KEY) "
		      "WITHOUT ROWID") < 0)
		return -EIO;
	if (sqlite3_prepare_v2(r->db, "SELECT extents FROM contents", -1, &q,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(r->db, "INSERT OR IGNORE INTO live VALUES(?)",
			       -1, &ins, NULL) != SQLITE_OK) {
		rc = -EIO;
		goto out;
	}
	while (sqlite3_step(q) == SQLITE_ROW) {
		const uint8_t *x = sqlite3_column_blob(q, 0);
		size_t n = (size_t)sqlite3_column_bytes(q, 0) / SNAP_EXT_REC,
		       i;

		for (i = 0; i < n; i++) {
			sqlite3_bind_blob(ins, 1, x + i * SNAP_EXT_REC + 12,
					  SNAP_HASH_LEN, SQLITE_STATIC);
			sqlite3_step(ins);
			sqlite3_reset(ins);
		}
	}
out:
	sqlite3_finalize(q);
	sqlite3_finalize(ins);
	return rc;
}

static int gc(struct snap_repo *r, uint64_t *freed_chunks,
	      uint64_t *freed_bytes)
{
	int rc;

	if (snap_exec(r, "DELETE FROM entries WHERE NOT EXISTS (SELECT 1 "
		      "FROM snapshots s JOIN snap_exports x ON x.snap = s.id "
		      "WHERE s.vm = entries.vm AND x.export = entries.export "
		      "AND s.id >= entries.from_snap AND (entries.to_snap IS "
		      "NULL OR s.id < entries.to_snap));"
		      "DELETE FROM contents WHERE id NOT IN (SELECT content "
		      "FROM entries WHERE content IS NOT NULL)") < 0)
		return -EIO;
	if ((rc = mark_live(r)) < 0)
		return rc;
	return snap_repo_gc(r, freed_chunks, freed_bytes);
}

static int cmd_prune(struct snap_repo *r, const char *vm, unsigned keep_last,
		     unsigned keep_daily)
{
	sqlite3_stmt *q = NULL;
	struct snap_info *v = NULL;
	size_t n = 0, cap = 0, i, del = 0;
	uint64_t fc, fb;
	int rc = 1;

	if (snap_repo_begin(r) < 0)
		return 1;
	if (sqlite3_prepare_v2(r->db, "SELECT id, time_ns FROM snapshots "
			       "WHERE vm = ?1 ORDER BY id", -1, &q,
			       NULL) != SQLITE_OK)
		goto out;
	sqlite3_bind_text(q, 1, vm, -1, SQLITE_STATIC);
	while (sqlite3_step(q) == SQLITE_ROW) {
		if (n == cap) {
			struct snap_info *nv;
			cap = cap ? cap * 2 : 64;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				goto out;
			v = nv;
		}
		v[n].id = sqlite3_column_int64(q, 0);
		v[n].time_ns = sqlite3_column_int64(q, 1);
		n++;
	}
	sqlite3_finalize(q);
	q = NULL;
	snap_prune_select(v, n, keep_last, keep_daily);
	if (sqlite3_prepare_v2(r->db, "DELETE FROM snapshots WHERE id = ?1; ",
			       -1, &q, NULL) != SQLITE_OK)
		goto out;
	for (i = 0; i < n; i++) {
		if (v[i].keep)
			continue;
		sqlite3_bind_int64(q, 1, v[i].id);
		sqlite3_step(q);
		sqlite3_reset(q);
		del++;
		if (!json)
			printf("pruned %lld\n", (long long)v[i].id);
	}
	sqlite3_finalize(q);
	q = NULL;
	if (snap_exec(r, "DELETE FROM snap_exports WHERE snap NOT IN (SELECT "
		      "id FROM snapshots)") < 0)
		goto out;
	if (gc(r, &fc, &fb) < 0)
		goto out;
	if (snap_repo_commit(r) < 0)
		goto out0;
	if (json)
		printf("{\"pruned\":%zu,\"kept\":%zu,\"freed_chunks\":%" PRIu64
		       ",\"freed_bytes\":%" PRIu64 "}\n", del, n - del, fc, fb);
	else
		printf("kept %zu, pruned %zu, freed %" PRIu64 " chunks (%.1f "
		       "MB)\n", n - del, del, fc, fb / 1e6);
	free(v);
	return 0;
out:
	snap_repo_rollback(r);
out0:
	sqlite3_finalize(q);
	free(v);
	return rc;
}

static int cmd_check(struct snap_repo *r)
{
	sqlite3_stmt *q = NULL;
	uint64_t n = 0, bad = 0, missing = 0, total = 0;
	char hex[2 * SNAP_HASH_LEN + 1];
	int first = 1;

	if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM chunks", -1, &q,
			       NULL) == SQLITE_OK && sqlite3_step(q) ==
	    SQLITE_ROW)
		total = (uint64_t)sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	if (json)
		printf("{\"problems\":[");
	if (sqlite3_prepare_v2(r->db, "SELECT hash, size FROM chunks", -1, &q,
			       NULL) != SQLITE_OK)
		return 1;
	while (sqlite3_step(q) == SQLITE_ROW) {
		const uint8_t *h = sqlite3_column_blob(q, 0);
		uint8_t *d;
		size_t len;
		int rc;

		snap_progress(n, total, 0, "checking");
		n++;
		rc = snap_chunk_get(r, h, &d, &len);
		if (rc == 0) {
			free(d);
			if (len == (size_t)sqlite3_column_int64(q, 1))
				continue;
			rc = -EBADMSG;
		}
		snap_hex(h, hex);
		if (rc == -ENOENT)
			missing++;
		else
			bad++;
		if (json)
			printf("%s{\"chunk\":\"%s\",\"error\":\"%s\"}",
			       first ? "" : ",", hex, rc == -ENOENT ?
			       "missing" : "corrupt");
		else
			printf("chunk %s: %s\n", hex, rc == -ENOENT ?
			       "missing" : "corrupt (hash mismatch)");
		first = 0;
	}
	sqlite3_finalize(q);
	snap_progress_end();
	/* every chunk a file refers to is in the catalog */
	if (mark_live(r) == 0 &&
	    sqlite3_prepare_v2(r->db, "SELECT hash FROM live WHERE hash NOT IN "
			       "(SELECT hash FROM chunks)", -1, &q,
			       NULL) == SQLITE_OK) {
		while (sqlite3_step(q) == SQLITE_ROW) {
			snap_hex(sqlite3_column_blob(q, 0), hex);
			missing++;
			if (json)
				printf("%s{\"chunk\":\"%s\",\"error\":"
				       "\"unknown\"}", first ? "" : ",", hex);
			else
				printf("chunk %s: referenced but not in the "
				       "catalog\n", hex);
			first = 0;
		}
		sqlite3_finalize(q);
	}
	if (json)
		printf("],\"chunks\":%" PRIu64 ",\"corrupt\":%" PRIu64
		       ",\"missing\":%" PRIu64 ",\"ok\":%s}\n", n, bad,
		       missing, bad || missing ? "false" : "true");
	else
		printf("%" PRIu64 " chunks checked: %" PRIu64 " corrupt, %"
		       PRIu64 " missing: %s\n", n, bad, missing,
		       bad || missing ? "DAMAGED" : "ok");
	return bad || missing ? 3 : 0;
}

/* ---- main ---- */

struct cli {
	const char *config, *repo, *export_tag, *label, *to;
	int verify_walk, no_freeze, no_reflink, in_place, verbose;
	long keep_last, keep_daily;
};

static struct xf_config *load_config(const char *path)
{
	char err[512];
	struct xf_config *cfg = xf_config_load(path, err, sizeof(err));

	if (!cfg)
		fprintf(stderr, "xenfs-snapshot: %s\n", err);
	return cfg;
}

static int open_repo(struct xf_config *cfg, const struct cli *c, int write,
		     struct snap_repo **r)
{
	const char *dir = c->repo ? c->repo :
		xf_config_value(cfg, "snapshot", "repository");
	uint64_t avg = 65536;

	(void)xf_config_get_u64(cfg, "snapshot", "chunk-avg", &avg);
	if (!dir) {
		fprintf(stderr, "xenfs-snapshot: no repository configured\n");
		return -EINVAL;
	}
	return snap_repo_open(dir, (uint32_t)avg, write, r);
}

static int freeze_thaw(struct xf_config *cfg, const char *vm, int freeze)
{
	char req[128], ans[256];
	int rc;

	snprintf(req, sizeof(req), "%s %s", freeze ? "freeze" : "thaw", vm);
	rc = snap_ctl(cfg->global.control_socket, req, ans, sizeof(ans));
	if (rc < 0 && freeze && strstr(ans, "not connected"))
		return 1;
	if (rc < 0)
		fprintf(stderr, "xenfs-snapshot: %s %s: %s\n", freeze ?
			"freeze" : "thaw", vm, ans);
	return rc < 0 ? rc : 0;
}

static int cmd_take(struct xf_config *cfg, const struct cli *c,
		    const char *vm)
{
	struct snap_export ex[64];
	struct snap_take_opts o;
	struct snap_take_result res;
	struct snap_repo *r;
	char jdir[PATH_MAX];
	uint64_t v;
	size_t i;
	int n = 0, rc;

	memset(&o, 0, sizeof(o));
	for (i = 0; i < cfg->nexports && n < 64; i++) {
		enum xf_access a = xf_policy_access(cfg, vm,
						    cfg->exports[i].tag);
		if (c->export_tag ? strcmp(c->export_tag,
					   cfg->exports[i].tag) ||
		    a == XF_ACCESS_NONE : a != XF_ACCESS_RW)
			continue;
		ex[n].tag = cfg->exports[i].tag;
		ex[n].path = cfg->exports[i].path;
		n++;
	}
	if (!n) {
		fprintf(stderr, "xenfs-snapshot: %s has no %s export%s%s\n",
			vm, c->export_tag ? "such" : "writable",
			c->export_tag ? " " : "s",
			c->export_tag ? c->export_tag : "");
		return 1;
	}
	snprintf(jdir, sizeof(jdir), "%s/journal", cfg->global.state_dir);
	o.vm = vm;
	o.exports = ex;
	o.nexports = n;
	o.label = c->label;
	o.ctl_socket = cfg->global.control_socket;
	o.journal_dir = access(jdir, R_OK) == 0 ? jdir : NULL;
	o.hook = xf_config_value(cfg, "snapshot", "hook");
	o.freeze_copy_max = 64u << 20;
	if (xf_config_get_u64(cfg, "snapshot", "freeze-copy-max", &v) == 0)
		o.freeze_copy_max = v;
	o.freeze_timeout_ms = 30000;
	o.verify_walk = c->verify_walk;
	o.no_freeze = c->no_freeze;
	o.no_reflink = c->no_reflink || getenv("XENFS_SNAPSHOT_NO_REFLINK");
	if (open_repo(cfg, c, 1, &r) < 0)
		return 1;
	rc = snap_take(r, &o, &res);
	snap_repo_close(r);
	if (rc < 0) {
		fprintf(stderr, "xenfs-snapshot: snapshot of %s failed: %s\n",
			vm, strerror(-rc));
		return 1;
	}
	if (json)
		printf("{\"id\":%lld,\"kind\":\"%s\",\"freeze_ms\":%lld,"
		       "\"visited\":%" PRIu64 ",\"changed\":%" PRIu64
		       ",\"read_bytes\":%" PRIu64 ",\"new_bytes\":%" PRIu64
		       ",\"base_seq\":%" PRIu64 ",\"reflinked\":%" PRIu64
		       ",\"rounds\":%d}\n", (long long)res.id,
		       res.full ? "full" : "incremental",
		       (long long)res.freeze_ms, res.visited, res.changed,
		       res.read_bytes, res.new_bytes, res.base_seq,
		       res.reflinked, res.rounds);
	else if (!snap_quiet)
		printf("snapshot %lld of %s (%s): %" PRIu64 " objects "
		       "changed, %.1f MB read, %.1f MB new in the repository, "
		       "frozen %lld ms\n", (long long)res.id, vm,
		       res.full ? "full" : "incremental", res.changed,
		       res.read_bytes / 1e6, res.new_bytes / 1e6,
		       (long long)res.freeze_ms);
	return 0;
}

static int cmd_restore(struct xf_config *cfg, const struct cli *c,
		       const char *vm, int64_t id, const char *path)
{
	struct snap_restore_opts o;
	struct snap_repo *r;
	sqlite3_stmt *q;
	int rc, nex = 0, frozen = 0;
	size_t i;

	memset(&o, 0, sizeof(o));
	o.vm = vm;
	o.snap = id;
	o.export_tag = c->export_tag;
	o.path = path;
	if (path && path[0] != '/') {
		fprintf(stderr, "xenfs-snapshot: PATH must start with /\n");
		return 2;
	}
	if (open_repo(cfg, c, c->in_place, &r) < 0)
		return 1;
	if (sqlite3_prepare_v2(r->db, "SELECT count(*) FROM snap_exports "
			       "WHERE snap = ?1 AND (?2 IS NULL OR export = "
			       "?2)", -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(q, 1, id);
		if (c->export_tag)
			sqlite3_bind_text(q, 2, c->export_tag, -1,
					  SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW)
			nex = sqlite3_column_int(q, 0);
		sqlite3_finalize(q);
	}
	if (c->in_place) {
		/* one export at a time, into its own directory */
		if (nex != 1 || (!c->export_tag && nex > 1)) {
			if (!c->export_tag) {
				fprintf(stderr, "xenfs-snapshot: --in-place "
					"needs --export TAG when a snapshot "
					"has several exports\n");
				snap_repo_close(r);
				return 2;
			}
		}
		if (!c->export_tag) {
			if (sqlite3_prepare_v2(r->db, "SELECT export FROM "
					       "snap_exports WHERE snap = ?1",
					       -1, &q, NULL) == SQLITE_OK) {
				sqlite3_bind_int64(q, 1, id);
				if (sqlite3_step(q) == SQLITE_ROW)
					for (i = 0; i < cfg->nexports; i++)
						if (!strcmp(cfg->exports[i].tag,
							    (const char *)
							    sqlite3_column_text(
							    q, 0)))
							o.export_tag =
							    cfg->exports[i].tag;
				sqlite3_finalize(q);
			}
		}
		for (i = 0; o.export_tag && i < cfg->nexports; i++)
			if (!strcmp(cfg->exports[i].tag, o.export_tag))
				o.to = cfg->exports[i].path;
		if (!o.to) {
			fprintf(stderr, "xenfs-snapshot: export not in the "
				"configuration\n");
			snap_repo_close(r);
			return 1;
		}
		o.in_place = 1;
		if (!c->no_freeze) {
			rc = freeze_thaw(cfg, vm, 1);
			if (rc < 0) {
				snap_repo_close(r);
				return 1;
			}
			frozen = rc == 0;
		}
	} else {
		o.to = c->to;
		o.multi = nex > 1;
	}
	rc = snap_restore(r, &o);
	if (frozen)
		(void)freeze_thaw(cfg, vm, 0);
	snap_repo_close(r);
	if (rc < 0) {
		fprintf(stderr, "xenfs-snapshot: restore: %s\n",
			rc == -EIO ? "some objects could not be restored" :
			strerror(-rc));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "repository", required_argument, NULL, 'r' },
		{ "export", required_argument, NULL, 'e' },
		{ "label", required_argument, NULL, 'l' },
		{ "to", required_argument, NULL, 't' },
		{ "in-place", no_argument, NULL, 'I' },
		{ "keep-last", required_argument, NULL, 'K' },
		{ "keep-daily", required_argument, NULL, 'D' },
		{ "verify-walk", no_argument, NULL, 'W' },
		{ "no-freeze", no_argument, NULL, 'F' },
		{ "no-reflink", no_argument, NULL, 'R' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct cli c;
	struct xf_config *cfg;
	struct snap_repo *r;
	const char *cmd, *vm = NULL;
	char *end;
	int ch, rc = 1, nargs;

	memset(&c, 0, sizeof(c));
	c.config = DEFAULT_CONFIG;
	c.keep_last = -1;
	c.keep_daily = 0;
	while ((ch = getopt_long(argc, argv, "c:r:qvhj", lo, NULL)) != -1) {
		switch (ch) {
		case 'c': c.config = optarg; break;
		case 'r': c.repo = optarg; break;
		case 'e': c.export_tag = optarg; break;
		case 'l': c.label = optarg; break;
		case 't': c.to = optarg; break;
		case 'I': c.in_place = 1; break;
		case 'W': c.verify_walk = 1; break;
		case 'F': c.no_freeze = 1; break;
		case 'R': c.no_reflink = 1; break;
		case 'j': json = 1; break;
		case 'q': snap_quiet = 1; break;
		case 'v': c.verbose++; break;
		case 'K':
		case 'D': {
			long v = strtol(optarg, &end, 10);
			if (*end || v < 0 || v > 1000000)
				usage(2);
			if (ch == 'K')
				c.keep_last = v;
			else
				c.keep_daily = v;
			break;
		}
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	log_init(1, c.verbose, "xenfs-snapshot");
	argc -= optind;
	argv += optind;
	if (argc < 1)
		usage(2);
	cmd = argv[0];
	nargs = argc - 1;
	if (strcmp(cmd, "check") && strcmp(cmd, "list") &&
	    strcmp(cmd, "diff") && strcmp(cmd, "restore") &&
	    strcmp(cmd, "prune")) {
		if (!strcmp(cmd, "take")) {
			argv++;
			argc--;
		}
		if (argc != 1)
			usage(2);
		vm = argv[0];
		cmd = "take";
	} else if (strcmp(cmd, "check")) {
		if (nargs < 1)
			usage(2);
		vm = argv[1];
	}
	if (vm && !valid_name(vm)) {
		fprintf(stderr, "xenfs-snapshot: bad domain name\n");
		return 2;
	}
	if ((cfg = load_config(c.config)) == NULL)
		return 1;
	if (!strcmp(cmd, "take") && !strcmp(vm, "all")) {
		/* every configured domain with a writable export (timer) */
		size_t i, e;
		int one;

		rc = 0;
		for (i = 0; i < cfg->ndomains; i++) {
			for (e = 0, one = 0; e < cfg->nexports && !one; e++)
				one = xf_policy_access(cfg, cfg->domains[i].name,
						       cfg->exports[e].tag) ==
				      XF_ACCESS_RW;
			if (one && cmd_take(cfg, &c, cfg->domains[i].name))
				rc = 1;	/* the others still get theirs */
		}
	} else if (!strcmp(cmd, "take")) {
		rc = cmd_take(cfg, &c, vm);
	} else if (!strcmp(cmd, "restore")) {
		int64_t id;

		if (nargs < 2 || nargs > 3 || (!c.to && !c.in_place) ||
		    (c.to && c.in_place) || (c.in_place && nargs == 3))
			usage(2);
		id = strtoll(argv[2], &end, 10);
		if (*end || id <= 0)
			usage(2);
		rc = cmd_restore(cfg, &c, vm, id, nargs == 3 ? argv[3] : NULL);
	} else if (!strcmp(cmd, "prune")) {
		if (nargs != 1 || c.keep_last < 1) {
			fprintf(stderr, "xenfs-snapshot: prune needs "
				"--keep-last N (N >= 1)\n");
			rc = 2;
		} else if (open_repo(cfg, &c, 1, &r) == 0) {
			size_t i;

			if (strcmp(vm, "all"))
				rc = cmd_prune(r, vm, (unsigned)c.keep_last,
					       (unsigned)c.keep_daily);
			else
				for (i = 0, rc = 0; i < cfg->ndomains; i++)
					if (cmd_prune(r, cfg->domains[i].name,
						      (unsigned)c.keep_last,
						      (unsigned)c.keep_daily))
						rc = 1;
			snap_repo_close(r);
		}
	} else if (!strcmp(cmd, "check")) {
		if (nargs != 0)
			usage(2);
		if (open_repo(cfg, &c, 1, &r) == 0) {
			rc = cmd_check(r);
			snap_repo_close(r);
		}
	} else if (!strcmp(cmd, "list")) {
		if (nargs != 1)
			usage(2);
		if (open_repo(cfg, &c, 0, &r) == 0) {
			rc = cmd_list(r, vm);
			snap_repo_close(r);
		}
	} else {	/* diff */
		int64_t a, b;

		if (nargs != 3)
			usage(2);
		a = strtoll(argv[2], &end, 10);
		if (*end)
			usage(2);
		b = strtoll(argv[3], &end, 10);
		if (*end)
			usage(2);
		if (open_repo(cfg, &c, 0, &r) == 0) {
			rc = cmd_diff(r, vm, a, b);
			snap_repo_close(r);
		}
	}
	xf_config_free(cfg);
	return rc;
}
