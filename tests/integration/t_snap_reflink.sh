#!/usr/bin/env bash
# timeout: 120
# xenfs-snapshot on a filesystem with reflinks (XFS, reflink=1, on a loop
# device): a big file the guest keeps appending to is cloned (FICLONE)
# while the domain is frozen, so the snapshot needs one freeze, copies
# nothing while frozen, and the clone's content is the point-in-time one
# (a prefix of whole records).  Skips without mkfs.xfs or loop devices.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_cmd python3 mkfs.xfs losetup
xf_need_bin xenfsd mount.xenfs xenfsctl xenfs-snapshot
grep -qw xfs /proc/filesystems || modprobe xfs 2>/dev/null ||
	xf_skip "no XFS in this kernel"
truncate -s 400M "$W/xfs.img"
mkfs.xfs -q -m reflink=1 "$W/xfs.img" >/dev/null 2>&1 || xf_skip "mkfs.xfs failed"
mkdir -p "$W/x"
mount -o loop "$W/xfs.img" "$W/x" 2>/dev/null || xf_skip "cannot loop-mount"
mkdir -p "$W/x/export" "$W/state"
xf_config xenfs.conf <<EOF
[global]
control-socket = $W/control.sock
state-dir = $W/state

[export big]
path = $W/x/export
access = vm1:rw

[domain vm1]
local-socket = $(xf_sock vm1)

[snapshot]
repository = $W/x/repo
freeze-copy-max = 0
EOF
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" big "$W/mnt"
SNAP=("$BIN/xenfs-snapshot" -c "$XF_CONF" -q)

# 4 MB of records, then keep appending while snapshots are taken
python3 - "$W/mnt/log" "$W/stop" <<'PY' 2>"$W/writer.err" &
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
rec = lambda n: ("%08d " % n).encode() + b"r" * 54 + b"\n"
n = 0
while n < 65536:                        # 4 MB in big writes first
    os.write(fd, b"".join(rec(n + i) for i in range(4096)))
    n += 4096
while not os.path.exists(sys.argv[2]):
    os.write(fd, rec(n))
    n += 1
PY
WR=$!
big_enough() { [ "$(stat -c %s "$W/mnt/log" 2>/dev/null || echo 0)" -gt 4194304 ]; }
xf_wait_until 60 big_enough ||
	xf_fail "writer too slow"
"${SNAP[@]}" vm1 --json >"$W/t1" || xf_fail "snapshot 1"
"${SNAP[@]}" vm1 --json >"$W/t2" || xf_fail "snapshot 2"
touch "$W/stop"
wait "$WR" || xf_fail "writer failed: $(cat "$W/writer.err")"
for f in "$W/t1" "$W/t2"; do
	python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["reflinked"] >= 1, j
assert j["rounds"] == 1, j' "$f" || xf_fail "no reflink or two rounds: $(cat "$f")"
done
[ -z "$(ls "$W/x/repo/staging")" ] || xf_fail "staging not emptied"
for id in $("${SNAP[@]}" list vm1 --json |
    python3 -c 'import json,sys; [print(s["id"]) for s in json.load(sys.stdin)]'); do
	rm -rf "$W/r"
	"${SNAP[@]}" restore vm1 "$id" /log --to "$W/r" || xf_fail "restore $id"
	python3 - "$W/r/log" <<'PY' || xf_fail "snapshot $id is not a prefix of whole records"
import sys
d = open(sys.argv[1], "rb").read()
assert len(d) % 64 == 0, len(d)
for i in range(0, len(d) // 64, 997):
    assert d[i * 64:i * 64 + 9] == ("%08d " % i).encode(), i
PY
done
"${SNAP[@]}" check >/dev/null || xf_fail "check"
xf_umount "$W/mnt"
xf_stop_backend
umount "$W/x" || umount -l "$W/x"
exit 0
