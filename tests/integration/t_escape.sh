#!/usr/bin/env bash
# t_escape.sh: nothing dom0 planted in an export lets a guest reach outside
# it through the backend.  dom0 plants absolute and `..` symlinks pointing
# out of the export (to /etc, to a directory beside the export, to
# /proc/self/root), device nodes and a FIFO.  The guest runs in its own
# mount namespace in which the host-only directories are hidden and /etc is
# a fake one, so whatever it reads through a symlink comes either from its
# own namespace (correct: symlinks are resolved by the guest kernel) or
# from the backend following the link on the host (an escape).  A unique
# marker lives only in the hidden host files and must never show up.
# Hard links to outside files planted by dom0 are the same inode by dom0's
# choice and are not tested.
# timeout: 300
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-guest.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_cmd unshare mknod mkfifo timeout grep
xf_need_bin xenfsd mount.xenfs

ok() { xf_log "ok: $*"; }

EXP=$W/exp/shared
M=$W/g/mnt
MARK="XENFS-ESCAPE-MARKER-$$-$RANDOM$RANDOM"
mkdir -p "$EXP/sub" "$W/exp/secret" "$W/outside" "$W/state" "$W/fake_etc"
echo "$MARK outside" >"$W/outside/marker.txt"
echo "$MARK secret" >"$W/exp/secret/marker.txt"
echo "GUEST-FAKE-PASSWD" >"$W/fake_etc/passwd"
echo inside >"$EXP/sub/file"
passwd_sum=$(sha256sum </etc/passwd) passwd_mode=$(stat -c %a /etc/passwd)

# --- dom0 plants links and special files in the export
ln -s /etc "$EXP/link_to_etc"
ln -s /etc/passwd "$EXP/link_to_passwd"
ln -s "$W/outside" "$EXP/link_abs_dir"
ln -s "$W/outside/marker.txt" "$EXP/link_abs_file"
ln -s ../secret "$EXP/link_rel_dir"
ln -s ../secret/marker.txt "$EXP/link_rel_file"
ln -s .. "$EXP/sub/up"
ln -s ../.. "$EXP/sub/up2"
ln -s sub/up/sub/up/../secret "$EXP/chain"
ln -s ../../../../../../../../../.. "$EXP/dotdots"
ln -s /proc/self/root "$EXP/proc_root"
ln -s "/proc/self/root$W/outside/marker.txt" "$EXP/proc_marker"
ln -s /proc/self/cwd "$EXP/proc_cwd"
mknod "$EXP/null" c 1 3 || xf_fail "mknod c 1 3 on the host"
blk=$(stat -c '%t %T' /dev/vda 2>/dev/null || stat -c '%t %T' /dev/loop0 2>/dev/null)
if [ -n "$blk" ]; then
	set -- $blk
	mknod "$EXP/blk" b $((16#$1)) $((16#$2)) || xf_fail "mknod block device"
fi
mkfifo "$EXP/fifo" || xf_fail "mkfifo on the host"

xf_shared_backend
xf_shared_mount

# --- the guest's view, in a mount namespace of its own
cat >"$W/guest.sh" <<'GUEST'
set -u
fails=0
gok() { echo "guest ok: $*"; }
gfail() { echo "guest FAIL: $*"; fails=$((fails + 1)); }
# hide everything that exists only on the host; give the guest its own /etc
mount -t tmpfs none "$W/outside" || exit 90
mount -t tmpfs none "$W/exp" || exit 91
mount --bind "$W/fake_etc" /etc || exit 92
[ -e "$W/outside/marker.txt" ] && exit 93

# readlink shows what dom0 planted (the guest may see link text)
[ "$(readlink "$M/link_to_etc")" = /etc ] && gok "readlink link_to_etc" ||
    gfail "readlink link_to_etc: $(readlink "$M/link_to_etc")"

# following links: guest-side resolution only
out=$(cat "$M/link_to_etc/passwd" 2>&1)
case $out in
GUEST-FAKE-PASSWD) gok "link_to_etc/passwd resolves in the guest's own /etc" ;;
*) gfail "link_to_etc/passwd gave: $(echo "$out" | head -c 100)" ;;
esac
out=$(cat "$M/link_to_passwd" 2>&1)
[ "$out" = GUEST-FAKE-PASSWD ] && gok "link_to_passwd -> guest's /etc/passwd" ||
    gfail "link_to_passwd gave: $(echo "$out" | head -c 100)"
for p in link_abs_file link_abs_dir/marker.txt link_rel_file \
    link_rel_dir/marker.txt sub/up/../secret/marker.txt \
    sub/up2/exp/secret/marker.txt chain/marker.txt \
    "dotdots$W/outside/marker.txt" "dotdots$W/exp/secret/marker.txt" \
    "proc_root$W/outside/marker.txt" proc_marker \
    "proc_root$W/exp/secret/marker.txt"; do
	if out=$(timeout 5 cat "$M/$p" 2>&1); then
		gfail "read through $p succeeded: $(echo "$out" | head -c 100)"
	else
		gok "read through $p fails: $(echo "$out" | head -c 100)"
	fi
done
for d in link_rel_dir link_abs_dir sub/up2 chain dotdots; do
	timeout 5 ls -la "$M/$d/" 2>&1
done >"$W/guest.ls"
grep -q marker.txt "$W/guest.ls" && gfail "a listing through a link shows marker.txt"
grep -q secret "$W/guest.ls" && gfail "a listing through a link shows the host's secret/"
gok "listings through outward links show only the guest's own tree"
# a recursive grep that follows the outward links finds no marker (sub/
# and the links to / and /proc are left out: they lead to the guest's own
# root, which is not the point and is large)
timeout 60 grep -R -D skip -s -l -f "$W/pattern" "$M/link_abs_dir/" \
    "$M/link_rel_dir/" "$M/chain/" "$M/link_to_etc/"
case $? in
0) gfail "grep -R found the marker" ;;
124) gfail "grep -R through the outward links did not finish in 60 s" ;;
*) gok "grep -R following the outward links finds no marker" ;;
esac

# device nodes planted by dom0 cannot be opened
for dev in null blk; do
	[ -e "$M/$dev" ] || [ -L "$M/$dev" ] || continue
	timeout 5 head -c 512 "$M/$dev" >/dev/null 2>"$W/err.$dev" &&
	    gfail "guest opened dom0-planted device $dev for reading" ||
	    gok "open $dev for reading fails: $(cat "$W/err.$dev")"
	timeout 5 sh -c "printf x > '$M/$dev'" 2>"$W/err.$dev" &&
	    gfail "guest opened dom0-planted device $dev for writing" ||
	    gok "open $dev for writing fails: $(cat "$W/err.$dev")"
done
# a device node the guest itself makes is no way out either
if mknod "$M/gnull" c 1 3 2>"$W/err.mknod"; then
	timeout 5 head -c 1 "$M/gnull" >/dev/null 2>&1 &&
	    gfail "guest-created device node could be opened"
	echo "note: guest mknod of a char device was allowed (open refused)"
else
	gok "guest mknod c 1 3 refused: $(cat "$W/err.mknod")"
fi

# a FIFO planted by dom0 blocks only the guest process that opens it:
# a lone reader, then a lone writer, each must block (no peer) while the
# rest of the mount keeps answering
fifo_side()	# reader|writer
{
	local t0 rc out
	if [ "$1" = reader ]; then
		timeout 5 cat "$M/fifo" >/dev/null 2>&1 &
	else
		timeout 5 sh -c "echo x > '$M/fifo'" 2>/dev/null &
	fi
	local pid=$!
	sleep 0.5
	t0=$(date +%s%N)
	out=$(timeout 2 cat "$M/sub/file" 2>&1) && [ "$out" = inside ] ||
	    gfail "read of sub/file while a FIFO $1 is blocked: $out"
	timeout 2 ls "$M" >/dev/null || gfail "ls hangs while a FIFO $1 is blocked"
	timeout 2 touch "$M/sub/new-$1" || gfail "create hangs while a FIFO $1 is blocked"
	gok "mount answered in $(( ($(date +%s%N) - t0) / 1000000 )) ms while a FIFO $1 was blocked"
	wait "$pid"
	rc=$?
	[ "$rc" -eq 124 ] && gok "lone FIFO $1 blocked until its timeout" ||
	    gfail "lone FIFO $1 ended with $rc (want 124: blocked without a peer)"
}
fifo_side reader
fifo_side writer
exit $fails
GUEST
printf '%s\n' "$MARK" >"$W/pattern"
export W M
unshare -m --propagation private bash "$W/guest.sh" >"$W/guest.out" 2>&1
rc=$?
cat "$W/guest.out"
case $rc in
0) ;;
9[0-3]) xf_fail "guest namespace setup failed (rc $rc)" ;;
*) xf_fail "$rc guest-side check(s) failed (see 'guest FAIL' above)" ;;
esac
if grep -q "$MARK" "$W/guest.out" "$W/guest.ls"; then
	xf_fail "the host-only marker appeared in the guest's output"
fi
ok "marker never seen by the guest"

# --- the backend did not hold the FIFO or devices open, host untouched
# (O_PATH handles on them are fine: they cannot do I/O)
for fd in /proc/"$XF_BACKEND_PID"/fd/*; do
	case $(readlink "$fd" 2>/dev/null) in
	"$EXP/fifo"|"$EXP/null"|"$EXP/blk") ;;
	*) continue ;;
	esac
	flags=$(awk '/^flags:/ { print $2 }' "/proc/$XF_BACKEND_PID/fdinfo/${fd##*/}")
	[ $(( 8#$flags & 8#10000000 )) -ne 0 ] ||
	    xf_fail "xenfsd holds $(readlink "$fd") open for I/O (flags $flags)"
done
xf_assert_eq "$(sha256sum </etc/passwd)" "$passwd_sum" "host /etc/passwd content"
xf_assert_eq "$(stat -c %a /etc/passwd)" "$passwd_mode" "host /etc/passwd mode"
xf_assert_eq "$(cat "$W/outside/marker.txt")" "$MARK outside" "outside file"

# --- guest-made links out of the export stay links on the host
ln -s /etc/passwd "$M/g_passwd" || xf_fail "guest symlink to /etc/passwd"
ln -P "$M/g_passwd" "$M/g_hard" || xf_fail "guest hard link of a symlink"
[ -L "$EXP/g_hard" ] || xf_fail "linking a symlink produced a non-symlink on the host"
[ "$(stat -c %i "$EXP/g_hard")" != "$(stat -c %i /etc/passwd)" ] ||
    xf_fail "guest hard-linked the host's /etc/passwd into the export"
ln -P "$M/link_abs_file" "$M/g_hard2" 2>/dev/null
if [ -e "$EXP/g_hard2" ] || [ -L "$EXP/g_hard2" ]; then
	[ -L "$EXP/g_hard2" ] ||
	    xf_fail "hard link of a planted symlink became the outside file"
fi
mv "$M/link_rel_dir" "$M/sub/moved" || xf_fail "rename of a planted symlink"
xf_assert_eq "$(readlink "$EXP/sub/moved")" ../secret "renamed symlink target"
[ -d "$W/exp/secret" ] && [ ! -e "$W/exp/secret/moved" ] ||
    xf_fail "rename followed the symlink"
ok "guest link/rename of symlinks operate on the links, not their targets"

kill -0 "$XF_BACKEND_PID" || xf_fail "xenfsd died"
xf_umount "$M"
# clean shutdown, and no sanitizer report from xenfsd (SANITIZE= builds)
xf_stop_backend
xf_expect_no_log 'Sanitizer|runtime error:'
xf_log "PASS"
