#!/usr/bin/env bash
# timeout: 90
# Verdict hook: with [scan] on-open and a plugin implementing verdict
# (test-deny: denies paths containing "deny", stalls on "slow"), a denied
# open fails with EACCES in the guest, the answer is cached until the file
# changes, and a timeout or a missing services host falls back to the
# domain's policy: vm1 fail-closed, vm2 fail-open ([scan] fail).
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfsctl xenfs-services
mkdir -p "$W/shared" "$W/state"
xf_config xenfs.conf <<EOF
[global]
control-socket = $W/control.sock
state-dir = $W/state

[export shared]
path = $W/shared
access = vm1:rw vm2:ro

[domain vm1]
local-socket = $(xf_sock vm1)
scan-fail = closed

[domain vm2]
local-socket = $(xf_sock vm2)

[services]
plugins = test-deny
plugin-dir = $O/lib/xenfs
verdict-timeout-ms = 1000

[scan]
on-open = yes
fail = open
EOF
for f in ok ok2 ok3 deny slow; do echo "$f" >"$W/shared/$f.txt"; done
xf_start_backend "$XF_CONF"
"$BIN/xenfs-services" -c "$XF_CONF" -f -v >>"$W/services.log" 2>&1 \
    </dev/null &
SVC=$!
XF_DAEMONS+=("$SVC")
xf_wait_until 10 test -S "$W/state/services/verdict-test-deny.sock" ||
	xf_fail "verdict socket did not appear"
xf_mount "$(xf_sock vm1)" shared "$W/m1"
xf_mount "$(xf_sock vm2)" shared "$W/m2"
CALLS=$W/state/test-deny/calls
ncalls() { grep -c "$1" "$CALLS" 2>/dev/null || echo 0; }

cat "$W/m1/ok.txt" >/dev/null || xf_fail "allowed file cannot be opened"
if cat "$W/m1/deny.txt" >/dev/null 2>"$W/err"; then
	[ "$(ncalls deny)" = 0 ] &&
		xf_skip "the fs layer does not call bk_verdict_check in OPEN yet"
	xf_fail "denied file was opened"
fi
grep -q "Permission denied" "$W/err" || xf_fail "deny is not EACCES: $(cat "$W/err")"
[ "$(ncalls "vm1 shared /deny.txt")" = 1 ] || xf_fail "verdict not asked once"
cat "$W/m1/deny.txt" >/dev/null 2>&1 && xf_fail "second open allowed"
[ "$(ncalls "vm1 shared /deny.txt")" = 1 ] || xf_fail "verdict not cached"
cat "$W/m1/ok.txt" >/dev/null || xf_fail "ok.txt second open"
[ "$(ncalls "vm1 shared /ok.txt")" = 1 ] || xf_fail "allow not cached"
# a change (ctime) invalidates the cache entry
touch "$W/shared/deny.txt"
cat "$W/m1/deny.txt" >/dev/null 2>&1 && xf_fail "changed denied file opened"
[ "$(ncalls "vm1 shared /deny.txt")" = 2 ] || xf_fail "changed file not re-asked"

# timeout: vm1 is fail-closed, vm2 fail-open
t0=$(date +%s%N)
cat "$W/m1/slow.txt" >/dev/null 2>&1 && xf_fail "vm1 (fail-closed) opened on timeout"
t1=$(date +%s%N)
[ $(( (t1 - t0) / 1000000 )) -lt 2900 ] || xf_fail "timeout not applied"
sleep 3		# test-deny is single-threaded: let it finish the slow one
cat "$W/m2/slow.txt" >/dev/null 2>&1 || true	# may be answered or time out
sleep 3
# no services host at all: policy decides again (nothing cached)
kill -9 "$SVC"; wait "$SVC" 2>/dev/null
sleep 0.5
cat "$W/m1/ok2.txt" >/dev/null 2>&1 && xf_fail "vm1 opened without services host"
cat "$W/m2/ok3.txt" >/dev/null || xf_fail "vm2 (fail-open) refused without services host"
xf_expect_log "fail-closed, open denied"
exit 0
