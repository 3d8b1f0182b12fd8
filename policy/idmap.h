/*
 * Identity mapping and quota limits of one (domain, export) pair: pure
 * decision functions over a small fixed-size struct, so that the fs layer
 * can apply them per request without allocating and the unit tests and the
 * fuzzer can enumerate them.
 *
 * Model (docs/security.md, xenfs.conf(5)):
 *  - map-uid/map-gid: guest ranges to host ranges.  With no map the
 *    mapping is the identity.  With a map, a guest id outside every range
 *    is "unmapped": as a caller it acts as the anon id, as a chown target
 *    it is refused (EINVAL, as in user namespaces).  A host id outside
 *    every host range is shown to the guest as XF_OVERFLOW_ID (65534).
 *  - squash = root: guest uid 0 (and gid 0) act as anon-uid/anon-gid;
 *    squash = all: every caller acts as anon.  Squashed callers may not
 *    chown (EPERM).  anon-uid/anon-gid default to 65534.
 *  - A caller may change owner or mode of a host object only if it owns
 *    it after mapping, or it is unsquashed guest root and the object's
 *    owner is inside its range.  A set-id bit is allowed only on an object
 *    whose host owner (setuid) / group (setgid) is inside the range.
 *
 * Which section wins: a key in [domain NAME] overrides the same key in
 * [export TAG] (the domain is who the guest is).  Quota limits are kept
 * apart: the domain's limit counts the domain's exports together, the
 * export's limit that export alone.
 *
 * Concurrency: everything is pure; a struct xf_idmap is immutable once
 * loaded.  Trust: inputs are guest ids (any 32-bit value) and config text
 * already validated by the parser (re-validated here anyway).
 */
#ifndef XF_POLICY_IDMAP_H
#define XF_POLICY_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "policy.h"

#define XF_OVERFLOW_ID		65534u
#define XF_IDMAP_MAX		64	/* ranges per map (the parser's bound) */
#define XF_ID_INVALID		0xffffffffu

enum xf_squash {
	XF_SQUASH_NONE = 0,
	XF_SQUASH_ROOT,
	XF_SQUASH_ALL,
};

struct xf_idrange {
	uint32_t guest;			/* first guest id */
	uint32_t host;			/* first host id */
	uint32_t count;			/* >= 1 */
};

struct xf_idset {
	struct xf_idrange r[XF_IDMAP_MAX];
	uint32_t n;			/* 0: identity */
};

struct xf_idmap {
	enum xf_squash squash;
	uint32_t anon_uid, anon_gid;
	struct xf_idset uid, gid;
	int noexec;			/* export's noexec */
	uint64_t quota_bytes_dom;	/* 0: none */
	uint64_t quota_inodes_dom;
	uint64_t quota_bytes_exp;
	uint64_t quota_inodes_exp;
};

/*
 * Parse "G[-G]:H ..." into set.  0 or -EINVAL (malformed, empty or
 * overlapping guest ranges, ids past 4294967294, more than XF_IDMAP_MAX).
 */
int xf_idset_parse(const char *text, struct xf_idset *set);

/*
 * Build the map of `domain` on export `tag` from cfg (identity, no squash,
 * no quota when nothing is configured).  0 or -EINVAL (a value the parser
 * should have refused).
 */
int xf_idmap_load(const struct xf_config *cfg, const char *domain,
		  const char *tag, struct xf_idmap *m);
void xf_idmap_identity(struct xf_idmap *m);

/* Guest id -> host id through a set; XF_ID_INVALID if unmapped. */
uint32_t xf_idset_to_host(const struct xf_idset *set, uint32_t guest);
/* Host id -> guest id; XF_OVERFLOW_ID if outside every host range. */
uint32_t xf_idset_to_guest(const struct xf_idset *set, uint32_t host);
/* True if host id is inside a host range (or the set is the identity). */
int xf_idset_host_in(const struct xf_idset *set, uint32_t host);

/* Host credentials a guest caller acts with (squash, map, anon). */
uint32_t xf_idmap_caller_uid(const struct xf_idmap *m, uint32_t guest_uid);
uint32_t xf_idmap_caller_gid(const struct xf_idmap *m, uint32_t guest_gid);

/* What the guest is shown for a host owner. */
uint32_t xf_idmap_show_uid(const struct xf_idmap *m, uint32_t host_uid);
uint32_t xf_idmap_show_gid(const struct xf_idmap *m, uint32_t host_gid);

/*
 * chown target: 0 with *host set, -EINVAL (unmapped id) or -EPERM
 * (squashed caller).  guest == XF_ID_INVALID means "unchanged" and gives
 * *host = XF_ID_INVALID.
 */
int xf_idmap_chown_uid(const struct xf_idmap *m, uint32_t caller_guest_uid,
		       uint32_t guest, uint32_t *host);
int xf_idmap_chown_gid(const struct xf_idmap *m, uint32_t caller_guest_uid,
		       uint32_t guest, uint32_t *host);

/*
 * May the caller change owner/mode of an object owned by host_uid?  Always
 * yes for the identity without squash (the guest kernel checks).  0 or
 * -EPERM.
 */
int xf_idmap_may_chattr(const struct xf_idmap *m, uint32_t caller_guest_uid,
			uint32_t owner_host_uid);
/*
 * Set-id bits allowed for an object owned by host uid/gid?  Returns mode
 * with the bits the policy forbids removed.
 */
uint32_t xf_idmap_setid_filter(const struct xf_idmap *m, uint32_t mode,
			       uint32_t host_uid, uint32_t host_gid);
/* Identity mapping with no squash (the fs layer's fast path). */
int xf_idmap_is_identity(const struct xf_idmap *m);

#endif /* XF_POLICY_IDMAP_H */
