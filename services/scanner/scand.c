/*
 * xenfs-scand: the scanning engine's process.  It loads the ClamAV
 * signature database with libclamav, drops every privilege it can, then
 * answers scan requests from its one client (the scanner plugin or
 * xenfs-scan full) on descriptor 3, a SOCK_SEQPACKET socket: each request
 * brings a read-only descriptor of a file (SCM_RIGHTS), each reply
 * carries only a verdict and the signature's name (scan_i.h).
 *
 *   xenfs-scand --db DIR [--nice] [--tmp DIR]   (started by proto.c only)
 *
 * Order: load the database -> unshare the network namespace -> drop to
 * nobody/nogroup (setgroups, setresgid, setresuid, checked) -> no new
 * privileges, no children -> Landlock (only the database directory and
 * its own temp dir may be opened) -> a seccomp denylist -> loop.  The
 * engine may still read the database directory (world-readable, as
 * freshclam keeps it) so it can reload it when freshclam updates it:
 * every 2 s it checks the directory (cl_statchkdir) and compiles a new
 * engine; a database that fails to load leaves the old engine in
 * service.  With no signatures at all it refuses to start: a scanner
 * that passes everything would be worse than none.
 *
 * Threads: one.  Trust: files are hostile (that is why this process
 * exists); requests come from our own root client and are still checked.
 * A descriptor that is not a regular file opened read-only is refused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <linux/landlock.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <clamav.h>
#include <seccomp.h>

#include "scan_i.h"

#define SOCK_FD		3
#define RELOAD_CHECK_MS	2000

static struct cl_engine *engine;
static char tmpdir[64];		/* private, ours after the drop */
static struct cl_stat dbstat;
static char dbdir[4096];
static unsigned int sigs;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "xenfs-scand[%ld]: ", (long)getpid());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void unused_log(int prio, const char *fmt, ...)
{
}
scan_log_fn scan_log = unused_log;

/* Newest mtime of the database files (the age `status` shows). */
static int64_t db_newest(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int64_t t = 0;

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.' ||
		    fstatat(dirfd(d), de->d_name, &st, 0) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if (st.st_mtime > t)
			t = st.st_mtime;
	}
	closedir(d);
	return t;
}

/* Build an engine from dbdir.  0 or -errno with a message in err. */
static int engine_build(struct cl_engine **out, unsigned int *nsigs,
			char *err, size_t errlen)
{
	struct cl_engine *e;
	struct stat st;
	cl_error_t r;

	*nsigs = 0;
	if (stat(dbdir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "ClamAV database directory %.300s: %s "
			 "(run freshclam, or set [scan] database)", dbdir,
			 strerror(errno ? errno : ENOTDIR));
		return -ENOENT;
	}
	if ((e = cl_engine_new()) == NULL) {
		snprintf(err, errlen, "cl_engine_new failed");
		return -ENOMEM;
	}
	if (tmpdir[0] &&
	    (r = cl_engine_set_str(e, CL_ENGINE_TMPDIR, tmpdir)) !=
	    CL_SUCCESS) {
		snprintf(err, errlen, "cannot set the engine's temporary "
			 "directory: %s", cl_strerror(r));
		cl_engine_free(e);
		return -EINVAL;
	}
	r = cl_load(dbdir, e, nsigs, CL_DB_STDOPT);
	if (r == CL_EOPEN) {
		snprintf(err, errlen, "no ClamAV signature database in %.300s: "
			 "run freshclam (or set [scan] database)", dbdir);
		cl_engine_free(e);
		return -ENOENT;
	}
	if (r != CL_SUCCESS) {
		snprintf(err, errlen, "cannot load ClamAV database %.300s: %s "
			 "(run freshclam)", dbdir, cl_strerror(r));
		cl_engine_free(e);
		return -EINVAL;
	}
	if (*nsigs == 0) {
		snprintf(err, errlen, "no ClamAV signatures in %.300s: run "
			 "freshclam (or set [scan] database)", dbdir);
		cl_engine_free(e);
		return -ENOENT;
	}
	if ((r = cl_engine_compile(e)) != CL_SUCCESS) {
		snprintf(err, errlen, "cannot compile ClamAV database "
			 "%.300s: %s", dbdir, cl_strerror(r));
		cl_engine_free(e);
		return -EINVAL;
	}
	*out = e;
	return 0;
}

static void fill_info(struct scan_rep *rep)
{
	int err = 0;
	long long v = 0;

	rep->magic = SCAN_MAGIC;
	rep->sigs = sigs;
	if (engine)
		v = cl_engine_get_num(engine, CL_ENGINE_DB_VERSION, &err);
	rep->db_version = err == 0 && v > 0 ? (uint64_t)v : 0;
	rep->db_time = db_newest(dbdir);
	snprintf(rep->engine, sizeof(rep->engine), "%s", cl_retver());
}

static void tmpdir_remove(void)
{
	/* libclamav removes its per-scan files; the directory is ours */
	if (tmpdir[0])
		(void)rmdir(tmpdir);
}

/*
 * libclamav unpacks archives into temporary files: give it a directory
 * of its own, made while we are root and handed to nobody, rather than
 * the caller's TMPDIR (which nobody may not be able to write).
 */
static int tmpdir_make(const char *base)
{
	struct passwd *pw;
	struct statfs sf;

	/* per-file temp dirs cost a journal commit on disk, ~nothing on
	 * a tmpfs */
	if (base == NULL)
		base = statfs("/dev/shm", &sf) == 0 &&
		       sf.f_type == TMPFS_MAGIC ? "/dev/shm" : "/tmp";

	snprintf(tmpdir, sizeof(tmpdir), "%s/xenfs-scand.XXXXXX", base);
	if (mkdtemp(tmpdir) == NULL) {
		tmpdir[0] = '\0';
		return -1;
	}
	if (geteuid() == 0 && (pw = getpwnam("nobody")) != NULL &&
	    chown(tmpdir, pw->pw_uid, pw->pw_gid) < 0) {
		(void)rmdir(tmpdir);
		tmpdir[0] = '\0';
		return -1;
	}
	atexit(tmpdir_remove);
	return 0;
}

/* Our client died (PDEATHSIG) or we are told to go: even in the middle
 * of a scan, remove the temp dir (async-signal-safe calls only). */
static void on_term(int sig)
{
	if (tmpdir[0])
		(void)rmdir(tmpdir);
	_exit(0);
}

static void reply(const struct scan_rep *rep)
{
	if (send(SOCK_FD, rep, sizeof(*rep), MSG_NOSIGNAL) !=
	    (ssize_t)sizeof(*rep)) {
		/* our client is gone: nothing left to do */
		exit(0);
	}
}

static void reload_check(void)
{
	struct cl_engine *ne = NULL;
	unsigned int ns;
	char err[512];

	if (cl_statchkdir(&dbstat) != 1)
		return;
	cl_statfree(&dbstat);
	memset(&dbstat, 0, sizeof(dbstat));
	(void)cl_statinidir(dbdir, &dbstat);
	if (engine_build(&ne, &ns, err, sizeof(err)) < 0) {
		say("database changed but does not load, keeping the old "
		    "one: %s", err);
		return;
	}
	cl_engine_free(engine);
	engine = ne;
	sigs = ns;
	say("database %s reloaded: %u signatures", dbdir, ns);
}

/*
 * A seccomp denylist on top of the namespace and uid confinement: no new
 * sockets or connections, no exec, no tracing, no namespace, mount,
 * module, key or BPF games.  An allowlist would be tighter but libclamav
 * reaches for a wide, version-dependent set of calls (mmap, temporary
 * files, directory walks, its bytecode engine); denied calls fail with
 * EPERM rather than killing, so a parser taking an unexpected path
 * reports an error instead of dying.
 */
static int seccomp_deny(void)
{
	static const int deny[] = {
		SCMP_SYS(socket), SCMP_SYS(socketpair), SCMP_SYS(connect),
		SCMP_SYS(bind), SCMP_SYS(listen), SCMP_SYS(accept),
		SCMP_SYS(accept4), SCMP_SYS(execve), SCMP_SYS(execveat),
		SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv),
		SCMP_SYS(process_vm_writev), SCMP_SYS(mount),
		SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(chroot),
		SCMP_SYS(unshare), SCMP_SYS(setns), SCMP_SYS(init_module),
		SCMP_SYS(finit_module), SCMP_SYS(delete_module),
		SCMP_SYS(kexec_load), SCMP_SYS(bpf), SCMP_SYS(perf_event_open),
		SCMP_SYS(keyctl), SCMP_SYS(add_key), SCMP_SYS(request_key),
		SCMP_SYS(open_by_handle_at), SCMP_SYS(name_to_handle_at),
		SCMP_SYS(userfaultfd), SCMP_SYS(io_uring_setup),
		SCMP_SYS(setuid), SCMP_SYS(setgid), SCMP_SYS(setreuid),
		SCMP_SYS(setregid), SCMP_SYS(setresuid), SCMP_SYS(setresgid),
		SCMP_SYS(setgroups), SCMP_SYS(fork), SCMP_SYS(vfork),
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = 0;

	if (ctx == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(deny) / sizeof(deny[0]) && r == 0; i++)
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), deny[i], 0);
	if (r == 0)
		r = seccomp_load(ctx);
	seccomp_release(ctx);
	return r;
}

/*
 * Landlock: after this, the engine may open files only beneath the
 * database directory (read) and its own temporary directory (read,
 * write, create, remove).  Descriptors it already holds or receives are
 * not affected, which is how guest files reach it.  A kernel without
 * Landlock leaves the other layers in place (logged once).
 */
static int landlock_apply(void)
{
	struct landlock_ruleset_attr ra = { 0 };
	struct landlock_path_beneath_attr pb = { 0 };
	const uint64_t all = (1ULL << 13) - 1;	/* the ABI 1 rights */
	const uint64_t ro = LANDLOCK_ACCESS_FS_READ_FILE |
			    LANDLOCK_ACCESS_FS_READ_DIR;
	const uint64_t rw = ro | LANDLOCK_ACCESS_FS_WRITE_FILE |
			    LANDLOCK_ACCESS_FS_REMOVE_DIR |
			    LANDLOCK_ACCESS_FS_REMOVE_FILE |
			    LANDLOCK_ACCESS_FS_MAKE_DIR |
			    LANDLOCK_ACCESS_FS_MAKE_REG;
	int rs, fd, r = 0;

	ra.handled_access_fs = all;
	rs = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof(ra), 0);
	if (rs < 0)
		return errno == ENOSYS || errno == EOPNOTSUPP ? 1 : -errno;
	/* and removing our own temp dir at exit: its parent is sticky
	 * (/dev/shm, /tmp), so that is all REMOVE_DIR there allows */
	char parent[64], *sl;
	snprintf(parent, sizeof(parent), "%s", tmpdir);
	if ((sl = strrchr(parent, '/')) != NULL && sl != parent)
		*sl = '\0';
	else
		parent[0] = '\0';
	const char *dirs[3] = { dbdir, tmpdir, parent };
	const uint64_t acc[3] = { ro, rw, LANDLOCK_ACCESS_FS_REMOVE_DIR };
	for (int i = 0; i < 3 && r == 0; i++) {
		if (!dirs[i][0])
			continue;
		fd = open(dirs[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0) {
			r = -errno;
			break;
		}
		pb.allowed_access = acc[i];
		pb.parent_fd = fd;
		if (syscall(SYS_landlock_add_rule, rs,
			    LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0)
			r = -errno;
		close(fd);
	}
	if (r == 0 && syscall(SYS_landlock_restrict_self, rs, 0) < 0)
		r = -errno;
	close(rs);
	return r;
}

static void sandbox(int nice)
{
	struct passwd *pw;
	uid_t ru, eu, su;
	gid_t rg, eg, sg, gid;
	struct rlimit rl = { 0, 0 };
	int r;

	if (nice) {
		/* ioprio_set(IOPRIO_WHO_PROCESS, 0, class IDLE) */
		if (setpriority(PRIO_PROCESS, 0, 19) < 0 ||
		    syscall(SYS_ioprio_set, 1, 0, 3 << 13) < 0)
			say("cannot lower priority: %s", strerror(errno));
	}
	if (geteuid() == 0) {
		if (unshare(CLONE_NEWNET) < 0) {
			say("unshare(CLONE_NEWNET): %s", strerror(errno));
			exit(2);
		}
		if ((pw = getpwnam("nobody")) == NULL) {
			say("no user nobody");
			exit(2);
		}
		gid = pw->pw_gid;
		if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
		    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
			say("cannot drop privileges: %s", strerror(errno));
			exit(2);
		}
		if (getresuid(&ru, &eu, &su) < 0 || ru != pw->pw_uid ||
		    eu != pw->pw_uid || su != pw->pw_uid ||
		    getresgid(&rg, &eg, &sg) < 0 || rg != gid || eg != gid ||
		    sg != gid || setuid(0) == 0) {
			say("privileges not dropped");
			exit(2);
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		say("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		exit(2);
	}
	/* the uid change cleared it (SIGTERM now: we clean up and go);
	 * and no children, no core dumps */
	signal(SIGTERM, on_term);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() == 1)
		exit(0);
	(void)setrlimit(RLIMIT_NPROC, &rl);	/* best effort */
	(void)setrlimit(RLIMIT_CORE, &rl);
	if ((r = landlock_apply()) < 0) {
		say("landlock: %s", strerror(-r));
		exit(2);
	}
	if (r > 0)
		say("landlock not available: file system access not narrowed");
	if ((r = seccomp_deny()) < 0) {
		say("seccomp: %s", strerror(-r));
		exit(2);
	}
}

static void serve_one(void)
{
	struct scan_req q;
	struct scan_rep rep;
	struct iovec iov = { &q, sizeof(q) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} cm;
	struct msghdr mh;
	struct cmsghdr *c;
	int fd = -1, extra = 0;
	ssize_t n;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	n = recvmsg(SOCK_FD, &mh, MSG_CMSG_CLOEXEC);
	if (n == 0)
		exit(0);
	if (n < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return;
		exit(0);
	}
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(f));
			if (fd < 0)
				fd = f;
			else {
				close(f);
				extra = 1;
			}
		}
	}
	memset(&rep, 0, sizeof(rep));
	fill_info(&rep);
	if (n != (ssize_t)sizeof(q) || q.magic != SCAN_MAGIC) {
		rep.result = -EPROTO;
		snprintf(rep.name, sizeof(rep.name), "malformed request");
		goto out;
	}
	rep.id = q.id;
	if (q.op == SCAN_OP_INFO) {
		rep.result = 0;
		goto out;
	}
	if (q.op != SCAN_OP_SCAN || fd < 0 || extra) {
		rep.result = -EINVAL;
		snprintf(rep.name, sizeof(rep.name), "bad request");
		goto out;
	}
	struct stat st;
	int fl = fcntl(fd, F_GETFL);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || fl < 0 ||
	    (fl & O_ACCMODE) != O_RDONLY) {
		rep.result = -EBADF;
		snprintf(rep.name, sizeof(rep.name), "not a read-only regular "
			 "file");
		goto out;
	}
	struct cl_scan_options opts;
	const char *virname = NULL;
	unsigned long scanned = 0;
	cl_error_t r;

	memset(&opts, 0, sizeof(opts));
	opts.parse = ~0u;	/* every parser, as clamscan */
	opts.general = CL_SCAN_GENERAL_HEURISTICS;
	r = cl_scandesc(fd, NULL, &virname, &scanned, engine, &opts);
	rep.scanned = (uint64_t)scanned * CL_COUNT_PRECISION;
	if (r == CL_VIRUS) {
		rep.result = SCAN_VIRUS;
		snprintf(rep.name, sizeof(rep.name), "%s",
			 virname ? virname : "unnamed");
	} else if (r == CL_CLEAN) {
		rep.result = SCAN_CLEAN;
	} else {
		/* trouble of ours (memory, temp files) is worth a retry;
		 * anything else is about this file */
		rep.result = r == CL_EMEM || r == CL_ETMPFILE ||
			     r == CL_ETMPDIR || r == CL_ECREAT ||
			     r == CL_EWRITE || r == CL_EDUP ? -EAGAIN : -EIO;
		snprintf(rep.name, sizeof(rep.name), "%s", cl_strerror(r));
	}
out:
	if (fd >= 0)
		close(fd);
	reply(&rep);
}

#ifdef __SANITIZE_ADDRESS__
/*
 * ASan builds: LeakSanitizer's exit-time check stops the world through a
 * helper process that ptrace()s us, which the sandbox forbids (seccomp
 * denies ptrace, RLIMIT_NPROC is 0, the uid change made us non-dumpable),
 * so it died with "LeakSanitizer has encountered a fatal error" at every
 * exit.  Leak checking is off by default here; ASAN_OPTIONS can still
 * turn it on.
 */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "db", required_argument, NULL, 'd' },
		{ "nice", no_argument, NULL, 'n' },
		{ "tmp", required_argument, NULL, 't' },
		{ NULL, 0, NULL, 0 },
	};
	const char *tmpbase = NULL;
	struct scan_rep rep;
	char err[512];
	int ch, nice = 0;
	cl_error_t cr;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			snprintf(dbdir, sizeof(dbdir), "%s", optarg);
			break;
		case 'n':
			nice = 1;
			break;
		case 't':
			tmpbase = optarg;
			break;
		default:
			fprintf(stderr, "usage: xenfs-scand --db DIR [--nice] "
				"[--tmp DIR] "
				"(started by the scanner, not by hand)\n");
			return 1;
		}
	}
	if (!dbdir[0] || fcntl(SOCK_FD, F_GETFD) < 0) {
		fprintf(stderr, "xenfs-scand: started by the scanner plugin "
			"and xenfs-scan only\n");
		return 1;
	}
	(void)fcntl(SOCK_FD, F_SETFD, FD_CLOEXEC);
	signal(SIGPIPE, SIG_IGN);
	memset(&rep, 0, sizeof(rep));
	if ((cr = cl_init(CL_INIT_DEFAULT)) != CL_SUCCESS) {
		fill_info(&rep);
		rep.result = -EIO;
		snprintf(rep.name, sizeof(rep.name), "cl_init: %s",
			 cl_strerror(cr));
		reply(&rep);
		return 2;
	}
	if (tmpdir_make(tmpbase) < 0) {
		fill_info(&rep);
		rep.result = -EIO;
		snprintf(rep.name, sizeof(rep.name), "cannot make a private "
			 "temporary directory: %s", strerror(errno));
		reply(&rep);
		return 2;
	}
	if ((ch = engine_build(&engine, &sigs, err, sizeof(err))) < 0) {
		fill_info(&rep);
		rep.result = ch;
		snprintf(rep.name, sizeof(rep.name), "%.450s", err);
		reply(&rep);
		return 2;
	}
	memset(&dbstat, 0, sizeof(dbstat));
	(void)cl_statinidir(dbdir, &dbstat);
	sandbox(nice);
	fill_info(&rep);
	rep.result = 0;
	rep.id = 0;
	/* our temp dir, so the client can remove it if it kills us */
	snprintf(rep.name, sizeof(rep.name), "ready %s", tmpdir);
	reply(&rep);

	int64_t last_check = scan_now_ms();
	for (;;) {
		struct pollfd pfd = { SOCK_FD, POLLIN, 0 };
		int pr = poll(&pfd, 1, RELOAD_CHECK_MS);

		if (scan_now_ms() - last_check >= RELOAD_CHECK_MS) {
			reload_check();
			last_check = scan_now_ms();
		}
		if (pr > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			serve_one();
	}
}
