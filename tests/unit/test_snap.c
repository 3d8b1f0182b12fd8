/*
 * Unit tests of xenfs-snapshot (services/snapshot/): content-
 * defined chunking (deterministic, bounded, resynchronises after an
 * insertion), chunk store round trip and corruption detection, sparse
 * files stored and written back with their holes, identical content
 * stored once, xattr blobs, the prune selection, and snap_take driven by
 * a journal written by the test (what an incremental looks at).
 * Single-threaded; each test uses its own temporary directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../services/snapshot/snap_i.h"
#include "stream.h"

int snap_quiet = 1;
void snap_progress(uint64_t done, uint64_t total, uint64_t bytes,
		   const char *what)
{
	(void)done; (void)total; (void)bytes; (void)what;
}
void snap_progress_end(void)
{
}

static uint64_t rng = 88172645463325252ull;

static void fill_random(uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		p[i] = (uint8_t)rng;
	}
}

/* Offsets of every cut of buf. */
static size_t cuts(const struct snap_chunker *c, const uint8_t *buf,
		   size_t len, size_t *out, size_t max)
{
	size_t pos = 0, n = 0;

	while (pos < len && n < max) {
		size_t k = snap_chunk_cut(c, buf + pos, len - pos);
		assert_true(k > 0);
		assert_true(k <= c->max);
		if (pos + k < len)
			assert_true(k >= c->min);
		pos += k;
		out[n++] = pos;
	}
	return n;
}

static void test_chunker(void **state)
{
	struct snap_chunker c;
	size_t len = 8 << 20, n1, n2, i, j, same = 0;
	uint8_t *a = malloc(len + 1), *b = malloc(len + 1);
	size_t *c1 = malloc(4096 * sizeof(size_t));
	size_t *c2 = malloc(4096 * sizeof(size_t));

	assert_non_null(a);
	assert_non_null(b);
	snap_chunker_init(&c, 64 * 1024);
	assert_int_equal(c.avg, 65536);
	fill_random(a, len);
	n1 = cuts(&c, a, len, c1, 4096);
	/* average within [avg/4, 2 avg] */
	assert_true(len / n1 >= c.avg / 4);
	assert_true(len / n1 <= 2 * c.avg);
	/* deterministic */
	n2 = cuts(&c, a, len, c2, 4096);
	assert_int_equal(n1, n2);
	assert_memory_equal(c1, c2, n1 * sizeof(size_t));
	/* one byte inserted at the front: all but the first few cuts
	 * move by exactly one */
	b[0] = 0x42;
	memcpy(b + 1, a, len);
	n2 = cuts(&c, b, len + 1, c2, 4096);
	for (i = 0, j = 0; i < n1 && j < n2;) {
		if (c2[j] == c1[i] + 1) {
			same++;
			i++;
			j++;
		} else if (c2[j] < c1[i] + 1) {
			j++;
		} else {
			i++;
		}
	}
	assert_true(same + 3 >= n1);
	/* short input: one chunk */
	assert_int_equal(snap_chunk_cut(&c, a, 100), 100);
	free(a);
	free(b);
	free(c1);
	free(c2);
}

static char *mkrepo(void)
{
	char *d = strdup("/tmp/test_snap.XXXXXX");

	assert_non_null(mkdtemp(d));
	return d;
}

static void rmrepo(char *d)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
	free(d);
}

static void test_chunk_store(void **state)
{
	char *dir = mkrepo(), path[512], hex[65];
	struct snap_repo *r;
	uint8_t data[100000], h[32], h2[32], *out;
	size_t len;
	int fd;

	assert_int_equal(snap_repo_open(dir, 16384, 1, &r), 0);
	assert_int_equal(snap_repo_begin(r), 0);
	fill_random(data, sizeof(data));
	memset(data, 'z', 50000);		/* compressible half */
	assert_int_equal(snap_chunk_put(r, data, sizeof(data), h), 0);
	assert_int_equal(r->new_chunks, 1);
	assert_true(r->new_cbytes < sizeof(data));	/* compressed */
	assert_int_equal(snap_chunk_put(r, data, sizeof(data), h2), 0);
	assert_memory_equal(h, h2, 32);
	assert_int_equal(r->new_chunks, 1);		/* stored once */
	assert_int_equal(r->dedup_chunks, 1);
	assert_int_equal(snap_chunk_get(r, h, &out, &len), 0);
	assert_int_equal(len, sizeof(data));
	assert_memory_equal(out, data, len);
	free(out);
	/* flip one byte of the stored chunk (in the pack): detected */
	assert_int_equal(snap_repo_commit(r), 0);
	snprintf(path, sizeof(path), "%s/packs/%08u.pack", dir, 1u);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\x01", 1, 37 + 20), 1);
	assert_int_equal(snap_chunk_get(r, h, &out, &len), -EBADMSG);
	/* a record whose header does not match the catalog */
	assert_int_equal(pwrite(fd, "\x01", 1, 3), 1);
	assert_int_equal(snap_chunk_get(r, h, &out, &len), -EBADMSG);
	/* a pack cut short */
	assert_int_equal(ftruncate(fd, 40), 0);
	close(fd);
	assert_int_equal(snap_chunk_get(r, h, &out, &len), -EBADMSG);
	/* unknown hash */
	h[0] ^= 1;
	assert_int_equal(snap_chunk_get(r, h, &out, &len), -ENOENT);
	snap_hex(h, hex);
	snap_repo_close(r);
	/* a second writer is refused while one holds the lock */
	assert_int_equal(snap_repo_open(dir, 16384, 1, &r), 0);
	{
		struct snap_repo *r2;
		assert_int_equal(snap_repo_open(dir, 16384, 1, &r2),
				 -EWOULDBLOCK);
	}
	snap_repo_close(r);
	rmrepo(dir);
}

static void test_sparse_roundtrip(void **state)
{
	char *dir = mkrepo(), src[512], dst[512];
	struct snap_repo *r;
	uint8_t *buf = malloc(1 << 20), *back = malloc(1 << 20);
	int64_t id1, id2;
	uint64_t stored;
	struct stat st;
	off_t d;
	int fd, fd2;

	assert_int_equal(snap_repo_open(dir, 16384, 1, &r), 0);
	assert_int_equal(snap_repo_begin(r), 0);
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(dst, sizeof(dst), "%s/dst", dir);
	fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fill_random(buf, 1 << 20);
	assert_int_equal(pwrite(fd, buf, 100000, 0), 100000);
	assert_int_equal(pwrite(fd, buf, 4096, 8 << 20), 4096);
	assert_int_equal(ftruncate(fd, 16 << 20), 0);
	assert_int_equal(snap_store_fd(r, fd, 16 << 20, &id1, &stored), 0);
	/* only data regions were read (filesystems without SEEK_DATA
	 * support report everything as data: then all 16M) */
	assert_true(stored <= (16u << 20));
	/* same content again: the same content id, nothing new */
	assert_int_equal(snap_store_fd(r, fd, 16 << 20, &id2, &stored), 0);
	assert_int_equal(id1, id2);
	fd2 = open(dst, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd2 >= 0);
	assert_int_equal(snap_content_write(r, id1, fd2), 0);
	assert_int_equal(fstat(fd2, &st), 0);
	assert_int_equal(st.st_size, 16 << 20);
	assert_int_equal(pread(fd2, back, 100000, 0), 100000);
	assert_memory_equal(back, buf, 100000);
	assert_int_equal(pread(fd2, back, 4096, 8 << 20), 4096);
	assert_memory_equal(back, buf, 4096);
	/* the hole between is still a hole where the source had one */
	d = lseek(fd, 200000, SEEK_DATA);
	if (d >= (off_t)(8 << 20) - 4096)
		assert_true(lseek(fd2, 200000, SEEK_DATA) >=
			    (off_t)(8 << 20) - 4096);
	close(fd);
	close(fd2);
	assert_int_equal(snap_repo_commit(r), 0);
	snap_repo_close(r);
	free(buf);
	free(back);
	rmrepo(dir);
}

static void test_xattrs(void **state)
{
	char *dir = mkrepo(), a[512], b[512], v[16];
	uint8_t *blob;
	size_t len;
	int fd;

	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	fd = open(a, O_WRONLY | O_CREAT, 0600);
	close(fd);
	fd = open(b, O_WRONLY | O_CREAT, 0600);
	close(fd);
	if (setxattr(a, "user.b", "2", 1, 0) < 0) {
		rmrepo(dir);
		skip();		/* no user xattrs on this filesystem */
	}
	assert_int_equal(setxattr(a, "user.a", "\0\1", 2, 0), 0);
	assert_int_equal(snap_xattrs_read(a, 0, &blob, &len), 0);
	assert_true(len > 0);
	/* sorted by name: user.a first */
	assert_memory_equal(blob + 6, "user.a", 6);
	assert_int_equal(snap_xattrs_apply(b, blob, len), 0);
	assert_int_equal(getxattr(b, "user.a", v, sizeof(v)), 2);
	assert_memory_equal(v, "\0\1", 2);
	assert_int_equal(getxattr(b, "user.b", v, sizeof(v)), 1);
	/* a truncated blob is refused, not overrun */
	assert_int_equal(snap_xattrs_apply(b, blob, len - 1), -EBADMSG);
	free(blob);
	rmrepo(dir);
}

static void test_prune_select(void **state)
{
	const int64_t day = 86400LL * 1000000000LL;
	struct snap_info v[8];
	int i;

	/* 3 on day 0, 3 on day 1, 2 on day 5 */
	int64_t t[8] = { 10, 20, 30, day + 1, day + 2, day + 3,
			 5 * day + 1, 5 * day + 2 };
	for (i = 0; i < 8; i++) {
		v[i].id = i + 1;
		v[i].time_ns = t[i];
	}
	snap_prune_select(v, 8, 1, 0);
	for (i = 0; i < 8; i++)
		assert_int_equal(v[i].keep, i == 7);
	snap_prune_select(v, 8, 2, 2);
	/* last 2: ids 7, 8; daily: newest of day 5 (8), of day 1 (6) */
	for (i = 0; i < 8; i++)
		assert_int_equal(v[i].keep, i == 5 || i == 6 || i == 7);
	snap_prune_select(v, 8, 1, 10);
	for (i = 0; i < 8; i++)
		assert_int_equal(v[i].keep, i == 2 || i == 5 || i == 7);
	snap_prune_select(v, 0, 3, 3);	/* empty: no crash */
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "a");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void journal_add(struct xf_stream_writer *w, uint32_t op,
			const char *exp, const char *path)
{
	struct xenfs_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.op = op;
	ev.domain = "";
	ev.export_tag = exp;
	ev.path = path;
	ev.path2 = "";
	assert_int_equal(xf_stream_append(w, &ev), 0);
}

/*
 * snap_take against a journal written here (no xenfsd, --no-freeze): the
 * first snapshot walks everything, the next ones look only at the paths
 * the journal names, a change the journal misses is found only by
 * --verify-walk, and a resync record forces a walk.
 */
static void test_take_incremental(void **state)
{
	char *top = mkrepo(), exp[512], repo[512], jdir[512], name[32];
	struct snap_export ex = { "e", exp };
	struct snap_take_opts o;
	struct snap_take_result res;
	struct xf_stream_wopts wo = { 1 << 20, 64 << 20 };
	struct xf_stream_writer *w;
	struct snap_repo *r;
	int i;

	snprintf(exp, sizeof(exp), "%s/export", top);
	snprintf(repo, sizeof(repo), "%s/repo", top);
	snprintf(jdir, sizeof(jdir), "%s/journal", top);
	assert_int_equal(mkdir(exp, 0755), 0);
	for (i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		write_file(exp, name, "data\n");
	}
	assert_int_equal(xf_stream_writer_open(jdir, &wo, &w), 0);
	memset(&o, 0, sizeof(o));
	o.vm = "vm";
	o.exports = &ex;
	o.nexports = 1;
	o.ctl_socket = "/nonexistent";
	o.journal_dir = jdir;
	o.no_freeze = 1;
	o.freeze_copy_max = 1 << 20;

	assert_int_equal(snap_repo_open(repo, 16384, 1, &r), 0);
	assert_int_equal(snap_take(r, &o, &res), 0);
	assert_true(res.full);
	assert_int_equal(res.visited, 51);	/* root + 50 files */
	assert_int_equal(res.changed, 51);

	/* one change the journal knows about: only it is looked at */
	write_file(exp, "f3", "more\n");
	journal_add(w, XENFS_EV_MODIFY, "e", "/f3");
	journal_add(w, XENFS_EV_MODIFY, "other", "/f4");	/* not ours */
	assert_int_equal(snap_take(r, &o, &res), 0);
	assert_false(res.full);
	assert_int_equal(res.visited, 1);
	assert_int_equal(res.changed, 1);

	/* nothing new: nothing looked at */
	assert_int_equal(snap_take(r, &o, &res), 0);
	assert_int_equal(res.visited, 0);
	assert_int_equal(res.new_bytes, 0);

	/* a change behind the journal's back: missed, then walked */
	usleep(10000);
	write_file(exp, "f4", "sneaky\n");
	assert_int_equal(snap_take(r, &o, &res), 0);
	assert_int_equal(res.changed, 0);
	o.verify_walk = 1;
	assert_int_equal(snap_take(r, &o, &res), 0);
	o.verify_walk = 0;
	assert_true(res.full);
	assert_int_equal(res.visited, 51);
	assert_int_equal(res.changed, 1);

	/* a created directory with files (recursive refresh), then a
	 * resync record: the next one walks */
	{
		char d[600];

		snprintf(d, sizeof(d), "%s/d", exp);
		assert_int_equal(mkdir(d, 0755), 0);
		write_file(d, "x", "x\n");
		write_file(d, "y", "y\n");
	}
	journal_add(w, XENFS_EV_MKDIR, "e", "/d");
	assert_int_equal(snap_take(r, &o, &res), 0);
	assert_false(res.full);
	/* /d, /d/x, /d/y and the root (parent of /d) */
	assert_int_equal(res.changed, 4);
	journal_add(w, XENFS_EV_RESYNC, "", "");
	assert_int_equal(snap_take(r, &o, &res), 0);
	assert_true(res.full);
	assert_int_equal(res.visited, 54);

	xf_stream_writer_close(w);
	snap_repo_close(r);
	rmrepo(top);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunker),
		cmocka_unit_test(test_chunk_store),
		cmocka_unit_test(test_sparse_roundtrip),
		cmocka_unit_test(test_xattrs),
		cmocka_unit_test(test_prune_select),
		cmocka_unit_test(test_take_incremental),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
