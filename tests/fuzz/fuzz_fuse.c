/*
 * Fuzz target: the FUSE request decoder and every opcode handler of the
 * backend's fs layer (backend/fs_*.c through fs_handle()), as a hostile
 * frontend would drive it, against a private temporary export that is
 * rebuilt for every input.
 *
 * Input: a sequence of frames
 *	u8  opcode selector (index into a table of every opcode, or raw)
 *	u8  nodeid selector: 0 root, 1-3 a nodeid from an earlier reply,
 *	    4 a raw u64 from the input, else a small bogus number
 *	u8  flags: bit0 caller uid 1000 (else 0), bit1 put the newest file
 *	    handle into the argument's handle field, bit2 keep WRITE's size
 *	    field as given (else it matches the payload)
 *	u16 argument length (little endian), then the argument bytes
 * INIT is sent first.  The session has an identity map (map-uid/gid) and
 * small quotas from a fixed config, so the policy paths run and the tree
 * cannot grow without bound.
 *
 * Invariants (abort on violation): every reply is NO_REPLY, DEFERRED or
 * a frame of 16..outcap bytes whose header length equals the return and
 * whose unique is the request's; nothing is written past the reply area;
 * no descriptor leaks once the session is freed; nothing outside the
 * export changes (a sentinel file beside it keeps its mode, owner and
 * content).
 *
 * Threading: SETLKW may defer to a thread of the fs layer; the session is
 * cancelled and freed after each input, which joins them.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../backend/fs.h"
#include "log.h"
#include "policy.h"

#define OUTCAP		(16 + 65536)
#define MAXARG		4096

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[64], exp_dir[128], sentinel[160];
static struct xf_config *cfg;
static unsigned char outbuf[OUTCAP + 64];
static struct stat sent_st;

void fs_complete(void *token, uint32_t len)
{
	(void)token;
	if (len != 0 && (len < 16 || len > OUTCAP))
		abort();
}

int bk_verdict_check(struct fs_session *s, int fd, uint32_t open_flags)
{
	(void)s;
	(void)fd;
	(void)open_flags;
	return 0;
}

void fs_emit_event(struct fs_session *s, const struct fs_event *ev)
{
	(void)s;
	if (ev->path == NULL || ev->path[0] != '/')
		abort();
}

static void quiet_sink(int priority, const char *line, void *arg)
{
	(void)priority;
	(void)line;
	(void)arg;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)) != NULL)
		n++;
	closedir(d);
	return n;
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP || flag == FTW_D)
		(void)rmdir(p);
	else
		(void)unlink(p);
	return 0;
}

static void rebuild_export(void)
{
	char p[256];
	int fd;

	snprintf(p, sizeof(p), "%s/state/quota/shared.usage", base);
	(void)unlink(p);	/* usage is rescanned from the rebuilt tree */
	(void)chmod(exp_dir, 0755);
	(void)nftw(exp_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	if (mkdir(exp_dir, 0755) != 0 && errno != EEXIST)
		abort();
	snprintf(p, sizeof(p), "%s/file", exp_dir);
	if ((fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644)) >= 0) {
		(void)write(fd, "hello\n", 6);
		close(fd);
	}
	snprintf(p, sizeof(p), "%s/dir", exp_dir);
	(void)mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/dir/up", exp_dir);
	(void)symlink("../..", p);
	snprintf(p, sizeof(p), "%s/out", exp_dir);
	(void)symlink(sentinel, p);
}

static void cleanup(void)
{
	(void)chmod(exp_dir, 0755);
	(void)nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char text[1024], err[256], p[256];
	int fd;

	(void)argc;
	(void)argv;
	log_init(1, 0, "fuzz_fuse");
	log_set_sink(quiet_sink, NULL);	/* millions of runs: keep quiet */
	snprintf(base, sizeof(base), "/tmp/fuzz_fuse.XXXXXX");
	if (!mkdtemp(base))
		abort();
	(void)atexit(cleanup);
	snprintf(exp_dir, sizeof(exp_dir), "%s/export", base);
	snprintf(sentinel, sizeof(sentinel), "%s/sentinel", base);
	snprintf(p, sizeof(p), "%s/state", base);
	(void)mkdir(p, 0700);
	if ((fd = open(sentinel, O_CREAT | O_WRONLY, 0600)) < 0)
		abort();
	(void)write(fd, "outside\n", 8);
	close(fd);
	if (stat(sentinel, &sent_st) != 0)
		abort();
	rebuild_export();
	snprintf(text, sizeof(text),
		 "[global]\nstate-dir = %s/state\n"
		 "[export shared]\npath = %s\naccess = vm1:rw\n"
		 "map-uid = 0-65535:100000\nmap-gid = 0-65535:100000\n"
		 "quota-bytes = 1M\nquota-inodes = 200\n", base, exp_dir);
	cfg = xf_config_parse("fuzz", text, strlen(text), err, sizeof(err));
	if (!cfg) {
		fprintf(stderr, "fuzz_fuse: %s\n", err);
		abort();
	}
	return 0;
}

static const uint32_t ops[] = {
	FUSE_LOOKUP, FUSE_FORGET, FUSE_GETATTR, FUSE_SETATTR, FUSE_READLINK,
	FUSE_SYMLINK, FUSE_MKNOD, FUSE_MKDIR, FUSE_UNLINK, FUSE_RMDIR,
	FUSE_RENAME, FUSE_LINK, FUSE_OPEN, FUSE_READ, FUSE_WRITE,
	FUSE_STATFS, FUSE_RELEASE, FUSE_FSYNC, FUSE_SETXATTR, FUSE_GETXATTR,
	FUSE_LISTXATTR, FUSE_REMOVEXATTR, FUSE_FLUSH, FUSE_INIT,
	FUSE_OPENDIR, FUSE_READDIR, FUSE_RELEASEDIR, FUSE_FSYNCDIR,
	FUSE_GETLK, FUSE_SETLK, FUSE_SETLKW, FUSE_ACCESS, FUSE_CREATE,
	FUSE_INTERRUPT, FUSE_BMAP, FUSE_DESTROY, FUSE_IOCTL, FUSE_POLL,
	FUSE_BATCH_FORGET, FUSE_FALLOCATE, FUSE_READDIRPLUS, FUSE_RENAME2,
	FUSE_LSEEK, FUSE_COPY_FILE_RANGE, FUSE_SETUPMAPPING,
	FUSE_REMOVEMAPPING, FUSE_SYNCFS, FUSE_TMPFILE,
};
#define NOPS	(sizeof(ops) / sizeof(ops[0]))

#define MAXDEFER	64

struct st {
	struct fs_session *s;
	unsigned char *dbuf[MAXDEFER];	/* out areas of SETLKW requests */
	unsigned ndbuf;
	uint64_t unique;
	uint64_t nodes[4];	/* recent nodeids from replies */
	uint64_t fh;		/* newest file handle */
};

static void note_reply(struct st *t, uint32_t op, uint32_t len)
{
	struct fuse_out_header oh;
	const unsigned char *p = outbuf + sizeof(oh);
	uint64_t v;

	memcpy(&oh, outbuf, sizeof(oh));
	if (oh.error != 0)
		return;
	switch (op) {
	case FUSE_LOOKUP: case FUSE_MKDIR: case FUSE_MKNOD:
	case FUSE_SYMLINK: case FUSE_LINK: case FUSE_CREATE:
	case FUSE_TMPFILE:
		if (len < sizeof(oh) + sizeof(uint64_t))
			return;
		memcpy(&v, p, sizeof(v));
		memmove(&t->nodes[2], &t->nodes[1], 2 * sizeof(v));
		t->nodes[1] = v;
		if ((op == FUSE_CREATE || op == FUSE_TMPFILE) &&
		    len >= sizeof(oh) + sizeof(struct fuse_entry_out) +
		    sizeof(uint64_t))
			memcpy(&t->fh, p + sizeof(struct fuse_entry_out),
			       sizeof(t->fh));
		break;
	case FUSE_OPEN: case FUSE_OPENDIR:
		if (len >= sizeof(oh) + sizeof(uint64_t))
			memcpy(&t->fh, p, sizeof(t->fh));
		break;
	default:
		break;
	}
}

static void one(struct st *t, uint32_t op, uint64_t nodeid, uint32_t uid,
		unsigned char *arg, uint32_t arglen, int fixsize)
{
	struct fs_req r;
	struct fuse_out_header oh;
	uint32_t len;

	memset(&r, 0, sizeof(r));
	r.in.opcode = op;
	r.in.unique = ++t->unique;
	r.in.nodeid = nodeid;
	r.in.uid = uid;
	r.in.gid = uid;
	r.in.pid = 4242;
	r.arg = arglen ? arg : NULL;
	r.arglen = arglen;
	if (op == FUSE_WRITE && arglen >= sizeof(struct fuse_write_in)) {
		struct fuse_write_in wi;

		r.arglen = sizeof(wi);
		r.wdata = arg + sizeof(wi);
		r.wlen = arglen - (uint32_t)sizeof(wi);
		if (fixsize) {
			memcpy(&wi, arg, sizeof(wi));
			wi.size = r.wlen;
			memcpy(arg, &wi, sizeof(wi));
		}
	}
	r.in.len = (uint32_t)sizeof(r.in) + arglen;
	r.out = outbuf;
	r.outcap = OUTCAP;
	r.token = t;
	if (op == FUSE_SETLKW) {
		/* may defer: the fs layer keeps writing its out area later
		 * (fs_complete), so it gets one of its own (harness bug found
		 * by the fuzzer: a shared buffer was overwritten) */
		if (t->ndbuf == MAXDEFER ||
		    (t->dbuf[t->ndbuf] = malloc(OUTCAP)) == NULL)
			return;
		r.out = t->dbuf[t->ndbuf++];
		len = fs_handle(t->s, &r);
		if (len != FS_DEFERRED && len != FS_NO_REPLY &&
		    (len < sizeof(oh) || len > OUTCAP))
			abort();
		return;
	}
	memset(outbuf + OUTCAP, 0x5a, 64);
	len = fs_handle(t->s, &r);
	for (int i = 0; i < 64; i++)
		if (outbuf[OUTCAP + i] != 0x5a)
			abort();	/* wrote past the reply area */
	if (len == FS_NO_REPLY || len == FS_DEFERRED)
		return;
	if (len < sizeof(oh) || len > OUTCAP)
		abort();
	memcpy(&oh, outbuf, sizeof(oh));
	if (oh.len != len || oh.unique != r.in.unique || oh.error > 0 ||
	    oh.error < -4095)
		abort();
	note_reply(t, op, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char arg[MAXARG + 8];
	struct fs_session_params p;
	struct fuse_init_in init;
	struct st t;
	struct stat st;
	size_t off = 0;
	int fds0, n = 0;

	rebuild_export();
	fds0 = count_fds();
	memset(&t, 0, sizeof(t));
	memset(&p, 0, sizeof(p));
	p.domain = "vm1";
	p.export_tag = "shared";
	p.export_path = exp_dir;
	p.export_fd = open(exp_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	p.max_write = 65536;
	p.max_inodes_cached = 64;
	if (p.export_fd < 0 || (t.s = fs_session_new(&p)) == NULL)
		abort();
	if (fs_session_set_policy(t.s, cfg) != 0)
		abort();
	t.nodes[0] = FUSE_ROOT_ID;
	memset(&init, 0, sizeof(init));
	init.major = 7;
	init.minor = 38;
	init.max_readahead = 131072;
	init.flags = 0xffffffffu;
	memcpy(arg, &init, sizeof(init));
	one(&t, FUSE_INIT, 0, 0, arg, sizeof(init), 0);

	while (off + 5 <= size && n++ < 64) {
		uint8_t sel = data[off], nsel = data[off + 1];
		uint8_t fl = data[off + 2];
		uint32_t alen = (uint32_t)data[off + 3] |
		    ((uint32_t)data[off + 4] << 8);
		uint64_t nodeid;
		uint32_t op;

		off += 5;
		op = sel < NOPS ? ops[sel] : (uint32_t)sel;
		switch (nsel & 7) {
		case 0: nodeid = FUSE_ROOT_ID; break;
		case 1: case 2: case 3: nodeid = t.nodes[nsel & 3]; break;
		case 4:
			nodeid = 0;
			if (off + 8 <= size) {
				memcpy(&nodeid, data + off, 8);
				off += 8;
			}
			break;
		default: nodeid = (uint64_t)(nsel >> 3); break;
		}
		if (alen > MAXARG)
			alen = MAXARG;
		if (alen > size - off)
			alen = (uint32_t)(size - off);
		memcpy(arg, data + off, alen);
		off += alen;
		if ((fl & 2) && alen >= 16) {
			/* the handle field: first, or after valid+pad */
			size_t at = op == FUSE_SETATTR ? 8 : 0;

			memcpy(arg + at, &t.fh, sizeof(t.fh));
		}
		if (op == FUSE_DESTROY)
			continue;	/* the connection layer's business */
		one(&t, op, nodeid, (fl & 1) ? 1000 : 0, arg, alen,
		    !(fl & 4));
	}
	fs_session_cancel_deferred(t.s);
	fs_session_free(t.s);
	while (t.ndbuf > 0)
		free(t.dbuf[--t.ndbuf]);
	if (count_fds() != fds0)
		abort();	/* descriptor leak */
	if (stat(sentinel, &st) != 0 || st.st_mode != sent_st.st_mode ||
	    st.st_uid != sent_st.st_uid || st.st_size != sent_st.st_size ||
	    st.st_nlink != 1)
		abort();	/* something outside the export changed */
	return 0;
}
