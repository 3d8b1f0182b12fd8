#!/usr/bin/env bash
# timeout: 170
# Scanner down (issue 6).  vm1 is fail-closed ([domain vm1] scan-fail),
# vm2 fail-open ([scan] fail).  With the services host (and so the
# plugin and its engine) killed: vm2's opens go through, vm1's on-open
# checks get EACCES; an infected file written meanwhile is scanned and
# blocked once the scanner is back (the cursor never moved past it), and
# vm1 can open clean files again.  Killing only the engine process
# (xenfs-scand) costs nothing either: the plugin restarts it and the
# write that was in flight is still scanned.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-guest.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfs-services xenfs-scan xenfs-scand
[ -f "$O/lib/xenfs/scanner.so" ] || xf_fail "scanner.so not built"

EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
xf_scan_prepare

xf_config xenfs.conf <<EOF
[global]
control-socket = $W/control.sock
state-dir = $ST

[export shared]
path = $W/shared
access = vm1:rw vm2:rw

[domain vm1]
local-socket = $(xf_sock vm1)
scan-fail = closed

[domain vm2]
local-socket = $(xf_sock vm2)

[services]
plugins = scanner
plugin-dir = $O/lib/xenfs
verdict-timeout-ms = 1500

[scan]
on-write = yes
on-open = yes
action = block
fail = open
database = $W/db
quarantine-dir = $W/quarantine
EOF
xf_start_backend "$XF_CONF"
SLOG=$W/services.log
start_services() {
	"$BIN/xenfs-services" -c "$XF_CONF" -f -v >>"$SLOG" 2>&1 </dev/null &
	SVC=$!
	XF_DAEMONS+=("$SVC")
	xf_wait_until 20 test -S "$ST/services/verdict-scanner.sock" || {
		cat "$SLOG" >&2; xf_fail "scanner did not start"; }
}
start_services
xf_mount "$(xf_sock vm1)" shared "$W/vm1"
xf_mount "$(xf_sock vm2)" shared "$W/vm2"
scan() { "$BIN/xenfs-scan" -c "$XF_CONF" "$@"; }
dstate() { scan report --json | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["path"] == sys.argv[1]]
print(rows[-1]["state"] if rows else "none")' "$1"; }
state_is() { [ "$(dstate "$1")" = "$2" ]; }
denied() { ! cat "$1" >/dev/null 2>"$W/err" &&
	grep -q "Permission denied" "$W/err"; }
engine_pid() { scan status --json | python3 -c '
import json, sys; print(json.load(sys.stdin)["engine_running"])'; }

echo before >"$W/vm1/before.txt"
cat "$W/vm1/before.txt" >/dev/null || xf_fail "clean file denied while up"

# ---- the whole scanner down ----
scand=$(pgrep -f "^xenfs-scand --db $W/db" | head -n1)
[ -n "$scand" ] || xf_fail "no xenfs-scand process"
[ "$(stat -c %U /proc/"$scand")" = nobody ] || xf_fail "xenfs-scand is not unprivileged"
grep -q "^NoNewPrivs:[[:space:]]*1" /proc/"$scand"/status || xf_fail "xenfs-scand may gain privileges"
grep -q "^Seccomp:[[:space:]]*2" /proc/"$scand"/status || xf_fail "xenfs-scand has no seccomp filter"
[ "$(readlink /proc/"$scand"/ns/net)" != "$(readlink /proc/self/ns/net)" ] ||
	xf_fail "xenfs-scand shares the host's network namespace"
kill -9 "$SVC"; wait "$SVC" 2>/dev/null
xf_wait_until 5 sh -c "! kill -0 $scand 2>/dev/null" || xf_fail "engine outlived its plugin"
printf '%s' "$EICAR" >"$W/vm2/while-down.com" || xf_fail "write while down"
echo "clean, written while down" >"$W/vm2/down.txt"
cat "$W/vm2/down.txt" >/dev/null || xf_fail "fail-open domain denied while scanner down"
cat "$W/vm2/while-down.com" >/dev/null || xf_fail "fail-open: unscanned file denied"
denied "$W/vm1/down.txt" || xf_fail "fail-closed domain opened an unchecked file"
denied "$W/vm1/while-down.com" || xf_fail "fail-closed domain opened an unchecked file (2)"
grep -q "fail-closed, open denied" "$XF_LOG" || xf_fail "xenfsd did not log fail-closed"

# ---- back: the backlog is scanned, nothing forgotten ----
start_services
xf_wait_until 15 state_is /while-down.com blocked ||
	{ scan report >&2; xf_fail "file written while down not scanned"; }
cat "$W/vm1/down.txt" >/dev/null || xf_fail "fail-closed domain still denied after restart"
denied "$W/vm2/while-down.com" || xf_fail "infected file opened after restart"

# ---- only the engine killed: restarted, the write still scanned ----
scand=$(pgrep -f "^xenfs-scand --db $W/db" | head -n1)
kill -9 "$scand"
printf '%s' "$EICAR" >"$W/vm2/engine-killed.com"
xf_wait_until 15 state_is /engine-killed.com blocked ||
	{ tail "$SLOG" >&2; xf_fail "write during engine restart not scanned"; }
new=$(pgrep -f "^xenfs-scand --db $W/db" | head -n1)
[ -n "$new" ] && [ "$new" != "$scand" ] || xf_fail "engine not restarted"
grep -q "engine (re)started" "$SLOG" || xf_fail "restart not logged"
exit 0
