/*
 * Logging; see log.h.  Global state is the sink configuration only, set
 * at startup before threads exist (log_set_sink may be called later by a
 * test, which then owns the consequences).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static int log_foreground = 1;
static int log_verbose;
static const char *log_role = "";
static log_sink_fn log_sink;
static void *log_sink_arg;
static pthread_mutex_t rl_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(int foreground, int verbosity, const char *ident)
{
	log_foreground = foreground;
	log_verbose = verbosity;
	if (!foreground)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_procinit(const char *role)
{
	log_role = role ? role : "";
}

int log_get_verbosity(void)
{
	return log_verbose;
}

void log_set_verbosity(int v)
{
	log_verbose = v;
}

void log_set_sink(log_sink_fn fn, void *arg)
{
	log_sink = fn;
	log_sink_arg = arg;
}

static const char *prio_name(int pri)
{
	switch (pri) {
	case LOG_CRIT: return "fatal";
	case LOG_ERR: return "error";
	case LOG_WARNING: return "warning";
	case LOG_NOTICE: return "notice";
	case LOG_INFO: return "info";
	default: return "debug";
	}
}

static void vlog(int pri, const char *fmt, va_list ap, int with_errno)
{
	int saved = errno;
	char msg[2048];
	char line[2300];
	int n;

	if (pri == LOG_DEBUG && !log_verbose) {
		errno = saved;
		return;
	}
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		snprintf(msg, sizeof(msg), "(unformattable message)");
	if (with_errno) {
		size_t l = strlen(msg);

		snprintf(msg + l, sizeof(msg) - l, ": %s", strerror(saved));
	}
	if (log_sink) {
		log_sink(pri, msg, log_sink_arg);
	} else if (log_foreground) {
		snprintf(line, sizeof(line), "%s%s%s: %s\n", log_role,
			 *log_role ? " " : "", prio_name(pri), msg);
		/* one write per line keeps threads from interleaving */
		(void)!write(STDERR_FILENO, line, strlen(line));
	} else {
		if (*log_role)
			syslog(pri, "%s: %s", log_role, msg);
		else
			syslog(pri, "%s", msg);
	}
	errno = saved;
}

#define LOGFN(name, pri, err)                                                \
	void name(const char *fmt, ...)                                      \
	{                                                                    \
		va_list ap;                                                  \
		va_start(ap, fmt);                                           \
		vlog(pri, fmt, ap, err);                                     \
		va_end(ap);                                                  \
	}
LOGFN(log_warn, LOG_WARNING, 1)
LOGFN(log_warnx, LOG_WARNING, 0)
LOGFN(log_info, LOG_INFO, 0)
LOGFN(log_debug, LOG_DEBUG, 0)

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, 1);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_CRIT, fmt, ap, 0);
	va_end(ap);
	exit(1);
}

void log_warnx_rl(struct log_ratelimit *rl, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;
	unsigned suppressed = 0;
	int emit;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&rl_lock);
	if (ts.tv_sec - rl->window_start >= 10) {
		suppressed = rl->suppressed;
		rl->window_start = ts.tv_sec;
		rl->count = 0;
		rl->suppressed = 0;
	}
	emit = rl->count < 5;
	if (emit)
		rl->count++;
	else
		rl->suppressed++;
	pthread_mutex_unlock(&rl_lock);
	if (suppressed)
		log_warnx("(%u similar messages suppressed)", suppressed);
	if (emit) {
		va_start(ap, fmt);
		vlog(LOG_WARNING, fmt, ap, 0);
		va_end(ap);
	}
}
