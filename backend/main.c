/*
 * xenfsd: the XenFS backend daemon.  This file is the thin main: options,
 * configuration (load, check mode, reload on SIGHUP), daemonizing, the
 * directories the daemon needs, and the order in which the parts start
 * and stop around the event loop (backend/loop.c).
 *
 * Concurrency: signals are blocked in every thread (the mask is set before
 * any thread exists) and read through a signalfd in the main loop, so a
 * reload or a shutdown always runs on the main thread between callbacks.
 * The config is owned by the main thread; a reload parses into a new
 * object and swaps it only if it loaded, then pushes it to the acceptors,
 * the connections and the control socket, and frees the old one.
 *
 * Trust: the config file and the command line are the admin's; errors in
 * them are fatal at startup and reported as "file:line: what".  Nothing
 * here reads guest data.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bk.h"
#include "log.h"
#include "priv.h"
#include "util.h"

#ifndef XENFS_VERSION
#define XENFS_VERSION "0.1"
#endif
#ifndef XENFS_SYSCONFDIR
#define XENFS_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONFIG XENFS_SYSCONFDIR "/xenfs/xenfs.conf"

struct bk_server bk_srv;

static const char *config_path = DEFAULT_CONFIG;
static int sig_fd = -1;

static void usage(FILE *f)
{
	fprintf(f,
"usage: xenfsd [-fnvV] [-c config] [--no-sandbox] [--print-config]\n"
"  -c FILE          configuration file (default %s)\n"
"  -f               stay in the foreground, log to stderr\n"
"  -n               check the configuration and exit\n"
"  -v               more verbose logging (repeatable)\n"
"  --no-sandbox     serve every guest in this one unconfined process\n"
"                   (no worker processes; debugging only)\n"
"  --print-config   print the effective configuration and exit\n"
"  -h, --help       this help\n"
"  -V               print the version and exit\n", DEFAULT_CONFIG);
}

/* mkdir -p with mode for the last component and for the parents. */
static int mkdir_p(const char *path, mode_t mode, mode_t parent_mode)
{
	struct stat st;
	int r;

	if ((r = xf_mkdir_parents(path, parent_mode)) < 0)
		return r;
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -errno;
	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return 0;
}

/* Create the directory that will hold the file at path. */
static int mkdir_of(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	char *s;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	s = strrchr(buf, '/');
	if (!s || s == buf)
		return 0;
	*s = '\0';
	return mkdir_p(buf, mode, mode);
}

static void make_dirs(const struct xf_config *cfg)
{
	size_t i;
	int r;

	if (cfg->global.state_dir &&
	    (r = mkdir_p(cfg->global.state_dir, 0700, 0755)) < 0) {
		errno = -r;
		fatal("state directory %s", cfg->global.state_dir);
	}
	if (cfg->global.control_socket &&
	    (r = mkdir_of(cfg->global.control_socket, 0755)) < 0) {
		errno = -r;
		fatal("directory of %s", cfg->global.control_socket);
	}
	for (i = 0; i < cfg->ndomains; i++) {
		const char *s = cfg->domains[i].local_socket;

		if (s && (r = mkdir_of(s, 0755)) < 0) {
			errno = -r;
			fatal("directory of %s", s);
		}
	}
}

int bk_server_reload(char *err, size_t errlen)
{
	struct xf_config *ncfg, *old = bk_srv.cfg;
	char e[512], *text;
	size_t len;
	int r;

	ncfg = xf_config_load_text(config_path, &text, &len, e, sizeof(e));
	if (!ncfg) {
		log_warnx("reload failed, keeping the current configuration: "
			  "%s", e);
		if (err)
			snprintf(err, errlen, "%s", e);
		return -EINVAL;
	}
	r = bk_priv_on() ? bk_priv_set_config(text, len) : 0;
	free(text);
	if (r < 0) {
		log_warnx("reload failed, keeping the current configuration: "
			  "cannot pass it to the workers: %s", strerror(-r));
		if (err)
			snprintf(err, errlen, "cannot pass the configuration "
				 "to the workers: %s", strerror(-r));
		xf_config_free(ncfg);
		return r;
	}
	bk_srv.cfg = ncfg;
	bk_local_reload(ncfg);
#ifdef XENFS_HAVE_XEN
	bk_xen_reload(ncfg);
#endif
	bk_conns_reload(ncfg);
	bk_control_reload(ncfg);
	/* Nothing keeps pointers into the old config past the hooks above:
	 * connections copy what they need at start. */
	xf_config_free(old);
	log_info("configuration reloaded from %s", config_path);
	return 0;
}

static void signal_cb(int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;
	ssize_t n;

	for (;;) {
		n = read(fd, &si, sizeof(si));
		if (n != (ssize_t)sizeof(si))
			return;		/* EAGAIN: drained */
		switch (si.ssi_signo) {
		case SIGHUP:
			log_info("SIGHUP: reloading %s", config_path);
			(void)bk_server_reload(NULL, 0);	/* logged */
			break;
		case SIGTERM:
		case SIGINT:
			log_info("%s: shutting down",
				 si.ssi_signo == SIGTERM ? "SIGTERM" :
				 "SIGINT");
			bk_loop_stop();
			return;
		default:
			break;
		}
	}
}

/*
 * Each connection may hold up to [global] max-fds descriptors of cached
 * inodes, plus open files; the default soft limit (1024) is far below what
 * a few guests need.  Raise the soft limit to the hard one, and say so when
 * even that is short of what the configuration allows.
 */
static void raise_nofile(const struct xf_config *cfg)
{
	struct rlimit rl;
	uint64_t want = (uint64_t)cfg->global.max_fds * 2 + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		log_warn("getrlimit(RLIMIT_NOFILE)");
		return;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("setrlimit(RLIMIT_NOFILE, %llu)",
				 (unsigned long long)rl.rlim_max);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want)
		log_warnx("open-file limit %llu is low for max-fds = %u: a "
			  "guest may get EMFILE; raise LimitNOFILE (systemd) "
			  "or ulimit -n",
			  (unsigned long long)rl.rlim_cur,
			  cfg->global.max_fds);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "no-sandbox", no_argument, NULL, 'S' },
		{ "print-config", no_argument, NULL, 'P' },
		{ "worker", required_argument, NULL, 'W' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int ch, check = 0, print = 0, verbose = 0, foreground = 0;
	int no_sandbox = 0, r;
	const char *worker = NULL;
	char *cfg_text = NULL;
	size_t cfg_len = 0;
	struct xf_config *cfg;
	char err[512];
	sigset_t set;

	log_init(1, 0, "xenfsd");
	while ((ch = getopt_long(argc, argv, "c:fnvhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config_path = optarg;
			break;
		case 'f':
			foreground = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'v':
			verbose++;
			break;
		case 'S':
			no_sandbox = 1;
			break;
		case 'P':
			print = 1;
			break;
		case 'W':
			worker = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("xenfsd %s\n", XENFS_VERSION);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	log_set_verbosity(verbose);
	if (worker) {
		/* started by xenfsd itself (backend/priv.c) */
		log_init(foreground, verbose, "xenfsd");
		log_set_verbosity(verbose);
		bk_srv.foreground = foreground;
		return bk_worker_main(worker);
	}

	cfg = xf_config_load_text(config_path, &cfg_text, &cfg_len, err,
				  sizeof(err));
	/* daemon() moves to /: reloads must find a relative -c path */
	if (cfg && config_path[0] != '/') {
		static char abspath[PATH_MAX];

		if (realpath(config_path, abspath))
			config_path = abspath;
	}
	if (!cfg) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (check || print) {
		free(cfg_text);
		cfg_text = NULL;
	}
	if (check) {
		printf("configuration OK\n");
		xf_config_free(cfg);
		return 0;
	}
	if (print) {
		xf_config_print(cfg, stdout);
		xf_config_free(cfg);
		return fflush(stdout) == 0 ? 0 : 1;
	}

	/* Before any thread exists: every thread inherits this mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		fatal("sigprocmask");
	/* a frontend that vanished must not kill us on a write */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		fatal("signal");

	make_dirs(cfg);
	fs_quota_reset_shared(cfg->global.state_dir);
	if (!foreground && daemon(0, 0) < 0)
		fatal("daemon");
	log_init(foreground, verbose, "xenfsd");
	log_set_verbosity(verbose);

	bk_srv.cfg = cfg;
	bk_srv.foreground = foreground;
	bk_srv.no_sandbox = no_sandbox;
	bk_srv.started = time(NULL);

	raise_nofile(cfg);
	if ((r = bk_loop_init()) < 0) {
		errno = -r;
		fatal("event loop");
	}
	sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sig_fd < 0)
		fatal("signalfd");
	if ((r = bk_loop_add(sig_fd, EPOLLIN, signal_cb, NULL)) < 0) {
		errno = -r;
		fatal("watch signals");
	}

	if (no_sandbox) {
		log_warnx("*** --no-sandbox: every guest is served inside this "
			  "one privileged process, NOT confined (no worker "
			  "processes, no namespaces, no Landlock, no seccomp, "
			  "all capabilities); debugging only ***");
	} else {
		if ((r = bk_priv_init(cfg_text, cfg_len)) < 0) {
			errno = -r;
			fatal("configuration for the workers");
		}
		log_info("privilege separation: each domain is served by its "
			 "own worker process (namespaces with only its "
			 "exports, no_new_privs, Landlock, reduced "
			 "capabilities, seccomp)");
	}
	free(cfg_text);
	cfg_text = NULL;

	if (bk_stream_start(cfg) < 0)
		fatalx("cannot open the operation stream in %s",
		       cfg->global.state_dir ? cfg->global.state_dir : "?");
	if (bk_control_start(cfg) < 0)
		fatalx("cannot open the control socket %s",
		       cfg->global.control_socket ?
		       cfg->global.control_socket : "?");
	if (bk_local_start(cfg) < 0)
		fatalx("cannot listen on the local sockets");
#ifdef XENFS_HAVE_XEN
	/* 0 also when this is not a Xen dom0: the transport is then off */
	if (bk_xen_start(cfg) < 0)
		fatalx("cannot start the Xen transport");
#endif
	log_info("xenfsd %s started (config %s, %zu export%s, %zu "
		 "domain%s)", XENFS_VERSION, config_path, cfg->nexports,
		 cfg->nexports == 1 ? "" : "s", cfg->ndomains,
		 cfg->ndomains == 1 ? "" : "s");

	r = bk_loop_run();

	/* stop accepting, then stop every guest, then the services */
	bk_local_stop();
#ifdef XENFS_HAVE_XEN
	bk_xen_stop();
#endif
	bk_conns_stop_all("shutting down");
	if (bk_priv_on())
		bk_priv_stop_all();
	bk_loop_run_pending();	/* the workers' last notices */
	bk_control_stop();
	bk_stream_stop();
	bk_loop_del(sig_fd);
	close(sig_fd);
	bk_loop_free();
	xf_config_free(bk_srv.cfg);
	bk_srv.cfg = NULL;
	log_info("exiting");
	return r < 0 ? 1 : 0;
}
