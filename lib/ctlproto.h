/*
 * Wire formats between xenfsd and xenfs-services (both ours, same build):
 *
 * Verdict socket: STATE_DIR/services/verdict-NAME.sock, one per loaded
 * plugin that implements verdict (created by that plugin's child process,
 * removed when it exits cleanly).  xenfsd connects, sends one struct
 * xf_verdict_msg followed by domain, export and path bytes, with a
 * read-only descriptor of the file attached (SCM_RIGHTS), and reads one
 * int32 answer: 0 allow, 1 deny, negative = cannot decide.  One request
 * per connection.
 *
 * STATE_DIR/services/status: written by the services host (atomic
 * rename) once a second; one line per plugin:
 *   NAME STATE PID RESTARTS VERDICT(0|1) LAST-ERROR...
 * STATE is starting|running|busy|backoff|crashed|hung|failed|stopped.
 *
 * Trust: both ends are root processes of the same installation; each
 * still bounds lengths since a plugin child may be buggy.
 */
#ifndef XF_CTLPROTO_H
#define XF_CTLPROTO_H

#include <stdint.h>

#define XF_VERDICT_MAGIC	0x56444658u	/* "XFDV" */
#define XF_VERDICT_STR_MAX	4096u

struct xf_verdict_msg {
	uint32_t magic;
	uint32_t flags;		/* open flags */
	uint64_t dev, ino, size;
	int64_t ctime_sec;
	uint32_t ctime_nsec;
	uint16_t domain_len, export_len;
	uint32_t path_len;
	uint32_t pad;
};
_Static_assert(sizeof(struct xf_verdict_msg) == 56, "verdict msg");

#define XF_SERVICES_SUBDIR	"services"

#endif /* XF_CTLPROTO_H */
