/*
 * The xenfs.conf reader: text -> struct xf_config (see policy.h and
 * docs/xenfs.conf.5).
 *
 * One static table (cfg_keys[] below) describes every key: the sections it
 * may appear in, its type and range, its default, whether a SIGHUP reload
 * applies it, and a line of help.  The same table drives parsing,
 * xf_config_print() (--print-config), xf_config_value() and the man page,
 * which must be kept in sync with it (tests/unit/test_config.c checks that
 * every key is documented in docs/xenfs.conf.5).
 *
 * Concurrency: parsing touches only its own memory; a loaded struct
 * xf_config is immutable and may be read by any thread.
 *
 * Trust boundary: the file is written by the host administrator, so it is
 * trusted not to be malicious, but it is still parsed defensively (it is
 * fuzzed, tests/fuzz/fuzz_config.c): every line is bounded, NUL and
 * control characters are rejected, numbers are overflow-checked, and every
 * error names the file, line, key and the values allowed.  There are no
 * silent defaults for bad input.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy.h"

#ifndef XENFS_PLUGINDIR
#define XENFS_PLUGINDIR "/usr/local/lib/xenfs"
#endif

#define CFG_MAX_FILE	(1u << 20)	/* bytes of config file */
#define CFG_MAX_LINE	4096u		/* bytes per line */
#define CFG_MAX_NAMED	1024u		/* exports, and domains */
#define CFG_MAX_RULES	1024u		/* access rules per export */
#define CFG_NAME_MAX	63u		/* tag and domain name length */

/* Section kinds; a key's `sections` is a mask of (1 << kind). */
enum cfg_sect {
	S_GLOBAL,
	S_EXPORT,
	S_DOMAIN,
	S_SERVICES,
	S_SCAN,
	S_INDEX,
	S_SNAPSHOT,
	S_COUNT
};

static const struct {
	const char *name;
	bool named;		/* [export TAG], [domain NAME] */
} cfg_sects[S_COUNT] = {
	[S_GLOBAL] = { "global", false },
	[S_EXPORT] = { "export", true },
	[S_DOMAIN] = { "domain", true },
	[S_SERVICES] = { "services", false },
	[S_SCAN] = { "scan", false },
	[S_INDEX] = { "index", false },
	[S_SNAPSHOT] = { "snapshot", false },
};

#define M(s)	(1u << (s))

enum cfg_type {
	T_STRING,	/* one word, no whitespace */
	T_PATH,		/* absolute path */
	T_DIR,		/* absolute path of an existing directory */
	T_BOOL,		/* yes/no true/false on/off 1/0 */
	T_UINT,		/* decimal, in [min, max] */
	T_SIZE,		/* decimal with K/M/G suffix (powers of 1024), in [min, max] */
	T_ENUM,		/* one of enums ("a|b|c") */
	T_ACCESS,	/* DOMAIN:ro|rw ..., DOMAIN may be '*' */
	T_IDMAP,	/* GUEST[-GUEST]:HOST ... */
	T_WORDS,	/* space-separated words */
};

/* Typed destinations in struct xf_config; F_NONE keys live only in kv. */
enum cfg_field {
	F_NONE,
	F_CONTROL_SOCKET,
	F_STATE_DIR,
	F_CONTROL_GROUP,
	F_MAX_QUEUES,
	F_MAX_REGION,
	F_MAX_FDS,
	F_LOG_LEVEL,
	F_EXPORT_PATH,
	F_EXPORT_ACCESS,
	F_EXPORT_READONLY,
	F_DOMAIN_SOCKET,
};

struct cfg_key {
	unsigned sections;	/* mask of M(S_*) */
	const char *name;
	enum cfg_type type;
	uint64_t min, max;	/* T_UINT, T_SIZE */
	const char *enums;	/* T_ENUM: "a|b|c" */
	const char *def;	/* default as text; "<state-dir>/x" expands;
				 * NULL: unset unless given */
	bool optional_none;	/* the word "none" means unset */
	bool reload;		/* a SIGHUP reload applies a change */
	enum cfg_field field;
	const char *help;
};

#define U32MAX	4294967295ull
#define ID_MAX	4294967294ull	/* (uid_t)-1 is not an id */
#define K	1024ull
#define MB	(1024ull * 1024)
#define GB	(1024ull * 1024 * 1024)

/*
 * THE table.  Order is the order of --print-config and of the man page.
 * Keep docs/xenfs.conf.5 in sync (the unit test checks every name).
 */
static const struct cfg_key cfg_keys[] = {
	/* [global] */
	{ M(S_GLOBAL), "control-socket", T_PATH, 0, 0, NULL,
	  "/run/xenfs/control.sock", false, false, F_CONTROL_SOCKET,
	  "unix socket xenfsctl talks to" },
	{ M(S_GLOBAL), "state-dir", T_PATH, 0, 0, NULL,
	  "/var/lib/xenfs", false, false, F_STATE_DIR,
	  "directory for the operation journal and service state" },
	{ M(S_GLOBAL), "control-group", T_STRING, 0, 0, NULL,
	  "none", true, true, F_CONTROL_GROUP,
	  "group allowed to use the control socket besides root" },
	{ M(S_GLOBAL), "max-queues", T_UINT, 1, 16, NULL,
	  "4", false, true, F_MAX_QUEUES,
	  "ring pairs a frontend may use per connection" },
	{ M(S_GLOBAL), "max-region", T_SIZE, 1 * MB, 1 * GB, NULL,
	  "64M", false, true, F_MAX_REGION,
	  "largest shared region (rings + data pool) per connection" },
	{ M(S_GLOBAL), "max-fds", T_UINT, 64, 1048576, NULL,
	  "4096", false, true, F_MAX_FDS,
	  "O_PATH descriptors cached per connection" },
	{ M(S_GLOBAL), "log-level", T_ENUM, 0, 0, "info|debug",
	  "info", false, true, F_LOG_LEVEL,
	  "debug adds per-request messages" },

	/* [export TAG] */
	{ M(S_EXPORT), "path", T_DIR, 0, 0, NULL,
	  NULL, false, true, F_EXPORT_PATH,
	  "host directory exported (required)" },
	{ M(S_EXPORT), "access", T_ACCESS, 0, 0, NULL,
	  NULL, false, true, F_EXPORT_ACCESS,
	  "DOMAIN:ro|rw ... ('*' is any domain; required)" },
	{ M(S_EXPORT), "readonly", T_BOOL, 0, 0, NULL,
	  "no", false, true, F_EXPORT_READONLY,
	  "cap every access rule at ro" },
	{ M(S_EXPORT), "noexec", T_BOOL, 0, 0, NULL,
	  "no", false, true, F_NONE,
	  "mounted noexec; exec opens refused" },

	/* [domain NAME] */
	{ M(S_DOMAIN), "local-socket", T_PATH, 0, 0, NULL,
	  NULL, false, true, F_DOMAIN_SOCKET,
	  "serve this domain over the local transport on this socket" },

	/* [export TAG] and [domain NAME] */
	{ M(S_EXPORT) | M(S_DOMAIN), "squash", T_ENUM, 0, 0, "none|root|all",
	  "none", false, true, F_NONE,
	  "none|root|all: guest ids that act as anon-uid/anon-gid" },
	{ M(S_EXPORT) | M(S_DOMAIN), "anon-uid", T_UINT, 0, ID_MAX, NULL,
	  NULL, false, true, F_NONE,
	  "uid squashed or unmapped callers act as (65534)" },
	{ M(S_EXPORT) | M(S_DOMAIN), "anon-gid", T_UINT, 0, ID_MAX, NULL,
	  NULL, false, true, F_NONE,
	  "gid squashed or unmapped callers act as (65534)" },
	{ M(S_EXPORT) | M(S_DOMAIN), "map-uid", T_IDMAP, 0, 0, NULL,
	  NULL, false, true, F_NONE,
	  "guest uid ranges to host: GUEST-FIRST[-GUEST-LAST]:HOST-FIRST ..." },
	{ M(S_EXPORT) | M(S_DOMAIN), "map-gid", T_IDMAP, 0, 0, NULL,
	  NULL, false, true, F_NONE,
	  "the same for gids" },
	{ M(S_EXPORT) | M(S_DOMAIN), "quota-bytes", T_SIZE, 0, UINT64_MAX,
	  NULL, NULL, false, true, F_NONE,
	  "bytes the domain (or export) may use; EDQUOT past it" },
	{ M(S_EXPORT) | M(S_DOMAIN), "quota-inodes", T_UINT, 0, UINT64_MAX,
	  NULL, NULL, false, true, F_NONE,
	  "names the domain (or export) may create; EDQUOT past it" },

	/* [domain NAME], scanner overrides */
	{ M(S_DOMAIN), "scan-action", T_ENUM, 0, 0, "log|block|quarantine",
	  NULL, false, true, F_NONE,
	  "this domain's [scan] action (the scanner applies it)" },
	{ M(S_DOMAIN), "scan-fail", T_ENUM, 0, 0, "open|closed",
	  NULL, false, true, F_NONE,
	  "this domain's [scan] fail (xenfsd applies it)" },

	/* [services] */
	{ M(S_SERVICES), "plugins", T_WORDS, 0, 0, NULL,
	  NULL, false, false, F_NONE,
	  "plugins to load: names (in plugin-dir) or paths" },
	{ M(S_SERVICES), "plugin-dir", T_PATH, 0, 0, NULL,
	  XENFS_PLUGINDIR, false, false, F_NONE,
	  "where plugin names are looked up" },
	{ M(S_SERVICES), "journal-max", T_SIZE, 1 * MB, UINT64_MAX, NULL,
	  "1G", false, true, F_NONE,
	  "size of the operation journal before old records go" },
	{ M(S_SERVICES), "verdict-timeout-ms", T_UINT, 1, 3600000, NULL,
	  "2000", false, true, F_NONE,
	  "how long an open waits for a verdict" },

	/* [scan] */
	{ M(S_SCAN), "on-write", T_BOOL, 0, 0, NULL,
	  "yes", false, true, F_NONE,
	  "scan a file when it is closed after a write" },
	{ M(S_SCAN), "on-open", T_BOOL, 0, 0, NULL,
	  "no", false, true, F_NONE,
	  "ask for a verdict before an open succeeds" },
	{ M(S_SCAN), "action", T_ENUM, 0, 0, "log|block|quarantine",
	  "log", false, true, F_NONE,
	  "what happens to an infected file" },
	{ M(S_SCAN), "fail", T_ENUM, 0, 0, "open|closed",
	  "open", false, true, F_NONE,
	  "answer when the scanner cannot decide in time" },
	{ M(S_SCAN), "max-file-size", T_SIZE, 0, UINT64_MAX, NULL,
	  "100M", false, true, F_NONE,
	  "larger files are not scanned" },
	{ M(S_SCAN), "exclude", T_WORDS, 0, 0, NULL,
	  NULL, false, true, F_NONE,
	  "glob patterns of paths never scanned" },
	{ M(S_SCAN), "quarantine-dir", T_PATH, 0, 0, NULL,
	  "/var/lib/xenfs/quarantine", false, true, F_NONE,
	  "where quarantined files are moved" },
	{ M(S_SCAN), "database", T_PATH, 0, 0, NULL,
	  "/var/lib/clamav", false, false, F_NONE,
	  "ClamAV signature directory" },
	{ M(S_SCAN), "tmp-dir", T_PATH, 0, 0, NULL,
	  NULL, false, true, F_NONE,
	  "where the engine unpacks archives (unset: /dev/shm if a tmpfs)" },

	/* [index] */
	{ M(S_INDEX), "max-text-size", T_SIZE, 0, UINT64_MAX, NULL,
	  "10M", false, true, F_NONE,
	  "larger files are indexed by name and metadata only" },
	{ M(S_INDEX), "db", T_PATH, 0, 0, NULL,
	  "<state-dir>/index.db", false, false, F_NONE,
	  "the index database" },

	/* [snapshot] */
	{ M(S_SNAPSHOT), "repository", T_PATH, 0, 0, NULL,
	  "<state-dir>/snapshots", false, false, F_NONE,
	  "where snapshots are stored" },
	{ M(S_SNAPSHOT), "chunk-avg", T_SIZE, 4 * K, 64 * MB, NULL,
	  "64K", false, true, F_NONE,
	  "average chunk size of the deduplicating store" },
	{ M(S_SNAPSHOT), "hook", T_PATH, 0, 0, NULL,
	  NULL, false, true, F_NONE,
	  "program run as HOOK pre|post DOMAIN around the freeze" },
	{ M(S_SNAPSHOT), "freeze-copy-max", T_SIZE, 0, UINT64_MAX, NULL,
	  "64M", false, true, F_NONE,
	  "bytes a snapshot may copy while the domain is frozen" },
};

#define NKEYS	(sizeof(cfg_keys) / sizeof(cfg_keys[0]))
_Static_assert(NKEYS <= 64, "seen-key mask is 64 bits");

/* ---- parser state ---- */

struct parser {
	const char *name;	/* file name for messages */
	int line;
	char *err;
	size_t errlen;
	struct xf_config *cfg;
	int sect;		/* current enum cfg_sect, or -1 before any */
	char *sect_str;		/* "scan", "export TAG": kv section string */
	int sect_line[S_COUNT];	/* single sections: line of first header */
	uint64_t seen;		/* keys given in the current section */
	long cur;		/* index of the current export/domain */
	int nostat;		/* directories were checked by whoever
				 * produced the text (xenfsd's workers) */
};

static int perr(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Format "file:line: message" into p->err; returns -EINVAL. */
static int perr(struct parser *p, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (p->err && p->errlen) {
		if (p->line > 0)
			n = snprintf(p->err, p->errlen, "%s:%d: ", p->name,
				     p->line);
		else
			n = snprintf(p->err, p->errlen, "%s: ", p->name);
		if (n < 0)
			n = 0;
		if ((size_t)n < p->errlen) {
			va_start(ap, fmt);
			vsnprintf(p->err + n, p->errlen - n, fmt, ap);
			va_end(ap);
		}
	}
	return -EINVAL;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t';
}

/* [A-Za-z0-9._-]{1,63}, and not "." or "..": tags and domain names may
 * become path components of service state. */
static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CFG_NAME_MAX)
		return false;
	if (!strcmp(s, ".") || !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '_' &&
		    *s != '-')
			return false;
	return true;
}

/* Human form of a size for messages and print: 64M, 1G, 4096. */
static void fmt_size(char *buf, size_t len, uint64_t v)
{
	if (v && v % GB == 0)
		snprintf(buf, len, "%lluG", (unsigned long long)(v / GB));
	else if (v && v % MB == 0)
		snprintf(buf, len, "%lluM", (unsigned long long)(v / MB));
	else if (v && v % K == 0)
		snprintf(buf, len, "%lluK", (unsigned long long)(v / K));
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

/* Decimal digits only; 0, -EINVAL (not a number) or -ERANGE (overflow). */
static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20)
		return n ? -ERANGE : -EINVAL;
	for (i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_size(const char *s, uint64_t *out)
{
	size_t n = strlen(s);
	uint64_t mult = 1, v;
	int r;

	if (n > 0) {
		switch (s[n - 1]) {
		case 'k': case 'K': mult = K; n--; break;
		case 'm': case 'M': mult = MB; n--; break;
		case 'g': case 'G': mult = GB; n--; break;
		}
	}
	if ((r = parse_u64(s, n, &v)) < 0)
		return r;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*out = v * mult;
	return 0;
}

static int parse_bool(const char *s, uint64_t *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < 4; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = 1;
			return 0;
		}
		if (!strcasecmp(s, no[i])) {
			*out = 0;
			return 0;
		}
	}
	return -EINVAL;
}

/* Is s one of the '|'-separated words of list? */
static bool enum_has(const char *list, const char *s)
{
	size_t n = strlen(s);
	const char *p = list;

	while (*p) {
		const char *e = strchr(p, '|');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (l == n && !strncmp(p, s, n))
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

/* "a|b|c" -> "a, b or c" for messages. */
static void enum_words(const char *list, char *buf, size_t len)
{
	const char *last = strrchr(list, '|');
	size_t o = 0;
	const char *p;

	for (p = list; *p && o + 6 < len; p++) {
		if (*p == '|') {
			const char *sep = p == last ? " or " : ", ";

			o += (size_t)snprintf(buf + o, len - o, "%s", sep);
		} else
			buf[o++] = *p;
	}
	buf[o < len ? o : len - 1] = '\0';
}

/* Split the next whitespace-separated word off *sp into buf. */
static bool next_word(const char **sp, char *buf, size_t len)
{
	const char *s = *sp, *e;
	size_t n;

	while (is_ws(*s))
		s++;
	if (!*s)
		return false;
	for (e = s; *e && !is_ws(*e); e++)
		;
	n = (size_t)(e - s);
	if (n >= len)
		n = len - 1;	/* callers bound values below CFG_MAX_LINE */
	memcpy(buf, s, n);
	buf[n] = '\0';
	*sp = e;
	return true;
}

/* One GUEST[-GUEST]:HOST entry. */
static int parse_idmap_one(const char *w, uint64_t *gf, uint64_t *gl,
			   uint64_t *hf)
{
	const char *colon = strchr(w, ':'), *dash;

	if (!colon || strchr(colon + 1, ':'))
		return -EINVAL;
	dash = memchr(w, '-', (size_t)(colon - w));
	if (dash) {
		if (parse_u64(w, (size_t)(dash - w), gf) < 0 ||
		    parse_u64(dash + 1, (size_t)(colon - dash - 1), gl) < 0)
			return -EINVAL;
	} else {
		if (parse_u64(w, (size_t)(colon - w), gf) < 0)
			return -EINVAL;
		*gl = *gf;
	}
	if (parse_u64(colon + 1, strlen(colon + 1), hf) < 0)
		return -EINVAL;
	return 0;
}

static int check_idmap(struct parser *p, const struct cfg_key *k,
		       const char *v)
{
	struct { uint64_t f, l; } seen[64];
	size_t nseen = 0, i;
	char w[CFG_MAX_LINE];
	const char *s = v;

	while (next_word(&s, w, sizeof(w))) {
		uint64_t gf, gl, hf;

		if (parse_idmap_one(w, &gf, &gl, &hf) < 0)
			return perr(p, "%s: '%s' is not GUEST-FIRST-GUEST-LAST:"
				    "HOST-FIRST or GUEST:HOST (e.g. "
				    "0-65535:100000)", k->name, w);
		if (gf > gl)
			return perr(p, "%s: '%s': range %llu-%llu is empty",
				    k->name, w, (unsigned long long)gf,
				    (unsigned long long)gl);
		if (gl > ID_MAX || hf > ID_MAX || hf + (gl - gf) > ID_MAX)
			return perr(p, "%s: '%s': ids must be at most %llu",
				    k->name, w, ID_MAX);
		for (i = 0; i < nseen; i++)
			if (gf <= seen[i].l && seen[i].f <= gl)
				return perr(p, "%s: '%s' overlaps an earlier "
					    "range", k->name, w);
		if (nseen == sizeof(seen) / sizeof(seen[0]))
			return perr(p, "%s: more than %zu ranges", k->name,
				    nseen);
		seen[nseen].f = gf;
		seen[nseen].l = gl;
		nseen++;
	}
	return 0;
}

/*
 * Parse access rules into *rules (allocated).  0 or -EINVAL/-ENOMEM with
 * the message in p->err.
 */
static int parse_access(struct parser *p, const struct cfg_key *k,
			const char *v, struct xf_access_rule **rulesp,
			size_t *nrulesp)
{
	struct xf_access_rule *rules = NULL;
	size_t n = 0, i;
	char w[CFG_MAX_LINE];
	const char *s = v;
	int r = 0;

	while (next_word(&s, w, sizeof(w))) {
		char *colon = strrchr(w, ':');
		enum xf_access mode;
		struct xf_access_rule *nr;

		if (!colon || (strcmp(colon + 1, "ro") && strcmp(colon + 1,
								 "rw"))) {
			r = perr(p, "%s: '%s' is not domain:ro or domain:rw",
				 k->name, w);
			goto fail;
		}
		mode = colon[2] == 'o' ? XF_ACCESS_RO : XF_ACCESS_RW;
		*colon = '\0';
		if (strcmp(w, "*") && !valid_name(w)) {
			r = perr(p, "%s: '%s' is not a domain name "
				 "([A-Za-z0-9._-], 1 to 63 characters) or '*'",
				 k->name, w);
			goto fail;
		}
		for (i = 0; i < n; i++)
			if (!strcmp(rules[i].domain, w)) {
				r = perr(p, "%s: domain '%s' is listed twice",
					 k->name, w);
				goto fail;
			}
		if (n == CFG_MAX_RULES) {
			r = perr(p, "%s: more than %u rules", k->name,
				 CFG_MAX_RULES);
			goto fail;
		}
		nr = realloc(rules, (n + 1) * sizeof(*rules));
		if (!nr) {
			r = perr(p, "out of memory");
			goto fail;
		}
		rules = nr;
		rules[n].mode = mode;
		if (!(rules[n].domain = strdup(w))) {
			r = perr(p, "out of memory");
			goto fail;
		}
		n++;
	}
	if (n == 0) {
		r = perr(p, "%s: no rule; write DOMAIN:ro or DOMAIN:rw, "
			 "'*' for any domain", k->name);
		goto fail;
	}
	*rulesp = rules;
	*nrulesp = n;
	return 0;
fail:
	for (i = 0; i < n; i++)
		free(rules[i].domain);
	free(rules);
	return r;
}

/*
 * Check v against k's type; numeric types store their value in *num.
 * Returns 0 or -EINVAL with the message in p->err.
 */
static int check_value(struct parser *p, const struct cfg_key *k,
		       const char *v, uint64_t *num)
{
	char buf[128], lo[32], hi[32];
	struct stat st;
	int r;

	*num = 0;
	switch (k->type) {
	case T_STRING:
		if (strpbrk(v, " \t"))
			return perr(p, "%s: '%s' must be one word", k->name, v);
		return 0;
	case T_PATH:
	case T_DIR:
		if (v[0] != '/')
			return perr(p, "%s: '%s' is not an absolute path",
				    k->name, v);
		if (k->type == T_DIR && !p->nostat) {
			if (stat(v, &st) < 0)
				return perr(p, "%s: '%s': %s", k->name, v,
					    strerror(errno));
			if (!S_ISDIR(st.st_mode))
				return perr(p, "%s: '%s' is not a directory",
					    k->name, v);
		}
		return 0;
	case T_BOOL:
		if (parse_bool(v, num) < 0)
			return perr(p, "%s: '%s' is not a boolean (yes/no, "
				    "true/false, on/off, 1/0)", k->name, v);
		return 0;
	case T_UINT:
		r = parse_u64(v, strlen(v), num);
		if (r == -EINVAL)
			return perr(p, "%s: '%s' is not a number", k->name, v);
		if (r < 0 || *num < k->min || *num > k->max)
			return perr(p, "%s: '%s' is out of range (%llu..%llu)",
				    k->name, v, (unsigned long long)k->min,
				    (unsigned long long)k->max);
		return 0;
	case T_SIZE:
		r = parse_size(v, num);
		if (r == -EINVAL)
			return perr(p, "%s: '%s' is not a size (a number with "
				    "an optional K, M or G suffix)", k->name, v);
		if (r < 0 || *num < k->min || *num > k->max) {
			fmt_size(lo, sizeof(lo), k->min);
			if (k->max == UINT64_MAX)
				snprintf(hi, sizeof(hi), "16E");
			else
				fmt_size(hi, sizeof(hi), k->max);
			return perr(p, "%s: '%s' is out of range (%s..%s)",
				    k->name, v, lo, hi);
		}
		return 0;
	case T_ENUM:
		if (!enum_has(k->enums, v)) {
			enum_words(k->enums, buf, sizeof(buf));
			return perr(p, "%s: '%s' is not %s", k->name, v, buf);
		}
		return 0;
	case T_IDMAP:
		return check_idmap(p, k, v);
	case T_ACCESS:		/* parsed by parse_access() */
	case T_WORDS:		/* any non-empty list */
		return 0;
	}
	return perr(p, "%s: internal error: unknown type", k->name);
}

static const struct cfg_key *key_find(int sect, const char *name)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if ((cfg_keys[i].sections & M(sect)) &&
		    !strcmp(cfg_keys[i].name, name))
			return &cfg_keys[i];
	return NULL;
}

static int key_unknown(struct parser *p, const char *name)
{
	char list[1024];
	size_t o = 0, i;

	list[0] = '\0';
	for (i = 0; i < NKEYS && o < sizeof(list); i++) {
		if (!(cfg_keys[i].sections & M(p->sect)))
			continue;
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
				      o ? " " : "", cfg_keys[i].name);
	}
	return perr(p, "unknown key '%s' in [%s]; known keys: %s", name,
		    cfg_sects[p->sect].name, list);
}

/* Store a checked value into its typed field.  0 or -EINVAL/-ENOMEM. */
static int set_field(struct parser *p, const struct cfg_key *k,
		     const char *v, uint64_t num)
{
	struct xf_config *cfg = p->cfg;
	struct xf_global *g = &cfg->global;
	char **sp = NULL;
	size_t i;

	switch (k->field) {
	case F_NONE:
		return 0;
	case F_CONTROL_SOCKET:
		sp = &g->control_socket;
		break;
	case F_STATE_DIR:
		sp = &g->state_dir;
		break;
	case F_CONTROL_GROUP:
		free(g->control_group);
		g->control_group = NULL;
		if (k->optional_none && !strcmp(v, "none"))
			return 0;
		sp = &g->control_group;
		break;
	case F_MAX_QUEUES:
		g->max_queues = (uint32_t)num;
		return 0;
	case F_MAX_REGION:
		g->max_region = num;
		return 0;
	case F_MAX_FDS:
		g->max_fds = (uint32_t)num;
		return 0;
	case F_LOG_LEVEL:
		g->log_debug = !strcmp(v, "debug");
		return 0;
	case F_EXPORT_PATH:
		sp = &cfg->exports[p->cur].path;
		break;
	case F_EXPORT_ACCESS: {
		struct xf_export *e = &cfg->exports[p->cur];

		return parse_access(p, k, v, &e->rules, &e->nrules);
	}
	case F_EXPORT_READONLY:
		cfg->exports[p->cur].readonly = (int)num;
		return 0;
	case F_DOMAIN_SOCKET:
		for (i = 0; i < cfg->ndomains; i++) {
			const char *o = cfg->domains[i].local_socket;

			if ((long)i != p->cur && o && !strcmp(o, v))
				return perr(p, "local-socket: '%s' is already "
					    "the socket of domain '%s' (line "
					    "%d)", v, cfg->domains[i].name,
					    cfg->domains[i].line);
		}
		sp = &cfg->domains[p->cur].local_socket;
		break;
	}
	if (!sp)
		return perr(p, "%s: internal error: no field", k->name);
	free(*sp);
	if (!(*sp = strdup(v)))
		return perr(p, "out of memory");
	return 0;
}

static int kv_add(struct parser *p, struct xf_kv **arr, size_t *n,
		  const char *sect, const char *key, const char *value,
		  int line)
{
	struct xf_kv *na = realloc(*arr, (*n + 1) * sizeof(**arr));
	struct xf_kv *kv;

	if (!na)
		return perr(p, "out of memory");
	*arr = na;
	kv = &na[*n];
	kv->section = strdup(sect);
	kv->key = strdup(key);
	kv->value = strdup(value);
	kv->line = line;
	(*n)++;		/* counted even if partial, so free releases it */
	if (!kv->section || !kv->key || !kv->value)
		return perr(p, "out of memory");
	return 0;
}

/* Finish the current section: required keys of exports. */
static int sect_end(struct parser *p)
{
	const struct xf_export *e;
	int saved = p->line;
	int r = 0;

	if (p->sect != S_EXPORT)
		return 0;
	e = &p->cfg->exports[p->cur];
	p->line = e->line;
	if (!e->path)
		r = perr(p, "export '%s' has no path; add path = /DIRECTORY",
			 e->tag);
	else if (!e->nrules)
		r = perr(p, "export '%s' has no access rule; add access = "
			 "DOMAIN:ro|rw", e->tag);
	p->line = saved;
	return r;
}

/* "[name]" or "[name ARG]"; s is the trimmed line. */
static int sect_begin(struct parser *p, char *s, size_t n)
{
	struct xf_config *cfg = p->cfg;
	char kind[CFG_MAX_LINE], arg[CFG_MAX_LINE], extra[CFG_MAX_LINE];
	const char *w;
	int sect, r;
	size_t i;

	if (n < 2 || s[n - 1] != ']')
		return perr(p, "section header '%s' does not end with ']'", s);
	s[n - 1] = '\0';
	w = s + 1;
	if (!next_word(&w, kind, sizeof(kind)))
		return perr(p, "empty section header []");
	arg[0] = '\0';
	if (next_word(&w, arg, sizeof(arg)) &&
	    next_word(&w, extra, sizeof(extra)))
		return perr(p, "section header [%s] has more than one name",
			    s + 1);
	for (sect = 0; sect < S_COUNT; sect++)
		if (!strcmp(cfg_sects[sect].name, kind))
			break;
	if (sect == S_COUNT)
		return perr(p, "unknown section [%s]; sections are [global], "
			    "[export TAG], [domain NAME], [services], [scan], "
			    "[index], [snapshot]", kind);
	if ((r = sect_end(p)) < 0)
		return r;
	p->sect = sect;
	p->seen = 0;
	p->cur = -1;
	free(p->sect_str);
	p->sect_str = NULL;
	if (!cfg_sects[sect].named) {
		if (arg[0])
			return perr(p, "section [%s] takes no name", kind);
		if (p->sect_line[sect])
			return perr(p, "duplicate section [%s] (first at line "
				    "%d)", kind, p->sect_line[sect]);
		p->sect_line[sect] = p->line;
		if (!(p->sect_str = strdup(kind)))
			return perr(p, "out of memory");
		return 0;
	}
	if (!arg[0])
		return perr(p, "section [%s] needs a name: [%s %s]", kind, kind,
			    sect == S_EXPORT ? "TAG" : "NAME");
	if (!valid_name(arg))
		return perr(p, "[%s %s]: '%s' is not a valid %s "
			    "([A-Za-z0-9._-], 1 to 63 characters)", kind, arg,
			    arg, sect == S_EXPORT ? "tag" : "domain name");
	if (asprintf(&p->sect_str, "%s %s", kind, arg) < 0) {
		p->sect_str = NULL;
		return perr(p, "out of memory");
	}
	if (sect == S_EXPORT) {
		struct xf_export *ne;

		for (i = 0; i < cfg->nexports; i++)
			if (!strcmp(cfg->exports[i].tag, arg))
				return perr(p, "duplicate section [export %s] "
					    "(first at line %d)", arg,
					    cfg->exports[i].line);
		if (cfg->nexports == CFG_MAX_NAMED)
			return perr(p, "more than %u exports", CFG_MAX_NAMED);
		ne = realloc(cfg->exports, (cfg->nexports + 1) * sizeof(*ne));
		if (!ne)
			return perr(p, "out of memory");
		cfg->exports = ne;
		memset(&ne[cfg->nexports], 0, sizeof(*ne));
		ne[cfg->nexports].line = p->line;
		p->cur = (long)cfg->nexports++;
		if (!(ne[p->cur].tag = strdup(arg)))
			return perr(p, "out of memory");
	} else {
		struct xf_domain *nd;

		for (i = 0; i < cfg->ndomains; i++)
			if (!strcmp(cfg->domains[i].name, arg))
				return perr(p, "duplicate section [domain %s] "
					    "(first at line %d)", arg,
					    cfg->domains[i].line);
		if (cfg->ndomains == CFG_MAX_NAMED)
			return perr(p, "more than %u domains", CFG_MAX_NAMED);
		nd = realloc(cfg->domains, (cfg->ndomains + 1) * sizeof(*nd));
		if (!nd)
			return perr(p, "out of memory");
		cfg->domains = nd;
		memset(&nd[cfg->ndomains], 0, sizeof(*nd));
		nd[cfg->ndomains].line = p->line;
		p->cur = (long)cfg->ndomains++;
		if (!(nd[p->cur].name = strdup(arg)))
			return perr(p, "out of memory");
	}
	return 0;
}

/* "key = value"; s is the trimmed line without its comment. */
static int key_line(struct parser *p, char *s)
{
	char *eq = strchr(s, '='), *key, *val, *e;
	const struct cfg_key *k;
	uint64_t num;
	int r;

	if (!eq)
		return perr(p, "'%s' is neither [section] nor key = value", s);
	*eq = '\0';
	key = s;
	for (e = eq; e > key && is_ws(e[-1]); e--)
		;
	*e = '\0';
	val = eq + 1;
	while (is_ws(*val))
		val++;
	if (*val == '#')	/* "key =#x": a comment, as "key = #x" is */
		*val = '\0';
	if (!*key)
		return perr(p, "missing key before '='");
	if (p->sect < 0)
		return perr(p, "key '%s' outside of a section; start with "
			    "[global]", key);
	if (!(k = key_find(p->sect, key)))
		return key_unknown(p, key);
	if (p->seen & (1ull << (k - cfg_keys)))
		return perr(p, "duplicate key '%s' in [%s]", key, p->sect_str);
	p->seen |= 1ull << (k - cfg_keys);
	if (!*val)
		return perr(p, "%s: empty value", key);
	if ((r = check_value(p, k, val, &num)) < 0)
		return r;
	if ((r = set_field(p, k, val, num)) < 0)
		return r;
	return kv_add(p, &p->cfg->kv, &p->cfg->nkv, p->sect_str, key, val,
		      p->line);
}

/* Process one line (NUL-terminated copy, no newline). */
static int parse_line(struct parser *p, char *s)
{
	char *c, *e;

	for (c = s; *c; c++)
		if ((unsigned char)*c < 0x20 && *c != '\t')
			return perr(p, "control character 0x%02x in line",
				    (unsigned char)*c);
		else if (*c == 0x7f)
			return perr(p, "control character 0x7f in line");
	while (is_ws(*s))
		s++;
	if (*s == '#' || *s == '\0')
		return 0;
	/* a comment starts at a '#' preceded by whitespace */
	for (c = s + 1; *c; c++)
		if (*c == '#' && is_ws(c[-1])) {
			*c = '\0';
			break;
		}
	for (e = s + strlen(s); e > s && is_ws(e[-1]); e--)
		;
	*e = '\0';
	if (*s == '[')
		return sect_begin(p, s, (size_t)(e - s));
	return key_line(p, s);
}

/* Whole-file checks that need every section read. */
static int validate(struct parser *p)
{
	const struct xf_config *cfg = p->cfg;
	size_t i;

	for (i = 0; i < cfg->ndomains; i++) {
		const struct xf_domain *d = &cfg->domains[i];

		if (d->local_socket &&
		    !strcmp(d->local_socket, cfg->global.control_socket)) {
			p->line = d->line;
			return perr(p, "local-socket of domain '%s' is the "
				    "control-socket '%s'", d->name,
				    d->local_socket);
		}
	}
	return 0;
}

/* Apply the table's defaults to the typed global fields. */
static int apply_defaults(struct parser *p)
{
	size_t i;
	uint64_t num;
	int r;

	for (i = 0; i < NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		if (!(k->sections & M(S_GLOBAL)) || !k->def)
			continue;
		if ((r = check_value(p, k, k->def, &num)) < 0 ||
		    (r = set_field(p, k, k->def, num)) < 0)
			return r;
	}
	return 0;
}

/* Default of k with <state-dir> expanded; malloc'd, NULL if none/ENOMEM. */
static char *default_expand(const struct xf_config *cfg,
			    const struct cfg_key *k)
{
	static const char sd[] = "<state-dir>";
	char *s;

	if (!k->def)
		return NULL;
	if (strncmp(k->def, sd, sizeof(sd) - 1))
		return strdup(k->def);
	if (asprintf(&s, "%s%s", cfg->global.state_dir,
		     k->def + sizeof(sd) - 1) < 0)
		return NULL;
	return s;
}

/* Effective defaults of unset keys of the single sections. */
static int fill_defaults(struct parser *p)
{
	struct xf_config *cfg = p->cfg;
	size_t i;
	int s, r;

	for (s = 0; s < S_COUNT; s++) {
		if (cfg_sects[s].named)
			continue;
		for (i = 0; i < NKEYS; i++) {
			const struct cfg_key *k = &cfg_keys[i];
			char *v;

			if (!(k->sections & M(s)) || !k->def ||
			    xf_config_get(cfg, cfg_sects[s].name, k->name))
				continue;
			if (!(v = default_expand(cfg, k)))
				return perr(p, "out of memory");
			r = kv_add(p, &cfg->defaults, &cfg->ndefaults,
				   cfg_sects[s].name, k->name, v, 0);
			free(v);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

void xf_config_free(struct xf_config *cfg)
{
	size_t i, j;

	if (!cfg)
		return;
	free(cfg->file);
	free(cfg->global.control_socket);
	free(cfg->global.state_dir);
	free(cfg->global.control_group);
	for (i = 0; i < cfg->nexports; i++) {
		free(cfg->exports[i].tag);
		free(cfg->exports[i].path);
		for (j = 0; j < cfg->exports[i].nrules; j++)
			free(cfg->exports[i].rules[j].domain);
		free(cfg->exports[i].rules);
	}
	free(cfg->exports);
	for (i = 0; i < cfg->ndomains; i++) {
		free(cfg->domains[i].name);
		free(cfg->domains[i].local_socket);
	}
	free(cfg->domains);
	for (i = 0; i < cfg->nkv; i++) {
		free(cfg->kv[i].section);
		free(cfg->kv[i].key);
		free(cfg->kv[i].value);
	}
	free(cfg->kv);
	for (i = 0; i < cfg->ndefaults; i++) {
		free(cfg->defaults[i].section);
		free(cfg->defaults[i].key);
		free(cfg->defaults[i].value);
	}
	free(cfg->defaults);
	free(cfg);
}

static struct xf_config *parse_text(const char *name, const char *text,
				     size_t len, char *err, size_t errlen,
				     int nostat)
{
	struct parser p = {
		.name = name ? name : "(config)",
		.err = err,
		.errlen = errlen,
		.sect = -1,
		.cur = -1,
		.nostat = nostat,
	};
	char line[CFG_MAX_LINE + 1];
	size_t off = 0;
	int r;

	if (err && errlen)
		err[0] = '\0';
	if (!(p.cfg = calloc(1, sizeof(*p.cfg))) ||
	    !(p.cfg->file = strdup(p.name))) {
		perr(&p, "out of memory");
		goto fail;
	}
	if (apply_defaults(&p) < 0)
		goto fail;
	if (len > CFG_MAX_FILE) {
		perr(&p, "larger than %u bytes", CFG_MAX_FILE);
		goto fail;
	}
	if (memchr(text, '\0', len)) {
		p.line = 1;
		for (off = 0; text[off]; off++)
			if (text[off] == '\n')
				p.line++;
		perr(&p, "NUL byte in file");
		goto fail;
	}
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;

		p.line++;
		if (n > CFG_MAX_LINE) {
			perr(&p, "line longer than %u bytes", CFG_MAX_LINE);
			goto fail;
		}
		memcpy(line, text + off, n);
		off += n + (nl ? 1 : 0);
		if (n && line[n - 1] == '\r')
			n--;
		line[n] = '\0';
		if (parse_line(&p, line) < 0)
			goto fail;
	}
	if ((r = sect_end(&p)) < 0)
		goto fail;
	if (validate(&p) < 0)
		goto fail;
	p.line = 0;
	if (fill_defaults(&p) < 0)
		goto fail;
	free(p.sect_str);
	return p.cfg;
fail:
	free(p.sect_str);
	xf_config_free(p.cfg);
	return NULL;
}

struct xf_config *xf_config_parse(const char *name, const char *text,
				  size_t len, char *err, size_t errlen)
{
	return parse_text(name, text, len, err, errlen, 0);
}

struct xf_config *xf_config_parse_checked(const char *name, const char *text,
					  size_t len, char *err, size_t errlen)
{
	return parse_text(name, text, len, err, errlen, 1);
}

struct xf_config *xf_config_load(const char *path, char *err, size_t errlen)
{
	return xf_config_load_text(path, NULL, NULL, err, errlen);
}

struct xf_config *xf_config_load_text(const char *path, char **textp,
				      size_t *lenp, char *err, size_t errlen)
{
	struct xf_config *cfg = NULL;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd;

	if (err && errlen)
		err[0] = '\0';
	if (textp) {
		*textp = NULL;
		*lenp = 0;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > CFG_MAX_FILE) {
		snprintf(err, errlen, "%s: larger than %u bytes", path,
			 CFG_MAX_FILE);
		goto out;
	}
	if (!(buf = malloc(CFG_MAX_FILE + 1))) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	for (;;) {
		n = read(fd, buf + len, CFG_MAX_FILE + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CFG_MAX_FILE) {
			snprintf(err, errlen, "%s: larger than %u bytes", path,
				 CFG_MAX_FILE);
			goto out;
		}
	}
	cfg = xf_config_parse(path, buf, len, err, errlen);
	if (cfg && textp) {
		/* the caller keeps the very bytes that were parsed */
		*textp = buf;
		*lenp = len;
		buf = NULL;
	}
out:
	free(buf);
	close(fd);
	return cfg;
}

/* ---- lookups ---- */

const struct xf_export *xf_config_export(const struct xf_config *cfg,
					 const char *tag)
{
	size_t i;

	if (!cfg || !tag)
		return NULL;
	for (i = 0; i < cfg->nexports; i++)
		if (!strcmp(cfg->exports[i].tag, tag))
			return &cfg->exports[i];
	return NULL;
}

const struct xf_domain *xf_config_domain(const struct xf_config *cfg,
					 const char *name)
{
	size_t i;

	if (!cfg || !name)
		return NULL;
	for (i = 0; i < cfg->ndomains; i++)
		if (!strcmp(cfg->domains[i].name, name))
			return &cfg->domains[i];
	return NULL;
}

static const char *kv_find(const struct xf_kv *kv, size_t n,
			   const char *section, const char *key)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(kv[i].section, section) &&
		    !strcmp(kv[i].key, key))
			return kv[i].value;
	return NULL;
}

const char *xf_config_get(const struct xf_config *cfg, const char *section,
			  const char *key)
{
	if (!cfg || !section || !key)
		return NULL;
	return kv_find(cfg->kv, cfg->nkv, section, key);
}

/* Section kind of "scan" / "export TAG"; -1 if unknown or absent. */
static int sect_kind(const struct xf_config *cfg, const char *section)
{
	int s;

	for (s = 0; s < S_COUNT; s++) {
		size_t n = strlen(cfg_sects[s].name);

		if (strncmp(section, cfg_sects[s].name, n))
			continue;
		if (!cfg_sects[s].named)
			return section[n] == '\0' ? s : -1;
		if (section[n] != ' ')
			continue;
		if (s == S_EXPORT)
			return xf_config_export(cfg, section + n + 1) ? s : -1;
		return xf_config_domain(cfg, section + n + 1) ? s : -1;
	}
	return -1;
}

const char *xf_config_value(const struct xf_config *cfg, const char *section,
			    const char *key)
{
	const struct cfg_key *k;
	const char *v;
	int s;

	if (!cfg || !section || !key)
		return NULL;
	if ((v = xf_config_get(cfg, section, key)))
		return v;
	if ((s = sect_kind(cfg, section)) < 0 || !(k = key_find(s, key)))
		return NULL;
	if (!cfg_sects[s].named)
		return kv_find(cfg->defaults, cfg->ndefaults, section, key);
	return k->def;	/* named sections have no <state-dir> defaults */
}

int xf_config_get_u64(const struct xf_config *cfg, const char *section,
		      const char *key, uint64_t *out)
{
	const struct cfg_key *k;
	const char *v;
	int s;

	if (!cfg || !section || !key)
		return -ENOENT;
	if ((s = sect_kind(cfg, section)) < 0 || !(k = key_find(s, key)))
		return -ENOENT;
	if (!(v = xf_config_value(cfg, section, key)))
		return -ENOENT;
	switch (k->type) {
	case T_BOOL:
		return parse_bool(v, out) < 0 ? -EINVAL : 0;
	case T_UINT:
		return parse_u64(v, strlen(v), out) < 0 ? -EINVAL : 0;
	case T_SIZE:
		return parse_size(v, out) < 0 ? -EINVAL : 0;
	default:
		return -EINVAL;
	}
}

static bool str_differ(const char *a, const char *b)
{
	if (!a || !b)
		return a != b;
	return strcmp(a, b) != 0;
}

/* Append "[section] key" to buf for each non-reloadable key that differs. */
static int diff_section(const struct xf_config *ocfg,
			const struct xf_config *ncfg, int s,
			const char *section, char *buf, size_t len,
			size_t *o)
{
	int n = 0;
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		if (!(k->sections & M(s)) || k->reload)
			continue;
		if (!str_differ(xf_config_value(ocfg, section, k->name),
				xf_config_value(ncfg, section, k->name)))
			continue;
		n++;
		if (buf && *o < len)
			*o += (size_t)snprintf(buf + *o, len - *o, "%s[%s] %s",
					       *o ? ", " : "", section,
					       k->name);
	}
	return n;
}

int xf_config_reload_diff(const struct xf_config *ocfg,
			  const struct xf_config *ncfg, char *buf, size_t len)
{
	char sect[CFG_NAME_MAX + 16];
	size_t o = 0, i;
	int s, n = 0;

	if (buf && len)
		buf[0] = '\0';
	if (!ocfg || !ncfg)
		return 0;
	for (s = 0; s < S_COUNT; s++) {
		if (!cfg_sects[s].named) {
			n += diff_section(ocfg, ncfg, s, cfg_sects[s].name, buf,
					  len, &o);
			continue;
		}
		/* sections present in both; added or removed ones are
		 * exports or domains appearing or going, which reload does */
		for (i = 0; s == S_EXPORT && i < ncfg->nexports; i++) {
			if (!xf_config_export(ocfg, ncfg->exports[i].tag))
				continue;
			snprintf(sect, sizeof(sect), "export %s",
				 ncfg->exports[i].tag);
			n += diff_section(ocfg, ncfg, s, sect, buf, len, &o);
		}
		for (i = 0; s == S_DOMAIN && i < ncfg->ndomains; i++) {
			if (!xf_config_domain(ocfg, ncfg->domains[i].name))
				continue;
			snprintf(sect, sizeof(sect), "domain %s",
				 ncfg->domains[i].name);
			n += diff_section(ocfg, ncfg, s, sect, buf, len, &o);
		}
	}
	return n;
}

/* ---- --print-config ---- */

static void print_section(const struct xf_config *cfg, FILE *out, int s,
			  const char *section)
{
	size_t i;

	fprintf(out, "[%s]\n", section);
	for (i = 0; i < NKEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];
		const char *v;

		if (!(k->sections & M(s)))
			continue;
		v = xf_config_value(cfg, section, k->name);
		if (v)
			fprintf(out, "%s = %s\n", k->name, v);
		else
			fprintf(out, "# %s =\t\t# unset: %s\n", k->name,
				k->help);
	}
	fputc('\n', out);
}

void xf_config_print(const struct xf_config *cfg, FILE *out)
{
	char sect[CFG_NAME_MAX + 16];
	size_t i;
	int s;

	fprintf(out, "# effective configuration of %s\n\n", cfg->file);
	for (s = 0; s < S_COUNT; s++) {
		if (s == S_EXPORT) {
			for (i = 0; i < cfg->nexports; i++) {
				snprintf(sect, sizeof(sect), "export %s",
					 cfg->exports[i].tag);
				print_section(cfg, out, s, sect);
			}
		} else if (s == S_DOMAIN) {
			for (i = 0; i < cfg->ndomains; i++) {
				snprintf(sect, sizeof(sect), "domain %s",
					 cfg->domains[i].name);
				print_section(cfg, out, s, sect);
			}
		} else
			print_section(cfg, out, s, cfg_sects[s].name);
	}
}

/*
 * The key table, for tools and tests (the man page check): calls fn for
 * every key with its section names ("export domain" for shared keys).
 */
void xf_config_foreach_key(void (*fn)(const char *sections, const char *key,
				      const char *def, int reloadable,
				      const char *help, void *arg),
			   void *arg)
{
	char sects[128];
	size_t i, o;
	int s;

	for (i = 0; i < NKEYS; i++) {
		o = 0;
		sects[0] = '\0';
		for (s = 0; s < S_COUNT; s++)
			if (cfg_keys[i].sections & M(s))
				o += (size_t)snprintf(sects + o,
						      sizeof(sects) - o,
						      "%s%s", o ? " " : "",
						      cfg_sects[s].name);
		fn(sects, cfg_keys[i].name, cfg_keys[i].def,
		   cfg_keys[i].reload, cfg_keys[i].help, arg);
	}
}
