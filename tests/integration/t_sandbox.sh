#!/usr/bin/env bash
# t_sandbox.sh: privilege separation (issue 8).  Each domain is served by
# its own worker process, in its own mount, pid and network namespaces
# whose root holds only that domain's exports; from inside a worker the
# other domains' exports and the host filesystem are not reachable.
#
#  - XENFSD_SANDBOX_PROBE makes each worker's queue threads, once
#    confined, try to open a list of paths (and a network socket, a mount,
#    a fork) and log the result;
#  - from outside: the worker's root (/proc/PID/root) holds its export and
#    nothing of the other domain or of the host; its namespaces differ
#    from the parent's; no_new_privs and the fs capability set (CapBnd
#    0x880000df) hold for every thread, the seccomp allow-list for the
#    queue threads;
#  - the parent maps no guest memory (no xenfs-region mapping), the
#    workers do;
#  - killing one domain's worker leaves the other domain served, and its
#    guest can mount again (a new worker);
#  - a reload that grants a domain another export gives its next
#    connection a new worker; the old one ends with its last connection;
#  - --no-sandbox says loudly that nothing is confined, and uses no
#    worker process.
# timeout: 120
. "$(dirname "$0")/../lib.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_bin xenfsd mount.xenfs

mkdir -p "$W/e1" "$W/e2" "$W/e3" "$W/state" "$W/host"
echo one >"$W/e1/f1"
echo two >"$W/e2/f2"
echo three >"$W/e3/f3"
echo host >"$W/host/h"
conf()
{
	xf_config xenfs.conf <<CONF
[global]
control-socket = $W/control.sock
state-dir = $W/state

[export e1]
path = $W/e1
access = vm1:rw

[export e2]
path = $W/e2
access = vm2:rw

[export e3]
path = $W/e3
access = $1

[domain vm1]
local-socket = $(xf_sock vm1)

[domain vm2]
local-socket = $(xf_sock vm2)
CONF
}
conf vm2:ro
export XENFSD_SANDBOX_PROBE="$W/e1/f1:$W/e2/f2:/etc/passwd:$W/host/h:/proc/1/environ:@inet:@mount:@fork"
xf_start_backend "$XF_CONF"
xf_expect_log "privilege separation: each domain is served by its own worker process"
xf_mount "$(xf_sock vm1)" e1 "$W/m1"
xf_mount "$(xf_sock vm2)" e2 "$W/m2"
cat "$W/m1/f1" >/dev/null && cat "$W/m2/f2" >/dev/null ||
	xf_fail "guests cannot read their own exports"
echo new >"$W/m1/new" || xf_fail "write through a sandboxed worker"
xf_assert_eq "$(cat "$W/e1/new")" new "the write reached the export"

# ---- what a worker's queue thread can reach ----
xf_expect_log "sandbox probe vm1: $W/e1/f1: ok"
xf_expect_log "sandbox probe vm1: $W/e2/f2: No such file or directory"
xf_expect_log "sandbox probe vm1: /etc/passwd: No such file or directory"
xf_expect_log "sandbox probe vm1: $W/host/h: No such file or directory"
# /proc holds only the worker's own pid namespace; a sanitizer build lets
# LeakSanitizer read it (backend/sandbox.c), a normal one does not
if ldd "$BIN/xenfsd" | grep -q libasan; then
	xf_expect_log "sandbox probe vm1: /proc/1/environ: (ok|Permission denied)"
else
	xf_expect_log "sandbox probe vm1: /proc/1/environ: Permission denied"
fi
xf_expect_log "sandbox probe vm1: @inet: Operation not permitted"
xf_expect_log "sandbox probe vm1: @mount: Operation not permitted"
xf_expect_log "sandbox probe vm1: @fork: Operation not permitted"
xf_expect_log "sandbox probe vm2: $W/e2/f2: ok"
xf_expect_log "sandbox probe vm2: $W/e1/f1: No such file or directory"

# ---- the processes, from outside ----
# (children of this test's xenfsd only: other suites may run at once)
workers_of() { pgrep -P "$XF_BACKEND_PID" -f -- "xenfsd --worker $1( |\$)"; }
worker_of() { workers_of "$1" | head -1; }
w1=$(worker_of vm1)
w2=$(worker_of vm2)
[ -n "$w1" ] && [ -n "$w2" ] || xf_fail "no worker processes ($w1/$w2)"
[ "$w1" != "$w2" ] || xf_fail "one process serves both domains"
xf_assert_eq "$(ps -o ppid= -p "$w1" | tr -d ' ')" "$XF_BACKEND_PID" \
	"vm1's worker is a child of xenfsd"
for ns in mnt pid net; do
	a=$(readlink "/proc/$XF_BACKEND_PID/ns/$ns")
	b=$(readlink "/proc/$w1/ns/$ns")
	[ "$a" != "$b" ] || xf_fail "worker shares the parent's $ns namespace"
done
r1=/proc/$w1/root
[ -f "$r1$W/e1/f1" ] || xf_fail "vm1's worker does not see its export"
[ ! -e "$r1$W/e2" ] || xf_fail "vm1's worker sees vm2's export"
[ ! -e "$r1$W/host" ] || xf_fail "vm1's worker sees the host's files"
[ ! -e "$r1/etc/passwd" ] || xf_fail "vm1's worker sees /etc"
[ ! -e "$r1/usr/bin" ] || xf_fail "vm1's worker sees /usr"
[ -f "/proc/$w2/root$W/e2/f2" ] || xf_fail "vm2's worker lacks its export"
[ ! -e "/proc/$w2/root$W/e1" ] || xf_fail "vm2's worker sees vm1's export"
# e3 is vm2's (ro): in vm2's namespace, read-only; not in vm1's
[ -f "/proc/$w2/root$W/e3/f3" ] || xf_fail "vm2's worker lacks e3"
[ ! -e "$r1$W/e3" ] || xf_fail "vm1's worker sees e3"
grep -q " $W/e3 .* ro," "/proc/$w2/mountinfo" ||
	grep -q " $W/e3 ro," "/proc/$w2/mountinfo" ||
	xf_fail "vm2's read-only export is not mounted read-only in its worker"
ps -o pid= -p "$w1" >/dev/null || xf_fail "worker vanished"

n=0
for pid in "$w1" "$w2"; do
	for st in /proc/"$pid"/task/*/status; do
		xf_assert_eq "$(awk '/^NoNewPrivs:/ { print $2 }' "$st")" 1 \
			"NoNewPrivs of $st"
		xf_assert_eq "$(awk '/^CapBnd:/ { print $2 }' "$st")" \
			00000000880000df "CapBnd of $st"
		# every thread: the process filter; queue threads add theirs
		xf_assert_eq "$(awk '/^Seccomp:/ { print $2 }' "$st")" 2 \
			"Seccomp of $st"
		f=$(awk '/^Seccomp_filters:/ { print $2 }' "$st")
		[ "${f:-1}" -ge 2 ] || continue
		n=$((n + 1))
		xf_assert_eq "$(awk '/^CapEff:/ { print $2 }' "$st")" \
			00000000880000df "CapEff of $st"
	done
done
[ "$n" -ge 4 ] || xf_fail "only $n queue threads under seccomp"

# guest memory: mapped by the workers, never by the parent
grep -q xenfs-region "/proc/$w1/maps" || xf_fail "vm1's worker maps no ring"
if grep -q xenfs-region "/proc/$XF_BACKEND_PID/maps"; then
	xf_fail "the privileged parent maps guest memory"
fi
grep -q ' rw-p .*\[heap\]' "/proc/$XF_BACKEND_PID/maps" || true

# ---- a worker that dies takes only its own domain down ----
kill -9 "$w1"
xf_expect_log "worker vm1 \\(pid $w1\\) killed by signal 9"
cat "$W/m2/f2" >/dev/null || xf_fail "vm2 not served after vm1's worker died"
echo more >"$W/m2/more" || xf_fail "vm2 cannot write after vm1's worker died"
if cat "$W/m1/f1" >/dev/null 2>&1; then
	xf_fail "vm1's mount still answers without a worker"
fi
xf_umount "$W/m1"
xf_mount "$(xf_sock vm1)" e1 "$W/m1"
xf_assert_eq "$(cat "$W/m1/f1")" one "vm1 served by a new worker"
w1b=$(worker_of vm1)
[ -n "$w1b" ] && [ "$w1b" != "$w1" ] || xf_fail "no new worker for vm1"

# ---- reload: vm1 gets e3 -> a new worker for its next connection ----
conf "vm2:ro vm1:rw"
kill -HUP "$XF_BACKEND_PID"
xf_expect_log "worker vm1 \\(pid $w1b\\): the domain's exports changed"
xf_mount "$(xf_sock vm1)" e3 "$W/m3"
xf_assert_eq "$(cat "$W/m3/f3")" three "vm1 reads e3 after the reload"
xf_assert_eq "$(cat "$W/m1/f1")" one "vm1's older mount still served"
w1c=$(workers_of vm1 | grep -vx "$w1b" | head -1)
[ -n "$w1c" ] || xf_fail "no second worker for vm1"
[ -f "/proc/$w1c/root$W/e3/f3" ] || xf_fail "the new worker lacks e3"
xf_umount "$W/m1"
xf_expect_log "worker vm1 \\(pid $w1b\\) exited"
xf_assert_eq "$(cat "$W/m3/f3")" three "e3 still served"
xf_umount "$W/m3"
xf_umount "$W/m2"
for p in $(pgrep -P "$XF_BACKEND_PID"); do kids="${kids:-} $p"; done
xf_stop_backend
for p in ${kids:-}; do
	kill -0 "$p" 2>/dev/null && xf_fail "worker $p outlived its parent"
done

# ---- --no-sandbox: loud, and the probe does not run ----
: >"$XF_LOG"
xf_start_backend "$XF_CONF" --no-sandbox
xf_expect_log "no-sandbox: every guest is served inside this one privileged process, NOT confined"
xf_mount "$(xf_sock vm1)" e1 "$W/m1"
cat "$W/m1/f1" >/dev/null || xf_fail "--no-sandbox does not serve"
if pgrep -P "$XF_BACKEND_PID" >/dev/null; then
	xf_fail "--no-sandbox started worker processes"
fi
xf_expect_no_log "sandbox probe"
xf_umount "$W/m1"
xf_log "ok: per-domain worker processes, $n confined queue threads"
exit 0
