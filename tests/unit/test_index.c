/*
 * Unit tests of the indexer's pieces without xenfsd: escaping and
 * argument parsing (util.c), the content sniffer and the unprivileged
 * helper (extract.c), the database operations (db.c: upsert, delete of a
 * subtree, rename of a 10k-entry directory by prefix, exchange), the
 * crawler (crawl.c: symlinks not followed, resumable queue), corruption
 * detection at open, and the query engine (query.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../services/indexer/index_i.h"

static char tmpdir[256];

static void tlog(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void tlog(int prio, const char *fmt, ...)
{
	va_list ap;

	if (!getenv("TEST_VERBOSE"))
		return;
	va_start(ap, fmt);
	fprintf(stderr, "[%d] ", prio);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static char *esc(const char *s, size_t n, int json)
{
	static char out[1024];
	FILE *f = fmemopen(out, sizeof(out), "w");

	assert_non_null(f);
	if (json)
		idx_print_json(f, s, n);
	else
		idx_print_escaped(f, s, n);
	fclose(f);
	return out;
}

static void test_escape(void **st)
{
	(void)st;
	assert_string_equal(esc("a/b c", 5, 0), "a/b c");
	assert_string_equal(esc("x\033[31my", 7, 0), "x\\x1b[31my");
	assert_string_equal(esc("bad\xff\xfe", 5, 0), "bad\\xff\\xfe");
	assert_string_equal(esc("a\\b\nc", 5, 0), "a\\\\b\\nc");
	assert_string_equal(esc("caf\xc3\xa9", 5, 0), "caf\xc3\xa9");
	/* C1 control U+009B (CSI) is escaped byte by byte */
	assert_string_equal(esc("\xc2\x9b" "1m", 4, 0), "\\xc2\\x9b1m");
	assert_string_equal(esc("q\"\x01", 3, 1), "q\\\"\\\\x01");
	assert_string_equal(esc("a\\b", 3, 1), "a\\\\\\\\b");
}

static void test_parse(void **st)
{
	uint64_t b;
	int64_t t;
	char op;

	(void)st;
	assert_int_equal(idx_parse_size("+10M", &op, &b), 0);
	assert_int_equal(op, '+');
	assert_int_equal(b, 10u << 20);
	assert_int_equal(idx_parse_size("-1k", &op, &b), 0);
	assert_int_equal(op, '-');
	assert_int_equal(b, 1024);
	assert_int_equal(idx_parse_size("512", &op, &b), 0);
	assert_int_equal(op, '=');
	assert_int_equal(b, 512);
	assert_int_equal(idx_parse_size("1.5M", &op, &b), -EINVAL);
	assert_int_equal(idx_parse_size("+", &op, &b), -EINVAL);
	assert_int_equal(idx_parse_size("3X", &op, &b), -EINVAL);
	assert_int_equal(idx_parse_date("@1700000000", 0, &t), 0);
	assert_int_equal(t, 1700000000);
	assert_int_equal(idx_parse_date("2d", 1000000, &t), 0);
	assert_int_equal(t, 1000000 - 2 * 86400);
	assert_int_equal(idx_parse_date("2024-01-31", 0, &t), 0);
	assert_true(t > 1706000000 && t < 1706800000);
	assert_int_equal(idx_parse_date("2024-01-31 12:30", 0, &t), 0);
	assert_int_equal(idx_parse_date("yesterday", 0, &t), -EINVAL);
	assert_int_equal(idx_parse_date("@x", 0, &t), -EINVAL);
}

static void test_vms(void **st)
{
	const char *doms[] = { "vm1", "vm2", "vm3" };
	char buf[256];

	(void)st;
	idx_vms_of("vm1:rw vm2:ro", doms, 3, buf, sizeof(buf));
	assert_string_equal(buf, "vm1 vm2");
	idx_vms_of("vm2:ro '*':ro", doms, 3, buf, sizeof(buf));
	assert_string_equal(buf, "vm2 vm1 vm3");
	idx_vms_of("*:ro", NULL, 0, buf, sizeof(buf));
	assert_string_equal(buf, "*");
	/* an empty domain name (found by fuzz_index: looped forever) */
	idx_vms_of(":rw vm1:ro", doms, 3, buf, sizeof(buf));
	assert_string_equal(buf, "vm1");
	assert_true(idx_vm_sees("vm1:rw vm2:ro", "vm2"));
	assert_false(idx_vm_sees("vm1:rw vm2:ro", "vm3"));
	assert_true(idx_vm_sees("vm1:rw *:ro", "vm3"));
	assert_false(idx_vm_sees("vm10:rw", "vm1"));
	assert_true(idx_valid_name("vm-1.a_b"));
	assert_false(idx_valid_name("../x"));
	assert_false(idx_valid_name("a b"));
}

static void test_sniff(void **st)
{
	char a[] = "hello\tworld\nline\033[2J two";
	char b[] = "ELF\0\0\1binary";
	char c[] = "latin \xe9t\xe9 text, and more plain words after it";
	char d[64];

	(void)st;
	assert_int_equal(ext_sniff(a, strlen(a)), IDX_TEXT_DONE);
	assert_string_equal(a, "hello world\nline [2J two");
	assert_int_equal(ext_sniff(b, sizeof(b) - 1), IDX_TEXT_BINARY);
	assert_int_equal(ext_sniff(c, strlen(c)), IDX_TEXT_DONE);
	assert_string_equal(c, "latin ?t? text, and more plain words after it");
	memset(d, 1, sizeof(d));
	assert_int_equal(ext_sniff(d, sizeof(d)), IDX_TEXT_BINARY);
	assert_int_not_equal(ext_hash(EXT_HASH_INIT, "a", 1),
			     ext_hash(EXT_HASH_INIT, "b", 1));
}

static void test_helper(void **st)
{
	struct idx_extractor x = { .pid = -1, .sock = -1 };
	char path[512], *text;
	size_t len;
	uint64_t hash;
	int fd;

	(void)st;
	assert_int_equal(ext_start(&x), 0);
	snprintf(path, sizeof(path), "%s/t.txt", tmpdir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "some words here\n", 16), 16);
	/* mode 0600 owned by root: the helper (nobody) reads only through
	 * the descriptor it is given */
	assert_int_equal(ext_extract(&x, fd, 1 << 20, &text, &len, &hash),
			 IDX_TEXT_DONE);
	assert_int_equal(len, 16);
	assert_memory_equal(text, "some words here\n", 16);
	assert_int_equal(hash, ext_hash(EXT_HASH_INIT, text, 16));
	free(text);
	/* limit: only max bytes are read */
	assert_int_equal(ext_extract(&x, fd, 4, &text, &len, &hash),
			 IDX_TEXT_DONE);
	assert_int_equal(len, 4);
	free(text);
	close(fd);
	/* a killed helper is restarted by the next call */
	kill(x.pid, SIGKILL);
	fd = open(path, O_RDONLY);
	assert_true(ext_extract(&x, fd, 100, &text, &len, &hash) < 0 ||
		    text != NULL);
	free(text);
	assert_int_equal(ext_extract(&x, fd, 100, &text, &len, &hash),
			 IDX_TEXT_DONE);
	free(text);
	close(fd);
	ext_stop(&x);
}

/* ---- database and query ---- */

static void idx_setup(struct idx *idx, const char *name)
{
	char p[512];
	int rb;

	memset(idx, 0, sizeof(*idx));
	pthread_mutex_init(&idx->lock, NULL);
	idx->log = tlog;
	idx->max_text = 1 << 20;
	idx->ext.sock = -1;
	idx->ext.pid = -1;
	snprintf(p, sizeof(p), "%s/%s", tmpdir, name);
	assert_int_equal(idx_open(idx, p, &rb), 0);
}

static struct idx_meta M(char type, uint64_t size)
{
	struct idx_meta m = { .type = type, .size = size, .mode = 0644,
			      .mtime = 1700000000 };
	return m;
}

static int collect(const struct idx_hit *h, void *arg)
{
	char *buf = arg;
	size_t n = strlen(buf);

	snprintf(buf + n, 4096 - n, "%s:%.*s\n", h->vm, (int)h->plen,
		 h->path);
	return 0;
}

static long Q(struct idx *idx, struct idx_query *q, char *out)
{
	char err[256] = "";
	long r;

	out[0] = '\0';
	r = idx_query_run(idx->db, q, collect, out, err, sizeof(err));
	if (r < 0)
		fprintf(stderr, "query: %s\n", err);
	return r;
}

static long qname(struct idx *idx, const char *pat, char *out)
{
	char *pats[] = { (char *)pat };
	struct idx_query q = { .pats = pats, .npats = 1 };

	return Q(idx, &q, out);
}

static void test_db_ops(void **st)
{
	struct idx idx;
	struct idx_meta m;
	char out[4096], path[64];
	uint64_t n;
	int moved;

	(void)st;
	idx_setup(&idx, "ops.db");
	assert_int_equal(idx_begin(&idx), 0);
	assert_int_equal(idx_export_put(&idx, "sh", "/x", "vm1:rw vm2:ro",
					"vm1 vm2"), 0);
	assert_int_equal(idx_export_put(&idx, "h1", "/y", "vm1:rw", "vm1"),
			 0);
	m = M('d', 0);
	assert_int_equal(idx_put(&idx, "sh", "/dir", 4, &m, 1, 0), 0);
	m = M('f', 10);
	assert_int_equal(idx_put(&idx, "sh", "/dir/Report.TXT", 15, &m, 1, 0),
			 0);
	assert_int_equal(idx_put(&idx, "h1", "/mine.txt", 9, &m, 1, 0), 0);
	/* a name that is not UTF-8, with an escape sequence */
	assert_int_equal(idx_put(&idx, "sh", "/bad\xff\033[2Jname", 13, &m,
				 1, 0), 0);
	/* upsert again: still one row */
	assert_int_equal(idx_put(&idx, "sh", "/dir/Report.TXT", 15, &m, 1, 0),
			 0);
	/* 10k entries in one directory, renamed by prefix */
	for (int i = 0; i < 10000; i++) {
		int l = snprintf(path, sizeof(path), "/dir/sub/f%05d", i);
		assert_int_equal(idx_put(&idx, "sh", path, (size_t)l, &m, 1,
					 0), 0);
	}
	assert_int_equal(idx_commit(&idx), 0);

	assert_int_equal(qname(&idx, "Report", out), 2);
	assert_string_equal(out, "vm1:/dir/Report.TXT\nvm2:/dir/Report.TXT\n");
	assert_int_equal(qname(&idx, "report", out), 0);
	{
		char *pats[] = { "report" };
		char *vms[] = { "vm2" };
		struct idx_query q = { .pats = pats, .npats = 1, .icase = 1,
				       .vms = vms, .nvms = 1 };
		assert_int_equal(Q(&idx, &q, out), 1);
		assert_string_equal(out, "vm2:/dir/Report.TXT\n");
	}
	assert_int_equal(qname(&idx, "mine", out), 1);
	assert_string_equal(out, "vm1:/mine.txt\n");
	assert_int_equal(qname(&idx, "\xff\033", out), 2);
	assert_int_equal(qname(&idx, "f09999", out), 2);

	/* the rename of the directory moves every entry below it */
	assert_int_equal(idx_begin(&idx), 0);
	assert_int_equal(idx_rename(&idx, "sh", "/dir", "/moved", &moved), 0);
	assert_int_equal(moved, 1);
	assert_int_equal(idx_commit(&idx), 0);
	assert_int_equal(qname(&idx, "f09999", out), 2);
	assert_string_equal(out, "vm1:/moved/sub/f09999\n"
			    "vm2:/moved/sub/f09999\n");
	assert_int_equal(qname(&idx, "/dir/", out), 0);
	{
		char *pats[] = { "/moved/sub/*" };
		struct idx_query q = { .pats = pats, .npats = 1 };
		assert_int_equal(Q(&idx, &q, out), 20000);
	}
	/* exchange */
	assert_int_equal(idx_begin(&idx), 0);
	m = M('f', 1);
	assert_int_equal(idx_put(&idx, "sh", "/a", 2, &m, 1, 0), 0);
	m = M('d', 0);
	assert_int_equal(idx_put(&idx, "sh", "/b", 2, &m, 1, 0), 0);
	m = M('f', 2);
	assert_int_equal(idx_put(&idx, "sh", "/b/inner", 8, &m, 1, 0), 0);
	assert_int_equal(idx_exchange(&idx, "sh", "/a", "/b"), 0);
	assert_int_equal(idx_commit(&idx), 0);
	assert_int_equal(qname(&idx, "inner", out), 2);
	assert_string_equal(out, "vm1:/a/inner\nvm2:/a/inner\n");
	/* delete of a subtree */
	assert_int_equal(idx_begin(&idx), 0);
	assert_int_equal(idx_del(&idx, "sh", "/moved", 6, &n), 0);
	assert_int_equal(n, 10002);
	assert_int_equal(idx_commit(&idx), 0);
	assert_int_equal(qname(&idx, "f0", out), 0);
	assert_int_equal(qname(&idx, "Report", out), 0);
	idx_close(&idx);
}

static void mk(const char *rel, const char *content)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/tree%s", tmpdir, rel);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static void test_crawl(void **st)
{
	struct idx idx;
	char root[512], p[600], out[4096];
	uint64_t files = 0;
	int r, steps = 0;

	(void)st;
	snprintf(root, sizeof(root), "%s/tree", tmpdir);
	mkdir(root, 0755);
	for (int i = 0; i < 30; i++) {
		snprintf(p, sizeof(p), "%s/d%02d", root, i);
		mkdir(p, 0755);
		snprintf(p, sizeof(p), "/d%02d/note.txt", i);
		mk(p, i == 7 ? "the magic word is xylophone\n" : "plain\n");
	}
	mk("/bin.dat", "MZ\x90");
	snprintf(p, sizeof(p), "%s/bin.dat", root);
	{
		FILE *f = fopen(p, "w");
		fwrite("MZ\0\0\0binary", 1, 11, f);
		fclose(f);
	}
	/* a symlink to a directory outside: indexed as a link, not entered */
	snprintf(p, sizeof(p), "%s/escape", root);
	assert_int_equal(symlink("/etc", p), 0);

	idx_setup(&idx, "crawl.db");
	assert_int_equal(ext_start(&idx.ext), 0);
	idx.nexports = 1;
	idx.exports = calloc(1, sizeof(*idx.exports));
	idx.exports[0].tag = strdup("t");
	idx.exports[0].path = strdup(root);
	idx.exports[0].rootfd = open(root, O_PATH | O_DIRECTORY);
	assert_int_equal(idx_begin(&idx), 0);
	assert_int_equal(idx_export_put(&idx, "t", root, "vm1:rw", "vm1"), 0);
	assert_int_equal(idx_crawl_start(&idx, "t"), 0);
	assert_int_equal(idx_commit(&idx), 0);
	snprintf(p, sizeof(p), "%s/fifo", root);
	assert_int_equal(mkfifo(p, 0644), 0);
	/* one tiny step, then "crash": close and reopen; the queue resumes */
	r = idx_crawl_step(&idx, 0, &files);
	assert_int_equal(r, 1);
	/* meanwhile a guest renames a directory the crawl has not reached
	 * (its queue entry follows) and creates a file (an event: it has
	 * the crawl's generation, so the end of the crawl keeps it) */
	{
		char a[600], b[600];
		struct idx_meta m = M('f', 1);
		int moved;

		snprintf(a, sizeof(a), "%s/d10", root);
		snprintf(b, sizeof(b), "%s/e10", root);
		assert_int_equal(rename(a, b), 0);
		assert_int_equal(idx_begin(&idx), 0);
		assert_int_equal(idx_rename(&idx, "t", "/d10", "/e10", &moved),
				 0);
		assert_int_equal(moved, 1);
		assert_int_equal(idx_put(&idx, "t", "/from-event", 11, &m,
					 idx_export_gen(&idx, "t"), 1), 0);
		assert_int_equal(idx_commit(&idx), 0);
	}
	idx_close(&idx);
	{
		char dbp[512];
		int rb;
		snprintf(dbp, sizeof(dbp), "%s/crawl.db", tmpdir);
		assert_int_equal(idx_open(&idx, dbp, &rb), 0);
		assert_int_equal(rb, 0);
	}
	while ((r = idx_crawl_step(&idx, 50, &files)) > 0 && steps++ < 1000)
		;
	assert_int_equal(r, 0);
	assert_int_equal(files, 30 + 30 + 3);
	/* a pending file swapped for a FIFO: never opened for reading (it
	 * would block), left without text */
	snprintf(p, sizeof(p), "%s/d05/note.txt", root);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(mkfifo(p, 0644), 0);
	while (idx_content_step(&idx, 64, 1000) > 0)
		;
	{
		char *pats[] = { "/e10/note.txt" };
		struct idx_query q = { .pats = pats, .npats = 1 };
		assert_int_equal(Q(&idx, &q, out), 1);
		pats[0] = "/d10/";
		assert_int_equal(Q(&idx, &q, out), 0);
		pats[0] = "from-event";
		assert_int_equal(Q(&idx, &q, out), 1);
		pats[0] = "fifo";
		q.type = 'f';
		assert_int_equal(Q(&idx, &q, out), 0);
	}
	assert_int_equal(qname(&idx, "note.txt", out), 30);
	assert_int_equal(qname(&idx, "escape", out), 1);
	/* not followed */
	assert_int_equal(qname(&idx, "passwd", out), 0);
	{
		char *pats[] = { "xylophone" };
		struct idx_query q = { .pats = pats, .npats = 1, .content = 1 };
		char err[128];
		assert_int_equal(Q(&idx, &q, out), 1);
		assert_string_equal(out, "vm1:/d07/note.txt\n");
		pats[0] = "binary";
		assert_int_equal(idx_query_run(idx.db, &q, NULL, NULL, err,
					       sizeof(err)), 0);
	}
	{
		struct idx_query q = { .type = 'd' };
		assert_int_equal(Q(&idx, &q, out), 30);
		q.type = 'l';
		assert_int_equal(Q(&idx, &q, out), 1);
		q.type = 'f';
		q.size_op = '+';
		q.size = 10;
		assert_int_equal(Q(&idx, &q, out), 2);	/* magic + bin */
		q.size_op = 0;
		q.path_glob = "/d0[0-4]/*";
		assert_int_equal(Q(&idx, &q, out), 5);
	}
	{
		char *pats[] = { "^/d1[0-9]/n" };
		struct idx_query q = { .pats = pats, .npats = 1, .regex = 1,
				       .limit = 3 };
		assert_int_equal(Q(&idx, &q, out), 3);
		q.limit = 0;
		assert_int_equal(Q(&idx, &q, out), 9);	/* d10 is e10 */
		pats[0] = "(";
		assert_true(Q(&idx, &q, out) < 0);
	}
	/* re-crawl after a file vanished behind our back: it goes */
	snprintf(p, sizeof(p), "%s/d03/note.txt", root);
	unlink(p);
	assert_int_equal(idx_begin(&idx), 0);
	assert_int_equal(idx_crawl_start(&idx, "t"), 0);
	assert_int_equal(idx_commit(&idx), 0);
	while (idx_crawl_step(&idx, 50, &files) > 0)
		;
	assert_int_equal(qname(&idx, "note.txt", out), 29);
	assert_int_equal(qname(&idx, "from-event", out), 0);	/* not on disk */
	ext_stop(&idx.ext);
	close(idx.exports[0].rootfd);
	free(idx.exports[0].tag);
	free(idx.exports[0].path);
	free(idx.exports);
	idx_close(&idx);
}

static void test_corrupt(void **st)
{
	struct idx idx;
	char p[512], c[600], out[4096];
	int fd, rb;

	(void)st;
	idx_setup(&idx, "bad.db");
	assert_int_equal(idx_begin(&idx), 0);
	assert_int_equal(idx_export_put(&idx, "sh", "/x", "vm1:rw", "vm1"),
			 0);
	{
		struct idx_meta m = M('f', 1);
		assert_int_equal(idx_put(&idx, "sh", "/keep", 5, &m, 1, 0), 0);
	}
	assert_int_equal(idx_commit(&idx), 0);
	idx_close(&idx);
	snprintf(p, sizeof(p), "%s/bad.db", tmpdir);
	/* scribble over the pages after the header */
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	for (off_t o = 100; o < 64 * 1024; o += 512)
		assert_int_equal(pwrite(fd, "garbage!garbage!", 16, o), 16);
	close(fd);
	memset(&idx, 0, sizeof(idx));
	idx.log = tlog;
	assert_int_equal(idx_open(&idx, p, &rb), 0);
	assert_int_equal(rb, 1);
	snprintf(c, sizeof(c), "%s.corrupt", p);
	assert_int_equal(access(c, F_OK), 0);
	assert_int_equal(qname(&idx, "keep", out), 0);	/* empty, usable */
	idx_close(&idx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_vms),
		cmocka_unit_test(test_sniff),
		cmocka_unit_test(test_helper),
		cmocka_unit_test(test_db_ops),
		cmocka_unit_test(test_crawl),
		cmocka_unit_test(test_corrupt),
	};
	char cmd[300];
	int r;

	snprintf(tmpdir, sizeof(tmpdir), "%s/test_index.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir))
		return 1;
	chmod(tmpdir, 0755);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (!getenv("TEST_KEEP") && system(cmd) != 0)
		r++;
	return r;
}
