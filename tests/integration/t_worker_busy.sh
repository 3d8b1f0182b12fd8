#!/usr/bin/env bash
# t_worker_busy.sh: a domain's worker whose main thread is busy for a
# long time (as during the quota scan of a big export at a connection)
# is neither killed by xenfsd's parent nor able to hang it.
#  - the test hook XENFSD_TEST_WORKER_STALL=2:12000 makes vm1's worker
#    sleep 12 s before it takes its second client;
#  - meanwhile vm1's first mount exists, so the parent's status sampler
#    (every 2 s, on its main loop) asks that worker for counters and gets
#    no answer: it must not kill it (it used to, after 10 s);
#  - vm2 connects and is served during the stall (the parent's loop is
#    not stuck), xenfsctl status answers;
#  - after the stall vm1's second mount completes and the first one still
#    works.
# timeout: 120
. "$(dirname "$0")/../lib.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfsctl

mkdir -p "$W/e1" "$W/e2" "$W/state"
echo one >"$W/e1/f"
echo two >"$W/e2/f"
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
export XENFSD_TEST_WORKER_STALL=2:12000
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" e1 "$W/m1"
xf_assert_eq "$(cat "$W/m1/f")" one "first vm1 mount"

# the second vm1 client: its worker stalls 12 s before taking it
mkdir -p "$W/m1b"
"$BIN/mount.xenfs" e1 "$W/m1b" -o "socket=$(xf_sock vm1)" \
    >>"$W/mount.log" 2>&1 </dev/null &
slow=$!
xf_expect_log "worker vm1: test hook: stalling 12000 ms"
t0=$(date +%s)

# the parent keeps serving: another domain connects, status answers
xf_mount "$(xf_sock vm2)" e2 "$W/m2"
xf_assert_eq "$(cat "$W/m2/f")" two "vm2 served during vm1's stall"
timeout 10 "$BIN/xenfsctl" -s "$W/control.sock" status >"$W/status" 2>&1 ||
	xf_fail "xenfsctl status during the stall: $(cat "$W/status")"
grep -q "^vm2 " "$W/status" || xf_fail "status lacks vm2"
[ $(( $(date +%s) - t0 )) -lt 10 ] ||
	xf_fail "the parent was held by the busy worker"

wait "$slow" || { cat "$W/mount.log" >&2; xf_fail "second vm1 mount failed"; }
xf_wait_until 5 xf_is_mounted "$W/m1b" || xf_fail "second vm1 mount missing"
xf_assert_eq "$(cat "$W/m1b/f")" one "second vm1 mount"
xf_assert_eq "$(cat "$W/m1/f")" one "first vm1 mount after the stall"
xf_expect_no_log "killed"
xf_umount "$W/m1b"
xf_umount "$W/m1"
xf_umount "$W/m2"
xf_log "ok: a worker busy for 12 s kept, the parent kept serving"
exit 0
