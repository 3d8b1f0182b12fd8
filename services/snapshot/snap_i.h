/*
 * xenfs-snapshot internals: the deduplicating repository (chunk store and
 * SQLite catalog), the capture of a domain's exports, restore.  Shared by
 * the files of services/snapshot/ and tests/unit/test_snap*.c.
 *
 * Concurrency: the CLI is single-threaded; one writer per repository at a
 * time (flock on REPO/lock, taken by snap_repo_open(..., write = 1)).
 * Trust: paths, names, xattrs and contents come from guests' exports:
 * untrusted bytes.  They are stored as blobs, never interpreted, and
 * escaped when printed.  The repository itself is root-owned and trusted
 * for layout, but every chunk is verified against its hash when read.
 * Errors: functions return 0 or -errno unless noted.
 */
#ifndef XF_SNAP_I_H
#define XF_SNAP_I_H

#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include <sys/stat.h>

#define SNAP_HASH_LEN	32	/* SHA-256 */

/* ---- chunking (chunk.c) ---- */

struct snap_chunker {
	uint32_t min, avg, max;
	uint64_t mask;		/* cut when (h & mask) == 0 */
};

/* avg is rounded down to a power of two in [4K, 64M]. */
void snap_chunker_init(struct snap_chunker *c, uint32_t avg);
/* Length of the first chunk of buf[0..len) (== len if len <= min or no
 * cut point before max; caller passes final = 1 at the end of data). */
size_t snap_chunk_cut(const struct snap_chunker *c, const uint8_t *buf,
		      size_t len);

void snap_sha256(const void *buf, size_t len, uint8_t out[SNAP_HASH_LEN]);
void snap_hex(const uint8_t *h, char out[2 * SNAP_HASH_LEN + 1]);

/* ---- repository (repo.c) ---- */

struct snap_repo {
	char *dir;
	int dirfd;
	int lockfd;
	sqlite3 *db;
	struct snap_chunker ck;
	sqlite3_stmt *q_known, *q_insert, *q_where, *q_cget, *q_cput;
	void *cctx, *dctx;	/* ZSTD contexts, reused */
	uint8_t *rbuf;		/* read buffer of snap_store_fd, ck.max */
	int pack_fd;		/* pack being appended, or -1 */
	uint32_t pack_id;
	uint64_t pack_off;
	int rpack_fd;		/* pack being read (cache of one) */
	uint32_t rpack_id;
	/* stats of the current run */
	uint64_t new_chunks, new_bytes, new_cbytes, dedup_chunks;
};

int snap_repo_open(const char *dir, uint32_t chunk_avg, int write,
		   struct snap_repo **out);
void snap_repo_close(struct snap_repo *r);
int snap_repo_begin(struct snap_repo *r);
int snap_repo_commit(struct snap_repo *r);	/* syncfs + COMMIT */
void snap_repo_rollback(struct snap_repo *r);
int snap_exec(struct snap_repo *r, const char *sql);

/* Store one chunk (compressed) unless present; hash written to out. */
int snap_chunk_put(struct snap_repo *r, const uint8_t *data, size_t len,
		   uint8_t out[SNAP_HASH_LEN]);
/* The stored record of a chunk (hash, length, kind, bytes), checked
 * against the catalog; *pack: the pack it is in. */
int snap_chunk_raw(struct snap_repo *r, const uint8_t hash[SNAP_HASH_LEN],
		   uint8_t **rec, size_t *reclen, uint32_t *pack);
/* Drop chunks not in TEMP table live(hash), repack what they shared a
 * pack with, remove unknown packs.  Inside a transaction. */
int snap_repo_gc(struct snap_repo *r, uint64_t *freed_chunks,
		 uint64_t *freed_bytes);
/* Read and verify a chunk into a malloc'ed buffer. -EBADMSG: corrupt. */
int snap_chunk_get(struct snap_repo *r, const uint8_t hash[SNAP_HASH_LEN],
		   uint8_t **data, size_t *len);

/*
 * Content: a file's data as a list of extents (u64 offset, u32 length,
 * hash), holes between them.  Returned as a content row id (identical
 * content -> the same id).
 */
struct snap_extents {
	uint8_t *buf;		/* records of SNAP_EXT_REC bytes */
	size_t n, cap;
};
#define SNAP_EXT_REC	(8 + 4 + SNAP_HASH_LEN)
int snap_extents_add(struct snap_extents *e, uint64_t off, uint32_t len,
		     const uint8_t hash[SNAP_HASH_LEN]);
/* Chunk and store the file open on fd (holes kept via SEEK_DATA). */
int snap_store_fd(struct snap_repo *r, int fd, uint64_t size,
		  int64_t *content_id, uint64_t *stored);
int snap_content_id(struct snap_repo *r, const struct snap_extents *e,
		    uint64_t size, int64_t *id);
/* Write content id to fd (fd positioned anywhere; file truncated to size
 * afterwards, holes left unwritten). */
int snap_content_write(struct snap_repo *r, int64_t id, int fd);

/* xattrs of an open path (lgetxattr family) as a sorted blob:
 * repeated (u16 name_len, u32 value_len, name, value). */
int snap_xattrs_read(const char *path, int follow, uint8_t **blob,
		     size_t *len);
int snap_xattrs_read_fd(int fd, uint8_t **blob, size_t *len);
int snap_xattrs_apply(const char *path, const uint8_t *blob, size_t len);

/* ---- taking a snapshot (capture.c) ---- */

struct snap_export {
	const char *tag;
	const char *path;
};

struct snap_take_opts {
	const char *vm;
	const struct snap_export *exports;
	int nexports;
	const char *label;		/* or NULL */
	const char *ctl_socket;		/* xenfsd's control socket */
	const char *journal_dir;	/* or NULL: no journal, full walks */
	const char *hook;		/* run as HOOK pre|post VM, or NULL */
	uint64_t freeze_copy_max;	/* bytes copied while frozen (round 0) */
	unsigned freeze_timeout_ms;
	int verify_walk;		/* compare every object (full walk) */
	int no_freeze;			/* admin says nothing writes */
	int no_reflink;
};

struct snap_take_result {
	int64_t id;
	int full;
	int64_t freeze_ms;
	uint64_t visited, changed, read_bytes, new_bytes, base_seq;
	uint64_t reflinked;	/* files cloned while frozen */
	int rounds;		/* freezes (2: something raced) */
};

int snap_take(struct snap_repo *repo, const struct snap_take_opts *o,
	      struct snap_take_result *res);
/* One control-socket request; body or error text into out. */
int snap_ctl(const char *sock, const char *req, char *out, size_t outlen);
/* openat2 of rel below root: no symlinks, no magic links, not out of
 * root (RESOLVE_BENEATH); O_CLOEXEC | O_NOFOLLOW added.  fd or -errno.
 * Used by restore.c too. */
int snap_open_beneath(int root, const char *rel, int flags);

/* ---- restore (restore.c) ---- */

struct snap_restore_opts {
	const char *vm;
	int64_t snap;
	const char *export_tag;	/* NULL: every export of the snapshot */
	const char *path;	/* NULL or "/": whole tree, else one subtree */
	const char *to;		/* target directory */
	int in_place;		/* make `to` equal (remove what is not in it) */
	int multi;		/* put each export under to/TAG */
};
int snap_restore(struct snap_repo *repo, const struct snap_restore_opts *o);

/* ---- progress (main.c) ---- */
void snap_progress(uint64_t done, uint64_t total, uint64_t bytes,
		   const char *what);
void snap_progress_end(void);
extern int snap_quiet;

/* ---- prune selection (prune.c: pure, unit tested) ---- */
struct snap_info {
	int64_t id;
	int64_t time_ns;
	int keep;
};
/* Marks keep for the keep_last newest and the newest of each of the
 * keep_daily most recent days (UTC) that have a snapshot.  v sorted by
 * id ascending (ids grow with time). */
void snap_prune_select(struct snap_info *v, size_t n, unsigned keep_last,
		       unsigned keep_daily);

#endif /* XF_SNAP_I_H */
