/*
 * Unit tests of the scanner's shared code (services/scanner/act.c, db.c):
 * policy lookups with per-domain overrides, exclusion globs, size
 * parsing, confined opens (no escape through "..", symlinks), the
 * verdict cache keyed on identity, blocked/cleaned detections, and
 * quarantine + restore + release on a temporary export.  No engine: the
 * engine process is exercised by the integration tests.
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
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "../../services/scanner/scan_i.h"

static void quiet_log(int prio, const char *fmt, ...)
{
	va_list ap;

	if (!getenv("TEST_SCAN_VERBOSE"))
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}
scan_log_fn scan_log = quiet_log;

static char tmp[256];
static char exportdir[300], qdir[300], statedir[300];

static const char *kv[][3] = {
	{ "scan", "action", "quarantine" },
	{ "scan", "exclude", "/cache/* *.iso" },
	{ "scan", "max-file-size", "1M" },
	{ "domain vm2", "scan-action", "block" },
	{ "domain vm3", "scan-action", "log" },
	{ "export shared", "path", exportdir },
	{ "scan", "quarantine-dir", qdir },
	{ NULL, NULL, NULL },
};

static const char *get(const char *s, const char *k)
{
	for (int i = 0; kv[i][0]; i++)
		if (!strcmp(kv[i][0], s) && !strcmp(kv[i][1], k))
			return kv[i][2];
	return NULL;
}

static int setup(void **state)
{
	snprintf(tmp, sizeof(tmp), "/tmp/test_scan.XXXXXX");
	assert_non_null(mkdtemp(tmp));
	snprintf(exportdir, sizeof(exportdir), "%s/export", tmp);
	snprintf(qdir, sizeof(qdir), "%s/q/quarantine", tmp);
	snprintf(statedir, sizeof(statedir), "%s/state", tmp);
	assert_int_equal(mkdir(exportdir, 0755), 0);
	assert_int_equal(mkdir(statedir, 0755), 0);
	return 0;
}

static int teardown(void **state)
{
	char cmd[400];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_policy(void **state)
{
	struct scan_policy p;

	assert_int_equal(scan_policy_load(&p, get, statedir), 0);
	assert_int_equal(p.on_write, 1);
	assert_int_equal(p.on_open, 0);
	assert_int_equal(p.max_size, 1u << 20);
	assert_string_equal(p.db, "/var/lib/clamav");
	assert_int_equal(scan_policy_action(&p, "vm1"), ACT_QUARANTINE);
	assert_int_equal(scan_policy_action(&p, "vm2"), ACT_BLOCK);
	assert_int_equal(scan_policy_action(&p, "vm3"), ACT_LOG);
	assert_int_equal(scan_policy_action(&p, ""), ACT_QUARANTINE);
	assert_true(scan_policy_excluded(&p, "/cache/a"));
	assert_true(scan_policy_excluded(&p, "/cache/a/b"));
	assert_true(scan_policy_excluded(&p, "/x/y/disk.iso"));
	assert_false(scan_policy_excluded(&p, "/x/cache/a"));
	assert_false(scan_policy_excluded(&p, "/iso"));
	assert_string_equal(scan_export_path(&p, "shared"), exportdir);
	assert_null(scan_export_path(&p, "nope"));
	scan_policy_free(&p);
}

static void test_esc(void **state)
{
	char b[64];

	assert_string_equal(scan_esc("a\nb\\c", b, sizeof(b)),
			    "a\\x0ab\\x5cc");
	scan_esc("0123456789012345678901234567890123456789", b, 16);
	assert_true(strlen(b) < 16);
}

static void test_open_beneath(void **state)
{
	char p[400];
	int root, fd;

	snprintf(p, sizeof(p), "%s/f", exportdir);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	close(fd);
	snprintf(p, sizeof(p), "%s/link", exportdir);
	(void)unlink(p);
	assert_int_equal(symlink("/etc/passwd", p), 0);
	root = scan_open_root(exportdir);
	assert_true(root >= 0);
	fd = scan_open_beneath(root, "/f", O_RDONLY);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(scan_open_beneath(root, "/../etc/passwd", O_RDONLY),
			 -EXDEV);
	assert_true(scan_open_beneath(root, "/link", O_RDONLY | O_NOFOLLOW) <
		    0);
	assert_int_equal(scan_open_beneath(root, "/nope", O_RDONLY), -ENOENT);
	close(root);
}

static void test_verdict_cache(void **state)
{
	struct sqlite3 *db;
	struct scan_ident a = { 1, 2, 3, 4, 5 }, b = a;
	char sig[64];

	assert_int_equal(scan_db_open(statedir, 0, &db), 0);
	assert_int_equal(scan_db_verdict_get(db, &a, NULL, 0), -ENOENT);
	assert_int_equal(scan_db_verdict_put(db, &a, VR_INFECTED, "Eicar"),
			 0);
	assert_int_equal(scan_db_verdict_get(db, &a, sig, sizeof(sig)),
			 VR_INFECTED);
	assert_string_equal(sig, "Eicar");
	b.ctime_nsec = 6;	/* rewritten: another version */
	assert_int_equal(scan_db_verdict_get(db, &b, NULL, 0), -ENOENT);
	assert_int_equal(scan_db_verdict_put(db, &b, VR_CLEAN, NULL), 0);
	assert_int_equal(scan_db_verdict_get(db, &a, NULL, 0), -ENOENT);
	assert_int_equal(scan_db_verdict_get(db, &b, NULL, 0), VR_CLEAN);
	assert_int_equal(scan_db_stat_add(db, "scans", 2), 0);
	assert_int_equal(scan_db_stat_add(db, "scans", 3), 0);
	assert_int_equal(scan_db_stat_int(db, "scans"), 5);
	scan_db_close(db);
}

static int write_file(const char *name, const char *text, struct stat *st)
{
	char p[400];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", exportdir, name);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (fd < 0)
		return -1;
	if (write(fd, text, strlen(text)) < 0 || fstat(fd, st) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void test_actions(void **state)
{
	struct scan_policy p;
	struct sqlite3 *db;
	struct scan_detection d;
	struct scan_ident id;
	struct stat st, st2;
	enum scan_action act;
	char err[256], path[4200];
	int root, fd;
	int64_t det;

	assert_int_equal(scan_policy_load(&p, get, statedir), 0);
	assert_int_equal(scan_db_open(statedir, 0, &db), 0);
	root = scan_open_root(exportdir);
	assert_true(root >= 0);

	/* quarantine (vm1): moved out, metadata kept, restorable */
	fd = write_file("bad1", "payload", &st);
	assert_true(fd >= 0);
	struct scan_hit h = { "vm1", "shared", "/bad1", "write", "Test.Sig",
			      fd, &st };
	det = scan_act(db, &p, root, &h, &act);
	assert_true(det > 0);
	assert_int_equal(act, ACT_QUARANTINE);
	close(fd);
	snprintf(path, sizeof(path), "%s/bad1", exportdir);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(scan_db_detection_get(db, det, &d), 0);
	assert_string_equal(d.state, "quarantined");
	assert_string_equal(d.vm, "vm1");
	assert_string_equal(d.signature, "Test.Sig");
	assert_int_equal(access(d.qfile, F_OK), 0);
	snprintf(path, sizeof(path), "%s.meta", d.qfile);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(scan_release(db, &p, det, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(scan_restore(db, &p, det, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/bad1", exportdir);
	assert_int_equal(stat(path, &st2), 0);
	assert_int_equal(st2.st_mode & 07777, 0640);
	scan_ident_of(&id, &st2);
	assert_int_equal(scan_db_verdict_get(db, &id, NULL, 0), VR_RELEASED);
	assert_int_equal(scan_restore(db, &p, det, err, sizeof(err)),
			 -EINVAL);

	/* block (vm2): recorded as blocked on this identity; release
	 * changes the ctime and allows the new version */
	fd = write_file("bad2", "payload2", &st);
	struct scan_hit h2 = { "vm2", "shared", "/bad2", "write", "Test.Sig",
			       fd, &st };
	det = scan_act(db, &p, root, &h2, &act);
	assert_true(det > 0);
	assert_int_equal(act, ACT_BLOCK);
	scan_ident_of(&id, &st);
	assert_int_equal(scan_db_blocked(db, &id), 1);
	usleep(10000);
	assert_int_equal(scan_release(db, &p, det, err, sizeof(err)), 0);
	assert_int_equal(scan_db_blocked(db, &id), 0);
	assert_int_equal(fstat(fd, &st2), 0);
	scan_ident_of(&id, &st2);
	assert_int_equal(scan_db_verdict_get(db, &id, NULL, 0), VR_RELEASED);
	close(fd);

	/* block, then rewritten clean: cleaned by path */
	fd = write_file("bad3", "payload3", &st);
	struct scan_hit h3 = { "vm2", "shared", "/bad3", "write", "Test.Sig",
			       fd, &st };
	det = scan_act(db, &p, root, &h3, &act);
	assert_true(det > 0);
	scan_ident_of(&id, &st);
	id.ctime_nsec++;
	assert_int_equal(scan_db_cleaned(db, &id, "shared", "/bad3"), 1);
	assert_int_equal(scan_db_detection_get(db, det, &d), 0);
	assert_string_equal(d.state, "cleaned");
	close(fd);

	/* a file replaced after the scan is not quarantined */
	fd = write_file("bad4", "payload4", &st);
	int fd2 = write_file("other4", "other", &st2);
	char p2[4200];
	snprintf(path, sizeof(path), "%s/bad4", exportdir);
	snprintf(p2, sizeof(p2), "%s/other4", exportdir);
	assert_int_equal(rename(p2, path), 0);
	struct scan_hit h4 = { "vm1", "shared", "/bad4", "write", "Test.Sig",
			       fd, &st };
	det = scan_act(db, &p, root, &h4, &act);
	assert_true(det > 0);
	assert_int_equal(act, ACT_BLOCK);	/* fell back */
	assert_int_equal(access(path, F_OK), 0);
	close(fd);
	close(fd2);

	close(root);
	scan_db_close(db);
	scan_policy_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_policy),
		cmocka_unit_test(test_esc),
		cmocka_unit_test(test_open_beneath),
		cmocka_unit_test(test_verdict_cache),
		cmocka_unit_test(test_actions),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
