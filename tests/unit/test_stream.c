/*
 * Unit tests of the operation journal (lib/stream.c): round trip,
 * rotation, torn-tail recovery, CRC damage, cursors, trimming with the
 * gap signal, and recovery from records lost in a machine crash.  Each
 * test works in its own mkdtemp directory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stream.h"

static char tdir[64];

static int setup(void **st)
{
	snprintf(tdir, sizeof(tdir), "/tmp/xf-stream-XXXXXX");
	assert_non_null(mkdtemp(tdir));
	return 0;
}

static int teardown(void **st)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tdir);
	return system(cmd) == 0 ? 0 : -1;
}

static struct xf_stream_writer *wopen(uint64_t seg, uint64_t max)
{
	struct xf_stream_wopts o = { seg, max };
	struct xf_stream_writer *w;

	assert_int_equal(xf_stream_writer_open(tdir, &o, &w), 0);
	return w;
}

static uint64_t add(struct xf_stream_writer *w, uint32_t op,
		    const char *path, const char *path2, uint64_t ino)
{
	struct xenfs_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.op = op;
	ev.domain = "vm1";
	ev.export_tag = "shared";
	ev.path = path;
	ev.path2 = path2;
	ev.ino = ino;
	ev.dev = 42;
	ev.size = ino * 10;
	ev.mtime_sec = 1700000000;
	ev.mtime_nsec = 5;
	ev.generation = 7;
	ev.mode = 0100644;
	assert_int_equal(xf_stream_append(w, &ev), 0);
	return ev.seq;
}

static struct xenfs_event *next_ev(struct xf_stream_reader *r)
{
	struct xenfs_event *ev = NULL;

	assert_int_equal(xf_stream_next(r, &ev, NULL, NULL), XF_STREAM_EVENT);
	return ev;
}

static void expect_empty(struct xf_stream_reader *r)
{
	struct xenfs_event *ev = NULL;

	assert_int_equal(xf_stream_next(r, &ev, NULL, NULL), XF_STREAM_EMPTY);
	assert_null(ev);
}

static void test_roundtrip(void **st)
{
	struct xf_stream_writer *w = wopen(1 << 20, 1 << 30);
	struct xf_stream_reader *r;
	struct xenfs_event *ev;

	assert_int_equal(add(w, XENFS_EV_CREATE, "/a", NULL, 1), 1);
	assert_int_equal(add(w, XENFS_EV_RENAME, "/a", "/b", 1), 2);
	assert_int_equal(xf_stream_head(w), 2);
	assert_int_equal(xf_stream_reader_open(tdir, "idx", &r), 0);
	ev = next_ev(r);
	assert_int_equal(ev->seq, 1);
	assert_int_equal(ev->op, XENFS_EV_CREATE);
	assert_string_equal(ev->domain, "vm1");
	assert_string_equal(ev->export_tag, "shared");
	assert_string_equal(ev->path, "/a");
	assert_string_equal(ev->path2, "");
	assert_int_equal(ev->dev, 42);
	assert_int_equal(ev->ino, 1);
	assert_int_equal(ev->size, 10);
	assert_int_equal(ev->generation, 7);
	assert_int_equal(ev->mtime_sec, 1700000000);
	assert_int_equal(ev->mode, 0100644);
	assert_true(ev->time_ns > 0);
	free(ev);
	ev = next_ev(r);
	assert_string_equal(ev->path2, "/b");
	free(ev);
	expect_empty(r);
	/* appended later: the same reader sees it */
	add(w, XENFS_EV_UNLINK, "/b", NULL, 1);
	ev = next_ev(r);
	assert_int_equal(ev->seq, 3);
	free(ev);
	uint64_t head;
	assert_int_equal(xf_stream_head_seq(tdir, &head), 0);
	assert_int_equal(head, 3);
	xf_stream_reader_close(r);
	xf_stream_writer_close(w);
}

static void test_rotation(void **st)
{
	struct xf_stream_writer *w = wopen(4096, 1 << 30);
	struct xf_stream_reader *r;
	char path[64];
	int i;

	assert_int_equal(xf_stream_reader_open(tdir, NULL, &r), 0);
	for (i = 1; i <= 500; i++) {
		snprintf(path, sizeof(path), "/dir/file-%d", i);
		add(w, XENFS_EV_CREATE, path, NULL, (uint64_t)i);
		if (i % 37 == 0) {	/* interleave reading and writing */
			struct xenfs_event *ev;
			while (xf_stream_next(r, &ev, NULL, NULL) ==
			       XF_STREAM_EVENT)
				free(ev);
		}
	}
	xf_stream_seek(r, 0);
	for (i = 1; i <= 500; i++) {
		struct xenfs_event *ev = next_ev(r);
		snprintf(path, sizeof(path), "/dir/file-%d", i);
		assert_int_equal(ev->seq, (uint64_t)i);
		assert_string_equal(ev->path, path);
		free(ev);
	}
	expect_empty(r);
	/* seek into the middle of a later segment */
	xf_stream_seek(r, 321);
	struct xenfs_event *ev = next_ev(r);
	assert_int_equal(ev->seq, 321);
	free(ev);
	xf_stream_reader_close(r);
	xf_stream_writer_close(w);
}

/* path of the newest segment */
static void newest_seg(char *buf, size_t len)
{
	DIR *d = opendir(tdir);
	struct dirent *de;
	char best[300] = "";

	assert_non_null(d);
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".seg") &&
		    strcmp(de->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", de->d_name);
	closedir(d);
	snprintf(buf, len, "%s/%s", tdir, best);
}

static void test_torn_tail(void **st)
{
	struct xf_stream_writer *w = wopen(1 << 20, 1 << 30);
	struct xf_stream_reader *r;
	char seg[128];
	struct stat sb;
	int fd;

	add(w, XENFS_EV_CREATE, "/a", NULL, 1);
	add(w, XENFS_EV_MODIFY, "/a", NULL, 1);
	add(w, XENFS_EV_CREATE, "/b", NULL, 2);
	xf_stream_writer_close(w);
	newest_seg(seg, sizeof(seg));
	assert_int_equal(stat(seg, &sb), 0);
	/* a crash in the middle of a record: header and half a payload */
	fd = open(seg, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	struct xenfs_rec_header rh = { 200, 0x1234 };
	assert_int_equal(write(fd, &rh, sizeof(rh)), sizeof(rh));
	assert_int_equal(write(fd, "garbage", 7), 7);
	close(fd);

	/* a reader before recovery sees 3 events, then waits */
	assert_int_equal(xf_stream_reader_open(tdir, NULL, &r), 0);
	for (int i = 1; i <= 3; i++)
		free(next_ev(r));
	expect_empty(r);

	w = wopen(1 << 20, 1 << 30);
	struct stat sa;
	assert_int_equal(stat(seg, &sa), 0);
	assert_int_equal(sa.st_size, sb.st_size);
	assert_int_equal(add(w, XENFS_EV_UNLINK, "/b", NULL, 2), 4);
	struct xenfs_event *ev = next_ev(r);
	assert_int_equal(ev->seq, 4);
	assert_int_equal(ev->op, XENFS_EV_UNLINK);
	free(ev);
	xf_stream_reader_close(r);
	xf_stream_writer_close(w);
}

static void test_crc_damage(void **st)
{
	struct xf_stream_writer *w = wopen(1 << 20, 1 << 30);
	struct xf_stream_reader *r;
	char seg[128];
	struct stat sb;
	int fd;

	add(w, XENFS_EV_CREATE, "/a", NULL, 1);
	add(w, XENFS_EV_CREATE, "/bbbb", NULL, 2);
	xf_stream_writer_close(w);
	newest_seg(seg, sizeof(seg));
	assert_int_equal(stat(seg, &sb), 0);
	/* flip the last path byte of record 2 */
	fd = open(seg, O_WRONLY);
	assert_int_equal(pwrite(fd, "X", 1, sb.st_size - 1), 1);
	close(fd);
	w = wopen(1 << 20, 1 << 30);
	assert_int_equal(add(w, XENFS_EV_CREATE, "/c", NULL, 3), 2);
	assert_int_equal(xf_stream_reader_open(tdir, NULL, &r), 0);
	free(next_ev(r));
	struct xenfs_event *ev = next_ev(r);
	assert_string_equal(ev->path, "/c");
	free(ev);
	expect_empty(r);
	xf_stream_reader_close(r);
	xf_stream_writer_close(w);
}

static void test_cursor_resume(void **st)
{
	struct xf_stream_writer *w = wopen(4096, 1 << 30);
	struct xf_stream_reader *r;
	struct xenfs_event *ev;
	uint64_t c;

	for (int i = 1; i <= 100; i++)
		add(w, XENFS_EV_CREATE, "/f", NULL, (uint64_t)i);
	assert_int_equal(xf_stream_reader_open(tdir, "idx", &r), 0);
	for (int i = 1; i <= 60; i++)
		free(next_ev(r));
	assert_int_equal(xf_stream_commit(r, 50), 0);	/* 51..60 uncommitted */
	xf_stream_reader_close(r);
	assert_int_equal(xf_stream_read_cursor(tdir, "idx", &c), 0);
	assert_int_equal(c, 50);
	assert_int_equal(xf_stream_reader_open(tdir, "idx", &r), 0);
	assert_int_equal(xf_stream_cursor(r), 50);
	ev = next_ev(r);
	assert_int_equal(ev->seq, 51);
	free(ev);
	xf_stream_reader_close(r);
	assert_int_equal(xf_stream_reader_open(tdir, "../evil", &r), -EINVAL);
	xf_stream_writer_close(w);
}

static int count_segs(void)
{
	DIR *d = opendir(tdir);
	struct dirent *de;
	int n = 0;

	while ((de = readdir(d)))
		n += strstr(de->d_name, ".seg") != NULL;
	closedir(d);
	return n;
}

static void test_trim_and_gap(void **st)
{
	struct xf_stream_writer *w = wopen(4096, 1 << 30);
	struct xf_stream_reader *fast, *slow;
	struct xenfs_event *ev;
	uint64_t gf = 0, gl = 0;
	int before;

	assert_int_equal(xf_stream_reader_open(tdir, "fast", &fast), 0);
	assert_int_equal(xf_stream_reader_open(tdir, "slow", &slow), 0);
	assert_int_equal(xf_stream_commit(slow, 0), 0);
	for (int i = 1; i <= 300; i++)
		add(w, XENFS_EV_CREATE, "/some/longer/path/name", NULL,
		    (uint64_t)i);
	for (int i = 1; i <= 300; i++)
		free(next_ev(fast));
	assert_int_equal(xf_stream_commit(fast, 300), 0);
	before = count_segs();
	assert_true(before > 3);
	/* slow is at 0: nothing may go while under journal-max */
	assert_int_equal(xf_stream_trim(w), 0);
	assert_int_equal(count_segs(), before);
	xf_stream_writer_close(w);

	/* journal-max 8K: old segments go although slow needs them */
	w = wopen(4096, 8192);
	assert_int_equal(xf_stream_trim(w), 0);
	assert_true(count_segs() < before);
	assert_int_equal(xf_stream_next(slow, &ev, &gf, &gl), XF_STREAM_GAP);
	assert_int_equal(gf, 1);
	assert_true(gl > 1);
	ev = next_ev(slow);
	assert_int_equal(ev->seq, gl + 1);
	free(ev);
	xf_stream_reader_close(slow);
	xf_stream_reader_close(fast);

	/* when everyone has passed, segments go even under the cap */
	xf_stream_writer_close(w);
	unlink("/dev/null-never");
	w = wopen(4096, 1 << 30);
	char p[128];
	snprintf(p, sizeof(p), "%s/cursors/slow", tdir);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(xf_stream_trim(w), 0);
	assert_int_equal(count_segs(), 1);
	xf_stream_writer_close(w);
}

static void test_lost_records(void **st)
{
	struct xf_stream_writer *w = wopen(1 << 20, 1 << 30);
	struct xf_stream_reader *r;
	struct xenfs_event *ev;

	for (int i = 1; i <= 5; i++)
		add(w, XENFS_EV_CREATE, "/f", NULL, (uint64_t)i);
	assert_int_equal(xf_stream_reader_open(tdir, "idx", &r), 0);
	assert_int_equal(xf_stream_commit(r, 9), 0);	/* saw 9: 6..9 lost */
	xf_stream_reader_close(r);
	xf_stream_writer_close(w);
	w = wopen(1 << 20, 1 << 30);
	assert_int_equal(xf_stream_head(w), 10);	/* the RESYNC record */
	assert_int_equal(add(w, XENFS_EV_CREATE, "/g", NULL, 6), 11);
	assert_int_equal(xf_stream_reader_open(tdir, "idx", &r), 0);
	ev = next_ev(r);
	assert_int_equal(ev->seq, 10);
	assert_int_equal(ev->op, XENFS_EV_RESYNC);
	free(ev);
	ev = next_ev(r);
	assert_int_equal(ev->seq, 11);
	free(ev);
	xf_stream_reader_close(r);
	xf_stream_writer_close(w);
}

static void test_single_writer(void **st)
{
	struct xf_stream_writer *w = wopen(1 << 20, 1 << 30), *w2;
	struct xf_stream_wopts o = { 1 << 20, 1 << 30 };

	assert_int_equal(xf_stream_writer_open(tdir, &o, &w2), -EWOULDBLOCK);
	xf_stream_writer_close(w);
}

static void test_parse_size(void **st)
{
	uint64_t v;

	assert_int_equal(xf_parse_size("123", &v), 0);
	assert_int_equal(v, 123);
	assert_int_equal(xf_parse_size("64K", &v), 0);
	assert_int_equal(v, 65536);
	assert_int_equal(xf_parse_size("1G", &v), 0);
	assert_int_equal(v, 1ull << 30);
	assert_int_equal(xf_parse_size("1x", &v), -EINVAL);
	assert_int_equal(xf_parse_size("", &v), -EINVAL);
	assert_int_equal(xf_parse_size("-1", &v), -EINVAL);
	assert_int_equal(xf_crc32c(0, "123456789", 9), 0xe3069283u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crc_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cursor_resume, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_trim_and_gap, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_lost_records, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_single_writer, setup,
						teardown),
		cmocka_unit_test(test_parse_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
