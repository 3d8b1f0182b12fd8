#!/usr/bin/env bash
# timeout: 150
# xenfs-scan full and the CLI's contract (issue 6): files planted by dom0
# directly in an export (no daemon running) are found and acted on per
# the VM's policy; the scan resumes from its checkpoint; a progress bar
# shows on a tty; exports the VM cannot access are not scanned;
# exclusions and max-file-size apply; --help and exit codes; status and
# report without a running plugin; and with no signature database the
# scanner refuses to start (plugin init and full), naming the directory
# and freshclam.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root
xf_need_bin xenfs-scan xenfs-scand xenfs-services

EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
mkdir -p "$W/shared/a/b" "$W/shared/p" "$W/home2" "$W/state" "$W/db" "$W/empty-db" \
	"$W/shared/cache"
chmod 755 "$W/db" "$W/empty-db"
hex=$(printf '%s' 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE' | od -An -tx1 |
	tr -d ' \n')
echo "Xenfs.Test.EICAR:0:*:$hex" >"$W/db/xenfs-test.ndb"
printf 'planted by dom0, xenfs test sample\n' >"$W/sample"
echo "$(md5sum <"$W/sample" | cut -d' ' -f1):$(stat -c %s "$W/sample"):Xenfs.Test.Planted" \
	>"$W/db/xenfs-test.hdb"
chmod 644 "$W/db"/*
for i in $(seq 200); do echo "file $i" >"$W/shared/a/f$i.txt"; done
cp "$W/sample" "$W/shared/p/planted.bin"
printf '%s' "$EICAR" >"$W/shared/zz-eicar.txt"
printf '%s' "$EICAR" >"$W/shared/cache/excluded.com"
printf '%s' "$EICAR" >"$W/shared/image.iso"
{ printf '%s' "$EICAR"; head -c 2M /dev/zero; } >"$W/shared/big.bin"
printf '%s' "$EICAR" >"$W/home2/other-vm.com"

conf() {
	xf_config "$1" <<EOF
[global]
control-socket = $W/control.sock
state-dir = $W/state

[export shared]
path = $W/shared
access = vm1:rw

[export home2]
path = $W/home2
access = vm2:rw

[domain vm1]
scan-action = quarantine

[domain vm2]

[services]
plugins = scanner
plugin-dir = $O/lib/xenfs

[scan]
action = log
exclude = /cache/* *.iso
max-file-size = 1M
database = $2
quarantine-dir = $W/quarantine
EOF
}
conf xenfs.conf "$W/db"
C=$XF_CONF
scan() { "$BIN/xenfs-scan" -c "$C" "$@"; }

# ---- CLI contract ----
scan --help | grep -q "^usage: xenfs-scan" || xf_fail "--help"
scan --help >/dev/null; xf_assert_eq $? 0 "--help exit"
scan frobnicate 2>/dev/null; xf_assert_eq $? 2 "unknown command exit"
scan full 2>/dev/null; xf_assert_eq $? 2 "full without VM exit"
scan full nosuchvm 2>/dev/null; xf_assert_eq $? 2 "full unknown VM exit"
scan report --since yesterday-ish 2>/dev/null; xf_assert_eq $? 2 "bad date exit"
scan release abc 2>/dev/null; xf_assert_eq $? 2 "bad ID exit"
"$BIN/xenfs-scan" -c "$W/nope.conf" status 2>/dev/null; xf_assert_eq $? 3 "missing config exit"
[ "$(scan report)" = "no detections" ] || xf_fail "report before any scan"

# ---- resume: a checkpoint from an interrupted run is honoured ----
# vm2 first (action log): found, left in place; it creates the database
scan full vm2 --quiet >/dev/null 2>&1; xf_assert_eq $? 1 "vm2 full"
[ -e "$W/home2/other-vm.com" ] || xf_fail "log action moved the file"
sqlite3 "$W/state/scanner/scan.db" "INSERT OR REPLACE INTO fullscan
	VALUES('vm1', 0, 0, '0' || char(9) || '/a/f150.txt', 0, 0, 0, 0);" ||
	xf_fail "sqlite3"
scan full vm1 --quiet >"$W/out" 2>"$W/err"; rc=$?
xf_assert_eq "$rc" 1 "full exit status with detections"
grep -q "resuming the full scan of vm1 after /a/f150.txt" "$W/err" ||
	xf_fail "did not resume: $(cat "$W/err")"
# files after /a/f150.txt in walk order (names sorted): f151.txt ...
# f99.txt, p/planted.bin, zz-eicar.txt: fewer than the 200 + 2 there are
n=$(sed -n 's/.*: \([0-9]*\) files.*/\1/p' "$W/out")
[ -n "$n" ] && [ "$n" -lt 200 ] && [ "$n" -gt 100 ] ||
	xf_fail "resumed scan covered $n files: $(cat "$W/out")"
grep -q "2 infected" "$W/out" || xf_fail "full: $(cat "$W/out")"
grep -q "3 skipped" "$W/out" || xf_fail "max-file-size + exclusions: $(cat "$W/out")"

# ---- planted files found, per-VM action (vm1: quarantine) ----
[ -e "$W/shared/p/planted.bin" ] && xf_fail "planted file not quarantined"
[ -e "$W/shared/zz-eicar.txt" ] && xf_fail "planted EICAR not quarantined"
scan report --vm vm1 | grep -q "quarantined .*Xenfs.Test.Planted.*shared:/p/planted.bin" ||
	{ scan report >&2; xf_fail "report lacks the planted file"; }
scan report --json | grep -q '"source":"full"' || xf_fail "source not full"
[ -e "$W/shared/cache/excluded.com" ] || xf_fail "excluded dir scanned"
[ -e "$W/shared/image.iso" ] || xf_fail "excluded glob scanned"
scan report --vm vm1 | grep -q "other-vm.com" && xf_fail "scanned another VM's export"
grep -q "shared:/zz-eicar.txt: infected" "$W/err" || xf_fail "detection not logged"
# a second run starts over (the last one finished): what the resumed run
# scanned comes from the cache, the first 58 files are scanned now
scan full vm1 --quiet >"$W/out"; rc=$?
xf_assert_eq "$rc" 0 "clean full exit status"
grep -q "200 files.* 142 from cache" "$W/out" || xf_fail "cache not used: $(cat "$W/out")"
scan full vm1 --quiet >"$W/out"
grep -q "200 files.* 200 from cache" "$W/out" || xf_fail "cache not used: $(cat "$W/out")"

# ---- interrupted: progress saved, the next run resumes ----
mkdir -p "$W/shared/q"
for i in $(seq 3000); do echo "more $i" >"$W/shared/q/m$i"; done
# (a background job of a script ignores SIGINT: stop it with SIGTERM)
XENFS_SCAN_TEST_DELAY_MS=1 "$BIN/xenfs-scan" -c "$C" full vm1 --quiet \
	--no-nice >"$W/out" 2>"$W/err" &
fp=$!
sleep 0.5
kill -TERM "$fp"
wait "$fp"; rc=$?
if [ "$rc" = 3 ]; then
	grep -q "interrupted: progress saved" "$W/err" || xf_fail "interrupt message"
	scan full vm1 --quiet >"$W/out" 2>"$W/err"
	xf_assert_eq $? 0 "resumed run"
	grep -q "resuming the full scan of vm1 after /" "$W/err" ||
		xf_fail "not resumed after SIGINT: $(cat "$W/err")"
else
	xf_log "the full scan finished before SIGINT (rc $rc): resume untested"
fi
grep -q "full scan of vm1: 3200 files" "$W/out" || xf_fail "files lost or counted twice: $(cat "$W/out")"

# ---- the engine killed in the middle: restarted, nothing lost ----
sqlite3 "$W/state/scanner/scan.db" "DELETE FROM verdicts WHERE result=0" ||
	xf_fail "sqlite3"	# so every file is scanned again
XENFS_SCAN_TEST_DELAY_MS=1 "$BIN/xenfs-scan" -c "$C" full vm1 --restart \
	--quiet --no-nice >"$W/out" 2>"$W/err" &
fp=$!
sleep 0.5
eng=$(pgrep -P "$fp" xenfs-scand)
[ -n "$eng" ] || xf_fail "no engine process to kill"
kill -9 "$eng"
timeout 60 tail --pid="$fp" -f /dev/null
wait "$fp"; rc=$?
xf_assert_eq "$rc" 0 "full scan with the engine killed"
grep -q "full scan of vm1: 3200 files.* 0 from cache.* 0 errors" "$W/out" ||
	xf_fail "engine kill lost files: $(cat "$W/out" "$W/err")"

# ---- progress bar on a tty ----
script -qec "'$BIN/xenfs-scan' -c '$C' full vm1 --restart" /dev/null \
	>"$W/tty" 2>&1 </dev/null
grep -q '\[#.*100%' "$W/tty" || xf_fail "no progress bar on a tty: $(cat -v "$W/tty" | head -5)"

# ---- status without a running plugin ----
scan status | grep -q "plugin: *not running" || xf_fail "status: plugin"
scan status | grep -q "signatures: *2 from $W/db" || { scan status >&2; xf_fail "status: signatures"; }
scan status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["detections"] == 3, d' ||
	xf_fail "status --json"

# ---- no database: a clear refusal, never a scanner passing everything ----
conf nodb.conf "$W/empty-db"
"$BIN/xenfs-scan" -c "$XF_CONF" full vm1 >/dev/null 2>"$W/err"; rc=$?
xf_assert_eq "$rc" 3 "full without a database"
grep -q "no ClamAV signature database in $W/empty-db: run freshclam" "$W/err" ||
	xf_fail "no-database message: $(cat "$W/err")"
"$BIN/xenfs-services" -c "$XF_CONF" -f >"$W/services.log" 2>&1 </dev/null &
XF_DAEMONS+=("$!")
xf_wait_until 10 grep -q "init" "$W/services.log" || xf_fail "services host did not try the plugin"
grep -q "scanner: no ClamAV signature database in $W/empty-db: run freshclam" "$W/services.log" ||
	xf_fail "plugin init message: $(cat "$W/services.log")"
[ -S "$W/state/services/verdict-scanner.sock" ] && xf_fail "a scanner without signatures answers verdicts"
exit 0
