#!/usr/bin/env bash
# t_workload_build.sh: a real build workload on a XenFS mount.  Untar a
# source tree of 10k+ files (made at run time from /usr/include plus
# generated files) into the mount and check the count; build the XenFS
# tree itself inside the mount with make -j2 and run a binary it built
# from the mount; then diff -r the untarred tree against its source, both
# through the mount and in the export directory on the host.
# timeout: 900
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-guest.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_cmd tar diff make cc find
xf_need_bin xenfsd mount.xenfs
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || xf_skip "needs python3"
[ -d /usr/include ] || xf_skip "needs /usr/include as tarball material"

ok() { xf_log "ok: $*"; }
t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 ))s"; }

xf_shared_setup
xf_shared_mount

# --- the source tree: /usr/include plus 3000 generated files in 30 dirs
mkdir -p "$W/src"
cp -a /usr/include "$W/src/include" || xf_fail "copy /usr/include"
"$PY" - "$W/src/gen" <<'PYEOF' || xf_fail "generate files"
import os, random, sys
root = sys.argv[1]
rnd = random.Random(1234)
for d in range(30):
    dp = os.path.join(root, f"d{d:02}", "sub")
    os.makedirs(dp)
    for f in range(100):
        n = rnd.choice([0, 1, 17, 512, 4095, 4096, 4097, 65536, 200000])
        with open(os.path.join(dp, f"f{f:03}.c"), "wb") as fh:
            fh.write(rnd.randbytes(n))
    os.symlink("sub/f000.c", os.path.join(root, f"d{d:02}", "link"))
    os.chmod(os.path.join(dp, "f001.c"), 0o755)
PYEOF
nsrc=$(find "$W/src" | wc -l)
[ "$nsrc" -ge 10000 ] || xf_fail "test bug: only $nsrc entries in the source tree"
tar -C "$W" -cf "$W/src.tar" src || xf_fail "make tarball"
xf_log "tarball: $nsrc entries, $(du -m "$W/src.tar" | cut -f1) MiB ($(elapsed))"

# --- untar into the mount
tar -C "$M" -xf "$W/src.tar" || xf_fail "untar into the mount"
n=$(find "$M/src" | wc -l)
xf_assert_eq "$n" "$nsrc" "entries after untar (guest)"
n=$(find "$EXP/src" | wc -l)
xf_assert_eq "$n" "$nsrc" "entries after untar (host)"
ok "untarred $nsrc entries ($(elapsed))"

# --- build XenFS inside the mount
mkdir "$M/xenfs" || xf_fail "mkdir xenfs"
if git -C "$XF_TOP" rev-parse --verify -q HEAD >/dev/null 2>&1; then
	git -C "$XF_TOP" archive HEAD | tar -C "$M/xenfs" -x ||
	    xf_fail "git archive HEAD | tar -x into the mount"
else
	tar -C "$XF_TOP" --exclude='./build*' --exclude=./.git -cf - . |
	    tar -C "$M/xenfs" -x || xf_fail "copy the source tree"
fi
[ -f "$M/xenfs/Makefile" ] || xf_fail "no Makefile in the copied tree"
xf_log "building XenFS in the mount with make -j2 ($(elapsed))"
if ! make -C "$M/xenfs" -j2 O=build >"$W/make.log" 2>&1; then
	tail -n 30 "$W/make.log" >&2
	xf_fail "make -j2 inside the mount failed"
fi
[ -x "$M/xenfs/build/bin/xenfsd" ] || xf_fail "build/bin/xenfsd missing after build"
[ -x "$EXP/xenfs/build/bin/xenfsd" ] || xf_fail "xenfsd not in the export on the host"
xf_assert_eq "$(head -c 4 "$M/xenfs/build/bin/xenfsd" | od -An -c | tr -d ' ')" \
    '177ELF' "xenfsd is an ELF file"
# run something built in the mount, from the mount (exec via FUSE)
out=$("$M/xenfs/build/bin/xf-renameat2" 2>&1)
rc=$?
xf_assert_eq "$rc" 2 "exit status of xf-renameat2 (usage) run from the mount"
case $out in
*usage:*) ;;
*) xf_fail "xf-renameat2 run from the mount printed: $out" ;;
esac
# a no-op rebuild must find everything up to date (mtimes are coherent)
make -C "$M/xenfs" -q O=build programs >/dev/null 2>&1 ||
    xf_fail "make -q after a full build: something is out of date (mtimes?)"
ok "built XenFS in the mount, ran a built binary from it ($(elapsed))"

# --- the untarred tree is identical to its source
diff -r --no-dereference "$W/src" "$M/src" >"$W/diff.out" 2>&1 || {
	head -n 20 "$W/diff.out" >&2
	xf_fail "diff -r source vs mount differs"
}
diff -r --no-dereference "$W/src" "$EXP/src" >"$W/diff.out" 2>&1 || {
	head -n 20 "$W/diff.out" >&2
	xf_fail "diff -r source vs export on the host differs"
}
# metadata too: type, mode, size, mtime (tar keeps whole seconds), link
meta()
{
	# (a directory's size depends on the filesystem's history: left out)
	(cd "$1" && find src \( -type d -printf '%p d %m - %T@\n' \) -o \
	    -printf '%p %y %m %s %T@ %l\n' |
	    sed -E 's/ ([0-9]+)\.[0-9]+( |$)/ \1\2/' | sort)
}
meta "$W" >"$W/meta.src"
meta "$M" >"$W/meta.mnt"
cmp -s "$W/meta.src" "$W/meta.mnt" || {
	diff "$W/meta.src" "$W/meta.mnt" | head >&2
	xf_fail "metadata (type/mode/size/mtime/link) differs after untar"
}
ok "diff -r and metadata identical, via guest and host ($(elapsed))"

rm -rf "$M/src" "$M/xenfs" || xf_fail "rm -rf of the trees"
[ -z "$(ls -A "$EXP")" ] || xf_fail "export not empty after rm -rf"
ok "removed everything ($(elapsed))"
kill -0 "$XF_BACKEND_PID" || xf_fail "xenfsd died"
xf_umount "$M"
# clean shutdown, and no sanitizer report from xenfsd (SANITIZE= builds)
xf_stop_backend
xf_expect_no_log 'Sanitizer|runtime error:'
xf_log "PASS"
