/*
 * Name operations: LOOKUP, FORGET, BATCH_FORGET, MKDIR, MKNOD, SYMLINK,
 * READLINK, UNLINK, RMDIR, RENAME, RENAME2, LINK, CREATE and TMPFILE.
 *
 * Every name from the guest is validated (fs_args_strings/fs_name_ok) and
 * used only as one component relative to its parent's O_PATH descriptor,
 * opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
 * RESOLVE_NO_SYMLINKS) where we open it, or passed to an *at() call that
 * does not follow the final component.  Objects are created with the
 * caller's fsuid/fsgid and umask (fs_cred_enter).  Device nodes cannot be
 * created (EPERM): a guest that could make one on the host could reach
 * host devices through any other consumer of the export.
 *
 * Concurrency: handlers run on any queue worker; they hold inode
 * references (fs_i.h) and no lock across syscalls.
 */
#include <errno.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fs_i.h"
#include "idmap.h"
#include "log.h"

/* Reply a fuse_entry_out for O_PATH fd (consumed); one lookup is added. */
static uint32_t reply_entry_fd(struct fs_session *s, struct fs_req *req,
			       int fd, struct fs_inode **keep)
{
	struct fuse_entry_out e;
	struct fs_inode *ino;
	struct stat st;
	int rc;

	if (fstat(fd, &st) != 0) {
		rc = -errno;
		close(fd);
		return fs_reply_err(req, rc);
	}
	if ((rc = fs_inode_add(s, fd, &st, &ino)) != 0)
		return fs_reply_err(req, rc);
	fs_fill_entry(s, &e, ino->nodeid, &st);
	if (fs_entry_size(s) > fs_out_room(req)) {
		/* the kernel will not learn the nodeid: undo the lookup */
		fs_inode_put(s, ino);
		fs_inode_forget(s, e.nodeid, 1);
		return fs_reply_err(req, EIO);
	}
	if (keep != NULL)
		*keep = ino;
	else
		fs_inode_put(s, ino);
	return fs_reply(req, &e, fs_entry_size(s));
}

uint32_t fs_op_lookup(struct fs_session *s, struct fs_req *req)
{
	const char *name;
	struct fs_inode *dir;
	int rc, fd;

	if ((rc = fs_args_strings(req->arg, req->arglen, &name, 1, 1)) != 0)
		return fs_reply_err(req, rc);
	if ((dir = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	fd = fs_lookup_fd(s, dir->fd, name);
	fs_inode_put(s, dir);
	if (fd < 0)
		return fs_reply_err(req, fd);
	return reply_entry_fd(s, req, fd, NULL);
}

uint32_t fs_op_forget(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_forget_in *in = req->arg;

	fs_inode_forget(s, req->in.nodeid, in->nlookup);
	return FS_NO_REPLY;
}

uint32_t fs_op_batch_forget(struct fs_session *s, struct fs_req *req)
{
	struct fuse_batch_forget_in b;
	struct fuse_forget_one one;
	const char *p = req->arg;
	uint32_t i, max;

	memcpy(&b, p, sizeof(b));
	max = (req->arglen - (uint32_t)sizeof(b)) / (uint32_t)sizeof(one);
	if (b.count > max)
		b.count = max;	/* hostile count: forget what is there */
	for (i = 0; i < b.count; i++) {
		memcpy(&one, p + sizeof(b) + (size_t)i * sizeof(one),
		       sizeof(one));
		fs_inode_forget(s, one.nodeid, one.nlookup);
	}
	return FS_NO_REPLY;
}

/* Common tail of MKDIR/MKNOD/SYMLINK: reply the new entry, emit event. */
static uint32_t made_entry(struct fs_session *s, struct fs_req *req,
			   struct fs_inode *dir, const char *name,
			   enum fs_event_op op)
{
	int fd = fs_lookup_fd(s, dir->fd, name);
	uint32_t r;

	if (fd < 0) {
		fs_inode_put(s, dir);
		return fs_reply_err(req, fd);
	}
	fs_event_fd(s, op, 0, dir->fd, name, NULL);
	r = reply_entry_fd(s, req, fd, NULL);
	fs_inode_put(s, dir);
	return r;
}

uint32_t fs_op_mkdir(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_mkdir_in *in = req->arg;
	const char *name;
	struct fs_inode *dir;
	struct fs_cred c;
	mode_t mode = in->mode & 07777;
	int rc;

	if ((rc = fs_args_strings((const char *)req->arg + sizeof(*in),
	    req->arglen - (uint32_t)sizeof(*in), &name, 1, 1)) != 0)
		return fs_reply_err(req, rc);
	if ((dir = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	if ((rc = fs_cred_enter(s, &c, &req->in, 1, in->umask)) != 0)
		goto out;
	if (c.umask == (mode_t)-1)
		mode &= ~(in->umask & 0777);
	rc = fs_quota_check(s, 0, 1);
	if (rc == 0)
		rc = mkdirat(dir->fd, name, mode) ? -errno : 0;
	fs_cred_leave(&c);
	if (rc == 0) {
		fs_quota_charge(s, 0, 1);
		return made_entry(s, req, dir, name, FS_EV_MKDIR);
	}
out:
	fs_inode_put(s, dir);
	return fs_reply_err(req, rc);
}

uint32_t fs_op_mknod(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_mknod_in *in = req->arg;
	const char *name;
	struct fs_inode *dir;
	struct fs_cred c;
	mode_t mode = in->mode & (S_IFMT | 07777);
	int rc;

	if ((rc = fs_args_strings((const char *)req->arg + sizeof(*in),
	    req->arglen - (uint32_t)sizeof(*in), &name, 1, 1)) != 0)
		return fs_reply_err(req, rc);
	switch (mode & S_IFMT) {
	case 0:
		mode |= S_IFREG;
		break;
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
		break;
	case S_IFCHR:
	case S_IFBLK:
		return fs_reply_err(req, EPERM);
	default:
		return fs_reply_err(req, EINVAL);
	}
	if ((dir = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	if ((rc = fs_cred_enter(s, &c, &req->in, 1, in->umask)) != 0)
		goto out;
	if (c.umask == (mode_t)-1)
		mode &= ~(mode_t)(in->umask & 0777);
	mode = xf_idmap_setid_filter(fs_map(s), mode,
	    xf_idmap_caller_uid(fs_map(s), req->in.uid),
	    xf_idmap_caller_gid(fs_map(s), req->in.gid));
	rc = fs_quota_check(s, 0, 1);
	if (rc == 0)
		rc = mknodat(dir->fd, name, mode, 0) ? -errno : 0;
	fs_cred_leave(&c);
	if (rc == 0) {
		fs_quota_charge(s, 0, 1);
		return made_entry(s, req, dir, name,
		    S_ISREG(mode) ? FS_EV_CREATE : FS_EV_MKNOD);
	}
out:
	fs_inode_put(s, dir);
	return fs_reply_err(req, rc);
}

uint32_t fs_op_symlink(struct fs_session *s, struct fs_req *req)
{
	const char *str[2];		/* name, target */
	struct fs_inode *dir;
	struct fs_cred c;
	int rc;

	if ((rc = fs_args_strings(req->arg, req->arglen, str, 2, 1)) != 0)
		return fs_reply_err(req, rc);
	if ((dir = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	if ((rc = fs_cred_enter(s, &c, &req->in, 0, 0)) != 0)
		goto out;
	rc = fs_quota_check(s, (int64_t)strlen(str[1]), 1);
	if (rc == 0)
		rc = symlinkat(str[1], dir->fd, str[0]) ? -errno : 0;
	fs_cred_leave(&c);
	if (rc == 0) {
		fs_quota_charge(s, (int64_t)strlen(str[1]), 1);
		return made_entry(s, req, dir, str[0], FS_EV_SYMLINK);
	}
out:
	fs_inode_put(s, dir);
	return fs_reply_err(req, rc);
}

uint32_t fs_op_readlink(struct fs_session *s, struct fs_req *req)
{
	struct fs_inode *ino;
	char buf[PATH_MAX];
	ssize_t n;
	int rc;

	if ((ino = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	if (ino->type != S_IFLNK) {
		fs_inode_put(s, ino);
		return fs_reply_err(req, EINVAL);
	}
	n = readlinkat(ino->fd, "", buf, sizeof(buf));
	rc = n < 0 ? -errno : 0;
	fs_inode_put(s, ino);
	if (rc != 0)
		return fs_reply_err(req, rc);
	if ((size_t)n > fs_out_room(req))
		return fs_reply_err(req, ENAMETOOLONG);
	return fs_reply(req, buf, (size_t)n);
}

/* "dirpath/name" into buf. */
static void child_path(struct fs_session *s, int dirfd, const char *name,
		       char *buf, size_t len)
{
	size_t l;

	if (fs_fd_path(s, dirfd, buf, len) != 0)
		snprintf(buf, len, "/");
	l = strlen(buf);
	snprintf(buf + l, len - l, "%s%s", l == 1 ? "" : "/", name);
}

static uint32_t do_remove(struct fs_session *s, struct fs_req *req, int flags)
{
	char path[PATH_MAX + NAME_MAX + 2];
	const char *name;
	struct fs_inode *dir;
	struct stat st;
	int rc, have;

	if ((rc = fs_args_strings(req->arg, req->arglen, &name, 1, 1)) != 0)
		return fs_reply_err(req, rc);
	if ((dir = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	have = fstatat(dir->fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
	if (unlinkat(dir->fd, name, flags) != 0) {
		rc = -errno;
		fs_inode_put(s, dir);
		return fs_reply_err(req, rc);
	}
	if (have)
		fs_quota_charge(s, (S_ISREG(st.st_mode) ||
		    S_ISLNK(st.st_mode)) ? -(int64_t)st.st_size : 0, -1);
	child_path(s, dir->fd, name, path, sizeof(path));
	fs_event_stat(s, flags ? FS_EV_RMDIR : FS_EV_UNLINK, 0,
		      have ? &st : NULL, 0, path, NULL);
	fs_inode_put(s, dir);
	return fs_reply(req, NULL, 0);
}

uint32_t fs_op_unlink(struct fs_session *s, struct fs_req *req)
{
	return do_remove(s, req, 0);
}

uint32_t fs_op_rmdir(struct fs_session *s, struct fs_req *req)
{
	return do_remove(s, req, AT_REMOVEDIR);
}

static uint32_t do_rename(struct fs_session *s, struct fs_req *req,
			  uint64_t newdir, uint32_t flags, size_t fixed)
{
	char p1[PATH_MAX + NAME_MAX + 2], p2[PATH_MAX + NAME_MAX + 2];
	const char *str[2];
	struct fs_inode *od = NULL, *nd = NULL;
	struct stat st;
	int rc, have, texists = 0;
	int64_t tb = 0;

	if (flags & ~(uint32_t)(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return fs_reply_err(req, EINVAL);
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return fs_reply_err(req, EINVAL);
	if ((rc = fs_args_strings((const char *)req->arg + fixed,
	    req->arglen - (uint32_t)fixed, str, 2, 3)) != 0)
		return fs_reply_err(req, rc);
	if ((od = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	if ((nd = fs_inode_get(s, newdir, &rc)) == NULL)
		goto out;
	child_path(s, od->fd, str[0], p1, sizeof(p1));
	if (s->acct && !(flags & RENAME_EXCHANGE))
		tb = fs_quota_entry_bytes(nd->fd, str[1], &texists);
	if (renameat2(od->fd, str[0], nd->fd, str[1], flags) != 0) {
		rc = -errno;
		goto out;
	}
	if (texists)	/* the replaced entry is gone */
		fs_quota_charge(s, -tb, -1);
	child_path(s, nd->fd, str[1], p2, sizeof(p2));
	have = fstatat(nd->fd, str[1], &st, AT_SYMLINK_NOFOLLOW) == 0;
	fs_event_stat(s, FS_EV_RENAME,
		      (flags & RENAME_EXCHANGE) ? FS_EV_F_EXCHANGE : 0,
		      have ? &st : NULL, 0, p1, p2);
	rc = 0;
out:
	fs_inode_put(s, nd);
	fs_inode_put(s, od);
	return rc ? fs_reply_err(req, rc) : fs_reply(req, NULL, 0);
}

uint32_t fs_op_rename(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_rename_in *in = req->arg;

	return do_rename(s, req, in->newdir, 0, sizeof(*in));
}

uint32_t fs_op_rename2(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_rename2_in *in = req->arg;

	return do_rename(s, req, in->newdir, in->flags, sizeof(*in));
}

uint32_t fs_op_link(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_link_in *in = req->arg;
	char p1[PATH_MAX + 1], p2[PATH_MAX + NAME_MAX + 2], proc[32];
	const char *name;
	struct fs_inode *ino = NULL, *dir = NULL;
	int rc, fd;
	int64_t lsize = 0;
	uint32_t r;

	if ((rc = fs_args_strings((const char *)req->arg + sizeof(*in),
	    req->arglen - (uint32_t)sizeof(*in), &name, 1, 1)) != 0)
		return fs_reply_err(req, rc);
	if ((ino = fs_inode_get(s, in->oldnodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	if ((dir = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		goto out;
	if (ino->type == S_IFDIR) {
		rc = -EPERM;
		goto out;
	}
	{
		struct stat lst;

		lsize = (fstat(ino->fd, &lst) == 0 && (S_ISREG(lst.st_mode) ||
		    S_ISLNK(lst.st_mode))) ? lst.st_size : 0;
	}
	if ((rc = fs_quota_check(s, lsize, 1)) != 0)
		goto out;
	if (linkat(ino->fd, "", dir->fd, name, AT_EMPTY_PATH) != 0) {
		rc = -errno;
		if (rc == -ENOENT || rc == -EPERM) {
			/* no CAP_DAC_READ_SEARCH: go through our own fd */
			fs_proc_path(ino->fd, proc, sizeof(proc));
			rc = linkat(AT_FDCWD, proc, dir->fd, name,
			    AT_SYMLINK_FOLLOW) ? -errno : 0;
		}
		if (rc != 0)
			goto out;
	}
	fs_quota_charge(s, lsize, 1);
	if ((fd = fs_lookup_fd(s, dir->fd, name)) < 0) {
		rc = fd;
		goto out;
	}
	if (fs_fd_path(s, ino->fd, p1, sizeof(p1)) != 0)
		strcpy(p1, "/");
	child_path(s, dir->fd, name, p2, sizeof(p2));
	{
		struct stat st;
		int have = fstat(fd, &st) == 0;

		fs_event_stat(s, FS_EV_LINK, 0, have ? &st : NULL, 0, p1, p2);
	}
	r = reply_entry_fd(s, req, fd, NULL);
	fs_inode_put(s, dir);
	fs_inode_put(s, ino);
	return r;
out:
	fs_inode_put(s, dir);
	fs_inode_put(s, ino);
	return fs_reply_err(req, rc);
}

/* O_PATH descriptor of the same inode as open fd `fd`. */
static int opath_of(struct fs_session *s, int fd)
{
	char name[32];
	int pfd;

	if (s->proc_fd < 0)
		return -EOPNOTSUPP;
	snprintf(name, sizeof(name), "%d", fd);
	pfd = openat(s->proc_fd, name, O_PATH | O_CLOEXEC);
	return pfd < 0 ? -errno : pfd;
}

/*
 * CREATE (and TMPFILE when tmp): open-create `name` in the parent as the
 * caller, then reply entry + open handle.  The new file's O_PATH fd is
 * taken from the opened fd itself so a concurrent rename cannot swap it.
 */
static uint32_t do_create(struct fs_session *s, struct fs_req *req, int tmp)
{
	const struct fuse_create_in *in = req->arg;
	struct {
		struct fuse_entry_out e;
		struct fuse_open_out o;
	} out;
	const char *name = NULL;
	struct fs_inode *dir, *ino = NULL;
	struct fs_cred c;
	struct stat st;
	struct open_how how;
	mode_t mode = in->mode & 07777;
	int rc, fd = -1, pfd = -1, flags, existed = 0;
	int64_t oldsize = 0;
	uint64_t fh;
	size_t esz = fs_entry_size(s);

	if ((in->flags & O_TMPFILE) == O_TMPFILE)
		tmp = 1;
	if (!tmp && (rc = fs_args_strings((const char *)req->arg +
	    sizeof(*in), req->arglen - (uint32_t)sizeof(*in), &name, 1,
	    1)) != 0)
		return fs_reply_err(req, rc);
	if (esz + sizeof(out.o) > fs_out_room(req))
		return fs_reply_err(req, EIO);
	if ((in->mode & S_IFMT) != 0 && (in->mode & S_IFMT) != S_IFREG)
		return fs_reply_err(req, EINVAL);
	flags = fs_open_flags(in->flags, 1);
	if (tmp) {
		flags &= ~(O_CREAT | O_EXCL | O_TRUNC);
		flags |= O_TMPFILE;
		if ((flags & O_ACCMODE) == O_RDONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
	} else {
		flags |= O_CREAT | O_NOFOLLOW;
	}
	if ((dir = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	/* as the backend: the caller may not be able to stat it */
	if (s->acct && !tmp)
		oldsize = fs_quota_entry_bytes(dir->fd, name, &existed);
	if ((rc = fs_cred_enter(s, &c, &req->in, 1, in->umask)) != 0)
		goto out;
	if (c.umask == (mode_t)-1)
		mode &= ~(mode_t)(in->umask & 0777);
	mode = xf_idmap_setid_filter(fs_map(s), mode | S_IFREG,
	    xf_idmap_caller_uid(fs_map(s), req->in.uid),
	    xf_idmap_caller_gid(fs_map(s), req->in.gid)) & 07777;
	if (!existed && (rc = fs_quota_check(s, 0, 1)) != 0) {
		fs_cred_leave(&c);
		goto out;
	}
	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)flags;
	how.mode = mode;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS |
	    RESOLVE_NO_SYMLINKS;
	fd = (int)syscall(SYS_openat2, dir->fd, tmp ? "." : name, &how,
	    sizeof(how));
	rc = fd < 0 ? -errno : 0;
	fs_cred_leave(&c);
	if (rc != 0)
		goto out;
	if (!existed)
		fs_quota_charge(s, 0, 1);
	else if (flags & O_TRUNC)
		fs_quota_charge(s, -oldsize, 0);
	if ((pfd = opath_of(s, fd)) < 0) {
		if (tmp) {
			rc = pfd;
			goto out;
		}
		if ((pfd = fs_lookup_fd(s, dir->fd, name)) < 0) {
			rc = pfd;
			goto out;
		}
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		close(pfd);
		goto out;
	}
	if ((rc = fs_inode_add(s, pfd, &st, &ino)) != 0)
		goto out;
	if ((rc = fs_file_new(s, ino, fd, 0, &fh)) != 0) {
		uint64_t nid = ino->nodeid;

		fs_inode_put(s, ino);
		fs_inode_forget(s, nid, 1);
		ino = NULL;
		goto out;
	}
	fd = -1;		/* owned by the file handle now */
	if (!tmp)
		fs_event_fd(s, FS_EV_CREATE, 0, dir->fd, name, NULL);
	memset(&out, 0, sizeof(out));
	fs_fill_entry(s, &out.e, ino->nodeid, &st);
	out.o.fh = fh;
	fs_inode_put(s, ino);
	fs_inode_put(s, dir);
	if (esz != sizeof(out.e)) {
		if (fs_out_put(req, 0, &out.e, esz) != 0 ||
		    fs_out_put(req, esz, &out.o, sizeof(out.o)) != 0)
			return fs_reply_err(req, EIO);
		return fs_reply_len(req, esz + sizeof(out.o));
	}
	return fs_reply(req, &out, sizeof(out));
out:
	if (fd >= 0)
		close(fd);
	fs_inode_put(s, dir);
	return fs_reply_err(req, rc);
}

uint32_t fs_op_create(struct fs_session *s, struct fs_req *req)
{
	return do_create(s, req, 0);
}

uint32_t fs_op_tmpfile(struct fs_session *s, struct fs_req *req)
{
	return do_create(s, req, 1);
}
