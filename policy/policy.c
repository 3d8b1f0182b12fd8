/*
 * Policy decisions over a loaded struct xf_config (see policy.h).
 *
 * Everything here is a pure function of its arguments: no I/O, no global
 * state, no allocation, so any thread may call it on an immutable config
 * and the unit tests can enumerate every combination.  Domain names and
 * tags reaching here come from the transports (a socket's configured
 * domain, a guest-supplied tag): they are only compared, never
 * interpreted, so a hostile tag can at worst match nothing.
 */
#include <string.h>

#include "policy.h"

enum xf_access xf_policy_access(const struct xf_config *cfg,
				const char *domain, const char *tag)
{
	const struct xf_export *e;
	enum xf_access any = XF_ACCESS_NONE, exact = XF_ACCESS_NONE;
	int have_exact = 0;
	enum xf_access a;
	size_t i;

	if (!cfg || !domain || !tag || !*domain)
		return XF_ACCESS_NONE;
	if (!(e = xf_config_export(cfg, tag)))
		return XF_ACCESS_NONE;
	for (i = 0; i < e->nrules; i++) {
		const struct xf_access_rule *r = &e->rules[i];

		if (!r->domain)
			continue;
		if (!strcmp(r->domain, "*"))
			any = r->mode;
		else if (!strcmp(r->domain, domain)) {
			exact = r->mode;
			have_exact = 1;
		}
	}
	/* the most specific rule wins, even when it grants less than '*' */
	a = have_exact ? exact : any;
	if (a != XF_ACCESS_RO && a != XF_ACCESS_RW)
		return XF_ACCESS_NONE;
	if (e->readonly && a == XF_ACCESS_RW)
		a = XF_ACCESS_RO;
	return a;
}
