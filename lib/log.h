/*
 * Logging for every XenFS process (OpenBSD log.c pattern).
 *
 * log_init(foreground, verbosity): foreground logs go to stderr with a
 * level tag, otherwise to syslog (journald collects both).  Verbosity:
 * 0 = warnings and info, 1 = + debug.  log_procinit() names the process
 * role in every line.  log_warn appends strerror(errno).  fatal/fatalx log
 * and exit(1): only for startup errors and broken invariants between our
 * own processes, never for guest input.  All functions preserve errno.
 * A replaceable sink (log_set_sink) lets tests and plugins capture output.
 *
 * Thread-safe: each line is formatted into a local buffer and written
 * with one call.
 */
#ifndef XF_LOG_H
#define XF_LOG_H

#include <stdarg.h>
#include <syslog.h>

#define XF_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(int foreground, int verbosity, const char *ident);
void log_procinit(const char *role);
int log_get_verbosity(void);
void log_set_verbosity(int v);

typedef void (*log_sink_fn)(int priority, const char *line, void *arg);
void log_set_sink(log_sink_fn fn, void *arg);

void log_warn(const char *fmt, ...) XF_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) XF_PRINTF(1, 2);
void log_info(const char *fmt, ...) XF_PRINTF(1, 2);
void log_debug(const char *fmt, ...) XF_PRINTF(1, 2);
void fatal(const char *fmt, ...) XF_PRINTF(1, 2) __attribute__((noreturn));
void fatalx(const char *fmt, ...) XF_PRINTF(1, 2) __attribute__((noreturn));

/*
 * Rate-limited warning for anything a guest can trigger: at most `burst`
 * lines per `interval` seconds per limiter; the count of suppressed lines
 * is reported when logging resumes.
 */
struct log_ratelimit {
	long window_start;
	unsigned count;
	unsigned suppressed;
};
#define LOG_RATELIMIT_INIT { 0, 0, 0 }
void log_warnx_rl(struct log_ratelimit *rl, const char *fmt, ...)
	XF_PRINTF(2, 3);

#endif /* XF_LOG_H */
