#!/usr/bin/env bash
# t_idmap.sh: identity mapping and squash as the guest and dom0 see them.
#  - export "m" maps guest 0-65535 to host 100000-165535: files created
#    by guest root land as host 100000, by guest uid 1000 as 101000, and
#    are shown back as 0 and 1000; dom0's root-owned files show as 65534;
#    chown to an unmapped id fails with EINVAL; guest root cannot chmod
#    (e.g. set-uid) a host-root file; file capabilities are refused;
#    a set-uid bit is cleared when a non-owner writes.
#  - export "sq" squashes guest root to anon 4000:4000.
#  - export "id" is the identity: a file capability set by the guest is
#    dropped on the next write (killpriv).
#  - a reload that changes the map applies to the mounted guest.
# timeout: 120
. "$(dirname "$0")/../lib.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_cmd setpriv setfattr getfattr stat
xf_need_bin xenfsd mount.xenfs

mkdir -p "$W/m" "$W/sq" "$W/id" "$W/state"
echo dom0 >"$W/m/rootfile"
chmod 644 "$W/m/rootfile"

write_conf()
{
	xf_config xenfs.conf <<EOF
[global]
control-socket = $W/control.sock
state-dir = $W/state

[export m]
path = $W/m
access = vm1:rw
map-uid = 0-65535:$1
map-gid = 0-65535:$1

[export sq]
path = $W/sq
access = vm1:rw
squash = root
anon-uid = 4000
anon-gid = 4000

[export id]
path = $W/id
access = vm1:rw

[domain vm1]
local-socket = $(xf_sock vm1)
EOF
}
write_conf 100000
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" m "$W/mm"
xf_mount "$(xf_sock vm1)" sq "$W/ms"
xf_mount "$(xf_sock vm1)" id "$W/mi"

as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }

# --- guest root creates: host 100000, guest sees 0
echo a >"$W/mm/byroot" || xf_fail "guest root create"
xf_assert_eq "$(stat -c %u:%g "$W/m/byroot")" 100000:100000 "host owner"
xf_assert_eq "$(stat -c %u:%g "$W/mm/byroot")" 0:0 "guest view"
mkdir "$W/mm/d" && chmod 1777 "$W/mm/d" || xf_fail "mkdir"
xf_assert_eq "$(stat -c %u "$W/m/d")" 100000 "dir owner"

# --- guest user 1000
as 1000 sh -c "echo u >'$W/mm/d/byuser'" || xf_fail "user create"
xf_assert_eq "$(stat -c %u:%g "$W/m/d/byuser")" 101000:101000 "user file"
xf_assert_eq "$(stat -c %u:%g "$W/mm/d/byuser")" 1000:1000 "user view"

# --- dom0's files show as overflow
xf_assert_eq "$(stat -c %u:%g "$W/mm/rootfile")" 65534:65534 "overflow"

# --- chown: mapped ok, unmapped EINVAL
chown 2000:2000 "$W/mm/byroot" || xf_fail "chown in range"
xf_assert_eq "$(stat -c %u:%g "$W/m/byroot")" 102000:102000 "chown mapped"
out=$(chown 70000 "$W/mm/byroot" 2>&1) && xf_fail "chown to unmapped id"
case $out in *"Invalid argument"*) ;; *) xf_fail "chown: $out" ;; esac
xf_assert_eq "$(stat -c %u "$W/m/byroot")" 102000 "unchanged owner"

# --- guest root cannot take over or set-uid dom0's root file
xf_expect_fail chmod 4755 "$W/mm/rootfile"
xf_expect_fail chown 0 "$W/mm/rootfile"
xf_assert_eq "$(stat -c %a:%u "$W/m/rootfile")" 644:0 "dom0 file untouched"

# --- set-uid on its own file is fine (host owner inside the range)
echo x >"$W/mm/suid" && chmod 4755 "$W/mm/suid" || xf_fail "own suid"
xf_assert_eq "$(stat -c %a:%u "$W/m/suid")" 4755:100000 "own suid"

# --- file capabilities refused on a mapped export
xf_expect_fail setfattr -n security.capability \
	-v 0x0100000200000000000000000000000000000000 "$W/mm/suid"

# --- set-uid cleared by a non-owner's write
as 1000 sh -c "echo x >'$W/mm/d/s'; chmod 4777 '$W/mm/d/s'" ||
	xf_fail "user suid file"
xf_assert_eq "$(stat -c %a "$W/m/d/s")" 4777 "suid set"
as 1001 sh -c "echo more >>'$W/mm/d/s'" || xf_fail "non-owner write"
xf_assert_eq "$(stat -c %a "$W/m/d/s")" 777 "suid cleared on write"

# --- squash root
echo s >"$W/ms/sq" || xf_fail "squashed create"
xf_assert_eq "$(stat -c %u:%g "$W/sq/sq")" 4000:4000 "squashed owner"
as 1000 sh -c "echo u >'$W/ms/u'" 2>/dev/null &&
	xf_assert_eq "$(stat -c %u "$W/sq/u")" 1000 "unsquashed user"
xf_expect_fail chown 1 "$W/ms/sq"

# --- killpriv on the identity export: capability gone after a write
echo c >"$W/mi/cap"
setfattr -n security.capability \
	-v 0x0100000200000000000000000000000000000000 "$W/mi/cap" ||
	xf_fail "set capability on the identity export"
getfattr -n security.capability "$W/id/cap" >/dev/null 2>&1 ||
	xf_fail "capability not on the host file"
echo more >>"$W/mi/cap"
if getfattr -n security.capability "$W/id/cap" >/dev/null 2>&1; then
	xf_fail "security.capability survived a write"
fi

# --- reload with another map applies to the mounted guest
write_conf 200000
kill -HUP "$XF_BACKEND_PID"
xf_expect_log "reload|reloaded" 10
sleep 1.5	# attribute cache (1 s)
echo r >"$W/mm/after" || xf_fail "create after reload"
xf_assert_eq "$(stat -c %u "$W/m/after")" 200000 "new map after reload"
xf_assert_eq "$(stat -c %u "$W/mm/byroot")" 65534 "old owner now unmapped"

xf_umount "$W/mm"
xf_umount "$W/ms"
xf_umount "$W/mi"
xf_log "ok"
exit 0
