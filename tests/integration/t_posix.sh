#!/usr/bin/env bash
# t_posix.sh: POSIX semantics through a XenFS mount, as root and as two
# unprivileged users (uids 1001 and 1002 via setpriv): ownership of new
# files, setgid directories, chmod/chown permission rules, setuid clearing,
# nlink/ctime, long names and paths, odd names, O_DIRECT, fallocate modes,
# SEEK_HOLE/SEEK_DATA, >4 GiB offsets, POSIX ACLs, O_TMPFILE, hard links,
# rename over existing, RENAME_EXCHANGE/NOREPLACE, user xattrs, flock and
# fcntl locks, FIFOs and sockets, and use of the mount by every user.
# timeout: 300
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-guest.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_cmd setpriv setfacl getfacl setfattr getfattr flock fallocate dd \
    du stat mkfifo
xf_need_bin xenfsd mount.xenfs xf-renameat2
PY=/usr/bin/python3
[ -x "$PY" ] || xf_skip "needs /usr/bin/python3 (usable by uid 1001)"

ok() { xf_log "ok: $*"; }
# run as uid/gid 1001 (group 1003 as supplementary) or 1002
u1() { setpriv --reuid=1001 --regid=1001 --groups=1003 -- "$@"; }
u2() { setpriv --reuid=1002 --regid=1002 --clear-groups -- "$@"; }
# expect_err TEXT CMD...: CMD must fail and its stderr contain TEXT
expect_err()
{
	local want=$1 out
	shift
	out=$("$@" 2>&1) && xf_fail "expected '$want' from: $* (it succeeded)"
	case $out in
	*"$want"*) ;;
	*) xf_fail "expected '$want' from: $*; got: $out" ;;
	esac
}
pystat() { "$PY" -c 'import os,sys; print(getattr(os.lstat(sys.argv[1]), sys.argv[2]))' "$@"; }

EXP=$W/exp/shared
M=$W/mnt
mkdir -p "$EXP" "$W/state"
cd "$W" || xf_fail "cd $W"
xf_shared_backend
xf_shared_mount

# --- every user can use the mount (allow_other)
u1 stat "$M" >/dev/null || xf_fail "uid 1001 cannot stat the mount root (allow_other?)"
u2 ls "$M" >/dev/null || xf_fail "uid 1002 cannot list the mount root"
ok "unprivileged users can use the mount"

mkdir "$M/u1" "$M/u2" "$M/pub" || xf_fail "root mkdir"
chown 1001:1001 "$M/u1" || xf_fail "root chown dir to 1001"
chown 1002:1002 "$M/u2" || xf_fail "root chown dir to 1002"
chmod 1777 "$M/pub" || xf_fail "chmod 1777"
xf_assert_eq "$(stat -c %u:%g "$EXP/u1")" 1001:1001 "host owner after chown"
xf_assert_eq "$(stat -c %a "$EXP/pub")" 1777 "host mode after chmod 1777"

# --- new files get the caller's uid/gid
u1 sh -c "echo one > '$M/u1/f'" || xf_fail "uid 1001 create in own dir"
u1 mkdir "$M/u1/sub" || xf_fail "uid 1001 mkdir"
u1 ln -s f "$M/u1/sym" || xf_fail "uid 1001 symlink"
u1 mkfifo "$M/u1/fifo" || xf_fail "uid 1001 mkfifo"
for n in f sub sym fifo; do
	xf_assert_eq "$(stat -c %u:%g "$M/u1/$n")" 1001:1001 "guest owner of u1/$n"
	xf_assert_eq "$(stat -c %u:%g "$EXP/u1/$n")" 1001:1001 "host owner of u1/$n"
done
u2 sh -c "echo two > '$M/pub/g'" || xf_fail "uid 1002 create in 1777 dir"
xf_assert_eq "$(stat -c %u:%g "$EXP/pub/g")" 1002:1002 "host owner of pub/g"
ok "files, dirs, symlinks, fifos are created with the caller's uid/gid"

# --- permission checks by mode bits
expect_err "Permission denied" u2 sh -c "echo x > '$M/u1/nope'"
expect_err "Permission denied" u2 sh -c "echo x >> '$M/u1/f'"
chmod 600 "$M/u1/f"
expect_err "Permission denied" u2 cat "$M/u1/f"
u1 cat "$M/u1/f" >/dev/null || xf_fail "owner cannot read own 0600 file"
expect_err "Permission denied" u2 rm -f "$M/u1/f"
[ -e "$EXP/u1/f" ] || xf_fail "uid 1002 removed a file in 1001's dir"
u1 sh -c "echo mine > '$M/pub/owned1'"
expect_err "Operation not permitted" u2 rm -f "$M/pub/owned1"
[ -e "$EXP/pub/owned1" ] || xf_fail "sticky dir: other user removed a file"
ok "mode bits and the sticky bit are enforced"

# --- chmod / chown rules
expect_err "Operation not permitted" u2 chmod 777 "$M/u1/f"
xf_assert_eq "$(stat -c %a "$EXP/u1/f")" 600 "mode after refused chmod"
u1 chmod 640 "$M/u1/f" || xf_fail "owner chmod"
xf_assert_eq "$(stat -c %a "$EXP/u1/f")" 640 "mode after owner chmod"
expect_err "Operation not permitted" u1 chown 1002 "$M/u1/f"
expect_err "Operation not permitted" u1 chgrp 1002 "$M/u1/f"
u1 chgrp 1003 "$M/u1/f" || xf_fail "owner chgrp to a group it belongs to"
xf_assert_eq "$(stat -c %g "$EXP/u1/f")" 1003 "gid after chgrp"
chown 1001:1001 "$M/u1/f" || xf_fail "root chown"
ok "non-owner chmod/chown -> EPERM; owner chmod/chgrp and root chown work"

# --- setgid directory inheritance
mkdir "$M/sg" && chown 0:1003 "$M/sg" && chmod 2775 "$M/sg" ||
    xf_fail "setup setgid dir"
u1 sh -c "echo x > '$M/sg/file'" || xf_fail "create in setgid dir"
u1 mkdir "$M/sg/dir" || xf_fail "mkdir in setgid dir"
xf_assert_eq "$(stat -c %g "$M/sg/file")" 1003 "gid of file in setgid dir"
xf_assert_eq "$(stat -c %g "$EXP/sg/file")" 1003 "host gid of file in setgid dir"
xf_assert_eq "$(stat -c %g "$EXP/sg/dir")" 1003 "gid of subdir in setgid dir"
[ -g "$EXP/sg/dir" ] || xf_fail "subdir of setgid dir lacks the setgid bit"
[ -g "$M/sg/dir" ] || xf_fail "guest: subdir of setgid dir lacks setgid bit"
ok "setgid directory: group and setgid bit inherited"

# --- setuid/setgid bits cleared on write by non-owner and on chown
u1 sh -c "echo '#!/bin/sh' > '$M/pub/suid'"
u1 chmod 6777 "$M/pub/suid" || xf_fail "chmod 6777"
xf_assert_eq "$(stat -c %a "$EXP/pub/suid")" 6777 "mode 6777 set"
u2 sh -c "echo more >> '$M/pub/suid'" || xf_fail "uid 1002 write to 0777 file"
m=$(stat -c %a "$M/pub/suid") h=$(stat -c %a "$EXP/pub/suid")
[ -u "$EXP/pub/suid" ] && xf_fail "setuid kept after write by non-owner (host mode $h)"
[ -u "$M/pub/suid" ] && xf_fail "guest still shows setuid after write (mode $m)"
ok "setuid cleared on write by a non-owner (mode now $h)"
chmod 4755 "$M/pub/suid" || xf_fail "chmod 4755"
chown 1002:1002 "$M/pub/suid" || xf_fail "root chown of setuid file"
[ -u "$EXP/pub/suid" ] && xf_fail "setuid kept after chown (host mode $(stat -c %a "$EXP/pub/suid"))"
[ -u "$M/pub/suid" ] && xf_fail "guest still shows setuid after chown"
ok "setuid cleared on chown"

# --- nlink and ctime after link / rename / unlink
echo data >"$M/nl"
c0=$(pystat "$M/nl" st_ctime_ns)
sleep 0.05
ln "$M/nl" "$M/nl2" || xf_fail "link"
xf_assert_eq "$(stat -c %h "$M/nl")" 2 "nlink after link (guest)"
xf_assert_eq "$(stat -c %h "$EXP/nl")" 2 "nlink after link (host)"
c1=$(pystat "$M/nl" st_ctime_ns)
[ "$c1" -gt "$c0" ] || xf_fail "ctime did not advance on link ($c0 -> $c1)"
sleep 0.05
mv "$M/nl2" "$M/nl3" || xf_fail "rename of a hard link"
c2=$(pystat "$M/nl3" st_ctime_ns)
[ "$c2" -gt "$c1" ] || xf_fail "ctime did not advance on rename ($c1 -> $c2)"
xf_assert_eq "$(stat -c %h "$M/nl3")" 2 "nlink after rename"
sleep 0.05
rm "$M/nl3" || xf_fail "unlink of one link"
xf_assert_eq "$(stat -c %h "$M/nl")" 1 "nlink after unlink (guest)"
xf_assert_eq "$(stat -c %h "$EXP/nl")" 1 "nlink after unlink (host)"
c3=$(pystat "$M/nl" st_ctime_ns)
[ "$c3" -gt "$c2" ] || xf_fail "ctime did not advance on unlink ($c2 -> $c3)"
ok "nlink and ctime follow link, rename, unlink"

# --- hard links share data
ln "$M/nl" "$M/hl" || xf_fail "hard link"
echo appended >>"$M/hl"
xf_assert_eq "$(cat "$M/nl")" $'data\nappended' "write via one link, read via other"
xf_assert_eq "$(stat -c %i "$EXP/nl")" "$(stat -c %i "$EXP/hl")" "same host inode"
xf_assert_eq "$(stat -c %i "$M/nl")" "$(stat -c %i "$M/hl")" "same guest inode"
ok "hard links are one inode on both sides"

# --- long names and paths
n255=$(printf 'n%.0s' $(seq 1 255))
echo long >"$M/$n255" || xf_fail "create a 255-byte name"
xf_assert_eq "$(cat "$EXP/$n255")" long "255-byte name on host"
n256=${n255}n
expect_err "File name too long" sh -c "echo x > '$M/$n256'"
# a path just under PATH_MAX (4096 including the NUL)
comp=$(printf 'p%.0s' $(seq 1 200))
p=$M/deep
mkdir "$p" || xf_fail "mkdir deep"
while [ $(( ${#p} + 201 + 20 )) -lt 4095 ]; do
	p=$p/$comp
	mkdir "$p" || xf_fail "mkdir at path length ${#p}"
done
fill=$(( 4095 - ${#p} - 1 ))
[ "$fill" -le 255 ] || xf_fail "test bug: fill $fill"
last=$(printf 'q%.0s' $(seq 1 "$fill"))
echo deep >"$p/$last" || xf_fail "create at path length $(( ${#p} + 1 + fill ))"
xf_assert_eq "$(cat "$p/$last")" deep "read at a 4095-byte path"
expect_err "File name too long" cat "$p/${last}qqqq"
rm -rf "$M/deep" || xf_fail "rm -rf of the deep tree"
ok "255-byte names, 256 refused, 4095-byte paths work"

# --- odd names: UTF-8, spaces, newlines, leading dash, backslash
"$PY" - "$M/odd" "$EXP/odd" <<'PYEOF' || xf_fail "odd names"
import os, sys
m, h = sys.argv[1], sys.argv[2]
os.mkdir(m)
names = ["naïve файл 名前 🙂", "with space", " lead and trail ", "new\nline",
         "-dash", "back\\slash", "tab\there", "quote'\"", "\x01ctl", "*?[glob]"]
for n in names:
    with open(os.path.join(m, n), "w") as f:
        f.write(n)
want = sorted(names)
if sorted(os.listdir(m)) != want:
    sys.exit(f"guest listdir {sorted(os.listdir(m))!r} != {want!r}")
if sorted(os.listdir(h)) != want:
    sys.exit(f"host listdir {sorted(os.listdir(h))!r} != {want!r}")
for n in names:
    with open(os.path.join(h, n)) as f:
        if f.read() != n:
            sys.exit(f"content of {n!r} differs on host")
# bytes that are not valid UTF-8 are legal in Linux names
raw = os.fsencode(m) + b"/\xff\xfebin"
open(raw, "w").close()
if b"\xff\xfebin" not in os.listdir(os.fsencode(h)):
    sys.exit("non-UTF-8 name not on host")
print(f"ok: {len(names) + 1} odd names round-trip")
PYEOF
ok "names with UTF-8, spaces, newlines, control and non-UTF-8 bytes"

# --- O_DIRECT
head -c $((4 * 1024 * 1024)) /dev/urandom >"$W/d.src"
dd if="$W/d.src" of="$M/direct" bs=1M oflag=direct status=none ||
    xf_fail "dd oflag=direct"
dd if="$M/direct" of="$W/d.out" bs=1M iflag=direct status=none ||
    xf_fail "dd iflag=direct"
cmp "$W/d.src" "$W/d.out" || xf_fail "O_DIRECT read differs from written"
cmp "$W/d.src" "$EXP/direct" || xf_fail "O_DIRECT write differs on host"
ok "O_DIRECT write and read"

# --- fallocate modes
blocks() { echo $(( $(stat -c %b "$1") * 512 )); }
MiB=$((1024 * 1024))
fallocate -l 1M "$M/fa" || xf_fail "fallocate -l 1M"
xf_assert_eq "$(stat -c %s "$M/fa")" $MiB "size after fallocate"
[ "$(blocks "$M/fa")" -ge $MiB ] || xf_fail "fallocate did not allocate ($(blocks "$M/fa"))"
fallocate -n -o 1M -l 2M "$M/fa" || xf_fail "fallocate --keep-size"
xf_assert_eq "$(stat -c %s "$M/fa")" $MiB "size after --keep-size"
xf_assert_eq "$(stat -c %s "$EXP/fa")" $MiB "host size after --keep-size"
[ "$(blocks "$M/fa")" -ge $((3 * MiB)) ] ||
    xf_fail "--keep-size did not allocate beyond EOF ($(blocks "$M/fa"))"
head -c $((4 * MiB)) /dev/urandom >"$W/fa.src"
cp "$W/fa.src" "$M/fp" && sync
b0=$(blocks "$M/fp")
fallocate -p -o 1M -l 1M "$M/fp" || xf_fail "fallocate --punch-hole"
xf_assert_eq "$(stat -c %s "$M/fp")" $((4 * MiB)) "size after punch"
b1=$(blocks "$M/fp")
[ "$b1" -le $((b0 - MiB)) ] || xf_fail "punch-hole freed nothing ($b0 -> $b1)"
xf_assert_eq "$(dd if="$M/fp" bs=1M skip=1 count=1 status=none | tr -d '\0' | wc -c)" \
    0 "punched range reads as zeros"
cmp -n $MiB "$W/fa.src" "$M/fp" || xf_fail "data before the hole changed"
fallocate -z -o 2M -l 1M "$M/fp" || xf_fail "fallocate --zero-range"
xf_assert_eq "$(stat -c %s "$M/fp")" $((4 * MiB)) "size after zero-range"
xf_assert_eq "$(dd if="$M/fp" bs=1M skip=2 count=1 status=none | tr -d '\0' | wc -c)" \
    0 "zeroed range reads as zeros"
cmp -i $((3 * MiB)) "$W/fa.src" "$EXP/fp" || xf_fail "data after zeroed range changed"
xf_log "du: $(du -k "$M/fa" "$M/fp" | tr '\n' ' ')"
ok "fallocate: plain, --keep-size, --punch-hole, --zero-range (sizes, du, zeros)"

# --- SEEK_HOLE / SEEK_DATA and >4 GiB offsets
"$PY" - "$M/sparse" <<'PYEOF' || xf_fail "SEEK_HOLE/SEEK_DATA"
import os, sys
p = sys.argv[1]
M8 = 8 << 20
fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, b"a" * 4096, 0)
os.pwrite(fd, b"b" * 4096, M8)
os.fsync(fd)
size = os.fstat(fd).st_size
assert size == M8 + 4096, size
d0 = os.lseek(fd, 0, os.SEEK_DATA)
h0 = os.lseek(fd, 0, os.SEEK_HOLE)
d1 = os.lseek(fd, 4096 * 4, os.SEEK_DATA)
h1 = os.lseek(fd, M8, os.SEEK_HOLE)
print(f"SEEK_DATA(0)={d0} SEEK_HOLE(0)={h0} SEEK_DATA(16K)={d1} SEEK_HOLE(8M)={h1}")
if d0 != 0: sys.exit("SEEK_DATA from 0 should be 0")
if not (4096 <= h0 < M8): sys.exit(f"SEEK_HOLE from 0 gave {h0}, want the hole after 4 KiB")
if d1 != M8: sys.exit(f"SEEK_DATA into the hole gave {d1}, want {M8}")
if h1 != size: sys.exit(f"SEEK_HOLE in the last extent gave {h1}, want EOF {size}")
try:
    os.lseek(fd, size + 1, os.SEEK_DATA)
    sys.exit("SEEK_DATA past EOF succeeded")
except OSError as e:
    if e.errno != 6: sys.exit(f"SEEK_DATA past EOF: errno {e.errno}, want ENXIO")
os.close(fd)
PYEOF
ok "SEEK_HOLE/SEEK_DATA find the hole and the data of a sparse file"

head -c $MiB /dev/urandom >"$W/big.src"
dd if="$W/big.src" of="$M/big" bs=1M seek=5120 conv=notrunc status=none ||
    xf_fail "write at 5 GiB offset"
xf_assert_eq "$(stat -c %s "$M/big")" $(( 5121 * MiB )) "size of the 5 GiB file"
xf_assert_eq "$(stat -c %s "$EXP/big")" $(( 5121 * MiB )) "host size"
dd if="$M/big" of="$W/big.out" bs=1M skip=5120 count=1 status=none ||
    xf_fail "read at 5 GiB"
cmp "$W/big.src" "$W/big.out" || xf_fail "data at 5 GiB differs"
[ "$(blocks "$EXP/big")" -lt $((64 * MiB)) ] || xf_fail "5 GiB file is not sparse on host"
rm "$M/big"
ok "write/read at a 5 GiB offset; file stays sparse"

# --- POSIX ACLs
u1 sh -c "echo secret > '$M/u1/acl'" && u1 chmod 600 "$M/u1/acl"
chmod 755 "$M/u1"
expect_err "Permission denied" u2 cat "$M/u1/acl"
u1 setfacl -m u:1002:r "$M/u1/acl" || xf_fail "setfacl -m u:1002:r"
getfacl -n "$EXP/u1/acl" 2>/dev/null | grep -q '^user:1002:r--' ||
    xf_fail "ACL entry not stored on the host"
getfacl -n "$M/u1/acl" 2>/dev/null | grep -q '^user:1002:r--' ||
    xf_fail "getfacl via guest lacks the entry"
xf_assert_eq "$(u2 cat "$M/u1/acl" 2>&1)" secret "uid 1002 read via ACL grant"
expect_err "Permission denied" u2 sh -c "echo x >> '$M/u1/acl'"
u1 mkdir "$M/u1/dacl" && u1 chmod 700 "$M/u1/dacl"
u1 setfacl -d -m u:1002:rwx "$M/u1/dacl" || xf_fail "default ACL"
u1 setfacl -m u:1002:rwx "$M/u1/dacl" || xf_fail "access ACL on dir"
u1 sh -c "echo inherited > '$M/u1/dacl/new'" || xf_fail "create in dir with default ACL"
getfacl -n "$M/u1/dacl/new" 2>/dev/null | grep -q '^user:1002:rwx' ||
    xf_fail "default ACL not inherited: $(getfacl -n "$M/u1/dacl/new" 2>&1 | tr '\n' ' ')"
getfacl -n "$EXP/u1/dacl/new" 2>/dev/null | grep -q '^user:1002:rwx' ||
    xf_fail "inherited ACL not on host"
u2 cat "$M/u1/dacl/new" >/dev/null || xf_fail "uid 1002 cannot read via inherited ACL"
setfacl -b "$M/u1/acl" || xf_fail "setfacl -b"
expect_err "Permission denied" u2 cat "$M/u1/acl"
ok "ACLs: entry grants access the mode denies; default ACL inherited; removal"

# --- O_TMPFILE + linkat
"$PY" - "$M/pub" <<'PYEOF' || xf_fail "O_TMPFILE"
import os, sys
d = sys.argv[1]
fd = os.open(d, os.O_TMPFILE | os.O_RDWR, 0o640)
os.write(fd, b"tmpfile data")
if os.listdir(d).count("fromtmp"):
    sys.exit("fromtmp exists before linkat")
# os.link() would call link(2), which does not follow the magic link;
# linkat(AT_FDCWD, "/proc/self/fd/N", ..., AT_SYMLINK_FOLLOW) is the
# unprivileged way to give an O_TMPFILE a name.
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
if libc.linkat(-100, f"/proc/self/fd/{fd}".encode(), -100,
               os.path.join(d, "fromtmp").encode(), 0x400) != 0:
    e = ctypes.get_errno()
    sys.exit(f"linkat of the O_TMPFILE: {os.strerror(e)}")
os.close(fd)
with open(os.path.join(d, "fromtmp"), "rb") as f:
    if f.read() != b"tmpfile data":
        sys.exit("linked O_TMPFILE content differs")
print("ok: O_TMPFILE written and linked in")
PYEOF
xf_assert_eq "$(cat "$EXP/pub/fromtmp")" "tmpfile data" "O_TMPFILE file on host"
ok "O_TMPFILE + linkat"

# --- rename over existing, RENAME_EXCHANGE, RENAME_NOREPLACE
echo A >"$M/ra" && echo B >"$M/rb"
mv -f "$M/ra" "$M/rb" || xf_fail "rename over existing"
xf_assert_eq "$(cat "$M/rb")" A "target replaced"
[ -e "$EXP/ra" ] && xf_fail "source still on host after rename over"
mkdir -p "$M/rd1/x" "$M/rd2" "$M/rd3/y"
mv -T "$M/rd1" "$M/rd2" || xf_fail "rename dir over empty dir"
[ -d "$EXP/rd2/x" ] || xf_fail "dir rename over empty dir not on host"
expect_err "Directory not empty" "$BIN/xf-renameat2" "$M/rd2" "$M/rd3"
echo A >"$M/xa" && mkdir "$M/xb" && echo in >"$M/xb/f"
"$BIN/xf-renameat2" --exchange "$M/xa" "$M/xb" || xf_fail "RENAME_EXCHANGE"
[ -d "$M/xa" ] && [ -f "$M/xb" ] || xf_fail "exchange did not swap (guest)"
[ -d "$EXP/xa" ] && [ -f "$EXP/xb" ] || xf_fail "exchange did not swap (host)"
xf_assert_eq "$(cat "$M/xa/f") $(cat "$M/xb")" "in A" "contents after exchange"
expect_err "File exists" "$BIN/xf-renameat2" --noreplace "$M/xb" "$M/rb"
xf_assert_eq "$(cat "$M/rb")" A "noreplace left target alone"
"$BIN/xf-renameat2" --noreplace "$M/xb" "$M/xc" || xf_fail "NOREPLACE to a new name"
ok "rename over file/dir, ENOTEMPTY, RENAME_EXCHANGE, RENAME_NOREPLACE"

# --- user xattrs
echo x >"$M/xf"
setfattr -n user.color -v blue "$M/xf" || xf_fail "setfattr"
setfattr -n user.bin -v 0x00ff00 "$M/xf" || xf_fail "setfattr binary"
xf_assert_eq "$(getfattr --only-values -n user.color "$M/xf")" blue "getfattr"
xf_assert_eq "$(getfattr --only-values -n user.color "$EXP/xf")" blue "xattr on host"
hexval() { getfattr -e hex -n user.bin "$1" 2>/dev/null | sed -n 's/^user.bin=//p'; }
xf_assert_eq "$(hexval "$M/xf")" 0x00ff00 "binary xattr value via guest"
xf_assert_eq "$(hexval "$EXP/xf")" 0x00ff00 "binary xattr value on host"
list=$(getfattr -d -m '^user\.' "$M/xf" 2>/dev/null | grep -c '^user\.')
xf_assert_eq "$list" 2 "listxattr count"
setfattr -x user.color "$M/xf" || xf_fail "removexattr"
expect_err "No such attribute" getfattr -n user.color "$M/xf"
getfattr -n user.color "$EXP/xf" >/dev/null 2>&1 && xf_fail "removed xattr still on host"
setfattr -n user.big -v "$(head -c 3000 /dev/zero | tr '\0' v)" "$M/xf" ||
    xf_fail "3000-byte xattr"
xf_assert_eq "$(getfattr --only-values -n user.big "$M/xf" | wc -c)" 3000 "big xattr size"
ok "user.* xattrs: set, get, list, remove, binary and 3000-byte values"

# --- flock and fcntl locks between two processes
: >"$M/lockf"
rm -f "$W/held"
flock "$M/lockf" -c "touch '$W/held'; sleep 4" &
holder=$!
xf_wait_until 5 test -e "$W/held" || xf_fail "flock holder did not start"
flock -n "$M/lockf" true && xf_fail "flock -n succeeded while another process holds it"
wait "$holder"
flock -n "$M/lockf" true || xf_fail "flock -n fails after release"
ok "flock: second process refused while held, granted after"
rm -f "$W/held"
"$PY" - "$M/lockf" "$W/held" <<'PYEOF' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)
open(sys.argv[2], "w").close()
time.sleep(4)
PYEOF
holder=$!
xf_wait_until 5 test -e "$W/held" || xf_fail "fcntl holder did not start"
"$PY" - "$M/lockf" <<'PYEOF' || xf_fail "fcntl lock checks"
import errno, fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 0)
    sys.exit("fcntl lock granted while another process holds it")
except OSError as e:
    if e.errno not in (errno.EAGAIN, errno.EACCES):
        sys.exit(f"unexpected errno {e.errno}")
    print(f"ok: conflicting fcntl lock refused: {os.strerror(e.errno)}")
# a range the holder does not cover is free
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 200)
print("ok: non-overlapping range granted")
PYEOF
wait "$holder"
ok "fcntl (POSIX) locks between two processes"

# --- FIFOs and sockets
mkfifo "$M/fifo" || xf_fail "mkfifo"
xf_assert_eq "$(stat -c %F "$EXP/fifo")" fifo "fifo type on host"
( echo through-fifo >"$M/fifo" ) &
writer=$!
xf_assert_eq "$(timeout 5 cat "$M/fifo")" through-fifo "data through the fifo"
wait "$writer"
"$PY" - "$M/sock" <<'PYEOF' || xf_fail "unix socket node"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(1)
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
c.connect(sys.argv[1])
a, _ = s.accept()
c.sendall(b"ping")
assert a.recv(4) == b"ping"
print("ok: bound, connected and talked over a socket node in the mount")
PYEOF
xf_assert_eq "$(stat -c %F "$EXP/sock")" socket "socket type on host"
mknod "$M/fifo2" p || xf_fail "mknod p"
xf_assert_eq "$(stat -c %F "$M/fifo2")" fifo "mknod p type"
ok "mkfifo, mknod p, unix socket node"

kill -0 "$XF_BACKEND_PID" || xf_fail "xenfsd died"
cd /
xf_umount "$M"
# clean shutdown, and no sanitizer report from xenfsd (SANITIZE= builds)
xf_stop_backend
xf_expect_no_log 'Sanitizer|runtime error:'
xf_log "PASS"
