#!/usr/bin/env bash
# t_escape_suite.sh: 20+ escape attempts by a guest that speaks the ring
# protocol itself (xf-evil escape), so that nothing a guest kernel would
# filter gets filtered: '..' and '.' and names with '/' or NUL inside
# FUSE requests, creating/renaming to '../x', symlinks in every position
# (absolute out, '..', /proc/self/root and /proc/self/fd magic links,
# under a symlink's nodeid), dom0-planted device nodes and FIFOs (the FIFO
# must not block the backend), mknod of a device, bogus and forgotten
# nodeids, LINK of a directory, handles used after RELEASE and guessed
# handles, trusted.* xattrs, RENAME_WHITEOUT, and a directory swapped for
# a symlink to the outside between lookup and open in a race loop.  Every
# one is refused, no reply carries the outside marker, and nothing outside
# the export changes.  t_escape.sh covers the same through a real mount.
#
# Documented behaviour: a hard link that dom0 itself plants from outside
# into the export is the same inode by dom0's choice; the guest reads and
# writes it like any export file (checked below), and cannot make such a
# link itself (LINK takes only nodeids of its own session).
# timeout: 120
. "$(dirname "$0")/../lib.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_cmd mknod mkfifo
xf_need_bin xenfsd mount.xenfs xf-evil

EXP=$W/exp
OUT=$W/outside
mkdir -p "$EXP/dir" "$EXP/racedir" "$OUT" "$W/state"
echo "XF-OUTSIDE secret" >"$OUT/marker"
echo "XF-OUTSIDE shared by dom0" >"$OUT/shared.txt"
echo inside >"$EXP/file"
echo inside-race >"$EXP/racedir/marker"
mv "$EXP/racedir" "$EXP/race"
ln -s "$OUT/marker" "$EXP/out"
ln -s .. "$EXP/up"
ln -s /proc/self/root "$EXP/procroot"
ln -s /proc/self/fd/0 "$EXP/procfd"
mkfifo "$EXP/fifo"
mknod "$EXP/null" c 1 3
ln "$OUT/shared.txt" "$EXP/hardlink"
snap() { (cd "$W" && find outside -printf '%p %m %U %s %T@\n' | sort;
	 md5sum outside/marker) ; }
before=$(snap)

xf_config xenfs.conf <<CONF
[global]
control-socket = $W/control.sock
state-dir = $W/state

[export ev]
path = $EXP
access = evil:rw

[domain evil]
local-socket = $(xf_sock evil)
CONF
xf_start_backend "$XF_CONF"

# dom0 side of the race: swap race between a directory and an outward
# symlink as fast as the shell can
touch "$W/racing"
(
	while [ -e "$W/racing" ]; do
		mv -T "$EXP/race" "$EXP/race.d" 2>/dev/null
		ln -s "$OUT" "$EXP/race" 2>/dev/null
		rm -f "$EXP/race"
		mv -T "$EXP/race.d" "$EXP/race" 2>/dev/null
	done
) &
RACER=$!

timeout -k 5 90 "$BIN/xf-evil" -s "$(xf_sock evil)" -t ev -d 5 escape \
    >"$W/evil.out" 2>&1
rc=$?
rm -f "$W/racing"
wait "$RACER"
cat "$W/evil.out" >&2
[ "$rc" -eq 0 ] || xf_fail "xf-evil escape exited $rc"
grep -Eq "race: [0-9]+ inside reads, [1-9][0-9]* refused" "$W/evil.out" ||
	xf_fail "the race never caught the symlink state (racer not running?)"
n=$(grep -c "^xf-evil: escape: ok:" "$W/evil.out")
[ "$n" -ge 20 ] || xf_fail "only $n escape attempts reported ok (want 20+)"
grep -q "FAIL" "$W/evil.out" && xf_fail "an escape attempt was not refused"
grep -q "XF-OUTSIDE" "$W/evil.out" && xf_fail "outside content reached the guest"
kill -0 "$XF_BACKEND_PID" || xf_fail "xenfsd died"

# nothing outside changed, nothing was created beside the export
[ "$(snap)" = "$before" ] || xf_fail "the outside directory changed"
[ ! -e "$W/ESCAPED" ] || xf_fail "ESCAPED was created outside the export"
ls "$W" | grep -q "^gdev$" && xf_fail "device created outside"

# the documented hard link case, through a real mount
xf_mount "$(xf_sock evil)" ev "$W/mnt"
grep -q "shared by dom0" "$W/mnt/hardlink" ||
	xf_fail "dom0's hard link is not readable"
echo "guest" >>"$W/mnt/hardlink" || xf_fail "dom0's hard link not writable"
grep -q guest "$OUT/shared.txt" || xf_fail "hard link is not the same inode"
xf_expect_fail ln "$W/mnt/hardlink" "$W/mnt/../../escaped-link"
xf_umount "$W/mnt"
xf_log "ok: $n escape attempts refused"
exit 0
