/*
 * mount.xenfs command line and -o options: parsed into struct front_opts
 * with defaults filled in and combinations checked.  Private to
 * frontend/ (and its unit test).  Runs on the main thread before anything
 * else; input is root's command line, errors are printed to stderr.
 */
#ifndef XF_OPTS_I_H
#define XF_OPTS_I_H

#include <limits.h>
#include <stdint.h>

#define EXIT_USAGE	1
#define EXIT_MOUNTFAIL	32

/* gntalloc refuses to share more than this many pages by default */
#define GNTALLOC_DEFAULT_PAGES	1024u

enum { TR_DEFAULT, TR_LOCAL, TR_XEN };

struct front_opts {
	const char *tag;
	char mountpoint[PATH_MAX];
	int transport;
	const char *socket;
	uint32_t backend_domid;
	uint32_t queues, ring_order, buf_size;
	int set_queues, set_order, set_buf;
	int ro;
	unsigned long mflags;
	int foreground;
	int verbose;
	char *optstrs[8];	/* owned copies of each -o, values point in */
	int noptstrs;
};

/*
 * Parse argv (mount(8) helper convention: TAG MOUNTPOINT [-fnsvt] [-o
 * OPTIONS], options anywhere).  Resolves the mount point with realpath.
 * Returns 0, 1 if help was asked (usage printed), or -EINVAL after
 * printing why.  Strings in *o point into argv or into copies owned by
 * *o until opts_free().  *o need not be initialised.
 */
int opts_parse(struct front_opts *o, int argc, char **argv);
void opts_free(struct front_opts *o);
void opts_usage(void);
/* Pages of the region a layout needs (for the gntalloc limit check). */
uint64_t opts_layout_pages(uint32_t nq, uint32_t order, uint32_t buf);

#endif /* XF_OPTS_I_H */
