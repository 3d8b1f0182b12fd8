/*
 * Client side of the engine protocol (scan_i.h): start xenfs-scand, hand
 * it read-only descriptors over a SOCK_SEQPACKET socketpair, read back
 * verdicts.  Used by the scanner plugin and by xenfs-scan full.
 *
 * Threads: one caller at a time per struct scand.
 * Trust: xenfs-scand parses hostile files and may be compromised or
 * crash; every reply is checked for size, magic and request id, a reply
 * for an older request (after a timeout) is skipped, and a dead engine is
 * restarted at most once a second.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "scan_i.h"

#ifndef XENFS_LIBEXECDIR
#define XENFS_LIBEXECDIR "/usr/local/libexec/xenfs"
#endif

int64_t scan_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void scand_locate(struct scand *sd, const char *hint)
{
	const char *env = getenv("XENFS_SCAND");

	if (env && *env)
		snprintf(sd->exe, sizeof(sd->exe), "%s", env);
	else if (hint && access(hint, X_OK) == 0)
		snprintf(sd->exe, sizeof(sd->exe), "%s", hint);
	else
		snprintf(sd->exe, sizeof(sd->exe), "%s/xenfs-scand",
			 XENFS_LIBEXECDIR);
}

/*
 * The engine's temp dir, as its startup report names it, if that is a
 * plausible one: BASE/xenfs-scand.XXXXXX with BASE ours (or the default
 * tmpfs/tmp).  A compromised engine must not make us remove anything
 * else, and rmdir removes only an empty directory anyway.
 */
static void tmpdir_learn(struct scand *sd)
{
	const char *p = sd->info.name, *base;
	size_t bl;

	sd->tmpdir[0] = '\0';
	if (strncmp(p, "ready /", 7))
		return;
	p += 6;
	base = sd->tmp[0] ? sd->tmp : !strncmp(p, "/dev/shm/", 9) ?
	       "/dev/shm" : "/tmp";
	bl = strlen(base);
	if (strncmp(p, base, bl) || strncmp(p + bl, "/xenfs-scand.", 13) ||
	    strlen(p + bl + 13) != 6 || strchr(p + bl + 13, '/') ||
	    strstr(p, ".."))
		return;
	snprintf(sd->tmpdir, sizeof(sd->tmpdir), "%s", p);
}

/* Forget the engine; kill it unless it left by itself within wait_ms. */
static void reap_wait(struct scand *sd, int wait_ms)
{
	if (sd->fd >= 0)
		close(sd->fd);	/* EOF: an idle engine exits and cleans up */
	sd->fd = -1;
	if (sd->pid > 0) {
		int64_t end = scan_now_ms() + wait_ms;

		while (waitpid(sd->pid, NULL, WNOHANG) == 0) {
			if (scan_now_ms() >= end) {
				/* it may be stuck in a hostile file */
				(void)kill(sd->pid, SIGKILL);
				(void)waitpid(sd->pid, NULL, 0);
				break;
			}
			usleep(10000);
		}
	}
	sd->pid = 0;
	if (sd->tmpdir[0]) {
		(void)rmdir(sd->tmpdir);	/* gone already if it exited */
		sd->tmpdir[0] = '\0';
	}
}

static void reap(struct scand *sd)
{
	reap_wait(sd, 0);	/* broken: no mercy */
}

void scand_stop(struct scand *sd)
{
	reap_wait(sd, 500);
}

/* Read one reply with id `want` (0: the startup report) before deadline. */
static int recv_rep(struct scand *sd, uint64_t want, struct scan_rep *rep,
		    int64_t deadline)
{
	for (int i = 0; want && i < sd->nstash; i++)
		if (sd->stash[i].id == want) {
			*rep = sd->stash[i];
			memmove(&sd->stash[i], &sd->stash[i + 1],
				(size_t)(sd->nstash - i - 1) *
				sizeof(sd->stash[0]));
			sd->nstash--;
			return 0;
		}
	if (sd->fd < 0 || (want && want < sd->first_id))
		return -EPIPE;	/* that engine is gone */
	for (;;) {
		struct pollfd pfd = { sd->fd, POLLIN, 0 };
		int64_t left = deadline - scan_now_ms();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(sd->fd, rep, sizeof(*rep), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			reap(sd);
			return -EPIPE;
		}
		if (n != (ssize_t)sizeof(*rep) || rep->magic != SCAN_MAGIC) {
			/* a broken engine: a bug or a compromise */
			scan_log(SCAN_LOG_ERR, "xenfs-scand sent a malformed "
				 "reply: restarting it");
			reap(sd);
			return -EPROTO;
		}
		rep->name[sizeof(rep->name) - 1] = '\0';
		rep->engine[sizeof(rep->engine) - 1] = '\0';
		if (rep->id == want)
			return 0;
		/* another request's answer (still to be collected, or one
		 * we gave up on): keep it for a while */
		if (rep->id != 0) {
			if (sd->nstash == (int)(sizeof(sd->stash) /
						sizeof(sd->stash[0]))) {
				memmove(&sd->stash[0], &sd->stash[1],
					(size_t)(sd->nstash - 1) *
					sizeof(sd->stash[0]));
				sd->nstash--;
			}
			sd->stash[sd->nstash++] = *rep;
		}
	}
}

/*
 * Sanitizer builds only (the variables are unset otherwise): the engine
 * runs as nobody under Landlock and cannot create a report file where
 * log_path points, so it reports on stderr (our log) instead; and its
 * leak check cannot stop the world under its seccomp filter and
 * RLIMIT_NPROC, so it is off there (libclamav's allocations are not ours
 * to check anyway).  Called in the child, before exec.
 */
static void san_env(void)
{
	static const char *const vars[2][2] = {
		{ "ASAN_OPTIONS", ":log_path=stderr:detect_leaks=0" },
		{ "UBSAN_OPTIONS", ":log_path=stderr" },
	};
	char buf[2048];

	for (int i = 0; i < 2; i++) {
		const char *v = getenv(vars[i][0]);

		if (v == NULL)
			continue;
		snprintf(buf, sizeof(buf), "%.1900s%s", v, vars[i][1]);
		(void)setenv(vars[i][0], buf, 1);
	}
}

int scand_start(struct scand *sd, int timeout_ms)
{
	int sv[2], r;
	pid_t pid, parent = getpid();

	if (sd->fd >= 0)
		return 0;
	sd->last_spawn_ms = scan_now_ms();
	memset(&sd->info, 0, sizeof(sd->info));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	if ((pid = fork()) < 0) {
		r = -errno;
		close(sv[0]);
		close(sv[1]);
		return r;
	}
	if (pid == 0) {
		char *argv[10];
		int a = 0;

		/* the engine never outlives its client */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
		    getppid() != parent)
			_exit(127);
		if (dup2(sv[1], 3) < 0)
			_exit(127);
		san_env();
		argv[a++] = (char *)"xenfs-scand";
		argv[a++] = (char *)"--db";
		argv[a++] = sd->db;
		if (sd->nice)
			argv[a++] = (char *)"--nice";
		if (sd->tmp[0]) {
			argv[a++] = (char *)"--tmp";
			argv[a++] = sd->tmp;
		}
		argv[a] = NULL;
		execv(sd->exe, argv);
		_exit(127);
	}
	close(sv[1]);
	sd->fd = sv[0];
	sd->pid = pid;
	/* ids keep growing across restarts: a reply can never be taken
	 * for one of a request the previous engine took down with it */
	if (sd->next_id == 0)
		sd->next_id = 1;
	sd->first_id = sd->next_id;
	sd->nstash = 0;
	r = recv_rep(sd, 0, &sd->info, scan_now_ms() + timeout_ms);
	if (r < 0) {
		if (!sd->info.name[0])
			snprintf(sd->info.name, sizeof(sd->info.name),
				 "%.300s did not start (%s)", sd->exe,
				 strerror(-r));
		reap(sd);
		return r;
	}
	if (sd->info.result < 0) {
		r = sd->info.result;
		reap(sd);
		return r;
	}
	tmpdir_learn(sd);
	return 0;
}

static int send_req(struct scand *sd, uint32_t op, int fd, uint64_t *id)
{
	struct scan_req q = { SCAN_MAGIC, op, sd->next_id++ };
	struct iovec iov = { &q, sizeof(q) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct msghdr mh;
	struct cmsghdr *c;

	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	if (sendmsg(sd->fd, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(q)) {
		reap(sd);
		return -EPIPE;
	}
	*id = q.id;
	return 0;
}

/* Restart a dead engine, at most once a second. */
static int ensure(struct scand *sd)
{
	int r;

	if (sd->fd >= 0)
		return 0;
	if (scan_now_ms() - sd->last_spawn_ms < 1000)
		return -EAGAIN;
	if ((r = scand_start(sd, 120000)) < 0) {
		scan_log(SCAN_LOG_ERR, "scanning engine: %s", sd->info.name);
		return r;
	}
	scan_log(SCAN_LOG_INFO, "scanning engine (re)started: pid %ld, "
		 "%llu signatures", (long)sd->pid,
		 (unsigned long long)sd->info.sigs);
	return 0;
}

int scand_submit(struct scand *sd, int fd, uint64_t *id)
{
	int r;

	if ((r = ensure(sd)) < 0)
		return r;
	return send_req(sd, SCAN_OP_SCAN, fd, id);
}

int scand_scan(struct scand *sd, int fd, char *sig, size_t siglen,
	       int timeout_ms)
{
	uint64_t id;
	int r;

	if ((r = scand_submit(sd, fd, &id)) < 0)
		return r;
	return scand_collect(sd, id, sig, siglen, timeout_ms);
}

int scand_collect(struct scand *sd, uint64_t id, char *sig, size_t siglen,
		  int timeout_ms)
{
	struct scan_rep rep;
	int r;

	if ((r = recv_rep(sd, id, &rep, scan_now_ms() + timeout_ms)) < 0)
		return r;
	if (rep.result == SCAN_VIRUS && sig)
		snprintf(sig, siglen, "%s", rep.name[0] ? rep.name :
			 "unnamed");
	else if (rep.result < 0 && sig)
		snprintf(sig, siglen, "%s", rep.name);
	/* keep the engine's description fresh (reloads) */
	sd->info.sigs = rep.sigs;
	sd->info.db_version = rep.db_version;
	sd->info.db_time = rep.db_time;
	if (rep.result != SCAN_CLEAN && rep.result != SCAN_VIRUS &&
	    rep.result >= 0)
		return -EPROTO;
	return rep.result;
}

int scand_info(struct scand *sd, int timeout_ms)
{
	struct scan_rep rep;
	uint64_t id;
	int r;

	if ((r = ensure(sd)) < 0)
		return r;
	if ((r = send_req(sd, SCAN_OP_INFO, -1, &id)) < 0)
		return r;
	if ((r = recv_rep(sd, id, &rep, scan_now_ms() + timeout_ms)) < 0)
		return r;
	sd->info = rep;
	return 0;
}
