/*
 * Configuration and policy: the one place that decides what each domain
 * may do.  The parser (policy/config.c) turns /etc/xenfs/xenfs.conf into a
 * struct xf_config; the decision functions below are pure (no I/O) so they
 * can be tested exhaustively and fuzzed.  The backend only asks.
 *
 * File format (docs/xenfs.conf.5): `[section]` or `[section NAME]` headers,
 * `key = value` lines, `#` comments.  Unknown sections or keys, malformed
 * lines, bad values and missing paths are errors reported as
 * "file:line: what is wrong"; there are no silent defaults for bad input.
 * One table describes every key (name, section, type, range, default,
 * reloadable) and drives parsing, --print-config and the man page.
 *
 * Reload: parse into a new struct xf_config, swap it in only if it loaded.
 * A struct xf_config is immutable after load and may be read by any thread.
 */
#ifndef XF_POLICY_H
#define XF_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum xf_access {
	XF_ACCESS_NONE = 0,
	XF_ACCESS_RO = 1,
	XF_ACCESS_RW = 2,
};

struct xf_access_rule {
	char *domain;			/* domain name, or "*" for any */
	enum xf_access mode;
};

struct xf_export {
	char *tag;			/* [export TAG]; [A-Za-z0-9._-], < 64 bytes */
	char *path;			/* absolute, existing directory */
	struct xf_access_rule *rules;	/* access = vm1:rw vm2:ro '*':ro */
	size_t nrules;
	int line;			/* where it was defined, for messages */
	/* additions after the first contract: */
	int readonly;			/* readonly = yes: every rule capped at RO */
};

struct xf_domain {
	char *name;			/* [domain NAME] */
	char *local_socket;		/* serve over the local transport, or NULL */
	int line;
};

struct xf_global {
	char *control_socket;		/* default /run/xenfs/control.sock */
	char *state_dir;		/* default /var/lib/xenfs */
	char *control_group;		/* group allowed on the control socket, or NULL */
	uint32_t max_queues;		/* per connection, default 4 */
	uint64_t max_region;		/* bytes of shared region per connection, default 64M */
	uint32_t max_fds;		/* O_PATH cache bound per connection, default 4096 */
	/* additions after the first contract: */
	int log_debug;			/* log-level = debug */
};

/* A raw `key = value` from any section, for plugins' config lookup. */
struct xf_kv {
	char *section;			/* "scan", "domain vm2", ... */
	char *key;
	char *value;
	int line;
};

struct xf_config {
	char *file;			/* path it was read from */
	struct xf_global global;
	struct xf_export *exports;
	size_t nexports;
	struct xf_domain *domains;
	size_t ndomains;
	struct xf_kv *kv;		/* every key/value in file order */
	size_t nkv;
	/* additions after the first contract: */
	struct xf_kv *defaults;		/* effective defaults of unset keys of the
					 * single sections, for xf_config_value */
	size_t ndefaults;
};

/*
 * Load and validate a config file.  Returns NULL on error with a message
 * "file:line: what is wrong" (or "file: ..." for whole-file problems) in
 * err.  Check mode (xenfsd -n) is just this call.
 */
struct xf_config *xf_config_load(const char *path, char *err, size_t errlen);
/* Same, from a memory buffer (tests and the fuzzer); name is used in messages. */
struct xf_config *xf_config_parse(const char *name, const char *text,
				  size_t len, char *err, size_t errlen);
/* xf_config_load that also hands back the text it parsed (malloc'ed, in
 * *textp, *lenp bytes; untouched on failure): xenfsd's parent passes the
 * same bytes to its workers. */
struct xf_config *xf_config_load_text(const char *path, char **textp,
				      size_t *lenp, char *err, size_t errlen);
/* The same for text whose directories were already checked where it was
 * made (xenfsd's parent, for its workers, which see only their own
 * exports): export paths are not looked up. */
struct xf_config *xf_config_parse_checked(const char *name, const char *text,
					  size_t len, char *err,
					  size_t errlen);
void xf_config_free(struct xf_config *cfg);

/* Write the effective configuration, defaults included (--print-config). */
void xf_config_print(const struct xf_config *cfg, FILE *out);

const struct xf_export *xf_config_export(const struct xf_config *cfg,
					 const char *tag);
const struct xf_domain *xf_config_domain(const struct xf_config *cfg,
					 const char *name);
/* Raw lookup: value of key in section ("global", "scan", "domain vm1"). */
const char *xf_config_get(const struct xf_config *cfg, const char *section,
			  const char *key);

/*
 * Effective value: the file's value, else the key's documented default
 * (with <state-dir> expanded), else NULL.  For "export TAG" and "domain
 * NAME" the section must exist.  Borrowed from cfg.
 */
const char *xf_config_value(const struct xf_config *cfg, const char *section,
			    const char *key);
/*
 * Effective value of a bool, uint or size key as a number (bool: 0 or 1,
 * size: bytes).  0, -ENOENT (unknown key, absent section, no value and no
 * default) or -EINVAL (not a numeric key).
 */
int xf_config_get_u64(const struct xf_config *cfg, const char *section,
		      const char *key, uint64_t *out);

/*
 * Walk the key table (the man page check and documentation tools): fn is
 * called for every key with the sections it may appear in ("export
 * domain" for shared keys), its default text (or NULL) and whether a
 * reload applies it.
 */
void xf_config_foreach_key(void (*fn)(const char *sections, const char *key,
				      const char *def, int reloadable,
				      const char *help, void *arg),
			   void *arg);

/*
 * After a reload: how many keys that a reload does not apply (restart
 * needed, e.g. [global] state-dir) differ between ocfg and ncfg; their
 * names go to buf as "[global] state-dir, [scan] database" (truncated to
 * len).  The caller logs them; the new config is still the one to use.
 */
int xf_config_reload_diff(const struct xf_config *ocfg,
			  const struct xf_config *ncfg, char *buf, size_t len);

/* ---- decisions (pure) ---- */

/*
 * What `domain` may do with export `tag`: the most specific rule wins (an
 * exact domain name over "*"); no rule, or no such export, is NONE.  An
 * export with readonly = yes caps the answer at RO.
 */
enum xf_access xf_policy_access(const struct xf_config *cfg,
				const char *domain, const char *tag);

#endif /* XF_POLICY_H */
