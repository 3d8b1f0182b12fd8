#!/usr/bin/env bash
# t_sandbox.sh: from inside a sandboxed worker (the thread that serves a
# guest) the other domains' exports and the host filesystem are not
# reachable.  XENFSD_SANDBOX_PROBE makes each worker, once confined, try
# to open a list of paths (and to open a network socket, mount, fork) and
# log the result.  Also: the worker threads
# run with no_new_privs, a seccomp filter and only the fs capabilities
# (CapEff/CapBnd 0x880000df), the main thread is unchanged, and
# --no-sandbox says loudly that nothing is confined.
# timeout: 90
. "$(dirname "$0")/../lib.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_bin xenfsd mount.xenfs

mkdir -p "$W/e1" "$W/e2" "$W/state" "$W/host"
echo one >"$W/e1/f1"
echo two >"$W/e2/f2"
echo host >"$W/host/h"
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

[domain vm1]
local-socket = $(xf_sock vm1)

[domain vm2]
local-socket = $(xf_sock vm2)
CONF
export XENFSD_SANDBOX_PROBE="$W/e1/f1:$W/e2/f2:/etc/passwd:$W/host/h:/proc/1/environ:@inet:@mount:@fork"
xf_start_backend "$XF_CONF"
xf_expect_log "workers are sandboxed"
xf_mount "$(xf_sock vm1)" e1 "$W/m1"
xf_mount "$(xf_sock vm2)" e2 "$W/m2"
cat "$W/m1/f1" >/dev/null && cat "$W/m2/f2" >/dev/null ||
	xf_fail "guests cannot read their own exports"
echo new >"$W/m1/new" || xf_fail "write through a sandboxed worker"

xf_expect_log "sandbox probe vm1: $W/e1/f1: ok"
xf_expect_log "sandbox probe vm1: $W/e2/f2: Permission denied"
xf_expect_log "sandbox probe vm1: /etc/passwd: Permission denied"
xf_expect_log "sandbox probe vm1: $W/host/h: Permission denied"
xf_expect_log "sandbox probe vm1: /proc/1/environ: Permission denied"
xf_expect_log "sandbox probe vm1: @inet: Operation not permitted"
xf_expect_log "sandbox probe vm1: @mount: Operation not permitted"
xf_expect_log "sandbox probe vm1: @fork: Operation not permitted"
xf_expect_log "sandbox probe vm2: $W/e2/f2: ok"
xf_expect_log "sandbox probe vm2: $W/e1/f1: Permission denied"

# the threads themselves
conf=0
for st in /proc/"$XF_BACKEND_PID"/task/*/status; do
	sc=$(awk '/^Seccomp:/ { print $2 }' "$st")
	[ "$sc" = 2 ] || continue
	conf=$((conf + 1))
	xf_assert_eq "$(awk '/^NoNewPrivs:/ { print $2 }' "$st")" 1 "NoNewPrivs"
	xf_assert_eq "$(awk '/^CapEff:/ { print $2 }' "$st")" 00000000880000df "CapEff"
	xf_assert_eq "$(awk '/^CapBnd:/ { print $2 }' "$st")" 00000000880000df "CapBnd"
done
[ "$conf" -ge 2 ] || xf_fail "no confined worker threads ($conf)"
xf_assert_eq "$(awk '/^Seccomp:/ { print $2 }' /proc/$XF_BACKEND_PID/status)" 0 \
	"main thread seccomp"
xf_umount "$W/m1"
xf_umount "$W/m2"
xf_stop_backend

# --no-sandbox: loud, and the probe does not run
: >"$XF_LOG"
xf_start_backend "$XF_CONF" --no-sandbox
xf_expect_log "no-sandbox: guest-facing workers are NOT confined"
xf_log "ok: $conf confined worker threads"
exit 0
