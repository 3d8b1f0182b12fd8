/*
 * xenfs-services: runs the operation stream's consumers (plugins, see
 * <xenfs/plugin.h>), each in its own process, so that a crashing or
 * hanging plugin never stops file serving (xenfsd does not depend on us)
 * nor the other plugins.
 *
 *   xenfs-services -c CONFIG [-f] [-v] [--watchdog SECONDS]
 *   xenfs-services -c CONFIG --plugin PATH --name NAME --report-fd N
 *       (internal: one plugin's child, started by the parent)
 *
 * Parent (supervisor): single-threaded poll loop over one report pipe
 * per child and a signalfd.  For each [services] plugins entry it forks
 * and re-execs itself in child mode (a fresh address space per plugin).
 * A child that exits or dies is restarted after a backoff of 1 s doubling
 * to 30 s (reset after 60 s of good running); a child that reports "busy"
 * (inside on_event) for longer than the watchdog is killed with SIGKILL
 * and restarted the same way.  Once a second the parent writes
 * STATE_DIR/services/status (lib/ctlproto.h), which xenfsctl status shows
 * with each consumer's lag.
 *
 * Child: dlopens the plugin, copies min(struct_size, sizeof) of its
 * descriptor, calls init, then loops: read a batch from the journal from
 * its cursor, call on_event, commit the cursor only after success (so a
 * crash redelivers at most the uncommitted batch, and never loses one);
 * between batches it answers verdict requests on its verdict socket.
 * Everything runs on the child's one thread.
 *
 * Trust: plugins are code the admin installed (trusted but possibly
 * buggy); events hold guest-chosen paths that plugins must treat as
 * untrusted.  The report pipe is parsed defensively.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <xenfs/event.h>
#include <xenfs/plugin.h>

#include "ctlproto.h"
#include "log.h"
#include "policy.h"
#include "stream.h"

#define DEFAULT_CONFIG	XENFS_SYSCONFDIR "/xenfs/xenfs.conf"
#define BATCH_MAX	256
#define BACKOFF_MIN_MS	1000
#define BACKOFF_MAX_MS	30000
#define GOOD_RUN_MS	60000

static struct xf_config *cfg;
static const char *cfg_path = DEFAULT_CONFIG;
static char state_dir[PATH_MAX - 128];
static char journal_dir[PATH_MAX];
static char svc_dir[PATH_MAX];

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int valid_plugin_name(const char *s)
{
	size_t n = 0;

	if (!s || !*s || *s == '.')
		return 0;
	for (; s[n]; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') ||
		      (s[n] >= 'A' && s[n] <= 'Z') ||
		      (s[n] >= '0' && s[n] <= '9') || strchr("._-", s[n])))
			return 0;
	return n <= 64;
}

/* ================= child: one plugin ================= */

static struct xenfs_plugin plug;	/* host's copy of the descriptor */
static void *plug_state;
static char plug_name[80];
static int report_fd = -1;
static volatile sig_atomic_t child_quit;

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (report_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	for (int i = 0; i < n; i++)
		if (buf[i] == '\n')
			buf[i] = ' ';
	buf[n++] = '\n';
	/* the parent reads promptly; if it is gone we die with SIGPIPE */
	if (write(report_fd, buf, (size_t)n) < 0)
		log_debug("report: %s", strerror(errno));
}

static void svc_log(int prio, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (prio <= XENFS_LOG_WARNING)
		log_warnx("%s", buf);
	else if (prio >= XENFS_LOG_DEBUG)
		log_debug("%s", buf);
	else
		log_info("%s", buf);
}

static const char *svc_config_get(const char *section, const char *key)
{
	return xf_config_get(cfg, section, key);
}

static int svc_control(const char *request, char **reply)
{
	struct sockaddr_un sun;
	const char *sock = cfg->global.control_socket;
	char line[1100], c;
	size_t n = 0, len, got = 0;
	int fd, e;

	*reply = NULL;
	if (!sock || strlen(sock) >= sizeof(sun.sun_path) ||
	    strlen(request) > 1024 || strchr(request, '\n'))
		return -EINVAL;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, sock, strlen(sock));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		e = -errno;
		close(fd);
		return e;
	}
	n = (size_t)snprintf(line, sizeof(line), "%s\n", request);
	if (write(fd, line, n) != (ssize_t)n) {
		close(fd);
		return -EIO;
	}
	n = 0;
	while (read(fd, &c, 1) == 1 && c != '\n' && n + 1 < sizeof(line))
		line[n++] = c;
	line[n] = '\0';
	if (!strncmp(line, "ERR ", 4)) {
		*reply = strdup(line + 4);
		close(fd);
		return -EPROTO;
	}
	if (sscanf(line, "OK %zu", &len) != 1 || len > (64u << 20)) {
		close(fd);
		return -EPROTO;
	}
	if ((*reply = malloc(len + 1)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (got < len) {
		ssize_t r = read(fd, *reply + got, len - got);
		if (r <= 0) {
			free(*reply);
			*reply = NULL;
			close(fd);
			return -EIO;
		}
		got += (size_t)r;
	}
	(*reply)[len] = '\0';
	close(fd);
	return 0;
}

static struct xenfs_host_services svc = {
	.abi_version = XENFS_PLUGIN_ABI_VERSION,
	.struct_size = sizeof(struct xenfs_host_services),
	.log = svc_log,
	.config_get = svc_config_get,
	.control = svc_control,
};

static int plugin_load(const char *path)
{
	const struct xenfs_plugin *p;
	xenfs_plugin_entry_fn entry;
	void *h;
	size_t n;

	if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		report("error dlopen: %s", dlerror());
		log_warnx("%s", dlerror());
		return -ENOENT;
	}
	*(void **)&entry = dlsym(h, "xenfs_plugin_entry");
	if (entry == NULL || (p = entry()) == NULL) {
		report("error %s: no xenfs_plugin_entry", path);
		log_warnx("%s: no xenfs_plugin_entry", path);
		return -ENOENT;
	}
	if ((p->abi_version >> 16) != XENFS_PLUGIN_ABI_MAJOR ||
	    p->struct_size < offsetof(struct xenfs_plugin, init)) {
		report("error %s: ABI %u.%u not supported", path,
		       p->abi_version >> 16, p->abi_version & 0xffff);
		log_warnx("%s: plugin ABI %u.%u, host speaks %u.x", path,
			  p->abi_version >> 16, p->abi_version & 0xffff,
			  XENFS_PLUGIN_ABI_MAJOR);
		return -EPROTO;
	}
	memset(&plug, 0, sizeof(plug));
	n = p->struct_size < sizeof(plug) ? p->struct_size : sizeof(plug);
	memcpy(&plug, p, n);
	if (plug.on_event == NULL) {
		report("error %s: no on_event", path);
		return -EINVAL;
	}
	return 0;
}

/* ---- child: verdict socket ---- */

static int verdict_fd = -1;
static char verdict_path[PATH_MAX + 256];

static int verdict_listen(void)
{
	struct sockaddr_un sun;
	int fd;

	snprintf(verdict_path, sizeof(verdict_path), "%s/verdict-%s.sock",
		 svc_dir, plug_name);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(verdict_path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, verdict_path, strlen(verdict_path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
			 SOCK_NONBLOCK, 0)) < 0)
		return -errno;
	(void)unlink(verdict_path);	/* our previous life's */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(verdict_path, 0600) < 0 || listen(fd, 64) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	verdict_fd = fd;
	return 0;
}

static int read_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, (char *)buf + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* Serve one verdict connection (blocking, bounded by a socket timeout). */
static void verdict_serve(int cfd)
{
	struct xf_verdict_msg m;
	struct msghdr mh;
	struct iovec iov = { &m, sizeof(m) };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct timeval tv = { 2, 0 };
	struct cmsghdr *c;
	char *strs = NULL;
	int ffd = -1;
	int32_t ans = -EIO;
	ssize_t r;

	(void)setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	r = recvmsg(cfd, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	for (c = CMSG_FIRSTHDR(&mh); r > 0 && c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&ffd, CMSG_DATA(c), sizeof(int));
	if (r != (ssize_t)sizeof(m) || m.magic != XF_VERDICT_MAGIC ||
	    m.domain_len > 255 || m.export_len > 255 ||
	    m.path_len > XF_VERDICT_STR_MAX)
		goto out;
	size_t sl = (size_t)m.domain_len + m.export_len + m.path_len;
	if ((strs = malloc(sl + 3)) == NULL)
		goto out;
	if (read_exact(cfd, strs, sl) < 0)
		goto out;
	memmove(strs + m.domain_len + m.export_len + 2,
		strs + m.domain_len + m.export_len, m.path_len);
	strs[m.domain_len + m.export_len + 2 + m.path_len] = '\0';
	memmove(strs + m.domain_len + 1, strs + m.domain_len, m.export_len);
	strs[m.domain_len + 1 + m.export_len] = '\0';
	strs[m.domain_len] = '\0';

	struct xenfs_verdict_req vr = {
		.domain = strs,
		.export_tag = strs + m.domain_len + 1,
		.path = strs + m.domain_len + m.export_len + 2,
		.dev = m.dev, .ino = m.ino, .size = m.size,
		.ctime_sec = m.ctime_sec, .ctime_nsec = m.ctime_nsec,
		.flags = m.flags, .fd = ffd,
	};
	ans = plug.verdict(plug_state, &vr);
	log_debug("verdict %s:%s%s -> %d", vr.domain, vr.export_tag, vr.path,
		  ans);
out:
	if (send(cfd, &ans, sizeof(ans), MSG_NOSIGNAL) < 0)
		log_debug("verdict answer: %s", strerror(errno));
	free(strs);
	if (ffd >= 0)
		close(ffd);
}

static void verdict_poll(int timeout_ms)
{
	struct pollfd pfd = { verdict_fd, POLLIN, 0 };

	if (verdict_fd < 0) {
		if (timeout_ms > 0)
			usleep((useconds_t)timeout_ms * 1000);
		return;
	}
	if (poll(&pfd, 1, timeout_ms) <= 0)
		return;
	for (;;) {
		int cfd = accept4(verdict_fd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			break;
		verdict_serve(cfd);
		close(cfd);
	}
}

static void child_sig(int sig)
{
	child_quit = 1;
}

/* Sleep ms while still answering verdicts. */
static void child_sleep(int ms)
{
	int64_t end = mono_ms() + ms;

	while (!child_quit && mono_ms() < end)
		verdict_poll((int)(end - mono_ms() < 100 ? end - mono_ms() :
				   100));
}

static int deliver(struct xenfs_event **batch, size_t n)
{
	int backoff = BACKOFF_MIN_MS, r;

	for (;;) {
		report("busy %" PRIu64, batch[0]->seq);
		r = plug.on_event(plug_state,
				  (const struct xenfs_event *const *)batch, n);
		report("idle");
		if (r == 0)
			return 0;
		report("error on_event: %s (batch %" PRIu64 "..%" PRIu64
		       " will be redelivered)", strerror(r < 0 ? -r : r),
		       batch[0]->seq, batch[n - 1]->seq);
		child_sleep(backoff);
		if (child_quit)
			return -EINTR;
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
			  backoff * 2;
	}
}

static int resync(const char *domain, const char *export_tag)
{
	int backoff = BACKOFF_MIN_MS, r;

	log_warnx("consumer %s: full re-crawl needed for %s%s%s", plug_name,
		  *domain ? domain : "every domain", *export_tag ? ":" : "",
		  export_tag);
	if (plug.on_resync == NULL)
		return 0;
	for (;;) {
		report("busy resync");
		r = plug.on_resync(plug_state, domain, export_tag);
		report("idle");
		if (r == 0)
			return 0;
		report("error on_resync: %s", strerror(-r));
		child_sleep(backoff);
		if (child_quit)
			return -EINTR;
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
			  backoff * 2;
	}
}

/* Deliver and commit the pending batch (if any); -EINTR when quitting. */
static int flush(struct xf_stream_reader *rd, struct xenfs_event **batch,
		 size_t *n)
{
	int r;

	if (*n == 0)
		return 0;
	if (deliver(batch, *n) < 0)
		return -EINTR;
	if ((r = xf_stream_commit(rd, batch[*n - 1]->seq)) < 0)
		report("error cursor commit: %s", strerror(-r));
	while (*n)
		free(batch[--*n]);
	return 0;
}

static int child_main(const char *path, const char *name)
{
	struct xf_stream_reader *rd;
	struct xenfs_event *batch[BATCH_MAX];
	size_t n = 0;
	int r;

	snprintf(plug_name, sizeof(plug_name), "%s", name);
	log_procinit(plug_name);
	signal(SIGTERM, child_sig);
	signal(SIGINT, child_sig);
	signal(SIGHUP, SIG_IGN);
	if (plugin_load(path) < 0)
		return 3;
	svc.state_dir = state_dir;
	svc.plugin_name = plug_name;
	{
		char d[PATH_MAX];
		snprintf(d, sizeof(d), "%s/%s", state_dir, plug_name);
		if (mkdir(d, 0750) < 0 && errno != EEXIST)
			log_warn("mkdir %s", d);
	}
	if (plug.init && (r = plug.init(&svc, &plug_state)) < 0) {
		report("error init: %s", strerror(-r));
		log_warnx("init: %s", strerror(-r));
		return 3;
	}
	if (plug.verdict) {
		if ((r = verdict_listen()) < 0) {
			report("error verdict socket: %s", strerror(-r));
			log_warnx("verdict socket: %s", strerror(-r));
		} else {
			report("verdict");
		}
	}
	if ((r = xf_stream_reader_open(journal_dir, plug_name, &rd)) < 0) {
		report("error journal %s: %s", journal_dir, strerror(-r));
		return 3;
	}
	report("running %" PRIu64, xf_stream_cursor(rd));
	log_info("running from cursor %" PRIu64, xf_stream_cursor(rd));
	while (!child_quit) {
		struct xenfs_event *ev;
		uint64_t gf, gl;

		r = xf_stream_next(rd, &ev, &gf, &gl);
		if (r == XF_STREAM_EVENT) {
			if (ev->op == XENFS_EV_RESYNC && plug.on_resync) {
				if (flush(rd, batch, &n) < 0 ||
				    resync(ev->domain, ev->export_tag) < 0) {
					free(ev);
					break;
				}
				(void)xf_stream_commit(rd, ev->seq);
				free(ev);
				continue;
			}
			batch[n++] = ev;
			if (n == BATCH_MAX && flush(rd, batch, &n) < 0)
				break;
			continue;
		}
		if (flush(rd, batch, &n) < 0)
			break;
		if (r == XF_STREAM_GAP) {
			if (resync("", "") < 0)
				break;
			(void)xf_stream_commit(rd, gl);
		} else if (r < 0) {
			report("error journal: %s", strerror(-r));
			child_sleep(1000);
		} else {
			/* nothing new: answer verdicts while waiting */
			verdict_poll(50);
		}
	}
	while (n)
		free(batch[--n]);
	xf_stream_reader_close(rd);
	if (plug.fini)
		plug.fini(plug_state);
	if (verdict_fd >= 0) {
		close(verdict_fd);
		(void)unlink(verdict_path);
	}
	report("stopped");
	return 0;
}

/* ================= parent: supervisor ================= */

enum cstate { C_STARTING, C_RUNNING, C_BUSY, C_BACKOFF, C_FAILED,
	      C_STOPPED };
static const char *cstate_name[] = { "starting", "running", "busy",
				     "backoff", "failed", "stopped" };

struct child {
	char name[80];
	char path[PATH_MAX];
	pid_t pid;
	int rfd;			/* report pipe, read end */
	char rbuf[1024];
	size_t rlen;
	enum cstate state;
	unsigned restarts;
	int verdict;
	int64_t started_ms, busy_since_ms, next_start_ms;
	int backoff_ms;
	char last_err[256];
	int killed_hung;
};

static struct child *kids;
static size_t nkids;
static int watchdog_ms = 60000;
static const char *self_exe;
static int verbose;
static volatile sig_atomic_t quit;

static int plugin_resolve(const char *word, struct child *k)
{
	const char *dir = xf_config_get(cfg, "services", "plugin-dir");
	const char *base;
	size_t bl;

	if (strchr(word, '/')) {
		snprintf(k->path, sizeof(k->path), "%s", word);
		base = strrchr(word, '/') + 1;
	} else {
		snprintf(k->path, sizeof(k->path), "%.2000s/%.200s.so",
			 dir ? dir : XENFS_PLUGINDIR, word);
		base = word;
	}
	bl = strlen(base);
	if (bl > 3 && !strcmp(base + bl - 3, ".so"))
		bl -= 3;
	snprintf(k->name, sizeof(k->name), "%.*s", (int)(bl > 64 ? 64 : bl),
		 base);
	if (!valid_plugin_name(k->name)) {
		log_warnx("plugin %s: name must be [A-Za-z0-9._-]", word);
		return -EINVAL;
	}
	return 0;
}

static void kid_spawn(struct child *k)
{
	int p[2];
	pid_t pid;
	char fdarg[16];
	pid_t ppid = getpid();

	if (pipe2(p, O_CLOEXEC) < 0) {
		log_warn("pipe");
		k->next_start_ms = mono_ms() + BACKOFF_MIN_MS;
		return;
	}
	if ((pid = fork()) < 0) {
		log_warn("fork");
		close(p[0]);
		close(p[1]);
		k->next_start_ms = mono_ms() + BACKOFF_MIN_MS;
		return;
	}
	if (pid == 0) {
		int fd;

		/* die with the supervisor: a restarted supervisor must not
		 * find an old child still consuming the same cursor */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != ppid)
			_exit(127);
		fd = dup(p[1]);	/* without O_CLOEXEC */
		snprintf(fdarg, sizeof(fdarg), "%d", fd);
		char *argv[] = { (char *)"xenfs-services", (char *)"-c",
				 (char *)cfg_path, (char *)"--plugin",
				 k->path, (char *)"--name", k->name,
				 (char *)"--report-fd", fdarg,
				 verbose ? (char *)"-v" : NULL, NULL };
		execv(self_exe, argv);
		_exit(127);
	}
	close(p[1]);
	k->pid = pid;
	k->rfd = p[0];
	k->rlen = 0;
	k->state = C_STARTING;
	k->verdict = 0;
	k->killed_hung = 0;
	k->started_ms = mono_ms();
	k->busy_since_ms = 0;
	log_info("plugin %s: started pid %ld (%s)", k->name, (long)pid,
		 k->path);
}

static void kid_line(struct child *k, char *line)
{
	if (!strncmp(line, "busy", 4)) {
		k->state = C_BUSY;
		k->busy_since_ms = mono_ms();
	} else if (!strcmp(line, "idle") || !strncmp(line, "running", 7)) {
		k->state = C_RUNNING;
		k->busy_since_ms = 0;
	} else if (!strcmp(line, "verdict")) {
		k->verdict = 1;
	} else if (!strncmp(line, "error ", 6)) {
		snprintf(k->last_err, sizeof(k->last_err), "%s", line + 6);
		log_warnx("plugin %s: %s", k->name, line + 6);
	}
}

static void kid_read(struct child *k)
{
	ssize_t r;
	char *nl;

	r = read(k->rfd, k->rbuf + k->rlen, sizeof(k->rbuf) - 1 - k->rlen);
	if (r <= 0) {
		close(k->rfd);
		k->rfd = -1;
		return;
	}
	k->rlen += (size_t)r;
	k->rbuf[k->rlen] = '\0';
	while ((nl = memchr(k->rbuf, '\n', k->rlen)) != NULL) {
		*nl = '\0';
		kid_line(k, k->rbuf);
		k->rlen -= (size_t)(nl + 1 - k->rbuf);
		memmove(k->rbuf, nl + 1, k->rlen);
	}
	if (k->rlen == sizeof(k->rbuf) - 1)
		k->rlen = 0;	/* overlong line from a buggy child: drop */
}

static void kid_exited(struct child *k, int status)
{
	int64_t now = mono_ms();
	char why[128];

	if (k->killed_hung)
		snprintf(why, sizeof(why), "hung in on_event for more than "
			 "%d s: killed", watchdog_ms / 1000);
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "crashed (signal %d)",
			 WTERMSIG(status));
	else
		snprintf(why, sizeof(why), "exited with status %d",
			 WEXITSTATUS(status));
	if (k->rfd >= 0) {
		kid_read(k);	/* last words */
		if (k->rfd >= 0)
			close(k->rfd);
		k->rfd = -1;
	}
	k->pid = 0;
	if (quit) {
		k->state = C_STOPPED;
		return;
	}
	if (k->killed_hung || WIFSIGNALED(status) ||
	    !k->last_err[0] || strncmp(k->last_err, "init", 4))
		snprintf(k->last_err, sizeof(k->last_err), "%s", why);
	if (now - k->started_ms > GOOD_RUN_MS)
		k->backoff_ms = BACKOFF_MIN_MS;
	else if (k->backoff_ms == 0)
		k->backoff_ms = BACKOFF_MIN_MS;
	else
		k->backoff_ms = k->backoff_ms * 2 > BACKOFF_MAX_MS ?
				BACKOFF_MAX_MS : k->backoff_ms * 2;
	k->state = C_BACKOFF;
	k->restarts++;
	k->next_start_ms = now + k->backoff_ms;
	log_warnx("plugin %s: %s; restart in %d ms", k->name, why,
		  k->backoff_ms);
}

static void status_write(void)
{
	char path[PATH_MAX + 32], tmp[PATH_MAX + 40];
	FILE *f;

	snprintf(path, sizeof(path), "%s/status", svc_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((f = fopen(tmp, "we")) == NULL) {
		log_warn("%s", tmp);
		return;
	}
	for (size_t i = 0; i < nkids; i++) {
		struct child *k = &kids[i];
		const char *st = cstate_name[k->state];

		if (k->state == C_BACKOFF && k->killed_hung)
			st = "hung";
		else if (k->state == C_BACKOFF)
			st = "crashed";
		fprintf(f, "%s %s %ld %u %d %s\n", k->name, st, (long)k->pid,
			k->restarts, k->verdict,
			k->last_err[0] ? k->last_err : "-");
	}
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		log_warn("%s", path);
}

static int parent_main(void)
{
	const char *words = xf_config_get(cfg, "services", "plugins");
	sigset_t ss;
	int sfd;
	int64_t last_status = 0;

	if (words == NULL || !*words)
		log_warnx("no [services] plugins configured: idle");
	/* T_WORDS values are space separated */
	char *dup = strdup(words ? words : ""), *save = NULL, *w;
	if (dup == NULL)
		fatalx("out of memory");
	for (w = strtok_r(dup, " \t", &save); w; w = strtok_r(NULL, " \t",
							     &save)) {
		struct child *nk = realloc(kids, (nkids + 1) * sizeof(*kids));
		if (nk == NULL)
			fatalx("out of memory");
		kids = nk;
		memset(&kids[nkids], 0, sizeof(kids[0]));
		kids[nkids].rfd = -1;
		if (plugin_resolve(w, &kids[nkids]) < 0)
			fatalx("bad plugin name %s", w);
		for (size_t i = 0; i < nkids; i++)
			if (!strcmp(kids[i].name, kids[nkids].name))
				fatalx("plugin %s listed twice", w);
		nkids++;
	}
	free(dup);

	sigemptyset(&ss);
	sigaddset(&ss, SIGCHLD);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &ss, NULL) < 0 ||
	    (sfd = signalfd(-1, &ss, SFD_CLOEXEC | SFD_NONBLOCK)) < 0)
		fatal("signalfd");
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < nkids; i++)
		kid_spawn(&kids[i]);
	/* the children inherit the mask through exec: they unblock below */

	int64_t quit_deadline = 0;
	for (;;) {
		struct pollfd pfd[1 + 64];
		size_t np = 0, map[64];
		int64_t now;

		pfd[np].fd = sfd;
		pfd[np++].events = POLLIN;
		for (size_t i = 0; i < nkids && np < 65; i++)
			if (kids[i].rfd >= 0) {
				map[np - 1] = i;
				pfd[np].fd = kids[i].rfd;
				pfd[np++].events = POLLIN;
			}
		if (poll(pfd, (nfds_t)np, 200) < 0 && errno != EINTR)
			fatal("poll");
		for (size_t j = 1; j < np; j++)
			if (pfd[j].revents)
				kid_read(&kids[map[j - 1]]);
		if (pfd[0].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGTERM ||
				    si.ssi_signo == SIGINT) {
					if (!quit)
						log_info("stopping plugins");
					quit = 1;
				} else if (si.ssi_signo == SIGHUP) {
					log_info("SIGHUP: restart xenfs-"
						 "services to change plugins");
				}
			}
		}
		for (;;) {
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid <= 0)
				break;
			for (size_t i = 0; i < nkids; i++)
				if (kids[i].pid == pid)
					kid_exited(&kids[i], status);
		}
		now = mono_ms();
		if (quit) {
			int alive = 0;
			if (quit_deadline == 0) {
				quit_deadline = now + 5000;
				for (size_t i = 0; i < nkids; i++)
					if (kids[i].pid > 0)
						kill(kids[i].pid, SIGTERM);
			}
			for (size_t i = 0; i < nkids; i++) {
				if (kids[i].pid <= 0) {
					kids[i].state = C_STOPPED;
					continue;
				}
				alive++;
				if (now > quit_deadline)
					kill(kids[i].pid, SIGKILL);
			}
			if (!alive)
				break;
			continue;
		}
		for (size_t i = 0; i < nkids; i++) {
			struct child *k = &kids[i];

			if (k->pid == 0 && k->state != C_FAILED &&
			    now >= k->next_start_ms)
				kid_spawn(k);
			if (k->pid > 0 && k->state == C_BUSY &&
			    !k->killed_hung && k->busy_since_ms &&
			    now - k->busy_since_ms > watchdog_ms) {
				log_warnx("plugin %s: on_event running for "
					  "%lld ms: killing pid %ld", k->name,
					  (long long)(now - k->busy_since_ms),
					  (long)k->pid);
				k->killed_hung = 1;
				kill(k->pid, SIGKILL);
			}
		}
		if (now - last_status >= 1000) {
			status_write();
			last_status = now;
		}
	}
	status_write();
	log_info("stopped");
	return 0;
}

static void usage_to(FILE *out, int code)
{
	fprintf(out, "usage: xenfs-services [-c CONFIG] [-f] [-v] "
		"[--watchdog SECONDS]\n");
	exit(code);
}

/* Bad usage: to stderr, exit 1.  (-h/--help: to stdout, exit 0.) */
static void usage(void)
{
	usage_to(stderr, 1);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "plugin", required_argument, NULL, 'P' },
		{ "name", required_argument, NULL, 'N' },
		{ "report-fd", required_argument, NULL, 'R' },
		{ "watchdog", required_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *plugin = NULL, *name = NULL;
	char err[512];
	int fg = 0, ch;

	while ((ch = getopt_long(argc, argv, "c:fvh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfg_path = optarg; break;
		case 'f': fg = 1; break;
		case 'v': verbose = 1; break;
		case 'P': plugin = optarg; break;
		case 'N': name = optarg; break;
		case 'R': report_fd = atoi(optarg); break;
		case 'W':
			watchdog_ms = atoi(optarg) * 1000;
			if (watchdog_ms <= 0)
				usage();
			break;
		case 'h': usage_to(stdout, 0); break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	/* a child logs where its parent does: stderr is inherited */
	log_init(fg || plugin != NULL, verbose, "xenfs-services");
	if ((cfg = xf_config_load(cfg_path, err, sizeof(err))) == NULL)
		fatalx("%s", err);
	snprintf(state_dir, sizeof(state_dir), "%s", cfg->global.state_dir);
	snprintf(journal_dir, sizeof(journal_dir), "%s/journal", state_dir);
	snprintf(svc_dir, sizeof(svc_dir), "%s/%s", state_dir,
		 XF_SERVICES_SUBDIR);
	if (plugin) {
		sigset_t ss;
		sigemptyset(&ss);
		(void)sigprocmask(SIG_SETMASK, &ss, NULL);
		if (!name || !valid_plugin_name(name) || report_fd < 0)
			usage();
		if (fcntl(report_fd, F_SETFD, FD_CLOEXEC) < 0)
			report_fd = -1;
		return child_main(plugin, name);
	}
	log_procinit("services");
	if (mkdir(state_dir, 0750) < 0 && errno != EEXIST)
		fatal("mkdir %s", state_dir);
	if (mkdir(svc_dir, 0750) < 0 && errno != EEXIST)
		fatal("mkdir %s", svc_dir);
	if (mkdir(journal_dir, 0750) < 0 && errno != EEXIST)
		fatal("mkdir %s", journal_dir);
	static char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		fatal("readlink /proc/self/exe");
	exe[n] = '\0';
	self_exe = exe;
	if (!fg && daemon(0, 0) < 0)
		fatal("daemon");
	return parent_main();
}
