/*
 * Ring operations; see ring.h for the trust boundary and concurrency rules.
 *
 * Barrier pairing, as in Xen's io/ring.h:
 *  - producer: write slots, release-store prod   (peer sees slots before prod)
 *  - consumer: acquire-load prod, then copy slots (we see slots after prod)
 *  - event suppression: store event, full barrier, re-read prod
 *    (the peer's push does: store prod, full barrier, read event), so at
 *    least one side sees the other's update and no wakeup is lost.
 */
#include <errno.h>
#include <string.h>

#include "ring.h"

int xf_layout_check(const struct xenfs_layout *l, uint64_t max_region,
		    const char **why)
{
	const char *w = NULL;

	if (l->nr_queues < 1 || l->nr_queues > XENFS_MAX_QUEUES)
		w = "number of queues out of range";
	else if (l->ring_order < XENFS_MIN_RING_ORDER ||
		 l->ring_order > XENFS_MAX_RING_ORDER)
		w = "ring order out of range";
	else if (l->buf_size < XENFS_MIN_BUF_SIZE ||
		 l->buf_size > XENFS_MAX_BUF_SIZE ||
		 l->buf_size % XENFS_PAGE_SIZE != 0)
		w = "buffer size out of range or not page-aligned";
	else if (l->pad != 0)
		w = "nonzero padding in layout";
	else if (max_region && xenfs_region_size(l) > max_region)
		w = "shared region larger than the backend allows";
	if (w) {
		if (why)
			*why = w;
		return -EINVAL;
	}
	return 0;
}

/* ---- backend ---- */

void xf_bring_init(struct xf_bring *r, struct xenfs_sring *s, uint32_t size)
{
	r->s = s;
	r->size = size;
	r->req_cons = 0;
	r->rsp_prod_pvt = 0;
	r->rsp_pushed = 0;
}

int xf_bring_get(struct xf_bring *r, struct xenfs_ring_req *out)
{
	/* One load of the hostile index; everything below uses the local. */
	uint32_t prod = xf_load_acquire(&r->s->req_prod);
	const union xenfs_ring_slot *slot;

	if (prod == r->req_cons)
		return 0;
	/* Unsigned distances: more unconsumed requests than slots, or more
	 * outstanding (unanswered) requests than slots, is impossible for an
	 * honest frontend. */
	if (prod - r->req_cons > r->size || prod - r->rsp_prod_pvt > r->size)
		return -EPROTO;
	slot = &r->s->ring[r->req_cons & (r->size - 1)];
	memcpy(out, &slot->req, sizeof(*out));	/* copy, then look */
	r->req_cons++;
	return 1;
}

bool xf_bring_final_check(struct xf_bring *r)
{
	xf_store_release(&r->s->req_event, r->req_cons + 1);
	xf_mb();
	return xf_load_acquire(&r->s->req_prod) != r->req_cons;
}

void xf_bring_put(struct xf_bring *r, const struct xenfs_ring_rsp *rsp)
{
	union xenfs_ring_slot *slot =
		&r->s->ring[r->rsp_prod_pvt & (r->size - 1)];

	memcpy(&slot->rsp, rsp, sizeof(*rsp));
	r->rsp_prod_pvt++;
}

bool xf_bring_push(struct xf_bring *r)
{
	uint32_t old = r->rsp_pushed, new = r->rsp_prod_pvt, event;

	if (old == new)
		return false;
	/* frontend sees the response slots before the new producer index */
	xf_store_release(&r->s->rsp_prod, new);
	r->rsp_pushed = new;
	xf_mb();	/* publish prod before reading the peer's event */
	event = xf_load_acquire(&r->s->rsp_event);
	return (uint32_t)(new - event) < (uint32_t)(new - old);
}

/* ---- frontend ---- */

void xf_fring_init(struct xf_fring *r, struct xenfs_sring *s, uint32_t size)
{
	r->s = s;
	r->size = size;
	r->req_prod_pvt = 0;
	r->req_pushed = 0;
	r->rsp_cons = 0;
	s->req_prod = 0;
	s->rsp_prod = 0;
	s->req_event = 1;
	s->rsp_event = 1;
}

void xf_fring_put(struct xf_fring *r, const struct xenfs_ring_req *req)
{
	union xenfs_ring_slot *slot =
		&r->s->ring[r->req_prod_pvt & (r->size - 1)];

	memcpy(&slot->req, req, sizeof(*req));
	r->req_prod_pvt++;
}

bool xf_fring_push(struct xf_fring *r)
{
	uint32_t old = r->req_pushed, new = r->req_prod_pvt, event;

	if (old == new)
		return false;
	/* backend sees the request slots before the new producer index */
	xf_store_release(&r->s->req_prod, new);
	r->req_pushed = new;
	xf_mb();
	event = xf_load_acquire(&r->s->req_event);
	return (uint32_t)(new - event) < (uint32_t)(new - old);
}

int xf_fring_get(struct xf_fring *r, struct xenfs_ring_rsp *out)
{
	uint32_t prod = xf_load_acquire(&r->s->rsp_prod);
	const union xenfs_ring_slot *slot;

	if (prod == r->rsp_cons)
		return 0;
	/* the backend cannot answer more requests than we published */
	if (prod - r->rsp_cons > r->req_pushed - r->rsp_cons)
		return -EPROTO;
	slot = &r->s->ring[r->rsp_cons & (r->size - 1)];
	memcpy(out, &slot->rsp, sizeof(*out));
	r->rsp_cons++;
	return 1;
}

bool xf_fring_final_check(struct xf_fring *r)
{
	xf_store_release(&r->s->rsp_event, r->rsp_cons + 1);
	xf_mb();
	return xf_load_acquire(&r->s->rsp_prod) != r->rsp_cons;
}

/* ---- control channel ---- */

int xf_ctrl_post(struct xf_ctrl_back *cb, uint32_t type, uint32_t seq,
		 const void *data, uint32_t len)
{
	uint32_t cons = xf_load_acquire(&cb->c->msg_cons);
	struct xenfs_ctrl_msg *m;

	if (len > XENFS_CTRL_DATA)
		return -EMSGSIZE;
	if (cb->msg_prod_pvt - cons > XENFS_CTRL_SLOTS)
		return -EPROTO;
	if (cb->msg_prod_pvt - cons == XENFS_CTRL_SLOTS)
		return -EAGAIN;
	m = &cb->c->msg[cb->msg_prod_pvt % XENFS_CTRL_SLOTS];
	m->type = type;
	m->seq = seq;
	m->len = len;
	m->pad = 0;
	if (len)
		memcpy(m->data, data, len);
	cb->msg_prod_pvt++;
	xf_store_release(&cb->c->msg_prod, cb->msg_prod_pvt);
	return 0;
}

void xf_ctrl_read_ack(const struct xf_ctrl_back *cb, uint32_t *seq,
		      uint32_t *status)
{
	uint64_t v = xf_load_acquire(&cb->c->ack);

	*seq = (uint32_t)v;
	*status = (uint32_t)(v >> 32);
}

int xf_ctrl_get(struct xf_ctrl_front *cf, struct xenfs_ctrl_msg *out)
{
	uint32_t prod = xf_load_acquire(&cf->c->msg_prod);

	if (prod == cf->msg_cons_pvt)
		return 0;
	if (prod - cf->msg_cons_pvt > XENFS_CTRL_SLOTS)
		return -EPROTO;
	memcpy(out, &cf->c->msg[cf->msg_cons_pvt % XENFS_CTRL_SLOTS],
	       sizeof(*out));
	cf->msg_cons_pvt++;
	xf_store_release(&cf->c->msg_cons, cf->msg_cons_pvt);
	if (out->len > XENFS_CTRL_DATA)
		return -EPROTO;
	return 1;
}

void xf_ctrl_ack(struct xf_ctrl_front *cf, uint32_t seq, uint32_t status)
{
	xf_store_release(&cf->c->ack, (uint64_t)status << 32 | seq);
}
