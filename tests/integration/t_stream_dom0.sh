#!/usr/bin/env bash
# timeout: 60
# Changes made in dom0 directly inside an export enter the stream marked
# origin dom0 (new directories are followed); the guest's own operations
# are not echoed back as dom0 records.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfsctl
xf_config_std
mkdir -p "$W/shared/pre"
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" shared "$W/mnt"
J=$W/state/journal
S=$W/shared

# guest activity: must not show up as dom0
echo guest >"$W/mnt/g1" || xf_fail "guest write"
mkdir "$W/mnt/gd" && echo x >"$W/mnt/gd/x" && mv "$W/mnt/gd/x" "$W/mnt/gd/y" ||
	xf_fail "guest ops"
sleep 0.5

# dom0 activity
mkdir "$S/hd"
sleep 0.3			# the watcher adds the new directory's watch
echo hello >"$S/hd/a"
mv "$S/hd/a" "$S/hd/b"
echo pre >"$S/pre/p"
chmod 600 "$S/hd/b"
rm "$S/hd/b"
rmdir "$S/hd"

want="mkdir /hd
create /hd/a
modify /hd/a
rename /hd/a /hd/b
create /pre/p
modify /pre/p
setattr /hd/b
unlink /hd/b
rmdir /hd"
dom0() {
	"$BIN/xenfsctl" -d "$J" events | awk '/origin=dom0/ {
		l = $2 " " $5; if ($2 == "rename") l = l " " $6; print l }'
}
have_all() { [ "$(dom0)" = "$want" ]; }
if ! xf_wait_until 5 have_all; then
	printf 'want:\n%s\ngot:\n%s\n' "$want" "$(dom0)" >&2
	"$BIN/xenfsctl" -d "$J" events >&2
	xf_fail "dom0 changes not in the stream as expected"
fi
"$BIN/xenfsctl" -d "$J" events | grep origin=dom0 | grep -q ' - shared ' ||
	xf_fail "dom0 records carry the export tag and no domain"
exit 0
