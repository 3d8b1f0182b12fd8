/*
 * xf-renameat2: a tiny test tool that calls renameat2(2) with the flags
 * coreutils on bookworm cannot pass (RENAME_EXCHANGE, RENAME_NOREPLACE,
 * RENAME_WHITEOUT), so integration tests can exercise them through a
 * XenFS mount.
 *
 *   xf-renameat2 [-x|--exchange] [-n|--noreplace] [-w|--whiteout] OLD NEW
 *
 * Exit status 0 on success; on failure it prints "xf-renameat2: OLD -> NEW:
 * <strerror> (errno N)" and exits 1, so a test can match the errno.  Usage
 * errors exit 2.  Single-threaded; it trusts nothing but its arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE	(1u << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE		(1u << 1)
#endif
#ifndef RENAME_WHITEOUT
#define RENAME_WHITEOUT		(1u << 2)
#endif

static void
usage(void)
{
	fprintf(stderr, "usage: xf-renameat2 [-x|--exchange] [-n|--noreplace]"
	    " [-w|--whiteout] OLD NEW\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	unsigned int flags = 0;
	int i;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-x") || !strcmp(argv[i], "--exchange"))
			flags |= RENAME_EXCHANGE;
		else if (!strcmp(argv[i], "-n") ||
		    !strcmp(argv[i], "--noreplace"))
			flags |= RENAME_NOREPLACE;
		else if (!strcmp(argv[i], "-w") ||
		    !strcmp(argv[i], "--whiteout"))
			flags |= RENAME_WHITEOUT;
		else if (!strcmp(argv[i], "--")) {
			i++;
			break;
		} else
			usage();
	}
	if (argc - i != 2)
		usage();

	/* glibc 2.36 has renameat2(); the raw syscall avoids depending on it. */
	if (syscall(SYS_renameat2, AT_FDCWD, argv[i], AT_FDCWD, argv[i + 1],
	    flags) == -1) {
		int e = errno;

		fprintf(stderr, "xf-renameat2: %s -> %s: %s (errno %d)\n",
		    argv[i], argv[i + 1], strerror(e), e);
		return 1;
	}
	return 0;
}
