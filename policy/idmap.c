/*
 * Identity mapping and quota limits (see idmap.h for the model).
 *
 * Pure functions: no I/O, no global state, no allocation; any thread may
 * call them on an immutable struct xf_idmap.  Guest ids reach here from
 * FUSE request headers and SETATTR arguments: every 32-bit value is a
 * valid input and has a defined answer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "idmap.h"

#define ID_MAX	4294967294ull

static int parse_num(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -EINVAL;
		/* leading zeros are fine (the parser takes them, found by
		 * fuzz_policy); anything past 2^32 is out of range anyway */
		if (v > ID_MAX)
			return -EINVAL;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return 0;
}

static int parse_one(const char *w, size_t len, struct xf_idrange *r)
{
	const char *colon = memchr(w, ':', len), *dash;
	uint64_t gf, gl, hf;

	if (!colon || memchr(colon + 1, ':', len - (size_t)(colon + 1 - w)))
		return -EINVAL;
	dash = memchr(w, '-', (size_t)(colon - w));
	if (dash) {
		if (parse_num(w, (size_t)(dash - w), &gf) < 0 ||
		    parse_num(dash + 1, (size_t)(colon - dash - 1), &gl) < 0)
			return -EINVAL;
	} else {
		if (parse_num(w, (size_t)(colon - w), &gf) < 0)
			return -EINVAL;
		gl = gf;
	}
	if (parse_num(colon + 1, len - (size_t)(colon + 1 - w), &hf) < 0)
		return -EINVAL;
	if (gf > gl || gl > ID_MAX || hf > ID_MAX || hf + (gl - gf) > ID_MAX)
		return -EINVAL;
	r->guest = (uint32_t)gf;
	r->host = (uint32_t)hf;
	r->count = (uint32_t)(gl - gf + 1);
	return 0;
}

int xf_idset_parse(const char *text, struct xf_idset *set)
{
	const char *s = text;
	uint32_t i;

	memset(set, 0, sizeof(*set));
	if (!text)
		return 0;
	for (;;) {
		struct xf_idrange r;
		size_t len;

		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		len = strcspn(s, " \t");
		if (parse_one(s, len, &r) < 0 || set->n == XF_IDMAP_MAX)
			return -EINVAL;
		for (i = 0; i < set->n; i++) {
			const struct xf_idrange *o = &set->r[i];
			uint64_t ol = (uint64_t)o->guest + o->count - 1;
			uint64_t rl = (uint64_t)r.guest + r.count - 1;

			if (r.guest <= ol && o->guest <= rl)
				return -EINVAL;
		}
		set->r[set->n++] = r;
		s += len;
	}
	return 0;
}

uint32_t xf_idset_to_host(const struct xf_idset *set, uint32_t guest)
{
	uint32_t i;

	if (set->n == 0)
		return guest;
	for (i = 0; i < set->n && i < XF_IDMAP_MAX; i++) {
		const struct xf_idrange *r = &set->r[i];

		if (guest >= r->guest && guest - r->guest < r->count)
			return r->host + (guest - r->guest);
	}
	return XF_ID_INVALID;
}

uint32_t xf_idset_to_guest(const struct xf_idset *set, uint32_t host)
{
	uint32_t i;

	if (set->n == 0)
		return host;
	for (i = 0; i < set->n && i < XF_IDMAP_MAX; i++) {
		const struct xf_idrange *r = &set->r[i];

		if (host >= r->host && host - r->host < r->count)
			return r->guest + (host - r->host);
	}
	return XF_OVERFLOW_ID;
}

int xf_idset_host_in(const struct xf_idset *set, uint32_t host)
{
	uint32_t i;

	if (set->n == 0)
		return 1;
	for (i = 0; i < set->n && i < XF_IDMAP_MAX; i++) {
		const struct xf_idrange *r = &set->r[i];

		if (host >= r->host && host - r->host < r->count)
			return 1;
	}
	return 0;
}

void xf_idmap_identity(struct xf_idmap *m)
{
	memset(m, 0, sizeof(*m));
	m->squash = XF_SQUASH_NONE;
	m->anon_uid = XF_OVERFLOW_ID;
	m->anon_gid = XF_OVERFLOW_ID;
}

int xf_idmap_is_identity(const struct xf_idmap *m)
{
	return m->squash == XF_SQUASH_NONE && m->uid.n == 0 && m->gid.n == 0;
}

/* The [domain] value of key, else the [export] one, else NULL. */
static const char *pick(const struct xf_config *cfg, const char *dsect,
			const char *esect, const char *key)
{
	const char *v = xf_config_get(cfg, dsect, key);

	return v ? v : xf_config_get(cfg, esect, key);
}

/* A numeric key through the parser's own reading (case, suffixes). */
static int num(const struct xf_config *cfg, const char *sect, const char *key,
	       uint64_t *out)
{
	int r;

	if (!xf_config_get(cfg, sect, key))
		return 0;		/* unset: keep *out */
	r = xf_config_get_u64(cfg, sect, key, out);
	return r < 0 ? -EINVAL : 0;
}

int xf_idmap_load(const struct xf_config *cfg, const char *domain,
		  const char *tag, struct xf_idmap *m)
{
	char dsect[320], esect[320];
	const char *v;
	uint64_t n;

	xf_idmap_identity(m);
	if (!cfg || !domain || !tag)
		return 0;
	snprintf(dsect, sizeof(dsect), "domain %s", domain);
	snprintf(esect, sizeof(esect), "export %s", tag);

	if ((v = pick(cfg, dsect, esect, "squash")) != NULL) {
		if (!strcasecmp(v, "none"))
			m->squash = XF_SQUASH_NONE;
		else if (!strcasecmp(v, "root"))
			m->squash = XF_SQUASH_ROOT;
		else if (!strcasecmp(v, "all"))
			m->squash = XF_SQUASH_ALL;
		else
			return -EINVAL;
	}
	n = m->anon_uid;
	if (num(cfg, esect, "anon-uid", &n) < 0 ||
	    num(cfg, dsect, "anon-uid", &n) < 0 || n > ID_MAX)
		return -EINVAL;
	m->anon_uid = (uint32_t)n;
	n = m->anon_gid;
	if (num(cfg, esect, "anon-gid", &n) < 0 ||
	    num(cfg, dsect, "anon-gid", &n) < 0 || n > ID_MAX)
		return -EINVAL;
	m->anon_gid = (uint32_t)n;
	if (xf_idset_parse(pick(cfg, dsect, esect, "map-uid"), &m->uid) < 0 ||
	    xf_idset_parse(pick(cfg, dsect, esect, "map-gid"), &m->gid) < 0)
		return -EINVAL;
	n = 0;
	if (num(cfg, esect, "noexec", &n) < 0)
		return -EINVAL;
	m->noexec = n != 0;
	if (num(cfg, dsect, "quota-bytes", &m->quota_bytes_dom) < 0 ||
	    num(cfg, dsect, "quota-inodes", &m->quota_inodes_dom) < 0 ||
	    num(cfg, esect, "quota-bytes", &m->quota_bytes_exp) < 0 ||
	    num(cfg, esect, "quota-inodes", &m->quota_inodes_exp) < 0)
		return -EINVAL;
	return 0;
}

uint32_t xf_idmap_caller_uid(const struct xf_idmap *m, uint32_t guest_uid)
{
	uint32_t h;

	if (m->squash == XF_SQUASH_ALL ||
	    (m->squash == XF_SQUASH_ROOT && guest_uid == 0))
		return m->anon_uid;
	h = xf_idset_to_host(&m->uid, guest_uid);
	return h == XF_ID_INVALID ? m->anon_uid : h;
}

uint32_t xf_idmap_caller_gid(const struct xf_idmap *m, uint32_t guest_gid)
{
	uint32_t h;

	if (m->squash == XF_SQUASH_ALL ||
	    (m->squash == XF_SQUASH_ROOT && guest_gid == 0))
		return m->anon_gid;
	h = xf_idset_to_host(&m->gid, guest_gid);
	return h == XF_ID_INVALID ? m->anon_gid : h;
}

uint32_t xf_idmap_show_uid(const struct xf_idmap *m, uint32_t host_uid)
{
	return xf_idset_to_guest(&m->uid, host_uid);
}

uint32_t xf_idmap_show_gid(const struct xf_idmap *m, uint32_t host_gid)
{
	return xf_idset_to_guest(&m->gid, host_gid);
}

static int chown_id(const struct xf_idmap *m, const struct xf_idset *set,
		    uint32_t caller, uint32_t guest, uint32_t *host)
{
	*host = XF_ID_INVALID;
	if (guest == XF_ID_INVALID)
		return 0;
	if (m->squash == XF_SQUASH_ALL ||
	    (m->squash == XF_SQUASH_ROOT && caller == 0))
		return -EPERM;
	*host = xf_idset_to_host(set, guest);
	return *host == XF_ID_INVALID ? -EINVAL : 0;
}

int xf_idmap_chown_uid(const struct xf_idmap *m, uint32_t caller_guest_uid,
		       uint32_t guest, uint32_t *host)
{
	return chown_id(m, &m->uid, caller_guest_uid, guest, host);
}

int xf_idmap_chown_gid(const struct xf_idmap *m, uint32_t caller_guest_uid,
		       uint32_t guest, uint32_t *host)
{
	return chown_id(m, &m->gid, caller_guest_uid, guest, host);
}

int xf_idmap_may_chattr(const struct xf_idmap *m, uint32_t caller_guest_uid,
			uint32_t owner_host_uid)
{
	if (xf_idmap_is_identity(m))
		return 0;
	if (xf_idmap_caller_uid(m, caller_guest_uid) == owner_host_uid)
		return 0;
	if (m->squash == XF_SQUASH_NONE && caller_guest_uid == 0 &&
	    xf_idset_to_host(&m->uid, 0) != XF_ID_INVALID &&
	    xf_idset_host_in(&m->uid, owner_host_uid))
		return 0;
	return -EPERM;
}

uint32_t xf_idmap_setid_filter(const struct xf_idmap *m, uint32_t mode,
			       uint32_t host_uid, uint32_t host_gid)
{
	if (xf_idmap_is_identity(m))
		return mode;
	if ((mode & S_ISUID) && !xf_idset_host_in(&m->uid, host_uid))
		mode &= ~(uint32_t)S_ISUID;
	if ((mode & S_ISGID) && (mode & S_IFMT) != S_IFDIR &&
	    !xf_idset_host_in(&m->gid, host_gid))
		mode &= ~(uint32_t)S_ISGID;
	/* a squashed caller's objects belong to anon: no set-uid at all */
	if ((mode & S_ISUID) && m->squash != XF_SQUASH_NONE &&
	    host_uid == m->anon_uid)
		mode &= ~(uint32_t)S_ISUID;
	return mode;
}
