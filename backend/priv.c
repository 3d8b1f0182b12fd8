/*
 * The privileged parent's side of privilege separation (docs/security.md,
 * "Sandbox"; the contract is in bk.h).
 *
 * One worker process serves each domain.  The parent spawns it on the
 * domain's first connection: clone() into new mount, pid, network, IPC
 * and UTS namespaces, then exec of this same binary with --worker DOMAIN
 * and four channels (chan.h) on descriptors 3..6:
 *   3 main    parent -> worker: config, adopt, stop, info, reload,
 *             shutdown (served by the worker's main loop)
 *   4 ctl     parent -> worker: freeze, thaw (a worker thread: a freeze
 *             blocks for as long as the frontend takes to flush)
 *   5 stream  worker -> parent: operation events, appended to the journal
 *             before the worker releases the guest's reply
 *   6 misc    worker -> parent: verdict questions (with a read-only
 *             descriptor of the file), connection up/down notices
 * The first message is the configuration text; the worker builds its
 * namespace, confines itself and answers, and only then gets guests.
 *
 * A worker's namespace holds the exports its domain may use under the
 * configuration it was started with.  A reload that grants the domain an
 * export (or moves one) marks the worker stale: its connections go on,
 * the next connection of the domain gets a fresh worker, and the stale
 * one is shut down when its last connection ends.
 *
 * Threads: the main thread spawns, adopts, stops, reloads and reaps
 * (a pidfd in the event loop says when a worker exited).  Per worker,
 * two threads serve the stream and misc channels; they hand connection
 * notices to the main thread with bk_loop_defer.  The control thread
 * calls bk_priv_freeze/thaw, which walk the worker list under
 * workers_lock and take a reference.
 *
 * Trust: a worker faces a guest and may be compromised.  Everything it
 * sends is checked: the domain of its events is forced to its own, an
 * export tag must be one of its exports, lengths are bounded, a verdict
 * descriptor must be a regular file.  A worker that breaks the protocol
 * is killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <xenfs/event.h>

#include "bk.h"
#include "chan.h"
#include "log.h"
#include "priv.h"
#include "stream.h"
#ifdef XENFS_HAVE_XEN
#include "transport_xen_i.h"
#endif

#define SPAWN_TIMEOUT_MS	20000	/* namespace + confinement */
#define CALL_TIMEOUT_MS		10000	/* adopt (Xen), stop, reload */
#define INFO_TIMEOUT_MS		1000	/* status: no kill on timeout */
#define EXIT_WAIT_MS		5000	/* after SHUTDOWN, before SIGKILL */

struct bk_worker {
	struct bk_worker *next;
	char *domain;
	pid_t pid;
	int pidfd;
	struct bk_chan main, ctl;
	int stream_fd, misc_fd;
	pthread_t stream_thr, misc_thr;
	int nthreads;
	char **tags, **paths;		/* exports in its namespace */
	unsigned char *ro;		/* ... bound read-only */
	size_t ntags;
	int stale;			/* main thread */
	int dead;			/* exited or killed */
	int refs;			/* workers_lock */
	unsigned nconns;		/* proxies, main thread */
};

static struct bk_worker *workers;	/* main thread writes, workers_lock */
static pthread_mutex_t workers_lock = PTHREAD_MUTEX_INITIALIZER;
static char *cfg_text;			/* text of bk_srv.cfg, main thread */
static size_t cfg_len;
static int priv_enabled;
static struct log_ratelimit priv_rl = LOG_RATELIMIT_INIT;

int bk_priv_on(void)
{
	return priv_enabled;
}

int bk_priv_init(const char *text, size_t len)
{
	priv_enabled = 1;
	return bk_priv_set_config(text, len);
}

int bk_priv_set_config(const char *text, size_t len)
{
	char *t;

	if (len > BK_MSG_MAX) {
		log_warnx("configuration is %zu bytes; sandboxed workers take "
			  "at most %d", len, BK_MSG_MAX);
		return -EFBIG;
	}
	if ((t = malloc(len + 1)) == NULL)
		return -ENOMEM;
	memcpy(t, text, len);
	t[len] = '\0';
	free(cfg_text);
	cfg_text = t;
	cfg_len = len;
	return 0;
}

/* ---- worker lifetime ---- */

static void worker_ref(struct bk_worker *w)
{
	pthread_mutex_lock(&workers_lock);
	w->refs++;
	pthread_mutex_unlock(&workers_lock);
}

static void worker_free(struct bk_worker *w)
{
	size_t i;

	for (i = 0; i < w->ntags; i++) {
		free(w->tags[i]);
		free(w->paths[i]);
	}
	free(w->tags);
	free(w->paths);
	free(w->ro);
	free(w->domain);
	free(w);
}

static void worker_unref(struct bk_worker *w)
{
	int last;

	pthread_mutex_lock(&workers_lock);
	last = --w->refs == 0;
	pthread_mutex_unlock(&workers_lock);
	if (last)
		worker_free(w);
}

/* The exports cfg lets domain use: the set its namespace is built from. */
static int exports_of(const struct xf_config *cfg, const char *domain,
		      char ***tags, char ***paths, unsigned char **ro,
		      size_t *n)
{
	size_t i, k = 0;

	*tags = calloc(cfg->nexports + 1, sizeof(char *));
	*paths = calloc(cfg->nexports + 1, sizeof(char *));
	*ro = calloc(cfg->nexports + 1, 1);
	if (!*tags || !*paths || !*ro)
		goto oom;
	for (i = 0; i < cfg->nexports; i++) {
		const struct xf_export *e = &cfg->exports[i];
		enum xf_access a = xf_policy_access(cfg, domain, e->tag);

		if (a == XF_ACCESS_NONE)
			continue;
		(*ro)[k] = a == XF_ACCESS_RO;
		if (!((*tags)[k] = strdup(e->tag)) ||
		    !((*paths)[k] = strdup(e->path))) {
			k++;
			goto oom;
		}
		k++;
	}
	*n = k;
	return 0;
oom:
	while (*tags && *paths && k > 0) {
		k--;
		free((*tags)[k]);
		free((*paths)[k]);
	}
	free(*tags);
	free(*paths);
	free(*ro);
	*tags = *paths = NULL;
	*ro = NULL;
	*n = 0;
	return -ENOMEM;
}

static int worker_has_tag(const struct bk_worker *w, const char *tag)
{
	size_t i;

	for (i = 0; i < w->ntags; i++)
		if (!strcmp(w->tags[i], tag))
			return 1;
	return 0;
}

/*
 * Is w's namespace exactly what cfg lets its domain use?  More (a grant,
 * a moved export, ro -> rw) and it could not serve it; less (a
 * revocation, rw -> ro) and it would keep a bind the domain lost.
 * Either way its next connection gets a fresh worker.
 */
static int worker_fits(const struct bk_worker *w, const struct xf_config *cfg)
{
	size_t i, j, n = 0;

	for (i = 0; i < cfg->nexports; i++) {
		const struct xf_export *e = &cfg->exports[i];
		enum xf_access a = xf_policy_access(cfg, w->domain, e->tag);

		if (a == XF_ACCESS_NONE)
			continue;
		n++;
		for (j = 0; j < w->ntags; j++)
			if (!strcmp(w->tags[j], e->tag) &&
			    !strcmp(w->paths[j], e->path) &&
			    (a == XF_ACCESS_RO) == (w->ro[j] != 0))
				break;
		if (j == w->ntags)
			return 0;
	}
	return n == w->ntags;
}

static void worker_kill(struct bk_worker *w, const char *why)
{
	if (w->dead)
		return;
	log_warnx("worker %s (pid %ld): killed: %s", w->domain, (long)w->pid,
		  why);
	w->dead = 1;
	(void)kill(w->pid, SIGKILL);
}

static void pidfd_cb(int fd, uint32_t events, void *arg);

/* Main thread: the worker exited (or must be treated so). */
static void worker_reap(struct bk_worker *w, int block)
{
	struct bk_worker **pp;
	int st = 0, i;
	pid_t r;

	r = waitpid(w->pid, &st, block ? 0 : WNOHANG);
	if (r == 0)
		return;			/* still running */
	if (r > 0) {
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
			log_info("worker %s (pid %ld) exited", w->domain,
				 (long)w->pid);
		else if (WIFEXITED(st))
			log_warnx("worker %s (pid %ld) exited with status "
				  "%d", w->domain, (long)w->pid,
				  WEXITSTATUS(st));
		else if (WIFSIGNALED(st))
			log_warnx("worker %s (pid %ld) killed by signal %d%s",
				  w->domain, (long)w->pid, WTERMSIG(st),
				  WTERMSIG(st) == SIGSYS ?
				  " (system call outside its seccomp "
				  "allow-list)" : "");
	}
	w->dead = 1;
	pthread_mutex_lock(&workers_lock);
	for (pp = &workers; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	pthread_mutex_unlock(&workers_lock);
	if (w->pidfd >= 0) {
		bk_loop_del(w->pidfd);
		close(w->pidfd);
		w->pidfd = -1;
	}
	/* its connections are gone with it */
	bk_conn_proxies_gone(w, "worker process ended");
	/* the channel threads see EOF now that the process is gone */
	for (i = 0; i < w->nthreads; i++)
		pthread_join(i == 0 ? w->stream_thr : w->misc_thr, NULL);
	w->nthreads = 0;
	close(w->main.fd);
	close(w->ctl.fd);
	close(w->stream_fd);
	close(w->misc_fd);
	worker_unref(w);		/* the list's reference */
}

static void pidfd_cb(int fd, uint32_t events, void *arg)
{
	(void)fd;
	(void)events;
	worker_reap(arg, 1);
}

/* ---- worker -> parent ---- */

struct notice {
	struct bk_worker *w;
	uint32_t type;
	struct bk_m_info info;
};

static void notice_run(void *arg)
{
	struct notice *n = arg;
	struct bk_conn *c;

	if (!n->w->dead || n->type == BK_M_CONN_DOWN) {
		c = bk_conn_proxy_find(n->w, n->info.rid);
		if (n->type == BK_M_CONN_UP && !c && !n->w->dead)
			(void)bk_conn_proxy_new(n->w, &n->info, NULL, NULL,
						NULL);
		else if (n->type == BK_M_CONN_DOWN && c)
			bk_conn_proxy_gone(c, "closed by its worker");
	}
	worker_unref(n->w);
	free(n);
}

static void *stream_main(void *arg)
{
	struct bk_worker *w = arg;
	unsigned char *buf = malloc(BK_MSG_MAX);
	struct xenfs_event *ev;
	struct bk_msg_hdr h;
	uint64_t seq;
	ssize_t n;
	int r;

	while (buf) {
		n = bk_chan_recv(w->stream_fd, &h, buf, BK_MSG_MAX, NULL);
		if (n == -ECONNRESET || n == -EBADF)
			break;
		if (n < 0 || h.type != BK_M_EVENT) {
			log_warnx_rl(&priv_rl, "worker %s: bad message on the "
				     "stream channel", w->domain);
			(void)kill(w->pid, SIGKILL);
			break;
		}
		seq = 0;
		r = xf_stream_decode(buf, (size_t)n, &ev);
		if (r == 0) {
			/* the worker speaks for its own domain only */
			ev->domain = w->domain;
			ev->origin = XENFS_ORIGIN_GUEST;
			if (ev->export_tag[0] &&
			    !worker_has_tag(w, ev->export_tag)) {
				log_warnx_rl(&priv_rl, "worker %s: event for "
					     "export '%s' it does not serve",
					     w->domain, ev->export_tag);
				r = -EPERM;
			} else {
				bk_dom0watch_note(ev->export_tag, ev->path);
				if (ev->path2[0])
					bk_dom0watch_note(ev->export_tag,
							  ev->path2);
				r = bk_stream_emit(ev);
				seq = ev->seq;
			}
			free(ev);
		}
		if (bk_chan_send(w->stream_fd, BK_M_REPLY, h.id, r, &seq,
				 sizeof(seq), -1) < 0)
			break;
	}
	free(buf);
	worker_unref(w);
	return NULL;
}

static int misc_verdict(struct bk_worker *w, const void *buf, size_t n,
			int fd)
{
	struct bk_m_verdict v;
	char path[XENFS_EV_PATH_MAX + 1];
	struct stat st;
	size_t pl;

	if (n < sizeof(v) || fd < 0)
		return -EPROTO;
	memcpy(&v, buf, sizeof(v));
	v.tag[sizeof(v.tag) - 1] = '\0';
	pl = n - sizeof(v);
	if (pl > XENFS_EV_PATH_MAX)
		return -EPROTO;
	memcpy(path, (const char *)buf + sizeof(v), pl);
	path[pl] = '\0';
	if (!worker_has_tag(w, v.tag))
		return -EPERM;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY)
		return -EPROTO;
	return bk_verdict_decide(w->domain, v.tag, path, fd, &st,
				 v.open_flags, v.on_open != 0);
}

static void *misc_main(void *arg)
{
	struct bk_worker *w = arg;
	unsigned char *buf = malloc(BK_MSG_MAX);
	struct bk_msg_hdr h;
	struct notice *no;
	ssize_t n;
	int fd, r;

	while (buf) {
		n = bk_chan_recv(w->misc_fd, &h, buf, BK_MSG_MAX, &fd);
		if (n == -ECONNRESET || n == -EBADF)
			break;
		if (n < 0)
			goto bad;
		switch (h.type) {
		case BK_M_VERDICT:
			r = misc_verdict(w, buf, (size_t)n, fd);
			if (fd >= 0)
				close(fd);
			if (r == -EPROTO)
				goto bad;
			if (bk_chan_send(w->misc_fd, BK_M_REPLY, h.id, r,
					 NULL, 0, -1) < 0)
				goto out;
			continue;
		case BK_M_CONN_UP:
		case BK_M_CONN_DOWN:
			if (fd >= 0)
				close(fd);
			if ((size_t)n != sizeof(no->info))
				goto bad;
			if ((no = calloc(1, sizeof(*no))) == NULL)
				continue;	/* INFO fills in later */
			memcpy(&no->info, buf, sizeof(no->info));
			no->info.domain[BK_NAME_MAX - 1] = '\0';
			no->info.tag[BK_NAME_MAX - 1] = '\0';
			no->info.transport[sizeof(no->info.transport) - 1] =
			    '\0';
			if (h.type == BK_M_CONN_UP &&
			    !worker_has_tag(w, no->info.tag)) {
				free(no);
				goto bad;
			}
			no->type = h.type;
			no->w = w;
			worker_ref(w);
			if (bk_loop_defer(notice_run, no) < 0) {
				worker_unref(w);
				free(no);
			}
			continue;
		default:
			if (fd >= 0)
				close(fd);
			goto bad;
		}
	}
	goto out;
bad:
	log_warnx_rl(&priv_rl, "worker %s: protocol violation on the misc "
		     "channel", w->domain);
	(void)kill(w->pid, SIGKILL);
out:
	free(buf);
	worker_unref(w);
	return NULL;
}

/* ---- spawning ---- */

static void child_exec(int fds[4], const char *domain)
{
	char *argv[16];
	char vbuf[8] = "-v";
	int i, argc = 0, v = log_get_verbosity(), hi[4];

	/* async-signal-safe only from here: we are a clone of a threaded
	 * process */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (i = 0; i < 4; i++)
		if ((hi[i] = fcntl(fds[i], F_DUPFD, 64)) < 0)
			_exit(126);
	for (i = 0; i < 4; i++)
		if (dup2(hi[i], 3 + i) < 0)
			_exit(126);
	syscall(SYS_close_range, 7, ~0U, 0);
	argv[argc++] = "xenfsd";
	argv[argc++] = "--worker";
	argv[argc++] = (char *)domain;
	if (bk_srv.foreground)
		argv[argc++] = "-f";
	for (i = 0; i < v && i < 4; i++)
		vbuf[1 + i] = 'v';
	vbuf[1 + (v < 4 ? v : 4)] = '\0';
	if (v > 0)
		argv[argc++] = vbuf;
	argv[argc] = NULL;
	execv("/proc/self/exe", argv);
	_exit(127);
}

static struct bk_worker *worker_spawn(const char *domain, char *err,
				      size_t errlen)
{
	struct bk_worker *w;
	int sp[4][2], child[4], i, r;
	char msg[512];
	size_t mlen = 0;
	pid_t pid;

	for (i = 0; i < 4; i++)
		sp[i][0] = sp[i][1] = -1;
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->domain = strdup(domain)) == NULL) {
		free(w);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->pidfd = -1;
	w->refs = 1;
	if (exports_of(bk_srv.cfg, domain, &w->tags, &w->paths, &w->ro,
		       &w->ntags) < 0) {
		snprintf(err, errlen, "out of memory");
		worker_free(w);
		return NULL;
	}
	for (i = 0; i < 4; i++) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0,
			       sp[i]) < 0) {
			snprintf(err, errlen, "socketpair: %s",
				 strerror(errno));
			goto fail;
		}
		child[i] = sp[i][1];
	}
	/* fork + namespaces in one step: the worker is pid 1 of its own
	 * pid namespace, with private mounts, no network and no IPC */
	pid = (pid_t)syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID |
			     CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS |
			     SIGCHLD, NULL, NULL, NULL, NULL);
	if (pid == 0)
		child_exec(child, domain);	/* never returns */
	if (pid < 0) {
		snprintf(err, errlen, "cannot create the worker's namespaces: "
			 "%s (xenfsd needs CAP_SYS_ADMIN; --no-sandbox runs "
			 "without workers, for debugging only)",
			 strerror(errno));
		goto fail;
	}
	w->pid = pid;
	for (i = 0; i < 4; i++) {
		close(sp[i][1]);
		sp[i][1] = -1;
	}
	bk_chan_init(&w->main, sp[0][0]);
	bk_chan_init(&w->ctl, sp[1][0]);
	w->stream_fd = sp[2][0];
	w->misc_fd = sp[3][0];
	w->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (w->pidfd < 0) {
		snprintf(err, errlen, "pidfd_open: %s", strerror(errno));
		goto fail_child;
	}
	r = bk_chan_call(&w->main, BK_M_CONFIG, cfg_text, cfg_len, -1, msg,
			 sizeof(msg) - 1, &mlen, SPAWN_TIMEOUT_MS);
	msg[mlen] = '\0';
	if (r < 0) {
		snprintf(err, errlen, "worker for domain %s did not start: "
			 "%s", domain, mlen ? msg : strerror(-r));
		goto fail_child;
	}
	worker_ref(w);
	if ((r = pthread_create(&w->stream_thr, NULL, stream_main, w)) != 0) {
		worker_unref(w);
		snprintf(err, errlen, "thread: %s", strerror(r));
		goto fail_child;
	}
	w->nthreads = 1;
	worker_ref(w);
	if ((r = pthread_create(&w->misc_thr, NULL, misc_main, w)) != 0) {
		worker_unref(w);
		snprintf(err, errlen, "thread: %s", strerror(r));
		goto fail_child;
	}
	w->nthreads = 2;
	if ((r = bk_loop_add(w->pidfd, EPOLLIN, pidfd_cb, w)) < 0) {
		snprintf(err, errlen, "watch worker: %s", strerror(-r));
		goto fail_child;
	}
	pthread_mutex_lock(&workers_lock);
	w->next = workers;
	workers = w;
	pthread_mutex_unlock(&workers_lock);
	log_info("worker %s: pid %ld, %zu export%s in its namespace",
		 domain, (long)pid, w->ntags, w->ntags == 1 ? "" : "s");
	return w;

fail_child:
	(void)kill(pid, SIGKILL);
	(void)waitpid(pid, NULL, 0);
	if (w->pidfd >= 0)
		close(w->pidfd);
	w->pidfd = -1;
	/* EOF on the channels ends the threads */
	for (i = 0; i < w->nthreads; i++)
		pthread_join(i == 0 ? w->stream_thr : w->misc_thr, NULL);
	for (i = 0; i < 4; i++)
		if (sp[i][0] >= 0)
			close(sp[i][0]);
	log_warnx("%s", err);
	worker_free(w);
	return NULL;
fail:
	for (i = 0; i < 4; i++) {
		if (sp[i][0] >= 0)
			close(sp[i][0]);
		if (sp[i][1] >= 0)
			close(sp[i][1]);
	}
	log_warnx("worker %s: %s", domain, err);
	worker_free(w);
	return NULL;
}

/* Main thread: the live, current worker of domain, spawned if needed. */
static struct bk_worker *worker_for(const char *domain, char *err,
				    size_t errlen)
{
	struct bk_worker *w;

	for (w = workers; w; w = w->next)
		if (!w->dead && !w->stale && !strcmp(w->domain, domain))
			return w;
	return worker_spawn(domain, err, errlen);
}

/* Main thread: a stale worker with nothing left to serve is let go. */
static void worker_retire(struct bk_worker *w)
{
	int r;

	if (w->dead) {
		/* killed already: its pidfd event may still be queued, but
		 * the caller (shutdown) needs it off the list now */
		worker_reap(w, 1);
		return;
	}
	r = bk_chan_call(&w->main, BK_M_SHUTDOWN, NULL, 0, -1, NULL, 0, NULL,
			 CALL_TIMEOUT_MS);
	if (r < 0)
		worker_kill(w, "did not shut down");
	if (bk_chan_wait(w->pidfd, EXIT_WAIT_MS) <= 0)
		worker_kill(w, "did not exit");
	worker_reap(w, 1);
}

/* ---- parent API (bk.h, priv.h) ---- */

int bk_priv_adopt_local(const char *domain, int fd, char *err,
			size_t errlen)
{
	struct bk_worker *w = worker_for(domain, err, errlen);
	int r;

	if (!w) {
		close(fd);
		return -EAGAIN;
	}
	/* one way: once the descriptor is in the worker's queue the worker
	 * answers the client itself, whenever its loop gets to it (a first
	 * connection's quota scan may hold it for a while) */
	r = bk_chan_send(w->main.fd, BK_M_ADOPT_LOCAL, 0, 0, NULL, 0, fd);
	close(fd);
	if (r < 0)
		snprintf(err, errlen, "worker %s: adopt: %s", domain,
			 strerror(-r));
	return r;
}

int bk_priv_adopt_xen(const char *domain, uint32_t domid, const char *tag,
		      int readonly, const struct xf_xen_offer *offer,
		      void (*on_close)(struct bk_conn *c, void *arg),
		      void *arg, struct bk_conn **out, char *err,
		      size_t errlen)
{
#ifdef XENFS_HAVE_XEN
	struct {
		struct bk_m_adopt_xen a;
		struct xf_xen_offer o;
	} m;
	struct bk_m_info info;
	struct bk_worker *w;
	char rbuf[sizeof(info) + 256];
	size_t rlen = 0;
	int r;

	*out = NULL;
	if (!(w = worker_for(domain, err, errlen)))
		return -EAGAIN;
	memset(&m, 0, sizeof(m));
	m.a.domid = domid;
	m.a.readonly = readonly ? 1 : 0;
	m.a.offer_size = sizeof(m.o);
	snprintf(m.a.tag, sizeof(m.a.tag), "%s", tag);
	m.o = *offer;
	r = bk_chan_call(&w->main, BK_M_ADOPT_XEN, &m, sizeof(m), -1, rbuf,
			 sizeof(rbuf) - 1, &rlen, CALL_TIMEOUT_MS);
	if (r < 0) {
		rbuf[rlen < sizeof(rbuf) ? rlen : sizeof(rbuf) - 1] = '\0';
		snprintf(err, errlen, "%s", rlen ? rbuf : strerror(-r));
		if (r == -ETIMEDOUT)
			worker_kill(w, "did not answer");
		return r;
	}
	if (rlen != sizeof(info)) {
		worker_kill(w, "bad adopt reply");
		snprintf(err, errlen, "worker protocol error");
		return -EPROTO;
	}
	memcpy(&info, rbuf, sizeof(info));
	info.domain[BK_NAME_MAX - 1] = info.tag[BK_NAME_MAX - 1] = '\0';
	info.transport[sizeof(info.transport) - 1] = '\0';
	r = bk_conn_proxy_new(w, &info, on_close, arg, out);
	if (r < 0)
		snprintf(err, errlen, "out of memory");
	return r;
#else
	(void)domain; (void)domid; (void)tag; (void)readonly; (void)offer;
	(void)on_close; (void)arg; (void)out;
	snprintf(err, errlen, "built without the Xen transport");
	return -EOPNOTSUPP;
#endif
}

int bk_priv_stop(struct bk_worker *w, uint64_t rid, const char *why)
{
	struct bk_m_stop m;
	int r;

	if (w->dead)
		return 0;
	memset(&m, 0, sizeof(m));
	m.rid = rid;
	snprintf(m.why, sizeof(m.why), "%s", why ? why : "stopped");
	r = bk_chan_call(&w->main, BK_M_STOP, &m, sizeof(m), -1, NULL, 0,
			 NULL, CALL_TIMEOUT_MS);
	if (r == -ETIMEDOUT)
		worker_kill(w, "did not stop a connection");
	return r == -ENOENT ? 0 : r;
}

int bk_priv_info(struct bk_worker *w, uint64_t rid, struct bk_m_info *info)
{
	size_t rlen = 0;
	int r;

	if (w->dead)
		return -ENOTCONN;
	/* the status sampler asks every 2 s from the main loop: wait
	 * briefly, and a busy worker (a first connection's quota scan) just
	 * shows no counters this time; only nonsense is fatal */
	r = bk_chan_call(&w->main, BK_M_INFO, &rid, sizeof(rid), -1, info,
			 sizeof(*info), &rlen, INFO_TIMEOUT_MS);
	if (r == 0 && rlen != sizeof(*info))
		r = -EPROTO;
	if (r == -EPROTO)
		worker_kill(w, "sent a malformed status answer");
	return r;
}

const char *bk_priv_worker_domain(const struct bk_worker *w)
{
	return w->domain;
}

pid_t bk_priv_worker_pid(const struct bk_worker *w)
{
	return w->pid;
}

void bk_priv_conn_count(struct bk_worker *w, int delta)
{
	w->nconns += delta;
	if (w->nconns == 0 && w->stale && !w->dead)
		worker_retire(w);
}

/* Control thread: the live workers of domain, referenced. */
static int workers_of(const char *domain, struct bk_worker ***out)
{
	struct bk_worker *w, **v = NULL, **nv;
	int n = 0;

	pthread_mutex_lock(&workers_lock);
	for (w = workers; w; w = w->next) {
		if (w->dead || strcmp(w->domain, domain))
			continue;
		if (!(nv = realloc(v, (n + 1) * sizeof(*v))))
			break;
		v = nv;
		w->refs++;
		v[n++] = w;
	}
	pthread_mutex_unlock(&workers_lock);
	*out = v;
	return n;
}

static int ctl_call(const char *domain, uint32_t type, int32_t arg,
		    int timeout_ms, char *err, size_t errlen)
{
	struct bk_worker **v;
	char msg[512];
	size_t mlen;
	int n, i, r = 0, one, ok = 0, failed = 0;

	n = workers_of(domain, &v);
	err[0] = '\0';
	for (i = 0; i < n; i++) {
		mlen = 0;
		one = bk_chan_call(&v[i]->ctl, type, &arg, sizeof(arg), -1,
				   msg, sizeof(msg) - 1, &mlen, timeout_ms);
		msg[mlen] = '\0';
		if (one == 0) {
			ok++;
			continue;
		}
		/* a stale worker may have no connection left: -ENOENT from
		 * it is no error while another worker serves the domain */
		if (one != -ENOENT && !failed++)
			r = one;
		if ((one != -ENOENT || !err[0]) && (failed <= 1))
			snprintf(err, errlen, "%s", mlen ? msg :
				 strerror(-one));
	}
	for (i = 0; i < n; i++)
		worker_unref(v[i]);
	free(v);
	if (failed)
		return r;
	if (ok)
		return 0;
	if (!err[0])
		snprintf(err, errlen, "domain %s is not connected", domain);
	return -ENOENT;
}

int bk_priv_freeze(const char *domain, int timeout_ms, char *err,
		   size_t errlen)
{
	if (timeout_ms <= 0)
		timeout_ms = 30000;
	return ctl_call(domain, BK_M_FREEZE, timeout_ms, timeout_ms + 5000,
			err, errlen);
}

int bk_priv_thaw(const char *domain, char *err, size_t errlen)
{
	return ctl_call(domain, BK_M_THAW, 0, CALL_TIMEOUT_MS, err, errlen);
}

void bk_priv_reload(const struct xf_config *cfg)
{
	struct bk_worker *w, *next;
	char msg[512];
	size_t mlen;
	int r;

	for (w = workers; w; w = next) {
		next = w->next;
		if (w->dead)
			continue;
		mlen = 0;
		r = bk_chan_call(&w->main, BK_M_RELOAD, cfg_text, cfg_len, -1,
				 msg, sizeof(msg) - 1, &mlen,
				 CALL_TIMEOUT_MS);
		msg[mlen] = '\0';
		if (r < 0) {
			log_warnx("worker %s: reload: %s", w->domain,
				  mlen ? msg : strerror(-r));
			if (r == -ETIMEDOUT)
				worker_kill(w, "did not answer a reload");
			continue;
		}
		if (!w->stale && !worker_fits(w, cfg)) {
			w->stale = 1;
			log_info("worker %s (pid %ld): the domain's exports "
				 "changed; its next connection gets a new "
				 "worker, this one ends with its last "
				 "connection", w->domain, (long)w->pid);
		}
		if (w->stale && w->nconns == 0)
			worker_retire(w);
	}
}

void bk_priv_stop_all(void)
{
	while (workers)
		worker_retire(workers);
	free(cfg_text);
	cfg_text = NULL;
	cfg_len = 0;
}
