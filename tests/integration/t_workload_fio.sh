#!/usr/bin/env bash
# t_workload_fio.sh: data integrity under fio on a XenFS mount.  Every job
# writes with verify=crc32c (verify_fatal): sequential 1 MiB writes, random
# 4 KiB writes, four jobs writing disjoint regions of one file at once
# (numjobs + offset_increment), the mmap engine, and libaio with O_DIRECT.
# Afterwards the data is verified again with verify_only, once through the
# mount and once straight from the export directory on the host.
# timeout: 900
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-guest.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_cmd fio
xf_need_bin xenfsd mount.xenfs
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || xf_skip "needs python3"

ok() { xf_log "ok: $*"; }
t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 ))s"; }

xf_shared_setup
xf_shared_mount

# jobfile DIR: the job set, data files under DIR.  Sizes add up to 224 MiB.
jobfile()
{
	cat <<JOB
[global]
directory=$1
verify=crc32c
verify_fatal=1
do_verify=1
randrepeat=1
ioengine=psync
fsync_on_close=1

[seqwrite]
filename=seq.dat
rw=write
bs=1M
size=64M

[randwrite]
stonewall
filename=rand.dat
rw=randwrite
bs=4k
size=32M

[shared4]
stonewall
filename=shared.dat
rw=write
bs=64k
size=16M
numjobs=4
offset_increment=16M

[mmap]
stonewall
filename=mmap.dat
ioengine=mmap
rw=randwrite
bs=4k
size=32M

[direct]
stonewall
filename=direct.dat
ioengine=libaio
direct=1
iodepth=8
rw=randwrite
bs=16k
size=32M
JOB
}

# check_json FILE WHAT: every job ran without error and moved its bytes
check_json()
{
	"$PY" - "$1" "$2" <<'PYEOF'
import json, sys
path, what = sys.argv[1], sys.argv[2]
text = open(path).read()
doc = json.loads(text[text.index("{"):])
bad = 0
for j in doc["jobs"]:
    name, err = j["jobname"], j["error"]
    w, r = j["write"]["io_bytes"], j["read"]["io_bytes"]
    print(f"  {what} {name}: error={err} written={w >> 20}MiB read={r >> 20}MiB")
    if err:
        bad += 1
    if what == "write" and w == 0:
        print(f"  {name}: wrote nothing"); bad += 1
    if r == 0:
        print(f"  {name}: read (verified) nothing"); bad += 1
sys.exit(1 if bad else 0)
PYEOF
}

jobfile "$M" >"$W/write.fio"
# fio drops its verify state files (*-verify.state) into the current
# directory: keep them in the work dir, not wherever the runner started
cd "$W" || xf_fail "cd $W"
if ! fio --output-format=json --output="$W/write.json" "$W/write.fio" \
    >"$W/write.out" 2>&1; then
	tail -n 30 "$W/write.out" "$W/write.json" >&2
	xf_fail "fio write+verify jobs failed"
fi
check_json "$W/write.json" write || xf_fail "fio job errors (see above)"
grep -qi 'verify.*bad\|bad magic\|crc32c.*fail' "$W/write.out" &&
    xf_fail "fio reported verification errors: $(grep -i bad "$W/write.out" | head -3)"
ok "fio write+verify: seq, random, 4 jobs on one file, mmap, libaio O_DIRECT ($(elapsed))"

for f in seq rand shared mmap direct; do
	[ -s "$EXP/$f.dat" ] || xf_fail "$f.dat missing on the host"
done
xf_assert_eq "$(stat -c %s "$EXP/shared.dat")" $((64 * 1024 * 1024)) \
    "size of the file written by 4 jobs"

# verify again, through the mount, after dropping the guest's caches
sync
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
jobfile "$M" | sed 's/^do_verify=1$/verify_only=1/' >"$W/verify.fio"
if ! fio --output-format=json --output="$W/verify.json" "$W/verify.fio" \
    >"$W/verify.out" 2>&1; then
	tail -n 30 "$W/verify.out" "$W/verify.json" >&2
	xf_fail "fio verify_only through the mount failed"
fi
check_json "$W/verify.json" verify || xf_fail "fio verify_only job errors"
ok "fio verify_only through the mount ($(elapsed))"

# and straight from the export directory on the host
jobfile "$EXP" | sed 's/^do_verify=1$/verify_only=1/' >"$W/host.fio"
if ! fio --output-format=json --output="$W/host.json" "$W/host.fio" \
    >"$W/host.out" 2>&1; then
	tail -n 30 "$W/host.out" "$W/host.json" >&2
	xf_fail "fio verify_only of the host export failed"
fi
check_json "$W/host.json" verify || xf_fail "fio verify_only (host) job errors"
ok "fio verify_only of the export directory on the host ($(elapsed))"

# negative control: verify_only must notice one corrupted byte, or the
# checks above prove nothing
printf 'X' | dd of="$EXP/seq.dat" bs=1 seek=$((3 * 1024 * 1024 + 4321)) \
    conv=notrunc status=none || xf_fail "corrupt seq.dat"
"$PY" - "$W/host.fio" >"$W/seq.fio" <<'PYEOF'
import sys
out, keep = [], True
for line in open(sys.argv[1]).read().splitlines():
    if line.startswith("[") and line not in ("[global]", "[seqwrite]"):
        keep = False
    elif line.startswith("["):
        keep = True
    if keep:
        out.append(line)
print("\n".join(out))
PYEOF
if fio "$W/seq.fio" >"$W/corrupt.out" 2>&1; then
	xf_fail "fio verify_only did not detect a corrupted byte (check is vacuous)"
fi
ok "negative control: verify_only detects one corrupted byte"

rm -f "$M"/*.dat || xf_fail "rm data files"
kill -0 "$XF_BACKEND_PID" || xf_fail "xenfsd died"
xf_umount "$M"
# clean shutdown, and no sanitizer report from xenfsd (SANITIZE= builds)
xf_stop_backend
xf_expect_no_log 'Sanitizer|runtime error:'
xf_log "PASS"
