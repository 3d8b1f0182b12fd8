/*
 * xf-bench-index: the indexer's benchmark driver (tests/bench/50-index.sh),
 * never installed.
 *
 *   xf-bench-index mktree DIR NFILES     a tree of NFILES files, 100 per
 *                                        directory, every 10th with text
 *   xf-bench-index run DIR DB [QUERIES]  crawl DIR into a fresh DB (names
 *                                        and metadata), then the content
 *                                        pass, then QUERIES (default 300)
 *                                        queries of each kind
 *
 * run prints "label value" pairs on one line: crawl files/s, content
 * files/s, and p50/p99 in ms of name (a whole file name), substring (5
 * characters inside names) and content (a word) queries, measured in
 * process through the same query engine as xenfs-search, on a read-only
 * connection like xenfs-search's.
 * Single-threaded; the trees are our own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "index_i.h"

static void blog(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void blog(int prio, const char *fmt, ...)
{
	va_list ap;

	if (prio > 4)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int mktree(const char *dir, long n)
{
	char p[4096];

	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -1;
	for (long i = 0; i < n; i++) {
		int fd;

		if (i % 100 == 0) {
			snprintf(p, sizeof(p), "%s/dir%04ld", dir, i / 100);
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				return -1;
		}
		snprintf(p, sizeof(p), "%s/dir%04ld/file-%06ld-report.%s",
			 dir, i / 100, i, i % 10 ? "dat" : "txt");
		fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			return -1;
		if (i % 10 == 0) {
			char t[256];
			int l = snprintf(t, sizeof(t), "quarterly summary "
					 "number token%06ld for the archive, "
					 "lorem ipsum dolor sit amet\n", i);
			if (write(fd, t, (size_t)l) != l) {
				close(fd);
				return -1;
			}
		}
		close(fd);
	}
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int count_cb(const struct idx_hit *h, void *arg)
{
	(void)h;
	(*(long *)arg)++;
	return 0;
}

/* Time nq queries of one kind; prints "KIND_p50 X KIND_p99 Y". */
static int qbench(sqlite3 *db, const char *kind, long nfiles, int nq)
{
	double *t = calloc((size_t)nq, sizeof(double));
	char pat[128], err[256];
	int misses = 0;

	if (!t)
		return -1;
	srand(42);
	for (int i = 0; i < nq; i++) {
		long id = rand() % nfiles;
		char *pats[1] = { pat };
		struct idx_query q = { .pats = pats, .npats = 1 };
		long hits = 0, r;
		double t0;

		if (!strcmp(kind, "name")) {
			snprintf(pat, sizeof(pat), "file-%06ld-report.%s", id,
				 id % 10 ? "dat" : "txt");
		} else if (!strcmp(kind, "substring")) {
			snprintf(pat, sizeof(pat), "%06ld", id);
			memmove(pat, pat + 1, 6);	/* 5 inner digits */
		} else {
			id -= id % 10;
			snprintf(pat, sizeof(pat), "token%06ld", id);
			q.content = 1;
		}
		t0 = now_s();
		r = idx_query_run(db, &q, count_cb, &hits, err, sizeof(err));
		t[i] = (now_s() - t0) * 1000;
		if (r < 0) {
			fprintf(stderr, "query %s: %s\n", pat, err);
			free(t);
			return -1;
		}
		if (hits == 0)
			misses++;
	}
	qsort(t, (size_t)nq, sizeof(double), cmp_d);
	printf(" %s_p50 %.3f %s_p99 %.3f", kind, t[nq / 2], kind,
	       t[(nq * 99) / 100 < nq ? (nq * 99) / 100 : nq - 1]);
	if (misses)
		fprintf(stderr, "%s: %d queries found nothing\n", kind, misses);
	free(t);
	return misses ? -1 : 0;
}

static int run(const char *dir, const char *dbp, int nq)
{
	struct idx idx;
	struct idx_export ex;
	uint64_t files = 0, pend;
	double t0, tc, tt;
	sqlite3 *ro;
	int rb, r;
	char p[4096];

	memset(&idx, 0, sizeof(idx));
	pthread_mutex_init(&idx.lock, NULL);
	idx.log = blog;
	idx.max_text = 10u << 20;
	idx.ext.sock = -1;
	idx.ext.pid = -1;
	snprintf(p, sizeof(p), "rm -f '%s' '%s-wal' '%s-shm'", dbp, dbp, dbp);
	if (system(p) != 0)
		return 2;
	if (ext_start(&idx.ext) < 0 || idx_open(&idx, dbp, &rb) < 0)
		return 2;
	ex.tag = (char *)"bench";
	ex.path = (char *)dir;
	if ((ex.rootfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
		return 2;
	idx.exports = &ex;
	idx.nexports = 1;
	if (idx_begin(&idx) < 0 ||
	    idx_export_put(&idx, "bench", dir, "bench:rw", "bench") < 0 ||
	    idx_crawl_start(&idx, "bench") < 0 || idx_commit(&idx) < 0)
		return 2;
	t0 = now_s();
	while ((r = idx_crawl_step(&idx, 200, &files)) > 0)
		;
	if (r < 0)
		return 2;
	tc = now_s() - t0;
	pend = 0;
	t0 = now_s();
	while ((r = idx_content_step(&idx, 256, 500)) > 0)
		pend++;
	tt = now_s() - t0;
	printf("crawl_files %llu crawl_rate %.0f content_rate %.0f",
	       (unsigned long long)files, files / tc, (files / 10) / tt);
	(void)pend;
	ext_stop(&idx.ext);
	close(ex.rootfd);
	idx.exports = NULL;
	idx_close(&idx);
	if (sqlite3_open_v2(dbp, &ro, SQLITE_OPEN_READONLY, NULL) !=
	    SQLITE_OK)
		return 2;
	r = qbench(ro, "name", (long)files * 100 / 101, nq);
	if (r == 0)
		r = qbench(ro, "substring", (long)files * 100 / 101, nq);
	if (r == 0)
		r = qbench(ro, "content", (long)files * 100 / 101, nq);
	putchar('\n');
	sqlite3_close(ro);
	return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "mktree"))
		return mktree(argv[2], atol(argv[3])) < 0 ? 1 : 0;
	if ((argc == 4 || argc == 5) && !strcmp(argv[1], "run"))
		return run(argv[2], argv[3], argc == 5 ? atoi(argv[4]) : 300);
	fprintf(stderr, "usage: xf-bench-index mktree DIR NFILES | "
		"run DIR DB [QUERIES]\n");
	return 2;
}
