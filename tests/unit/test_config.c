/*
 * Unit tests of the config reader (policy/config.c): every key type, every
 * error, defaults, lookups, --print-config round trip and the man page
 * staying in sync with the key table.  Table-driven: add a row for every
 * bug fixed.
 *
 * Texts may contain @DIR@ (an existing directory made for the test) and
 * @FILE@ (an existing regular file).
 */
#include <errno.h>
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
static char tfile[96];

static char *subst(const char *text)
{
	size_t cap = strlen(text) * 3 + 256, o = 0;
	char *out = malloc(cap);
	const char *p;

	assert_non_null(out);
	for (p = text; *p;) {
		if (!strncmp(p, "@DIR@", 5)) {
			o += (size_t)snprintf(out + o, cap - o, "%s", tdir);
			p += 5;
		} else if (!strncmp(p, "@FILE@", 6)) {
			o += (size_t)snprintf(out + o, cap - o, "%s", tfile);
			p += 6;
		} else
			out[o++] = *p++;
		assert_true(o < cap);
	}
	out[o] = '\0';
	return out;
}

static struct xf_config *parse(const char *text, char *err, size_t errlen)
{
	char *t = subst(text);
	struct xf_config *cfg = xf_config_parse("xenfs.conf", t, strlen(t),
						err, errlen);

	free(t);
	return cfg;
}

static int setup(void **state)
{
	FILE *f;

	snprintf(tdir, sizeof(tdir), "/tmp/xf-test-config.XXXXXX");
	if (!mkdtemp(tdir))
		return -1;
	snprintf(tfile, sizeof(tfile), "%s/file", tdir);
	if (!(f = fopen(tfile, "w")))
		return -1;
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	unlink(tfile);
	rmdir(tdir);
	return 0;
}

#define EXP	"[export e]\npath = @DIR@\naccess = vm1:rw\n"

/* ---- accepted inputs: section, key, expected effective value ---- */

static const struct good {
	const char *text;
	const char *section, *key, *value;	/* xf_config_value */
} goods[] = {
	/* every default of the single sections, from an empty file */
	{ "", "global", "control-socket", "/run/xenfs/control.sock" },
	{ "", "global", "state-dir", "/var/lib/xenfs" },
	{ "", "global", "control-group", "none" },
	{ "", "global", "max-queues", "4" },
	{ "", "global", "max-region", "64M" },
	{ "", "global", "max-fds", "4096" },
	{ "", "global", "log-level", "info" },
	{ "", "services", "journal-max", "1G" },
	{ "", "services", "verdict-timeout-ms", "2000" },
	{ "", "services", "plugins", NULL },
	{ "", "scan", "on-write", "yes" },
	{ "", "scan", "on-open", "no" },
	{ "", "scan", "action", "log" },
	{ "", "scan", "fail", "open" },
	{ "", "scan", "max-file-size", "100M" },
	{ "", "scan", "exclude", NULL },
	{ "", "scan", "quarantine-dir", "/var/lib/xenfs/quarantine" },
	{ "", "scan", "database", "/var/lib/clamav" },
	{ "", "index", "max-text-size", "10M" },
	{ "", "index", "db", "/var/lib/xenfs/index.db" },
	{ "", "snapshot", "repository", "/var/lib/xenfs/snapshots" },
	{ "", "snapshot", "chunk-avg", "64K" },
	/* <state-dir> follows state-dir */
	{ "[global]\nstate-dir = /srv/x\n", "index", "db", "/srv/x/index.db" },
	{ "[global]\nstate-dir = /srv/x\n", "snapshot", "repository",
	  "/srv/x/snapshots" },
	{ "[global]\nstate-dir = /srv/x\n[index]\ndb = /d.db\n", "index", "db",
	  "/d.db" },
	/* comments and whitespace */
	{ "# c\n\n  [global]  # c\n\tmax-queues\t=\t8 # c\n", "global",
	  "max-queues", "8" },
	{ "[global]\r\nmax-queues = 2\r\n", "global", "max-queues", "2" },
	{ "[global]\nstate-dir = /a#b\n", "global", "state-dir", "/a#b" },
	{ "[global]\nstate-dir = /a b\n", "global", "state-dir", "/a b" },
	{ "[global]\nmax-queues=16", "global", "max-queues", "16" },
	/* ranges, edges */
	{ "[global]\nmax-queues = 1\n", "global", "max-queues", "1" },
	{ "[global]\nmax-region = 1M\n", "global", "max-region", "1M" },
	{ "[global]\nmax-region = 1g\n", "global", "max-region", "1g" },
	{ "[global]\nmax-region = 1048576\n", "global", "max-region",
	  "1048576" },
	{ "[global]\nmax-fds = 64\n", "global", "max-fds", "64" },
	{ "[global]\nmax-fds = 1048576\n", "global", "max-fds", "1048576" },
	{ "[global]\nlog-level = debug\n", "global", "log-level", "debug" },
	{ "[global]\ncontrol-group = xenfs\n", "global", "control-group",
	  "xenfs" },
	/* booleans */
	{ "[scan]\non-write = no\n", "scan", "on-write", "no" },
	{ "[scan]\non-open = TRUE\n", "scan", "on-open", "TRUE" },
	{ "[scan]\non-open = off\n", "scan", "on-open", "off" },
	{ "[scan]\non-open = 1\n", "scan", "on-open", "1" },
	{ "[scan]\naction = quarantine\nfail = closed\n", "scan", "fail",
	  "closed" },
	{ "[scan]\nexclude = *.iso /tmp/*\n", "scan", "exclude",
	  "*.iso /tmp/*" },
	{ "[scan]\nmax-file-size = 0\n", "scan", "max-file-size", "0" },
	{ "[services]\nplugins = indexer /opt/x.so\n", "services", "plugins",
	  "indexer /opt/x.so" },
	{ "[services]\nplugin-dir = /opt/p\n", "services", "plugin-dir",
	  "/opt/p" },
	{ "[services]\nverdict-timeout-ms = 1\n", "services",
	  "verdict-timeout-ms", "1" },
	{ "[services]\njournal-max = 16G\n", "services", "journal-max", "16G" },
	{ "[index]\nmax-text-size = 5K\n", "index", "max-text-size", "5K" },
	{ "[snapshot]\nchunk-avg = 4K\n", "snapshot", "chunk-avg", "4K" },
	/* exports: reserved keys stored; defaults of named sections */
	{ EXP, "export e", "path", "@DIR@" },
	{ EXP, "export e", "squash", "none" },
	{ EXP, "export e", "readonly", "no" },
	{ EXP, "export e", "anon-uid", NULL },
	{ EXP "squash = all\nanon-uid = 65534\nanon-gid = 65534\n",
	  "export e", "anon-gid", "65534" },
	{ EXP "map-uid = 0-65535:100000\n", "export e", "map-uid",
	  "0-65535:100000" },
	{ EXP "map-gid = 0:1000 1-9:2000\n", "export e", "map-gid",
	  "0:1000 1-9:2000" },
	{ EXP "map-uid = 0-4294967294:0\n", "export e", "map-uid",
	  "0-4294967294:0" },
	{ EXP "quota-bytes = 10G\nquota-inodes = 100000\n", "export e",
	  "quota-bytes", "10G" },
	{ EXP "noexec = yes\nreadonly = on\n", "export e", "noexec", "yes" },
	{ "[export a.b_c-1]\npath = @DIR@\naccess = *:ro\n", "export a.b_c-1",
	  "access", "*:ro" },
	/* domains */
	{ "[domain vm1]\nlocal-socket = /run/a.sock\n", "domain vm1",
	  "local-socket", "/run/a.sock" },
	{ "[domain vm1]\nscan-action = block\nscan-fail = closed\n"
	  "squash = root\nquota-bytes = 1M\nquota-inodes = 5\n"
	  "anon-uid = 1\nanon-gid = 2\nmap-uid = 0:1\nmap-gid = 0:1\n",
	  "domain vm1", "scan-action", "block" },
	{ "[domain vm1]\n", "domain vm1", "scan-action", NULL },
	{ "[domain vm1]\n", "domain vm1", "squash", "none" },
	{ "[domain vm1]\n", "domain vm2", "squash", NULL },
	{ "", "nosuch", "key", NULL },
	{ "", "scan", "nosuchkey", NULL },
};

static void test_good(void **state)
{
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
		const struct good *g = &goods[i];
		struct xf_config *cfg = parse(g->text, err, sizeof(err));
		const char *v;
		char *want;

		if (!cfg)
			fail_msg("row %zu: rejected: %s", i, err);
		v = xf_config_value(cfg, g->section, g->key);
		if (!g->value) {
			if (v)
				fail_msg("row %zu: %s/%s = '%s', want unset", i,
					 g->section, g->key, v);
		} else {
			want = subst(g->value);
			if (!v || strcmp(v, want))
				fail_msg("row %zu: %s/%s = '%s', want '%s'", i,
					 g->section, g->key, v ? v : "(null)",
					 want);
			free(want);
		}
		xf_config_free(cfg);
	}
}

/* ---- rejected inputs: expected message (substring, after @DIR@) ---- */

static const struct bad {
	const char *text;
	const char *msg;
} bads[] = {
	/* structure */
	{ "max-queues = 4\n", "xenfs.conf:1: key 'max-queues' outside of a "
	  "section" },
	{ "[global\n", "xenfs.conf:1: section header '[global' does not end" },
	{ "[]\n", "xenfs.conf:1: empty section header" },
	{ "[nosuch]\n", "xenfs.conf:1: unknown section [nosuch]; sections are" },
	{ "[global x]\n", "xenfs.conf:1: section [global] takes no name" },
	{ "[export]\n", "xenfs.conf:1: section [export] needs a name" },
	{ "[domain]\n", "xenfs.conf:1: section [domain] needs a name" },
	{ "[export a b]\n", "xenfs.conf:1: section header [export a b] has "
	  "more than one name" },
	{ "[export a/b]\n", "'a/b' is not a valid tag" },
	{ "[export ..]\n", "'..' is not a valid tag" },
	{ "[export "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n",
	  "is not a valid tag" },
	{ "[domain vm$]\n", "'vm$' is not a valid domain name" },
	{ "[global]\n[scan]\n[global]\n", "xenfs.conf:3: duplicate section "
	  "[global] (first at line 1)" },
	{ EXP "[export e]\n", "xenfs.conf:4: duplicate section [export e] "
	  "(first at line 1)" },
	{ "[domain d]\n[domain d]\n", "xenfs.conf:2: duplicate section "
	  "[domain d] (first at line 1)" },
	{ "[global]\nnonsense\n", "xenfs.conf:2: 'nonsense' is neither" },
	{ "[global]\n= 4\n", "xenfs.conf:2: missing key before '='" },
	{ "[global]\nfoo = 1\n", "xenfs.conf:2: unknown key 'foo' in [global]; "
	  "known keys: control-socket state-dir" },
	{ "[scan]\npath = /x\n", "unknown key 'path' in [scan]" },
	{ "[domain d]\naccess = d:rw\n", "unknown key 'access' in [domain]" },
	{ "[export e]\nlocal-socket = /x\n", "unknown key 'local-socket' in "
	  "[export]" },
	{ "[global]\nmax-queues = 2\nmax-queues = 3\n", "xenfs.conf:3: "
	  "duplicate key 'max-queues' in [global]" },
	{ "[global]\nmax-queues =\n", "xenfs.conf:2: max-queues: empty value" },
	{ "[global]\nmax-queues = # c\n", "max-queues: empty value" },
	/* fuzz: "key=#x" printed as "key = #x" reloaded as empty */
	{ "[services]\nplugins=#x\n", "xenfs.conf:2: plugins: empty value" },
	{ "[global]\nmax-\x01queues = 1\n", "control character 0x01" },
	{ "[global]\nmax-queues = 1\x7f\n", "control character 0x7f" },
	/* uint */
	{ "[global]\nmax-queues = 0\n", "xenfs.conf:2: max-queues: '0' is out "
	  "of range (1..16)" },
	{ "[global]\nmax-queues = 17\n", "max-queues: '17' is out of range "
	  "(1..16)" },
	{ "[global]\nmax-queues = -1\n", "max-queues: '-1' is not a number" },
	{ "[global]\nmax-queues = 4x\n", "max-queues: '4x' is not a number" },
	{ "[global]\nmax-queues = 0x4\n", "is not a number" },
	{ "[global]\nmax-queues = 99999999999999999999999\n",
	  "is out of range" },
	{ "[global]\nmax-fds = 63\n", "max-fds: '63' is out of range "
	  "(64..1048576)" },
	{ "[global]\nmax-fds = 1048577\n", "is out of range" },
	{ EXP "anon-uid = 4294967295\n", "anon-uid: '4294967295' is out of "
	  "range" },
	{ EXP "quota-inodes = 18446744073709551616\n", "is out of range" },
	{ "[services]\nverdict-timeout-ms = 0\n", "verdict-timeout-ms: '0' is "
	  "out of range" },
	/* size */
	{ "[global]\nmax-region = 1023K\n", "max-region: '1023K' is out of "
	  "range (1M..1G)" },
	{ "[global]\nmax-region = 2G\n", "max-region: '2G' is out of range "
	  "(1M..1G)" },
	{ "[global]\nmax-region = 64X\n", "max-region: '64X' is not a size "
	  "(a number with an optional K, M or G suffix)" },
	{ "[global]\nmax-region = M\n", "is not a size" },
	{ "[global]\nmax-region = 64 M\n", "is not a size" },
	{ "[scan]\nmax-file-size = 17179869184G\n", "max-file-size: "
	  "'17179869184G' is out of range" },
	{ "[scan]\nmax-file-size = 18446744073709551616\n", "is out of range" },
	{ "[snapshot]\nchunk-avg = 1K\n", "chunk-avg: '1K' is out of range "
	  "(4K..64M)" },
	/* bool */
	{ "[scan]\non-write = maybe\n", "xenfs.conf:2: on-write: 'maybe' is "
	  "not a boolean (yes/no, true/false, on/off, 1/0)" },
	{ EXP "readonly = 2\n", "readonly: '2' is not a boolean" },
	/* enum */
	{ "[global]\nlog-level = trace\n", "log-level: 'trace' is not info or "
	  "debug" },
	{ "[scan]\naction = delete\n", "action: 'delete' is not log, block or "
	  "quarantine" },
	{ "[scan]\nfail = half\n", "fail: 'half' is not open or closed" },
	{ EXP "squash = some\n", "squash: 'some' is not none, root or all" },
	{ "[domain d]\nscan-action = x\n", "scan-action: 'x' is not log, "
	  "block or quarantine" },
	{ "[domain d]\nscan-fail = x\n", "scan-fail: 'x' is not open or "
	  "closed" },
	/* string, paths */
	{ "[global]\ncontrol-group = a b\n", "control-group: 'a b' must be "
	  "one word" },
	{ "[global]\ncontrol-socket = run/x\n", "control-socket: 'run/x' is "
	  "not an absolute path" },
	{ "[global]\nstate-dir = ~/x\n", "state-dir: '~/x' is not an "
	  "absolute path" },
	{ "[scan]\ndatabase = db\n", "database: 'db' is not an absolute" },
	{ "[scan]\nquarantine-dir = q\n", "is not an absolute path" },
	{ "[index]\ndb = x\n", "db: 'x' is not an absolute path" },
	{ "[snapshot]\nrepository = x\n", "is not an absolute path" },
	{ "[services]\nplugin-dir = x\n", "is not an absolute path" },
	{ "[domain d]\nlocal-socket = x.sock\n", "local-socket: 'x.sock' is "
	  "not an absolute path" },
	{ "[domain a]\nlocal-socket = /s\n[domain b]\nlocal-socket = /s\n",
	  "xenfs.conf:4: local-socket: '/s' is already the socket of domain "
	  "'a' (line 1)" },
	{ "[domain a]\nlocal-socket = /c\n[global]\ncontrol-socket = /c\n",
	  "xenfs.conf:1: local-socket of domain 'a' is the control-socket '/c'" },
	{ "[domain a]\nlocal-socket = /run/xenfs/control.sock\n",
	  "xenfs.conf:1: local-socket of domain 'a' is the control-socket" },
	/* export */
	{ "[export e]\npath = @DIR@/nosuch\naccess = vm1:rw\n",
	  "xenfs.conf:2: path: '@DIR@/nosuch': No such file or directory" },
	{ "[export e]\npath = @FILE@\naccess = vm1:rw\n",
	  "xenfs.conf:2: path: '@FILE@' is not a directory" },
	{ "[export e]\npath = rel\n", "path: 'rel' is not an absolute path" },
	{ "[export e]\naccess = vm1:rw\n", "xenfs.conf:1: export 'e' has no "
	  "path; add path = /DIRECTORY" },
	{ "[export e]\npath = @DIR@\n", "xenfs.conf:1: export 'e' has no "
	  "access rule; add access = DOMAIN:ro|rw" },
	{ "\n[export e]\npath = @DIR@\n[global]\n", "xenfs.conf:2: export 'e' "
	  "has no access rule" },
	{ "[export e]\npath = @DIR@\naccess = vm1:rx\n", "xenfs.conf:3: "
	  "access: 'vm1:rx' is not domain:ro or domain:rw" },
	{ "[export e]\npath = @DIR@\naccess = vm1\n", "access: 'vm1' is not "
	  "domain:ro or domain:rw" },
	{ "[export e]\npath = @DIR@\naccess = :rw\n", "access: '' is not a "
	  "domain name" },
	{ "[export e]\npath = @DIR@\naccess = 'vm1':rw\n", "access: ''vm1'' "
	  "is not a domain name" },
	{ "[export e]\npath = @DIR@\naccess = vm1:RW\n", "is not domain:ro" },
	{ "[export e]\npath = @DIR@\naccess = vm1:rw vm1:ro\n", "access: "
	  "domain 'vm1' is listed twice" },
	{ "[export e]\npath = @DIR@\naccess = *:rw vm1:ro *:ro\n", "access: "
	  "domain '*' is listed twice" },
	{ "[export e]\npath = @DIR@\naccess = vm1:rw\naccess = vm2:rw\n",
	  "xenfs.conf:4: duplicate key 'access' in [export e]" },
	/* id maps */
	{ EXP "map-uid = 0-65535\n", "map-uid: '0-65535' is not "
	  "GUEST-FIRST-GUEST-LAST:HOST-FIRST" },
	{ EXP "map-uid = a:1\n", "is not GUEST-FIRST" },
	{ EXP "map-uid = 1:2:3\n", "is not GUEST-FIRST" },
	{ EXP "map-uid = 5-1:100\n", "map-uid: '5-1:100': range 5-1 is empty" },
	{ EXP "map-gid = 0-10:4294967290\n", "map-gid: '0-10:4294967290': ids "
	  "must be at most 4294967294" },
	{ EXP "map-uid = 0-10:100 5-20:200\n", "map-uid: '5-20:200' overlaps "
	  "an earlier range" },
};

static void test_bad(void **state)
{
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *b = &bads[i];
		struct xf_config *cfg;
		char *want;

		cfg = parse(b->text, err, sizeof(err));
		if (cfg) {
			xf_config_free(cfg);
			fail_msg("row %zu: accepted: %s", i, b->text);
		}
		want = subst(b->msg);
		if (!strstr(err, want))
			fail_msg("row %zu: message '%s' lacks '%s'", i, err,
				 want);
		free(want);
	}
}

static void test_nul(void **state)
{
	static const char text[] = "[global]\nmax-queues = 1\n\0junk";
	char err[256];

	assert_null(xf_config_parse("c", text, sizeof(text) - 1, err,
				    sizeof(err)));
	assert_string_equal(err, "c:3: NUL byte in file");
}

static void test_long_line(void **state)
{
	size_t n = 5000;
	char *t = malloc(n + 1), err[256];

	assert_non_null(t);
	memset(t, '#', n);
	t[n] = '\0';
	assert_null(xf_config_parse("c", t, n, err, sizeof(err)));
	assert_non_null(strstr(err, "c:1: line longer than"));
	free(t);
}

static void test_small_errbuf(void **state)
{
	char err[8];

	assert_null(xf_config_parse("xenfs.conf", "[x]\n", 4, err,
				    sizeof(err)));
	assert_string_equal(err, "xenfs.c");
	/* no buffer at all is fine too */
	assert_null(xf_config_parse("xenfs.conf", "[x]\n", 4, NULL, 0));
}

/* Typed fields of struct xf_config. */
static void test_typed(void **state)
{
	char err[512];
	struct xf_config *cfg;
	const struct xf_export *e;
	const struct xf_domain *d;

	cfg = parse("", err, sizeof(err));
	assert_non_null(cfg);
	assert_string_equal(cfg->global.control_socket,
			    "/run/xenfs/control.sock");
	assert_string_equal(cfg->global.state_dir, "/var/lib/xenfs");
	assert_null(cfg->global.control_group);
	assert_int_equal(cfg->global.max_queues, 4);
	assert_int_equal(cfg->global.max_region, 64ull << 20);
	assert_int_equal(cfg->global.max_fds, 4096);
	assert_int_equal(cfg->global.log_debug, 0);
	assert_int_equal(cfg->nexports, 0);
	assert_int_equal(cfg->ndomains, 0);
	assert_int_equal(cfg->nkv, 0);
	assert_string_equal(cfg->file, "xenfs.conf");
	xf_config_free(cfg);

	cfg = parse("[global]\ncontrol-socket = /c.sock\nstate-dir = /s\n"
		    "control-group = adm\nmax-queues = 16\nmax-region = 1G\n"
		    "max-fds = 64\nlog-level = debug\n"
		    "[export one]\npath = @DIR@\naccess = vm1:rw *:ro\n"
		    "readonly = yes\n"
		    "[export two]\npath = @DIR@\naccess = vm2:ro\n"
		    "[domain vm1]\nlocal-socket = /run/vm1.sock\n"
		    "[domain vm2]\n", err, sizeof(err));
	if (!cfg)
		fail_msg("%s", err);
	assert_string_equal(cfg->global.control_socket, "/c.sock");
	assert_string_equal(cfg->global.state_dir, "/s");
	assert_string_equal(cfg->global.control_group, "adm");
	assert_int_equal(cfg->global.max_queues, 16);
	assert_int_equal(cfg->global.max_region, 1ull << 30);
	assert_int_equal(cfg->global.max_fds, 64);
	assert_int_equal(cfg->global.log_debug, 1);
	assert_int_equal(cfg->nexports, 2);
	e = xf_config_export(cfg, "one");
	assert_non_null(e);
	assert_string_equal(e->tag, "one");
	assert_string_equal(e->path, tdir);
	assert_int_equal(e->nrules, 2);
	assert_string_equal(e->rules[0].domain, "vm1");
	assert_int_equal(e->rules[0].mode, XF_ACCESS_RW);
	assert_string_equal(e->rules[1].domain, "*");
	assert_int_equal(e->rules[1].mode, XF_ACCESS_RO);
	assert_int_equal(e->readonly, 1);
	assert_int_equal(e->line, 9);
	e = xf_config_export(cfg, "two");
	assert_non_null(e);
	assert_int_equal(e->readonly, 0);
	assert_null(xf_config_export(cfg, "three"));
	assert_null(xf_config_export(cfg, NULL));
	assert_null(xf_config_export(NULL, "one"));
	d = xf_config_domain(cfg, "vm1");
	assert_non_null(d);
	assert_string_equal(d->local_socket, "/run/vm1.sock");
	assert_int_equal(d->line, 16);
	d = xf_config_domain(cfg, "vm2");
	assert_non_null(d);
	assert_null(d->local_socket);
	assert_null(xf_config_domain(cfg, "vm3"));
	/* raw kv, file order */
	assert_int_equal(cfg->nkv, 13);
	assert_string_equal(cfg->kv[0].section, "global");
	assert_string_equal(cfg->kv[0].key, "control-socket");
	assert_int_equal(cfg->kv[0].line, 2);
	assert_string_equal(cfg->kv[12].section, "domain vm1");
	assert_string_equal(cfg->kv[12].key, "local-socket");
	assert_int_equal(cfg->kv[12].line, 17);
	assert_string_equal(xf_config_get(cfg, "export one", "access"),
			    "vm1:rw *:ro");
	assert_null(xf_config_get(cfg, "scan", "on-write"));	/* raw */
	assert_string_equal(xf_config_value(cfg, "scan", "on-write"), "yes");
	xf_config_free(cfg);

	cfg = parse("[global]\ncontrol-group = none\n", err, sizeof(err));
	assert_non_null(cfg);
	assert_null(cfg->global.control_group);
	xf_config_free(cfg);
}

static void test_get_u64(void **state)
{
	char err[512];
	struct xf_config *cfg;
	uint64_t v;

	cfg = parse("[scan]\non-open = yes\n[global]\nmax-region = 2M\n" EXP
		    "quota-bytes = 3K\n", err, sizeof(err));
	if (!cfg)
		fail_msg("%s", err);
	assert_int_equal(xf_config_get_u64(cfg, "scan", "on-open", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(xf_config_get_u64(cfg, "scan", "on-write", &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(xf_config_get_u64(cfg, "global", "max-region", &v),
			 0);
	assert_int_equal(v, 2 << 20);
	assert_int_equal(xf_config_get_u64(cfg, "scan", "max-file-size", &v),
			 0);
	assert_int_equal(v, 100 << 20);
	assert_int_equal(xf_config_get_u64(cfg, "services",
					   "verdict-timeout-ms", &v), 0);
	assert_int_equal(v, 2000);
	assert_int_equal(xf_config_get_u64(cfg, "export e", "quota-bytes", &v),
			 0);
	assert_int_equal(v, 3072);
	assert_int_equal(xf_config_get_u64(cfg, "export e", "quota-inodes",
					   &v), -ENOENT);
	assert_int_equal(xf_config_get_u64(cfg, "export f", "quota-bytes", &v),
			 -ENOENT);
	assert_int_equal(xf_config_get_u64(cfg, "scan", "action", &v),
			 -EINVAL);
	assert_int_equal(xf_config_get_u64(cfg, "scan", "nosuch", &v),
			 -ENOENT);
	assert_int_equal(xf_config_get_u64(NULL, "scan", "on-open", &v),
			 -ENOENT);
	xf_config_free(cfg);
}

/* --print-config output parses back to the same output. */
static void test_print_roundtrip(void **state)
{
	static const char *const texts[] = {
		"",
		"[global]\nstate-dir = /srv\nmax-queues = 2\n" EXP
		"squash = root\nmap-uid = 0-9:100\n[domain vm1]\n"
		"local-socket = /run/x.sock\nscan-fail = closed\n"
		"[scan]\nexclude = *.iso\n[services]\nplugins = a b\n",
	};
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct xf_config *a, *b;
		char *p1 = NULL, *p2 = NULL;
		size_t l1 = 0, l2 = 0;
		FILE *f;

		a = parse(texts[i], err, sizeof(err));
		if (!a)
			fail_msg("%s", err);
		assert_non_null(f = open_memstream(&p1, &l1));
		xf_config_print(a, f);
		fclose(f);
		b = xf_config_parse("xenfs.conf", p1, l1, err, sizeof(err));
		if (!b)
			fail_msg("reparse: %s\n%s", err, p1);
		assert_non_null(f = open_memstream(&p2, &l2));
		xf_config_print(b, f);
		fclose(f);
		assert_string_equal(p1, p2);
		assert_non_null(strstr(p1, "max-region = 64M\n"));
		assert_non_null(strstr(p1, "[snapshot]\n"));
		free(p1);
		free(p2);
		xf_config_free(a);
		xf_config_free(b);
	}
}

static void test_load(void **state)
{
	char path[128], err[512];
	struct xf_config *cfg;
	FILE *f;

	snprintf(path, sizeof(path), "%s/xenfs.conf", tdir);
	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "[export e]\npath = %s\naccess = *:rw\n", tdir);
	fclose(f);
	cfg = xf_config_load(path, err, sizeof(err));
	if (!cfg)
		fail_msg("%s", err);
	assert_string_equal(cfg->file, path);
	xf_config_free(cfg);

	assert_non_null(f = fopen(path, "w"));
	fprintf(f, "[global]\nmax-queues = 99\n");
	fclose(f);
	assert_null(xf_config_load(path, err, sizeof(err)));
	assert_true(!strncmp(err, path, strlen(path)));
	assert_non_null(strstr(err, ":2: max-queues: '99' is out of range"));
	unlink(path);

	assert_null(xf_config_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "No such file or directory"));
	assert_null(xf_config_load(tdir, err, sizeof(err)));
	assert_non_null(strstr(err, "not a regular file"));
}

static void test_reload_diff(void **state)
{
	char err[512], buf[256];
	struct xf_config *a, *b;

	a = parse("[global]\nmax-queues = 2\n" EXP "[domain d]\n"
		  "local-socket = /a\n", err, sizeof(err));
	assert_non_null(a);
	/* reloadable changes only: nothing to report */
	b = parse("[global]\nmax-queues = 3\n[export e]\npath = /\n"
		  "access = vm2:ro\n[domain d]\nlocal-socket = /b\n"
		  "[scan]\naction = block\n", err, sizeof(err));
	assert_non_null(b);
	assert_int_equal(xf_config_reload_diff(a, b, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	xf_config_free(b);
	/* a default made explicit is no change */
	b = parse("[global]\nmax-queues = 2\nstate-dir = /var/lib/xenfs\n"
		  EXP, err, sizeof(err));
	assert_non_null(b);
	assert_int_equal(xf_config_reload_diff(a, b, buf, sizeof(buf)), 0);
	xf_config_free(b);
	b = parse("[global]\nstate-dir = /srv\ncontrol-socket = /c\n"
		  "[scan]\ndatabase = /db\n", err, sizeof(err));
	assert_non_null(b);
	/* state-dir also moves index db and snapshot repository */
	assert_int_equal(xf_config_reload_diff(a, b, buf, sizeof(buf)), 5);
	assert_string_equal(buf, "[global] control-socket, [global] "
			    "state-dir, [scan] database, [index] db, "
			    "[snapshot] repository");
	assert_int_equal(xf_config_reload_diff(a, b, NULL, 0), 5);
	assert_int_equal(xf_config_reload_diff(a, b, buf, 10), 5);
	assert_string_equal(buf, "[global] ");
	xf_config_free(b);
	assert_int_equal(xf_config_reload_diff(NULL, a, buf, sizeof(buf)), 0);
	xf_config_free(a);
}

/* Every key of the table is documented in docs/xenfs.conf.5. */
struct man { char *text; int missing; };

static void man_check(const char *sections, const char *key, const char *def,
		      int reload, const char *help, void *arg)
{
	struct man *m = arg;
	char want[128];

	const char *at, *end, *next;
	int says_reload;

	snprintf(want, sizeof(want), "\n.It Cm %s", key);
	for (at = strstr(m->text, want); at; at = strstr(at + 1, want))
		if (at[strlen(want)] == ' ' || at[strlen(want)] == '\n')
			break;
	if (!at) {
		print_error("docs/xenfs.conf.5 lacks '%s' ([%s])\n", want + 1,
			    sections);
		m->missing++;
		return;
	}
	/* the entry runs to the next .It or .El */
	end = strstr(at + 1, "\n.It ");
	next = strstr(at + 1, "\n.El");
	if (!end || (next && next < end))
		end = next;
	says_reload = 0;
	for (next = strstr(at, "\nReload"); next && (!end || next < end);
	     next = strstr(next + 1, "\nReload"))
		says_reload = 1;
	if (says_reload != !!reload) {
		print_error("docs/xenfs.conf.5: '%s' %s 'Reload' but the "
			    "table says it is %sreloadable\n", key,
			    says_reload ? "says" : "does not say",
			    reload ? "" : "not ");
		m->missing++;
	}
}

static void test_manpage(void **state)
{
	const char *path = getenv("XF_MANPAGE");
	struct man m = { NULL, 0 };
	size_t len = 0;
	FILE *f;

	if (!path)
		path = "docs/xenfs.conf.5";
	if (!(f = fopen(path, "r")))
		skip();
	assert_true(getdelim(&m.text, &len, '\0', f) > 0);
	fclose(f);
	xf_config_foreach_key(man_check, &m);
	free(m.text);
	assert_int_equal(m.missing, 0);
}

/* The EXAMPLES section of the man page is a valid configuration. */
static void test_manpage_example(void **state)
{
	const char *path = getenv("XF_MANPAGE");
	char *text = NULL, *a, *b, *ex, *p, err[512];
	struct xf_config *cfg;
	size_t len = 0;
	FILE *f;

	if (!path)
		path = "docs/xenfs.conf.5";
	if (!(f = fopen(path, "r")))
		skip();
	assert_true(getdelim(&text, &len, '\0', f) > 0);
	fclose(f);
	a = strstr(text, ".Sh EXAMPLES");
	assert_non_null(a);
	a = strstr(a, ".Bd -literal");
	assert_non_null(a);
	a = strchr(a, '\n') + 1;
	b = strstr(a, "\n.Ed");
	assert_non_null(b);
	b[1] = '\0';
	/* the example's directories become the test's */
	ex = malloc(strlen(a) * 2 + 1);
	assert_non_null(ex);
	ex[0] = '\0';
	for (p = a; *p;) {
		if (!strncmp(p, "path = ", 7)) {
			strcat(ex, "path = @DIR@");
			p = strchr(p, '\n');
		} else {
			strncat(ex, p, 1);
			p++;
		}
	}
	cfg = parse(ex, err, sizeof(err));
	if (!cfg)
		fail_msg("man page example: %s\n%s", err, ex);
	assert_int_equal(cfg->nexports, 2);
	assert_int_equal(xf_policy_access(cfg, "vm1", "shared"), XF_ACCESS_RW);
	assert_int_equal(xf_policy_access(cfg, "vm7", "shared"), XF_ACCESS_RO);
	assert_int_equal(xf_policy_access(cfg, "vm7", "vm1-root"),
			 XF_ACCESS_NONE);
	xf_config_free(cfg);
	free(ex);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_nul),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_small_errbuf),
		cmocka_unit_test(test_typed),
		cmocka_unit_test(test_get_u64),
		cmocka_unit_test(test_print_roundtrip),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_reload_diff),
		cmocka_unit_test(test_manpage),
		cmocka_unit_test(test_manpage_example),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
