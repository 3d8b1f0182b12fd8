/*
 * Unit tests of the identity-mapping and quota-limit decisions
 * (policy/idmap.c): parsing, loading from a config, and every decision
 * function enumerated over the interesting ids of small maps.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "idmap.h"

static void test_parse(void **state)
{
	struct xf_idset s;

	(void)state;
	assert_int_equal(xf_idset_parse("0-65535:100000", &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.r[0].guest, 0);
	assert_int_equal(s.r[0].host, 100000);
	assert_int_equal(s.r[0].count, 65536);
	assert_int_equal(xf_idset_parse(" 5:7  10-11:20 ", &s), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(xf_idset_parse("", &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(xf_idset_parse(NULL, &s), 0);
	assert_int_equal(xf_idset_parse("1-0:5", &s), -EINVAL);
	assert_int_equal(xf_idset_parse("0-10:5 10:99", &s), -EINVAL);
	assert_int_equal(xf_idset_parse("a:1", &s), -EINVAL);
	assert_int_equal(xf_idset_parse("1:2:3", &s), -EINVAL);
	assert_int_equal(xf_idset_parse("1:", &s), -EINVAL);
	assert_int_equal(xf_idset_parse(":1", &s), -EINVAL);
	assert_int_equal(xf_idset_parse("4294967295:1", &s), -EINVAL);
	assert_int_equal(xf_idset_parse("0:4294967294", &s), 0);
	assert_int_equal(xf_idset_parse("0-1:4294967294", &s), -EINVAL);
	assert_int_equal(xf_idset_parse("99999999999:1", &s), -EINVAL);
}

static void test_many_ranges(void **state)
{
	char buf[4096];
	struct xf_idset s;
	size_t o = 0;
	int i;

	(void)state;
	for (i = 0; i < XF_IDMAP_MAX; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%d:%d ",
				      i * 10, 1000 + i);
	assert_int_equal(xf_idset_parse(buf, &s), 0);
	assert_int_equal(s.n, XF_IDMAP_MAX);
	snprintf(buf + o, sizeof(buf) - o, "99999:1");
	assert_int_equal(xf_idset_parse(buf, &s), -EINVAL);
}

/* Round trip and overflow over every id near the edges of two ranges. */
static void test_mapping_enumerated(void **state)
{
	struct xf_idmap m;
	uint32_t g, h;

	(void)state;
	xf_idmap_identity(&m);
	assert_int_equal(xf_idset_parse("0-999:100000 5000-5009:200", &m.uid),
			 0);
	m.gid = m.uid;
	for (g = 0; g < 6000; g++) {
		h = xf_idset_to_host(&m.uid, g);
		if (g < 1000) {
			assert_int_equal(h, 100000 + g);
			assert_int_equal(xf_idmap_show_uid(&m, h), g);
			assert_int_equal(xf_idmap_caller_uid(&m, g), h);
		} else if (g >= 5000 && g < 5010) {
			assert_int_equal(h, 200 + g - 5000);
			assert_int_equal(xf_idmap_show_uid(&m, h), g);
		} else {
			assert_int_equal(h, XF_ID_INVALID);
			/* unmapped callers act as anon */
			assert_int_equal(xf_idmap_caller_uid(&m, g),
					 XF_OVERFLOW_ID);
		}
	}
	/* host ids outside the ranges are shown as the overflow id */
	for (h = 0; h < 200; h++)
		assert_int_equal(xf_idmap_show_uid(&m, h), XF_OVERFLOW_ID);
	assert_int_equal(xf_idmap_show_uid(&m, 99999), XF_OVERFLOW_ID);
	assert_int_equal(xf_idmap_show_uid(&m, 101000), XF_OVERFLOW_ID);
	assert_int_equal(xf_idmap_show_uid(&m, 0xffffffffu), XF_OVERFLOW_ID);
	assert_true(xf_idset_host_in(&m.uid, 100999));
	assert_false(xf_idset_host_in(&m.uid, 0));
}

static void test_identity(void **state)
{
	struct xf_idmap m;
	uint32_t ids[] = { 0, 1, 1000, 65534, 65535, 0xfffffffeu }, h;
	size_t i;

	(void)state;
	xf_idmap_identity(&m);
	assert_true(xf_idmap_is_identity(&m));
	for (i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		assert_int_equal(xf_idmap_caller_uid(&m, ids[i]), ids[i]);
		assert_int_equal(xf_idmap_show_gid(&m, ids[i]), ids[i]);
		assert_int_equal(xf_idmap_chown_uid(&m, 0, ids[i], &h), 0);
		assert_int_equal(h, ids[i]);
		assert_int_equal(xf_idmap_may_chattr(&m, 5, ids[i]), 0);
		assert_int_equal(xf_idmap_setid_filter(&m, S_IFREG | 06755,
			ids[i], ids[i]), S_IFREG | 06755);
	}
	assert_int_equal(xf_idmap_chown_uid(&m, 0, XF_ID_INVALID, &h), 0);
	assert_int_equal(h, XF_ID_INVALID);
}

static void test_squash(void **state)
{
	struct xf_idmap m;
	uint32_t h, g;

	(void)state;
	xf_idmap_identity(&m);
	m.squash = XF_SQUASH_ROOT;
	m.anon_uid = 4000;
	m.anon_gid = 4001;
	assert_int_equal(xf_idmap_caller_uid(&m, 0), 4000);
	assert_int_equal(xf_idmap_caller_gid(&m, 0), 4001);
	assert_int_equal(xf_idmap_caller_uid(&m, 7), 7);
	assert_int_equal(xf_idmap_chown_uid(&m, 0, 7, &h), -EPERM);
	assert_int_equal(xf_idmap_chown_uid(&m, 7, 8, &h), 0);
	assert_int_equal(h, 8);
	/* squashed root owns only anon's files */
	assert_int_equal(xf_idmap_may_chattr(&m, 0, 0), -EPERM);
	assert_int_equal(xf_idmap_may_chattr(&m, 0, 4000), 0);
	assert_int_equal(xf_idmap_may_chattr(&m, 7, 7), 0);
	assert_int_equal(xf_idmap_may_chattr(&m, 7, 8), -EPERM);
	/* no setuid for anon */
	assert_int_equal(xf_idmap_setid_filter(&m, S_IFREG | 04755, 4000,
		4001) & S_ISUID, 0);

	m.squash = XF_SQUASH_ALL;
	for (g = 0; g < 70000; g += 7) {
		assert_int_equal(xf_idmap_caller_uid(&m, g), 4000);
		assert_int_equal(xf_idmap_caller_gid(&m, g), 4001);
		assert_int_equal(xf_idmap_chown_gid(&m, g, 1, &h), -EPERM);
	}
}

static void test_chattr_and_setid(void **state)
{
	struct xf_idmap m;
	uint32_t h;

	(void)state;
	xf_idmap_identity(&m);
	assert_int_equal(xf_idset_parse("0-65535:100000", &m.uid), 0);
	assert_int_equal(xf_idset_parse("0-65535:100000", &m.gid), 0);
	/* chown inside the range maps; outside is EINVAL */
	assert_int_equal(xf_idmap_chown_uid(&m, 0, 1000, &h), 0);
	assert_int_equal(h, 101000);
	assert_int_equal(xf_idmap_chown_uid(&m, 0, 70000, &h), -EINVAL);
	assert_int_equal(xf_idmap_chown_gid(&m, 0, 65536, &h), -EINVAL);
	/* guest root over objects in its range, never over host root's */
	assert_int_equal(xf_idmap_may_chattr(&m, 0, 100000), 0);
	assert_int_equal(xf_idmap_may_chattr(&m, 0, 165535), 0);
	assert_int_equal(xf_idmap_may_chattr(&m, 0, 0), -EPERM);
	assert_int_equal(xf_idmap_may_chattr(&m, 0, 165536), -EPERM);
	assert_int_equal(xf_idmap_may_chattr(&m, 5, 100005), 0);
	assert_int_equal(xf_idmap_may_chattr(&m, 5, 100006), -EPERM);
	/* set-id bits only on objects owned inside the range */
	assert_int_equal(xf_idmap_setid_filter(&m, S_IFREG | 06755, 0, 0),
			 S_IFREG | 0755);
	assert_int_equal(xf_idmap_setid_filter(&m, S_IFREG | 06755, 100000,
		100000), S_IFREG | 06755);
	assert_int_equal(xf_idmap_setid_filter(&m, S_IFREG | 06755, 100000,
		0), S_IFREG | 04755);
	/* setgid directories (inheritance) are left alone */
	assert_int_equal(xf_idmap_setid_filter(&m, S_IFDIR | 02775, 100000,
		0), S_IFDIR | 02775);
}

static void test_load(void **state)
{
	static const char conf[] =
		"[export a]\npath = /tmp\naccess = *:rw\n"
		"squash = root\nanon-uid = 1234\nmap-uid = 0-9:500\n"
		"quota-bytes = 1M\nquota-inodes = 10\nnoexec = yes\n"
		"[export b]\npath = /tmp\naccess = *:rw\n"
		"[domain vm1]\nmap-uid = 0-99:1000\nquota-bytes = 2G\n";
	char err[256];
	struct xf_config *cfg;
	struct xf_idmap m;

	(void)state;
	cfg = xf_config_parse("t", conf, sizeof(conf) - 1, err, sizeof(err));
	if (!cfg)
		fail_msg("%s", err);
	assert_int_equal(xf_idmap_load(cfg, "vm2", "a", &m), 0);
	assert_int_equal(m.squash, XF_SQUASH_ROOT);
	assert_int_equal(m.anon_uid, 1234);
	assert_int_equal(m.anon_gid, XF_OVERFLOW_ID);
	assert_int_equal(m.uid.n, 1);
	assert_int_equal(m.uid.r[0].host, 500);
	assert_int_equal(m.quota_bytes_exp, 1024 * 1024);
	assert_int_equal(m.quota_inodes_exp, 10);
	assert_int_equal(m.quota_bytes_dom, 0);
	assert_true(m.noexec);
	/* the domain's map wins over the export's; quotas are kept apart */
	assert_int_equal(xf_idmap_load(cfg, "vm1", "a", &m), 0);
	assert_int_equal(m.uid.r[0].host, 1000);
	assert_int_equal(m.uid.r[0].count, 100);
	assert_int_equal(m.quota_bytes_dom, 2ull << 30);
	assert_int_equal(m.quota_bytes_exp, 1024 * 1024);
	assert_int_equal(xf_idmap_load(cfg, "vm2", "b", &m), 0);
	assert_true(xf_idmap_is_identity(&m));
	assert_false(m.noexec);
	xf_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_many_ranges),
		cmocka_unit_test(test_mapping_enumerated),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_squash),
		cmocka_unit_test(test_chattr_and_setid),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
