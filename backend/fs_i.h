/*
 * Private interface between the files of the backend's filesystem layer
 * (backend/fs_*.c).  Nothing outside backend/fs_*.c includes this.
 *
 * Concurrency: one struct fs_session is shared by every queue worker of a
 * connection.  Three locks, never nested except in the order
 * ilock -> (nothing), flock -> (nothing), dlock (a dir handle's) -> ilock:
 *   s->ilock   the inode table (both hashes, LRU, per-inode counters and
 *              the per-inode POSIX lock owners);
 *   s->flock   the file-handle table;
 *   f->dlock   one directory handle's getdents buffer.
 * A handler holds a reference (inode_get/file_get) on everything it uses;
 * a referenced inode keeps its descriptor open (the LRU skips it) and is
 * never freed, so syscalls run without locks held.
 *
 * Trust: everything in struct fs_req except wdata/out is a private copy;
 * handlers still validate every length and name (the guest is hostile).
 */
#ifndef XF_BACKEND_FS_I_H
#define XF_BACKEND_FS_I_H

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fs.h"

#define FS_ENTRY_TIMEOUT	1	/* seconds, entries and attributes */
#define FS_MIN_MINOR		12	/* oldest FUSE 7.x we speak */
#define FS_DEFAULT_CACHED	4096	/* if params->max_inodes_cached == 0 */
#define FS_MAX_DEFERRED		16	/* blocked SETLKW threads per session */
#define FS_HDR			sizeof(struct fuse_out_header)

#define fs_container_of(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))

/* ---- a small intrusive hash table keyed by u64 ---- */

struct fs_hnode {
	struct fs_hnode *next;
	uint64_t key;
};

struct fs_htab {
	struct fs_hnode **b;
	size_t nb;			/* power of two */
	size_t n;
};

int fs_htab_init(struct fs_htab *t, size_t nb);
void fs_htab_destroy(struct fs_htab *t);
struct fs_hnode *fs_htab_get(const struct fs_htab *t, uint64_t key);
/* First node after `prev` (or the first of the chain) with this key. */
struct fs_hnode *fs_htab_next(const struct fs_htab *t, struct fs_hnode *prev,
			      uint64_t key);
void fs_htab_put(struct fs_htab *t, struct fs_hnode *n);
void fs_htab_del(struct fs_htab *t, struct fs_hnode *n);

/* ---- inodes (fs_inode.c) ---- */

struct fs_plock;			/* fs_lock.c: one POSIX lock owner */

struct fs_inode {
	struct fs_hnode hn;		/* key nodeid, in s->inodes */
	struct fs_hnode hid;		/* key fs_inode_idkey(dev, ino), s->byid */
	uint64_t nodeid;
	dev_t dev;
	ino_t ino;
	mode_t type;			/* S_IFMT bits */
	int fd;				/* O_PATH, or -1 when evicted */
	int pinned;			/* no file handle: fd never evicted */
	struct file_handle *fh;		/* NULL if pinned */
	uint32_t generation;		/* from the handle if we could tell */
	uint64_t nlookup;		/* the kernel's references */
	unsigned refs;			/* handlers and file handles using it */
	struct fs_inode *lru_prev, *lru_next;	/* open, evictable fds */
	int on_lru;
	struct fs_plock *plocks;	/* under s->ilock */
	/* close-to-open cache state (fs_data.c), under s->ilock: the
	 * file's mtime, ctime and size at this session's last OPEN */
	int c2o_valid;
	struct timespec c2o_mtime, c2o_ctime;
	off_t c2o_size;
};

struct fs_file {
	struct fs_hnode hn;		/* key fh, in s->files */
	int fd;				/* opened (not O_PATH) descriptor */
	int is_dir;
	unsigned refs;			/* under s->flock */
	struct fs_inode *ino;		/* reference held */
	atomic_int written;		/* WRITE since the last MODIFY event */
	/* directories only, under dlock */
	pthread_mutex_t dlock;
	char *dbuf;
	size_t dlen, dpos;
	int64_t dnext;			/* offset of the entry at dpos */
};

struct fs_deferred;			/* fs_lock.c: a blocked SETLKW */

struct fs_session {
	char *domain;
	char *tag;
	char *root_path;		/* readlink of the root fd, for events */
	size_t root_len;
	int root_fd;			/* export_fd, O_PATH directory */
	int proc_fd;			/* /proc/self/fd, or -1 */
	int mount_fd;			/* real fd of the root, for handles */
	int readonly;
	uint32_t max_write;
	uint32_t max_cached;
	int use_handles;		/* name_to_handle_at + open_by_handle_at work */
	int root_mnt_id;
	const struct xf_policy *policy;

	atomic_int initialized;
	uint32_t proto_minor;

	pthread_mutex_t ilock;
	struct fs_htab inodes;		/* by nodeid */
	struct fs_htab byid;		/* by dev/ino */
	struct fs_inode *lru_head, *lru_tail;
	uint64_t ncached;		/* evictable fds open */
	uint64_t npinned;		/* pinned fds open */
	uint64_t ninodes;
	uint64_t next_nodeid;
	struct fs_inode *root;

	pthread_mutex_t flock;
	struct fs_htab files;
	uint64_t next_fh;
	uint64_t nfiles;

	pthread_mutex_t dfr_lock;
	pthread_cond_t dfr_cond;
	struct fs_deferred *dfr;	/* blocked SETLKW threads */
	unsigned ndfr;

	atomic_uint_fast64_t st_ops, st_read, st_written, st_filefds;

	/* fs_policy.c: identity map and quota accounting */
	_Atomic(const struct xf_idmap *) idmap;	/* NULL: identity */
	struct xf_idmap *old_maps;	/* replaced maps, freed with s */
	struct fs_acct *_Atomic acct;	/* NULL: no quota; swapped by reload */
};

/* fs_policy.c */
struct xf_idmap;
const struct xf_idmap *fs_map(struct fs_session *s);
void fs_policy_free(struct fs_session *s);
/* 0 or -EDQUOT: may bytes/inodes more be used (only positive parts)? */
int fs_quota_check(struct fs_session *s, int64_t bytes, int64_t inodes);
void fs_quota_charge(struct fs_session *s, int64_t bytes, int64_t inodes);
/* Bytes that may still be added (INT64_MAX without a quota). */
int64_t fs_quota_room(struct fs_session *s);
void fs_quota_stats(struct fs_session *s, struct fs_stats *st);
int64_t fs_quota_entry_bytes(int dirfd, const char *name, int *exists);
int fs_quota_scan(int root_fd, int64_t *bytes, int64_t *inodes);

/* A handler: returns a reply length, FS_NO_REPLY or FS_DEFERRED. */
typedef uint32_t (*fs_op_fn)(struct fs_session *s, struct fs_req *req);

/* fs_session.c: replies.  All reply frames are built here. */
uint32_t fs_reply_err(struct fs_req *req, int err);	/* err: +-errno */
/* Header plus one argument copied from private memory. */
uint32_t fs_reply(struct fs_req *req, const void *arg, size_t len);
/* Header for `len` payload bytes the handler already wrote at out+FS_HDR. */
uint32_t fs_reply_len(struct fs_req *req, size_t len);
/* Write `len` bytes at offset `off` of the payload; -ERANGE if beyond. */
int fs_out_put(struct fs_req *req, size_t off, const void *p, size_t len);
static inline size_t fs_out_room(const struct fs_req *req)
{
	return req->outcap > FS_HDR ? req->outcap - FS_HDR : 0;
}

/* Names: 0 if `name` (len bytes, no NUL counted) is a valid component. */
int fs_name_ok(const char *name, size_t len);
/* Split arg into `n` NUL-terminated strings, each validated as a name
 * when `names` bit i is set; -EINVAL/-ENAMETOOLONG otherwise. */
int fs_args_strings(const void *arg, uint32_t arglen, const char **out,
		    unsigned n, unsigned names);

/* Credentials of the caller, for creating calls; thread-local switch. */
struct fs_cred {
	uid_t uid;
	gid_t gid;
	mode_t umask;
	int changed;
};
int fs_cred_enter(struct fs_session *s, struct fs_cred *c,
		  const struct fuse_in_header *in, int set_umask,
		  uint32_t umask);
void fs_cred_leave(struct fs_cred *c);

/* Attributes. */
void fs_fill_attr(struct fs_session *s, struct fuse_attr *a,
		  const struct stat *st);
void fs_fill_entry(struct fs_session *s, struct fuse_entry_out *e,
		   uint64_t nodeid, const struct stat *st);
size_t fs_entry_size(const struct fs_session *s);
size_t fs_attr_out_size(const struct fs_session *s);

/* Events: path of an fd relative to the export ("/" for the root). */
int fs_fd_path(struct fs_session *s, int fd, char *buf, size_t len);
void fs_event_fd(struct fs_session *s, enum fs_event_op op, uint32_t flags,
		 int fd, const char *name, const char *path2);
void fs_event_stat(struct fs_session *s, enum fs_event_op op, uint32_t flags,
		   const struct stat *st, uint32_t gen, const char *path,
		   const char *path2);

/* Open an inode's fd as a real file ("/proc/self/fd/N" re-open). */
int fs_reopen(struct fs_session *s, struct fs_inode *ino, int flags);
/* "/proc/self/fd/N" path for path-only syscalls (xattrs, truncate). */
void fs_proc_path(int fd, char *buf, size_t len);

/* fs_inode.c */
int fs_inodes_init(struct fs_session *s, int root_fd);
void fs_inodes_free(struct fs_session *s);
/* Reference nodeid with its fd open; NULL and *err = -ESTALE/-EINVAL. */
struct fs_inode *fs_inode_get(struct fs_session *s, uint64_t nodeid, int *err);
void fs_inode_put(struct fs_session *s, struct fs_inode *ino);
void fs_inode_ref(struct fs_session *s, struct fs_inode *ino);
/*
 * Make (or find) the inode of O_PATH fd `fd` (consumed) with stat st,
 * add one lookup, and return it referenced (caller puts it).
 */
int fs_inode_add(struct fs_session *s, int fd, const struct stat *st,
		 struct fs_inode **out);
/* Drop n lookups; frees the inode when unused. */
void fs_inode_forget(struct fs_session *s, uint64_t nodeid, uint64_t n);
/* Look `name` up under `parent` (O_PATH, no symlink followed). */
int fs_lookup_fd(struct fs_session *s, int dirfd, const char *name);

/* fs_data.c: file handles. */
int fs_file_new(struct fs_session *s, struct fs_inode *ino, int fd,
		int is_dir, uint64_t *fh);
struct fs_file *fs_file_get(struct fs_session *s, uint64_t fh);
void fs_file_put(struct fs_session *s, struct fs_file *f);
void fs_files_free(struct fs_session *s);
/* Open flags a guest may pass to the backend's own open. */
int fs_open_flags(uint32_t guest, int allow_create);
/* Emit one MODIFY for a file written since its last one. */
void fs_file_modified(struct fs_session *s, struct fs_file *f);

/* fs_lock.c */
void fs_plocks_free(struct fs_inode *ino);
void fs_plock_drop_owner(struct fs_session *s, struct fs_inode *ino,
			 uint64_t owner);
void fs_locks_init_once(void);

/* Handlers, by family. */
uint32_t fs_op_lookup(struct fs_session *, struct fs_req *);
uint32_t fs_op_forget(struct fs_session *, struct fs_req *);
uint32_t fs_op_batch_forget(struct fs_session *, struct fs_req *);
uint32_t fs_op_mkdir(struct fs_session *, struct fs_req *);
uint32_t fs_op_mknod(struct fs_session *, struct fs_req *);
uint32_t fs_op_symlink(struct fs_session *, struct fs_req *);
uint32_t fs_op_readlink(struct fs_session *, struct fs_req *);
uint32_t fs_op_unlink(struct fs_session *, struct fs_req *);
uint32_t fs_op_rmdir(struct fs_session *, struct fs_req *);
uint32_t fs_op_rename(struct fs_session *, struct fs_req *);
uint32_t fs_op_rename2(struct fs_session *, struct fs_req *);
uint32_t fs_op_link(struct fs_session *, struct fs_req *);
uint32_t fs_op_create(struct fs_session *, struct fs_req *);
uint32_t fs_op_tmpfile(struct fs_session *, struct fs_req *);

uint32_t fs_op_open(struct fs_session *, struct fs_req *);
uint32_t fs_op_read(struct fs_session *, struct fs_req *);
uint32_t fs_op_write(struct fs_session *, struct fs_req *);
uint32_t fs_op_flush(struct fs_session *, struct fs_req *);
uint32_t fs_op_release(struct fs_session *, struct fs_req *);
uint32_t fs_op_fsync(struct fs_session *, struct fs_req *);
uint32_t fs_op_fallocate(struct fs_session *, struct fs_req *);
uint32_t fs_op_lseek(struct fs_session *, struct fs_req *);
uint32_t fs_op_copy_file_range(struct fs_session *, struct fs_req *);
uint32_t fs_op_opendir(struct fs_session *, struct fs_req *);
uint32_t fs_op_readdir(struct fs_session *, struct fs_req *);
uint32_t fs_op_readdirplus(struct fs_session *, struct fs_req *);
uint32_t fs_op_releasedir(struct fs_session *, struct fs_req *);
uint32_t fs_op_fsyncdir(struct fs_session *, struct fs_req *);
uint32_t fs_op_statfs(struct fs_session *, struct fs_req *);
uint32_t fs_op_syncfs(struct fs_session *, struct fs_req *);

uint32_t fs_op_getattr(struct fs_session *, struct fs_req *);
uint32_t fs_op_setattr(struct fs_session *, struct fs_req *);
uint32_t fs_op_access(struct fs_session *, struct fs_req *);
uint32_t fs_op_setxattr(struct fs_session *, struct fs_req *);
uint32_t fs_op_getxattr(struct fs_session *, struct fs_req *);
uint32_t fs_op_listxattr(struct fs_session *, struct fs_req *);
uint32_t fs_op_removexattr(struct fs_session *, struct fs_req *);

uint32_t fs_op_getlk(struct fs_session *, struct fs_req *);
uint32_t fs_op_setlk(struct fs_session *, struct fs_req *);
uint32_t fs_op_setlkw(struct fs_session *, struct fs_req *);
uint32_t fs_op_interrupt(struct fs_session *, struct fs_req *);

#endif /* XF_BACKEND_FS_I_H */
