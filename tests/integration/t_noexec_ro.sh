#!/usr/bin/env bash
# t_noexec_ro.sh: export modes.  A noexec export is mounted MS_NOEXEC by
# the frontend because the backend grants it so (a binary copied in does
# not run, mount -o exec cannot undo it); a readonly export refuses every
# change with EROFS even when the access rule says rw; every xenfs mount
# is nosuid and nodev whatever the options.
# timeout: 60
. "$(dirname "$0")/../lib.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_bin xenfsd mount.xenfs

mkdir -p "$W/nx" "$W/ro" "$W/state"
echo keep >"$W/ro/file"
xf_config xenfs.conf <<CONF
[global]
control-socket = $W/control.sock
state-dir = $W/state

[export nx]
path = $W/nx
access = vm1:rw
noexec = yes

[export ro]
path = $W/ro
access = vm1:rw
readonly = yes

[domain vm1]
local-socket = $(xf_sock vm1)
CONF
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" nx "$W/mnx" exec,suid,dev
xf_mount "$(xf_sock vm1)" ro "$W/mro"

opts() { awk -v m="$1" '$2 == m { print $4 }' /proc/mounts; }
case ",$(opts "$W/mnx")," in
*,noexec,*) ;; *) xf_fail "noexec export mounted exec: $(opts "$W/mnx")" ;;
esac
for m in "$W/mnx" "$W/mro"; do
	case ",$(opts "$m")," in
	*,nosuid,*nodev,*|*,nodev,*nosuid,*) ;;
	*) xf_fail "$m lacks nosuid/nodev: $(opts "$m")" ;;
	esac
done

cp /bin/true "$W/mnx/prog" || xf_fail "copy into the noexec export"
chmod 755 "$W/mnx/prog"
if "$W/mnx/prog" 2>/dev/null; then
	xf_fail "a program ran from a noexec export"
fi
[ -x "$W/nx/prog" ] || xf_fail "mode not kept on the host"

case ",$(opts "$W/mro")," in
*,ro,*) ;; *) xf_fail "readonly export mounted rw" ;;
esac
xf_expect_fail sh -c "echo x >'$W/mro/new'"
xf_expect_fail sh -c "echo x >>'$W/mro/file'"
xf_expect_fail rm "$W/mro/file"
xf_expect_fail mkdir "$W/mro/d"
xf_assert_eq "$(cat "$W/ro/file")" keep "readonly export content"
[ ! -e "$W/ro/new" ] || xf_fail "file created in a readonly export"
xf_umount "$W/mnx"
xf_umount "$W/mro"
xf_log "ok"
exit 0
