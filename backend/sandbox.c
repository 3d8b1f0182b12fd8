/*
 * Worker confinement (docs/security.md, "Sandbox").
 *
 * xenfsd serves every guest from one process; what faces a guest is a
 * connection's queue worker threads (backend/conn.c) and the threads they
 * start (the fs layer's blocked-lock waiters).  Linux keeps credentials,
 * the capability sets, no_new_privs, the Landlock domain and the seccomp
 * filter per thread, so each worker confines *itself* before it reads its
 * first request, and whatever it starts inherits that:
 *  - no_new_privs;
 *  - Landlock: filesystem access only beneath its own export and the
 *    state directory (quota usage, the operation journal); every other
 *    domain's export and the rest of the host filesystem are refused;
 *  - capabilities: effective, permitted and bounding sets cut to what the
 *    fs layer uses (CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER, FSETID,
 *    SETGID, SETUID, MKNOD, SETFCAP);
 *  - seccomp: an allow-list of the system calls a worker makes; anything
 *    else fails with EPERM (not a kill: a forgotten call must not take
 *    the whole daemon, which serves other guests, down).
 * The main thread (acceptors, control socket, reload) is not confined:
 * that is the limit of threads in one process (a worker that gets code
 * execution can still write the other threads' memory); per-domain worker
 * processes are the next step (docs/security.md says what is missing).
 *
 * A kernel without Landlock (ENOSYS/EOPNOTSUPP) gets the rest and a loud
 * warning; any other failure to confine makes the worker refuse to serve.
 * `xenfsd --no-sandbox` skips all of it.
 *
 * Test hook: XENFSD_SANDBOX_PROBE="path:path:..." in xenfsd's environment
 * makes every worker, once confined, try to open each path read-only and
 * log "sandbox probe DOMAIN: PATH: ok|error" (t_sandbox.sh); "@inet",
 * "@mount" and "@fork" try a network socket, a mount and a new process.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cap-ng.h>
#include <linux/landlock.h>
#include <seccomp.h>

#include "bk.h"
#include "log.h"

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER	(1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE	(1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV	(1ULL << 15)
#endif

static uint64_t ll_handled(int abi)
{
	uint64_t a = (1ULL << 13) - 1;		/* ABI 1: bits 0..12 */

	if (abi >= 2)
		a |= LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		a |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		a |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return a;
}

static int ll_allow(int rfd, const char *path, uint64_t access)
{
	struct landlock_path_beneath_attr pb;
	int fd, r;

	if (!path)
		return 0;
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	pb.allowed_access = access;
	pb.parent_fd = fd;
	r = (int)syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH,
			 &pb, 0);
	r = r < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* 0, -EOPNOTSUPP (no Landlock here) or -errno. */
static int sandbox_landlock(const char *export_path, const char *state_dir)
{
	struct landlock_ruleset_attr ra;
	uint64_t all, data;
	int abi, rfd, r;

	abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
			   LANDLOCK_CREATE_RULESET_VERSION);
	if (abi < 0)
		return -EOPNOTSUPP;
	all = ll_handled(abi);
	/* no exec, no device nodes, no device ioctls, anywhere */
	data = all & ~(LANDLOCK_ACCESS_FS_EXECUTE |
		       LANDLOCK_ACCESS_FS_MAKE_CHAR |
		       LANDLOCK_ACCESS_FS_MAKE_BLOCK |
		       LANDLOCK_ACCESS_FS_IOCTL_DEV);
	memset(&ra, 0, sizeof(ra));
	ra.handled_access_fs = all;
	rfd = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof(ra), 0);
	if (rfd < 0)
		return -errno;
	if ((r = ll_allow(rfd, export_path, data)) < 0 ||
	    (r = ll_allow(rfd, state_dir, data)) < 0) {
		close(rfd);
		return r;
	}
	r = (int)syscall(SYS_landlock_restrict_self, rfd, 0);
	r = r < 0 ? -errno : 0;
	close(rfd);
	return r;
}

static int sandbox_caps(void)
{
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED |
	    CAPNG_BOUNDING_SET, CAP_CHOWN, CAP_DAC_OVERRIDE,
	    CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_SETGID,
	    CAP_SETUID, CAP_MKNOD, CAP_SETFCAP, -1) != 0)
		return -EINVAL;
	if (capng_apply(CAPNG_SELECT_BOTH) != 0)
		return -EPERM;
	return 0;
}

/* What a queue worker and the fs layer call (x86-64 and arm64 names). */
static const char *const sc_allow[] = {
	/* memory, threads, time, signals */
	"brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "futex",
	"set_robust_list", "get_robust_list", "rseq",
	"exit", "exit_group", "gettid", "getpid", "getppid", "tgkill",
	"rt_sigprocmask", "rt_sigaction", "rt_sigreturn", "sigaltstack",
	"restart_syscall", "sched_yield", "sched_getaffinity",
	"clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep",
	"gettimeofday", "time", "getrandom", "uname", "sysinfo",
	"getrusage", "prlimit64", "getuid", "geteuid", "getgid", "getegid",
	"getgroups", "capget", "capset", "prctl", "setfsuid", "setfsgid",
	"umask",
	/* descriptors, waiting */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv",
	"pwritev", "preadv2", "pwritev2", "close", "dup", "dup2", "dup3",
	"fcntl", "ioctl", "poll", "ppoll", "select", "pselect6",
	"epoll_wait", "epoll_pwait", "epoll_ctl", "eventfd2", "pipe2",
	"lseek", "flock", "fsync", "fdatasync", "syncfs", "sync_file_range",
	/* files of the export */
	"open", "openat", "openat2", "creat", "name_to_handle_at",
	"open_by_handle_at", "stat", "lstat", "fstat", "newfstatat",
	"statx", "fstatfs", "statfs", "getdents64", "readlink",
	"readlinkat", "access", "faccessat", "faccessat2", "mkdir",
	"mkdirat", "mknod", "mknodat", "symlink", "symlinkat", "link",
	"linkat", "unlink", "unlinkat", "rmdir", "rename", "renameat",
	"renameat2", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown",
	"fchown", "lchown", "fchownat", "truncate", "ftruncate",
	"utimensat", "fallocate", "copy_file_range", "setxattr",
	"lsetxattr", "fsetxattr", "getxattr", "lgetxattr", "fgetxattr",
	"listxattr", "llistxattr", "flistxattr", "removexattr",
	"lremovexattr", "fremovexattr", "getcwd", "fadvise64",
	/* logging and the services' sockets (socket: AF_UNIX, below) */
	"connect", "sendto", "sendmsg", "recvfrom", "recvmsg",
	"shutdown", "getsockopt", "setsockopt", "getsockname",
	"getpeername",
};

static int sandbox_seccomp(void)
{
	scmp_filter_ctx ctx;
	size_t i;
	int r;

	if ((ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM))) == NULL)
		return -ENOMEM;
	for (i = 0; i < sizeof(sc_allow) / sizeof(sc_allow[0]); i++) {
		int nr = seccomp_syscall_resolve_name(sc_allow[i]);

		if (nr == __NR_SCMP_ERROR)
			continue;	/* not on this architecture */
		if ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0) {
			seccomp_release(ctx);
			return r;
		}
	}
	/*
	 * Argument-checked calls.  Threads only: clone3 passes its flags in
	 * memory, which seccomp cannot read, so it gets ENOSYS and glibc
	 * falls back to clone, allowed with CLONE_THREAD (no new process,
	 * so no new user namespace).  unshare only of the fs_struct (the fs
	 * layer's per-thread umask).  Sockets only AF_UNIX (syslog, the
	 * services' verdict sockets).
	 */
	if ((r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS),
	    SCMP_SYS(clone3), 0)) < 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD))) < 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(unshare), 1,
	    SCMP_A0(SCMP_CMP_EQ, CLONE_FS))) < 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_UNIX))) < 0) {
		seccomp_release(ctx);
		return r;
	}
	/* this thread only (no TSYNC): the main thread is not a worker */
	r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

static void sandbox_probe(const char *domain)
{
	const char *env = getenv("XENFSD_SANDBOX_PROBE");
	char *list, *p, *save = NULL;

	if (!env || !*env || !(list = strdup(env)))
		return;
	for (p = strtok_r(list, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		int fd;

		if (!strcmp(p, "@inet")) {	/* a network socket */
			fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		} else if (!strcmp(p, "@mount")) {
			fd = mount("none", "/tmp", "tmpfs", 0, NULL) == 0 ?
			    0 : -1;
			if (fd == 0)
				(void)umount("/tmp");
			fd = fd == 0 ? dup(2) : -1;
		} else if (!strcmp(p, "@fork")) {	/* a new process */
			pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD, 0, 0,
						   0, 0);

			if (pid == 0)
				_exit(0);
			fd = pid > 0 ? dup(2) : -1;
			if (pid > 0)
				(void)waitpid(pid, NULL, 0);
		} else {
			fd = open(p, O_RDONLY | O_CLOEXEC | O_NOCTTY |
				  O_NONBLOCK);
		}

		log_info("sandbox probe %s: %s: %s", domain, p,
			 fd >= 0 ? "ok" : strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	free(list);
}

int bk_sandbox_worker(const char *domain, const char *export_path)
{
	static int warned;
	const char *state = bk_srv.cfg ? bk_srv.cfg->global.state_dir : NULL;
	int r;

	if (bk_srv.no_sandbox)
		return 0;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -errno;
	r = sandbox_landlock(export_path, state);
	if (r == -EOPNOTSUPP) {
		if (!__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED))
			log_warnx("SANDBOX INCOMPLETE: this kernel has no "
				  "Landlock; workers are confined by "
				  "capabilities and seccomp only");
	} else if (r < 0) {
		log_warnx("dom %s: sandbox: landlock: %s", domain,
			  strerror(-r));
		return r;
	}
	if ((r = sandbox_caps()) < 0) {
		log_warnx("dom %s: sandbox: capabilities: %s", domain,
			  strerror(-r));
		return r;
	}
	if ((r = sandbox_seccomp()) < 0) {
		log_warnx("dom %s: sandbox: seccomp: %s", domain,
			  strerror(-r));
		return r;
	}
	sandbox_probe(domain);
	return 0;
}
