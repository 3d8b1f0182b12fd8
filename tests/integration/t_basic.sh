#!/usr/bin/env bash
# t_basic.sh: the core file operations through a XenFS mount over the local
# transport.  vm1 mounts export `shared` (rw) and does create, write, read,
# append, truncate, stat, chmod, rename, unlink, mkdir/rmdir, a 1000-entry
# readdir, symlinks and readlink, statfs and umount; every change must be
# visible with the same content in the export directory on the host, and
# host-side files must be visible in the guest.
# timeout: 300
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-guest.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_cmd cmp df stat truncate readlink
xf_need_bin xenfsd mount.xenfs

ok() { xf_log "ok: $*"; }

xf_shared_setup
xf_shared_mount
ok "mounted export shared on $M"

# --- create / write / read / append / truncate
echo hello >"$M/a" || xf_fail "create+write $M/a"
xf_assert_eq "$(cat "$M/a")" hello "read back through the mount"
xf_assert_eq "$(cat "$EXP/a")" hello "content of the file on the host"
ok "create, write, read (guest and host agree)"

echo world >>"$M/a" || xf_fail "append"
xf_assert_eq "$(cat "$M/a")" $'hello\nworld' "content after append"
xf_assert_eq "$(cat "$EXP/a")" $'hello\nworld' "host content after append"
ok "append"

truncate -s 3 "$M/a" || xf_fail "truncate shrink"
xf_assert_eq "$(stat -c %s "$M/a")" 3 "size after truncate -s 3"
xf_assert_eq "$(cat "$M/a")" hel "content after truncate"
xf_assert_eq "$(stat -c %s "$EXP/a")" 3 "host size after truncate"
truncate -s 10000 "$M/a" || xf_fail "truncate extend"
xf_assert_eq "$(stat -c %s "$M/a")" 10000 "size after extend"
xf_assert_eq "$(tail -c +4 "$M/a" | tr -d '\0' | wc -c)" 0 \
    "extended part reads as zeros"
: >"$M/a" || xf_fail "O_TRUNC open"
xf_assert_eq "$(stat -c %s "$M/a")" 0 "size after O_TRUNC"
xf_assert_eq "$(stat -c %s "$EXP/a")" 0 "host size after O_TRUNC"
ok "truncate (shrink, extend with zeros, O_TRUNC)"

# --- larger data, several pool-sized chunks, read back both sides
head -c $((5 * 1024 * 1024 + 12345)) /dev/urandom >"$W/rand" ||
    xf_fail "make random data"
cp "$W/rand" "$M/rand" || xf_fail "cp 5 MiB into the mount"
cmp "$W/rand" "$M/rand" || xf_fail "5 MiB file differs read via the mount"
cmp "$W/rand" "$EXP/rand" || xf_fail "5 MiB file differs on the host"
# read in odd sizes at odd offsets
dd if="$M/rand" of="$W/part" bs=4097 skip=77 count=300 status=none ||
    xf_fail "dd partial read"
dd if="$W/rand" of="$W/part.want" bs=4097 skip=77 count=300 status=none
cmp "$W/part" "$W/part.want" || xf_fail "partial read at offset differs"
ok "5 MiB random file: cp in, cmp via guest and host, odd-offset read"

# --- stat and chmod
chmod 640 "$M/rand" || xf_fail "chmod"
xf_assert_eq "$(stat -c %a "$M/rand")" 640 "mode via guest"
xf_assert_eq "$(stat -c %a "$EXP/rand")" 640 "mode on host"
xf_assert_eq "$(stat -c %s "$M/rand")" "$(stat -c %s "$EXP/rand")" \
    "size guest vs host"
xf_assert_eq "$(stat -c %Y "$M/rand")" "$(stat -c %Y "$EXP/rand")" \
    "mtime guest vs host"
xf_assert_eq "$(stat -c %F "$M/rand")" "regular file" "file type"
touch -d '2001-02-03 04:05:06 UTC' "$M/rand" || xf_fail "utimens"
xf_assert_eq "$(stat -c %Y "$M/rand")" 981173106 "mtime set by touch -d"
xf_assert_eq "$(stat -c %Y "$EXP/rand")" 981173106 "host mtime set by touch -d"
ok "stat, chmod, utimens agree between guest and host"

# --- rename, unlink
mv "$M/rand" "$M/rand2" || xf_fail "rename"
[ ! -e "$M/rand" ] || xf_fail "old name still exists after rename (guest)"
[ ! -e "$EXP/rand" ] || xf_fail "old name still exists after rename (host)"
cmp "$W/rand" "$EXP/rand2" || xf_fail "renamed file differs on host"
rm "$M/rand2" || xf_fail "unlink"
[ ! -e "$M/rand2" ] || xf_fail "unlinked file still visible in guest"
[ ! -e "$EXP/rand2" ] || xf_fail "unlinked file still on host"
rm "$M/rand2" 2>/dev/null && xf_fail "unlink of a missing file succeeded"
ok "rename and unlink"

# --- mkdir / rmdir
mkdir "$M/d" || xf_fail "mkdir"
mkdir -p "$M/d/e/f" || xf_fail "mkdir -p"
[ -d "$EXP/d/e/f" ] || xf_fail "nested dirs missing on host"
xf_assert_eq "$(stat -c %h "$M/d")" 3 "nlink of dir with one subdir"
echo x >"$M/d/e/file"
err=$(rmdir "$M/d/e" 2>&1) && xf_fail "rmdir of a non-empty dir succeeded"
case $err in
*"not empty"*) ;;
*) xf_fail "rmdir non-empty: want ENOTEMPTY, got: $err" ;;
esac
rmdir "$M/d/e/f" || xf_fail "rmdir"
[ ! -e "$EXP/d/e/f" ] || xf_fail "rmdir'd dir still on host"
rm -r "$M/d" || xf_fail "rm -r"
[ ! -e "$EXP/d" ] || xf_fail "rm -r'd tree still on host"
mkdir "$M/d" && mkdir "$M/d" 2>/dev/null && xf_fail "mkdir of existing dir"
rmdir "$M/d"
ok "mkdir, mkdir -p, rmdir, ENOTEMPTY, rm -r"

# --- readdir of 1000 entries
mkdir "$M/many" || xf_fail "mkdir many"
for i in $(seq -w 1 1000); do
	: >"$M/many/entry-$i" || xf_fail "create entry-$i"
done
seq -w 1 1000 | sed 's/^/entry-/' >"$W/many.want"
ls -1 "$M/many" | sort >"$W/many.got"
cmp "$W/many.want" "$W/many.got" || {
	diff "$W/many.want" "$W/many.got" | head >&2
	xf_fail "readdir of 1000 entries via guest differs"
}
ls -1 "$EXP/many" | sort | cmp - "$W/many.want" ||
    xf_fail "1000 entries on host differ"
# readdir with d_type and inode numbers (ls -f -i does getdents only)
n=$(ls -f "$M/many" | wc -l)
xf_assert_eq "$n" 1002 "getdents count including . and .."
n=$(find "$M/many" -type f | wc -l)
xf_assert_eq "$n" 1000 "find -type f count (d_type)"
rm -r "$M/many" || xf_fail "rm -r of 1000 entries"
[ ! -e "$EXP/many" ] || xf_fail "dir of 1000 entries still on host"
ok "readdir of 1000 entries (names, count, d_type) and removal"

# --- symlinks and readlink
echo target-data >"$M/target"
ln -s target "$M/link" || xf_fail "symlink"
xf_assert_eq "$(readlink "$M/link")" target "readlink via guest"
xf_assert_eq "$(readlink "$EXP/link")" target "readlink on host"
xf_assert_eq "$(cat "$M/link")" target-data "read through symlink"
xf_assert_eq "$(stat -c %F "$M/link")" "symbolic link" "lstat type"
long=$(printf 'x%.0s' $(seq 1 1000))
ln -s "$long/y" "$M/longlink" || xf_fail "symlink with 1002-byte target"
xf_assert_eq "$(readlink "$M/longlink")" "$long/y" "long readlink"
ln -s nowhere "$M/dangling" || xf_fail "dangling symlink"
cat "$M/dangling" 2>/dev/null && xf_fail "read through dangling symlink"
ln -s "$M" "$M/abs" 2>/dev/null || xf_fail "absolute symlink"
xf_assert_eq "$(readlink "$EXP/abs")" "$M" "absolute target stored as is"
rm "$M/link" "$M/longlink" "$M/dangling" "$M/abs" || xf_fail "unlink symlinks"
[ -e "$M/target" ] || xf_fail "unlinking a symlink removed its target"
ok "symlink, readlink, dangling and long symlinks"

# --- host-side changes are visible to the guest
echo from-host >"$EXP/hostfile"
mkdir "$EXP/hostdir"
xf_assert_eq "$(cat "$M/hostfile")" from-host "host-created file in guest"
[ -d "$M/hostdir" ] || xf_fail "host-created dir not visible in guest"
ok "files created on the host are visible in the guest"

# host-side changes to a file the guest has cached reach the guest
cat_is() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }
echo changed-on-host >"$EXP/hostfile"
xf_wait_until 5 cat_is "$M/hostfile" changed-on-host ||
    xf_fail "guest still reads '$(cat "$M/hostfile")' 5 s after dom0 rewrote it"
rm "$EXP/hostfile"
xf_wait_until 5 test ! -e "$M/hostfile" ||
    xf_fail "guest still sees a file dom0 removed 5 s ago"
ok "dom0's rewrite and removal of a cached file reach the guest"

# --- statfs
df "$M" >/dev/null || xf_fail "df on the mount"
read -r gb gblocks gfree <<<"$(stat -f -c '%S %b %f' "$M")"
read -r hb hblocks hfree <<<"$(stat -f -c '%S %b %f' "$EXP")"
[ "$gblocks" -gt 0 ] || xf_fail "statfs reports 0 blocks"
g=$((gb * gblocks)) h=$((hb * hblocks))
[ $((g > h ? g - h : h - g)) -le $((h / 100)) ] ||
    xf_fail "statfs total size $g differs from host's $h by > 1%"
xf_log "statfs: guest ${g} bytes total, host ${h}"
ok "statfs (df) reports the export filesystem's size"

# --- umount; the data stays on the host
xf_umount "$M"
xf_is_mounted "$M" && xf_fail "still mounted after umount"
xf_assert_eq "$(cat "$EXP/target")" target-data "host file after umount"
kill -0 "$XF_BACKEND_PID" 2>/dev/null || xf_fail "xenfsd died"
ok "umount; xenfsd still running"
# clean shutdown, and no sanitizer report from xenfsd (SANITIZE= builds)
xf_stop_backend
xf_expect_no_log 'Sanitizer|runtime error:'
xf_log "PASS"
