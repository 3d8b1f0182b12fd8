/*
 * xenfs-search: find files in every guest's exports, from the index the
 * indexer plugin keeps (docs/xenfs-search.1, docs/index.md).
 *
 *   xenfs-search [OPTIONS] PATTERN...
 *   xenfs-search --stats | --reindex VM
 *
 * Single-threaded CLI.  The database is opened SQLITE_OPEN_READONLY: this
 * program never changes the index; --reindex only drops a request file
 * into the indexer's state directory, which the running indexer picks up.
 * Trust: paths and snippets are guest-chosen bytes; everything printed
 * for a human goes through idx_print_escaped (controls, escapes and
 * invalid UTF-8 shown as \xNN); -0 prints raw bytes for programs.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index_i.h"
#include "policy.h"
#include "stream.h"

#define DEFAULT_CONFIG	XENFS_SYSCONFDIR "/xenfs/xenfs.conf"

static int opt_count, opt_null, opt_json, opt_color;
static char *vm_names[256];		/* --vm arguments */
static long hits_printed;

static void usage(FILE *f)
{
	fprintf(f,
"usage: xenfs-search [OPTIONS] PATTERN...\n"
"       xenfs-search --stats\n"
"       xenfs-search --reindex VM|'*'\n"
"Find files in the guests' exports by name, path, metadata or content.\n"
"A PATTERN without * ? [ matches anywhere in the path (a substring);\n"
"with them it is a glob that must match the whole path.\n"
"  -i, --ignore-case    case-insensitive matching\n"
"  -b, --basename       match the file name only, not the whole path\n"
"  -r, --regex          patterns are POSIX extended regular expressions\n"
"  -A, --all            every pattern must match (default: any)\n"
"  -c, --count          print the number of matches only\n"
"  -l, --limit N        stop after N matches\n"
"  -0, --null           separate results with NUL, print names raw\n"
"      --vm NAME        only files NAME can see (repeatable)\n"
"      --path GLOB      only paths matching GLOB (* crosses /)\n"
"      --type f|d|l     regular file, directory or symlink\n"
"      --size [+-]N[kMG] larger than, smaller than, or exactly N bytes\n"
"      --newer DATE     modified after DATE (2024-01-31, '2024-01-31\n"
"                       12:00', @EPOCH, or 30m 2h 3d ago)\n"
"      --content        search the text of files; prints a snippet\n"
"      --json           one JSON object per line\n"
"      --stats          files per VM, index size, lag behind the stream\n"
"      --reindex VM     ask the running indexer to re-crawl what VM sees\n"
"  -C, --config FILE    xenfs.conf (default " DEFAULT_CONFIG ")\n"
"      --db FILE        the index database (default: [index] db)\n"
"  -h, --help\n"
"Output: VM:/path (path inside the export).  Exit: 0 found, 1 nothing\n"
"matched, 2 error.\n");
}

static void die_db(const char *db, const char *what)
{
	fprintf(stderr, "xenfs-search: %s: %s\n"
		"xenfs-search: to (re)build it, make sure xenfs-services runs "
		"with the indexer plugin ([services] plugins = indexer): it "
		"crawls every export at start and checks the database, moving "
		"a damaged one aside and rebuilding it.  With the indexer "
		"running, 'xenfs-search --reindex VM' re-crawls.\n", db, what);
	exit(2);
}

/* Print a snippet on one line: markers become colour on a terminal,
 * newlines spaces, trailing blanks go. */
static void print_snippet(const char *s)
{
	size_t len = strlen(s);
	char *t;

	while (len && strchr(" \n\t", s[len - 1]))
		len--;
	if (!(t = strndup(s, len)))
		return;
	for (const char *p = t; *p;) {
		size_t n = strcspn(p, "\001\002\n");

		idx_print_escaped(stdout, p, n);
		p += n;
		if (!*p)
			break;
		if (*p == '\001' && opt_color)
			fputs("\033[1;31m", stdout);
		else if (*p == '\002' && opt_color)
			fputs("\033[0m", stdout);
		else if (*p == '\n')
			fputc(' ', stdout);
		p++;
	}
	free(t);
}

static int print_hit(const struct idx_hit *h, void *arg)
{
	(void)arg;
	hits_printed++;
	if (opt_count)
		return 0;
	if (opt_json) {
		fputs("{\"vm\":\"", stdout);
		idx_print_json(stdout, h->vm, strlen(h->vm));
		fputs("\",\"export\":\"", stdout);
		idx_print_json(stdout, h->export_tag, strlen(h->export_tag));
		fputs("\",\"path\":\"", stdout);
		idx_print_json(stdout, h->path, h->plen);
		printf("\",\"type\":\"%c\",\"size\":%" PRIu64 ",\"mtime\":"
		       "%" PRId64, h->type, h->size, h->mtime);
		if (h->snippet) {
			size_t sl = strlen(h->snippet);
			char *s;

			while (sl && strchr(" \n\t", h->snippet[sl - 1]))
				sl--;
			if ((s = strndup(h->snippet, sl)) != NULL) {
				for (char *p = s; *p; p++)
					if (*p == '\001' || *p == '\002' ||
					    *p == '\n')
						*p = *p == '\n' ? ' ' : '\a';
				fputs(",\"snippet\":\"", stdout);
				/* markers out, text escaped */
				for (char *p = s, *q; *p; p = q) {
					q = strchr(p, '\a');
					if (!q)
						q = p + strlen(p);
					idx_print_json(stdout, p,
						       (size_t)(q - p));
					if (*q)
						q++;
				}
				fputc('"', stdout);
				free(s);
			}
		} else {
			fputs(",\"snippet\":null", stdout);
		}
		fputs("}\n", stdout);
	} else if (opt_null) {
		fputs(h->vm, stdout);
		fputc(':', stdout);
		fwrite(h->path, 1, h->plen, stdout);
		fputc('\0', stdout);
	} else {
		idx_print_escaped(stdout, h->vm, strlen(h->vm));
		fputc(':', stdout);
		idx_print_escaped(stdout, h->path, h->plen);
		if (h->snippet) {
			fputs(": ", stdout);
			print_snippet(h->snippet);
		}
		fputc('\n', stdout);
	}
	return ferror(stdout) ? -EIO : 0;
}

static sqlite3 *db_open(const char *path)
{
	struct stat st;
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int rc;

	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			die_db(path, "no index database yet");
		die_db(path, strerror(errno));
	}
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(db, 2000);
		rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE"
					" key = 'schema'", -1, &q, NULL);
	}
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(q);
		if (rc == SQLITE_DONE)
			rc = SQLITE_CORRUPT;
		else if (rc == SQLITE_ROW)
			rc = SQLITE_OK;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_OK) {
		char m[256];

		snprintf(m, sizeof(m), "not a usable index database (%s)",
			 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		die_db(path, m);
	}
	return db;
}

static int64_t q_int(sqlite3 *db, const char *sql, const char *arg)
{
	sqlite3_stmt *st;
	int64_t v = 0;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return 0;
	if (arg)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static off_t fsize(const char *p, const char *sfx)
{
	char b[PATH_MAX];
	struct stat st;

	snprintf(b, sizeof(b), "%s%s", p, sfx);
	return stat(b, &st) == 0 ? st.st_size : 0;
}

static int do_stats(sqlite3 *db, const char *dbpath, const char *state_dir)
{
	sqlite3_stmt *st;
	char jdir[PATH_MAX];
	uint64_t head = 0, cur = 0;
	int64_t last = q_int(db, "SELECT value FROM meta WHERE key ="
			     " 'last_seq'", NULL);
	int64_t lt = q_int(db, "SELECT value FROM meta WHERE key ="
			   " 'last_time_ns'", NULL);
	int have_head = 0, have_cur = 0;

	printf("database  %s  %lld bytes (+ %lld WAL)\n", dbpath,
	       (long long)fsize(dbpath, ""), (long long)fsize(dbpath, "-wal"));
	printf("entries   %lld  (text indexed: %lld, pending: %lld)\n",
	       (long long)q_int(db, "SELECT count(*) FROM files", NULL),
	       (long long)q_int(db, "SELECT count(*) FROM files WHERE"
				" text_state = 2", NULL),
	       (long long)q_int(db, "SELECT count(*) FROM files WHERE"
				" text_state = 1", NULL));
	if (state_dir) {
		snprintf(jdir, sizeof(jdir), "%s/journal", state_dir);
		have_head = xf_stream_head_seq(jdir, &head) == 0;
		have_cur = xf_stream_read_cursor(jdir, "indexer", &cur) == 0;
	}
	printf("stream    indexed through seq %lld", (long long)last);
	if (have_cur)
		printf(", cursor %" PRIu64, cur);
	if (have_head)
		printf(", head %" PRIu64 ", lag %" PRIu64 " records", head,
		       head > (uint64_t)last ? head - (uint64_t)last : 0);
	if (lt > 0)
		printf(", last event %llds ago",
		       (long long)(time(NULL) - lt / 1000000000));
	putchar('\n');
	if (sqlite3_prepare_v2(db, "SELECT e.tag, e.state, e.vms, e.crawled,"
			       " (SELECT count(*) FROM files f WHERE"
			       " f.export = e.tag) FROM exports e ORDER BY"
			       " e.tag", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while (sqlite3_step(st) == SQLITE_ROW) {
		printf("export    %s  %lld entries  crawl %s", (const char *)
		       sqlite3_column_text(st, 0),
		       (long long)sqlite3_column_int64(st, 4),
		       (const char *)sqlite3_column_text(st, 1));
		if (!strcmp((const char *)sqlite3_column_text(st, 1),
			    "crawling"))
			printf(" (%lld so far)",
			       (long long)sqlite3_column_int64(st, 3));
		printf("  seen by: %s\n", sqlite3_column_text(st, 2) ?
		       (const char *)sqlite3_column_text(st, 2) : "");
	}
	sqlite3_finalize(st);
	/* files per VM: the exports each VM sees */
	if (sqlite3_prepare_v2(db, "SELECT vms, (SELECT count(*) FROM files f"
			       " WHERE f.export = e.tag) FROM exports e", -1,
			       &st, NULL) != SQLITE_OK)
		return -EIO;
	{
		char names[64][72];
		int64_t cnt[64];
		int nv = 0;

		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *s = (const char *)
					sqlite3_column_text(st, 0);
			int64_t c = sqlite3_column_int64(st, 1);

			while (s && *s) {
				size_t n = strcspn(s, " ");
				int i;

				for (i = 0; i < nv; i++)
					if (strlen(names[i]) == n &&
					    !strncmp(names[i], s, n))
						break;
				if (i == nv && nv < 64 && n < 72) {
					memcpy(names[nv], s, n);
					names[nv][n] = '\0';
					cnt[nv++] = 0;
				}
				if (i < nv)
					cnt[i] += c;
				s += n;
				s += strspn(s, " ");
			}
		}
		for (int i = 0; i < nv; i++) {
			printf("vm        ");
			idx_print_escaped(stdout, names[i], strlen(names[i]));
			printf("  %lld entries\n", (long long)cnt[i]);
		}
	}
	sqlite3_finalize(st);
	return 0;
}

/* Drop a request file for the indexer, then (on a terminal) show the
 * crawl's progress until it is done. */
static int do_reindex(const char *vm, const char *state_dir,
		      const char *dbpath)
{
	char dir[PATH_MAX - 256], tmp[PATH_MAX], req[PATH_MAX];
	sqlite3 *db = NULL;
	int64_t gen0 = 0, t0;
	FILE *f;

	if (strcmp(vm, "*") && !idx_valid_name(vm)) {
		fprintf(stderr, "xenfs-search: bad VM name\n");
		return 2;
	}
	if (access(dbpath, F_OK) == 0) {
		db = db_open(dbpath);
		gen0 = q_int(db, "SELECT coalesce(sum(gen), 0) FROM exports",
			     NULL);
	}
	snprintf(dir, sizeof(dir), "%s/indexer", state_dir);
	if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
		fprintf(stderr, "xenfs-search: %s: %s\n", dir,
			strerror(errno));
		return 2;
	}
	snprintf(tmp, sizeof(tmp), "%s/.req.%d", dir, (int)getpid());
	snprintf(req, sizeof(req), "%s/reindex.%s", dir, vm);
	if (!(f = fopen(tmp, "w")) || fclose(f) != 0 ||
	    rename(tmp, req) < 0) {
		fprintf(stderr, "xenfs-search: %s: %s\n", req, strerror(errno));
		(void)unlink(tmp);
		return 2;
	}
	printf("reindex of %s requested\n", vm);
	if (!db || !isatty(STDOUT_FILENO))
		goto done;
	/* progress: wait for the indexer to start the crawl, then show it */
	t0 = time(NULL);
	while (q_int(db, "SELECT coalesce(sum(gen), 0) FROM exports",
		     NULL) == gen0) {
		if (time(NULL) - t0 > 10) {
			printf("the indexer has not picked the request up yet"
			       " (is xenfs-services running with the "
			       "indexer?)\n");
			goto done;
		}
		usleep(200000);
	}
	for (;;) {
		int64_t busy = q_int(db, "SELECT count(*) FROM exports WHERE"
				     " state = 'crawling'", NULL);
		int64_t done = q_int(db, "SELECT coalesce(sum(crawled), 0)"
				     " FROM exports WHERE state ="
				     " 'crawling'", NULL);
		int64_t total = q_int(db, "SELECT count(*) FROM files f JOIN"
				      " exports e ON e.tag = f.export WHERE"
				      " e.state = 'crawling'", NULL);
		int pct = total > 0 ? (int)(done * 100 / total) : 0;
		char bar[41];

		if (pct > 100)
			pct = 100;
		memset(bar, ' ', 40);
		memset(bar, '#', (size_t)pct * 40 / 100);
		bar[40] = '\0';
		if (busy == 0) {
			printf("\r[%s] done%30s\n", "########################"
			       "################", "");
			break;
		}
		printf("\r[%s] %3d%% %lld entries", bar, pct,
		       (long long)done);
		fflush(stdout);
		usleep(200000);
	}
done:
	sqlite3_close(db);
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_VM = 256, O_PATH_GLOB, O_TYPE, O_SIZE, O_NEWER, O_CONTENT,
	       O_JSON, O_STATS, O_REINDEX, O_DB };
	static const struct option opts[] = {
		{ "ignore-case", no_argument, NULL, 'i' },
		{ "basename", no_argument, NULL, 'b' },
		{ "regex", no_argument, NULL, 'r' },
		{ "regexp", no_argument, NULL, 'r' },
		{ "all", no_argument, NULL, 'A' },
		{ "count", no_argument, NULL, 'c' },
		{ "limit", required_argument, NULL, 'l' },
		{ "null", no_argument, NULL, '0' },
		{ "vm", required_argument, NULL, O_VM },
		{ "path", required_argument, NULL, O_PATH_GLOB },
		{ "type", required_argument, NULL, O_TYPE },
		{ "size", required_argument, NULL, O_SIZE },
		{ "newer", required_argument, NULL, O_NEWER },
		{ "content", no_argument, NULL, O_CONTENT },
		{ "json", no_argument, NULL, O_JSON },
		{ "stats", no_argument, NULL, O_STATS },
		{ "reindex", required_argument, NULL, O_REINDEX },
		{ "config", required_argument, NULL, 'C' },
		{ "db", required_argument, NULL, O_DB },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct idx_query q;
	const char *cfgpath = DEFAULT_CONFIG, *dbpath = NULL, *reindex = NULL;
	const char *state_dir = NULL;
	struct xf_config *cfg = NULL;
	char err[512];
	int ch, stats = 0, cfg_given = 0;
	long r;
	sqlite3 *db;

	memset(&q, 0, sizeof(q));
	*err = '\0';
	q.vms = vm_names;
	while ((ch = getopt_long(argc, argv, "ibrAcl:0C:h", opts,
				 NULL)) != -1) {
		switch (ch) {
		case 'i': q.icase = 1; break;
		case 'b': q.basename = 1; break;
		case 'r': q.regex = 1; break;
		case 'A': q.all = 1; break;
		case 'c': opt_count = 1; break;
		case '0': opt_null = 1; break;
		case 'l': {
			char *e;
			errno = 0;
			q.limit = strtoull(optarg, &e, 10);
			if (errno || *e || !*optarg || *optarg == '-') {
				fprintf(stderr, "xenfs-search: bad limit\n");
				return 2;
			}
			break;
		}
		case O_VM:
			if (!idx_valid_name(optarg)) {
				fprintf(stderr, "xenfs-search: bad VM name\n");
				return 2;
			}
			if (q.nvms == sizeof(vm_names) / sizeof(vm_names[0])) {
				fprintf(stderr, "xenfs-search: too many --vm\n");
				return 2;
			}
			q.vms[q.nvms++] = optarg;
			break;
		case O_PATH_GLOB: q.path_glob = optarg; break;
		case O_TYPE:
			if (strlen(optarg) != 1 || !strchr("fdl", *optarg)) {
				fprintf(stderr, "xenfs-search: --type is f, d "
					"or l\n");
				return 2;
			}
			q.type = *optarg;
			break;
		case O_SIZE:
			if (idx_parse_size(optarg, &q.size_op, &q.size) < 0) {
				fprintf(stderr, "xenfs-search: bad --size '%s'"
					" (e.g. +10M, -1k, 512)\n", optarg);
				return 2;
			}
			break;
		case O_NEWER:
			if (idx_parse_date(optarg, (int64_t)time(NULL),
					   &q.newer) < 0) {
				fprintf(stderr, "xenfs-search: bad --newer '%s'"
					" (e.g. 2024-01-31, @1700000000, 2d)\n",
					optarg);
				return 2;
			}
			q.has_newer = 1;
			break;
		case O_CONTENT: q.content = 1; break;
		case O_JSON: opt_json = 1; break;
		case O_STATS: stats = 1; break;
		case O_REINDEX: reindex = optarg; break;
		case 'C': cfgpath = optarg; cfg_given = 1; break;
		case O_DB: dbpath = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	q.pats = argv + optind;
	q.npats = (size_t)(argc - optind);
	if (!stats && !reindex && q.npats == 0 && !q.type && !q.size_op &&
	    !q.has_newer && !q.path_glob && !q.nvms) {
		usage(stderr);
		return 2;
	}
	if (!dbpath || reindex || stats || cfg_given) {
		cfg = xf_config_load(cfgpath, err, sizeof(err));
		if (!cfg && (!dbpath || reindex)) {
			fprintf(stderr, "xenfs-search: %s\n", err);
			return 2;
		}
	}
	if (cfg) {
		state_dir = cfg->global.state_dir;
		if (!dbpath)
			dbpath = xf_config_value(cfg, "index", "db");
	}
	if (!dbpath) {
		fprintf(stderr, "xenfs-search: no [index] db\n");
		return 2;
	}
	if (reindex) {
		r = do_reindex(reindex, state_dir, dbpath);
		xf_config_free(cfg);
		return (int)r;
	}
	db = db_open(dbpath);
	if (stats) {
		r = do_stats(db, dbpath, state_dir);
		sqlite3_close(db);
		xf_config_free(cfg);
		return r < 0 ? 2 : 0;
	}
	opt_color = !opt_null && !opt_json && isatty(STDOUT_FILENO) &&
		    !getenv("NO_COLOR");
	r = idx_query_run(db, &q, print_hit, NULL, err, sizeof(err));
	sqlite3_close(db);
	xf_config_free(cfg);
	if (r == -EUCLEAN)
		die_db(dbpath, err);
	if (r < 0) {
		fprintf(stderr, "xenfs-search: %s\n", *err ? err :
			strerror((int)-r));
		return 2;
	}
	if (opt_count)
		printf("%ld\n", hits_printed);
	if (fflush(stdout) != 0)
		return 2;
	return r > 0 ? 0 : 1;
}
