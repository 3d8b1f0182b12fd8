/*
 * mount.xenfs option parsing; see opts_i.h.  Single-threaded (main,
 * before anything starts).  Unknown options are errors (exit 1 in
 * main), as are malformed values; options that only mean something to
 * mount(8) or fstab are accepted and ignored.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <xenfs/local.h>
#include <xenfs/ring.h>

#include "opts_i.h"

void opts_free(struct front_opts *o)
{
	int i;

	for (i = 0; i < o->noptstrs; i++)
		free(o->optstrs[i]);
	o->noptstrs = 0;
}

void opts_usage(void)
{
	fprintf(stderr,
		"usage: mount.xenfs TAG MOUNTPOINT [-fnsv] [-o OPTIONS]\n"
		"options: transport=local|xen, socket=PATH, backend=DOMID,\n"
		"         queues=N, ring-order=N, buf-size=BYTES[k|m], ro, rw,\n"
		"         noexec, exec, noatime, atime, nodiratime, relatime,\n"
		"         strictatime, lazytime, sync, async, dirsync\n"
		"see mount.xenfs(8)\n");
}

static int parse_u32(const char *s, uint32_t min, uint32_t max,
		     uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

struct flag_opt {
	const char *name;
	unsigned long set, clear;
};

static const struct flag_opt flag_opts[] = {
	{ "noexec", MS_NOEXEC, 0 },
	{ "exec", 0, MS_NOEXEC },
	{ "noatime", MS_NOATIME, MS_RELATIME | MS_STRICTATIME },
	{ "atime", 0, MS_NOATIME },
	{ "nodiratime", MS_NODIRATIME, 0 },
	{ "diratime", 0, MS_NODIRATIME },
	{ "relatime", MS_RELATIME, MS_NOATIME | MS_STRICTATIME },
	{ "norelatime", 0, MS_RELATIME },
	{ "strictatime", MS_STRICTATIME, MS_NOATIME | MS_RELATIME },
	{ "nostrictatime", 0, MS_STRICTATIME },
	{ "lazytime", MS_LAZYTIME, 0 },
	{ "nolazytime", 0, MS_LAZYTIME },
	{ "sync", MS_SYNCHRONOUS, 0 },
	{ "async", 0, MS_SYNCHRONOUS },
	{ "dirsync", MS_DIRSYNC, 0 },
	/* always on by policy; accepted so fstab lines read naturally */
	{ "nosuid", MS_NOSUID, 0 },
	{ "nodev", MS_NODEV, 0 },
	{ "silent", MS_SILENT, 0 },
	{ "loud", 0, MS_SILENT },
};

/* Options that mount(8) or fstab may hand us and that mean nothing here. */
static const char *const ignored_opts[] = {
	"defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser",
	"users", "owner", "group", "nousers",
};

static int parse_one(struct front_opts *o, char *opt)
{
	char *val = strchr(opt, '=');
	size_t i;

	if (val)
		*val++ = '\0';
	if (val && !*val)
		goto bad_value;
	if (!strcmp(opt, "transport") && val) {
		if (!strcmp(val, "local"))
			o->transport = TR_LOCAL;
		else if (!strcmp(val, "xen"))
			o->transport = TR_XEN;
		else
			goto bad_value;
		return 0;
	}
	if (!strcmp(opt, "socket") && val && *val) {
		o->socket = val;
		return 0;
	}
	if (!strcmp(opt, "backend") && val) {
		if (parse_u32(val, 0, 0x7fef, &o->backend_domid))
			goto bad_value;
		return 0;
	}
	if (!strcmp(opt, "queues") && val) {
		if (parse_u32(val, 1, XENFS_MAX_QUEUES, &o->queues))
			goto bad_value;
		o->set_queues = 1;
		return 0;
	}
	if (!strcmp(opt, "ring-order") && val) {
		if (parse_u32(val, XENFS_MIN_RING_ORDER, XENFS_MAX_RING_ORDER,
			      &o->ring_order))
			goto bad_value;
		o->set_order = 1;
		return 0;
	}
	if (!strcmp(opt, "buf-size") && val) {
		if (parse_u32(val, XENFS_MIN_BUF_SIZE, XENFS_MAX_BUF_SIZE,
			      &o->buf_size) ||
		    o->buf_size % XENFS_PAGE_SIZE) {
			fprintf(stderr, "mount.xenfs: buf-size must be a "
				"multiple of %u between %u and %u\n",
				XENFS_PAGE_SIZE, XENFS_MIN_BUF_SIZE,
				XENFS_MAX_BUF_SIZE);
			return -EINVAL;
		}
		o->set_buf = 1;
		return 0;
	}
	if (val)
		goto unknown;
	if (!strcmp(opt, "ro")) {
		o->ro = 1;
		return 0;
	}
	if (!strcmp(opt, "rw")) {
		o->ro = 0;
		return 0;
	}
	if (!strcmp(opt, "suid") || !strcmp(opt, "dev")) {
		fprintf(stderr, "mount.xenfs: ignoring '%s': xenfs mounts "
			"are always nosuid,nodev\n", opt);
		return 0;
	}
	for (i = 0; i < sizeof(flag_opts) / sizeof(flag_opts[0]); i++) {
		if (!strcmp(opt, flag_opts[i].name)) {
			o->mflags &= ~flag_opts[i].clear;
			o->mflags |= flag_opts[i].set;
			return 0;
		}
	}
	for (i = 0; i < sizeof(ignored_opts) / sizeof(ignored_opts[0]); i++)
		if (!strcmp(opt, ignored_opts[i]))
			return 0;
	if (!strncmp(opt, "x-", 2) || !strncmp(opt, "comment", 7))
		return 0;
unknown:
	fprintf(stderr, "mount.xenfs: unknown option '%s%s%s'\n", opt,
		val ? "=" : "", val ? val : "");
	return -EINVAL;
bad_value:
	fprintf(stderr, "mount.xenfs: bad value '%s' for option '%s'\n",
		val, opt);
	return -EINVAL;
}

static int parse_options(struct front_opts *o, const char *s)
{
	char *tok, *save = NULL;
	char *copy;

	if (o->noptstrs == (int)(sizeof(o->optstrs) / sizeof(o->optstrs[0]))) {
		fprintf(stderr, "mount.xenfs: too many -o\n");
		return -EINVAL;
	}
	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	o->optstrs[o->noptstrs++] = copy;	/* values point into it */
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		if (parse_one(o, tok))
			return -EINVAL;
	return 0;
}

static uint32_t default_queues(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 2)
		return 2;
	return n > 4 ? 4 : (uint32_t)n;
}

uint64_t opts_layout_pages(uint32_t nq, uint32_t order, uint32_t buf)
{
	struct xenfs_layout l = { nq, order, buf, 0 };

	return xenfs_region_pages(&l);
}

/* Fill in defaults and check the combination.  0 or -EINVAL. */
static int finish_options(struct front_opts *o)
{
	if (o->transport == TR_DEFAULT)
		o->transport = o->socket ? TR_LOCAL : TR_XEN;
	if (o->transport == TR_LOCAL && !o->socket) {
		fprintf(stderr, "mount.xenfs: transport=local needs "
			"socket=PATH\n");
		return -EINVAL;
	}
	if (o->transport == TR_XEN && o->socket) {
		fprintf(stderr, "mount.xenfs: socket= is for "
			"transport=local\n");
		return -EINVAL;
	}
	if (!o->set_queues)
		o->queues = default_queues();
	if (!o->set_buf)
		o->buf_size = o->transport == TR_LOCAL ?
			      (1u << 20) + XENFS_PAGE_SIZE :
			      (128u << 10) + XENFS_PAGE_SIZE;
	if (!o->set_order) {
		o->ring_order = o->transport == TR_LOCAL ? 3 : 2;
		/* stay within gntalloc's default limit when we can */
		while (o->transport == TR_XEN &&
		       o->ring_order > XENFS_MIN_RING_ORDER &&
		       opts_layout_pages(o->queues, o->ring_order,
					 o->buf_size) > GNTALLOC_DEFAULT_PAGES)
			o->ring_order--;
	}
	/* then with smaller default buffers (many queues) */
	while (o->transport == TR_XEN && !o->set_buf &&
	       o->buf_size > XENFS_MIN_BUF_SIZE &&
	       opts_layout_pages(o->queues, o->ring_order, o->buf_size) >
	       GNTALLOC_DEFAULT_PAGES)
		o->buf_size -= XENFS_PAGE_SIZE;
	if (o->transport == TR_XEN &&
	    opts_layout_pages(o->queues, o->ring_order, o->buf_size) >
	    GNTALLOC_DEFAULT_PAGES)
		fprintf(stderr, "mount.xenfs: warning: %llu pages to share, "
			"more than gntalloc's default limit of %u\n",
			(unsigned long long)opts_layout_pages(o->queues,
				o->ring_order, o->buf_size),
			GNTALLOC_DEFAULT_PAGES);
	return 0;
}

int opts_parse(struct front_opts *o, int argc, char **argv)
{
	const char *pos[2];
	int npos = 0, c;

	memset(o, 0, sizeof(*o));
	/* GNU habit: --help anywhere asks for the usage (getopt here takes
	 * short options only, as mount(8) passes them) */
	for (c = 1; c < argc; c++) {
		if (!strcmp(argv[c], "--"))
			break;
		if (!strcmp(argv[c], "--help")) {
			opts_usage();
			return 1;
		}
	}
	optind = 0;		/* glibc: full re-initialisation (tests) */
	opterr = 0;
	/* leading '-': non-options come back as 1, in order */
	while ((c = getopt(argc, argv, "-o:fnsvht:")) != -1) {
		switch (c) {
		case 1:
			if (npos == 2) {
				fprintf(stderr, "mount.xenfs: unexpected "
					"argument '%s'\n", optarg);
				return -EINVAL;
			}
			pos[npos++] = optarg;
			break;
		case 'o':
			if (parse_options(o, optarg))
				return -EINVAL;
			break;
		case 'f':
			o->foreground = 1;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'n':	/* no mtab: we never write one */
		case 's':	/* sloppy: we are strict anyway */
			break;
		case 't':	/* mount(8) may name the type: must be ours */
			if (strcmp(optarg, "xenfs") &&
			    strcmp(optarg, "fuse.xenfs")) {
				fprintf(stderr, "mount.xenfs: cannot mount "
					"type %s\n", optarg);
				return -EINVAL;
			}
			break;
		case 'h':
			opts_usage();
			return 1;
		default:
			fprintf(stderr, "mount.xenfs: unknown flag -%c\n",
				optopt);
			return -EINVAL;
		}
	}
	if (npos != 2) {
		opts_usage();
		return -EINVAL;
	}
	o->tag = pos[0];
	if (!*o->tag || strlen(o->tag) >= XENFS_TAG_MAX) {
		fprintf(stderr, "mount.xenfs: tag must be 1 to %u "
			"characters\n", XENFS_TAG_MAX - 1);
		return -EINVAL;
	}
	if (!realpath(pos[1], o->mountpoint)) {
		fprintf(stderr, "mount.xenfs: mount point %s: %s\n", pos[1],
			strerror(errno));
		return -EINVAL;
	}
	return finish_options(o);
}
