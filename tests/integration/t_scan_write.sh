#!/usr/bin/env bash
# timeout: 150
# Scanner, scan on write (issue 6): guests write through their mounts,
# the scanner plugin scans after close and acts per domain:
#   vm1 (action = quarantine, the [scan] default here): the EICAR file is
#       gone from the export within seconds, in quarantine-dir with its
#       metadata, in `xenfs-scan report`, and logged; `restore` brings it
#       back and it is not caught again;
#   vm3 (scan-action = block): later opens by vm2 (and vm3) get EACCES;
#       a clean file rewritten infected is caught, an infected one
#       rewritten clean is released; `release ID` lifts a block;
#   vm4 (scan-action = log): the file stays and is reported (and is
#       marked deleted when the guest removes it);
#   dom0 writing into the export directly: caught through xenfsd's
#       watcher, reported as dom0.
# XF_SCAN_ON_OPEN=no (t_scan_block_noopen.sh) runs it all without on-open
# checks: blocking must still deny opens.
# Signatures come from a database the test generates (.ndb for the EICAR
# string, .hdb for a file it makes).
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfs-services xenfs-scan xenfs-scand
[ -f "$O/lib/xenfs/scanner.so" ] || xf_fail "scanner.so not built"

EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
mkdir -p "$W/shared" "$W/state" "$W/db"
# unix socket paths are short: reach the state dir through /tmp
ST=$(mktemp -u /tmp/xfscan.XXXXXX)
ln -s "$W/state" "$ST" || xf_fail "symlink $ST"
trap 'rc=$?; rm -f "$ST"; (exit $rc); xf_cleanup' EXIT
chmod 755 "$W/db"
hex=$(printf '%s' 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE' | od -An -tx1 |
	tr -d ' \n')
echo "Xenfs.Test.EICAR:0:*:$hex" >"$W/db/xenfs-test.ndb"
printf 'xenfs test malware payload 7\n' >"$W/payload"
echo "$(md5sum <"$W/payload" | cut -d' ' -f1):$(stat -c %s "$W/payload"):Xenfs.Test.Payload" \
	>"$W/db/xenfs-test.hdb"
chmod 644 "$W/db"/*

xf_config xenfs.conf <<EOF
[global]
control-socket = $W/control.sock
state-dir = $ST

[export shared]
path = $W/shared
access = vm1:rw vm2:rw vm3:rw vm4:rw

[domain vm1]
local-socket = $(xf_sock vm1)

[domain vm2]
local-socket = $(xf_sock vm2)

[domain vm3]
local-socket = $(xf_sock vm3)
scan-action = block

[domain vm4]
local-socket = $(xf_sock vm4)
scan-action = log

[services]
plugins = scanner
plugin-dir = $O/lib/xenfs

[scan]
on-write = yes
on-open = ${XF_SCAN_ON_OPEN:-yes}
action = quarantine
fail = open
quarantine-dir = $W/quarantine
database = $W/db
EOF
xf_start_backend "$XF_CONF"
SLOG=$W/services.log
"$BIN/xenfs-services" -c "$XF_CONF" -f -v >>"$SLOG" 2>&1 </dev/null &
XF_DAEMONS+=("$!")
xf_wait_until 20 test -S "$W/state/services/verdict-scanner.sock" || {
	cat "$SLOG" >&2; xf_fail "scanner did not start"; }
for d in vm1 vm2 vm3 vm4; do xf_mount "$(xf_sock $d)" shared "$W/$d"; done
scan() { "$BIN/xenfs-scan" -c "$XF_CONF" "$@"; }
# state of the newest detection of PATH
dstate() { scan report --json | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["path"] == sys.argv[1]]
print(rows[-1]["state"] if rows else "none")' "$1"; }
did() { scan report --json | python3 -c '
import json, sys
rows = [r for r in json.load(sys.stdin) if r["path"] == sys.argv[1]]
print(rows[-1]["id"] if rows else "")' "$1"; }
state_is() { [ "$(dstate "$1")" = "$2" ]; }
denied() { ! cat "$1" >/dev/null 2>"$W/err" &&
	grep -q "Permission denied" "$W/err"; }

# ---- vm1: quarantine ----
printf '%s' "$EICAR" >"$W/vm1/eicar.com"
xf_wait_until 10 state_is /eicar.com quarantined ||
	{ scan report >&2; tail -20 "$SLOG" >&2; xf_fail "EICAR not quarantined"; }
[ -e "$W/shared/eicar.com" ] && xf_fail "quarantined file still in the export"
id=$(did /eicar.com)
[ -f "$W/quarantine/$id" ] || xf_fail "not in quarantine-dir"
cmp -s "$W/quarantine/$id" <(printf '%s' "$EICAR") || xf_fail "quarantined content differs"
for k in "vm vm1" "path /eicar.com" "signature Xenfs.Test.EICAR" "time "; do
	grep -q "^$k" "$W/quarantine/$id.meta" || xf_fail "metadata lacks '$k'"
done
scan report | grep -q "vm1 .*quarantined .*Xenfs.Test.EICAR.*shared:/eicar.com" ||
	{ scan report >&2; xf_fail "report text"; }
scan report --vm vm4 | grep -q eicar.com && xf_fail "report --vm filter"
scan report --since 1h | grep -q eicar.com || xf_fail "report --since 1h"
scan report --since "2001-01-01" | grep -q eicar.com || xf_fail "report --since DATE"
[ "$(scan report --since @9999999999)" = "no detections" ] || xf_fail "report --since future"
grep -q "dom vm1: shared:/eicar.com: infected: Xenfs.Test.EICAR.*quarantined" "$SLOG" ||
	xf_fail "detection not logged"
# restore: back in place with its mode, and not caught again
scan restore "$id" >/dev/null || xf_fail "restore"
[ -f "$W/shared/eicar.com" ] || xf_fail "restore did not bring it back"
state_is /eicar.com restored || xf_fail "state after restore: $(dstate /eicar.com)"
sleep 2
[ -f "$W/shared/eicar.com" ] || xf_fail "restored file caught again"
xf_expect_fail scan restore "$id"
xf_expect_fail scan release 9999

# ---- vm3: block; vm2's later opens get EACCES ----
printf '%s' "$EICAR" >"$W/vm3/blocked.com"
xf_wait_until 10 state_is /blocked.com blocked || xf_fail "not blocked: $(dstate /blocked.com)"
[ -f "$W/shared/blocked.com" ] || xf_fail "blocked file was moved"
denied "$W/vm2/blocked.com" || xf_fail "vm2 opened a blocked file: $(cat "$W/err")"
denied "$W/vm3/blocked.com" || xf_fail "vm3 opened a blocked file"
# release by the admin
scan release "$(did /blocked.com)" >/dev/null || xf_fail "release"
cat "$W/vm2/blocked.com" >/dev/null || xf_fail "released file still denied"
state_is /blocked.com released || xf_fail "state after release"

# clean file rewritten infected is caught; rewritten clean, released
echo "just a document" >"$W/vm3/doc.txt"
sleep 1
cat "$W/vm2/doc.txt" >/dev/null || xf_fail "clean file denied"
state_is /doc.txt none || xf_fail "clean file reported"
cat "$W/payload" >"$W/vm3/doc.txt"
xf_wait_until 10 state_is /doc.txt blocked || xf_fail "rewritten infected not caught"
grep -q "Xenfs.Test.Payload" < <(scan report) || xf_fail "hdb signature not reported"
denied "$W/vm2/doc.txt" || xf_fail "rewritten infected file opened"
echo "clean again" >"$W/vm3/doc.txt"
xf_wait_until 10 state_is /doc.txt cleaned || xf_fail "rewritten clean not released: $(dstate /doc.txt)"
[ "$(cat "$W/vm2/doc.txt")" = "clean again" ] || xf_fail "cleaned file unreadable"

# ---- vm4: log only ----
printf '%s' "$EICAR" >"$W/vm4/logged.com"
xf_wait_until 10 state_is /logged.com logged || xf_fail "not logged"
[ -f "$W/shared/logged.com" ] || xf_fail "log action moved the file"
cat "$W/vm2/logged.com" >/dev/null || xf_fail "log action denied an open"

rm "$W/vm4/logged.com"
xf_wait_until 10 state_is /logged.com deleted || xf_fail "deleted file: $(dstate /logged.com)"

# ---- dom0 writing into the export directly: seen by xenfsd's watcher ----
printf '%s' "$EICAR" >"$W/shared/from-dom0.com"
xf_wait_until 10 state_is /from-dom0.com quarantined ||
	xf_fail "dom0's write not caught: $(dstate /from-dom0.com)"
scan report --vm dom0 | grep -q "dom0 .*shared:/from-dom0.com" ||
	{ scan report >&2; xf_fail "report --vm dom0"; }

scan status | grep -q "detections:  5" || { scan status >&2; xf_fail "status detections"; }
exit 0
