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
#include "opts_i.h"
#include "ring.h"
#include "transport.h"

/* mount(8) helper exit codes */

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

/*
 * Leave the parent's session and terminal.  Returns 1 if logging should
 * move to syslog.  Without a syslog socket (an initramfs mounting the
 * root filesystem, a minimal container) stderr is kept instead if it is
 * a terminal, console or file, so the daemon's messages still reach
 * whatever its parent gave it.
 */
static int daemon_detach(void)
{
	struct stat st;
	int fd, use_syslog = access("/dev/log", F_OK) == 0;

	/* never hold a pipe open: `out=$(mount.xenfs ...)` would wait on
	 * us forever; a console or a log file is fine */
	if (!use_syslog && (fstat(STDERR_FILENO, &st) < 0 ||
			    !(S_ISCHR(st.st_mode) || S_ISREG(st.st_mode))))
		use_syslog = 1;

	if (setsid() < 0)
		log_warn("setsid");
	if (chdir("/") < 0)
		log_warn("chdir /");
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		(void)dup2(fd, STDIN_FILENO);
		(void)dup2(fd, STDOUT_FILENO);
		if (use_syslog)
			(void)dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			(void)close(fd);
	}
	return use_syslog;
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

	rc = opts_parse(&o, argc, argv);
	if (rc) {
		opts_free(&o);
		return rc > 0 ? 0 : EXIT_USAGE;
	}
	log_init(1, o.verbose > 0, "mount.xenfs");
	log_procinit("mount.xenfs");
	if (!o.foreground)
		daemon_fork();

	if (do_connect(&o, &conn, &granted))
		goto fail;
	rdonly = o.ro || (granted & XENFS_LOCAL_F_RO);
	if (granted & XENFS_LOCAL_F_NOEXEC)
		o.mflags |= MS_NOEXEC;	/* the export's policy; not undoable */
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

	if (!o.foreground && daemon_detach())
		log_init(0, o.verbose > 0, "mount.xenfs");
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
	opts_free(&o);
	return reason == FWD_UNMOUNTED || reason == FWD_STOPPED ? 0 : 1;

fail_umount:
	if (umount2(o.mountpoint, MNT_DETACH) < 0)
		log_warn("umount %s", o.mountpoint);
fail:
	if (fuse_fd >= 0)
		(void)close(fuse_fd);
	xf_conn_destroy(conn);
	opts_free(&o);
	report(EXIT_MOUNTFAIL);
	return EXIT_MOUNTFAIL;
}
