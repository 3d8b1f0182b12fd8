/*
 * Small I/O helpers shared by the daemons and tools: complete writes and
 * positioned reads that retry on EINTR and short transfers, and the
 * parents of a path made as mkdir -p would.
 *
 * Concurrency: stateless; safe from any thread on any descriptor the
 * caller owns.  Trust: none; they move bytes and do not interpret them.
 * Not linked into plugins (they do not link libxenfs.a).
 */
#ifndef XENFS_LIB_UTIL_H
#define XENFS_LIB_UTIL_H

#include <stddef.h>
#include <sys/types.h>

/* write(2) all len bytes of buf to fd, retrying on EINTR and short
 * writes.  0 or -errno. */
int xf_write_all(int fd, const void *buf, size_t len);

/* pread(2) up to len bytes at off into buf, retrying on EINTR and short
 * reads; stops early only at end of file.  Bytes read (< len at EOF) or
 * -errno. */
ssize_t xf_pread_full(int fd, void *buf, size_t len, off_t off);

/* mkdir(2) every parent directory of path (each prefix that ends before
 * a '/', the last component excluded) with mode; existing ones are fine.
 * 0, -ENAMETOOLONG (path >= PATH_MAX) or -errno. */
int xf_mkdir_parents(const char *path, mode_t mode);

#endif
