/*
 * Fuzz target: the xenfs.conf reader (policy/config.c) and the policy
 * decision over whatever it accepts.
 *
 * Beyond "no crash, no leak, no UB" it checks two invariants and aborts
 * when they break: a config that loads prints (--print-config) to text
 * that loads again, and that text prints identically (print is a fixed
 * point).  Every lookup function is driven over what was parsed.
 *
 * Single-threaded; the input is the file text.  Export paths are stat()ed
 * by the reader, which is harmless on arbitrary paths.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *print_to_mem(const struct xf_config *cfg, size_t *len)
{
	char *p = NULL;
	FILE *f = open_memstream(&p, len);

	if (!f)
		abort();
	xf_config_print(cfg, f);
	if (fclose(f) != 0)
		abort();
	return p;
}

static void lookups(const struct xf_config *cfg)
{
	static const char *const doms[] = { "vm1", "vm2", "*", "", "x" };
	uint64_t v;
	size_t i, d;

	for (i = 0; i < cfg->nexports; i++) {
		const struct xf_export *e = &cfg->exports[i];

		if (xf_config_export(cfg, e->tag) != e || !e->path ||
		    !e->nrules)
			abort();
		for (d = 0; d < sizeof(doms) / sizeof(doms[0]); d++)
			(void)xf_policy_access(cfg, doms[d], e->tag);
		for (d = 0; d < e->nrules; d++) {
			enum xf_access a = xf_policy_access(cfg,
				e->rules[d].domain, e->tag);

			if (a == XF_ACCESS_NONE)	/* a rule grants */
				abort();
		}
	}
	for (i = 0; i < cfg->ndomains; i++)
		if (xf_config_domain(cfg, cfg->domains[i].name) !=
		    &cfg->domains[i])
			abort();
	for (i = 0; i < cfg->nkv; i++) {
		const struct xf_kv *kv = &cfg->kv[i];

		if (!xf_config_get(cfg, kv->section, kv->key) ||
		    !xf_config_value(cfg, kv->section, kv->key))
			abort();
		(void)xf_config_get_u64(cfg, kv->section, kv->key, &v);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xf_config *cfg, *again;
	char err[512];
	char *p1, *p2;
	size_t l1, l2;

	cfg = xf_config_parse("fuzz.conf", (const char *)data, size, err,
			      sizeof(err));
	if (!cfg) {
		if (!err[0] || strncmp(err, "fuzz.conf", 9))
			abort();	/* every error is "file:..." */
		return 0;
	}
	lookups(cfg);
	p1 = print_to_mem(cfg, &l1);
	again = xf_config_parse("fuzz.conf", p1, l1, err, sizeof(err));
	if (!again) {
		fprintf(stderr, "printed config does not load: %s\n%s", err,
			p1);
		abort();
	}
	p2 = print_to_mem(again, &l2);
	if (l1 != l2 || memcmp(p1, p2, l1)) {
		fprintf(stderr, "print is not a fixed point:\n%s\n---\n%s",
			p1, p2);
		abort();
	}
	free(p1);
	free(p2);
	xf_config_free(again);
	xf_config_free(cfg);
	return 0;
}
