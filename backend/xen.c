/*
 * xenfsd's Xen acceptor: the device manager that creates, per configured
 * guest, one xenfs device per export the guest may access, and walks each
 * device's backend side of the xenbus state machine (docs/xen.md).
 *
 * xl knows nothing about our device type, so xenfsd creates both
 * directories itself when a domain appears: it watches @introduceDomain
 * and @releaseDomain, reads /local/domain/<id>/name, matches that NAME
 * against the policy (domids change on every boot), and removes every node
 * it created when the domain goes away.  devid is the export's index in
 * the configuration, so a tag keeps its devid across guest reboots.
 *
 * Privilege separation (bk.h, issue 8): unless --no-sandbox, this device
 * manager runs in xenfsd's privileged parent, which never maps guest
 * memory.  There dev_connect only reads the frontend's offer from
 * xenstore (xf_xen_back_read_offer) and hands it to the domain's worker
 * process with bk_priv_adopt_xen; the worker calls bk_xen_adopt (below),
 * which maps the offer (xf_xen_back_map_offer) and serves it.  The
 * parent's struct bk_conn is then a proxy whose on_close may run after
 * bk_conn_stop returned (the worker is asked to stop and answers later):
 * the device keeps d->conn until on_close, and a device removed meanwhile
 * is freed by on_close.  With --no-sandbox, one process does both
 * (xf_xen_back_accept + bk_conn_start) and on_close runs inside
 * bk_conn_stop.  A worker never speaks xenstore: bk_xen_start is not
 * called there.
 *
 * Concurrency: everything here runs on the main thread, from the event
 * loop callback on the xenstore descriptor, from bk_xen_* and from the
 * connections' on_close (also main thread).  The xen transport's
 * connection (lib/transport_xen.c) is handed to bk_conn_start, which owns
 * it from then on; its queue threads never touch this file's state.
 *
 * Trust boundary: the frontend's directory is written by the guest.  Its
 * state is parsed strictly; anything else goes through
 * xf_xen_back_read_offer(), which validates it like any guest input, and
 * xf_xen_back_map_offer() checks the offer again in the process that maps
 * it.  A guest that misbehaves only gets its own device refused (error
 * node, Closing).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <xenstore.h>

#include "bk.h"
#include "log.h"
#include "policy.h"
#include "transport_xen_i.h"

#define XPATH	128

struct xdom;

struct xdev {
	struct xdom *dom;
	uint32_t devid;
	char *tag;
	char fe[XPATH];			/* guest-writable directory */
	char be[XPATH];			/* ours, guest-readable */
	char token[32];			/* "fe:<domid>:<devid>" */
	int bstate;			/* what we last wrote */
	int dying;			/* domain going away: no more writes */
	struct bk_conn *conn;		/* while Connected */
	struct xdev *next;
};

struct xdom {
	uint32_t domid;
	char *name;
	int seen;			/* mark for scans */
	struct xdev *devs;
	struct xdom *next;
};

static struct {
	struct xs_handle *xs;
	const struct xf_config *cfg;
	struct xdom *doms;
	uint32_t *name_watched;		/* domids with a pending name watch */
	size_t nname_watched;
	struct log_ratelimit rl;
} xen;

static void dev_frontend_changed(struct xdev *d);

static int xput(const char *dir, const char *key, const char *val)
{
	char path[XPATH + 32];

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	if (!xs_write(xen.xs, XBT_NULL, path, val, strlen(val)))
		return -errno;
	return 0;
}

static int xput_u32(const char *dir, const char *key, uint32_t v)
{
	char buf[16];

	snprintf(buf, sizeof(buf), "%" PRIu32, v);
	return xput(dir, key, buf);
}

static void dev_set_state(struct xdev *d, enum xf_xenbus_state st)
{
	if (d->dying)
		return;
	if (xput_u32(d->be, XF_XK_STATE, st) < 0)
		log_warn("xen: dom %u dev %u: cannot write state %d",
			 d->dom->domid, d->devid, st);
	d->bstate = st;
}

/* Refuse the frontend's attempt: "<errno> <reason>" and Closing. */
static void dev_fail(struct xdev *d, int err, const char *why)
{
	char buf[256];

	log_warnx_rl(&xen.rl, "dom %u dev %u (%s, %s): refused: %s",
		     d->dom->domid, d->devid, d->dom->name, d->tag, why);
	snprintf(buf, sizeof(buf), "%d %s", err, why);
	(void)xput(d->be, XF_XK_ERROR, buf);
	dev_set_state(d, XF_XB_CLOSING);
}

/* ---- device creation and removal ---- */

static int mkdir_perm(xs_transaction_t t, const char *path, uint32_t owner,
		      uint32_t reader)
{
	struct xs_permissions perms[2] = {
		{ .id = owner, .perms = XS_PERM_NONE },
		{ .id = reader, .perms = XS_PERM_READ },
	};

	if (!xs_mkdir(xen.xs, t, path))
		return -errno;
	if (!xs_set_permissions(xen.xs, t, path, perms,
				owner == reader ? 1 : 2))
		return -errno;
	return 0;
}

/*
 * Create both directories of one device in a transaction.  Order matters:
 * xenstored gives a new node its parent's permissions, so each directory
 * gets its permissions before its keys are written.
 */
static int dev_publish(struct xdev *d)
{
	const struct xf_global *g = &xen.cfg->global;
	uint32_t domid = d->dom->domid;
	char parent[XPATH], kpath[XPATH + 32], num[24];
	xs_transaction_t t;
	int rc = 0;

	for (int tries = 0; tries < 10; tries++) {
		if ((t = xs_transaction_start(xen.xs)) == XBT_NULL)
			return -errno;
		snprintf(parent, sizeof(parent),
			 "/local/domain/0/backend/xenfs/%u", domid);
		rc = mkdir_perm(t, parent, 0, domid);
		rc = rc ?: mkdir_perm(t, d->be, 0, domid);
		snprintf(parent, sizeof(parent),
			 "/local/domain/%u/device/xenfs", domid);
		rc = rc ?: mkdir_perm(t, parent, 0, domid);
		rc = rc ?: mkdir_perm(t, d->fe, domid, domid);
#define PUT(dir, k, v) \
	do { if (rc == 0 && !xs_write(xen.xs, t, (snprintf(kpath, \
	    sizeof(kpath), "%s/%s", dir, k), kpath), v, strlen(v))) \
		rc = -errno; } while (0)
		PUT(d->be, XF_XK_FRONTEND, d->fe);
		snprintf(num, sizeof(num), "%u", domid);
		PUT(d->be, XF_XK_FRONTEND_ID, num);
		PUT(d->be, XF_XK_TAG, d->tag);
		snprintf(num, sizeof(num), "%u", XENFS_PROTO_VERSION);
		PUT(d->be, XF_XK_VERSIONS, num);
		snprintf(num, sizeof(num), "%u", g->max_queues <
			 XENFS_MAX_QUEUES ? g->max_queues : XENFS_MAX_QUEUES);
		PUT(d->be, XF_XK_MAX_QUEUES, num);
		snprintf(num, sizeof(num), "%u", XENFS_MAX_RING_ORDER);
		PUT(d->be, XF_XK_MAX_RING_ORDER, num);
		snprintf(num, sizeof(num), "%" PRIu64,
			 g->max_region / XENFS_PAGE_SIZE);
		PUT(d->be, XF_XK_MAX_REGION_PAGES, num);
		snprintf(num, sizeof(num), "%d", XF_XB_INITWAIT);
		PUT(d->be, XF_XK_STATE, num);
		PUT(d->fe, XF_XK_BACKEND, d->be);
		PUT(d->fe, XF_XK_BACKEND_ID, "0");
		PUT(d->fe, XF_XK_TAG, d->tag);
		snprintf(num, sizeof(num), "%d", XF_XB_INITIALISING);
		PUT(d->fe, XF_XK_STATE, num);
#undef PUT
		if (rc) {
			(void)xs_transaction_end(xen.xs, t, true);
			return rc;
		}
		if (xs_transaction_end(xen.xs, t, false)) {
			d->bstate = XF_XB_INITWAIT;
			return 0;
		}
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

static struct xdev *dev_new(struct xdom *dom, uint32_t devid,
			    const char *tag)
{
	struct xdev *d;
	char path[XPATH + 8];
	int rc;

	if ((d = calloc(1, sizeof(*d))) == NULL ||
	    (d->tag = strdup(tag)) == NULL) {
		free(d);
		log_warn("xen: dom %u: out of memory", dom->domid);
		return NULL;
	}
	d->dom = dom;
	d->devid = devid;
	snprintf(d->fe, sizeof(d->fe), XF_XEN_FE_FMT, dom->domid, devid);
	snprintf(d->be, sizeof(d->be), XF_XEN_BE_FMT, dom->domid, devid);
	snprintf(d->token, sizeof(d->token), "fe:%u:%u", dom->domid, devid);
	if ((rc = dev_publish(d)) < 0) {
		log_warnx("xen: dom %u dev %u: cannot create the xenstore "
			  "nodes: %s", dom->domid, devid, strerror(-rc));
		free(d->tag);
		free(d);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/%s", d->fe, XF_XK_STATE);
	if (!xs_watch(xen.xs, path, d->token))
		log_warn("xen: dom %u dev %u: watch %s", dom->domid, devid,
			 path);
	d->next = dom->devs;
	dom->devs = d;
	log_info("xen: dom %u (%s) dev %u: export %s offered", dom->domid,
		 dom->name, devid, tag);
	return d;
}

static void dev_free(struct xdev *d)
{
	free(d->tag);
	free(d);
}

/*
 * Remove a device: stop its connection (unmaps every grant, unbinds every
 * port), drop the watch and the nodes.  The device is freed here, or by
 * on_close if the connection is still stopping.
 */
static void dev_remove(struct xdev *d)
{
	char path[XPATH + 8];

	d->dying = 1;
	snprintf(path, sizeof(path), "%s/%s", d->fe, XF_XK_STATE);
	(void)xs_unwatch(xen.xs, path, d->token);
	if (d->conn)
		bk_conn_stop(d->conn, "xen device removed");
	(void)xs_rm(xen.xs, XBT_NULL, d->be);
	(void)xs_rm(xen.xs, XBT_NULL, d->fe);
	if (d->conn == NULL)
		dev_free(d);
	else
		d->dom = NULL;	/* on_close frees it */
}

/* ---- connections ---- */

/*
 * The connection ended (with privilege separation possibly well after
 * bk_conn_stop returned).  The mapped/bound counts are this process's:
 * only meaningful where the mapping happens, so the parent of workers
 * leaves them to the worker's own log line (adopt_on_close).
 */
static void dev_on_close(struct bk_conn *c, void *arg)
{
	struct xdev *d = arg;
	uint64_t pages, ports;
	char counts[96] = "";

	(void)c;
	d->conn = NULL;
	if (!bk_priv_on()) {
		xf_xen_back_counts(&pages, &ports);
		snprintf(counts, sizeof(counts), "; still mapped %" PRIu64
			 " pages, bound %" PRIu64 " ports", pages, ports);
	}
	if (d->dying || d->dom == NULL) {
		log_info("xen: device %s closed%s", d->be, counts);
		if (d->dom == NULL)
			dev_free(d);
		return;
	}
	log_info("xen: dom %u dev %u: disconnected%s", d->dom->domid,
		 d->devid, counts);
	dev_set_state(d, XF_XB_CLOSED);
	/* The frontend may already have moved on (Closed, or a new
	 * Initialising after a crash): re-evaluate. */
	dev_frontend_changed(d);
}

static void dev_connect(struct xdev *d)
{
	const struct xf_global *g = &xen.cfg->global;
	struct xf_xen_offer offer;
	struct xf_conn *xc = NULL;
	enum xf_access acc;
	uint32_t flags = 0;
	char err[256];
	int rc, ro, priv = bk_priv_on();

	acc = xf_policy_access(xen.cfg, d->dom->name, d->tag);
	if (acc == XF_ACCESS_NONE) {
		dev_fail(d, EACCES, "export not accessible to this domain");
		return;
	}
	err[0] = '\0';
	if (priv) {
		/* The parent reads; the domain's worker maps. */
		rc = xf_xen_back_read_offer(xen.xs, d->dom->domid, d->fe,
					    g->max_queues, g->max_region,
					    &offer, err, sizeof(err));
		flags = offer.flags;
	} else
		rc = xf_xen_back_accept(xen.xs, d->dom->domid, d->fe,
					g->max_queues, g->max_region, &xc,
					&flags, err, sizeof(err));
	if (rc < 0) {
		dev_fail(d, -rc, err);
		return;
	}
	ro = acc == XF_ACCESS_RO || (flags & XF_XEN_F_RO);
	/* Granted flags are written before Connected, so the frontend reads
	 * them as soon as it sees the state change. */
	{
		char sect[96];
		uint64_t noexec = 0;

		snprintf(sect, sizeof(sect), "export %s", d->tag);
		(void)xf_config_get_u64(xen.cfg, sect, "noexec", &noexec);
		(void)xput_u32(d->be, XF_XK_GRANTED_FLAGS,
			       (ro ? XF_XEN_F_RO : 0) |
			       (noexec ? XF_XEN_F_NOEXEC : 0));
	}
	(void)xs_rm(xen.xs, XBT_NULL, (snprintf(err, sizeof(err), "%s/%s",
					       d->be, XF_XK_ERROR), err));
	if (priv) {
		/* Returns once the worker mapped the region and bound the
		 * ports (or failed): only then may the frontend see
		 * Connected, which lets it unshare the directory. */
		err[0] = '\0';
		rc = bk_priv_adopt_xen(d->dom->name, d->dom->domid, d->tag,
				       ro, &offer, dev_on_close, d, &d->conn,
				       err, sizeof(err));
		if (rc < 0) {
			d->conn = NULL;
			dev_fail(d, -rc, err[0] ? err : "the domain's worker "
				 "cannot serve the connection");
			return;
		}
	} else {
		offer.layout = xc->layout;
		rc = bk_conn_start(xc, d->dom->name, d->dom->domid, d->tag,
				   ro, dev_on_close, d, &d->conn);
		if (rc < 0) {
			d->conn = NULL;
			dev_fail(d, -rc, "cannot start serving the "
				 "connection");
			return;
		}
	}
	log_info("xen: dom %u (%s) dev %u: connected, export %s %s, %u "
		 "queues, %" PRIu64 " pages%s", d->dom->domid, d->dom->name,
		 d->devid, d->tag, ro ? "ro" : "rw", offer.layout.nr_queues,
		 xenfs_region_pages(&offer.layout),
		 priv ? ", served by its worker" : "");
	dev_set_state(d, XF_XB_CONNECTED);
}

/* The frontend's state node changed (or the watch was just set). */
static void dev_frontend_changed(struct xdev *d)
{
	char path[XPATH + 8], *v;
	unsigned int len;
	uint32_t fst = XF_XB_UNKNOWN;

	if (d->dying)
		return;
	snprintf(path, sizeof(path), "%s/%s", d->fe, XF_XK_STATE);
	v = xs_read(xen.xs, XBT_NULL, path, &len);
	if (v == NULL && errno != ENOENT && errno != EACCES) {
		/* A failed read says nothing about the guest; the watch
		 * fires again when the node really changes. */
		log_warnx_rl(&xen.rl, "xen: dom %u dev %u: reading %s: %s",
			     d->dom->domid, d->devid, path, strerror(errno));
		return;
	}
	if (v == NULL || xf_xen_parse_u32(v, XF_XB_CLOSED, &fst) < 0)
		fst = XF_XB_UNKNOWN;	/* missing or junk: treat as gone */
	free(v);
	log_debug("xen: dom %u dev %u: frontend state %u, backend %d",
		  d->dom->domid, d->devid, fst, d->bstate);

	switch (fst) {
	case XF_XB_INITIALISED:
		if (d->bstate == XF_XB_INITWAIT && d->conn == NULL)
			dev_connect(d);
		break;
	case XF_XB_CONNECTED:
		break;
	case XF_XB_CLOSING:
	case XF_XB_UNKNOWN:
		if (d->conn)
			bk_conn_stop(d->conn, "frontend closing");
		else if (d->bstate != XF_XB_CLOSED &&
			 d->bstate != XF_XB_INITWAIT)
			dev_set_state(d, XF_XB_CLOSED);
		break;
	case XF_XB_INITIALISING:
	case XF_XB_INITWAIT:
	case XF_XB_CLOSED:
		if (d->conn) {
			bk_conn_stop(d->conn, "frontend reset");
			return;	/* on_close re-evaluates */
		}
		if (d->bstate != XF_XB_INITWAIT) {
			/* Ready for the next mount. */
			(void)xs_rm(xen.xs, XBT_NULL,
				    (snprintf(path, sizeof(path), "%s/%s",
					      d->be, XF_XK_ERROR), path));
			dev_set_state(d, XF_XB_INITWAIT);
		}
		break;
	}
}

/* ---- domains ---- */

static struct xdom *dom_find(uint32_t domid)
{
	struct xdom *m;

	for (m = xen.doms; m; m = m->next)
		if (m->domid == domid)
			return m;
	return NULL;
}

/* Offer every export this domain may access that has no device yet, and
 * withdraw devices whose export it may no longer access. */
static void dom_sync_devices(struct xdom *m)
{
	struct xdev *d, **pp;
	size_t i;

	for (pp = &m->devs; (d = *pp) != NULL;) {
		if (xf_policy_access(xen.cfg, m->name, d->tag) ==
		    XF_ACCESS_NONE) {
			*pp = d->next;
			log_info("xen: dom %u (%s): export %s withdrawn",
				 m->domid, m->name, d->tag);
			dev_remove(d);
			continue;
		}
		pp = &d->next;
	}
	for (i = 0; i < xen.cfg->nexports; i++) {
		const struct xf_export *e = &xen.cfg->exports[i];
		int have = 0;

		if (xf_policy_access(xen.cfg, m->name, e->tag) ==
		    XF_ACCESS_NONE)
			continue;
		for (d = m->devs; d; d = d->next)
			if (strcmp(d->tag, e->tag) == 0)
				have = 1;
		if (!have)
			(void)dev_new(m, (uint32_t)i, e->tag);
	}
}

static void dom_remove(struct xdom *m)
{
	struct xdev *d, *next;
	char path[XPATH];
	uint64_t pages, ports;

	for (d = m->devs; d; d = next) {
		next = d->next;
		dev_remove(d);
	}
	snprintf(path, sizeof(path), "/local/domain/0/backend/xenfs/%u",
		 m->domid);
	(void)xs_rm(xen.xs, XBT_NULL, path);
	if (bk_priv_on())
		log_info("xen: dom %u (%s) gone; its worker unmaps its "
			 "connections", m->domid, m->name);
	else {
		xf_xen_back_counts(&pages, &ports);
		log_info("xen: dom %u (%s) gone; xen transport now maps %"
			 PRIu64 " pages, binds %" PRIu64 " ports", m->domid,
			 m->name, pages, ports);
	}
	free(m->name);
	free(m);
}

static void name_watch(uint32_t domid)
{
	char path[64], token[32];
	uint32_t *n;

	for (size_t i = 0; i < xen.nname_watched; i++)
		if (xen.name_watched[i] == domid)
			return;
	n = reallocarray(xen.name_watched, xen.nname_watched + 1,
			 sizeof(*n));
	if (n == NULL)
		return;
	xen.name_watched = n;
	xen.name_watched[xen.nname_watched++] = domid;
	snprintf(path, sizeof(path), "/local/domain/%u/name", domid);
	snprintf(token, sizeof(token), "name:%u", domid);
	(void)xs_watch(xen.xs, path, token);
}

static void name_unwatch_gone(void)
{
	char path[64], token[32];
	size_t i, j = 0;

	for (i = 0; i < xen.nname_watched; i++) {
		uint32_t id = xen.name_watched[i];

		if (dom_find(id) == NULL &&
		    xs_is_domain_introduced(xen.xs, id)) {
			xen.name_watched[j++] = id;
			continue;
		}
		snprintf(path, sizeof(path), "/local/domain/%u/name", id);
		snprintf(token, sizeof(token), "name:%u", id);
		(void)xs_unwatch(xen.xs, path, token);
	}
	xen.nname_watched = j;
}

/* Reconcile our domains with xenstore's list of live domains. */
static void scan_domains(void)
{
	struct xdom *m, **pp;
	char **ents, path[64], *name;
	unsigned int n, i, len;

	for (m = xen.doms; m; m = m->next)
		m->seen = 0;
	ents = xs_directory(xen.xs, XBT_NULL, "/local/domain", &n);
	for (i = 0; ents && i < n; i++) {
		uint32_t domid;

		if (xf_xen_parse_u32(ents[i], 0x7fef, &domid) < 0 ||
		    domid == 0)
			continue;
		if (!xs_is_domain_introduced(xen.xs, domid))
			continue;
		if ((m = dom_find(domid)) != NULL) {
			m->seen = 1;
			continue;
		}
		snprintf(path, sizeof(path), "/local/domain/%u/name", domid);
		name = xs_read(xen.xs, XBT_NULL, path, &len);
		if (name == NULL || len == 0 || strlen(name) != len) {
			free(name);
			name_watch(domid);	/* toolstack not done yet */
			continue;
		}
		if ((m = calloc(1, sizeof(*m))) == NULL) {
			free(name);
			continue;
		}
		m->domid = domid;
		m->name = name;
		m->seen = 1;
		m->next = xen.doms;
		xen.doms = m;
		log_info("xen: dom %u is \"%s\"", domid, name);
		dom_sync_devices(m);
	}
	free(ents);
	for (pp = &xen.doms; (m = *pp) != NULL;) {
		if (!m->seen) {
			*pp = m->next;
			dom_remove(m);
			continue;
		}
		pp = &m->next;
	}
	name_unwatch_gone();
}

static struct xdev *dev_by_token(const char *token)
{
	uint32_t domid, devid;
	struct xdom *m;
	struct xdev *d;

	if (sscanf(token, "fe:%" SCNu32 ":%" SCNu32, &domid, &devid) != 2)
		return NULL;
	if ((m = dom_find(domid)) == NULL)
		return NULL;
	for (d = m->devs; d; d = d->next)
		if (d->devid == devid)
			return d;
	return NULL;
}

static void xen_watch_cb(int fd, uint32_t events, void *arg)
{
	char **w;
	int rescan = 0;

	(void)fd;
	(void)events;
	(void)arg;
	while ((w = xs_check_watch(xen.xs)) != NULL) {
		const char *token = w[XS_WATCH_TOKEN];
		struct xdev *d;

		if (strncmp(token, "fe:", 3) == 0) {
			if ((d = dev_by_token(token)) != NULL)
				dev_frontend_changed(d);
		} else
			rescan = 1;	/* @introduce/@release/name:N */
		free(w);
	}
	if (rescan)
		scan_domains();
}

/* ---- entry points (main thread) ---- */

int bk_xen_start(const struct xf_config *cfg)
{
	int fd, rc;

	xen.cfg = cfg;
	xen.rl = (struct log_ratelimit)LOG_RATELIMIT_INIT;
	if ((xen.xs = xs_open(0)) == NULL) {
		log_info("xen: xenstore unavailable (%s): not a Xen dom0, "
			 "Xen transport off", strerror(errno));
		return 0;
	}
	if (!xs_watch(xen.xs, "@introduceDomain", "introduce") ||
	    !xs_watch(xen.xs, "@releaseDomain", "release")) {
		rc = -errno;
		log_warn("xen: cannot watch domain introduction");
		xs_close(xen.xs);
		xen.xs = NULL;
		return rc;
	}
	fd = xs_fileno(xen.xs);
	if ((rc = bk_loop_add(fd, EPOLLIN, xen_watch_cb, NULL)) < 0) {
		xs_close(xen.xs);
		xen.xs = NULL;
		return rc;
	}
	log_info("xen: transport on, serving domains by name");
	scan_domains();
	return 0;
}

void bk_xen_reload(const struct xf_config *cfg)
{
	struct xdom *m;

	xen.cfg = cfg;
	if (xen.xs == NULL)
		return;
	for (m = xen.doms; m; m = m->next)
		dom_sync_devices(m);
	scan_domains();
}

void bk_xen_stop(void)
{
	struct xdom *m, *next;

	if (xen.xs == NULL)
		return;
	bk_loop_del(xs_fileno(xen.xs));
	for (m = xen.doms; m; m = next) {
		next = m->next;
		dom_remove(m);
	}
	xen.doms = NULL;
	free(xen.name_watched);
	xen.name_watched = NULL;
	xen.nname_watched = 0;
	xs_close(xen.xs);
	xen.xs = NULL;
}

/* ---- worker side (a domain's worker process, main thread) ---- */

struct adopted {
	uint32_t domid;
	char domain[64];
	char tag[64];
};

/* The connection ended in this worker: say what the process still maps
 * (the tests' leak check reads this line). */
static void adopt_on_close(struct bk_conn *c, void *arg)
{
	struct adopted *a = arg;
	uint64_t pages, ports;

	(void)c;
	xf_xen_back_counts(&pages, &ports);
	log_info("xen: dom %u (%s) export %s: connection ended; worker "
		 "still maps %" PRIu64 " pages, binds %" PRIu64 " ports",
		 a->domid, a->domain, a->tag, pages, ports);
	free(a);
}

int bk_xen_adopt(const char *domain, uint32_t domid, const char *tag,
		 int readonly, const struct xf_xen_offer *offer, char *err,
		 size_t errlen)
{
	const struct xf_global *g = &bk_srv.cfg->global;
	struct xf_conn *xc = NULL;
	struct adopted *a;
	enum xf_access acc;
	int rc;

	/* The parent checked all this; a worker trusts it no further than
	 * it must (its own config, its own checks of the offer). */
	acc = xf_policy_access(bk_srv.cfg, domain, tag);
	if (acc == XF_ACCESS_NONE) {
		snprintf(err, errlen, "export %s not accessible to %s", tag,
			 domain);
		return -EACCES;
	}
	if (offer->domid != domid) {
		snprintf(err, errlen, "offer of dom %u handed over for dom "
			 "%u", offer->domid, domid);
		return -EINVAL;
	}
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	a->domid = domid;
	snprintf(a->domain, sizeof(a->domain), "%s", domain);
	snprintf(a->tag, sizeof(a->tag), "%s", tag);
	rc = xf_xen_back_map_offer(offer, g->max_queues, g->max_region, &xc,
				   err, errlen);
	if (rc < 0) {
		free(a);
		return rc;
	}
	rc = bk_conn_start(xc, domain, domid, tag,
			   readonly || acc == XF_ACCESS_RO, adopt_on_close, a,
			   NULL);
	if (rc < 0) {
		/* bk_conn_start destroyed xc (unmapped, unbound) */
		free(a);
		snprintf(err, errlen, "cannot start serving the connection: "
			 "%s", strerror(-rc));
		return rc;
	}
	return 0;
}
