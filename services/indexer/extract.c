/*
 * Content extraction in its own unprivileged process.  Guest files are
 * hostile: the code that reads and classifies their bytes runs in a child
 * forked by the indexer before it starts any thread, which then drops to
 * nobody/nogroup, sets no_new_privs, closes every other descriptor, caps
 * its memory and file size, and installs a seccomp allowlist.  It
 * receives read-only descriptors of regular files over a socketpair
 * (SCM_RIGHTS) and sends back only: a status, a 64-bit FNV-1a hash of the
 * bytes read, and sanitized text.
 *
 *   request:  static uid_t nobody_uid = 65534;
static gid_t nobody_gid = 65534;

struct ext_req { u64 max; }  + 1 fd (SCM_RIGHTS)
 *   reply:    struct ext_rep { i32 status; u32 pad; u64 hash; u64 len; }
 *             then len bytes of text (status IDX_TEXT_DONE only)
 *
 * Concurrency: ext_extract is called with idx->lock held (one request at
 * a time).  If the helper dies, hangs (> EXT_TIMEOUT_MS) or answers
 * garbage, it is killed and restarted, and that file is indexed by name
 * and metadata only.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "index_i.h"

#define EXT_TIMEOUT_MS	10000
#define SNIFF_LEN	8192

static uid_t nobody_uid = 65534;
static gid_t nobody_gid = 65534;

struct ext_req {
	uint64_t max;
};

struct ext_rep {
	int32_t status;
	uint32_t pad;
	uint64_t hash;
	uint64_t len;
};

uint64_t ext_hash(uint64_t h, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

int ext_sniff(char *buf, size_t len)
{
	unsigned char *p = (unsigned char *)buf;
	size_t i, bad = 0, head = len < SNIFF_LEN ? len : SNIFF_LEN;

	/* by content, not by name: a NUL in the head means binary, and so
	 * does more than 1 in 20 bytes of control or invalid UTF-8 */
	if (memchr(p, 0, head))
		return IDX_TEXT_BINARY;
	for (i = 0; i < head;) {
		size_t l = idx_utf8_len(p + i, head - i);

		if (l == 0) {
			/* a sequence cut by the sniff window is fine */
			if (head - i < 4 && head < len)
				break;
			bad++;
			i++;
			continue;
		}
		if (l == 1 && p[i] < 0x20 && !strchr("\t\n\r\f\v\b\033",
						    p[i]))
			bad++;
		i += l;
	}
	if (bad * 20 > head)
		return IDX_TEXT_BINARY;
	for (i = 0; i < len;) {
		size_t l = idx_utf8_len(p + i, len - i);

		if (l == 0) {
			p[i++] = '?';
			continue;
		}
		if (l == 1 && p[i] != '\n' && (p[i] < 0x20 || p[i] == 0x7f))
			p[i] = ' ';
		/* C1 controls (U+0080..U+009F) are terminal escapes too */
		if (l == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0) {
			p[i] = ' ';
			p[i + 1] = ' ';
		}
		i += l;
	}
	return IDX_TEXT_DONE;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

/* Helper side: answer one request on sock.  -1 ends the helper. */
static int helper_one(int sock)
{
	struct ext_req req;
	struct ext_rep rep;
	struct msghdr mh;
	struct iovec iov = { &req, sizeof(req) };
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct cmsghdr *cm;
	char *buf = NULL;
	size_t got = 0;
	ssize_t r;
	int fd = -1;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cb.b;
	mh.msg_controllen = sizeof(cb.b);
	r = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (r != (ssize_t)sizeof(req))
		return -1;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	memset(&rep, 0, sizeof(rep));
	rep.hash = EXT_HASH_INIT;
	rep.status = IDX_TEXT_BINARY;
	if (req.max > (256u << 20))
		req.max = 256u << 20;
	{
		struct stat sb;
		/* size the buffer by the file, not by the limit */
		if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    (uint64_t)sb.st_size < req.max)
			req.max = (uint64_t)sb.st_size;
	}
	if ((buf = malloc(req.max + 1)) == NULL)
		goto reply;
	while (got < req.max) {
		r = pread(fd, buf + got, req.max - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	rep.hash = ext_hash(EXT_HASH_INIT, buf, got);
	if (got > 0 && ext_sniff(buf, got) == IDX_TEXT_DONE) {
		rep.status = IDX_TEXT_DONE;
		rep.len = got;
	}
reply:
	close(fd);
	if (write_all(sock, &rep, sizeof(rep)) < 0 ||
	    (rep.len && write_all(sock, buf, rep.len) < 0)) {
		free(buf);
		return -1;
	}
	free(buf);
	return 0;
}

static int helper_sandbox(int sock)
{
	struct rlimit rl;
	uid_t uid = nobody_uid;
	gid_t gid = nobody_gid;
	scmp_filter_ctx sc;
	static const int allow[] = {
		SCMP_SYS(read), SCMP_SYS(pread64), SCMP_SYS(write),
		SCMP_SYS(recvmsg),
		SCMP_SYS(close), SCMP_SYS(exit), SCMP_SYS(exit_group),
		SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap),
		SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(fstat),
		SCMP_SYS(newfstatat), SCMP_SYS(lseek), SCMP_SYS(futex),
		SCMP_SYS(rt_sigreturn), SCMP_SYS(getpid),
	};

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return -1;
	/* every descriptor but our socket goes: no database, no journal */
	if (dup2(sock, 3) < 0)
		return -1;
	if (close_range(4, ~0u, 0) < 0)
		return -1;
	{
		int nul = open("/dev/null", O_RDWR);
		if (nul >= 0) {
			(void)dup2(nul, 0);
			(void)dup2(nul, 1);
			if (nul > 3)
				close(nul);
		}
	}
#ifndef __SANITIZE_ADDRESS__	/* ASan reserves terabytes of shadow */
	rl.rlim_cur = rl.rlim_max = 512u << 20;
	if (setrlimit(RLIMIT_AS, &rl) < 0)
		return -1;
#endif
	rl.rlim_cur = rl.rlim_max = 0;
	if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
		return -1;
	rl.rlim_cur = rl.rlim_max = 8;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return -1;
	if (getuid() == 0) {
		if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(uid, uid, uid) < 0)
			return -1;
		if (setuid(0) == 0)	/* must not be able to go back */
			return -1;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	if (getenv("XENFS_INDEX_NO_SECCOMP"))	/* sanitizer builds */
		return 0;
	if ((sc = seccomp_init(SCMP_ACT_KILL_PROCESS)) == NULL)
		return -1;
	for (size_t i = 0; i < sizeof(allow) / sizeof(allow[0]); i++)
		if (seccomp_rule_add(sc, SCMP_ACT_ALLOW, allow[i], 0) < 0) {
			seccomp_release(sc);
			return -1;
		}
	if (seccomp_load(sc) < 0) {
		seccomp_release(sc);
		return -1;
	}
	seccomp_release(sc);
	return 0;
}

int ext_start(struct idx_extractor *x)
{
	static int resolved;
	int sv[2];
	pid_t pid;

	/* resolve the user once, before the indexer starts its thread
	 * (NSS after fork in a threaded process is not safe) */
	if (!resolved) {
		struct passwd *pw = getpwnam("nobody");

		if (pw) {
			nobody_uid = pw->pw_uid;
			nobody_gid = pw->pw_gid;
		}
		resolved = 1;
	}

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if ((pid = fork()) < 0) {
		int e = -errno;
		close(sv[0]);
		close(sv[1]);
		return e;
	}
	if (pid == 0) {
		close(sv[0]);
		if (helper_sandbox(sv[1]) < 0)
			_exit(126);
		while (helper_one(3) == 0)
			;
		_exit(0);
	}
	close(sv[1]);
	x->pid = pid;
	x->sock = sv[0];
	return 0;
}

void ext_stop(struct idx_extractor *x)
{
	if (x->sock >= 0)
		close(x->sock);
	x->sock = -1;
	if (x->pid > 0) {
		(void)kill(x->pid, SIGKILL);
		(void)waitpid(x->pid, NULL, 0);
	}
	x->pid = -1;
}

static int read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	char *p = buf;

	while (len) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int pr = poll(&pf, 1, timeout_ms);
		ssize_t r;

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return pr == 0 ? -ETIMEDOUT : -errno;
		r = read(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r == 0 ? -EPIPE : -errno;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int ext_restart(struct idx_extractor *x, int err)
{
	ext_stop(x);
	x->restarts++;
	(void)ext_start(x);	/* if it fails, the next call retries */
	return err;
}

int ext_extract(struct idx_extractor *x, int fd, uint64_t max, char **text,
		size_t *len, uint64_t *hash)
{
	struct ext_req req = { max };
	struct ext_rep rep;
	struct msghdr mh;
	struct iovec iov = { &req, sizeof(req) };
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct cmsghdr *cm;
	int r;

	*text = NULL;
	*len = 0;
	if (x->sock < 0 && ext_start(x) < 0)
		return -EPIPE;
	memset(&mh, 0, sizeof(mh));
	memset(&cb, 0, sizeof(cb));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cb.b;
	mh.msg_controllen = sizeof(cb.b);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(x->sock, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(req))
		return ext_restart(x, -EPIPE);
	if ((r = read_full(x->sock, &rep, sizeof(rep), EXT_TIMEOUT_MS)) < 0)
		return ext_restart(x, r);
	*hash = rep.hash;
	if (rep.status != IDX_TEXT_DONE)
		return rep.status == IDX_TEXT_BINARY ? IDX_TEXT_BINARY :
		       ext_restart(x, -EPROTO);
	if (rep.len > max)
		return ext_restart(x, -EPROTO);
	if ((*text = malloc(rep.len + 1)) == NULL)
		return ext_restart(x, -ENOMEM);
	if ((r = read_full(x->sock, *text, rep.len, EXT_TIMEOUT_MS)) < 0) {
		free(*text);
		*text = NULL;
		return ext_restart(x, r);
	}
	(*text)[rep.len] = '\0';
	*len = rep.len;
	return IDX_TEXT_DONE;
}
