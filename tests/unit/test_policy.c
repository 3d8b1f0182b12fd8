/*
 * Unit tests of the policy decisions (policy/policy.c), exhaustive over
 * small sets: every combination of {absent, ro, rw} for rules naming vm1,
 * vm2 and '*', in both rule orders, with and without readonly = yes,
 * asked for every domain of a small set (including names that match no
 * rule, "*" itself, "" and NULL), through the parser and through a
 * hand-built config.  The expected answer comes from a separate model of
 * the documented rule: exact name over '*', none is NONE, readonly caps
 * at RO.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy.h"

static char tdir[64];

static int setup(void **state)
{
	snprintf(tdir, sizeof(tdir), "/tmp/xf-test-policy.XXXXXX");
	return mkdtemp(tdir) ? 0 : -1;
}

static int teardown(void **state)
{
	rmdir(tdir);
	return 0;
}

static const char *const rule_doms[3] = { "vm1", "vm2", "*" };
static const char *const queries[] = { "vm1", "vm2", "vm3", "*", "", NULL,
				       "VM1", "vm1 " };
static const char *const mode_names[3] = { NULL, "ro", "rw" };

/* modes[i] in {0 absent, 1 ro, 2 rw} for rule_doms[i] */
static enum xf_access model(const int modes[3], int readonly, const char *q)
{
	int m = 0, i;

	if (!q || !*q)
		return XF_ACCESS_NONE;
	for (i = 0; i < 2; i++)
		if (!strcmp(q, rule_doms[i]) && modes[i])
			m = modes[i];
	if (!m && !strcmp(q, "*") && modes[2])
		m = modes[2];
	if (!m) {
		/* an exact rule for q (only vm1/vm2 can have one) */
		int exact = (!strcmp(q, "vm1") && modes[0]) ||
			    (!strcmp(q, "vm2") && modes[1]);

		if (!exact)
			m = modes[2];
	}
	if (m == 2 && readonly)
		m = 1;
	return m == 2 ? XF_ACCESS_RW : m == 1 ? XF_ACCESS_RO : XF_ACCESS_NONE;
}

static void check_all(const struct xf_config *cfg, const int modes[3],
		      int readonly, const char *what)
{
	size_t q;

	for (q = 0; q < sizeof(queries) / sizeof(queries[0]); q++) {
		enum xf_access got = xf_policy_access(cfg, queries[q], "t");
		enum xf_access want = model(modes, readonly, queries[q]);

		if (got != want)
			fail_msg("%s: modes vm1=%d vm2=%d *=%d ro=%d query "
				 "'%s': got %d want %d", what, modes[0],
				 modes[1], modes[2], readonly,
				 queries[q] ? queries[q] : "(null)", got, want);
		/* other tags never grant anything */
		assert_int_equal(xf_policy_access(cfg, queries[q], "u"),
				 XF_ACCESS_NONE);
		assert_int_equal(xf_policy_access(cfg, queries[q], NULL),
				 XF_ACCESS_NONE);
	}
}

static void test_exhaustive_parsed(void **state)
{
	int combo, order, readonly, modes[3];

	for (combo = 0; combo < 27; combo++) {
		modes[0] = combo % 3;
		modes[1] = combo / 3 % 3;
		modes[2] = combo / 9;
		if (!modes[0] && !modes[1] && !modes[2])
			continue;	/* no rule: an error, tested elsewhere */
		for (order = 0; order < 2; order++)
			for (readonly = 0; readonly < 2; readonly++) {
				char text[512], err[256];
				size_t o = 0;
				struct xf_config *cfg;
				int i;

				o += (size_t)snprintf(text + o,
					sizeof(text) - o,
					"[export t]\npath = %s\nreadonly = %s\n"
					"access =", tdir,
					readonly ? "yes" : "no");
				for (i = 0; i < 3; i++) {
					int j = order ? 2 - i : i;

					if (modes[j])
						o += (size_t)snprintf(text + o,
							sizeof(text) - o,
							" %s:%s", rule_doms[j],
							mode_names[modes[j]]);
				}
				snprintf(text + o, sizeof(text) - o,
					 "\n[export u]\npath = %s\n"
					 "access = other:rw\n", tdir);
				cfg = xf_config_parse("t", text, strlen(text),
						      err, sizeof(err));
				if (!cfg)
					fail_msg("%s\n%s", err, text);
				check_all(cfg, modes, readonly, "parsed");
				xf_config_free(cfg);
			}
	}
}

static void test_exhaustive_built(void **state)
{
	int combo, readonly, modes[3];

	for (combo = 0; combo < 27; combo++) {
		modes[0] = combo % 3;
		modes[1] = combo / 3 % 3;
		modes[2] = combo / 9;
		for (readonly = 0; readonly < 2; readonly++) {
			struct xf_access_rule rules[3];
			struct xf_export ex = { 0 };
			struct xf_config cfg = { 0 };
			size_t n = 0;
			int i;

			for (i = 0; i < 3; i++)
				if (modes[i]) {
					rules[n].domain = (char *)rule_doms[i];
					rules[n].mode = modes[i] == 2 ?
						XF_ACCESS_RW : XF_ACCESS_RO;
					n++;
				}
			ex.tag = (char *)"t";
			ex.path = tdir;
			ex.rules = rules;
			ex.nrules = n;
			ex.readonly = readonly;
			cfg.exports = &ex;
			cfg.nexports = 1;
			check_all(&cfg, modes, readonly, "built");
		}
	}
}

static void test_edges(void **state)
{
	struct xf_access_rule bad[2] = {
		{ NULL, XF_ACCESS_RW },			/* ignored */
		{ (char *)"vm1", (enum xf_access)7 },	/* not a mode */
	};
	struct xf_export ex = { .tag = (char *)"t", .rules = bad, .nrules = 2 };
	struct xf_config cfg = { .exports = &ex, .nexports = 1 };

	assert_int_equal(xf_policy_access(NULL, "vm1", "t"), XF_ACCESS_NONE);
	assert_int_equal(xf_policy_access(&cfg, "vm1", "t"), XF_ACCESS_NONE);
	assert_int_equal(xf_policy_access(&cfg, "vm2", "t"), XF_ACCESS_NONE);
	cfg.nexports = 0;
	assert_int_equal(xf_policy_access(&cfg, "vm1", "t"), XF_ACCESS_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exhaustive_parsed),
		cmocka_unit_test(test_exhaustive_built),
		cmocka_unit_test(test_edges),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
