/*
 * Unit tests of the backend's filesystem layer (backend/fs_*.c): fs_handle()
 * is driven with hand-built FUSE frames against a private temporary
 * directory, no FUSE mount and no connection layer involved.  fs_complete()
 * and fs_emit_event(), which other layers implement, are recorded here.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../backend/fs.h"
#include "policy.h"

/* ---- stand-ins for the other layers ---- */

static pthread_mutex_t rec_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rec_cond = PTHREAD_COND_INITIALIZER;
static int ncomplete;
static uint32_t complete_len;
static int nevents;
static struct {
	enum fs_event_op op;
	uint32_t flags;
	char path[512], path2[512];
	uint64_t size;
} last_ev;

void fs_complete(void *token, uint32_t len)
{
	pthread_mutex_lock(&rec_lock);
	ncomplete++;
	complete_len = len;
	pthread_cond_broadcast(&rec_cond);
	pthread_mutex_unlock(&rec_lock);
}

/* The verdict hook (backend/verdict.c) is not linked here: allow all. */
int bk_verdict_check(struct fs_session *s, int fd, uint32_t open_flags)
{
	(void)s;
	(void)fd;
	(void)open_flags;
	return 0;
}

void fs_emit_event(struct fs_session *s, const struct fs_event *ev)
{
	pthread_mutex_lock(&rec_lock);
	nevents++;
	last_ev.op = ev->op;
	last_ev.flags = ev->flags;
	snprintf(last_ev.path, sizeof(last_ev.path), "%s",
		 ev->path ? ev->path : "");
	snprintf(last_ev.path2, sizeof(last_ev.path2), "%s",
		 ev->path2 ? ev->path2 : "");
	last_ev.size = ev->size;
	pthread_mutex_unlock(&rec_lock);
}

/* ---- fixture ---- */

#define OUTCAP	(16 + 65536)

struct fx {
	char dir[64];
	int dirfd;		/* ordinary fd of the export, for checks */
	struct fs_session *s;
	uint64_t unique;
	uint8_t out[OUTCAP + 64];
	uint32_t outcap;
};

static struct fx *FX;

static struct fs_session *new_session(struct fx *fx, int ro, uint32_t cache)
{
	struct fs_session_params p;

	memset(&p, 0, sizeof(p));
	p.domain = "vm1";
	p.export_tag = "shared";
	p.export_path = fx->dir;
	p.export_fd = open(fx->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(p.export_fd >= 0);
	p.readonly = ro;
	p.max_write = 65536;
	p.max_inodes_cached = cache;
	return fs_session_new(&p);
}

/* Send one request; returns the reply length, error in *err. */
static uint32_t call_w(uint32_t op, uint64_t nodeid, const void *arg,
		       uint32_t arglen, const void *wdata, uint32_t wlen,
		       int *err)
{
	struct fs_req r;
	struct fuse_out_header oh;
	uint32_t len;

	memset(&r, 0, sizeof(r));
	r.in.len = (uint32_t)sizeof(r.in) + arglen + wlen;
	r.in.opcode = op;
	r.in.unique = ++FX->unique;
	r.in.nodeid = nodeid;
	r.in.uid = 0;
	r.in.gid = 0;
	r.arg = arg;
	r.arglen = arglen;
	r.wdata = wdata;
	r.wlen = wlen;
	r.out = FX->out;
	r.outcap = FX->outcap;
	r.token = FX;
	memset(FX->out, 0xa5, sizeof(FX->out));
	len = fs_handle(FX->s, &r);
	if (len == FS_NO_REPLY || len == FS_DEFERRED)
		return len;
	assert_true(len >= sizeof(oh));
	assert_true(len <= FX->outcap);
	/* nothing written past the reply area */
	assert_int_equal(FX->out[FX->outcap], 0xa5);
	memcpy(&oh, FX->out, sizeof(oh));
	assert_int_equal(oh.len, len);
	assert_int_equal(oh.unique, r.in.unique);
	if (err)
		*err = -oh.error;
	return len;
}

static uint32_t call(uint32_t op, uint64_t nodeid, const void *arg,
		     uint32_t arglen, int *err)
{
	return call_w(op, nodeid, arg, arglen, NULL, 0, err);
}

static void *payload(void)
{
	return FX->out + sizeof(struct fuse_out_header);
}

static void do_init(void)
{
	struct fuse_init_in in;
	struct fuse_init_out out;
	int err;

	memset(&in, 0, sizeof(in));
	in.major = 7;
	in.minor = 38;
	in.max_readahead = 131072;
	in.flags = 0xffffffffu;
	call(FUSE_INIT, 0, &in, sizeof(in), &err);
	assert_int_equal(err, 0);
	memcpy(&out, payload(), sizeof(out));
	assert_int_equal(out.major, 7);
	assert_int_equal(out.minor, 38);
	assert_int_equal(out.max_write, 65536);
	assert_true(out.flags & FUSE_POSIX_LOCKS);
	assert_false(out.flags & FUSE_WRITEBACK_CACHE);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_fs.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->dirfd = open(fx->dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	assert_true(fx->dirfd >= 0);
	fx->outcap = OUTCAP;
	FX = fx;
	fx->s = new_session(fx, 0, 0);
	assert_non_null(fx->s);
	do_init();
	nevents = 0;
	ncomplete = 0;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	char cmd[128];

	fs_session_cancel_deferred(fx->s);
	fs_session_free(fx->s);
	close(fx->dirfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

/* ---- helpers ---- */

static uint64_t lookup(uint64_t parent, const char *name, int *err,
		       struct fuse_entry_out *eo)
{
	struct fuse_entry_out e;
	int e2;

	call(FUSE_LOOKUP, parent, name, (uint32_t)strlen(name) + 1, &e2);
	if (err)
		*err = e2;
	if (e2)
		return 0;
	memcpy(&e, payload(), sizeof(e));
	if (eo)
		*eo = e;
	return e.nodeid;
}

static void host_write(const char *name, const char *data)
{
	int fd = openat(FX->dirfd, name, O_CREAT | O_WRONLY | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
	close(fd);
}

static uint64_t create(uint64_t parent, const char *name, uint64_t *fh,
		       int *err)
{
	char buf[sizeof(struct fuse_create_in) + 300];
	struct fuse_create_in *in = (void *)buf;
	struct fuse_entry_out e;
	struct fuse_open_out o;
	int e2;

	memset(buf, 0, sizeof(buf));
	in->flags = O_RDWR | O_CREAT | O_EXCL;
	in->mode = S_IFREG | 0666;
	in->umask = 022;
	strcpy(buf + sizeof(*in), name);
	call(FUSE_CREATE, parent, buf,
	     (uint32_t)(sizeof(*in) + strlen(name) + 1), &e2);
	if (err)
		*err = e2;
	if (e2)
		return 0;
	memcpy(&e, payload(), sizeof(e));
	memcpy(&o, (char *)payload() + sizeof(e), sizeof(o));
	*fh = o.fh;
	return e.nodeid;
}

static int do_write(uint64_t nodeid, uint64_t fh, uint64_t off,
		    const void *data, uint32_t len)
{
	struct fuse_write_in in;
	struct fuse_write_out out;
	int err;

	memset(&in, 0, sizeof(in));
	in.fh = fh;
	in.offset = off;
	in.size = len;
	call_w(FUSE_WRITE, nodeid, &in, sizeof(in), data, len, &err);
	if (err)
		return -err;
	memcpy(&out, payload(), sizeof(out));
	return (int)out.size;
}

static int do_read(uint64_t nodeid, uint64_t fh, uint64_t off, void *buf,
		   uint32_t len)
{
	struct fuse_read_in in;
	uint32_t n;
	int err;

	memset(&in, 0, sizeof(in));
	in.fh = fh;
	in.offset = off;
	in.size = len;
	n = call(FUSE_READ, nodeid, &in, sizeof(in), &err);
	if (err)
		return -err;
	n -= (uint32_t)sizeof(struct fuse_out_header);
	memcpy(buf, payload(), n);
	return (int)n;
}

static int do_release(uint64_t nodeid, uint64_t fh, int dir)
{
	struct fuse_release_in in;
	int err;

	memset(&in, 0, sizeof(in));
	in.fh = fh;
	call(dir ? FUSE_RELEASEDIR : FUSE_RELEASE, nodeid, &in, sizeof(in),
	     &err);
	return err;
}

/* ---- tests ---- */

static void test_init(void **state)
{
	struct fx *fx = *state;
	struct fuse_init_in in;
	int err;

	/* a second session: requests before INIT get EIO */
	fs_session_free(fx->s);
	fx->s = new_session(fx, 0, 0);
	assert_non_null(fx->s);
	call(FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0, &err);
	assert_int_equal(err, EIO);
	/* an old minor is refused */
	memset(&in, 0, sizeof(in));
	in.major = 7;
	in.minor = 5;
	call(FUSE_INIT, 0, &in, 16, &err);
	assert_int_equal(err, EPROTO);
	/* short INIT */
	call(FUSE_INIT, 0, &in, 8, &err);
	assert_int_equal(err, EINVAL);
	do_init();
	/* a second INIT is an error */
	call(FUSE_INIT, 0, &in, sizeof(in), &err);
	assert_int_equal(err, EIO);
	/* unknown opcodes */
	call(4242, FUSE_ROOT_ID, NULL, 0, &err);
	assert_int_equal(err, ENOSYS);
	call(FUSE_IOCTL, FUSE_ROOT_ID, NULL, 0, &err);
	assert_int_equal(err, ENOSYS);
	call(FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0, &err);
	assert_int_equal(err, 0);
	assert_true(fs_opcode_mutates(FUSE_WRITE));
	assert_true(fs_opcode_mutates(FUSE_RENAME2));
	assert_false(fs_opcode_mutates(FUSE_READ));
	assert_false(fs_opcode_mutates(99999));
}

static void test_lookup_names(void **state)
{
	char big[300], bad[8];
	uint64_t id;
	int err;

	(void)state;
	host_write("good", "x");
	id = lookup(FUSE_ROOT_ID, "good", &err, NULL);
	assert_int_equal(err, 0);
	assert_true(id > FUSE_ROOT_ID);
	/* same inode, same nodeid */
	assert_int_equal(lookup(FUSE_ROOT_ID, "good", &err, NULL), id);

	lookup(FUSE_ROOT_ID, "missing", &err, NULL);
	assert_int_equal(err, ENOENT);
	lookup(FUSE_ROOT_ID, "..", &err, NULL);
	assert_int_equal(err, EINVAL);
	lookup(FUSE_ROOT_ID, ".", &err, NULL);
	assert_int_equal(err, EINVAL);
	lookup(FUSE_ROOT_ID, "a/b", &err, NULL);
	assert_int_equal(err, EINVAL);
	lookup(FUSE_ROOT_ID, "/", &err, NULL);
	assert_int_equal(err, EINVAL);
	lookup(FUSE_ROOT_ID, "", &err, NULL);
	assert_int_equal(err, EINVAL);
	memset(big, 'a', 256);
	big[256] = '\0';
	lookup(FUSE_ROOT_ID, big, &err, NULL);
	assert_int_equal(err, ENAMETOOLONG);
	big[255] = '\0';
	lookup(FUSE_ROOT_ID, big, &err, NULL);
	assert_int_equal(err, ENOENT);	/* 255 is fine */
	/* no terminating NUL within the declared length */
	call(FUSE_LOOKUP, FUSE_ROOT_ID, "good", 4, &err);
	assert_int_equal(err, EINVAL);
	/* NUL inside the declared length */
	memcpy(bad, "go\0od\0", 7);
	call(FUSE_LOOKUP, FUSE_ROOT_ID, bad, 6, &err);
	assert_int_equal(err, EINVAL);
	/* empty argument */
	call(FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, &err);
	assert_int_equal(err, EINVAL);
	/* lookup below a regular file */
	lookup(id, "x", &err, NULL);
	assert_int_equal(err, ENOTDIR);
}

static void test_escapes(void **state)
{
	struct fx *fx = *state;
	struct fuse_entry_out e;
	uint64_t up, dots, sub, abs2;
	int err;

	assert_int_equal(symlinkat("/", fx->dirfd, "up"), 0);
	assert_int_equal(symlinkat("..", fx->dirfd, "dots"), 0);
	assert_int_equal(symlinkat("/etc", fx->dirfd, "etc"), 0);
	assert_int_equal(mkdirat(fx->dirfd, "sub", 0755), 0);

	/* a symlink is an inode of its own, never followed */
	up = lookup(FUSE_ROOT_ID, "up", &err, &e);
	assert_int_equal(err, 0);
	assert_true(S_ISLNK(e.attr.mode));
	lookup(up, "etc", &err, NULL);
	assert_int_equal(err, ENOTDIR);
	lookup(up, "tmp", &err, NULL);
	assert_int_equal(err, ENOTDIR);
	dots = lookup(FUSE_ROOT_ID, "dots", &err, &e);
	assert_int_equal(err, 0);
	assert_true(S_ISLNK(e.attr.mode));
	lookup(dots, "tmp", &err, NULL);
	assert_int_equal(err, ENOTDIR);
	abs2 = lookup(FUSE_ROOT_ID, "etc", &err, &e);
	assert_int_equal(err, 0);
	lookup(abs2, "passwd", &err, NULL);
	assert_int_equal(err, ENOTDIR);
	/* READLINK gives the target text, the guest kernel resolves it */
	assert_true(call(FUSE_READLINK, up, NULL, 0, &err) ==
		    sizeof(struct fuse_out_header) + 1);
	assert_int_equal(err, 0);
	assert_int_equal(((char *)payload())[0], '/');
	/* ".." from a subdirectory is refused, not resolved */
	sub = lookup(FUSE_ROOT_ID, "sub", &err, NULL);
	assert_int_equal(err, 0);
	lookup(sub, "..", &err, NULL);
	assert_int_equal(err, EINVAL);
	/* OPEN of a symlink does not follow it */
	{
		struct fuse_open_in oi;

		memset(&oi, 0, sizeof(oi));
		oi.flags = O_RDONLY;
		call(FUSE_OPEN, up, &oi, sizeof(oi), &err);
		assert_int_equal(err, ELOOP);
		call(FUSE_OPENDIR, up, &oi, sizeof(oi), &err);
		assert_int_equal(err, ENOTDIR);
	}
	/* creating through a symlink-named parent fails too */
	{
		uint64_t fh;

		create(up, "evil", &fh, &err);
		assert_int_equal(err, ENOTDIR);
		assert_int_not_equal(access("/evil", F_OK), 0);
	}
}

static void test_roundtrip(void **state)
{
	struct fx *fx = *state;
	char buf[8192], big[8192];
	uint64_t id, fh, big_off = 5ULL << 30;	/* 5 GiB */
	struct stat st;
	int err, n;

	id = create(FUSE_ROOT_ID, "file", &fh, &err);
	assert_int_equal(err, 0);
	assert_int_equal(last_ev.op, FS_EV_CREATE);
	assert_string_equal(last_ev.path, "/file");
	/* umask applied: 0666 & ~022 */
	assert_int_equal(fstatat(fx->dirfd, "file", &st, 0), 0);
	assert_int_equal(st.st_mode & 0777, 0644);
	assert_int_equal(do_write(id, fh, 0, "hello world", 11), 11);
	memset(big, 'z', sizeof(big));
	assert_int_equal(do_write(id, fh, big_off, big, sizeof(big)),
			 (int)sizeof(big));
	n = do_read(id, fh, 0, buf, 100);
	assert_int_equal(n, 100);	/* sparse up to the 5 GiB write */
	assert_memory_equal(buf, "hello world", 11);
	n = do_read(id, fh, big_off, buf, sizeof(buf));
	assert_int_equal(n, (int)sizeof(buf));
	assert_memory_equal(buf, big, sizeof(big));
	/* WRITE size must match its payload */
	{
		struct fuse_write_in in;

		memset(&in, 0, sizeof(in));
		in.fh = fh;
		in.size = 10;
		call_w(FUSE_WRITE, id, &in, sizeof(in), "abc", 3, &err);
		assert_int_equal(err, EINVAL);
	}
	/* a bad file handle */
	assert_int_equal(do_read(id, fh + 1000, 0, buf, 10), -EBADF);
	nevents = 0;
	assert_int_equal(do_release(id, fh, 0), 0);
	assert_int_equal(nevents, 1);
	assert_int_equal(last_ev.op, FS_EV_MODIFY);
	assert_string_equal(last_ev.path, "/file");
	assert_int_equal(last_ev.size, big_off + sizeof(big));
	/* released: the handle is gone */
	assert_int_equal(do_read(id, fh, 0, buf, 10), -EBADF);
	assert_int_equal(do_release(id, fh, 0), EBADF);
	/* the host sees the data */
	assert_int_equal(fstatat(fx->dirfd, "file", &st, 0), 0);
	assert_int_equal((uint64_t)st.st_size, big_off + sizeof(big));
	/* CREATE of an existing name with O_EXCL */
	create(FUSE_ROOT_ID, "file", &fh, &err);
	assert_int_equal(err, EEXIST);
	/* GETATTR */
	call(FUSE_GETATTR, id, NULL, 0, &err);
	assert_int_equal(err, 0);
	{
		struct fuse_attr_out ao;

		memcpy(&ao, payload(), sizeof(ao));
		assert_int_equal(ao.attr.size, big_off + sizeof(big));
		assert_int_equal(ao.attr_valid, 1);
	}
}

static int parse_dir(uint32_t len, int plus, char names[][32], int max,
		     uint64_t *nodeids)
{
	const uint8_t *p = payload();
	size_t pos = 0, n = len - sizeof(struct fuse_out_header);
	int cnt = 0;

	while (pos < n && cnt < max) {
		struct fuse_dirent d;
		size_t hdr = plus ? sizeof(struct fuse_entry_out) : 0;

		if (plus) {
			struct fuse_entry_out e;

			memcpy(&e, p + pos, sizeof(e));
			nodeids[cnt] = e.nodeid;
		}
		memcpy(&d, p + pos + hdr, sizeof(d));
		assert_true(d.namelen < 32);
		memcpy(names[cnt], p + pos + hdr + FUSE_NAME_OFFSET,
		       d.namelen);
		names[cnt][d.namelen] = '\0';
		cnt++;
		pos += hdr + FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + d.namelen);
	}
	assert_int_equal(pos, n);
	return cnt;
}

static void test_readdir(void **state)
{
	struct fuse_open_in oi;
	struct fuse_open_out oo;
	struct fuse_read_in ri;
	char names[64][32];
	uint64_t nodeids[64], fh;
	uint32_t len;
	int err, n, i, seen = 0;

	(void)state;
	host_write("a", "1");
	host_write("b", "2");
	host_write("c", "3");
	memset(&oi, 0, sizeof(oi));
	call(FUSE_OPENDIR, FUSE_ROOT_ID, &oi, sizeof(oi), &err);
	assert_int_equal(err, 0);
	memcpy(&oo, payload(), sizeof(oo));
	fh = oo.fh;
	memset(&ri, 0, sizeof(ri));
	ri.fh = fh;
	ri.size = 4096;
	len = call(FUSE_READDIR, FUSE_ROOT_ID, &ri, sizeof(ri), &err);
	assert_int_equal(err, 0);
	n = parse_dir(len, 0, names, 64, NULL);
	assert_int_equal(n, 5);	/* . .. a b c */
	for (i = 0; i < n; i++)
		seen |= (strcmp(names[i], "a") == 0) |
		    (strcmp(names[i], "b") == 0) << 1 |
		    (strcmp(names[i], "c") == 0) << 2;
	assert_int_equal(seen, 7);

	/* a tiny buffer: one entry per call, continuing at d_off */
	{
		uint64_t off = 0;
		int total = 0;

		for (;;) {
			struct fuse_dirent d;

			ri.offset = off;
			ri.size = 40;
			len = call(FUSE_READDIR, FUSE_ROOT_ID, &ri,
				   sizeof(ri), &err);
			assert_int_equal(err, 0);
			if (len == sizeof(struct fuse_out_header))
				break;
			memcpy(&d, payload(), sizeof(d));
			off = d.off;
			total++;
			assert_true(total < 20);
		}
		assert_int_equal(total, 5);
	}

	/* READDIRPLUS: nodeids for everything but . and .. */
	ri.offset = 0;
	ri.size = 8192;
	len = call(FUSE_READDIRPLUS, FUSE_ROOT_ID, &ri, sizeof(ri), &err);
	assert_int_equal(err, 0);
	n = parse_dir(len, 1, names, 64, nodeids);
	assert_int_equal(n, 5);
	for (i = 0; i < n; i++) {
		if (!strcmp(names[i], ".") || !strcmp(names[i], ".."))
			assert_int_equal(nodeids[i], 0);
		else
			assert_true(nodeids[i] > FUSE_ROOT_ID);
		if (!strcmp(names[i], "a")) {
			/* the entry counts as a lookup: one FORGET drops it */
			struct fuse_forget_in fi = { .nlookup = 1 };

			call(FUSE_GETATTR, nodeids[i], NULL, 0, &err);
			assert_int_equal(err, 0);
			assert_int_equal(call(FUSE_FORGET, nodeids[i], &fi,
					      sizeof(fi), &err), FS_NO_REPLY);
			call(FUSE_GETATTR, nodeids[i], NULL, 0, &err);
			assert_int_equal(err, ESTALE);
		}
	}
	/* READ on a dir handle, RELEASE of a dir handle: wrong kind */
	assert_int_equal(do_read(FUSE_ROOT_ID, fh, 0, names, 10), -EBADF);
	assert_int_equal(do_release(FUSE_ROOT_ID, fh, 0), EBADF);
	assert_int_equal(do_release(FUSE_ROOT_ID, fh, 1), 0);
	call(FUSE_READDIR, FUSE_ROOT_ID, &ri, sizeof(ri), &err);
	assert_int_equal(err, EBADF);
}

static void rename2(uint64_t from, const char *a, uint64_t to,
		    const char *b, uint32_t flags, int *err)
{
	char buf[sizeof(struct fuse_rename2_in) + 64];
	struct fuse_rename2_in *in = (void *)buf;
	size_t la = strlen(a) + 1, lb = strlen(b) + 1;

	memset(buf, 0, sizeof(buf));
	in->newdir = to;
	in->flags = flags;
	memcpy(buf + sizeof(*in), a, la);
	memcpy(buf + sizeof(*in) + la, b, lb);
	call(FUSE_RENAME2, from, buf, (uint32_t)(sizeof(*in) + la + lb), err);
}

static void test_rename(void **state)
{
	struct fx *fx = *state;
	char buf[16];
	uint64_t sub, x;
	int err, fd;

	host_write("x", "X");
	host_write("y", "Y");
	assert_int_equal(mkdirat(fx->dirfd, "d", 0755), 0);
	sub = lookup(FUSE_ROOT_ID, "d", &err, NULL);
	x = lookup(FUSE_ROOT_ID, "x", &err, NULL);
	assert_int_equal(err, 0);

	rename2(FUSE_ROOT_ID, "x", FUSE_ROOT_ID, "y", RENAME_EXCHANGE, &err);
	assert_int_equal(err, 0);
	assert_int_equal(last_ev.op, FS_EV_RENAME);
	assert_int_equal(last_ev.flags, FS_EV_F_EXCHANGE);
	assert_string_equal(last_ev.path, "/x");
	assert_string_equal(last_ev.path2, "/y");
	fd = openat(fx->dirfd, "x", O_RDONLY);
	assert_int_equal(read(fd, buf, 1), 1);
	close(fd);
	assert_int_equal(buf[0], 'Y');

	rename2(FUSE_ROOT_ID, "x", FUSE_ROOT_ID, "y", RENAME_NOREPLACE, &err);
	assert_int_equal(err, EEXIST);
	rename2(FUSE_ROOT_ID, "x", FUSE_ROOT_ID, "y", 0x80, &err);
	assert_int_equal(err, EINVAL);
	rename2(FUSE_ROOT_ID, "x", FUSE_ROOT_ID, "..", 0, &err);
	assert_int_equal(err, EINVAL);
	rename2(FUSE_ROOT_ID, "x", 999999, "z", 0, &err);
	assert_int_equal(err, ESTALE);

	/* plain RENAME into a subdirectory; the nodeid follows the inode */
	{
		char b2[sizeof(struct fuse_rename_in) + 16];
		struct fuse_rename_in *in = (void *)b2;

		in->newdir = sub;
		memcpy(b2 + sizeof(*in), "y\0moved", 8);
		call(FUSE_RENAME, FUSE_ROOT_ID, b2, sizeof(*in) + 8, &err);
		assert_int_equal(err, 0);
		assert_string_equal(last_ev.path2, "/d/moved");
	}
	/* x's nodeid is the file now at y... which moved to d/moved */
	call(FUSE_GETATTR, x, NULL, 0, &err);
	assert_int_equal(err, 0);
	assert_int_equal(lookup(sub, "moved", &err, NULL), x);

	/* UNLINK and RMDIR */
	call(FUSE_UNLINK, FUSE_ROOT_ID, "x", 2, &err);
	assert_int_equal(err, 0);
	assert_int_equal(last_ev.op, FS_EV_UNLINK);
	assert_string_equal(last_ev.path, "/x");
	call(FUSE_RMDIR, FUSE_ROOT_ID, "d", 2, &err);
	assert_int_equal(err, ENOTEMPTY);
	call(FUSE_UNLINK, sub, "moved", 6, &err);
	assert_int_equal(err, 0);
	call(FUSE_RMDIR, FUSE_ROOT_ID, "d", 2, &err);
	assert_int_equal(err, 0);
	assert_int_equal(last_ev.op, FS_EV_RMDIR);
	/* the unlinked file is still reachable through its nodeid */
	call(FUSE_GETATTR, x, NULL, 0, &err);
	assert_int_equal(err, 0);
}

static void test_bogus_nodeid(void **state)
{
	struct fuse_forget_in fi = { .nlookup = 5 };
	char bf[sizeof(struct fuse_batch_forget_in) + 3 * 16];
	struct fuse_batch_forget_in *b = (void *)bf;
	int err;

	(void)state;
	call(FUSE_GETATTR, 12345, NULL, 0, &err);
	assert_int_equal(err, ESTALE);
	call(FUSE_GETATTR, 0, NULL, 0, &err);
	assert_int_equal(err, EINVAL);
	call(FUSE_GETATTR, UINT64_MAX, NULL, 0, &err);
	assert_int_equal(err, ESTALE);
	lookup(777, "x", &err, NULL);
	assert_int_equal(err, ESTALE);
	assert_int_equal(call(FUSE_FORGET, 4444, &fi, sizeof(fi), &err),
			 FS_NO_REPLY);
	/* the root survives any FORGET */
	assert_int_equal(call(FUSE_FORGET, FUSE_ROOT_ID, &fi, sizeof(fi),
			      &err), FS_NO_REPLY);
	call(FUSE_GETATTR, FUSE_ROOT_ID, NULL, 0, &err);
	assert_int_equal(err, 0);
	/* a batch that claims more entries than it carries */
	memset(bf, 0, sizeof(bf));
	b->count = 1000000;
	assert_int_equal(call(FUSE_BATCH_FORGET, 0, bf, sizeof(bf), &err),
			 FS_NO_REPLY);
	/* short fixed argument */
	call(FUSE_SETATTR, FUSE_ROOT_ID, &fi, sizeof(fi), &err);
	assert_int_equal(err, EINVAL);
}

static void test_forget_then_use(void **state)
{
	struct fuse_forget_in fi = { .nlookup = 2 };
	uint64_t id, id2;
	int err;

	(void)state;
	host_write("f", "data");
	id = lookup(FUSE_ROOT_ID, "f", &err, NULL);
	assert_int_equal(lookup(FUSE_ROOT_ID, "f", &err, NULL), id);
	fi.nlookup = 1;
	call(FUSE_FORGET, id, &fi, sizeof(fi), &err);
	call(FUSE_GETATTR, id, NULL, 0, &err);
	assert_int_equal(err, 0);	/* one lookup left */
	call(FUSE_FORGET, id, &fi, sizeof(fi), &err);
	call(FUSE_GETATTR, id, NULL, 0, &err);
	assert_int_equal(err, ESTALE);
	/* a new lookup never gets the old nodeid back */
	id2 = lookup(FUSE_ROOT_ID, "f", &err, NULL);
	assert_int_equal(err, 0);
	assert_true(id2 != id);
}

static void test_reply_bounds(void **state)
{
	struct fx *fx = *state;
	struct fuse_open_in oi;
	struct fuse_open_out oo;
	struct fuse_read_in ri;
	char name[40];
	uint64_t id, fh;
	uint32_t len;
	int err, i;

	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "entry-with-a-long-name-%04d", i);
		host_write(name, "");
	}
	fx->outcap = 16 + 4096;
	memset(&oi, 0, sizeof(oi));
	call(FUSE_OPENDIR, FUSE_ROOT_ID, &oi, sizeof(oi), &err);
	memcpy(&oo, payload(), sizeof(oo));
	memset(&ri, 0, sizeof(ri));
	ri.fh = oo.fh;
	ri.size = 1 << 20;	/* asks for far more than fits */
	len = call(FUSE_READDIR, FUSE_ROOT_ID, &ri, sizeof(ri), &err);
	assert_int_equal(err, 0);
	assert_true(len <= fx->outcap && len > 16 + 3000);
	ri.offset = 0;
	len = call(FUSE_READDIRPLUS, FUSE_ROOT_ID, &ri, sizeof(ri), &err);
	assert_int_equal(err, 0);
	assert_true(len <= fx->outcap);
	do_release(FUSE_ROOT_ID, oo.fh, 1);

	fx->outcap = OUTCAP;
	id = create(FUSE_ROOT_ID, "big", &fh, &err);
	assert_int_equal(err, 0);
	fx->outcap = 16 + 4096;
	{
		char buf[8192];

		assert_int_equal(do_read(id, fh, 0, buf, 8192), -EINVAL);
		assert_int_equal(do_read(id, fh, 0, buf, 4096), 0);
	}
	/* a reply that cannot fit at all becomes an error, not an overrun */
	fx->outcap = 16 + 8;
	call(FUSE_GETATTR, id, NULL, 0, &err);
	assert_int_equal(err, EIO);
	lookup(FUSE_ROOT_ID, "big", &err, NULL);
	assert_int_equal(err, EIO);
	fx->outcap = OUTCAP;
	do_release(id, fh, 0);
}

static void test_eviction(void **state)
{
	struct fx *fx = *state;
	struct fs_stats st;
	uint64_t ids[64];
	char name[16];
	int err, i;

	fs_session_free(fx->s);
	fx->s = new_session(fx, 0, 4);
	assert_non_null(fx->s);
	do_init();
	for (i = 0; i < 64; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		host_write(name, name);
		ids[i] = lookup(FUSE_ROOT_ID, name, &err, NULL);
		assert_int_equal(err, 0);
	}
	fs_session_stats(fx->s, &st);
	assert_int_equal(st.inodes, 65);
	assert_true(st.fds_open <= 5);	/* 4 cached + the root */
	/* every evicted inode comes back by handle */
	for (i = 0; i < 64; i++) {
		struct fuse_attr_out ao;
		struct stat hs;

		call(FUSE_GETATTR, ids[i], NULL, 0, &err);
		assert_int_equal(err, 0);
		memcpy(&ao, payload(), sizeof(ao));
		snprintf(name, sizeof(name), "n%d", i);
		assert_int_equal(fstatat(fx->dirfd, name, &hs, 0), 0);
		assert_int_equal(ao.attr.ino, hs.st_ino);
	}
	/* an evicted inode that was deleted and replaced is stale */
	assert_int_equal(unlinkat(fx->dirfd, "n0", 0), 0);
	for (i = 1; i < 10; i++)
		call(FUSE_GETATTR, ids[i], NULL, 0, &err);
	call(FUSE_GETATTR, ids[0], NULL, 0, &err);
	assert_int_equal(err, ESTALE);
	fs_session_stats(fx->s, &st);
	assert_true(st.fds_open <= 5);
	assert_true(st.ops > 64);
}

static void test_readonly(void **state)
{
	struct fx *fx = *state;
	char buf[sizeof(struct fuse_mkdir_in) + 8];
	struct fuse_mkdir_in *mi = (void *)buf;
	struct fuse_open_in oi;
	uint64_t id, fh;
	int err;

	host_write("ro", "r");
	fs_session_free(fx->s);
	fx->s = new_session(fx, 1, 0);
	do_init();
	memset(buf, 0, sizeof(buf));
	mi->mode = 0755;
	memcpy(buf + sizeof(*mi), "dd", 3);
	call(FUSE_MKDIR, FUSE_ROOT_ID, buf, sizeof(*mi) + 3, &err);
	assert_int_equal(err, EROFS);
	create(FUSE_ROOT_ID, "new", &fh, &err);
	assert_int_equal(err, EROFS);
	id = lookup(FUSE_ROOT_ID, "ro", &err, NULL);
	memset(&oi, 0, sizeof(oi));
	oi.flags = O_RDWR;
	call(FUSE_OPEN, id, &oi, sizeof(oi), &err);
	assert_int_equal(err, EROFS);
	oi.flags = O_RDONLY;
	call(FUSE_OPEN, id, &oi, sizeof(oi), &err);
	assert_int_equal(err, 0);
}

/* noexec export: an OPEN with the kernel's exec flag is refused, and the
 * identity map shows unmapped owners as 65534 (fs_policy.c). */
static void test_policy_noexec_map(void **state)
{
	struct fx *fx = *state;
	struct fuse_open_in oi;
	struct fuse_attr_out ao;
	struct fuse_getattr_in gi;
	struct xf_config *cfg;
	char text[512], err_s[256];
	uint64_t id;
	int err;

	host_write("prog", "#!/bin/sh\n");
	snprintf(text, sizeof(text), "[export shared]\npath = %s\n"
		 "access = vm1:rw\nnoexec = YES\nmap-uid = 0-999:5000\n",
		 fx->dir);
	cfg = xf_config_parse("t", text, strlen(text), err_s, sizeof(err_s));
	assert_non_null(cfg);
	assert_int_equal(fs_session_set_policy(fx->s, cfg), 0);
	xf_config_free(cfg);
	id = lookup(FUSE_ROOT_ID, "prog", &err, NULL);
	assert_int_equal(err, 0);
	memset(&oi, 0, sizeof(oi));
	oi.flags = O_RDONLY | 0x20;	/* __FMODE_EXEC */
	call(FUSE_OPEN, id, &oi, sizeof(oi), &err);
	assert_int_equal(err, EACCES);
	oi.flags = O_RDONLY;
	call(FUSE_OPEN, id, &oi, sizeof(oi), &err);
	assert_int_equal(err, 0);
	memset(&gi, 0, sizeof(gi));
	call(FUSE_GETATTR, id, &gi, sizeof(gi), &err);
	assert_int_equal(err, 0);
	memcpy(&ao, payload(), sizeof(ao));
	/* the file belongs to the test's uid (root): outside 5000-5999 */
	if (getuid() == 0)
		assert_int_equal(ao.attr.uid, 65534);
}

/* quota: writes stop at the limit, an O_APPEND handle cannot grow the
 * file past it by lying about the offset, unlink frees (fs_policy.c) */
static void test_quota(void **state)
{
	struct fx *fx = *state;
	static char data[4096];
	char text[512], err_s[256], sdir[64], cmd[96];
	struct fuse_open_in oi;
	struct fuse_open_out oo;
	struct xf_config *cfg;
	uint64_t id, fh, fh2;
	int err, n;

	snprintf(sdir, sizeof(sdir), "/tmp/test_fs_state.XXXXXX");
	assert_non_null(mkdtemp(sdir));
	snprintf(text, sizeof(text), "[global]\nstate-dir = %s\n"
		 "[export shared]\npath = %s\naccess = vm1:rw\n"
		 "quota-bytes = 10K\nquota-inodes = 3\n", sdir, fx->dir);
	cfg = xf_config_parse("t", text, strlen(text), err_s, sizeof(err_s));
	assert_non_null(cfg);
	assert_int_equal(fs_session_set_policy(fx->s, cfg), 0);
	xf_config_free(cfg);
	id = create(FUSE_ROOT_ID, "q", &fh, &err);
	assert_int_equal(err, 0);
	assert_int_equal(do_write(id, fh, 0, data, 4096), 4096);
	assert_int_equal(do_write(id, fh, 4096, data, 4096), 4096);
	/* 2048 left: a short write, then EDQUOT */
	assert_int_equal(do_write(id, fh, 8192, data, 4096), 2048);
	assert_int_equal(do_write(id, fh, 10240, data, 4096), -EDQUOT);
	/* overwriting inside the file is free */
	assert_int_equal(do_write(id, fh, 0, data, 4096), 4096);
	memset(&oi, 0, sizeof(oi));
	oi.flags = O_WRONLY | O_APPEND;
	call(FUSE_OPEN, id, &oi, sizeof(oi), &err);
	assert_int_equal(err, 0);
	memcpy(&oo, payload(), sizeof(oo));
	fh2 = oo.fh;
	n = do_write(id, fh2, 0, data, 4096);
	assert_true(n == -EDQUOT);
	/* inodes: q + 2 more */
	create(FUSE_ROOT_ID, "i1", &fh, &err);
	assert_int_equal(err, 0);
	create(FUSE_ROOT_ID, "i2", &fh, &err);
	assert_int_equal(err, 0);
	create(FUSE_ROOT_ID, "i3", &fh, &err);
	assert_int_equal(err, EDQUOT);
	call(FUSE_UNLINK, FUSE_ROOT_ID, "q", 2, &err);
	assert_int_equal(err, 0);
	create(FUSE_ROOT_ID, "i3", &fh, &err);
	assert_int_equal(err, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sdir);
	assert_int_equal(system(cmd), 0);
}

static void test_mknod_devices(void **state)
{
	struct fx *fx = *state;
	char buf[sizeof(struct fuse_mknod_in) + 8];
	struct fuse_mknod_in *mi = (void *)buf;
	struct fuse_open_in oi;
	uint64_t id;
	int err;

	memset(buf, 0, sizeof(buf));
	mi->mode = S_IFCHR | 0666;
	mi->rdev = makedev(1, 3);
	memcpy(buf + sizeof(*mi), "null", 5);
	call(FUSE_MKNOD, FUSE_ROOT_ID, buf, sizeof(*mi) + 5, &err);
	assert_int_equal(err, EPERM);
	mi->mode = S_IFBLK | 0666;
	call(FUSE_MKNOD, FUSE_ROOT_ID, buf, sizeof(*mi) + 5, &err);
	assert_int_equal(err, EPERM);
	mi->mode = S_IFIFO | 0644;
	memcpy(buf + sizeof(*mi), "fifo", 5);
	call(FUSE_MKNOD, FUSE_ROOT_ID, buf, sizeof(*mi) + 5, &err);
	assert_int_equal(err, 0);
	assert_int_equal(last_ev.op, FS_EV_MKNOD);
	/* a device node made on the host is never opened for the guest */
	assert_int_equal(mknodat(fx->dirfd, "hostnull", S_IFCHR | 0666,
				 makedev(1, 3)), 0);
	id = lookup(FUSE_ROOT_ID, "hostnull", &err, NULL);
	memset(&oi, 0, sizeof(oi));
	oi.flags = O_RDWR;
	call(FUSE_OPEN, id, &oi, sizeof(oi), &err);
	assert_int_equal(err, EACCES);
	id = lookup(FUSE_ROOT_ID, "fifo", &err, NULL);
	call(FUSE_OPEN, id, &oi, sizeof(oi), &err);
	assert_int_equal(err, EACCES);
}

static void test_create_as_caller(void **state)
{
	struct fx *fx = *state;
	char buf[sizeof(struct fuse_mkdir_in) + 8];
	struct fuse_mkdir_in *mi = (void *)buf;
	struct fs_req r;
	struct stat st;
	int err;

	memset(buf, 0, sizeof(buf));
	mi->mode = 0777;
	mi->umask = 027;
	memcpy(buf + sizeof(*mi), "ud", 3);
	memset(&r, 0, sizeof(r));
	r.in.opcode = FUSE_MKDIR;
	r.in.unique = 77;
	r.in.nodeid = FUSE_ROOT_ID;
	r.in.uid = 1234;
	r.in.gid = 5678;
	r.arg = buf;
	r.arglen = sizeof(*mi) + 3;
	r.out = fx->out;
	r.outcap = fx->outcap;
	/* the export root must be writable for uid 1234 */
	assert_int_equal(fchmod(fx->dirfd, 0777), 0);
	fs_handle(fx->s, &r);
	memcpy(&err, fx->out + 4, sizeof(err));
	assert_int_equal(err, 0);
	assert_int_equal(fstatat(fx->dirfd, "ud", &st, 0), 0);
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	assert_int_equal(st.st_mode & 0777, 0750);
	/* and this thread is root again */
	assert_int_equal(mkdirat(fx->dirfd, "rootdir", 0700), 0);
	assert_int_equal(fstatat(fx->dirfd, "rootdir", &st, 0), 0);
	assert_int_equal(st.st_uid, 0);
}

static void test_setattr_xattr(void **state)
{
	struct fx *fx = *state;
	struct fuse_setattr_in sa;
	struct stat st;
	char buf[256];
	uint64_t id;
	int err;

	host_write("sa", "0123456789");
	id = lookup(FUSE_ROOT_ID, "sa", &err, NULL);
	memset(&sa, 0, sizeof(sa));
	sa.valid = FATTR_SIZE | FATTR_MODE | FATTR_MTIME;
	sa.size = 4;
	sa.mode = 0600;
	sa.mtime = 1000000;
	call(FUSE_SETATTR, id, &sa, sizeof(sa), &err);
	assert_int_equal(err, 0);
	assert_int_equal(last_ev.op, FS_EV_SETATTR);
	assert_int_equal(last_ev.flags, FS_EV_F_SIZE);
	assert_int_equal(fstatat(fx->dirfd, "sa", &st, 0), 0);
	assert_int_equal(st.st_size, 4);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_mtime, 1000000);

	/* xattrs: user.* passes, trusted.* does not */
	{
		struct fuse_setxattr_in *xi = (void *)buf;
		size_t off = FUSE_COMPAT_SETXATTR_IN_SIZE;

		memset(buf, 0, sizeof(buf));
		xi->size = 3;
		memcpy(buf + off, "user.k\0val", 10);
		call(FUSE_SETXATTR, id, buf, (uint32_t)off + 10, &err);
		if (err == EOPNOTSUPP) {
			print_message("no user xattrs here, skipping\n");
			return;
		}
		assert_int_equal(err, 0);
		assert_int_equal(last_ev.op, FS_EV_XATTR);
		memcpy(buf + off, "trusted.k\0val", 13);
		call(FUSE_SETXATTR, id, buf, (uint32_t)off + 13, &err);
		assert_int_equal(err, EPERM);
		/* size mismatch */
		call(FUSE_SETXATTR, id, buf, (uint32_t)off + 12, &err);
		assert_int_equal(err, EINVAL);
	}
	{
		struct fuse_getxattr_in gi;
		struct fuse_getxattr_out go;
		char g[sizeof(gi) + 16];

		memset(&gi, 0, sizeof(gi));
		memcpy(g, &gi, sizeof(gi));
		memcpy(g + sizeof(gi), "user.k", 7);
		call(FUSE_GETXATTR, id, g, sizeof(gi) + 7, &err);
		assert_int_equal(err, 0);
		memcpy(&go, payload(), sizeof(go));
		assert_int_equal(go.size, 3);
		gi.size = 64;
		memcpy(g, &gi, sizeof(gi));
		assert_int_equal(call(FUSE_GETXATTR, id, g, sizeof(gi) + 7,
				      &err), 16 + 3);
		assert_memory_equal(payload(), "val", 3);
		/* listing hides trusted.* */
		assert_int_equal(setxattr("/proc/self/cwd", "trusted.x",
					  "1", 1, 0) == 0 || 1, 1);
		call(FUSE_LISTXATTR, id, &gi, sizeof(gi), &err);
		assert_int_equal(err, 0);
		call(FUSE_REMOVEXATTR, id, "user.k", 7, &err);
		assert_int_equal(err, 0);
		call(FUSE_GETXATTR, id, g, sizeof(gi) + 7, &err);
		assert_int_equal(err, ENODATA);
	}
}

static void test_locks(void **state)
{
	struct fuse_lk_in lk;
	struct fuse_lk_out lo;
	struct fuse_interrupt_in ii;
	struct timespec ts;
	uint64_t id, fh;
	uint32_t r;
	int err, rc;

	(void)state;
	id = create(FUSE_ROOT_ID, "lk", &fh, &err);
	assert_int_equal(err, 0);
	memset(&lk, 0, sizeof(lk));
	lk.fh = fh;
	lk.owner = 1;
	lk.lk.start = 0;
	lk.lk.end = 0x7fffffffffffffffULL;
	lk.lk.type = F_WRLCK;
	call(FUSE_SETLK, id, &lk, sizeof(lk), &err);
	assert_int_equal(err, 0);
	/* another owner conflicts */
	lk.owner = 2;
	call(FUSE_GETLK, id, &lk, sizeof(lk), &err);
	assert_int_equal(err, 0);
	memcpy(&lo, payload(), sizeof(lo));
	assert_int_equal(lo.lk.type, F_WRLCK);
	call(FUSE_SETLK, id, &lk, sizeof(lk), &err);
	assert_int_equal(err, EAGAIN);
	/* same owner does not */
	lk.owner = 1;
	call(FUSE_GETLK, id, &lk, sizeof(lk), &err);
	memcpy(&lo, payload(), sizeof(lo));
	assert_int_equal(lo.lk.type, F_UNLCK);

	/* a blocking wait is deferred, then interrupted */
	lk.owner = 2;
	ncomplete = 0;
	r = call(FUSE_SETLKW, id, &lk, sizeof(lk), &err);
	assert_int_equal(r, FS_DEFERRED);
	memset(&ii, 0, sizeof(ii));
	ii.unique = FX->unique;
	assert_int_equal(call(FUSE_INTERRUPT, 0, &ii, sizeof(ii), &err),
			 FS_NO_REPLY);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&rec_lock);
	rc = 0;
	while (ncomplete == 0 && rc == 0)
		rc = pthread_cond_timedwait(&rec_cond, &rec_lock, &ts);
	pthread_mutex_unlock(&rec_lock);
	assert_int_equal(ncomplete, 1);
	{
		struct fuse_out_header oh;

		memcpy(&oh, FX->out, sizeof(oh));
		assert_int_equal(oh.error, -EINTR);
		assert_int_equal(complete_len, sizeof(oh));
	}

	/* deferred again, then granted when owner 1 goes away (FLUSH) */
	ncomplete = 0;
	r = call(FUSE_SETLKW, id, &lk, sizeof(lk), &err);
	assert_int_equal(r, FS_DEFERRED);
	{
		struct fuse_flush_in fi;

		memset(&fi, 0, sizeof(fi));
		fi.fh = fh;
		fi.lock_owner = 1;
		/* FLUSH replies into the same test buffer; wait first */
		FX->outcap = OUTCAP;
	}
	{
		/* unlock owner 1 through SETLK F_UNLCK */
		struct fuse_lk_in ul = lk;
		static uint8_t other[256];
		struct fs_req rq;

		ul.owner = 1;
		ul.lk.type = F_UNLCK;
		memset(&rq, 0, sizeof(rq));
		rq.in.opcode = FUSE_SETLK;
		rq.in.unique = 9999;
		rq.in.nodeid = id;
		rq.arg = &ul;
		rq.arglen = sizeof(ul);
		rq.out = other;
		rq.outcap = sizeof(other);
		assert_int_equal(fs_handle(FX->s, &rq), 16);
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&rec_lock);
	rc = 0;
	while (ncomplete == 0 && rc == 0)
		rc = pthread_cond_timedwait(&rec_cond, &rec_lock, &ts);
	pthread_mutex_unlock(&rec_lock);
	assert_int_equal(ncomplete, 1);
	{
		struct fuse_out_header oh;

		memcpy(&oh, FX->out, sizeof(oh));
		assert_int_equal(oh.error, 0);
	}
	/* flock: exclusive, then a second handle cannot get it */
	{
		struct fuse_open_in oi;
		struct fuse_open_out oo;
		uint64_t fh2;

		lk.fh = fh;
		lk.lk_flags = FUSE_LK_FLOCK;
		lk.lk.type = F_WRLCK;
		call(FUSE_SETLK, id, &lk, sizeof(lk), &err);
		assert_int_equal(err, 0);
		memset(&oi, 0, sizeof(oi));
		oi.flags = O_RDWR;
		call(FUSE_OPEN, id, &oi, sizeof(oi), &err);
		memcpy(&oo, payload(), sizeof(oo));
		fh2 = oo.fh;
		lk.fh = fh2;
		call(FUSE_SETLK, id, &lk, sizeof(lk), &err);
		assert_int_equal(err, EAGAIN);
		/* a blocking one is deferred; session teardown cancels it */
		ncomplete = 0;
		r = call(FUSE_SETLKW, id, &lk, sizeof(lk), &err);
		assert_int_equal(r, FS_DEFERRED);
		fs_session_cancel_deferred(FX->s);
		assert_int_equal(ncomplete, 1);
	}
}

static void test_misc_ops(void **state)
{
	struct fx *fx = *state;
	char buf[512];
	uint64_t id, fh, id2, fh2;
	int err;

	id = create(FUSE_ROOT_ID, "m", &fh, &err);
	assert_int_equal(err, 0);
	/* FALLOCATE KEEP_SIZE, PUNCH_HOLE; bad mode */
	{
		struct fuse_fallocate_in fa;

		memset(&fa, 0, sizeof(fa));
		fa.fh = fh;
		fa.length = 1 << 20;
		call(FUSE_FALLOCATE, id, &fa, sizeof(fa), &err);
		assert_int_equal(err, 0);
		fa.mode = 0x40;
		call(FUSE_FALLOCATE, id, &fa, sizeof(fa), &err);
		assert_int_equal(err, EOPNOTSUPP);
	}
	assert_int_equal(do_write(id, fh, 0, "abcdef", 6), 6);
	/* LSEEK SEEK_DATA */
	{
		struct fuse_lseek_in li;
		struct fuse_lseek_out lo;

		memset(&li, 0, sizeof(li));
		li.fh = fh;
		li.whence = SEEK_DATA;
		call(FUSE_LSEEK, id, &li, sizeof(li), &err);
		assert_int_equal(err, 0);
		memcpy(&lo, payload(), sizeof(lo));
		assert_int_equal(lo.offset, 0);
		li.whence = 42;
		call(FUSE_LSEEK, id, &li, sizeof(li), &err);
		assert_int_equal(err, EINVAL);
	}
	/* COPY_FILE_RANGE to a second file */
	id2 = create(FUSE_ROOT_ID, "m2", &fh2, &err);
	{
		struct fuse_copy_file_range_in ci;
		struct fuse_write_out wo;

		memset(&ci, 0, sizeof(ci));
		ci.fh_in = fh;
		ci.nodeid_out = id2;
		ci.fh_out = fh2;
		ci.len = 6;
		call(FUSE_COPY_FILE_RANGE, id, &ci, sizeof(ci), &err);
		assert_int_equal(err, 0);
		memcpy(&wo, payload(), sizeof(wo));
		assert_int_equal(wo.size, 6);
		assert_int_equal(do_read(id2, fh2, 0, buf, 6), 6);
		assert_memory_equal(buf, "abcdef", 6);
	}
	/* FSYNC, FLUSH, STATFS, SYNCFS */
	{
		struct fuse_fsync_in fi;
		struct fuse_flush_in fl;
		struct fuse_statfs_out so;
		struct fuse_syncfs_in sy;

		memset(&fi, 0, sizeof(fi));
		fi.fh = fh;
		call(FUSE_FSYNC, id, &fi, sizeof(fi), &err);
		assert_int_equal(err, 0);
		memset(&fl, 0, sizeof(fl));
		fl.fh = fh;
		nevents = 0;
		call(FUSE_FLUSH, id, &fl, sizeof(fl), &err);
		assert_int_equal(err, 0);
		assert_int_equal(nevents, 1);
		assert_int_equal(last_ev.op, FS_EV_MODIFY);
		/* coalesced: nothing new written, no second MODIFY */
		call(FUSE_FLUSH, id, &fl, sizeof(fl), &err);
		assert_int_equal(nevents, 1);
		call(FUSE_STATFS, id, NULL, 0, &err);
		assert_int_equal(err, 0);
		memcpy(&so, payload(), sizeof(so));
		assert_true(so.st.bsize > 0);
		memset(&sy, 0, sizeof(sy));
		call(FUSE_SYNCFS, FUSE_ROOT_ID, &sy, sizeof(sy), &err);
		assert_int_equal(err, 0);
	}
	/* SYMLINK, LINK, MKDIR, TMPFILE */
	{
		char sb[64];
		struct fuse_link_in *li = (void *)sb;
		struct fuse_create_in *ci = (void *)sb;
		struct fuse_entry_out e;
		struct stat st;

		call(FUSE_SYMLINK, FUSE_ROOT_ID, "sl\0../../etc", 13, &err);
		assert_int_equal(err, 0);
		assert_int_equal(last_ev.op, FS_EV_SYMLINK);
		assert_int_equal(readlinkat(fx->dirfd, "sl", buf, sizeof(buf)),
				 9);
		memset(sb, 0, sizeof(sb));
		li->oldnodeid = id;
		memcpy(sb + sizeof(*li), "hard", 5);
		call(FUSE_LINK, FUSE_ROOT_ID, sb, sizeof(*li) + 5, &err);
		assert_int_equal(err, 0);
		memcpy(&e, payload(), sizeof(e));
		assert_int_equal(e.nodeid, id);
		assert_int_equal(e.attr.nlink, 2);
		assert_int_equal(last_ev.op, FS_EV_LINK);
		assert_string_equal(last_ev.path, "/m");
		assert_string_equal(last_ev.path2, "/hard");
		memset(sb, 0, sizeof(sb));
		ci->flags = O_RDWR;
		ci->mode = S_IFREG | 0600;
		memcpy(sb + sizeof(*ci), "/", 2);
		call(FUSE_TMPFILE, FUSE_ROOT_ID, sb, sizeof(*ci) + 2, &err);
		if (err != EOPNOTSUPP) {
			assert_int_equal(err, 0);
			memcpy(&e, payload(), sizeof(e));
			assert_int_equal(e.attr.nlink, 0);
		}
		assert_int_equal(fstatat(fx->dirfd, "hard", &st, 0), 0);
	}
	do_release(id, fh, 0);
	do_release(id2, fh2, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_names, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_escapes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_readdir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bogus_nodeid, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_forget_then_use, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reply_bounds, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_eviction, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_quota, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_noexec_map, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_readonly, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_mknod_devices, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_create_as_caller, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_setattr_xattr, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_locks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_misc_ops, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
