/*
 * Attribute operations: GETATTR, SETATTR, ACCESS and the extended
 * attributes (SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR).
 *
 * Setting attributes runs as the backend (root); permission checks are the
 * guest kernel's (FUSE_POSIX_ACL turns on default_permissions there).
 * setuid/setgid clearing: HANDLE_KILLPRIV(_V2) is not negotiated, so the
 * guest kernel clears the bits itself with an explicit SETATTR(mode) on
 * write/truncate by a non-owner, and the host kernel clears them on chown.
 *
 * Extended attributes: user.*, security.* and the POSIX ACL names
 * (system.posix_acl_access/default, which the guest kernel enforces) pass
 * through; trusted.* is refused (EPERM) and hidden from listings so a
 * guest cannot plant host-privileged metadata (overlayfs and friends read
 * trusted.*); other system.* names are EOPNOTSUPP.  Symlinks have no
 * xattrs here.  Regular files and directories are reached through an fd
 * re-opened read-only; other node types through /proc/self/fd/N paths,
 * which never open the object.
 *
 * Concurrency: stateless handlers; inode references only.
 */
#include <errno.h>
#include <limits.h>
#include <linux/limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs_i.h"
#include "idmap.h"
#include "log.h"

static uint32_t reply_attr_fd(struct fs_session *s, struct fs_req *req,
			      int fd)
{
	struct fuse_attr_out out;
	struct stat st;

	if (fstat(fd, &st) != 0)
		return fs_reply_err(req, errno);
	memset(&out, 0, sizeof(out));
	out.attr_valid = FS_ENTRY_TIMEOUT;
	fs_fill_attr(s, &out.attr, &st);
	return fs_reply(req, &out, fs_attr_out_size(s));
}

uint32_t fs_op_getattr(struct fs_session *s, struct fs_req *req)
{
	struct fs_inode *ino;
	uint32_t r;
	int rc;

	if ((ino = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	r = reply_attr_fd(s, req, ino->fd);
	fs_inode_put(s, ino);
	return r;
}

static void set_time(struct timespec *ts, uint32_t valid, uint32_t bit,
		     uint32_t now, uint64_t sec, uint32_t nsec)
{
	if (valid & now) {
		ts->tv_sec = 0;
		ts->tv_nsec = UTIME_NOW;
	} else if (valid & bit) {
		ts->tv_sec = (time_t)sec;
		ts->tv_nsec = nsec;
	} else {
		ts->tv_sec = 0;
		ts->tv_nsec = UTIME_OMIT;
	}
}

uint32_t fs_op_setattr(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_setattr_in *in = req->arg;
	const struct xf_idmap *m = fs_map(s);
	struct fs_inode *ino;
	struct fs_file *f = NULL;
	struct stat ost;
	char proc[32];
	uint32_t v = in->valid, r;
	int64_t before = -1;
	mode_t mode;
	int rc = 0;

	if (((v & FATTR_ATIME) && in->atimensec >= 1000000000u) ||
	    ((v & FATTR_MTIME) && in->mtimensec >= 1000000000u) ||
	    ((v & FATTR_SIZE) && in->size > (uint64_t)INT64_MAX))
		return fs_reply_err(req, EINVAL);
	if ((ino = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	if (v & FATTR_FH) {
		f = fs_file_get(s, in->fh);
		if (f != NULL && (f->ino != ino || f->is_dir)) {
			fs_file_put(s, f);
			f = NULL;
		}
	}
	fs_proc_path(ino->fd, proc, sizeof(proc));

	/* identity policy: owner and mode only by the (mapped) owner or an
	 * unsquashed guest root over objects inside its range */
	if (v & (FATTR_UID | FATTR_GID | FATTR_MODE)) {
		if (fstat(ino->fd, &ost) != 0) {
			rc = -errno;
			goto out;
		}
		/* clearing set-id bits is always allowed: that is the guest
		 * kernel's own killpriv on write/truncate by a non-owner */
		if (!(v & (FATTR_UID | FATTR_GID)) &&
		    ((in->mode & 07777) | (ost.st_mode & 06000)) ==
		    (ost.st_mode & 07777))
			rc = 0;
		else if ((rc = xf_idmap_may_chattr(m, req->in.uid,
		    ost.st_uid)) != 0)
			goto out;
	}
	if ((v & FATTR_SIZE) && s->acct && ino->type == S_IFREG) {
		if (fstat(ino->fd, &ost) != 0) {
			rc = -errno;
			goto out;
		}
		before = ost.st_size;
		if ((int64_t)in->size > before &&
		    (int64_t)in->size - before > fs_quota_room(s)) {
			rc = -EDQUOT;
			goto out;
		}
	}
	if (v & (FATTR_UID | FATTR_GID)) {
		uint32_t hu, hg;
		uid_t uid;
		gid_t gid;

		if ((rc = xf_idmap_chown_uid(m, req->in.uid, (v & FATTR_UID) ?
		    in->uid : XF_ID_INVALID, &hu)) != 0 ||
		    (rc = xf_idmap_chown_gid(m, req->in.uid, (v & FATTR_GID) ?
		    in->gid : XF_ID_INVALID, &hg)) != 0)
			goto out;
		uid = hu;
		gid = hg;
		if (fchownat(ino->fd, "", uid, gid,
		    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
			rc = -errno;
			goto out;
		}
	}
	if (v & FATTR_MODE) {
		if (ino->type == S_IFLNK) {
			rc = -EOPNOTSUPP;
			goto out;
		}
		mode = in->mode & 07777;
		if (!xf_idmap_is_identity(m) && fstat(ino->fd, &ost) == 0)
			mode = xf_idmap_setid_filter(m, mode | ino->type,
			    ost.st_uid, ost.st_gid) & 07777;
		if (f != NULL)
			rc = fchmod(f->fd, mode) ? -errno : 0;
		else
			rc = fchmodat(AT_FDCWD, proc, mode, 0) ? -errno : 0;
		if (rc)
			goto out;
	}
	if (v & FATTR_SIZE) {
		if (ino->type != S_IFREG) {
			rc = ino->type == S_IFDIR ? -EISDIR : -EINVAL;
			goto out;
		}
		rc = -EBADF;
		if (f != NULL)
			rc = ftruncate(f->fd, (off_t)in->size) ? -errno : 0;
		if (rc == -EBADF || rc == -EINVAL)
			rc = truncate(proc, (off_t)in->size) ? -errno : 0;
		if (rc)
			goto out;
		if (before >= 0)
			fs_quota_charge(s, (int64_t)in->size - before, 0);
	}
	if (v & (FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW |
	    FATTR_MTIME_NOW)) {
		struct timespec ts[2];

		set_time(&ts[0], v, FATTR_ATIME, FATTR_ATIME_NOW, in->atime,
			 in->atimensec);
		set_time(&ts[1], v, FATTR_MTIME, FATTR_MTIME_NOW, in->mtime,
			 in->mtimensec);
		if (utimensat(ino->fd, "", ts,
		    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0) {
			rc = -errno;
			if (rc == -EINVAL && ino->type != S_IFLNK)
				rc = utimensat(AT_FDCWD, proc, ts, 0) ?
				    -errno : 0;
			if (rc)
				goto out;
		}
	}
	if (v & (FATTR_UID | FATTR_GID | FATTR_MODE | FATTR_SIZE |
	    FATTR_ATIME | FATTR_MTIME | FATTR_ATIME_NOW | FATTR_MTIME_NOW))
		fs_event_fd(s, FS_EV_SETATTR,
			    (v & FATTR_SIZE) ? FS_EV_F_SIZE : 0, ino->fd, NULL,
			    NULL);
out:
	fs_file_put(s, f);
	r = rc ? fs_reply_err(req, rc) : reply_attr_fd(s, req, ino->fd);
	fs_inode_put(s, ino);
	return r;
}

/*
 * ACCESS: the kernel checks permissions itself (default_permissions), so
 * this only comes from unusual callers; answer from the mode bits for the
 * caller's uid/gid (supplementary groups are not known to us).
 */
uint32_t fs_op_access(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_access_in *in = req->arg;
	struct fs_inode *ino;
	struct stat st;
	uint32_t mask = in->mask & 7, bits;
	int rc;

	if ((ino = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	rc = fstat(ino->fd, &st) ? -errno : 0;
	fs_inode_put(s, ino);
	if (rc)
		return fs_reply_err(req, rc);
	if ((mask & W_OK) && s->readonly)
		return fs_reply_err(req, EROFS);
	if (!xf_idmap_is_identity(fs_map(s))) {
		/* compare as the guest sees the object */
		st.st_uid = xf_idmap_show_uid(fs_map(s), st.st_uid);
		st.st_gid = xf_idmap_show_gid(fs_map(s), st.st_gid);
	}
	if (req->in.uid == 0) {
		if ((mask & X_OK) && !S_ISDIR(st.st_mode) &&
		    !(st.st_mode & 0111))
			return fs_reply_err(req, EACCES);
		return fs_reply(req, NULL, 0);
	}
	if (req->in.uid == st.st_uid)
		bits = (st.st_mode >> 6) & 7;
	else if (req->in.gid == st.st_gid)
		bits = (st.st_mode >> 3) & 7;
	else
		bits = st.st_mode & 7;
	if ((bits & mask) != mask)
		return fs_reply_err(req, EACCES);
	return fs_reply(req, NULL, 0);
}

/* ---- extended attributes ---- */

static int xattr_name_ok(const char *name)
{
	if (strncmp(name, "user.", 5) == 0 ||
	    strncmp(name, "security.", 9) == 0 ||
	    strcmp(name, "system.posix_acl_access") == 0 ||
	    strcmp(name, "system.posix_acl_default") == 0)
		return 0;
	if (strncmp(name, "trusted.", 8) == 0)
		return -EPERM;
	return -EOPNOTSUPP;
}

/* How an xattr call reaches the inode: an fd, or a /proc path. */
struct xtarget {
	int fd;			/* opened fd, or -1 */
	char path[32];
};

static int xtarget_open(struct fs_session *s, struct fs_inode *ino,
			struct xtarget *t)
{
	t->fd = -1;
	switch (ino->type) {
	case S_IFLNK:
		return -EOPNOTSUPP;
	case S_IFREG:
	case S_IFDIR:
		t->fd = fs_reopen(s, ino, O_RDONLY | O_NONBLOCK);
		if (t->fd < 0)
			return t->fd;
		return 0;
	default:
		fs_proc_path(ino->fd, t->path, sizeof(t->path));
		return 0;
	}
}

static void xtarget_close(struct xtarget *t)
{
	if (t->fd >= 0)
		close(t->fd);
}

/* Name at `p` (len bytes available): NUL-terminated, 1..XATTR_NAME_MAX. */
static int xattr_arg_name(const char *p, size_t len, const char **name,
			  size_t *used)
{
	const char *z;

	if (p == NULL || len == 0)
		return -EINVAL;
	z = memchr(p, '\0', len);
	if (z == NULL || z == p || (size_t)(z - p) > XATTR_NAME_MAX)
		return z == NULL || z == p ? -EINVAL : -ERANGE;
	*name = p;
	*used = (size_t)(z - p) + 1;
	return 0;
}

uint32_t fs_op_setxattr(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_setxattr_in *in = req->arg;
	const char *p = req->arg, *name;
	size_t fixed = FUSE_COMPAT_SETXATTR_IN_SIZE, used;
	struct fs_inode *ino;
	struct xtarget t;
	uint32_t size = in->size;
	int rc, flags = (int)in->flags;

	if ((rc = xattr_arg_name(p + fixed, req->arglen - fixed, &name,
	    &used)) != 0)
		return fs_reply_err(req, rc);
	if (size > XATTR_SIZE_MAX)
		return fs_reply_err(req, E2BIG);
	if (fixed + used + size != req->arglen)
		return fs_reply_err(req, EINVAL);
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return fs_reply_err(req, EINVAL);
	/* file capabilities are host privilege: only an unmapped (identity)
	 * export may carry the guest's, as it may carry set-uid root */
	if (!xf_idmap_is_identity(fs_map(s)) &&
	    !strcmp(name, "security.capability"))
		return fs_reply_err(req, EPERM);
	if ((rc = xattr_name_ok(name)) != 0)
		return fs_reply_err(req, rc);
	if ((ino = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	if ((rc = xtarget_open(s, ino, &t)) == 0) {
		const void *val = p + fixed + used;

		if (t.fd >= 0)
			rc = fsetxattr(t.fd, name, val, size, flags);
		else
			rc = setxattr(t.path, name, val, size, flags);
		rc = rc ? -errno : 0;
		xtarget_close(&t);
	}
	if (rc == 0)
		fs_event_fd(s, FS_EV_XATTR, 0, ino->fd, NULL, NULL);
	fs_inode_put(s, ino);
	return rc ? fs_reply_err(req, rc) : fs_reply(req, NULL, 0);
}

uint32_t fs_op_getxattr(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_getxattr_in *in = req->arg;
	const char *name;
	size_t used, cap;
	struct fs_inode *ino;
	struct xtarget t;
	char *buf = NULL;
	ssize_t n = -1;
	int rc;
	uint32_t r;

	if ((rc = xattr_arg_name((const char *)req->arg + sizeof(*in),
	    req->arglen - sizeof(*in), &name, &used)) != 0)
		return fs_reply_err(req, rc);
	if ((rc = xattr_name_ok(name)) != 0)
		return fs_reply_err(req, rc == -EPERM ? ENODATA : -rc);
	cap = in->size > XATTR_SIZE_MAX ? XATTR_SIZE_MAX : in->size;
	if (cap > fs_out_room(req))
		cap = fs_out_room(req);
	if (in->size && (buf = malloc(cap ? cap : 1)) == NULL)
		return fs_reply_err(req, ENOMEM);
	if ((ino = fs_inode_get(s, req->in.nodeid, &rc)) == NULL) {
		free(buf);
		return fs_reply_err(req, rc);
	}
	if ((rc = xtarget_open(s, ino, &t)) == 0) {
		size_t want = in->size ? cap : 0;

		if (t.fd >= 0)
			n = fgetxattr(t.fd, name, buf, want);
		else
			n = getxattr(t.path, name, buf, want);
		rc = n < 0 ? -errno : 0;
		xtarget_close(&t);
	} else if (rc == -EOPNOTSUPP) {
		rc = -ENODATA;
	}
	fs_inode_put(s, ino);
	if (rc) {
		r = fs_reply_err(req, rc);
	} else if (in->size == 0) {
		struct fuse_getxattr_out out;

		memset(&out, 0, sizeof(out));
		out.size = (uint32_t)n;
		r = fs_reply(req, &out, sizeof(out));
	} else {
		r = fs_reply(req, buf, (size_t)n);
	}
	free(buf);
	return r;
}

uint32_t fs_op_listxattr(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_getxattr_in *in = req->arg;
	struct fs_inode *ino;
	struct xtarget t;
	char *buf, *out;
	ssize_t n = 0;
	size_t i, olen = 0;
	int rc;
	uint32_t r;

	if ((buf = malloc(XATTR_LIST_MAX)) == NULL)
		return fs_reply_err(req, ENOMEM);
	if ((ino = fs_inode_get(s, req->in.nodeid, &rc)) == NULL) {
		free(buf);
		return fs_reply_err(req, rc);
	}
	if ((rc = xtarget_open(s, ino, &t)) == 0) {
		if (t.fd >= 0)
			n = flistxattr(t.fd, buf, XATTR_LIST_MAX);
		else
			n = listxattr(t.path, buf, XATTR_LIST_MAX);
		rc = n < 0 ? -errno : 0;
		xtarget_close(&t);
	} else if (rc == -EOPNOTSUPP) {
		rc = 0;
		n = 0;
	}
	fs_inode_put(s, ino);
	if (rc) {
		free(buf);
		return fs_reply_err(req, rc);
	}
	/* keep only the names a guest may use, compacting in place */
	out = buf;
	for (i = 0; i < (size_t)n;) {
		size_t l = strnlen(buf + i, (size_t)n - i);

		if (i + l < (size_t)n && xattr_name_ok(buf + i) == 0) {
			memmove(out + olen, buf + i, l + 1);
			olen += l + 1;
		}
		i += l + 1;
	}
	if (in->size == 0) {
		struct fuse_getxattr_out go;

		memset(&go, 0, sizeof(go));
		go.size = (uint32_t)olen;
		r = fs_reply(req, &go, sizeof(go));
	} else if (olen > in->size) {
		r = fs_reply_err(req, ERANGE);
	} else {
		r = fs_reply(req, out, olen);
	}
	free(buf);
	return r;
}

uint32_t fs_op_removexattr(struct fs_session *s, struct fs_req *req)
{
	const char *name;
	struct fs_inode *ino;
	struct xtarget t;
	size_t used;
	int rc;

	if ((rc = xattr_arg_name(req->arg, req->arglen, &name, &used)) != 0)
		return fs_reply_err(req, rc);
	if ((rc = xattr_name_ok(name)) != 0)
		return fs_reply_err(req, rc);
	if ((ino = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	if ((rc = xtarget_open(s, ino, &t)) == 0) {
		if (t.fd >= 0)
			rc = fremovexattr(t.fd, name);
		else
			rc = removexattr(t.path, name);
		rc = rc ? -errno : 0;
		xtarget_close(&t);
	}
	if (rc == 0)
		fs_event_fd(s, FS_EV_XATTR, 0, ino->fd, NULL, NULL);
	fs_inode_put(s, ino);
	return rc ? fs_reply_err(req, rc) : fs_reply(req, NULL, 0);
}
