/*
 * mount.xenfs: the guest frontend.  Connects to the backend over a
 * transport (local socket or Xen), mounts a FUSE filesystem and forwards
 * its requests (fwd.c) until the filesystem is unmounted or the backend
 * goes away.  Follows the mount(8) helper convention, so that
 * `mount -t xenfs TAG /mnt -o ...` works when installed as
 * /sbin/mount.xenfs.
 *
 * Order of events: parse options (exit 1 on a usage error); unless -f,
 * fork at once (before any transport library starts threads or binds
 * handles) and let the parent wait for the child's verdict; connect to
 * the backend before mounting, so a refusal is printed and nothing is
 * mounted (exit 32); mount(2); start the workers; tell the parent (which
 * exits 0) and detach, logging to syslog from then on.
 *
 * Threads: this file runs on the main thread only.  After setup it
 * supervises: the backend's liveness descriptor, signals (signalfd) and
 * the workers' "ended" eventfd.  Trust boundary: command line and
 * options come from root (mount(8)); the backend is checked in fwd.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <xenfs/local.h>

#include "front_i.h"
#include "log.h"
#include "ring.h"
#include "transport.h"

/* mount(8) helper exit codes */
#define EXIT_USAGE	1
#define EXIT_MOUNTFAIL	32

/* gntalloc refuses to share more than this many pages by default */
#define GNTALLOC_DEFAULT_PAGES	1024u

enum { TR_DEFAULT, TR_LOCAL, TR_XEN };

struct front_opts {
	const char *tag;
	char mountpoint[PATH_MAX];
	int transport;
	const char *socket;
	uint32_t backend_domid;
	uint32_t queues, ring_order, buf_size;
	int set_queues, set_order, set_buf;
	int ro;
	unsigned long mflags;
	int foreground;
	int verbose;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: mount.xenfs TAG MOUNTPOINT [-fnsv] [-o OPTIONS]\n"
		"options: transport=local|xen, socket=PATH, backend=DOMID,\n"
		"         queues=N, ring-order=N, buf-size=BYTES[k|m], ro, rw,\n"
		"         noexec, exec, noatime, atime, nodiratime, relatime,\n"
		"         strictatime, lazytime, sync, async, dirsync\n"
		"see mount.xenfs(8)\n");
}

static int parse_u32(const char *s, uint32_t min, uint32_t max,
		     uint32_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -EINVAL;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end || v < min || v > max)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

struct flag_opt {
	const char *name;
	unsigned long set, clear;
};

static const struct flag_opt flag_opts[] = {
	{ "noexec", MS_NOEXEC, 0 },
	{ "exec", 0, MS_NOEXEC },
	{ "noatime", MS_NOATIME, MS_RELATIME | MS_STRICTATIME },
	{ "atime", 0, MS_NOATIME },
	{ "nodiratime", MS_NODIRATIME, 0 },
	{ "diratime", 0, MS_NODIRATIME },
	{ "relatime", MS_RELATIME, MS_NOATIME | MS_STRICTATIME },
	{ "norelatime", 0, MS_RELATIME },
	{ "strictatime", MS_STRICTATIME, MS_NOATIME | MS_RELATIME },
	{ "nostrictatime", 0, MS_STRICTATIME },
	{ "lazytime", MS_LAZYTIME, 0 },
	{ "nolazytime", 0, MS_LAZYTIME },
	{ "sync", MS_SYNCHRONOUS, 0 },
	{ "async", 0, MS_SYNCHRONOUS },
	{ "dirsync", MS_DIRSYNC, 0 },
	/* always on by policy; accepted so fstab lines read naturally */
	{ "nosuid", MS_NOSUID, 0 },
	{ "nodev", MS_NODEV, 0 },
	{ "silent", MS_SILENT, 0 },
	{ "loud", 0, MS_SILENT },
};

/* Options that mount(8) or fstab may hand us and that mean nothing here. */
static const char *const ignored_opts[] = {
	"defaults", "auto", "noauto", "nofail", "_netdev", "user", "nouser",
	"users", "owner", "group", "nousers",
};

static int parse_one(struct front_opts *o, char *opt)
{
	char *val = strchr(opt, '=');
	size_t i;

	if (val)
		*val++ = '\0';
	if (val && !*val)
		goto bad_value;
	if (!strcmp(opt, "transport") && val) {
		if (!strcmp(val, "local"))
			o->transport = TR_LOCAL;
		else if (!strcmp(val, "xen"))
			o->transport = TR_XEN;
		else
			goto bad_value;
		return 0;
	}
	if (!strcmp(opt, "socket") && val && *val) {
		o->socket = val;
		return 0;
	}
	if (!strcmp(opt, "backend") && val) {
		if (parse_u32(val, 0, 0x7fef, &o->backend_domid))
			goto bad_value;
		return 0;
	}
	if (!strcmp(opt, "queues") && val) {
		if (parse_u32(val, 1, XENFS_MAX_QUEUES, &o->queues))
			goto bad_value;
		o->set_queues = 1;
		return 0;
	}
	if (!strcmp(opt, "ring-order") && val) {
		if (parse_u32(val, XENFS_MIN_RING_ORDER, XENFS_MAX_RING_ORDER,
			      &o->ring_order))
			goto bad_value;
		o->set_order = 1;
		return 0;
	}
	if (!strcmp(opt, "buf-size") && val) {
		if (parse_u32(val, XENFS_MIN_BUF_SIZE, XENFS_MAX_BUF_SIZE,
			      &o->buf_size) ||
		    o->buf_size % XENFS_PAGE_SIZE) {
			fprintf(stderr, "mount.xenfs: buf-size must be a "
				"multiple of %u between %u and %u\n",
				XENFS_PAGE_SIZE, XENFS_MIN_BUF_SIZE,
				XENFS_MAX_BUF_SIZE);
			return -EINVAL;
		}
		o->set_buf = 1;
		return 0;
	}
	if (val)
		goto unknown;
	if (!strcmp(opt, "ro")) {
		o->ro = 1;
		return 0;
	}
	if (!strcmp(opt, "rw")) {
		o->ro = 0;
		return 0;
	}
	if (!strcmp(opt, "suid") || !strcmp(opt, "dev")) {
		fprintf(stderr, "mount.xenfs: ignoring '%s': xenfs mounts "
			"are always nosuid,nodev\n", opt);
		return 0;
	}
	for (i = 0; i < sizeof(flag_opts) / sizeof(flag_opts[0]); i++) {
		if (!strcmp(opt, flag_opts[i].name)) {
			o->mflags &= ~flag_opts[i].clear;
			o->mflags |= flag_opts[i].set;
			return 0;
		}
	}
	for (i = 0; i < sizeof(ignored_opts) / sizeof(ignored_opts[0]); i++)
		if (!strcmp(opt, ignored_opts[i]))
			return 0;
	if (!strncmp(opt, "x-", 2) || !strncmp(opt, "comment", 7))
		return 0;
unknown:
	fprintf(stderr, "mount.xenfs: unknown option '%s%s%s'\n", opt,
		val ? "=" : "", val ? val : "");
	return -EINVAL;
bad_value:
	fprintf(stderr, "mount.xenfs: bad value '%s' for option '%s'\n",
		val, opt);
	return -EINVAL;
}

static int parse_options(struct front_opts *o, const char *s)
{
	char *tok, *save = NULL;
	char *copy = strdup(s);

	/* values point into the copy: it lives as long as the process
	 * (-o may be given more than once, each copy is kept) */
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		if (parse_one(o, tok))
			return -EINVAL;
	return 0;
}

static uint32_t default_queues(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 2)
		return 2;
	return n > 4 ? 4 : (uint32_t)n;
}

static uint64_t layout_pages(uint32_t nq, uint32_t order, uint32_t buf)
{
	struct xenfs_layout l = { nq, order, buf, 0 };

	return xenfs_region_pages(&l);
}

/* Fill in defaults and check the combination.  0 or -EINVAL. */
static int finish_options(struct front_opts *o)
{
	if (o->transport == TR_DEFAULT)
		o->transport = o->socket ? TR_LOCAL : TR_XEN;
	if (o->transport == TR_LOCAL && !o->socket) {
		fprintf(stderr, "mount.xenfs: transport=local needs "
			"socket=PATH\n");
		return -EINVAL;
	}
	if (o->transport == TR_XEN && o->socket) {
		fprintf(stderr, "mount.xenfs: socket= is for "
			"transport=local\n");
		return -EINVAL;
	}
	if (!o->set_queues)
		o->queues = default_queues();
	if (!o->set_buf)
		o->buf_size = o->transport == TR_LOCAL ?
			      (1u << 20) + XENFS_PAGE_SIZE :
			      (128u << 10) + XENFS_PAGE_SIZE;
	if (!o->set_order) {
		o->ring_order = o->transport == TR_LOCAL ? 3 : 2;
		/* stay within gntalloc's default limit when we can */
		while (o->transport == TR_XEN &&
		       o->ring_order > XENFS_MIN_RING_ORDER &&
		       layout_pages(o->queues, o->ring_order, o->buf_size) >
		       GNTALLOC_DEFAULT_PAGES)
			o->ring_order--;
	}
	if (o->transport == TR_XEN &&
	    layout_pages(o->queues, o->ring_order, o->buf_size) >
	    GNTALLOC_DEFAULT_PAGES)
		fprintf(stderr, "mount.xenfs: warning: %llu pages to share, "
			"more than gntalloc's default limit of %u\n",
			(unsigned long long)layout_pages(o->queues,
				o->ring_order, o->buf_size),
			GNTALLOC_DEFAULT_PAGES);
	return 0;
}

static int parse_args(struct front_opts *o, int argc, char **argv)
{
	const char *pos[2];
	int npos = 0, c;

	memset(o, 0, sizeof(*o));
	opterr = 0;
	/* leading '-': non-options come back as 1, in order */
	while ((c = getopt(argc, argv, "-o:fnsvht:")) != -1) {
		switch (c) {
		case 1:
			if (npos == 2) {
				fprintf(stderr, "mount.xenfs: unexpected "
					"argument '%s'\n", optarg);
				return -EINVAL;
			}
			pos[npos++] = optarg;
			break;
		case 'o':
			if (parse_options(o, optarg))
				return -EINVAL;
			break;
		case 'f':
			o->foreground = 1;
			break;
		case 'v':
			o->verbose++;
			break;
		case 'n':	/* no mtab: we never write one */
		case 's':	/* sloppy: we are strict anyway */
			break;
		case 't':	/* mount(8) may name the type: must be ours */
			if (strcmp(optarg, "xenfs") &&
			    strcmp(optarg, "fuse.xenfs")) {
				fprintf(stderr, "mount.xenfs: cannot mount "
					"type %s\n", optarg);
				return -EINVAL;
			}
			break;
		case 'h':
			usage();
			exit(0);
		default:
			fprintf(stderr, "mount.xenfs: unknown flag -%c\n",
				optopt);
			return -EINVAL;
		}
	}
	if (npos != 2) {
		usage();
		return -EINVAL;
	}
	o->tag = pos[0];
	if (!*o->tag || strlen(o->tag) >= XENFS_TAG_MAX) {
		fprintf(stderr, "mount.xenfs: tag must be 1 to %u "
			"characters\n", XENFS_TAG_MAX - 1);
		return -EINVAL;
	}
	if (!realpath(pos[1], o->mountpoint)) {
		fprintf(stderr, "mount.xenfs: mount point %s: %s\n", pos[1],
			strerror(errno));
		return -EINVAL;
	}
	return finish_options(o);
}

/* ---- daemon handshake with the parent ---- */

static int report_fd = -1;	/* child -> parent, one byte: exit status */

static void report(int status)
{
	unsigned char b = (unsigned char)status;

	if (report_fd < 0)
		return;
	if (write(report_fd, &b, 1) != 1)
		log_warn("reporting to the parent");
	(void)close(report_fd);
	report_fd = -1;
}

/* Fork; the parent waits for the child's verdict and exits with it. */
static void daemon_fork(void)
{
	int p[2];
	pid_t pid;
	unsigned char b;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) < 0) {
		perror("mount.xenfs: pipe");
		exit(EXIT_MOUNTFAIL);
	}
	pid = fork();
	if (pid < 0) {
		perror("mount.xenfs: fork");
		exit(EXIT_MOUNTFAIL);
	}
	if (pid > 0) {
		(void)close(p[1]);
		do
			n = read(p[0], &b, 1);
		while (n < 0 && errno == EINTR);
		/* EOF without a verdict: the child died during setup */
		_exit(n == 1 ? b : EXIT_MOUNTFAIL);
	}
	(void)close(p[0]);
	report_fd = p[1];
}

/* Leave the parent's session and terminal; stderr goes quiet. */
static void daemon_detach(void)
{
	int fd;

	if (setsid() < 0)
		log_warn("setsid");
	if (chdir("/") < 0)
		log_warn("chdir /");
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		(void)dup2(fd, STDIN_FILENO);
		(void)dup2(fd, STDOUT_FILENO);
		(void)dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			(void)close(fd);
	}
}

/* ---- the mount ---- */

static int do_connect(const struct front_opts *o, struct xf_conn **conn,
		      uint32_t *granted)
{
	struct xenfs_layout l = {
		.nr_queues = o->queues, .ring_order = o->ring_order,
		.buf_size = o->buf_size,
	};
	uint32_t flags = o->ro ? XENFS_LOCAL_F_RO : 0;
	char err[256] = "";
	int rc;

	*granted = 0;
	if (o->transport == TR_LOCAL) {
		rc = xf_local_connect(o->socket, o->tag, flags, &l, conn,
				      granted, err, sizeof(err));
	} else {
#ifdef XENFS_HAVE_XEN
		rc = xf_xen_front_connect(o->tag, o->backend_domid, flags, &l,
					  conn, granted, err, sizeof(err));
#else
		snprintf(err, sizeof(err), "this mount.xenfs was built "
			 "without the Xen transport; use transport=local");
		rc = -EPROTONOSUPPORT;
#endif
	}
	if (rc) {
		log_warnx("cannot connect to export %s: %s", o->tag,
			  err[0] ? err : strerror(-rc));
		return rc;
	}
	log_debug("connected over %s: %u queues of %u slots, buffers of "
		  "%u bytes%s", (*conn)->ops->name, l.nr_queues,
		  1u << l.ring_order, l.buf_size,
		  (*granted & XENFS_LOCAL_F_RO) ? ", read-only" : "");
	return 0;
}

static int do_mount(const struct front_opts *o, int fuse_fd, int rdonly)
{
	char data[256];
	unsigned long flags = o->mflags | MS_NOSUID | MS_NODEV;

	if (rdonly)
		flags |= MS_RDONLY;
	snprintf(data, sizeof(data), "fd=%d,rootmode=40000,user_id=0,"
		 "group_id=0,default_permissions,allow_other,max_read=%u",
		 fuse_fd, o->buf_size - XENFS_BUF_HEADROOM);
	if (mount(o->tag, o->mountpoint, "fuse.xenfs", flags, data) < 0) {
		log_warn("mount %s on %s", o->tag, o->mountpoint);
		return -errno;
	}
	return 0;
}

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape(char *s)
{
	char *d = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*d++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 |
				      (s[3] - '0'));
			s += 4;
		} else {
			*d++ = *s++;
		}
	}
	*d = '\0';
}

/*
 * The device number of our new mount, from /proc/self/mountinfo (the
 * topmost fuse.xenfs mount on mnt).  stat() cannot be used: it would send
 * a GETATTR that waits for INIT, which no worker forwards yet.
 */
static int mount_dev(const char *mnt, dev_t *dev)
{
	FILE *fp = fopen("/proc/self/mountinfo", "re");
	char line[4096], mp[PATH_MAX], *sep;
	unsigned maj, min;
	int found = 0;

	if (!fp)
		return -errno;
	while (fgets(line, sizeof(line), fp)) {
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min,
			   mp) != 3)
			continue;
		sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "fuse.xenfs ", 11) != 0)
			continue;
		unescape(mp);
		if (strcmp(mp, mnt) == 0) {
			*dev = makedev(maj, min);
			found = 1;
		}
	}
	fclose(fp);
	return found ? 0 : -ENOENT;
}

/*
 * Abort the FUSE connection so that everything on the mount fails with
 * ENOTCONN at once.  Through fusectl if it is mounted; in any case our
 * exit closes every /dev/fuse descriptor, which aborts it as well.
 */
static void abort_fuse(dev_t dev)
{
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort",
		 minor(dev));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "1", 1) < 0)
		log_warn("%s", path);
	(void)close(fd);
}

/* Supervise until forwarding ends.  Returns an enum fwd_end. */
static int supervise(struct fwd *f, int sigfd, const char *mnt)
{
	struct pollfd pfd[3];
	struct signalfd_siginfo si;
	int peer = xf_conn_peer_fd(f->conn), n;
	int unmounting = 0;

	for (;;) {
		pfd[0].fd = f->done_fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = sigfd;
		pfd[1].events = POLLIN;
		pfd[2].fd = peer;
		pfd[2].events = POLLIN;
		n = poll(pfd, 3, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_warn("poll");
			return FWD_LOCAL_ERROR;
		}
		if (pfd[0].revents)
			return __atomic_load_n(&f->end_reason,
					       __ATOMIC_SEQ_CST);
		if (pfd[1].revents & POLLIN &&
		    read(sigfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo == SIGHUP)
				continue;
			if (unmounting)
				return FWD_STOPPED;
			/* detach: the workers see ENODEV once it is gone */
			log_info("signal %u: unmounting %s", si.ssi_signo,
				 mnt);
			unmounting = 1;
			if (umount2(mnt, MNT_DETACH) < 0) {
				log_warn("umount %s", mnt);
				return FWD_STOPPED;
			}
		}
		if (pfd[2].revents && xf_conn_peer_check(f->conn) < 0) {
			log_warnx("the backend went away; aborting the mount "
				  "of %s (umount it to clear)", mnt);
			return FWD_BACKEND_BROKEN;
		}
	}
}

int main(int argc, char **argv)
{
	struct front_opts o;
	struct xf_conn *conn = NULL;
	struct fwd f;
	dev_t mdev = 0;
	sigset_t sigs;
	uint32_t granted = 0;
	int fuse_fd = -1, sigfd, rdonly, rc, reason;

	if (parse_args(&o, argc, argv))
		return EXIT_USAGE;
	log_init(1, o.verbose > 0, "mount.xenfs");
	log_procinit("mount.xenfs");
	if (!o.foreground)
		daemon_fork();

	if (do_connect(&o, &conn, &granted)) {
		report(EXIT_MOUNTFAIL);
		return EXIT_MOUNTFAIL;
	}
	rdonly = o.ro || (granted & XENFS_LOCAL_F_RO);
	if (!o.ro && rdonly)
		log_info("the backend grants %s read-only access", o.tag);

	fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fuse_fd < 0) {
		log_warn("/dev/fuse");
		goto fail;
	}
	if (do_mount(&o, fuse_fd, rdonly))
		goto fail;
	if ((rc = mount_dev(o.mountpoint, &mdev)) < 0) {
		errno = -rc;
		log_warn("finding the new mount of %s", o.mountpoint);
		goto fail_umount;
	}

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGPIPE);
	/* blocked in every thread (they inherit the mask), read here */
	if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0 ||
	    (sigfd = signalfd(-1, &sigs, SFD_CLOEXEC)) < 0) {
		log_warn("signalfd");
		goto fail_umount;
	}

	if (!o.foreground) {
		daemon_detach();
		log_init(0, o.verbose > 0, "mount.xenfs");
	}
	memset(&f, 0, sizeof(f));
	f.conn = conn;
	f.fuse_fd = fuse_fd;
	f.mountpoint = o.mountpoint;
	f.mnt_dev = mdev;
	f.max_write = o.buf_size - XENFS_BUF_HEADROOM;
	f.stop_fd = f.done_fd = -1;
	rc = fwd_start(&f);
	if (rc) {
		errno = -rc;
		log_warn("starting the workers");
		goto fail_umount;
	}
	log_info("mounted %s on %s over %s%s", o.tag, o.mountpoint,
		 conn->ops->name, rdonly ? " (read-only)" : "");
	report(0);

	reason = supervise(&f, sigfd, o.mountpoint);
	switch (reason) {
	case FWD_UNMOUNTED:
		log_info("%s unmounted", o.mountpoint);
		break;
	case FWD_STOPPED:
		break;
	default:
		log_warnx("forwarding for %s stopped (%s); the mount now "
			  "reports ENOTCONN until it is unmounted",
			  o.mountpoint, reason == FWD_BACKEND_BROKEN ?
			  "backend failed" : "local error");
		abort_fuse(mdev);
		break;
	}
	/* closing the master first lets a pending syncfs fail, so the
	 * workers' teardown cannot wait on it */
	(void)close(fuse_fd);
	fwd_join(&f);
	xf_conn_destroy(conn);
	return reason == FWD_UNMOUNTED || reason == FWD_STOPPED ? 0 : 1;

fail_umount:
	if (umount2(o.mountpoint, MNT_DETACH) < 0)
		log_warn("umount %s", o.mountpoint);
fail:
	if (fuse_fd >= 0)
		(void)close(fuse_fd);
	xf_conn_destroy(conn);
	report(EXIT_MOUNTFAIL);
	return EXIT_MOUNTFAIL;
}
