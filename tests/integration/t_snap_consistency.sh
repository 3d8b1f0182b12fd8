#!/usr/bin/env bash
# timeout: 150
# xenfs-snapshot consistency: a guest writer keeps appending numbered
# 64-byte records (one write(2) each, never fsynced) while a snapshot is
# taken every second.  Every snapshot must restore to a prefix of the
# records with no torn record at the end, prefixes must grow, and the
# writer must never see an error; each snapshot holds at least what the
# guest had written (unsynced) before it started.  freeze-copy-max is tiny so the log is
# read after the thaw and re-captured under a second freeze when it
# changed meanwhile (the optimistic path of capture.c).
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_cmd python3
xf_need_bin xenfsd mount.xenfs xenfsctl xenfs-snapshot
xf_config_std
printf '\n[snapshot]\nrepository = %s\nfreeze-copy-max = 4K\n' "$W/repo" \
    >>"$XF_CONF"
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" shared "$W/mnt"
SNAP=("$BIN/xenfs-snapshot" -c "$XF_CONF" -q)

# the writer: runs until $W/stop exists, exits 1 on any error
python3 - "$W/mnt/log" "$W/stop" "$W/writer.count" <<'PY' 2>"$W/writer.err" &
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
n = 0
while not os.path.exists(sys.argv[2]):
    rec = ("%08d " % n).encode() + b"x" * 54 + b"\n"
    assert len(rec) == 64
    if os.write(fd, rec) != 64:
        sys.exit("short write")
    n += 1
    if n % 50 == 0:
        time.sleep(0.001)
os.close(fd)
open(sys.argv[3], "w").write(str(n))
PY
WR=$!
xf_wait_until 20 test -s "$W/mnt/log" || xf_fail "the writer did not start"
# before each: how much the guest had written (its own view, dirty
# pages included): the snapshot must hold at least that
for i in 1 2 3 4 5 6; do
	stat -c %s "$W/mnt/log" >>"$W/sizes"
	"${SNAP[@]}" vm1 --export shared --json >>"$W/takes" ||
		xf_fail "snapshot $i failed"
	sleep 1
done
touch "$W/stop"
wait "$WR" || xf_fail "the writer saw an error: $(cat "$W/writer.err")"
total=$(cat "$W/writer.count")
xf_log "writer appended $total records"

prev=0
exec 8<"$W/sizes"
for id in $("${SNAP[@]}" list vm1 --json |
    python3 -c 'import json,sys; [print(s["id"]) for s in json.load(sys.stdin)]'); do
	rm -rf "$W/r"
	"${SNAP[@]}" restore vm1 "$id" /log --to "$W/r" ||
		xf_fail "restore of snapshot $id"
	n=$(python3 - "$W/r/log" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
if len(d) % 64:
    sys.exit("torn record: size %d" % len(d))
for i in range(len(d) // 64):
    want = ("%08d " % i).encode() + b"x" * 54 + b"\n"
    if d[i * 64:(i + 1) * 64] != want:
        sys.exit("record %d is wrong" % i)
print(len(d) // 64)
PY
) || xf_fail "snapshot $id is not a prefix of the records: $n"
	read -r -u 8 before
	[ $((n * 64)) -ge "$before" ] ||
		xf_fail "snapshot $id has $n records, the guest had written $before bytes before it"
	[ "$n" -ge "$prev" ] || xf_fail "snapshot $id has $n records, fewer than $prev"
	[ "$n" -le "$total" ] || xf_fail "snapshot $id has more records than written"
	prev=$n
done
[ "$prev" -gt 0 ] || xf_fail "no records in any snapshot"
python3 -c '
import json, sys
for l in open(sys.argv[1]):
    j = json.loads(l)
    assert j["freeze_ms"] < 5000, j' "$W/takes" || xf_fail "freeze too long"
"$BIN/xenfsctl" -c "$XF_CONF" guests | grep -Eq '^vm1 .* yes ' &&
	xf_fail "vm1 left frozen"
exit 0
