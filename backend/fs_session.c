/*
 * The filesystem layer's session: creation and teardown, FUSE INIT and
 * DESTROY, the dispatch table, the single place where reply frames are
 * built and errors are translated for the wire, and helpers shared by the
 * operation families (name validation, caller credentials, attributes,
 * events).
 *
 * Concurrency: fs_handle() runs on every queue worker of a connection at
 * once.  The session's own fields are immutable after fs_session_new()
 * except `initialized`/`proto_minor` (set once by INIT, read atomically)
 * and the atomic counters; tables have their own locks (fs_i.h).
 * Credentials are switched per thread (setfsuid/setfsgid are per-thread
 * syscalls) and the umask is made per thread with unshare(CLONE_FS) the
 * first time a worker creates something.
 *
 * Trust: the request header and arguments are private copies but hostile;
 * every length is checked against the opcode's minimum before a handler
 * runs.  req->out is shared memory and is only ever written.
 */
#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs_i.h"
#include "idmap.h"
#include "log.h"

#define FS_MAX_MAX_PAGES	256	/* the kernel's FUSE_MAX_MAX_PAGES */

static struct log_ratelimit fs_rl = LOG_RATELIMIT_INIT;

/* ---- replies: the one place frames are built ---- */

/*
 * Translate an error for the wire.  Anything outside 1..4095 is a bug of
 * ours and becomes EIO; ENOSYS from a host syscall would make the guest
 * kernel disable the whole operation, so only fs_handle's "unknown
 * opcode" path may send it (it passes -ENOSYS | FS_ENOSYS_OK).
 */
#define FS_ENOSYS_OK	0x10000

static int fs_wire_errno(int err)
{
	int ok_nosys = 0;

	if (err < 0)
		err = -err;
	if (err & FS_ENOSYS_OK) {
		ok_nosys = 1;
		err &= ~FS_ENOSYS_OK;
	}
	if (err <= 0 || err >= 4096)
		return EIO;
	if (err == ENOSYS && !ok_nosys)
		return EOPNOTSUPP;
	return err;
}

static uint32_t fs_put_header(struct fs_req *req, int err, size_t len)
{
	struct fuse_out_header oh;

	oh.len = (uint32_t)(FS_HDR + len);
	oh.error = err ? -fs_wire_errno(err) : 0;
	oh.unique = req->in.unique;
	memcpy(req->out, &oh, sizeof(oh));
	return oh.len;
}

uint32_t fs_reply_err(struct fs_req *req, int err)
{
	if (req->outcap < FS_HDR)
		return FS_NO_REPLY;	/* cannot happen: conn guarantees it */
	return fs_put_header(req, err ? err : EIO, 0);
}

uint32_t fs_reply_len(struct fs_req *req, size_t len)
{
	if (len > fs_out_room(req)) {
		log_warnx_rl(&fs_rl, "fs: reply of %zu bytes exceeds %u",
			     len, req->outcap);
		return fs_reply_err(req, EIO);
	}
	return fs_put_header(req, 0, len);
}

uint32_t fs_reply(struct fs_req *req, const void *arg, size_t len)
{
	if (len > fs_out_room(req))
		return fs_reply_len(req, len);
	if (len)
		memcpy((char *)req->out + FS_HDR, arg, len);
	return fs_put_header(req, 0, len);
}

int fs_out_put(struct fs_req *req, size_t off, const void *p, size_t len)
{
	size_t room = fs_out_room(req);

	if (off > room || len > room - off)
		return -ERANGE;
	memcpy((char *)req->out + FS_HDR + off, p, len);
	return 0;
}

/* ---- names ---- */

int fs_name_ok(const char *name, size_t len)
{
	if (len == 0)
		return -EINVAL;
	if (len > NAME_MAX)
		return -ENAMETOOLONG;
	if (memchr(name, '\0', len) || memchr(name, '/', len))
		return -EINVAL;
	if ((len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		return -EINVAL;
	return 0;
}

int fs_args_strings(const void *arg, uint32_t arglen, const char **out,
		    unsigned n, unsigned names)
{
	const char *p = arg, *end;
	unsigned i;
	int rc;

	if (p == NULL)		/* no argument at all (found by fuzz_fuse) */
		return -EINVAL;
	end = p + arglen;
	for (i = 0; i < n; i++) {
		const char *z;

		if (p >= end)
			return -EINVAL;
		z = memchr(p, '\0', (size_t)(end - p));
		if (z == NULL)
			return -EINVAL;
		if (names & (1u << i)) {
			if ((rc = fs_name_ok(p, (size_t)(z - p))) != 0)
				return rc;
		} else if (z == p || (size_t)(z - p) >= PATH_MAX) {
			return z == p ? -EINVAL : -ENAMETOOLONG;
		}
		out[i] = p;
		p = z + 1;
	}
	/* The kernel sends exactly the strings; trailing bytes are hostile. */
	if (p != end)
		return -EINVAL;
	return 0;
}

/* ---- credentials ---- */

static __thread int fs_thread_fs_private = -1;

/*
 * setfsuid() to a non-zero uid drops this thread's filesystem
 * capabilities.  The guest kernel has already checked the caller's
 * permission (default_permissions, forced on by FUSE_POSIX_ACL) with the
 * caller's supplementary groups, which we do not know: without
 * CAP_DAC_OVERRIDE a user creating in a group-writable directory of a
 * supplementary group (a setgid project directory) would fail here.  So
 * only CAP_DAC_OVERRIDE is raised again (capset is per thread); ownership
 * and setgid inheritance still follow fsuid/fsgid, and CAP_FSETID stays
 * off so the kernel strips S_ISGID exactly as for that user.  Setting
 * fsuid back to 0 restores the rest from the permitted set.
 */
static void fs_cred_keep_dac(void)
{
	struct __user_cap_header_struct h;
	struct __user_cap_data_struct d[2];

	memset(&h, 0, sizeof(h));
	h.version = _LINUX_CAPABILITY_VERSION_3;
	h.pid = 0;
	if (syscall(SYS_capget, &h, d) != 0)
		return;
	if (!(d[0].permitted & (1u << CAP_DAC_OVERRIDE)))
		return;
	d[0].effective |= 1u << CAP_DAC_OVERRIDE;
	(void)syscall(SYS_capset, &h, d);	/* best effort, see above */
}

/*
 * Switch this thread's fsuid/fsgid (and umask) to the caller's for a
 * creating call.  The umask is per process unless the thread unshared its
 * fs_struct, which we do the first time; if that fails the caller's umask
 * is applied to the mode by hand (set_umask == 0 case of the handlers).
 * Returns 0 or -errno; on error nothing is changed.
 */
int fs_cred_enter(struct fs_session *s, struct fs_cred *c,
		  const struct fuse_in_header *in, int set_umask,
		  uint32_t umask_in)
{
	const struct xf_idmap *m = fs_map(s);
	uid_t uid = in->uid;
	gid_t gid = in->gid;

	c->changed = 0;
	c->umask = (mode_t)-1;
	if (set_umask) {
		if (fs_thread_fs_private < 0)
			fs_thread_fs_private = unshare(CLONE_FS) == 0;
		if (fs_thread_fs_private)
			c->umask = umask(umask_in & 0777);
	}
	/* (uid_t)-1 would only query; creating as root is not what was meant */
	if (uid == (uid_t)-1)
		uid = 65534;
	if (gid == (gid_t)-1)
		gid = 65534;
	/* squash and map: the host ids this guest caller acts as */
	uid = xf_idmap_caller_uid(m, uid);
	gid = xf_idmap_caller_gid(m, gid);
	c->gid = (gid_t)syscall(SYS_setfsgid, gid);
	if ((gid_t)syscall(SYS_setfsgid, -1) != gid) {
		(void)syscall(SYS_setfsgid, c->gid);
		goto fail;
	}
	c->uid = (uid_t)syscall(SYS_setfsuid, uid);
	if ((uid_t)syscall(SYS_setfsuid, -1) != uid) {
		(void)syscall(SYS_setfsuid, c->uid);
		(void)syscall(SYS_setfsgid, c->gid);
		goto fail;
	}
	c->changed = 1;
	if (uid != 0)
		fs_cred_keep_dac();
	return 0;
fail:
	if (c->umask != (mode_t)-1)
		umask(c->umask);
	return -EPERM;
}

void fs_cred_leave(struct fs_cred *c)
{
	if (c->changed) {
		(void)syscall(SYS_setfsuid, c->uid);
		(void)syscall(SYS_setfsgid, c->gid);
		c->changed = 0;
	}
	if (c->umask != (mode_t)-1)
		umask(c->umask);
}

/* ---- attributes ---- */

void fs_fill_attr(struct fs_session *s, struct fuse_attr *a,
		  const struct stat *st)
{
	const struct xf_idmap *m = fs_map(s);

	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	/* ownership as the guest sees it; unmapped hosts ids: 65534 */
	a->uid = xf_idmap_show_uid(m, st->st_uid);
	a->gid = xf_idmap_show_gid(m, st->st_gid);
	a->rdev = (uint32_t)st->st_rdev;
	a->blksize = (uint32_t)st->st_blksize;
}

void fs_fill_entry(struct fs_session *s, struct fuse_entry_out *e,
		   uint64_t nodeid, const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = nodeid;
	e->generation = 0;
	e->entry_valid = FS_ENTRY_TIMEOUT;
	e->attr_valid = FS_ENTRY_TIMEOUT;
	fs_fill_attr(s, &e->attr, st);
}

size_t fs_entry_size(const struct fs_session *s)
{
	return s->proto_minor < 9 ? FUSE_COMPAT_ENTRY_OUT_SIZE :
	    sizeof(struct fuse_entry_out);
}

size_t fs_attr_out_size(const struct fs_session *s)
{
	return s->proto_minor < 9 ? FUSE_COMPAT_ATTR_OUT_SIZE :
	    sizeof(struct fuse_attr_out);
}

/* ---- paths for events and path-only syscalls ---- */

void fs_proc_path(int fd, char *buf, size_t len)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

int fs_reopen(struct fs_session *s, struct fs_inode *ino, int flags)
{
	char name[32];
	int fd;

	flags = (flags & ~(O_CREAT | O_EXCL | O_NOFOLLOW | O_PATH |
	    O_DIRECT | O_NOCTTY)) | O_CLOEXEC;
	if (s->proc_fd >= 0) {
		snprintf(name, sizeof(name), "%d", ino->fd);
		fd = openat(s->proc_fd, name, flags);
	} else if (ino->fh != NULL) {
		fd = open_by_handle_at(s->mount_fd, ino->fh, flags);
	} else {
		errno = EOPNOTSUPP;
		fd = -1;
	}
	return fd < 0 ? -errno : fd;
}

int fs_fd_path(struct fs_session *s, int fd, char *buf, size_t len)
{
	char proc[32], tmp[PATH_MAX + 1];
	ssize_t n;
	const char *rel;

	fs_proc_path(fd, proc, sizeof(proc));
	n = readlink(proc, tmp, sizeof(tmp) - 1);
	if (n < 0)
		return -errno;
	tmp[n] = '\0';
	if (strncmp(tmp, s->root_path, s->root_len) == 0 &&
	    (tmp[s->root_len] == '/' || tmp[s->root_len] == '\0'))
		rel = tmp + s->root_len;
	else
		rel = "";
	/* the root itself (or a root_path of "/") */
	if (s->root_len == 1 && s->root_path[0] == '/')
		rel = tmp;
	if (*rel == '\0')
		rel = "/";
	if ((size_t)snprintf(buf, len, "%s", rel) >= len)
		return -ENAMETOOLONG;
	return 0;
}

void fs_event_stat(struct fs_session *s, enum fs_event_op op, uint32_t flags,
		   const struct stat *st, uint32_t gen, const char *path,
		   const char *path2)
{
	struct fs_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.op = op;
	ev.flags = flags;
	ev.path = path;
	ev.path2 = path2;
	ev.generation = gen;
	if (st != NULL) {
		ev.dev = st->st_dev;
		ev.ino = st->st_ino;
		ev.size = (uint64_t)st->st_size;
		ev.mtime_sec = st->st_mtim.tv_sec;
		ev.mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
		ev.mode = st->st_mode;
	}
	fs_emit_event(s, &ev);
}

/*
 * Event for the object `name` in directory fd (or the object fd itself
 * when name is NULL): path from the fd, attributes from fstat after the op.
 */
void fs_event_fd(struct fs_session *s, enum fs_event_op op, uint32_t flags,
		 int fd, const char *name, const char *path2)
{
	char path[PATH_MAX + NAME_MAX + 2];
	struct stat st;
	int have;

	if (fs_fd_path(s, fd, path, sizeof(path)) != 0)
		snprintf(path, sizeof(path), "/");
	if (name != NULL) {
		size_t l = strlen(path);

		snprintf(path + l, sizeof(path) - l, "%s%s",
			 (l == 1) ? "" : "/", name);
		have = fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	} else {
		have = fstat(fd, &st) == 0;
	}
	fs_event_stat(s, op, flags, have ? &st : NULL, 0, path, path2);
}

/* ---- INIT / DESTROY ---- */

#define FS_WANT_FLAGS (FUSE_ASYNC_READ | FUSE_PARALLEL_DIROPS | \
	FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS | \
	FUSE_READDIRPLUS_AUTO | FUSE_POSIX_ACL | FUSE_DONT_MASK | \
	FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS | FUSE_MAX_PAGES | \
	FUSE_AUTO_INVAL_DATA)

static uint32_t fs_op_init(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_init_in *in = req->arg;
	struct fuse_init_out out;
	long pg = sysconf(_SC_PAGESIZE);
	uint32_t pages;

	if (atomic_load(&s->initialized))
		return fs_reply_err(req, EIO);
	memset(&out, 0, sizeof(out));
	out.major = FUSE_KERNEL_VERSION;
	out.minor = FUSE_KERNEL_MINOR_VERSION;
	if (in->major > FUSE_KERNEL_VERSION) {
		/* the kernel retries with our major */
		return fs_reply(req, &out, FUSE_COMPAT_INIT_OUT_SIZE);
	}
	if (in->major < FUSE_KERNEL_VERSION || in->minor < FS_MIN_MINOR) {
		log_warnx("fs %s/%s: unsupported FUSE protocol %u.%u",
			  s->domain, s->tag, in->major, in->minor);
		return fs_reply_err(req, EPROTO);
	}
	s->proto_minor = in->minor < FUSE_KERNEL_MINOR_VERSION ?
	    in->minor : FUSE_KERNEL_MINOR_VERSION;
	out.minor = s->proto_minor;
	out.max_readahead = in->max_readahead;
	out.flags = in->flags & FS_WANT_FLAGS;
	if (pg <= 0)
		pg = 4096;
	out.max_write = s->max_write;
	/* rounded down: a READ of max_pages pages must fit a reply buffer */
	pages = s->max_write / (uint32_t)pg;
	if (pages > FS_MAX_MAX_PAGES)
		pages = FS_MAX_MAX_PAGES;
	if (pages == 0)
		pages = 1;
	out.max_pages = (uint16_t)pages;
	out.time_gran = 1;
	atomic_store(&s->initialized, 1);
	log_info("fs %s/%s: FUSE %u.%u, max_write %u, flags %#x",
		 s->domain, s->tag, out.major, out.minor, out.max_write,
		 out.flags);
	return fs_reply(req, &out, s->proto_minor < 23 ?
	    FUSE_COMPAT_22_INIT_OUT_SIZE : sizeof(out));
}

static uint32_t fs_op_destroy(struct fs_session *s, struct fs_req *req)
{
	atomic_store(&s->initialized, 0);
	return fs_reply(req, NULL, 0);
}

/* ---- dispatch ---- */

struct fs_opdesc {
	fs_op_fn fn;
	uint32_t minarg;	/* bytes of fixed argument required */
	uint8_t mutates;
};

#define OP(code, f, arg, mut) [code] = { f, arg, mut }
static const struct fs_opdesc fs_ops[] = {
	OP(FUSE_LOOKUP, fs_op_lookup, 0, 0),
	OP(FUSE_FORGET, fs_op_forget, sizeof(struct fuse_forget_in), 0),
	OP(FUSE_GETATTR, fs_op_getattr, 0, 0),
	OP(FUSE_SETATTR, fs_op_setattr, sizeof(struct fuse_setattr_in), 1),
	OP(FUSE_READLINK, fs_op_readlink, 0, 0),
	OP(FUSE_SYMLINK, fs_op_symlink, 0, 1),
	OP(FUSE_MKNOD, fs_op_mknod, sizeof(struct fuse_mknod_in), 1),
	OP(FUSE_MKDIR, fs_op_mkdir, sizeof(struct fuse_mkdir_in), 1),
	OP(FUSE_UNLINK, fs_op_unlink, 0, 1),
	OP(FUSE_RMDIR, fs_op_rmdir, 0, 1),
	OP(FUSE_RENAME, fs_op_rename, sizeof(struct fuse_rename_in), 1),
	OP(FUSE_LINK, fs_op_link, sizeof(struct fuse_link_in), 1),
	OP(FUSE_OPEN, fs_op_open, sizeof(struct fuse_open_in), 0),
	OP(FUSE_READ, fs_op_read, sizeof(struct fuse_read_in), 0),
	OP(FUSE_WRITE, fs_op_write, sizeof(struct fuse_write_in), 1),
	OP(FUSE_STATFS, fs_op_statfs, 0, 0),
	OP(FUSE_RELEASE, fs_op_release, sizeof(struct fuse_release_in), 0),
	OP(FUSE_FSYNC, fs_op_fsync, sizeof(struct fuse_fsync_in), 0),
	OP(FUSE_SETXATTR, fs_op_setxattr, FUSE_COMPAT_SETXATTR_IN_SIZE, 1),
	OP(FUSE_GETXATTR, fs_op_getxattr, sizeof(struct fuse_getxattr_in), 0),
	OP(FUSE_LISTXATTR, fs_op_listxattr, sizeof(struct fuse_getxattr_in), 0),
	OP(FUSE_REMOVEXATTR, fs_op_removexattr, 0, 1),
	OP(FUSE_FLUSH, fs_op_flush, sizeof(struct fuse_flush_in), 0),
	OP(FUSE_OPENDIR, fs_op_opendir, sizeof(struct fuse_open_in), 0),
	OP(FUSE_READDIR, fs_op_readdir, sizeof(struct fuse_read_in), 0),
	OP(FUSE_RELEASEDIR, fs_op_releasedir, sizeof(struct fuse_release_in), 0),
	OP(FUSE_FSYNCDIR, fs_op_fsyncdir, sizeof(struct fuse_fsync_in), 0),
	OP(FUSE_GETLK, fs_op_getlk, sizeof(struct fuse_lk_in), 0),
	OP(FUSE_SETLK, fs_op_setlk, sizeof(struct fuse_lk_in), 0),
	OP(FUSE_SETLKW, fs_op_setlkw, sizeof(struct fuse_lk_in), 0),
	OP(FUSE_ACCESS, fs_op_access, sizeof(struct fuse_access_in), 0),
	OP(FUSE_CREATE, fs_op_create, sizeof(struct fuse_create_in), 1),
	OP(FUSE_INTERRUPT, fs_op_interrupt, sizeof(struct fuse_interrupt_in), 0),
	OP(FUSE_DESTROY, fs_op_destroy, 0, 0),
	OP(FUSE_BATCH_FORGET, fs_op_batch_forget,
	   sizeof(struct fuse_batch_forget_in), 0),
	OP(FUSE_FALLOCATE, fs_op_fallocate, sizeof(struct fuse_fallocate_in), 1),
	OP(FUSE_READDIRPLUS, fs_op_readdirplus, sizeof(struct fuse_read_in), 0),
	OP(FUSE_RENAME2, fs_op_rename2, sizeof(struct fuse_rename2_in), 1),
	OP(FUSE_LSEEK, fs_op_lseek, sizeof(struct fuse_lseek_in), 0),
	OP(FUSE_COPY_FILE_RANGE, fs_op_copy_file_range,
	   sizeof(struct fuse_copy_file_range_in), 1),
	OP(FUSE_SYNCFS, fs_op_syncfs, 0, 0),
	OP(FUSE_TMPFILE, fs_op_tmpfile, sizeof(struct fuse_create_in), 1),
};
#undef OP

#define FS_NOPS (sizeof(fs_ops) / sizeof(fs_ops[0]))

int fs_opcode_mutates(uint32_t opcode)
{
	return opcode < FS_NOPS && fs_ops[opcode].mutates;
}

uint32_t fs_handle(struct fs_session *s, struct fs_req *req)
{
	uint32_t op = req->in.opcode;
	const struct fs_opdesc *d;

	atomic_fetch_add(&s->st_ops, 1);
	if (req->outcap < FS_HDR)
		return FS_NO_REPLY;
	if (op == FUSE_INIT) {
		if (req->arglen < offsetof(struct fuse_init_in, flags) +
		    sizeof(uint32_t))
			return fs_reply_err(req, EINVAL);
		return fs_op_init(s, req);
	}
	if (op >= FS_NOPS || fs_ops[op].fn == NULL) {
		if (op == FUSE_NOTIFY_REPLY)
			return FS_NO_REPLY;
		return fs_reply_err(req, ENOSYS | FS_ENOSYS_OK);
	}
	d = &fs_ops[op];
	if (!atomic_load(&s->initialized)) {
		if (op == FUSE_FORGET || op == FUSE_BATCH_FORGET ||
		    op == FUSE_INTERRUPT)
			return FS_NO_REPLY;
		return fs_reply_err(req, EIO);
	}
	if (req->arglen < d->minarg || (req->arg == NULL && d->minarg)) {
		log_warnx_rl(&fs_rl, "fs %s/%s: opcode %u: short argument "
			     "(%u < %u)", s->domain, s->tag, op, req->arglen,
			     d->minarg);
		if (op == FUSE_FORGET || op == FUSE_BATCH_FORGET ||
		    op == FUSE_INTERRUPT)
			return FS_NO_REPLY;
		return fs_reply_err(req, EINVAL);
	}
	if (d->mutates && s->readonly)
		return fs_reply_err(req, EROFS);
	return d->fn(s, req);
}

/* ---- session ---- */

struct fs_session *fs_session_new(const struct fs_session_params *p)
{
	struct fs_session *s;
	char proc[32], path[PATH_MAX + 1];
	ssize_t n;
	int err;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		err = errno;
		close(p->export_fd);
		errno = err;
		return NULL;
	}
	s->root_fd = p->export_fd;
	s->proc_fd = -1;
	s->mount_fd = -1;
	s->readonly = p->readonly;
	s->max_write = p->max_write >= 4096 ? p->max_write : 4096;
	s->max_cached = p->max_inodes_cached ? p->max_inodes_cached :
	    FS_DEFAULT_CACHED;
	s->policy = p->policy;
	s->domain = strdup(p->domain ? p->domain : "?");
	s->tag = strdup(p->export_tag ? p->export_tag : "?");
	pthread_mutex_init(&s->ilock, NULL);
	pthread_mutex_init(&s->flock, NULL);
	pthread_mutex_init(&s->dfr_lock, NULL);
	pthread_cond_init(&s->dfr_cond, NULL);
	s->next_fh = 1;
	if (s->domain == NULL || s->tag == NULL) {
		err = ENOMEM;
		goto fail;
	}

	fs_proc_path(s->root_fd, proc, sizeof(proc));
	n = readlink(proc, path, sizeof(path) - 1);
	if (n <= 0) {
		err = n < 0 ? errno : EINVAL;
		log_warn("fs %s/%s: readlink %s", s->domain, s->tag, proc);
		goto fail;
	}
	path[n] = '\0';
	if ((s->root_path = strdup(path)) == NULL) {
		err = ENOMEM;
		goto fail;
	}
	s->root_len = strlen(s->root_path);

	s->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->proc_fd < 0)
		log_warn("fs %s/%s: /proc/self/fd (opening via handles only)",
			 s->domain, s->tag);

	/* open_by_handle_at() wants a real (not O_PATH) fd on the mount */
	s->mount_fd = openat(s->root_fd, ".", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC);
	if (s->mount_fd < 0)
		log_warn("fs %s/%s: open %s", s->domain, s->tag, s->root_path);

	fs_locks_init_once();
	if ((err = -fs_inodes_init(s, s->root_fd)) != 0)
		goto fail;
	if (fs_htab_init(&s->files, 64) != 0) {
		err = ENOMEM;
		goto fail;
	}
	return s;
fail:
	fs_session_free(s);
	errno = err;
	return NULL;
}

void fs_session_free(struct fs_session *s)
{
	if (s == NULL)
		return;
	fs_session_cancel_deferred(s);
	fs_files_free(s);
	fs_policy_free(s);
	fs_htab_destroy(&s->files);
	if (s->root != NULL || s->inodes.b != NULL)
		fs_inodes_free(s);
	else if (s->root_fd >= 0)
		close(s->root_fd);
	if (s->proc_fd >= 0)
		close(s->proc_fd);
	if (s->mount_fd >= 0)
		close(s->mount_fd);
	pthread_mutex_destroy(&s->ilock);
	pthread_mutex_destroy(&s->flock);
	pthread_mutex_destroy(&s->dfr_lock);
	pthread_cond_destroy(&s->dfr_cond);
	free(s->root_path);
	free(s->domain);
	free(s->tag);
	free(s);
}

void fs_session_stats(struct fs_session *s, struct fs_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->ops = atomic_load(&s->st_ops);
	st->bytes_read = atomic_load(&s->st_read);
	st->bytes_written = atomic_load(&s->st_written);
	pthread_mutex_lock(&s->ilock);
	st->inodes = s->ninodes;
	st->fds_open = s->ncached + s->npinned;
	pthread_mutex_unlock(&s->ilock);
	pthread_mutex_lock(&s->flock);
	st->handles = s->nfiles;
	pthread_mutex_unlock(&s->flock);
	st->fds_open += atomic_load(&s->st_filefds);
	fs_quota_stats(s, st);
}

const char *fs_session_domain(const struct fs_session *s)
{
	return s->domain;
}

const char *fs_session_export(const struct fs_session *s)
{
	return s->tag;
}
