/*
 * Confinement of what faces a guest (docs/security.md, "Sandbox").
 *
 * Two layers.  First the process: each domain is served by its own worker
 * process (backend/priv.c, backend/worker.c), which bk_sandbox_process()
 * confines before it gets any guest:
 *  - namespaces (made by the parent's clone): mount, pid, network, IPC,
 *    UTS; its root is a read-only tmpfs holding bind mounts of the
 *    domain's exports at their own paths (read-only for ro access,
 *    nodev, nosuid), <state-dir>/quota, the Xen grant and event-channel
 *    devices if present, and a /proc of its own pid namespace (the fs
 *    layer reopens its descriptors through /proc/self/fd);
 *  - no_new_privs; Landlock to those binds; capabilities, the bounding
 *    set included, cut to what the fs layer uses (CHOWN, DAC_OVERRIDE,
 *    DAC_READ_SEARCH, FOWNER, FSETID, SETGID, SETUID, MKNOD, SETFCAP);
 *  - a seccomp allow-list for the whole process (the event loop's calls
 *    on top of the queue threads' list), loaded before any thread starts.
 * Then each thread that reads guest requests (a connection's queue
 * workers, backend/conn.c, and the fs layer's blocked-lock waiters they
 * start) narrows itself further, since Linux keeps these per thread
 * (bk_sandbox_worker): Landlock to its own export, the same capabilities,
 * and the queue threads' allow-list.  Anything outside an allow-list
 * fails with EPERM rather than killing (a forgotten call must show as an
 * error, not as a lost domain).
 *
 * Sanitizer builds (ASan) let LeakSanitizer's exit check work in a
 * worker: ptrace, wait, getdents and reading its own /proc.
 *
 * A kernel without Landlock (ENOSYS/EOPNOTSUPP) gets the rest and a loud
 * warning; any other failure to confine makes the worker refuse to serve.
 * `xenfsd --no-sandbox` skips all of it and serves every guest from its
 * one unconfined process.
 *
 * Test hook: XENFSD_SANDBOX_PROBE="path:path:..." in xenfsd's environment
 * makes every worker, once confined, try to open each path read-only and
 * log "sandbox probe DOMAIN: PATH: ok|error" (t_sandbox.sh); "@inet",
 * "@mount" and "@fork" try a network socket, a mount and a new process.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cap-ng.h>
#include <linux/landlock.h>
#include <seccomp.h>

#include "bk.h"
#include "log.h"
#include "priv.h"

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

/*
 * A ruleset handling every access this kernel's Landlock knows: its fd,
 * -EOPNOTSUPP (no Landlock here) or -errno.  *abi is the ABI version,
 * *data what an allowed directory gets: everything but exec, device
 * nodes and device ioctls.
 */
static int ll_ruleset(int *abi, uint64_t *data)
{
	struct landlock_ruleset_attr ra;
	uint64_t all;
	int rfd;

	*abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
			    LANDLOCK_CREATE_RULESET_VERSION);
	if (*abi < 0)
		return -EOPNOTSUPP;
	all = ll_handled(*abi);
	*data = all & ~(LANDLOCK_ACCESS_FS_EXECUTE |
			LANDLOCK_ACCESS_FS_MAKE_CHAR |
			LANDLOCK_ACCESS_FS_MAKE_BLOCK |
			LANDLOCK_ACCESS_FS_IOCTL_DEV);
	memset(&ra, 0, sizeof(ra));
	ra.handled_access_fs = all;
	rfd = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof(ra), 0);
	return rfd < 0 ? -errno : rfd;
}

/* 0, -EOPNOTSUPP (no Landlock here) or -errno. */
static int sandbox_landlock(const char *export_path, const char *state_dir)
{
	uint64_t data;
	int abi, rfd, r;

	if ((rfd = ll_ruleset(&abi, &data)) < 0)
		return rfd;
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

/* Cut the capability sets (and, with bounding, the bounding set: that
 * needs CAP_SETPCAP, so a worker process does it once for all its
 * threads) to what the fs layer uses. */
static int sandbox_caps_sel(int bounding)
{
	capng_select_t sel = bounding ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS;

	capng_clear(sel);
	if (capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED |
	    (bounding ? CAPNG_BOUNDING_SET : 0), CAP_CHOWN, CAP_DAC_OVERRIDE,
	    CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_SETGID,
	    CAP_SETUID, CAP_MKNOD, CAP_SETFCAP, -1) != 0)
		return -EINVAL;
	if (capng_apply(sel) != 0)
		return -EPERM;
	return 0;
}

static int sandbox_caps(void)
{
	return sandbox_caps_sel(!bk_is_worker());
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

#if defined(__SANITIZE_ADDRESS__)
#define XF_SANITIZED 1	/* LeakSanitizer's exit check: ptrace, /proc */
#else
#define XF_SANITIZED 0
#endif

/*
 * Load an allow-list filter: sc_allow plus extra (nextra names), the
 * argument-checked rules below, everything else EPERM.  san: also what
 * LeakSanitizer's exit check does (a tracer process, ptrace, wait).
 */
static int sandbox_seccomp_list(const char *const *extra, size_t nextra,
				int san)
{
	scmp_filter_ctx ctx;
	size_t i;
	int r;

	if ((ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM))) == NULL)
		return -ENOMEM;
	for (i = 0; i < sizeof(sc_allow) / sizeof(sc_allow[0]) + nextra; i++) {
		const char *name = i < sizeof(sc_allow) / sizeof(sc_allow[0]) ?
		    sc_allow[i] : extra[i - sizeof(sc_allow) / sizeof(sc_allow[0])];
		int nr = seccomp_syscall_resolve_name(name);

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
	    (r = san ? seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone),
	    0) : seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	    SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD))) < 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(unshare), 1,
	    SCMP_A0(SCMP_CMP_EQ, CLONE_FS))) < 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	    SCMP_A0(SCMP_CMP_EQ, AF_UNIX))) < 0) {
		seccomp_release(ctx);
		return r;
	}
	/* LeakSanitizer's tracer: ptrace, wait, and the old getdents it
	 * lists /proc/PID/task with on x86-64 */
	if (san && ((r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
	    SCMP_SYS(ptrace), 0)) < 0 || (r = seccomp_rule_add(ctx,
	    SCMP_ACT_ALLOW, SCMP_SYS(wait4), 0)) < 0 ||
	    (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(waitid),
	    0)) < 0 || (r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW,
	    SCMP_SYS(kill), 0)) < 0 || (r = seccomp_rule_add(ctx,
	    SCMP_ACT_ALLOW, SCMP_SYS(getdents), 0)) < 0)) {
		seccomp_release(ctx);
		return r;
	}
	/* the calling thread and those it starts from now on (no TSYNC) */
	r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

/* A queue thread: the list as it is. */
static int sandbox_seccomp(void)
{
	return sandbox_seccomp_list(NULL, 0, 0);
}

/* A worker process's main thread, before it starts any thread: the
 * event loop, its threads' own confinement on top. */
static const char *const sc_process_extra[] = {
	"epoll_create1", "epoll_create", "timerfd_create", "timerfd_settime",
	"timerfd_gettime", "landlock_create_ruleset", "landlock_add_rule",
	"landlock_restrict_self", "seccomp", "set_tid_address",
};

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

/* ---- a worker process's namespace (backend/worker.c) ---- */

#define NS_ROOT		"/tmp"	/* a tmpfs mounted here becomes our / */

struct ns_bind {
	const char *path;	/* where it appears in the new root */
	int fd;			/* O_PATH of the source, opened up front */
	int ro;
	int dev;		/* a device node: keep dev semantics */
};

/* mkdir -p of path under NS_ROOT; the tmpfs is ours, 0755 is fine. */
static int ns_mkdirs(const char *path)
{
	char buf[PATH_MAX];
	char *s;
	int n;

	n = snprintf(buf, sizeof(buf), "%s/%s", NS_ROOT, path);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -ENAMETOOLONG;
	for (s = buf + strlen(NS_ROOT) + 1; *s; s++) {
		if (*s != '/' || s[-1] == '/')
			continue;
		*s = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int ns_bind(const struct ns_bind *b, char *err, size_t errlen)
{
	char src[64], dst[PATH_MAX];
	unsigned long fl = MS_BIND | MS_REMOUNT | MS_NOSUID;
	int r, fd;

	snprintf(src, sizeof(src), "/proc/self/fd/%d", b->fd);
	snprintf(dst, sizeof(dst), "%s%s", NS_ROOT, b->path);
	if (b->dev) {
		/* a file to mount the device node on */
		char dir[PATH_MAX], *s;

		snprintf(dir, sizeof(dir), "%s", b->path);
		if ((s = strrchr(dir, '/')) && s != dir) {
			*s = '\0';
			if ((r = ns_mkdirs(dir)) < 0)
				goto fail;
		}
		fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0) {
			r = -errno;
			goto fail;
		}
		close(fd);
	} else if ((r = ns_mkdirs(b->path)) < 0) {
		goto fail;
	}
	if (mount(src, dst, NULL, MS_BIND | (b->dev ? 0 : MS_REC), NULL) < 0) {
		r = -errno;
		goto fail;
	}
	if (!b->dev)
		fl |= MS_NODEV;
	if (b->ro)
		fl |= MS_RDONLY;
	if (mount(NULL, dst, NULL, fl, NULL) < 0) {
		r = -errno;
		goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "cannot make %s visible to the worker: %s",
		 b->path, strerror(-r));
	return r;
}

/* Landlock for the whole worker process: its binds and nothing else. */
static int ns_landlock(const struct ns_bind *b, size_t n)
{
	uint64_t data;
	size_t i;
	int abi, rfd, r = 0;

	if ((rfd = ll_ruleset(&abi, &data)) < 0)
		return rfd;
	for (i = 0; i < n && r == 0; i++) {
		uint64_t acc = b[i].dev ?
		    (LANDLOCK_ACCESS_FS_READ_FILE |
		     LANDLOCK_ACCESS_FS_WRITE_FILE |
		     (abi >= 5 ? LANDLOCK_ACCESS_FS_IOCTL_DEV : 0)) : data;

		r = ll_allow(rfd, b[i].path, acc);
	}
	/* LeakSanitizer reads /proc/self/maps and /proc/self/task at exit;
	 * our /proc holds only this pid namespace (the worker itself) */
	if (r == 0 && XF_SANITIZED)
		r = ll_allow(rfd, "/proc", LANDLOCK_ACCESS_FS_READ_FILE |
			     LANDLOCK_ACCESS_FS_READ_DIR);
	if (r == 0 && syscall(SYS_landlock_restrict_self, rfd, 0) < 0)
		r = -errno;
	close(rfd);
	return r;
}

int bk_sandbox_process(const char *domain, const struct xf_config *cfg,
		       char *err, size_t errlen)
{
	static const char *const devs[] = {
		"/dev/xen/gntdev", "/dev/xen/evtchn",
	};
	struct ns_bind *b;
	char quota[PATH_MAX];
	size_t i, j, n = 0, nexp;
	int r = 0;

	b = calloc(cfg->nexports + 4, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	/* what stays reachable, opened while the host's tree is ours */
	for (i = 0; i < cfg->nexports; i++) {
		const struct xf_export *e = &cfg->exports[i];
		enum xf_access a = xf_policy_access(cfg, domain, e->tag);

		if (a == XF_ACCESS_NONE)
			continue;
		b[n].path = e->path;
		b[n].ro = a == XF_ACCESS_RO;
		b[n].fd = open(e->path, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (b[n].fd < 0) {
			/* like a connection to it would: refused then */
			log_warnx("worker %s: export '%s': %s: %s", domain,
				  e->tag, e->path, strerror(errno));
			continue;
		}
		n++;
	}
	nexp = n;
	if (cfg->global.state_dir) {
		snprintf(quota, sizeof(quota), "%s/quota",
			 cfg->global.state_dir);
		if (mkdir(quota, 0700) < 0 && errno != EEXIST)
			log_warn("worker %s: %s", domain, quota);
		b[n].path = quota;
		b[n].fd = open(quota, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (b[n].fd >= 0)
			n++;
	}
	for (j = 0; j < sizeof(devs) / sizeof(devs[0]); j++) {
		b[n].path = devs[j];
		b[n].dev = 1;
		b[n].fd = open(devs[j], O_PATH | O_CLOEXEC);
		if (b[n].fd >= 0)
			n++;
	}

	/* our own copy of the mount tree, then a root of our own */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		r = -errno;
		snprintf(err, errlen, "private mounts: %s", strerror(errno));
		goto out;
	}
	if (mount("xenfs-worker", NS_ROOT, "tmpfs", MS_NOSUID | MS_NODEV |
		  MS_NOEXEC, "mode=0755,size=1m,nr_inodes=4096") < 0) {
		r = -errno;
		snprintf(err, errlen, "tmpfs root: %s", strerror(errno));
		goto out;
	}
	/* shorter paths first, so that a nested export lands inside its
	 * parent's bind instead of being hidden by it */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && strlen(b[j - 1].path) >
		     strlen(b[j].path); j--) {
			struct ns_bind t = b[j];

			b[j] = b[j - 1];
			b[j - 1] = t;
		}
	for (i = 0; i < n && r == 0; i++)
		r = ns_bind(&b[i], err, errlen);
	if (r < 0)
		goto out;
	if ((r = ns_mkdirs("/proc")) < 0 || (r = ns_mkdirs("/.old")) < 0) {
		snprintf(err, errlen, "root directories: %s", strerror(-r));
		goto out;
	}
	/* a /proc of our pid namespace: the fs layer reopens its own fds
	 * through /proc/self/fd; no other process is in it */
	if (mount("proc", NS_ROOT "/proc", "proc", MS_NOSUID | MS_NODEV |
		  MS_NOEXEC, NULL) < 0) {
		r = -errno;
		snprintf(err, errlen, "/proc: %s", strerror(errno));
		goto out;
	}
	if (syscall(SYS_pivot_root, NS_ROOT, NS_ROOT "/.old") == 0) {
		if (chdir("/") < 0 || umount2("/.old", MNT_DETACH) < 0 ||
		    rmdir("/.old") < 0) {
			r = -errno;
			snprintf(err, errlen, "after pivot_root: %s",
				 strerror(errno));
			goto out;
		}
	} else if (errno == EINVAL) {
		/* the root is the initramfs (rootfs), which cannot be
		 * pivoted away from: move our root over it instead (it is
		 * hidden beneath, and CAP_SYS_CHROOT is dropped below) */
		if (chdir(NS_ROOT) < 0 || rmdir(".old") < 0 ||
		    mount(".", "/", NULL, MS_MOVE, NULL) < 0 ||
		    chroot(".") < 0 || chdir("/") < 0) {
			r = -errno;
			snprintf(err, errlen, "moving the root (rootfs): %s",
				 strerror(errno));
			goto out;
		}
	} else {
		r = -errno;
		snprintf(err, errlen, "pivot_root: %s", strerror(errno));
		goto out;
	}
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID |
		  MS_NODEV | MS_NOEXEC, NULL) < 0) {
		r = -errno;
		snprintf(err, errlen, "read-only root: %s", strerror(errno));
		goto out;
	}

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		r = -errno;
		snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
		goto out;
	}
	r = ns_landlock(b, n);
	if (r == -EOPNOTSUPP) {
		log_warnx("SANDBOX INCOMPLETE: this kernel has no Landlock; "
			  "worker %s is confined by its namespace, "
			  "capabilities and seccomp only", domain);
		r = 0;
	} else if (r < 0) {
		snprintf(err, errlen, "landlock: %s", strerror(-r));
		goto out;
	}
	if ((r = sandbox_caps_sel(1)) < 0) {
		snprintf(err, errlen, "capabilities: %s", strerror(-r));
		goto out;
	}
	r = sandbox_seccomp_list(sc_process_extra, sizeof(sc_process_extra) /
				 sizeof(sc_process_extra[0]), XF_SANITIZED);
	if (r < 0) {
		snprintf(err, errlen, "seccomp: %s", strerror(-r));
		goto out;
	}
	log_info("worker %s: namespace root holds %zu export%s; "
		 "no_new_privs, Landlock, capabilities cut, seccomp%s", domain,
		 nexp, nexp == 1 ? "" : "s", XF_SANITIZED ?
		 " (relaxed for the sanitizers' leak check)" : "");
out:
	for (i = 0; i < n; i++)
		if (b[i].fd >= 0)
			close(b[i].fd);
	free(b);
	return r;
}
