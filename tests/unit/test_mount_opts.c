/*
 * Unit tests for mount.xenfs option parsing (frontend/opts.c): the
 * mount(8) helper argument shapes, every option family, defaults per
 * transport, and the errors that must end in exit 1.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#include <cmocka.h>

#include <xenfs/ring.h>

#include "opts_i.h"

#define MAXARGS 12

/* Parse a NULL-terminated argument list (argv[0] added here). */
static int parse(struct front_opts *o, ...)
{
	static char store[MAXARGS][256];
	char *argv[MAXARGS + 1];
	const char *a;
	va_list ap;
	int argc = 1;

	opts_free(o);		/* the previous parse's copies */

	snprintf(store[0], sizeof(store[0]), "mount.xenfs");
	argv[0] = store[0];
	va_start(ap, o);
	while ((a = va_arg(ap, const char *)) != NULL && argc < MAXARGS) {
		snprintf(store[argc], sizeof(store[argc]), "%s", a);
		argv[argc] = store[argc];
		argc++;
	}
	va_end(ap);
	argv[argc] = NULL;
	return opts_parse(o, argc, argv);
}

static void test_local_defaults(void **state)
{
	struct front_opts o = { 0 };

	(void)state;
	assert_int_equal(parse(&o, "shared", "/tmp", "-o",
			       "socket=/run/x.sock", NULL), 0);
	assert_string_equal(o.tag, "shared");
	assert_string_equal(o.mountpoint, "/tmp");
	assert_int_equal(o.transport, TR_LOCAL);
	assert_string_equal(o.socket, "/run/x.sock");
	assert_true(o.queues >= 2 && o.queues <= 4);
	assert_int_equal(o.buf_size, (1u << 20) + XENFS_PAGE_SIZE);
	assert_int_equal(o.ring_order, 3);
	assert_int_equal(o.ro, 0);
	assert_int_equal(o.foreground, 0);
	assert_int_equal(o.mflags, 0);
	opts_free(&o);
}

static void test_xen_defaults(void **state)
{
	struct front_opts o = { 0 };

	(void)state;
	assert_int_equal(parse(&o, "shared", "/tmp", NULL), 0);
	assert_int_equal(o.transport, TR_XEN);
	assert_int_equal(o.backend_domid, 0);
	assert_int_equal(o.buf_size, (128u << 10) + XENFS_PAGE_SIZE);
	assert_true(opts_layout_pages(o.queues, o.ring_order, o.buf_size) <=
		    GNTALLOC_DEFAULT_PAGES);
	/* the default order is lowered to fit gntalloc's limit */
	assert_int_equal(parse(&o, "t", "/tmp", "-o", "queues=16", NULL), 0);
	assert_true(opts_layout_pages(16, o.ring_order, o.buf_size) <=
		    GNTALLOC_DEFAULT_PAGES);
	assert_int_equal(parse(&o, "t", "/tmp", "-o",
			       "transport=xen,backend=7,queues=3,"
			       "ring-order=1,buf-size=64k", NULL), 0);
	assert_int_equal(o.backend_domid, 7);
	assert_int_equal(o.queues, 3);
	assert_int_equal(o.ring_order, 1);
	assert_int_equal(o.buf_size, 64u << 10);
	opts_free(&o);
}

/* mount(8) puts flags after the positional arguments, -o may repeat. */
static void test_helper_convention(void **state)
{
	struct front_opts o = { 0 };

	(void)state;
	assert_int_equal(parse(&o, "shared", "/tmp/", "-n", "-s", "-v",
			       "-o", "rw,socket=/s", "-o", "ro,noatime",
			       "-t", "xenfs", NULL), 0);
	assert_string_equal(o.mountpoint, "/tmp");
	assert_string_equal(o.socket, "/s");	/* first -o kept alive */
	assert_int_equal(o.ro, 1);
	assert_int_equal(o.verbose, 1);
	assert_int_equal(o.mflags & MS_NOATIME, MS_NOATIME);
	assert_int_equal(parse(&o, "-f", "-o", "socket=/s", "x", "/tmp",
			       NULL), 0);
	assert_int_equal(o.foreground, 1);
	assert_string_equal(o.tag, "x");
	opts_free(&o);
}

static void test_mount_flags(void **state)
{
	struct front_opts o = { 0 };

	(void)state;
	assert_int_equal(parse(&o, "t", "/tmp", "-o",
			       "socket=/s,noexec,nodev,nosuid,relatime,"
			       "sync,dirsync,lazytime,defaults,noauto,"
			       "_netdev,x-systemd.automount", NULL), 0);
	assert_int_equal(o.mflags, MS_NOEXEC | MS_NODEV | MS_NOSUID |
			 MS_RELATIME | MS_SYNCHRONOUS | MS_DIRSYNC |
			 MS_LAZYTIME);
	/* later options override earlier ones */
	assert_int_equal(parse(&o, "t", "/tmp", "-o",
			       "socket=/s,noexec,exec,sync,async,noatime,"
			       "strictatime", NULL), 0);
	assert_int_equal(o.mflags, MS_STRICTATIME);
	/* suid/dev are accepted but never granted */
	assert_int_equal(parse(&o, "t", "/tmp", "-o", "socket=/s,suid,dev",
			       NULL), 0);
	assert_int_equal(o.mflags, 0);
	opts_free(&o);
}

static void test_errors(void **state)
{
	static const char *const bad[] = {
		"bogus", "socket=", "transport=nfs", "queues=0",
		"queues=17", "queues=-1", "queues=2x", "ring-order=0",
		"ring-order=8", "buf-size=4096", "buf-size=12289",
		"buf-size=2m", "backend=abc", "ro=1", "transport=local",
		"transport=xen,socket=/s", "noexec=yes",
	};
	struct front_opts o = { 0 };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(&o, "t", "/tmp", "-o", bad[i], NULL) != -EINVAL)
			fail_msg("option '%s' accepted", bad[i]);
	assert_int_equal(parse(&o, "t", NULL), -EINVAL);
	assert_int_equal(parse(&o, "t", "/tmp", "extra", NULL), -EINVAL);
	assert_int_equal(parse(&o, "t", "/nonexistent/dir", NULL), -EINVAL);
	assert_int_equal(parse(&o, "", "/tmp", NULL), -EINVAL);
	assert_int_equal(parse(&o, "t", "/tmp", "-x", NULL), -EINVAL);
	assert_int_equal(parse(&o, "t", "/tmp", "-t", "nfs", NULL), -EINVAL);
	assert_int_equal(parse(&o, "a_tag_that_is_far_too_long_to_fit_the_"
			       "sixty_four_byte_field_of_the_hello", "/tmp",
			       NULL), -EINVAL);
	assert_int_equal(parse(&o, "-h", NULL), 1);
	opts_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_local_defaults),
		cmocka_unit_test(test_xen_defaults),
		cmocka_unit_test(test_helper_convention),
		cmocka_unit_test(test_mount_flags),
		cmocka_unit_test(test_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
