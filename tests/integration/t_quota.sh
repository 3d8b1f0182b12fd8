#!/usr/bin/env bash
# t_quota.sh: per-domain quotas.  vm1 has quota-bytes = 1M and
# quota-inodes = 20 on its export; vm2 has none on its own.
#  - vm1 filling its quota gets EDQUOT, its data stops at the limit
#    (within one 4 KiB block); vm2 is unaffected;
#  - statfs in vm1 shows 1M as the filesystem size;
#  - quota-inodes: creating the 21st entry fails;
#  - deleting frees; xenfsctl status shows usage and limit;
#  - restart keeps the count (state-dir); a lost state file is rebuilt by
#    a scan; truncate-extend, fallocate, link and copy are charged too;
#  - an export quota on an export two domains share holds for both
#    together, though each domain is served by its own worker process.
# timeout: 180
. "$(dirname "$0")/../lib.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_cmd dd stat fallocate truncate
xf_need_bin xenfsd mount.xenfs xenfsctl

mkdir -p "$W/q1" "$W/q2" "$W/qs" "$W/state"
xf_config xenfs.conf <<EOF
[global]
control-socket = $W/control.sock
state-dir = $W/state

[export q1]
path = $W/q1
access = vm1:rw

[export q2]
path = $W/q2
access = vm2:rw

[export qs]
path = $W/qs
access = vm1:rw vm2:rw
quota-bytes = 1M

[domain vm1]
local-socket = $(xf_sock vm1)
quota-bytes = 1M
quota-inodes = 20

[domain vm2]
local-socket = $(xf_sock vm2)
EOF
LIMIT=1048576

start()
{
	xf_start_backend "$XF_CONF"
	xf_mount "$(xf_sock vm1)" q1 "$W/m1"
	xf_mount "$(xf_sock vm2)" q2 "$W/m2"
}
stop()
{
	xf_umount "$W/m1"
	xf_umount "$W/m2"
	xf_stop_backend
}
start

# --- fill: EDQUOT at the limit
if dd if=/dev/zero of="$W/m1/big" bs=64k count=32 conv=fsync \
    2>"$W/dd.err"; then
	xf_fail "2M written under a 1M quota"
fi
grep -q "quota" "$W/dd.err" || { cat "$W/dd.err" >&2; xf_fail "not EDQUOT"; }
sz=$(stat -c %s "$W/q1/big")
[ "$sz" -le "$LIMIT" ] && [ "$sz" -ge $((LIMIT - 4096)) ] ||
	xf_fail "stopped at $sz bytes, want within a block of $LIMIT"
xf_expect_fail sh -c "echo x >>'$W/m1/big'"

# --- other domains unaffected
dd if=/dev/zero of="$W/m2/big" bs=64k count=32 conv=fsync 2>/dev/null ||
	xf_fail "vm2 limited by vm1's quota"
xf_assert_eq "$(stat -c %s "$W/q2/big")" 2097152 "vm2 file"

# --- statfs shows the quota
set -- $(stat -f -c '%b %S %c' "$W/m1")
xf_assert_eq $(( $1 * $2 )) $LIMIT "statfs size"
xf_assert_eq "$3" 20 "statfs inodes"

# --- xenfsctl status
"$BIN/xenfsctl" -s "$W/control.sock" status >"$W/status" 2>&1 ||
	xf_fail "xenfsctl status"
grep -Eq "^vm1 +q1 +$sz +$LIMIT +1 +20" "$W/status" ||
	{ cat "$W/status" >&2; xf_fail "status lacks the quota line"; }
"$BIN/xenfsctl" -s "$W/control.sock" status --json >"$W/status.json" 2>&1 ||
	"$BIN/xenfsctl" -s "$W/control.sock" --json status >"$W/status.json" 2>&1
grep -q "\"quota_bytes_limit\":$LIMIT" "$W/status.json" ||
	{ cat "$W/status.json" >&2; xf_fail "json lacks quota"; }

# --- deleting frees
rm "$W/m1/big" || xf_fail "rm"
dd if=/dev/zero of="$W/m1/half" bs=64k count=8 conv=fsync 2>/dev/null ||
	xf_fail "write after delete"

# --- truncate-extend, fallocate, link, copy are charged
xf_expect_fail truncate -s 2M "$W/m1/half"
xf_assert_eq "$(stat -c %s "$W/q1/half")" 524288 "truncate refused"
truncate -s 600K "$W/m1/half" || xf_fail "truncate within quota"
xf_expect_fail fallocate -l 2M "$W/m1/fa"
xf_expect_fail ln "$W/m1/half" "$W/m1/hardlink"
xf_expect_fail cp "$W/m1/half" "$W/m1/copy"
truncate -s 512K "$W/m1/half"
rm -f "$W/m1/fa" "$W/m1/copy"

# --- inodes
n=0
for i in $(seq 1 30); do
	{ : >"$W/m1/f$i"; } 2>/dev/null || break
	n=$i
done
total=$(find "$W/q1" -mindepth 1 | wc -l)
[ "$total" -eq 20 ] || xf_fail "inode quota: $total entries, want 20"
xf_expect_fail mkdir "$W/m1/dir"
for i in $(seq 1 "$n"); do rm -f "$W/m1/f$i"; done
mkdir "$W/m1/dir" || xf_fail "mkdir after freeing inodes"

# --- restart keeps the count
stop
[ -s "$W/state/quota/q1.usage" ] || xf_fail "no usage file"
grep -q "bytes 524288 inodes 2" "$W/state/quota/q1.usage" ||
	{ cat "$W/state/quota/q1.usage" >&2; xf_fail "usage file content"; }
start
xf_expect_fail dd if=/dev/zero of="$W/m1/more" bs=64k count=10 conv=fsync
sz=$(stat -c %s "$W/q1/more")
[ "$sz" -le $((LIMIT - 524288)) ] || xf_fail "restart lost the count ($sz)"
rm -f "$W/m1/more"

# --- a shared export's quota holds for both domains together
xf_mount "$(xf_sock vm1)" qs "$W/s1"
xf_mount "$(xf_sock vm2)" qs "$W/s2"
# (vm1's own domain quota leaves it 512K: it writes 384K here)
dd if=/dev/zero of="$W/s1/a" bs=64k count=6 conv=fsync 2>/dev/null ||
	xf_fail "vm1: 384K into the shared 1M export"
if dd if=/dev/zero of="$W/s2/b" bs=64k count=11 conv=fsync 2>/dev/null; then
	xf_fail "vm2 wrote 704K more: the shared export quota is per process"
fi
t=$(( $(stat -c %s "$W/qs/a") + $(stat -c %s "$W/qs/b") ))
[ "$t" -le "$LIMIT" ] || xf_fail "shared export holds $t bytes > $LIMIT"
rm -f "$W/s1/a"
dd if=/dev/zero of="$W/s2/c" bs=64k count=4 conv=fsync 2>/dev/null ||
	xf_fail "vm2 cannot use what vm1 freed"
rm -f "$W/s2/b" "$W/s2/c"
xf_umount "$W/s1"
xf_umount "$W/s2"

# --- lost state: rebuilt by a scan
stop
rm -f "$W/state/quota/q1.usage"
start
xf_expect_log "export 'q1': usage scanned: 524288 bytes, 2 inodes"
xf_expect_fail dd if=/dev/zero of="$W/m1/more" bs=64k count=10 conv=fsync
stop
xf_log "ok"
exit 0
