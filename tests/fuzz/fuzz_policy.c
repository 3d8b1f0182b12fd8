/*
 * Fuzz target: the policy decisions (policy/policy.c xf_policy_access and
 * policy/idmap.c), over configs the parser accepts and over raw id-map
 * text.
 *
 * Input: "CONFIG\0DOMAIN\0TAG\0" followed by 4-byte ids.  If the config
 * parses, access is asked for DOMAIN/TAG and the identity map of the pair
 * is loaded; every id is pushed through every decision.  The whole input
 * is also given to xf_idset_parse as text.
 *
 * Invariants (abort on violation):
 *  - access is NONE for an unknown export and never RW on a readonly one;
 *  - a loaded map of a parsed config always loads (the parser and the
 *    decision code agree on the syntax);
 *  - a mapped guest id lands inside a host range and is shown back as a
 *    guest id that maps to the same host id; unmapped host ids are shown
 *    as the overflow id;
 *  - chown EINVAL only for unmapped ids, EPERM only when squashed;
 *  - the set-id filter only ever removes bits, never others;
 *  - the identity map permits every chattr and keeps every mode and id
 *    (but 2^32-1, which is no id and acts as anon);
 *  - parsed id sets have non-overlapping, non-empty guest ranges whose
 *    ends stay below 2^32-1.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "idmap.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_set(const struct xf_idset *s)
{
	uint32_t i, j;

	if (s->n > XF_IDMAP_MAX)
		abort();
	for (i = 0; i < s->n; i++) {
		const struct xf_idrange *a = &s->r[i];

		if (a->count == 0 ||
		    (uint64_t)a->guest + a->count - 1 > 4294967294ull ||
		    (uint64_t)a->host + a->count - 1 > 4294967294ull)
			abort();
		for (j = 0; j < i; j++) {
			const struct xf_idrange *b = &s->r[j];

			if (a->guest <= (uint64_t)b->guest + b->count - 1 &&
			    b->guest <= (uint64_t)a->guest + a->count - 1)
				abort();
		}
	}
}

static void check_ids(const struct xf_idmap *m, uint32_t a, uint32_t b)
{
	uint32_t h, g, mode;
	int r;

	h = xf_idset_to_host(&m->uid, a);
	if (h != XF_ID_INVALID) {
		if (!xf_idset_host_in(&m->uid, h))
			abort();
		g = xf_idmap_show_uid(m, h);
		if (xf_idset_to_host(&m->uid, g) != h)
			abort();
	}
	if (!xf_idset_host_in(&m->uid, b) &&
	    xf_idmap_show_uid(m, b) != XF_OVERFLOW_ID)
		abort();
	r = xf_idmap_chown_uid(m, a, b, &h);
	if (r == -EINVAL && xf_idset_to_host(&m->uid, b) != XF_ID_INVALID)
		abort();
	if (r == -EPERM && m->squash == XF_SQUASH_NONE)
		abort();
	if (r == 0 && b != XF_ID_INVALID && h != xf_idset_to_host(&m->uid, b))
		abort();
	r = xf_idmap_chown_gid(m, a, b, &h);
	if (r != 0 && r != -EINVAL && r != -EPERM)
		abort();
	mode = (a & 07777) | ((b & 1) ? S_IFDIR : S_IFREG);
	if ((xf_idmap_setid_filter(m, mode, a, b) | (S_ISUID | S_ISGID)) !=
	    (mode | S_ISUID | S_ISGID))
		abort();
	r = xf_idmap_may_chattr(m, a, b);
	if (r != 0 && r != -EPERM)
		abort();
	if (xf_idmap_is_identity(m) &&
	    (r != 0 || xf_idmap_setid_filter(m, mode, a, b) != mode ||
	     (a != XF_ID_INVALID && xf_idmap_caller_uid(m, a) != a)))
		abort();
	(void)xf_idmap_caller_gid(m, b);
	(void)xf_idmap_show_gid(m, a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *dom, *tag;
	char err[256], *buf;
	const uint8_t *ids;
	struct xf_config *cfg;
	struct xf_idset set;
	struct xf_idmap m;
	size_t l1, l2, l3, nids, i;

	if ((buf = malloc(size + 1)) == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	if (xf_idset_parse(buf, &set) == 0)
		check_set(&set);
	free(buf);

	l1 = strnlen(text, size);
	if (l1 == size)
		return 0;
	dom = text + l1 + 1;
	l2 = strnlen(dom, size - l1 - 1);
	if (l1 + 1 + l2 == size)
		return 0;
	tag = dom + l2 + 1;
	l3 = strnlen(tag, size - l1 - l2 - 2);
	if (l1 + l2 + l3 + 2 == size)
		return 0;
	ids = (const uint8_t *)tag + l3 + 1;
	nids = (size - l1 - l2 - l3 - 3) / 4;

	cfg = xf_config_parse("fuzz", text, l1, err, sizeof(err));
	if (!cfg)
		return 0;
	{
		enum xf_access a = xf_policy_access(cfg, dom, tag);
		const struct xf_export *e = xf_config_export(cfg, tag);

		if (!e && a != XF_ACCESS_NONE)
			abort();
		if (e && e->readonly && a == XF_ACCESS_RW)
			abort();
	}
	if (xf_idmap_load(cfg, dom, tag, &m) != 0)
		abort();	/* the parser accepted what idmap refuses */
	check_set(&m.uid);
	check_set(&m.gid);
	for (i = 0; i + 1 < nids; i += 2) {
		uint32_t a, b;

		memcpy(&a, ids + 4 * i, 4);
		memcpy(&b, ids + 4 * i + 4, 4);
		check_ids(&m, a, b);
	}
	check_ids(&m, 0, 0);
	check_ids(&m, 65534, 4294967295u);
	xf_config_free(cfg);
	return 0;
}
