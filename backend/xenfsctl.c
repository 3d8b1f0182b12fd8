/*
 * xenfsctl: the admin's command line to a running xenfsd (through its
 * control socket, protocol in docs/control.md) and a reader of the
 * operation journal (xenfsctl events).
 *
 *   xenfsctl [-c CONFIG] [-s SOCKET] [--json] status|guests|reload
 *   xenfsctl ... freeze DOMAIN [--timeout MS] | thaw DOMAIN
 *   xenfsctl [-c CONFIG] [-d JOURNAL-DIR] [--json] events [--follow]
 *            [--from SEQ]
 *
 * Exit: 0 ok, 1 error (message on stderr).  Single-threaded.
 * Trust: answers come from xenfsd (root), but paths inside events are
 * guest-chosen bytes: they are escaped before printing.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <xenfs/event.h>

#include "log.h"
#include "policy.h"
#include "stream.h"

#define DEFAULT_CONFIG	XENFS_SYSCONFDIR "/xenfs/xenfs.conf"
#define DEFAULT_SOCKET	"/run/xenfs/control.sock"

static void usage_to(FILE *out, int code)
{
	fprintf(out,
"usage: xenfsctl [-c CONFIG] [-s SOCKET] [--json] COMMAND\n"
"commands:\n"
"  status                 guests, exports, rates, stream head and lag\n"
"  guests                 connected guests\n"
"  freeze DOMAIN [--timeout MS]  flush and quiesce a domain\n"
"  thaw DOMAIN            resume a frozen domain\n"
"  reload                 re-read the configuration\n"
"  events [--follow] [--from SEQ] [-d DIR]  print the operation stream\n");
	exit(code);
}

/* Bad usage: to stderr, exit 1.  (-h/--help: to stdout, exit 0.) */
static void usage(void)
{
	usage_to(stderr, 1);
}

static int read_full(int fd, char *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = read(fd, buf + done, len - done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

/* One request; prints the body to stdout.  Returns the exit code. */
static int ctl_call(const char *sock, const char *req)
{
	struct sockaddr_un sun;
	char line[1100], c;
	size_t n = 0, len;
	char *body;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(sock) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "xenfsctl: socket path too long\n");
		return 1;
	}
	memcpy(sun.sun_path, sock, strlen(sock));
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "xenfsctl: cannot connect to %s: is xenfsd "
			"running? (%s)\n", sock, strerror(errno));
		return 1;
	}
	n = (size_t)snprintf(line, sizeof(line), "%s\n", req);
	if (n >= sizeof(line)) {
		fprintf(stderr, "xenfsctl: request too long\n");
		close(fd);
		return 1;
	}
	/* A peer the daemon refuses gets "ERR ..." and a close, possibly
	 * before our request arrives: no SIGPIPE, and on EPIPE/ECONNRESET
	 * still read the answer that explains why. */
	if (send(fd, line, n, MSG_NOSIGNAL) != (ssize_t)n &&
	    errno != EPIPE && errno != ECONNRESET) {
		fprintf(stderr, "xenfsctl: cannot send request: %s\n",
			strerror(errno));
		close(fd);
		return 1;
	}
	n = 0;
	for (;;) {
		ssize_t r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || n + 1 >= sizeof(line)) {
			fprintf(stderr, "xenfsctl: xenfsd closed the "
				"connection\n");
			close(fd);
			return 1;
		}
		if (c == '\n')
			break;
		line[n++] = c;
	}
	line[n] = '\0';
	if (!strncmp(line, "ERR ", 4)) {
		fprintf(stderr, "xenfsctl: %s\n", line + 4);
		close(fd);
		return 1;
	}
	if (sscanf(line, "OK %zu", &len) != 1 || len > (256u << 20)) {
		fprintf(stderr, "xenfsctl: bad answer from xenfsd\n");
		close(fd);
		return 1;
	}
	if ((body = malloc(len + 1)) == NULL || read_full(fd, body, len)) {
		fprintf(stderr, "xenfsctl: short answer from xenfsd\n");
		free(body);
		close(fd);
		return 1;
	}
	close(fd);
	fwrite(body, 1, len, stdout);
	free(body);
	return 0;
}

/* Print s with bytes outside printable ASCII as \xNN (guest names). */
static void put_escaped(const char *s, int json)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (json && (c == '"' || c == '\\'))
			printf("\\%c", c);
		else if (c < 0x20 || c >= 0x7f || (!json && c == '\\'))
			printf(json ? "\\u%04x" : "\\x%02x", c);
		else
			putchar(c);
	}
}

static const char *origin_name(uint32_t o)
{
	switch (o) {
	case XENFS_ORIGIN_GUEST: return "guest";
	case XENFS_ORIGIN_DOM0: return "dom0";
	case XENFS_ORIGIN_HOST: return "host";
	default: return "?";
	}
}

static void print_event(const struct xenfs_event *ev, int json)
{
	if (json) {
		printf("{\"seq\":%" PRIu64 ",\"time_ns\":%" PRId64
		       ",\"op\":\"%s\",\"flags\":%" PRIu32 ",\"origin\":\"%s\""
		       ",\"domain\":\"", ev->seq, ev->time_ns,
		       xenfs_event_op_name(ev->op), ev->flags,
		       origin_name(ev->origin));
		put_escaped(ev->domain, 1);
		printf("\",\"export\":\"");
		put_escaped(ev->export_tag, 1);
		printf("\",\"path\":\"");
		put_escaped(ev->path, 1);
		printf("\",\"path2\":\"");
		put_escaped(ev->path2, 1);
		printf("\",\"dev\":%" PRIu64 ",\"ino\":%" PRIu64
		       ",\"generation\":%" PRIu32 ",\"size\":%" PRIu64
		       ",\"mtime\":%" PRId64 ".%09" PRIu32 ",\"mode\":%" PRIu32
		       "}\n", ev->dev, ev->ino, ev->generation, ev->size,
		       ev->mtime_sec, ev->mtime_nsec, ev->mode);
		return;
	}
	/* SEQ OP DOMAIN EXPORT PATH [PATH2] key=value... */
	printf("%" PRIu64 " %s %s %s ", ev->seq, xenfs_event_op_name(ev->op),
	       *ev->domain ? ev->domain : "-",
	       *ev->export_tag ? ev->export_tag : "-");
	put_escaped(*ev->path ? ev->path : "-", 0);
	if (*ev->path2) {
		putchar(' ');
		put_escaped(ev->path2, 0);
	}
	printf(" size=%" PRIu64 " ino=%" PRIu64 " origin=%s%s\n", ev->size,
	       ev->ino, origin_name(ev->origin),
	       (ev->flags & XENFS_EV_F_SIZE) ? " truncate" :
	       (ev->flags & XENFS_EV_F_EXCHANGE) ? " exchange" : "");
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static int cmd_events(const char *dir, uint64_t from, int follow, int json)
{
	struct xf_stream_reader *r;
	struct xenfs_event *ev;
	uint64_t gf, gl;
	int e;

	if ((e = xf_stream_reader_open(dir, NULL, &r)) < 0) {
		fprintf(stderr, "xenfsctl: %s: %s\n", dir, strerror(-e));
		return 1;
	}
	if (from)
		xf_stream_seek(r, from);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!stop) {
		e = xf_stream_next(r, &ev, &gf, &gl);
		if (e == XF_STREAM_EVENT) {
			print_event(ev, json);
			free(ev);
			continue;
		}
		if (e == XF_STREAM_GAP) {
			if (json)
				printf("{\"gap\":[%" PRIu64 ",%" PRIu64 "]}\n",
				       gf, gl);
			else
				printf("# gap: records %" PRIu64 "..%" PRIu64
				       " were trimmed\n", gf, gl);
			continue;
		}
		if (e < 0) {
			fprintf(stderr, "xenfsctl: journal: %s\n",
				strerror(-e));
			xf_stream_reader_close(r);
			return 1;
		}
		if (!follow)
			break;
		fflush(stdout);
		(void)xf_stream_wait(r, 500);
	}
	xf_stream_reader_close(r);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "follow", no_argument, NULL, 'F' },
		{ "from", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *cfgpath = NULL, *sock = NULL, *jdir = NULL;
	char req[600], err[512], dirbuf[PATH_MAX];
	struct xf_config *cfg = NULL;
	int json = 0, follow = 0, ch, rc;
	long timeout = 0;
	uint64_t from = 0;

	log_init(1, 0, "xenfsctl");
	/* "+": options stop at the command; its own options parsed below */
	while ((ch = getopt_long(argc, argv, "+c:s:d:jh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c': cfgpath = optarg; break;
		case 's': sock = optarg; break;
		case 'd': jdir = optarg; break;
		case 'j': json = 1; break;
		case 'h': usage_to(stdout, 0); break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	const char *cmd = argv[optind];
	int cargc = argc - optind;
	char **cargv = argv + optind;
	optind = 1;
	while ((ch = getopt_long(cargc, cargv, "jFS:t:d:", opts, NULL)) != -1) {
		char *end;
		switch (ch) {
		case 'j': json = 1; break;
		case 'F': follow = 1; break;
		case 'd': jdir = optarg; break;
		case 'S':
			errno = 0;
			from = strtoull(optarg, &end, 10);
			if (errno || *end)
				usage();
			break;
		case 't':
			timeout = strtol(optarg, &end, 10);
			if (*end || timeout <= 0)
				usage();
			break;
		default: usage();
		}
	}
	char *arg1 = optind < cargc ? cargv[optind] : NULL;
	if (optind + 1 < cargc)
		usage();

	/* the config names the socket and the state dir; optional with -s/-d */
	if (cfgpath || ((!sock && strcmp(cmd, "events")) ||
			(!jdir && !strcmp(cmd, "events")))) {
		const char *p = cfgpath ? cfgpath : DEFAULT_CONFIG;
		cfg = xf_config_load(p, err, sizeof(err));
		if (cfg == NULL && (cfgpath || (!sock && !jdir))) {
			if (cfgpath || strcmp(cmd, "events") == 0) {
				fprintf(stderr, "xenfsctl: %s\n", err);
				return 1;
			}
		}
	}
	if (!sock)
		sock = cfg && cfg->global.control_socket ?
		       cfg->global.control_socket : DEFAULT_SOCKET;

	if (!strcmp(cmd, "events")) {
		if (!jdir) {
			snprintf(dirbuf, sizeof(dirbuf), "%.4000s/journal",
				 cfg->global.state_dir);
			jdir = dirbuf;
		}
		rc = cmd_events(jdir, from, follow, json);
	} else if ((!strcmp(cmd, "status") || !strcmp(cmd, "guests") ||
		    !strcmp(cmd, "reload")) && !arg1) {
		snprintf(req, sizeof(req), "%s%s", cmd, json ? " json" : "");
		rc = ctl_call(sock, req);
	} else if (!strcmp(cmd, "freeze") && arg1) {
		if (timeout)
			snprintf(req, sizeof(req), "freeze %.256s %ld", arg1,
				 timeout);
		else
			snprintf(req, sizeof(req), "freeze %.256s", arg1);
		rc = ctl_call(sock, req);
	} else if (!strcmp(cmd, "thaw") && arg1) {
		snprintf(req, sizeof(req), "thaw %.256s", arg1);
		rc = ctl_call(sock, req);
	} else {
		usage();
	}
	xf_config_free(cfg);
	return rc;
}
