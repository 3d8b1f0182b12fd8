/*
 * Data operations on open handles: OPEN, READ, WRITE, FLUSH, RELEASE,
 * FSYNC, FALLOCATE, LSEEK, COPY_FILE_RANGE, OPENDIR, READDIR,
 * READDIRPLUS, RELEASEDIR, FSYNCDIR, STATFS and SYNCFS, plus the
 * file-handle table.
 *
 * Opening: an inode is opened by re-opening its O_PATH descriptor through
 * /proc/self/fd/N (our own fd, so following that magic link is safe).
 * The backend's fds never get O_DIRECT (guest buffers are pool pages of any
 * alignment; the guest's page cache policy is the kernel's business), nor
 * O_CREAT/O_NOFOLLOW/O_PATH.  Device nodes are never opened for a guest
 * (EACCES).  FIFOs and sockets: the guest kernel opens those itself
 * (init_special_inode) and never sends OPEN for them, so an OPEN of one
 * comes from a confused or hostile frontend and is refused with EACCES
 * rather than risking a worker blocking on a FIFO.
 *
 * Write-through: WRITEBACK_CACHE is not negotiated, so every WRITE the
 * guest sees acknowledged has reached the host file (pwrite), and the
 * operation stream sees one coalesced MODIFY per handle at FLUSH/RELEASE.
 *
 * Concurrency: handles are refcounted under s->flock; a directory
 * handle's getdents buffer is under its own dlock.  READ writes straight
 * into req->out (shared memory, write-only); WRITE hands req->wdata to
 * pwrite once and never looks at it.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fs_i.h"
#include "idmap.h"
#include "log.h"

#define FS_DIRBUF	32768
/* the kernel's __FMODE_EXEC in FUSE_OPEN flags: an execve() open */
#define FS_FMODE_EXEC	0x20

struct fs_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* ---- file handles ---- */

int fs_open_flags(uint32_t guest, int allow_create)
{
	int keep = O_ACCMODE | O_APPEND | O_TRUNC | O_SYNC | O_DSYNC |
	    O_NOATIME | O_LARGEFILE;

	if (allow_create)
		keep |= O_CREAT | O_EXCL;
	return ((int)guest & keep) | O_CLOEXEC;
}

int fs_file_new(struct fs_session *s, struct fs_inode *ino, int fd,
		int is_dir, uint64_t *fh)
{
	struct fs_file *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -ENOMEM;
	f->fd = fd;
	f->is_dir = is_dir;
	f->refs = 1;		/* the table's */
	f->ino = ino;
	f->dnext = -1;
	atomic_init(&f->written, 0);
	pthread_mutex_init(&f->dlock, NULL);
	fs_inode_ref(s, ino);
	pthread_mutex_lock(&s->flock);
	f->hn.key = s->next_fh++;
	fs_htab_put(&s->files, &f->hn);
	s->nfiles++;
	pthread_mutex_unlock(&s->flock);
	atomic_fetch_add(&s->st_filefds, 1);
	*fh = f->hn.key;
	return 0;
}

struct fs_file *fs_file_get(struct fs_session *s, uint64_t fh)
{
	struct fs_hnode *hn;
	struct fs_file *f = NULL;

	pthread_mutex_lock(&s->flock);
	if ((hn = fs_htab_get(&s->files, fh)) != NULL) {
		f = fs_container_of(hn, struct fs_file, hn);
		f->refs++;
	}
	pthread_mutex_unlock(&s->flock);
	return f;
}

static void file_destroy(struct fs_session *s, struct fs_file *f)
{
	close(f->fd);
	atomic_fetch_sub(&s->st_filefds, 1);
	fs_inode_put(s, f->ino);
	pthread_mutex_destroy(&f->dlock);
	free(f->dbuf);
	free(f);
}

void fs_file_put(struct fs_session *s, struct fs_file *f)
{
	unsigned left;

	if (f == NULL)
		return;
	pthread_mutex_lock(&s->flock);
	left = --f->refs;
	pthread_mutex_unlock(&s->flock);
	if (left == 0)
		file_destroy(s, f);
}

/* Remove fh (of the given kind) from the table; returns it referenced. */
static struct fs_file *file_take(struct fs_session *s, uint64_t fh,
				 int is_dir)
{
	struct fs_hnode *hn;
	struct fs_file *f = NULL;

	pthread_mutex_lock(&s->flock);
	if ((hn = fs_htab_get(&s->files, fh)) != NULL) {
		f = fs_container_of(hn, struct fs_file, hn);
		if (f->is_dir != is_dir) {
			pthread_mutex_unlock(&s->flock);
			return NULL;
		}
		fs_htab_del(&s->files, hn);
		s->nfiles--;
		/* the table's reference becomes the caller's */
	}
	pthread_mutex_unlock(&s->flock);
	return f;
}

void fs_files_free(struct fs_session *s)
{
	size_t i;

	for (i = 0; i < s->files.nb; i++) {
		while (s->files.b[i] != NULL) {
			struct fs_file *f = fs_container_of(s->files.b[i],
			    struct fs_file, hn);

			fs_htab_del(&s->files, &f->hn);
			s->nfiles--;
			file_destroy(s, f);
		}
	}
}

void fs_file_modified(struct fs_session *s, struct fs_file *f)
{
	if (atomic_exchange(&f->written, 0))
		fs_event_fd(s, FS_EV_MODIFY, 0, f->fd, NULL, NULL);
}

void fs_session_flush_events(struct fs_session *s)
{
	struct fs_file **v = NULL, **nv;
	size_t i, n = 0, cap = 0;

	pthread_mutex_lock(&s->flock);
	for (i = 0; i < s->files.nb; i++) {
		struct fs_hnode *hn;

		for (hn = s->files.b[i]; hn != NULL; hn = hn->next) {
			struct fs_file *f = fs_container_of(hn,
			    struct fs_file, hn);

			if (f->is_dir || !atomic_load(&f->written))
				continue;
			if (n == cap) {
				cap = cap ? cap * 2 : 16;
				nv = realloc(v, cap * sizeof(*v));
				if (nv == NULL)
					break;	/* the rest at release */
				v = nv;
			}
			f->refs++;
			v[n++] = f;
		}
	}
	pthread_mutex_unlock(&s->flock);
	for (i = 0; i < n; i++) {
		fs_file_modified(s, v[i]);
		fs_file_put(s, v[i]);
	}
	free(v);
}

static uint32_t reply_open(struct fs_req *req, uint64_t fh, uint32_t flags)
{
	struct fuse_open_out o;

	memset(&o, 0, sizeof(o));
	o.fh = fh;
	o.open_flags = flags;
	return fs_reply(req, &o, sizeof(o));
}

/* ---- close-to-open page cache policy ---- */

/*
 * Whether the guest may keep its page cache of a regular file at this
 * OPEN (FOPEN_KEEP_CACHE), like NFS's close-to-open consistency: yes if
 * the file's mtime, ctime and size are what this session saw at its
 * previous OPEN of the inode; otherwise the kernel drops the cached pages
 * and reads again, so a guest that reopens a file sees every change made
 * by another guest or dom0 before the open.  Between opens the kernel's
 * attribute timeout (FS_ENTRY_TIMEOUT) with FUSE_AUTO_INVAL_DATA drops
 * pages when mtime or size changes, as without this policy.
 *
 * Timestamps tick coarsely (a jiffy), so a change within the same tick as
 * an earlier one may leave all three unchanged: a state is only recorded
 * as trustworthy once ctime is FS_C2O_SETTLE_NS in the past.  The guest's
 * own writes change ctime too, so its next open drops (conservative).
 * XENFS_NO_KEEP_CACHE=1 in xenfsd's environment turns the policy off
 * (benchmarks compare the two).
 */
#define FS_C2O_SETTLE_NS	50000000LL	/* 50 ms: 5 ticks at HZ=100 */

static int c2o_disabled(void)
{
	static int v = -1;

	if (v < 0) {
		const char *e = getenv("XENFS_NO_KEEP_CACHE");

		v = e != NULL && strcmp(e, "1") == 0;
	}
	return v;
}

static int ts_eq(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static uint32_t c2o_open_flags(struct fs_session *s, struct fs_inode *ino,
			       int fd, int flags)
{
	struct timespec now;
	struct stat st;
	int64_t age;
	uint32_t keep = 0;

	if (ino->type != S_IFREG || c2o_disabled())
		return 0;
	if (fstat(fd, &st) != 0 ||
	    clock_gettime(CLOCK_REALTIME, &now) != 0) {
		pthread_mutex_lock(&s->ilock);
		ino->c2o_valid = 0;
		pthread_mutex_unlock(&s->ilock);
		return 0;
	}
	age = ((int64_t)now.tv_sec - (int64_t)st.st_ctim.tv_sec) *
	    1000000000LL + (now.tv_nsec - st.st_ctim.tv_nsec);
	pthread_mutex_lock(&s->ilock);
	if (ino->c2o_valid && !(flags & O_TRUNC) &&
	    ts_eq(&ino->c2o_mtime, &st.st_mtim) &&
	    ts_eq(&ino->c2o_ctime, &st.st_ctim) &&
	    ino->c2o_size == st.st_size)
		keep = FOPEN_KEEP_CACHE;
	ino->c2o_valid = age >= FS_C2O_SETTLE_NS && !(flags & O_TRUNC);
	ino->c2o_mtime = st.st_mtim;
	ino->c2o_ctime = st.st_ctim;
	ino->c2o_size = st.st_size;
	pthread_mutex_unlock(&s->ilock);
	return keep;
}

/* ---- quota around size-changing calls (fs_policy.c) ---- */

/*
 * Before writing *len bytes at off of fd: shorten *len to what the quota
 * leaves (growth beyond the current size is what counts), -EDQUOT if
 * nothing fits.  *before: the size now, or -1 without a quota.
 */
static int quota_before(struct fs_session *s, int fd, uint64_t off,
			size_t *len, int64_t *before)
{
	struct stat st;
	int64_t room, end;
	int fl;

	*before = -1;
	if (!s->acct || *len == 0)
		return 0;
	if (fstat(fd, &st) != 0)
		return -errno;
	*before = st.st_size;
	/* an O_APPEND descriptor writes at the end whatever the offset says
	 * (a hostile frontend would pass 0 to grow the file for free) */
	if ((fl = fcntl(fd, F_GETFL)) >= 0 && (fl & O_APPEND))
		off = (uint64_t)st.st_size;
	end = (int64_t)off + (int64_t)*len;
	if (end <= st.st_size)
		return 0;
	room = fs_quota_room(s);
	if (end - st.st_size <= room)
		return 0;
	/* partial: up to the limit, then EDQUOT on the next call */
	if (st.st_size + room <= (int64_t)off)
		return -EDQUOT;
	*len = (size_t)(st.st_size + room - (int64_t)off);
	return 0;
}

static void quota_after(struct fs_session *s, int fd, int64_t before)
{
	struct stat st;

	if (before < 0 || fstat(fd, &st) != 0)
		return;
	fs_quota_charge(s, st.st_size - before, 0);
}

/* statfs: a quota is the size of the filesystem the guest sees. */
static void quota_statfs(struct fs_session *s, struct fuse_kstatfs *k)
{
	struct fs_stats st;
	uint64_t bs = k->frsize ? k->frsize : (k->bsize ? k->bsize : 4096);

	memset(&st, 0, sizeof(st));
	fs_quota_stats(s, &st);
	if (st.quota_bytes_limit) {
		uint64_t blocks = st.quota_bytes_limit / bs;
		uint64_t used = (st.quota_bytes_used + bs - 1) / bs;
		uint64_t fr = used < blocks ? blocks - used : 0;

		k->blocks = blocks;
		k->bfree = fr < k->bfree ? fr : k->bfree;
		k->bavail = fr < k->bavail ? fr : k->bavail;
	}
	if (st.quota_inodes_limit) {
		uint64_t fr = st.quota_inodes_used < st.quota_inodes_limit ?
		    st.quota_inodes_limit - st.quota_inodes_used : 0;

		k->files = st.quota_inodes_limit;
		k->ffree = fr < k->ffree ? fr : k->ffree;
	}
}

/* ---- OPEN / RELEASE / FLUSH / FSYNC ---- */

uint32_t fs_op_open(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_open_in *in = req->arg;
	struct fs_inode *ino;
	uint64_t fh;
	int64_t oldsize = 0;
	uint32_t oflags;
	int rc, fd, flags = fs_open_flags(in->flags, 0);

	if ((ino = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	switch (ino->type) {
	case S_IFREG:
		break;
	case S_IFDIR:
		if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC)) {
			rc = -EISDIR;
			goto out;
		}
		break;
	case S_IFLNK:
		rc = -ELOOP;
		goto out;
	default:		/* devices, FIFOs, sockets: see the top */
		rc = -EACCES;
		goto out;
	}
	if (s->readonly && ((flags & O_ACCMODE) != O_RDONLY ||
	    (flags & (O_TRUNC | O_APPEND)))) {
		rc = -EROFS;
		goto out;
	}
	/* noexec export: an exec open (the kernel's FMODE_EXEC) is refused
	 * here too, whatever the frontend mounted */
	if ((in->flags & FS_FMODE_EXEC) && fs_map(s)->noexec) {
		rc = -EACCES;
		goto out;
	}
	if ((flags & O_TRUNC) && ino->type == S_IFREG) {
		struct stat ost;

		if (fstat(ino->fd, &ost) == 0)
			oldsize = ost.st_size;
	}
	if ((fd = fs_reopen(s, ino, flags)) < 0) {
		rc = fd;
		goto out;
	}
	if (oldsize > 0)
		fs_quota_charge(s, -oldsize, 0);
	/* the services' verdict (antivirus on-open policy); EACCES on deny */
	if (ino->type == S_IFREG &&
	    (rc = bk_verdict_check(s, fd, in->flags)) < 0) {
		close(fd);
		goto out;
	}
	if ((rc = fs_file_new(s, ino, fd, 0, &fh)) != 0) {
		close(fd);
		goto out;
	}
	if ((flags & O_TRUNC) && ino->type == S_IFREG)
		fs_event_fd(s, FS_EV_SETATTR, FS_EV_F_SIZE, fd, NULL, NULL);
	oflags = c2o_open_flags(s, ino, fd, flags);
	fs_inode_put(s, ino);
	return reply_open(req, fh, oflags);
out:
	fs_inode_put(s, ino);
	return fs_reply_err(req, rc);
}

uint32_t fs_op_release(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_release_in *in = req->arg;
	struct fs_file *f = file_take(s, in->fh, 0);

	if (f == NULL)
		return fs_reply_err(req, EBADF);
	if (in->release_flags & FUSE_RELEASE_FLOCK_UNLOCK)
		(void)flock(f->fd, LOCK_UN);	/* best effort, as close() */
	fs_file_modified(s, f);
	fs_file_put(s, f);
	return fs_reply(req, NULL, 0);
}

uint32_t fs_op_flush(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_flush_in *in = req->arg;
	struct fs_file *f = fs_file_get(s, in->fh);
	int rc = 0, d;

	if (f == NULL)
		return fs_reply_err(req, EBADF);
	/* close() of the guest's fd: POSIX locks of that owner go away */
	fs_plock_drop_owner(s, f->ino, in->lock_owner);
	/* like close(2) on the host: report deferred write errors (NFS) */
	if ((d = dup(f->fd)) >= 0 && close(d) != 0)
		rc = -errno;
	fs_file_modified(s, f);
	fs_file_put(s, f);
	return rc ? fs_reply_err(req, rc) : fs_reply(req, NULL, 0);
}

static uint32_t do_fsync(struct fs_session *s, struct fs_req *req, int dir)
{
	const struct fuse_fsync_in *in = req->arg;
	struct fs_file *f = fs_file_get(s, in->fh);
	int rc;

	if (f == NULL || f->is_dir != dir) {
		fs_file_put(s, f);
		return fs_reply_err(req, EBADF);
	}
	if (in->fsync_flags & FUSE_FSYNC_FDATASYNC)
		rc = fdatasync(f->fd) ? -errno : 0;
	else
		rc = fsync(f->fd) ? -errno : 0;
	fs_file_put(s, f);
	return rc ? fs_reply_err(req, rc) : fs_reply(req, NULL, 0);
}

uint32_t fs_op_fsync(struct fs_session *s, struct fs_req *req)
{
	return do_fsync(s, req, 0);
}

uint32_t fs_op_fsyncdir(struct fs_session *s, struct fs_req *req)
{
	return do_fsync(s, req, 1);
}

/* ---- READ / WRITE ---- */

uint32_t fs_op_read(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_read_in *in = req->arg;
	struct fs_file *f;
	struct iovec iov;
	ssize_t n;

	if (in->size > fs_out_room(req))
		return fs_reply_err(req, EINVAL);
	if (in->offset > (uint64_t)INT64_MAX)
		return fs_reply_err(req, EINVAL);
	if ((f = fs_file_get(s, in->fh)) == NULL || f->is_dir) {
		fs_file_put(s, f);
		return fs_reply_err(req, EBADF);
	}
	/* straight into the shared reply area; never read back */
	iov.iov_base = (char *)req->out + FS_HDR;
	iov.iov_len = in->size;
	n = preadv(f->fd, &iov, 1, (off_t)in->offset);
	if (n < 0) {
		int rc = -errno;

		fs_file_put(s, f);
		return fs_reply_err(req, rc);
	}
	fs_file_put(s, f);
	atomic_fetch_add(&s->st_read, (uint64_t)n);
	return fs_reply_len(req, (size_t)n);
}

uint32_t fs_op_write(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_write_in *in = req->arg;
	struct fuse_write_out out;
	struct fs_file *f;
	size_t done = 0, wlen = req->wlen;
	int64_t before = -1;
	ssize_t n;
	int rc = 0;

	if (in->size != req->wlen || (req->wlen && req->wdata == NULL))
		return fs_reply_err(req, EINVAL);
	if (in->offset > (uint64_t)INT64_MAX ||
	    in->offset + in->size > (uint64_t)INT64_MAX)
		return fs_reply_err(req, EFBIG);
	if ((f = fs_file_get(s, in->fh)) == NULL || f->is_dir) {
		fs_file_put(s, f);
		return fs_reply_err(req, EBADF);
	}
	if ((rc = quota_before(s, f->fd, in->offset, &wlen, &before)) != 0) {
		fs_file_put(s, f);
		return fs_reply_err(req, rc);
	}
	while (done < wlen) {
		n = pwrite(f->fd, (const char *)req->wdata + done,
		    wlen - done, (off_t)(in->offset + done));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	if (done > 0)
		atomic_store(&f->written, 1);
	quota_after(s, f->fd, before);
	fs_file_put(s, f);
	if (done == 0 && rc != 0)
		return fs_reply_err(req, rc);
	atomic_fetch_add(&s->st_written, done);
	memset(&out, 0, sizeof(out));
	out.size = (uint32_t)done;
	return fs_reply(req, &out, sizeof(out));
}

/* ---- FALLOCATE / LSEEK / COPY_FILE_RANGE ---- */

uint32_t fs_op_fallocate(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_fallocate_in *in = req->arg;
	struct fs_file *f;
	uint32_t ok = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE |
	    FALLOC_FL_ZERO_RANGE;
	int64_t before = -1;
	int rc;

	if (in->mode & ~ok)
		return fs_reply_err(req, EOPNOTSUPP);
	if (in->offset > (uint64_t)INT64_MAX ||
	    in->length > (uint64_t)INT64_MAX - in->offset)
		return fs_reply_err(req, EFBIG);
	if ((f = fs_file_get(s, in->fh)) == NULL || f->is_dir) {
		fs_file_put(s, f);
		return fs_reply_err(req, EBADF);
	}
	rc = 0;
	if (!(in->mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) ||
	    !(in->mode & FALLOC_FL_KEEP_SIZE)) {
		size_t want = in->length > SIZE_MAX ? SIZE_MAX :
		    (size_t)in->length, got = want;

		rc = quota_before(s, f->fd, in->offset, &got, &before);
		if (rc == 0 && got < want)
			rc = -EDQUOT;	/* all or nothing */
	}
	if (rc == 0)
		rc = fallocate(f->fd, (int)in->mode, (off_t)in->offset,
		    (off_t)in->length) ? -errno : 0;
	if (rc == 0)
		atomic_store(&f->written, 1);
	quota_after(s, f->fd, before);
	fs_file_put(s, f);
	return rc ? fs_reply_err(req, rc) : fs_reply(req, NULL, 0);
}

uint32_t fs_op_lseek(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_lseek_in *in = req->arg;
	struct fuse_lseek_out out;
	struct fs_file *f;
	off_t r;
	int rc;

	if (in->whence != SEEK_DATA && in->whence != SEEK_HOLE &&
	    in->whence != SEEK_SET && in->whence != SEEK_END)
		return fs_reply_err(req, EINVAL);
	if (in->offset > (uint64_t)INT64_MAX)
		return fs_reply_err(req, ENXIO);
	if ((f = fs_file_get(s, in->fh)) == NULL || f->is_dir) {
		fs_file_put(s, f);
		return fs_reply_err(req, EBADF);
	}
	r = lseek(f->fd, (off_t)in->offset, (int)in->whence);
	rc = r < 0 ? -errno : 0;
	fs_file_put(s, f);
	if (rc)
		return fs_reply_err(req, rc);
	memset(&out, 0, sizeof(out));
	out.offset = (uint64_t)r;
	return fs_reply(req, &out, sizeof(out));
}

uint32_t fs_op_copy_file_range(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_copy_file_range_in *in = req->arg;
	struct fuse_write_out out;
	struct fs_file *fi = NULL, *fo = NULL;
	loff_t oi = (loff_t)in->off_in, oo = (loff_t)in->off_out;
	size_t len = in->len > (1u << 30) ? (1u << 30) : (size_t)in->len;
	int64_t before = -1;
	ssize_t n;
	int rc;

	if (in->flags != 0)
		return fs_reply_err(req, EINVAL);
	if (in->off_in > (uint64_t)INT64_MAX ||
	    in->off_out > (uint64_t)INT64_MAX)
		return fs_reply_err(req, EINVAL);
	fi = fs_file_get(s, in->fh_in);
	fo = fs_file_get(s, in->fh_out);
	if (fi == NULL || fo == NULL || fi->is_dir || fo->is_dir) {
		rc = -EBADF;
		goto out;
	}
	if ((rc = quota_before(s, fo->fd, in->off_out, &len, &before)) != 0)
		goto out;
	n = copy_file_range(fi->fd, &oi, fo->fd, &oo, len, 0);
	quota_after(s, fo->fd, before);
	if (n < 0) {
		rc = -errno;
		goto out;
	}
	if (n > 0)
		atomic_store(&fo->written, 1);
	atomic_fetch_add(&s->st_written, (uint64_t)n);
	fs_file_put(s, fi);
	fs_file_put(s, fo);
	memset(&out, 0, sizeof(out));
	out.size = (uint32_t)n;
	return fs_reply(req, &out, sizeof(out));
out:
	fs_file_put(s, fi);
	fs_file_put(s, fo);
	return fs_reply_err(req, rc);
}

/* ---- directories ---- */

uint32_t fs_op_opendir(struct fs_session *s, struct fs_req *req)
{
	struct fs_inode *ino;
	uint64_t fh;
	int rc, fd;

	if ((ino = fs_inode_get(s, req->in.nodeid, &rc)) == NULL)
		return fs_reply_err(req, rc);
	if (ino->type != S_IFDIR) {
		rc = -ENOTDIR;
		goto out;
	}
	if ((fd = fs_reopen(s, ino, O_RDONLY | O_DIRECTORY)) < 0) {
		rc = fd;
		goto out;
	}
	if ((rc = fs_file_new(s, ino, fd, 1, &fh)) != 0) {
		close(fd);
		goto out;
	}
	fs_inode_put(s, ino);
	return reply_open(req, fh, 0);
out:
	fs_inode_put(s, ino);
	return fs_reply_err(req, rc);
}

uint32_t fs_op_releasedir(struct fs_session *s, struct fs_req *req)
{
	const struct fuse_release_in *in = req->arg;
	struct fs_file *f = file_take(s, in->fh, 1);

	if (f == NULL)
		return fs_reply_err(req, EBADF);
	fs_file_put(s, f);
	return fs_reply(req, NULL, 0);
}

static int is_dot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

/*
 * One READDIR(PLUS) reply from the handle's getdents buffer.  Offsets are
 * the host's d_off values; a request at the offset where the last reply
 * stopped continues from the buffer, any other offset seeks.  For PLUS,
 * every entry except "." and ".." is looked up (one nlookup each, which
 * the kernel forgets later); the lookup happens only once the entry is
 * known to fit, so nothing is counted that the kernel does not receive.
 */
static uint32_t do_readdir(struct fs_session *s, struct fs_req *req,
			   int plus)
{
	const struct fuse_read_in *in = req->arg;
	struct fs_file *f;
	size_t size, pos = 0;
	int rc = 0;
	union {
		struct fuse_direntplus dp;
		char b[sizeof(struct fuse_direntplus) + NAME_MAX + 8];
	} rec;

	if (in->offset > (uint64_t)INT64_MAX)
		return fs_reply_err(req, EINVAL);
	if ((f = fs_file_get(s, in->fh)) == NULL || !f->is_dir) {
		fs_file_put(s, f);
		return fs_reply_err(req, EBADF);
	}
	size = in->size < fs_out_room(req) ? in->size : fs_out_room(req);
	pthread_mutex_lock(&f->dlock);
	if (f->dbuf == NULL && (f->dbuf = malloc(FS_DIRBUF)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if ((int64_t)in->offset != f->dnext) {
		if (lseek(f->fd, (off_t)in->offset, SEEK_SET) < 0) {
			rc = -errno;
			goto out;
		}
		f->dlen = f->dpos = 0;
		f->dnext = (int64_t)in->offset;
	}
	for (;;) {
		struct fs_dirent64 d;
		const char *name;
		size_t nlen, reclen, hdr;
		struct fuse_dirent *de;

		if (f->dpos >= f->dlen) {
			long n = syscall(SYS_getdents64, f->fd, f->dbuf,
			    FS_DIRBUF);

			if (n < 0) {
				if (pos == 0)
					rc = -errno;
				break;
			}
			if (n == 0)
				break;
			f->dlen = (size_t)n;
			f->dpos = 0;
		}
		memcpy(&d, f->dbuf + f->dpos, sizeof(d));
		name = f->dbuf + f->dpos + offsetof(struct fs_dirent64, d_name);
		nlen = strnlen(name, NAME_MAX + 1);
		if (nlen > NAME_MAX || d.d_reclen == 0) {
			f->dpos = f->dlen;	/* cannot happen; stop */
			break;
		}
		hdr = plus ? offsetof(struct fuse_direntplus, dirent) : 0;
		reclen = hdr + FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + nlen);
		if (pos + reclen > size)
			break;
		memset(&rec, 0, sizeof(rec));
		de = (struct fuse_dirent *)(void *)(rec.b + hdr);
		de->ino = d.d_ino;
		de->off = (uint64_t)d.d_off;
		de->namelen = (uint32_t)nlen;
		de->type = d.d_type;
		memcpy(rec.b + hdr + FUSE_NAME_OFFSET, name, nlen);
		if (plus && !is_dot(name)) {
			struct fs_inode *ino;
			struct stat st;
			int fd = fs_lookup_fd(s, f->fd, name);

			if (fd >= 0 && fstat(fd, &st) == 0 &&
			    fs_inode_add(s, fd, &st, &ino) == 0) {
				fs_fill_entry(s, &rec.dp.entry_out, ino->nodeid,
					      &st);
				fs_inode_put(s, ino);
			} else if (fd >= 0) {
				close(fd);	/* entry without attributes */
			}
		} else if (plus) {
			rec.dp.entry_out.attr.ino = d.d_ino;
			rec.dp.entry_out.attr.mode = (uint32_t)d.d_type << 12;
		}
		(void)fs_out_put(req, pos, rec.b, reclen);	/* fits */
		pos += reclen;
		f->dpos += d.d_reclen;
		f->dnext = d.d_off;
	}
out:
	pthread_mutex_unlock(&f->dlock);
	fs_file_put(s, f);
	return rc ? fs_reply_err(req, rc) : fs_reply_len(req, pos);
}

uint32_t fs_op_readdir(struct fs_session *s, struct fs_req *req)
{
	return do_readdir(s, req, 0);
}

uint32_t fs_op_readdirplus(struct fs_session *s, struct fs_req *req)
{
	return do_readdir(s, req, 1);
}

/* ---- filesystem-wide ---- */

uint32_t fs_op_statfs(struct fs_session *s, struct fs_req *req)
{
	struct fuse_statfs_out out;
	struct fs_inode *ino;
	struct statfs sf;
	int rc;

	ino = fs_inode_get(s, req->in.nodeid ? req->in.nodeid :
	    FUSE_ROOT_ID, &rc);
	if (ino == NULL)
		return fs_reply_err(req, rc);
	rc = fstatfs(ino->fd, &sf) ? -errno : 0;
	fs_inode_put(s, ino);
	if (rc)
		return fs_reply_err(req, rc);
	memset(&out, 0, sizeof(out));
	out.st.blocks = (uint64_t)sf.f_blocks;
	out.st.bfree = (uint64_t)sf.f_bfree;
	out.st.bavail = (uint64_t)sf.f_bavail;
	out.st.files = (uint64_t)sf.f_files;
	out.st.ffree = (uint64_t)sf.f_ffree;
	out.st.bsize = (uint32_t)sf.f_bsize;
	out.st.namelen = (uint32_t)sf.f_namelen;
	out.st.frsize = (uint32_t)sf.f_frsize;
	quota_statfs(s, &out.st);
	return fs_reply(req, &out, sizeof(out));
}

uint32_t fs_op_syncfs(struct fs_session *s, struct fs_req *req)
{
	int fd, rc;

	/* syncfs() wants a real descriptor, not the O_PATH root */
	fd = fs_reopen(s, s->root, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return fs_reply_err(req, fd);
	rc = syncfs(fd) ? -errno : 0;
	close(fd);
	return rc ? fs_reply_err(req, rc) : fs_reply(req, NULL, 0);
}
