/*
 * Unit tests of the Xen backend's offer checks (lib/transport_xen.c):
 * an offer is read from xenstore by xenfsd's privileged parent and
 * crosses a socket to the domain's worker, which checks every field again
 * before it touches a grant or a port (xf_xen_back_map_offer).  Each
 * hostile field must be refused with its own error and message; a sound
 * offer must get past the checks, which on this host (no Xen) means it
 * fails only when it opens the grant device.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../lib/transport_xen_i.h"

#define MAXQ	4
#define MAXR	(64ull << 20)

static void good_offer(struct xf_xen_offer *o)
{
	memset(o, 0, sizeof(*o));
	o->domid = 5;
	o->layout.nr_queues = 2;
	o->layout.ring_order = 3;
	o->layout.buf_size = 65536;
	o->npages = (uint32_t)xenfs_region_pages(&o->layout);
	o->ndir = (o->npages + XF_XEN_REFS_PER_PAGE - 1) /
	    XF_XEN_REFS_PER_PAGE;
}

static int map(const struct xf_xen_offer *o, char *err, size_t len)
{
	struct xf_conn *c = NULL;
	int r;

	err[0] = '\0';
	r = xf_xen_back_map_offer(o, MAXQ, MAXR, &c, err, len);
	assert_null(c);
	return r;
}

static void test_sound_offer_passes_checks(void **state)
{
	struct xf_xen_offer o;
	char err[256];
	int r;

	(void)state;
	good_offer(&o);
	r = map(&o, err, sizeof(err));
	/* no Xen here: the checks passed, the grant device is missing */
	assert_true(r < 0);
	assert_non_null(strstr(err, "gntdev"));
}

static void test_hostile_fields(void **state)
{
	struct xf_xen_offer o;
	char err[256];

	(void)state;
	good_offer(&o);
	o.domid = 0;			/* dom0 itself */
	assert_int_equal(map(&o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "domid"));

	good_offer(&o);
	o.domid = 0x7ff0;		/* DOMID_FIRST_RESERVED */
	assert_int_equal(map(&o, err, sizeof(err)), -EINVAL);

	good_offer(&o);
	o.flags = 0x80;
	assert_int_equal(map(&o, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "flags"));

	good_offer(&o);
	o.layout.nr_queues = MAXQ + 1;	/* more than the config allows */
	o.npages = (uint32_t)xenfs_region_pages(&o.layout);
	assert_int_equal(map(&o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "layout"));

	good_offer(&o);
	o.layout.nr_queues = 0;
	assert_int_equal(map(&o, err, sizeof(err)), -EINVAL);

	good_offer(&o);
	o.layout.buf_size = 123;	/* not a valid buffer size */
	assert_int_equal(map(&o, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "buffer size"));

	good_offer(&o);
	o.npages += 1;			/* pages that the layout does not have */
	assert_int_equal(map(&o, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "region-pages"));

	good_offer(&o);
	o.ndir = XF_XEN_OFFER_MAX_DIR + 1;	/* past the dir_refs array */
	assert_int_equal(map(&o, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "directory"));

	good_offer(&o);
	o.ndir = 0;
	assert_int_equal(map(&o, err, sizeof(err)), -EPROTO);
}

static void test_region_over_limit(void **state)
{
	struct xf_xen_offer o;
	struct xf_conn *c = NULL;
	char err[256] = "";

	(void)state;
	good_offer(&o);
	o.layout.buf_size = 1u << 20;
	o.layout.ring_order = 6;
	o.layout.nr_queues = 4;
	o.npages = (uint32_t)xenfs_region_pages(&o.layout);
	o.ndir = (o.npages + XF_XEN_REFS_PER_PAGE - 1) / XF_XEN_REFS_PER_PAGE;
	/* 256 MiB of buffers: over a 64 MiB max-region */
	assert_int_equal(xf_xen_back_map_offer(&o, MAXQ, MAXR, &c, err,
					       sizeof(err)), -EINVAL);
	assert_null(c);
	assert_non_null(strstr(err, "larger than the backend allows"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sound_offer_passes_checks),
		cmocka_unit_test(test_hostile_fields),
		cmocka_unit_test(test_region_over_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
