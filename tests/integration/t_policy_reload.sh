#!/usr/bin/env bash
# t_policy_reload.sh: `xenfsctl reload` applies a changed policy to a
# mounted guest without remounting: a raised quota lets it write more,
# squash = all makes its next files anon's, a lowered quota stops it
# (EDQUOT), rw -> ro gives EROFS, and revoked access closes the
# connection (the guest's next request fails, xenfsd logs why).
# timeout: 90
. "$(dirname "$0")/../lib.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfsctl

mkdir -p "$W/e" "$W/state"
conf()	# ACCESS QUOTA SQUASH
{
	xf_config xenfs.conf <<EOF
[global]
control-socket = $W/control.sock
state-dir = $W/state

[export e]
path = $W/e
access = $1
squash = $3
anon-uid = 3000
anon-gid = 3000

[domain vm1]
local-socket = $(xf_sock vm1)
quota-bytes = $2
EOF
}
reload()
{
	"$BIN/xenfsctl" -s "$W/control.sock" reload >"$W/reload.out" 2>&1 ||
		{ cat "$W/reload.out" >&2; xf_fail "xenfsctl reload"; }
}
conf vm1:rw 1M none
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" e "$W/m"

xf_expect_fail dd if=/dev/zero of="$W/m/a" bs=64k count=24 conv=fsync
conf vm1:rw 4M none
reload
dd if=/dev/zero of="$W/m/b" bs=64k count=24 conv=fsync 2>/dev/null ||
	xf_fail "raised quota not applied"

conf vm1:rw 4M all
reload
echo s >"$W/m/squashed" || xf_fail "create after squash reload"
xf_assert_eq "$(stat -c %u:%g "$W/e/squashed")" 3000:3000 "squash by reload"

conf vm1:rw 1M all
reload
xf_expect_fail dd if=/dev/zero of="$W/m/c" bs=64k count=1 conv=fsync

conf vm1:ro 4M none
reload
xf_expect_fail sh -c "echo x >'$W/m/ro'"
[ ! -e "$W/e/ro" ] || xf_fail "write after rw -> ro"
cat "$W/m/squashed" >/dev/null || xf_fail "read after rw -> ro"

conf vm2:rw 4M none
reload
xf_expect_log "dom vm1: export 'e' disconnected: access revoked by reload"
xf_expect_fail ls "$W/m/"
xf_umount "$W/m"
xf_log "ok"
exit 0
