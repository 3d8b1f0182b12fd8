/*
 * xenfsd's control socket: the admin's and the services' way into the
 * running daemon (xenfsctl status|guests|freeze|thaw|reload|head).
 * Protocol (docs/control.md): the client sends one request per line,
 * "VERB [ARGS...]\n" (at most 1024 bytes); the server answers
 *   "OK <len>\n" followed by exactly len bytes of body, or
 *   "ERR <message>\n".
 * A client may send several requests on one connection.  Bodies are
 * human-readable text, or JSON when the request ends with the word
 * "json".
 *
 * Threads: one listener thread ("control") accepts connections and runs
 * a thread per client (at most CTL_MAX_CLIENTS), because freeze blocks
 * for as long as the guest takes to flush.  Main-thread-owned state (the
 * connection list, the config swap) is reached only through
 * ctl_on_main(): bk_loop_defer() plus a condition variable, with a
 * timeout so a stuck main loop cannot hang a client forever.  The same
 * listener thread samples per-domain counters every CTL_SAMPLE_MS, so
 * status reports ops/s and bytes/s over the last interval.
 *
 * Trust: the socket is mode 0660, owner root, group control-group; each
 * peer is checked with SO_PEERCRED (uid 0, or a member of control-group)
 * before its first request is read.  Requests are parsed as untrusted
 * text (bounded line, bounded words).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <xenfs/event.h>

#include "bk.h"
#include "log.h"
#include "stream.h"

#define CTL_MAX_CLIENTS		16
#define CTL_LINE_MAX		1024
#define CTL_SAMPLE_MS		2000
#define CTL_MAIN_TIMEOUT_MS	10000
#define CTL_FREEZE_TIMEOUT_MS	30000

static int ctl_fd = -1;
static int ctl_wake[2] = { -1, -1 };	/* pipe: stop the listener */
static pthread_t ctl_thr;
static int ctl_running;
static char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ctl_cond = PTHREAD_COND_INITIALIZER;
static unsigned ctl_clients;		/* live client threads */
static gid_t ctl_gid = (gid_t)-1;	/* control-group, or -1 */
static char ctl_state_dir[PATH_MAX - 64];

/* ---- dynamic text buffer ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	int oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap ? b->cap * 2 : 1024;
		while (ncap - b->len <= (size_t)n)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (np == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

/* JSON string (quoted, escaped); names are guest- or admin-chosen. */
static void sb_json_str(struct sbuf *b, const char *s)
{
	sb_printf(b, "\"");
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			sb_printf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			sb_printf(b, "\\u%04x", c);
		else
			sb_printf(b, "%c", c);
	}
	sb_printf(b, "\"");
}

/* ---- running something on the main thread ---- */

struct main_call {
	void (*fn)(void *arg);
	void *arg;
	int done;
	int refs;		/* caller + deferred callback */
	pthread_mutex_t m;
	pthread_cond_t c;
	void (*free_arg)(void *arg);
};

static void main_call_put(struct main_call *mc)
{
	int last;

	pthread_mutex_lock(&mc->m);
	last = --mc->refs == 0;
	pthread_mutex_unlock(&mc->m);
	if (!last)
		return;
	if (mc->free_arg)
		mc->free_arg(mc->arg);
	pthread_mutex_destroy(&mc->m);
	pthread_cond_destroy(&mc->c);
	free(mc);
}

static void main_call_run(void *a)
{
	struct main_call *mc = a;

	mc->fn(mc->arg);
	pthread_mutex_lock(&mc->m);
	mc->done = 1;
	pthread_cond_signal(&mc->c);
	pthread_mutex_unlock(&mc->m);
	main_call_put(mc);
}

/*
 * Run fn(arg) on the main thread and wait for it.  On timeout returns
 * -ETIMEDOUT and arg then belongs to the pending call: free_arg(arg) runs
 * when it finishes (so arg must be heap memory the caller never touches
 * again).  On success the caller still owns arg (free_arg is not called).
 */
static int ctl_on_main(void (*fn)(void *), void *arg,
		       void (*free_arg)(void *))
{
	struct main_call *mc;
	struct timespec ts;
	int r = 0;

	if ((mc = calloc(1, sizeof(*mc))) == NULL)
		return -ENOMEM;
	mc->fn = fn;
	mc->arg = arg;
	mc->refs = 2;
	pthread_mutex_init(&mc->m, NULL);
	pthread_cond_init(&mc->c, NULL);
	if ((r = bk_loop_defer(main_call_run, mc)) < 0) {
		pthread_mutex_destroy(&mc->m);
		pthread_cond_destroy(&mc->c);
		free(mc);
		return r;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += CTL_MAIN_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&mc->m);
	while (!mc->done && r == 0)
		r = -pthread_cond_timedwait(&mc->c, &mc->m, &ts);
	if (!mc->done) {
		mc->free_arg = free_arg;	/* the callback frees arg */
		r = -ETIMEDOUT;
	} else {
		r = 0;
	}
	pthread_mutex_unlock(&mc->m);
	main_call_put(mc);
	return r;
}

/* ---- connection snapshots and rates ---- */

struct conn_snap {
	char domain[XENFS_EV_NAME_MAX + 1];
	char tag[XENFS_EV_NAME_MAX + 1];
	char transport[16];
	uint32_t domid, nr_queues;
	int readonly, frozen;
	time_t since;
	struct fs_stats st;
};

struct snapshot {
	struct conn_snap *v;
	size_t n, cap;
	int oom;
	struct timespec at;
};

static void snap_one(struct bk_conn *c, void *arg)
{
	struct snapshot *s = arg;
	struct bk_conn_info info;
	struct conn_snap *cs;

	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 8;
		struct conn_snap *nv = realloc(s->v, ncap * sizeof(*nv));
		if (nv == NULL) {
			s->oom = 1;
			return;
		}
		s->v = nv;
		s->cap = ncap;
	}
	memset(&info, 0, sizeof(info));
	bk_conn_get_info(c, &info);
	cs = &s->v[s->n++];
	memset(cs, 0, sizeof(*cs));
	snprintf(cs->domain, sizeof(cs->domain), "%s",
		 info.domain ? info.domain : "?");
	snprintf(cs->tag, sizeof(cs->tag), "%s", info.tag ? info.tag : "?");
	snprintf(cs->transport, sizeof(cs->transport), "%s",
		 info.transport ? info.transport : "?");
	cs->domid = info.domid;
	cs->nr_queues = info.nr_queues;
	cs->readonly = info.readonly;
	cs->frozen = info.frozen;
	cs->since = info.since;
	cs->st = info.stats;
}

static void snap_collect(void *arg)
{
	bk_conn_foreach(snap_one, arg);
}

static void snap_free(void *arg)
{
	struct snapshot *s = arg;

	if (s) {
		free(s->v);
		free(s);
	}
}

/* A fresh snapshot of every connection (heap), or NULL. */
static struct snapshot *snap_take(void)
{
	struct snapshot *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	if (ctl_on_main(snap_collect, s, snap_free) < 0)
		return NULL;	/* s now belongs to the pending call */
	clock_gettime(CLOCK_MONOTONIC, &s->at);
	return s;
}

/* The previous and the latest periodic samples, under ctl_lock. */
static struct snapshot *samp_prev, *samp_cur;

static void sample_tick(void)
{
	struct snapshot *s = snap_take();

	if (s == NULL)
		return;
	pthread_mutex_lock(&ctl_lock);
	snap_free(samp_prev);
	samp_prev = samp_cur;
	samp_cur = s;
	pthread_mutex_unlock(&ctl_lock);
}

struct rate {
	double ops, rd, wr;
};

/* Rates of (domain, tag) over the last sampling interval; ctl_lock held. */
static struct rate rate_of(const char *domain, const char *tag)
{
	struct rate r = { 0, 0, 0 };
	const struct conn_snap *a = NULL, *b = NULL;
	double dt;

	if (!samp_prev || !samp_cur)
		return r;
	for (size_t i = 0; i < samp_prev->n; i++)
		if (!strcmp(samp_prev->v[i].domain, domain) &&
		    !strcmp(samp_prev->v[i].tag, tag))
			a = &samp_prev->v[i];
	for (size_t i = 0; i < samp_cur->n; i++)
		if (!strcmp(samp_cur->v[i].domain, domain) &&
		    !strcmp(samp_cur->v[i].tag, tag))
			b = &samp_cur->v[i];
	dt = (double)(samp_cur->at.tv_sec - samp_prev->at.tv_sec) +
	     (double)(samp_cur->at.tv_nsec - samp_prev->at.tv_nsec) / 1e9;
	if (!a || !b || dt <= 0 || b->st.ops < a->st.ops)
		return r;
	r.ops = (double)(b->st.ops - a->st.ops) / dt;
	r.rd = (double)(b->st.bytes_read - a->st.bytes_read) / dt;
	r.wr = (double)(b->st.bytes_written - a->st.bytes_written) / dt;
	return r;
}

/* ---- request handlers ---- */

static void fmt_guests(struct sbuf *b, const struct snapshot *s, int json)
{
	time_t now = time(NULL);

	if (json)
		sb_printf(b, "[");
	else
		sb_printf(b, "%-16s %-12s %-9s %6s %-4s %-6s %9s %11s %11s "
			  "%10s %7s %7s %8s\n", "DOMAIN", "EXPORT", "TRANSPORT",
			  "QUEUES", "MODE", "FROZEN", "OPS/S", "READ B/S",
			  "WRITE B/S", "OPS", "INODES", "HANDLES", "UPTIME");
	pthread_mutex_lock(&ctl_lock);
	for (size_t i = 0; i < s->n; i++) {
		const struct conn_snap *c = &s->v[i];
		struct rate r = rate_of(c->domain, c->tag);

		if (json) {
			sb_printf(b, "%s{\"domain\":", i ? "," : "");
			sb_json_str(b, c->domain);
			sb_printf(b, ",\"export\":");
			sb_json_str(b, c->tag);
			sb_printf(b, ",\"transport\":");
			sb_json_str(b, c->transport);
			sb_printf(b, ",\"domid\":%" PRIu32 ",\"queues\":%"
				  PRIu32 ",\"readonly\":%s,\"frozen\":%s,"
				  "\"since\":%lld,\"ops\":%" PRIu64
				  ",\"bytes_read\":%" PRIu64
				  ",\"bytes_written\":%" PRIu64
				  ",\"inodes\":%" PRIu64 ",\"fds_open\":%"
				  PRIu64 ",\"handles\":%" PRIu64
				  ",\"ops_per_s\":%.1f,\"read_bytes_per_s\":"
				  "%.0f,\"write_bytes_per_s\":%.0f"
				  ",\"quota_bytes_used\":%" PRIu64
				  ",\"quota_bytes_limit\":%" PRIu64
				  ",\"quota_inodes_used\":%" PRIu64
				  ",\"quota_inodes_limit\":%" PRIu64 "}",
				  c->domid, c->nr_queues,
				  c->readonly ? "true" : "false",
				  c->frozen ? "true" : "false",
				  (long long)c->since, c->st.ops,
				  c->st.bytes_read, c->st.bytes_written,
				  c->st.inodes, c->st.fds_open, c->st.handles,
				  r.ops, r.rd, r.wr, c->st.quota_bytes_used,
				  c->st.quota_bytes_limit,
				  c->st.quota_inodes_used,
				  c->st.quota_inodes_limit);
		} else {
			sb_printf(b, "%-16s %-12s %-9s %6" PRIu32 " %-4s %-6s "
				  "%9.1f %11.0f %11.0f %10" PRIu64 " %7" PRIu64
				  " %7" PRIu64 " %7llds\n", c->domain, c->tag,
				  c->transport, c->nr_queues,
				  c->readonly ? "ro" : "rw",
				  c->frozen ? "yes" : "no", r.ops, r.rd, r.wr,
				  c->st.ops, c->st.inodes, c->st.handles,
				  (long long)(now - c->since));
		}
	}
	pthread_mutex_unlock(&ctl_lock);
	if (json) {
		sb_printf(b, "]");
		return;
	}
	/* quotas (issue 8): one line per connection that has one */
	for (size_t i = 0, hdr = 0; i < s->n; i++) {
		const struct conn_snap *c = &s->v[i];

		if (!c->st.quota_bytes_limit && !c->st.quota_inodes_limit)
			continue;
		if (!hdr++)
			sb_printf(b, "\n%-16s %-12s %20s %20s %12s %12s\n",
				  "QUOTA DOMAIN", "EXPORT", "BYTES USED",
				  "BYTES LIMIT", "INODES USED", "INODES LIMIT");
		sb_printf(b, "%-16s %-12s %20" PRIu64 " %20" PRIu64
			  " %12" PRIu64 " %12" PRIu64 "\n", c->domain, c->tag,
			  c->st.quota_bytes_used, c->st.quota_bytes_limit,
			  c->st.quota_inodes_used, c->st.quota_inodes_limit);
	}
}

/*
 * One line of STATE_DIR/services/status (written by xenfs-services):
 * "NAME STATE PID RESTARTS VERDICT LAST-ERROR..." -- see
 * services/host/host.c.  Returns 1 if parsed.
 */
struct svc_line {
	char name[65], state[32], err[256];
	long pid;
	unsigned restarts;
	int verdict;
};

static int svc_parse(const char *line, struct svc_line *sl)
{
	int n = 0;

	memset(sl, 0, sizeof(*sl));
	if (sscanf(line, "%64s %31s %ld %u %d %n", sl->name, sl->state,
		   &sl->pid, &sl->restarts, &sl->verdict, &n) < 5)
		return 0;
	snprintf(sl->err, sizeof(sl->err), "%s", line + n);
	sl->err[strcspn(sl->err, "\n")] = '\0';
	return 1;
}

static void fmt_services(struct sbuf *b, uint64_t head, int json)
{
	char path[PATH_MAX], line[512];
	const char *jdir = bk_stream_dir();
	FILE *f;
	int first = 1;
	struct stat st;
	long age = -1;

	snprintf(path, sizeof(path), "%s/services/status", ctl_state_dir);
	f = fopen(path, "re");
	if (f && fstat(fileno(f), &st) == 0)
		age = (long)(time(NULL) - st.st_mtime);
	if (json) {
		sb_printf(b, "\"services_status_age\":%ld,\"consumers\":[",
			  age);
	} else {
		sb_printf(b, "\nservices: %s\n", f == NULL ?
			  "not running (no status file)" : age > 10 ?
			  "status file is stale: xenfs-services not running?" :
			  "running");
		sb_printf(b, "%-20s %-10s %8s %8s %7s %12s %12s  %s\n",
			  "PLUGIN", "STATE", "PID", "RESTARTS", "VERDICT",
			  "CURSOR", "LAG", "LAST ERROR");
	}
	while (f && fgets(line, sizeof(line), f)) {
		struct svc_line sl;
		uint64_t cur = 0;

		if (!svc_parse(line, &sl))
			continue;
		if (jdir)
			(void)xf_stream_read_cursor(jdir, sl.name, &cur);
		if (json) {
			sb_printf(b, "%s{\"name\":", first ? "" : ",");
			sb_json_str(b, sl.name);
			sb_printf(b, ",\"state\":");
			sb_json_str(b, sl.state);
			sb_printf(b, ",\"pid\":%ld,\"restarts\":%u,"
				  "\"verdict\":%s,\"cursor\":%" PRIu64
				  ",\"lag\":%" PRIu64 ",\"error\":", sl.pid,
				  sl.restarts, sl.verdict ? "true" : "false",
				  cur, head > cur ? head - cur : 0);
			sb_json_str(b, sl.err);
			sb_printf(b, "}");
		} else {
			sb_printf(b, "%-20s %-10s %8ld %8u %7s %12" PRIu64
				  " %12" PRIu64 "  %s\n", sl.name, sl.state,
				  sl.pid, sl.restarts,
				  sl.verdict ? "yes" : "no", cur,
				  head > cur ? head - cur : 0, sl.err);
		}
		first = 0;
	}
	if (f)
		fclose(f);
	if (json)
		sb_printf(b, "]");
}

static int req_status(struct sbuf *b, int json, int guests_only)
{
	struct snapshot *s = snap_take();
	uint64_t head = bk_stream_head();
	const char *jdir = bk_stream_dir();

	if (s == NULL)
		return -ETIMEDOUT;
	if (guests_only) {
		fmt_guests(b, s, json);
		if (json)
			sb_printf(b, "\n");
		snap_free(s);
		return 0;
	}
	if (json) {
		sb_printf(b, "{\"pid\":%ld,\"started\":%lld,\"connections\":"
			  "%zu,\"config\":", (long)getpid(),
			  (long long)bk_srv.started, s->n);
		sb_json_str(b, bk_srv.cfg ? bk_srv.cfg->file : "");
		sb_printf(b, ",\"stream\":{\"head\":%" PRIu64 ",\"journal\":",
			  head);
		sb_json_str(b, jdir ? jdir : "");
		sb_printf(b, "},\"guests\":");
		fmt_guests(b, s, 1);
		sb_printf(b, ",\"exports\":[");
		for (size_t i = 0; bk_srv.cfg && i < bk_srv.cfg->nexports;
		     i++) {
			sb_printf(b, "%s{\"tag\":", i ? "," : "");
			sb_json_str(b, bk_srv.cfg->exports[i].tag);
			sb_printf(b, ",\"path\":");
			sb_json_str(b, bk_srv.cfg->exports[i].path);
			sb_printf(b, "}");
		}
		sb_printf(b, "],");
		fmt_services(b, head, 1);
		sb_printf(b, "}\n");
	} else {
		sb_printf(b, "xenfsd pid %ld, up %llds, %zu connection(s), "
			  "config %s\n", (long)getpid(),
			  (long long)(time(NULL) - bk_srv.started), s->n,
			  bk_srv.cfg ? bk_srv.cfg->file : "?");
		sb_printf(b, "stream: head %" PRIu64 ", journal %s\n", head,
			  jdir ? jdir : "(off)");
		sb_printf(b, "exports:");
		for (size_t i = 0; bk_srv.cfg && i < bk_srv.cfg->nexports;
		     i++)
			sb_printf(b, " %s=%s", bk_srv.cfg->exports[i].tag,
				  bk_srv.cfg->exports[i].path);
		sb_printf(b, "\n\n");
		fmt_guests(b, s, 0);
		fmt_services(b, head, 0);
	}
	snap_free(s);
	return 0;
}

static void emit_marker(uint32_t op, const char *domain, uint64_t *seq)
{
	struct xenfs_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.op = op;
	ev.origin = XENFS_ORIGIN_HOST;
	ev.domain = domain;
	ev.export_tag = "";
	ev.path = "";
	ev.path2 = "";
	*seq = bk_stream_emit(&ev) == 0 ? ev.seq : 0;
}

static int req_freeze(struct sbuf *b, const char *domain, int timeout_ms,
		      char *err, size_t errlen)
{
	uint64_t seq;
	int r;

	r = bk_domain_freeze(domain, timeout_ms, err, errlen);
	if (r < 0) {
		if (!err[0])
			snprintf(err, errlen, "freeze %s: %s", domain,
				 strerror(-r));
		return r;
	}
	/* every change of the domain is in the journal before this */
	emit_marker(XENFS_EV_FREEZE, domain, &seq);
	log_info("control: domain %s frozen (stream seq %" PRIu64 ")",
		 domain, seq);
	sb_printf(b, "frozen %s seq %" PRIu64 "\n", domain, seq);
	return 0;
}

static int req_thaw(struct sbuf *b, const char *domain, char *err,
		    size_t errlen)
{
	uint64_t seq;
	int r;

	r = bk_domain_thaw(domain, err, errlen);
	if (r < 0) {
		if (!err[0])
			snprintf(err, errlen, "thaw %s: %s", domain,
				 strerror(-r));
		return r;
	}
	emit_marker(XENFS_EV_THAW, domain, &seq);
	log_info("control: domain %s thawed", domain);
	sb_printf(b, "thawed %s seq %" PRIu64 "\n", domain, seq);
	return 0;
}

struct reload_call {
	int r;
	char err[512];
};

static void reload_on_main(void *arg)
{
	struct reload_call *rc = arg;

	rc->r = bk_server_reload(rc->err, sizeof(rc->err));
}

static int req_reload(struct sbuf *b, char *err, size_t errlen)
{
	struct reload_call *rc = calloc(1, sizeof(*rc));
	int r;

	if (rc == NULL)
		return -ENOMEM;
	r = ctl_on_main(reload_on_main, rc, free);
	if (r < 0) {
		snprintf(err, errlen, "reload: main loop did not answer");
		return r;	/* rc is owned by the pending call */
	}
	r = rc->r;
	if (r < 0)
		snprintf(err, errlen, "%s", rc->err[0] ? rc->err :
			 strerror(-r));
	else
		sb_printf(b, "configuration reloaded\n");
	free(rc);
	return r;
}

/* Split line into at most max words (in place); returns the count. */
static int split_words(char *line, char **w, int max)
{
	int n = 0;
	char *save = NULL, *t;

	for (t = strtok_r(line, " \t", &save); t && n < max;
	     t = strtok_r(NULL, " \t", &save))
		w[n++] = t;
	return t ? -1 : n;
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > XENFS_EV_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
			return 0;
	return 1;
}

static int ctl_request(char *line, struct sbuf *b, char *err, size_t errlen)
{
	char *w[4];
	int n, json;

	n = split_words(line, w, 4);
	if (n <= 0) {
		snprintf(err, errlen, "empty or too long request");
		return -EINVAL;
	}
	json = !strcmp(w[n - 1], "json");
	if (json)
		n--;
	if (n == 1 && !strcmp(w[0], "status"))
		return req_status(b, json, 0);
	if (n == 1 && !strcmp(w[0], "guests"))
		return req_status(b, json, 1);
	if (n == 1 && !strcmp(w[0], "reload"))
		return req_reload(b, err, errlen);
	if (n == 1 && !strcmp(w[0], "head")) {
		const char *d = bk_stream_dir();
		sb_printf(b, "%" PRIu64 " %s\n", bk_stream_head(), d ? d : "");
		return 0;
	}
	if (n == 1 && !strcmp(w[0], "ping")) {
		sb_printf(b, "pong\n");
		return 0;
	}
	if ((n == 2 || n == 3) && !strcmp(w[0], "freeze")) {
		long t = CTL_FREEZE_TIMEOUT_MS;
		char *end;

		if (!valid_name(w[1]))
			goto bad;
		if (n == 3) {
			errno = 0;
			t = strtol(w[2], &end, 10);
			if (errno || *end || t <= 0 || t > 3600000)
				goto bad;
		}
		return req_freeze(b, w[1], (int)t, err, errlen);
	}
	if (n == 2 && !strcmp(w[0], "thaw")) {
		if (!valid_name(w[1]))
			goto bad;
		return req_thaw(b, w[1], err, errlen);
	}
bad:
	snprintf(err, errlen, "bad request (try: status, guests, freeze "
		 "DOMAIN [TIMEOUT-MS], thaw DOMAIN, reload, head) [json]");
	return -EINVAL;
}

static int write_all(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = send(fd, (const char *)buf + done, len - done,
				 MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)r;
	}
	return 0;
}

/* Is the peer allowed?  uid 0, or in control-group (primary or extra). */
static int peer_allowed(int fd, struct ucred *uc)
{
	socklen_t len = sizeof(*uc);
	char path[64], line[4096];
	FILE *f;
	int ok = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, uc, &len) < 0)
		return 0;
	if (uc->uid == 0)
		return 1;
	if (ctl_gid == (gid_t)-1)
		return 0;
	if (uc->gid == ctl_gid)
		return 1;
	/* supplementary groups of the peer process */
	snprintf(path, sizeof(path), "/proc/%ld/status", (long)uc->pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (!ok && fgets(line, sizeof(line), f)) {
		char *save = NULL, *t;

		if (strncmp(line, "Groups:", 7))
			continue;
		for (t = strtok_r(line + 7, " \t\n", &save); t;
		     t = strtok_r(NULL, " \t\n", &save))
			if ((gid_t)strtoul(t, NULL, 10) == ctl_gid)
				ok = 1;
	}
	fclose(f);
	return ok;
}

static void *ctl_client_main(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char line[CTL_LINE_MAX + 1];
	size_t have = 0;
	struct ucred uc;

	if (!peer_allowed(fd, &uc)) {
		static const char msg[] = "ERR permission denied\n";
		log_warnx("control: refused peer pid %ld uid %ld",
			  (long)uc.pid, (long)uc.uid);
		(void)write_all(fd, msg, sizeof(msg) - 1);
		goto out;
	}
	for (;;) {
		char *nl;
		ssize_t r;

		nl = memchr(line, '\n', have);
		if (nl == NULL) {
			if (have >= CTL_LINE_MAX) {
				static const char msg[] =
					"ERR request too long\n";
				(void)write_all(fd, msg, sizeof(msg) - 1);
				break;
			}
			r = recv(fd, line + have, CTL_LINE_MAX - have, 0);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			have += (size_t)r;
			continue;
		}
		*nl = '\0';
		if (nl > line && nl[-1] == '\r')
			nl[-1] = '\0';

		struct sbuf b = { NULL, 0, 0, 0 };
		char err[512] = "", hdr[64];
		int e = ctl_request(line, &b, err, sizeof(err));

		if (e == 0 && b.oom) {
			e = -ENOMEM;
			snprintf(err, sizeof(err), "out of memory");
		}
		if (e < 0) {
			char msg[600];
			if (!err[0])
				snprintf(err, sizeof(err), "%s",
					 strerror(-e));
			err[strcspn(err, "\n")] = ' ';
			int n = snprintf(msg, sizeof(msg), "ERR %s\n", err);
			e = write_all(fd, msg, (size_t)n);
		} else {
			int n = snprintf(hdr, sizeof(hdr), "OK %zu\n", b.len);
			e = write_all(fd, hdr, (size_t)n);
			if (e == 0 && b.len)
				e = write_all(fd, b.p, b.len);
		}
		free(b.p);
		if (e < 0)
			break;
		have -= (size_t)(nl + 1 - line);
		memmove(line, nl + 1, have);
	}
out:
	close(fd);
	pthread_mutex_lock(&ctl_lock);
	ctl_clients--;
	pthread_cond_broadcast(&ctl_cond);
	pthread_mutex_unlock(&ctl_lock);
	return NULL;
}

static void *ctl_listen_main(void *arg)
{
	struct pollfd pfd[2];
	struct timespec last = { 0, 0 }, now;

	pfd[0].fd = ctl_fd;
	pfd[0].events = POLLIN;
	pfd[1].fd = ctl_wake[0];
	pfd[1].events = POLLIN;
	for (;;) {
		int n = poll(pfd, 2, CTL_SAMPLE_MS);

		if (n < 0 && errno != EINTR) {
			log_warn("control: poll");
			break;
		}
		if (pfd[1].revents)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - last.tv_sec) * 1000 +
		    (now.tv_nsec - last.tv_nsec) / 1000000 >= CTL_SAMPLE_MS) {
			sample_tick();
			last = now;
		}
		if (n <= 0 || !(pfd[0].revents & POLLIN))
			continue;
		int cfd = accept4(ctl_fd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0) {
			if (errno != EINTR && errno != EAGAIN &&
			    errno != ECONNABORTED)
				log_warn("control: accept");
			continue;
		}
		pthread_mutex_lock(&ctl_lock);
		if (ctl_clients >= CTL_MAX_CLIENTS) {
			pthread_mutex_unlock(&ctl_lock);
			static const char msg[] = "ERR too many clients\n";
			(void)write_all(cfd, msg, sizeof(msg) - 1);
			close(cfd);
			continue;
		}
		ctl_clients++;
		pthread_mutex_unlock(&ctl_lock);

		pthread_t t;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		int e = pthread_create(&t, &at, ctl_client_main,
				       (void *)(intptr_t)cfd);
		pthread_attr_destroy(&at);
		if (e != 0) {
			log_warnx("control: thread: %s", strerror(e));
			close(cfd);
			pthread_mutex_lock(&ctl_lock);
			ctl_clients--;
			pthread_mutex_unlock(&ctl_lock);
		}
	}
	return NULL;
}

static void ctl_set_group(const struct xf_config *cfg)
{
	const char *g = cfg->global.control_group;
	struct group *gr;

	ctl_gid = (gid_t)-1;
	if (g == NULL || !*g)
		return;
	if ((gr = getgrnam(g)) == NULL) {
		log_warnx("control: group %s does not exist: socket limited "
			  "to root", g);
		return;
	}
	ctl_gid = gr->gr_gid;
}

/* Create the parent directory of the socket if it is missing (0755). */
static void mkparent(const char *path)
{
	char d[PATH_MAX], *s;

	snprintf(d, sizeof(d), "%s", path);
	if ((s = strrchr(d, '/')) == NULL || s == d)
		return;
	*s = '\0';
	if (mkdir(d, 0755) < 0 && errno != EEXIST)
		log_warn("control: mkdir %s", d);
}

int bk_control_start(const struct xf_config *cfg)
{
	struct sockaddr_un sun;
	const char *path = cfg->global.control_socket;
	int fd, r;

	if (path == NULL || strlen(path) >= sizeof(sun.sun_path)) {
		log_warnx("control: bad control-socket path");
		return -EINVAL;
	}
	snprintf(ctl_state_dir, sizeof(ctl_state_dir), "%s",
		 cfg->global.state_dir);
	ctl_set_group(cfg);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, strlen(path));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	mkparent(path);
	/* a live xenfsd answers; only a stale socket is removed */
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		log_warnx("control: %s is in use by another xenfsd", path);
		close(fd);
		return -EADDRINUSE;
	}
	close(fd);
	(void)unlink(path);	/* stale or absent */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0660) < 0 ||
	    chown(path, 0, ctl_gid == (gid_t)-1 ? 0 : ctl_gid) < 0 ||
	    listen(fd, 16) < 0) {
		r = -errno;
		log_warn("control: cannot listen on %s", path);
		close(fd);
		(void)unlink(path);
		return r;
	}
	if (pipe2(ctl_wake, O_CLOEXEC) < 0) {
		r = -errno;
		close(fd);
		(void)unlink(path);
		return r;
	}
	ctl_fd = fd;
	snprintf(ctl_path, sizeof(ctl_path), "%s", path);
	if ((r = pthread_create(&ctl_thr, NULL, ctl_listen_main, NULL))) {
		log_warnx("control: thread: %s", strerror(r));
		bk_control_stop();
		return -r;
	}
	ctl_running = 1;
	log_info("control: listening on %s", path);
	return 0;
}

void bk_control_reload(const struct xf_config *cfg)
{
	struct group *gr = NULL;
	const char *g = cfg->global.control_group;

	ctl_set_group(cfg);
	if (g && *g)
		gr = getgrnam(g);
	if (ctl_path[0] &&
	    chown(ctl_path, 0, gr ? gr->gr_gid : 0) < 0)
		log_warn("control: chown %s", ctl_path);
}

void bk_control_stop(void)
{
	struct timespec ts;

	if (ctl_running) {
		if (write(ctl_wake[1], "x", 1) < 0)
			log_warn("control: wake");
		pthread_join(ctl_thr, NULL);
		ctl_running = 0;
	}
	if (ctl_fd >= 0) {
		close(ctl_fd);
		ctl_fd = -1;
		(void)unlink(ctl_path);
		ctl_path[0] = '\0';
	}
	/* give client threads a moment to finish their replies */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 2;
	pthread_mutex_lock(&ctl_lock);
	while (ctl_clients > 0)
		if (pthread_cond_timedwait(&ctl_cond, &ctl_lock, &ts))
			break;
	snap_free(samp_prev);
	snap_free(samp_cur);
	samp_prev = samp_cur = NULL;
	pthread_mutex_unlock(&ctl_lock);
	for (int i = 0; i < 2; i++)
		if (ctl_wake[i] >= 0) {
			close(ctl_wake[i]);
			ctl_wake[i] = -1;
		}
}
