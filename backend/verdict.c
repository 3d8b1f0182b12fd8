/*
 * Verdict hook: the one synchronous path from xenfsd to the services.
 * Before an OPEN of a regular file succeeds, when [scan] on-open is yes
 * or the action "block" is in effect for some domain ([scan] action or a
 * [domain] scan-action), xenfsd asks every loaded plugin that implements
 * verdict
 * (xenfs-services children listening on STATE_DIR/services/verdict-*.sock,
 * wire format in lib/ctlproto.h) whether the domain may open it.  Any
 * deny wins and the guest gets EACCES.  Answers are cached on (domain,
 * dev, ino, size, ctime), so an unchanged file is asked about once; a
 * write changes ctime and so invalidates the entry.  When no answer comes
 * within [services] verdict-timeout-ms, or no services host runs (no
 * fresh STATE_DIR/services/status), or a plugin's socket is dead, the
 * domain's policy decides: [domain NAME] scan-fail, else [scan] fail
 * (open = allow, closed = EACCES).  Those answers are not cached.
 * Block-only mode (on-open no, block in effect) asks only for the block
 * list: a failure allows (fail= governs on-open checks), and an allow is
 * not cached, since the asynchronous scan of a just-written file may
 * block it after the guest's first open.
 *
 * In a sandboxed worker (backend/worker.c), bk_verdict_check finds the
 * file's path and a read-only descriptor and asks the parent, which runs
 * bk_verdict_decide (the cache and the plugin sockets live there; a
 * worker cannot reach the services' sockets).
 *
 * Threads: bk_verdict_check runs on queue workers, concurrently; the
 * cache has its own mutex and the config is read through bk_srv.cfg
 * (immutable once loaded; swapped by the main thread on reload, and a
 * worker may see either).  Each check uses its own sockets.
 *
 * Trust: the plugin's answer is an int32 we bound; the file is handed
 * over read-only (a fresh O_RDONLY open of the same inode).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "bk.h"
#include "ctlproto.h"
#include "log.h"
#include "priv.h"

#define VCACHE_SLOTS	4096	/* power of two */
#define STATUS_FRESH_S	10

struct vcache_ent {
	uint64_t key;		/* hash of domain + identity; 0 = empty */
	uint64_t dev, ino, size;
	int64_t ctime_sec;
	uint32_t ctime_nsec;
	int deny;
};

static struct vcache_ent vcache[VCACHE_SLOTS];
static pthread_mutex_t vcache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_ratelimit vrl = LOG_RATELIMIT_INIT;

/* Is the action "block" configured for the default or for any domain? */
static int block_in_effect(const struct xf_config *cfg)
{
	const char *v = xf_config_get(cfg, "scan", "action");
	size_t i;

	if (v && !strcmp(v, "block"))
		return 1;
	for (i = 0; i < cfg->nkv; i++) {
		const struct xf_kv *kv = &cfg->kv[i];

		if (!strncmp(kv->section, "domain ", 7) &&
		    !strcmp(kv->key, "scan-action") &&
		    !strcmp(kv->value, "block"))
			return 1;
	}
	return 0;
}

static uint64_t vkey(const char *domain, const struct stat *st)
{
	uint64_t h = 1469598103934665603ull;

	for (; *domain; domain++)
		h = (h ^ (unsigned char)*domain) * 1099511628211ull;
	h = (h ^ st->st_dev) * 1099511628211ull;
	h = (h ^ st->st_ino) * 1099511628211ull;
	return h | 1;
}

static int vcache_get(uint64_t key, const struct stat *st)
{
	struct vcache_ent *e = &vcache[key & (VCACHE_SLOTS - 1)];
	int r = -1;

	pthread_mutex_lock(&vcache_lock);
	if (e->key == key && e->dev == (uint64_t)st->st_dev &&
	    e->ino == st->st_ino && e->size == (uint64_t)st->st_size &&
	    e->ctime_sec == st->st_ctim.tv_sec &&
	    e->ctime_nsec == (uint32_t)st->st_ctim.tv_nsec)
		r = e->deny;
	pthread_mutex_unlock(&vcache_lock);
	return r;
}

static void vcache_put(uint64_t key, const struct stat *st, int deny)
{
	struct vcache_ent *e = &vcache[key & (VCACHE_SLOTS - 1)];

	pthread_mutex_lock(&vcache_lock);
	e->key = key;
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->size = (uint64_t)st->st_size;
	e->ctime_sec = st->st_ctim.tv_sec;
	e->ctime_nsec = (uint32_t)st->st_ctim.tv_nsec;
	e->deny = deny;
	pthread_mutex_unlock(&vcache_lock);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Ask one plugin socket.  Returns 0 allow, 1 deny, -ETIMEDOUT, or another
 * -errno (dead socket, protocol error).
 */
static int ask_one(const char *sock, const struct xf_verdict_msg *m,
		   const char *domain, const char *tag, const char *path,
		   int rfd, int64_t deadline)
{
	struct sockaddr_un sun;
	struct msghdr mh;
	struct iovec iov[4];
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} cm;
	struct cmsghdr *c;
	struct pollfd pfd;
	int32_t ans;
	ssize_t got = 0;
	int fd, r;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	memcpy(sun.sun_path, sock, strlen(sock));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 &&
	    errno != EINPROGRESS) {
		r = -errno;
		goto out;
	}
	iov[0].iov_base = (void *)m;
	iov[0].iov_len = sizeof(*m);
	iov[1].iov_base = (void *)domain;
	iov[1].iov_len = m->domain_len;
	iov[2].iov_base = (void *)tag;
	iov[2].iov_len = m->export_len;
	iov[3].iov_base = (void *)path;
	iov[3].iov_len = m->path_len;
	memset(&mh, 0, sizeof(mh));
	mh.msg_iov = iov;
	mh.msg_iovlen = 4;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &rfd, sizeof(int));
	/* a small message into an empty socket buffer: one sendmsg */
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < (ssize_t)sizeof(*m)) {
		r = errno == EAGAIN ? -ETIMEDOUT : -errno;
		goto out;
	}
	while ((size_t)got < sizeof(ans)) {
		int64_t left = deadline - mono_ms();
		ssize_t n;

		if (left <= 0) {
			r = -ETIMEDOUT;
			goto out;
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR) {
			r = -errno;
			goto out;
		}
		n = read(fd, (char *)&ans + got, sizeof(ans) - (size_t)got);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0) {
			r = n == 0 ? -ECONNRESET : -errno;
			goto out;
		}
		got += n;
	}
	r = ans == 0 ? 0 : ans == 1 ? 1 : -EIO;
out:
	close(fd);
	return r;
}

static int fail_policy(const struct xf_config *cfg, const char *domain,
		       const char *why)
{
	char sect[300];
	const char *v;

	snprintf(sect, sizeof(sect), "domain %s", domain);
	v = xf_config_get(cfg, sect, "scan-fail");
	if (v == NULL)
		v = xf_config_get(cfg, "scan", "fail");
	if (v && !strcmp(v, "closed")) {
		log_warnx_rl(&vrl, "dom %s: verdict: %s: fail-closed, open "
			     "denied", domain, why);
		return -EACCES;
	}
	log_warnx_rl(&vrl, "dom %s: verdict: %s: fail-open", domain, why);
	return 0;
}

int bk_verdict_check(struct fs_session *s, int fd, uint32_t open_flags)
{
	const struct xf_config *cfg = bk_srv.cfg;
	const char *domain = fs_session_domain(s);
	const char *tag = fs_session_export(s);
	const struct xf_export *ex;
	char proc[64], host[PATH_MAX];
	const char *path = "";
	struct stat st;
	int rfd, r, on_open;
	uint64_t v64;
	ssize_t n;

	if (cfg == NULL)
		return 0;
	/* the parser validated the bool; its default (no) applies if unset */
	on_open = xf_config_get_u64(cfg, "scan", "on-open", &v64) == 0 && v64;
	if (!on_open && !block_in_effect(cfg))
		return 0;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;

	/* the export-relative path, for the plugin's information */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, host, sizeof(host) - 1);
	ex = xf_config_export(cfg, tag);
	if (n > 0 && ex) {
		size_t rl = strlen(ex->path);
		host[n] = '\0';
		if (!strncmp(host, ex->path, rl) && host[rl] == '/')
			path = host + rl;
	}
	if ((rfd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return on_open ? fail_policy(cfg, domain, "cannot reopen file")
			       : 0;
	if (bk_is_worker()) {
		r = bk_worker_verdict(tag, path, rfd, open_flags, on_open);
		if (r != 0 && r != -EACCES)
			r = on_open ? fail_policy(cfg, domain, "the xenfsd "
						  "parent did not answer") : 0;
	} else
		r = bk_verdict_decide(domain, tag, path, rfd, &st, open_flags,
				      on_open);
	close(rfd);
	return r;
}

int bk_verdict_timeout_ms(const struct xf_config *cfg)
{
	const char *v = xf_config_get(cfg, "services", "verdict-timeout-ms");
	unsigned long tmo = v ? strtoul(v, NULL, 10) : 0;

	return (int)(tmo ? tmo : 2000);
}

int bk_verdict_decide(const char *domain, const char *tag, const char *path,
		      int rfd, const struct stat *st, uint32_t open_flags,
		      int on_open)
{
	const struct xf_config *cfg = bk_srv.cfg;
	char svcdir[PATH_MAX], sock[PATH_MAX + 300];
	struct xf_verdict_msg m;
	DIR *d;
	struct dirent *de;
	int64_t deadline;
	uint64_t key;
	int nsock = 0, deny = 0, failed = 0, r;

	if (cfg == NULL)
		return 0;
	key = vkey(domain, st);
	if ((r = vcache_get(key, st)) >= 0)
		return r ? -EACCES : 0;
	deadline = mono_ms() + bk_verdict_timeout_ms(cfg);

	memset(&m, 0, sizeof(m));
	m.magic = XF_VERDICT_MAGIC;
	m.flags = open_flags;
	m.dev = st->st_dev;
	m.ino = st->st_ino;
	m.size = (uint64_t)st->st_size;
	m.ctime_sec = st->st_ctim.tv_sec;
	m.ctime_nsec = (uint32_t)st->st_ctim.tv_nsec;
	m.domain_len = (uint16_t)strnlen(domain, 255);
	m.export_len = (uint16_t)strnlen(tag, 255);
	m.path_len = (uint32_t)strnlen(path, XF_VERDICT_STR_MAX);

	snprintf(svcdir, sizeof(svcdir), "%.3000s/%s", cfg->global.state_dir,
		 XF_SERVICES_SUBDIR);
	if ((d = opendir(svcdir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			size_t l = strlen(de->d_name);

			if (strncmp(de->d_name, "verdict-", 8) || l < 13 ||
			    strcmp(de->d_name + l - 5, ".sock"))
				continue;
			snprintf(sock, sizeof(sock), "%s/%s", svcdir,
				 de->d_name);
			nsock++;
			r = ask_one(sock, &m, domain, tag, path, rfd,
				    deadline);
			if (r == 1) {
				deny = 1;
				break;
			}
			if (r < 0) {
				failed = 1;
				log_debug("dom %s: verdict %s: %s", domain,
					  de->d_name, strerror(-r));
			}
		}
		closedir(d);
	}
	if (deny) {
		vcache_put(key, st, 1);
		log_info("dom %s: open of %s:%s denied by verdict", domain,
			 tag, path);
		return -EACCES;
	}
	if (!on_open)
		return 0;	/* block list only: see the top */
	if (failed)
		return fail_policy(cfg, domain, "no answer in time");
	if (nsock == 0) {
		/* no verdict plugin: fine if the services host runs */
		char status[PATH_MAX + 16];
		struct stat ss;

		snprintf(status, sizeof(status), "%s/status", svcdir);
		if (stat(status, &ss) < 0 ||
		    time(NULL) - ss.st_mtime > STATUS_FRESH_S)
			return fail_policy(cfg, domain,
					   "services host not running");
		return 0;
	}
	vcache_put(key, st, 0);
	return 0;
}
