#!/usr/bin/env bash
# t_shared_access.sh: per-domain access policy over the local transport.
# Export `shared` is vm1:rw vm2:ro, `vm1home` is vm1 only, vm3 has no
# export.  vm1 writes and vm2 reads the same bytes; every vm2 change fails
# with EROFS; vm3 and vm2-on-vm1home are refused at mount time with a
# clear message and a non-zero exit, and xenfsd's log names the domain.
# timeout: 300
. "$(dirname "$0")/../lib.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_bin xenfsd mount.xenfs
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || xf_skip "needs python3"

ok() { xf_log "ok: $*"; }

mkdir -p "$W/exp/shared" "$W/exp/vm1home" "$W/state"
xf_config xenfs.conf <<CONF
[global]
control-socket = $W/ctl.sock
state-dir = $W/state

[export shared]
path = $W/exp/shared
access = vm1:rw vm2:ro

[export vm1home]
path = $W/exp/vm1home
access = vm1:rw

[domain vm1]
local-socket = $W/vm1.sock

[domain vm2]
local-socket = $W/vm2.sock

[domain vm3]
local-socket = $W/vm3.sock
CONF
xf_start_backend "$XF_CONF"

M1=$W/vm1/shared M2=$W/vm2/shared
xf_mount "$W/vm1.sock" shared "$M1"
xf_mount "$W/vm2.sock" shared "$M2"
ok "vm1 and vm2 both mounted shared"

# --- vm1 writes, vm2 reads the same content
head -c 300000 /dev/urandom >"$W/data"
cp "$W/data" "$M1/data" || xf_fail "vm1: write to shared"
mkdir "$M1/dir" && echo note >"$M1/dir/note" || xf_fail "vm1: mkdir/write"
sync
cmp "$W/data" "$M2/data" || xf_fail "vm2 reads different bytes than vm1 wrote"
xf_assert_eq "$(cat "$M2/dir/note")" note "vm2 reads vm1's file in a subdir"
cmp "$W/data" "$W/exp/shared/data" || xf_fail "host copy differs"
ok "vm1 wrote, vm2 read the same content (and so does the host)"

# --- later changes by vm1 reach vm2 even after vm2 cached the file
echo version-1 >"$M1/coherent"
xf_assert_eq "$(cat "$M2/coherent")" version-1 "vm2 first read"
echo version-2 >"$M1/coherent"
cat_is() { [ "$(cat "$1" 2>/dev/null)" = "$2" ]; }
xf_wait_until 5 cat_is "$M2/coherent" version-2 ||
    xf_fail "vm2 still reads '$(cat "$M2/coherent")' 5 s after vm1 rewrote the file"
echo version-three-longer >>"$M1/coherent"
xf_wait_until 5 cat_is "$M2/coherent" $'version-2\nversion-three-longer' ||
    xf_fail "vm2 does not see vm1's append within 5 s: '$(cat "$M2/coherent")'"
mv "$M1/coherent" "$M1/renamed"
xf_wait_until 5 test ! -e "$M2/coherent" ||
    xf_fail "vm2 still sees a name vm1 renamed away after 5 s"
rm "$M1/renamed"
ok "vm2 sees vm1's rewrite, append and rename of a file it had cached"

# --- locks conflict across guests (flock and fcntl, vm2 read-only)
echo lock >"$M1/lockf"
rm -f "$W/held"
flock -x "$M1/lockf" -c "touch '$W/held'; sleep 3" &
holder=$!
xf_wait_until 5 test -e "$W/held" || xf_fail "vm1 flock holder did not start"
flock -n -s "$M2/lockf" true &&
    xf_fail "vm2 got a shared flock while vm1 holds an exclusive one"
wait "$holder"
flock -n -s "$M2/lockf" true || xf_fail "vm2 flock refused after vm1 released"
ok "flock: vm1's exclusive lock blocks vm2; released, vm2 gets it"
rm -f "$W/held"
"$PY" - "$M1/lockf" "$W/held" <<'PYEOF' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
open(sys.argv[2], "w").close()
time.sleep(3)
PYEOF
holder=$!
xf_wait_until 5 test -e "$W/held" || xf_fail "vm1 fcntl holder did not start"
"$PY" - "$M2/lockf" <<'PYEOF' || xf_fail "cross-guest fcntl lock"
import errno, fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    sys.exit("vm2 got a read lock while vm1 holds a write lock")
except OSError as e:
    if e.errno not in (errno.EAGAIN, errno.EACCES):
        sys.exit(f"unexpected errno {e.errno}")
    print(f"ok: vm2's read lock refused: {os.strerror(e.errno)}")
PYEOF
wait "$holder"
ok "fcntl: vm1's write lock blocks vm2's read lock"

# --- every modification from vm2 fails with EROFS
"$PY" - "$M2" <<'PYEOF' || xf_fail "vm2 (ro) could modify the export"
import errno, os, sys
m = sys.argv[1]
fails = 0
def expect_erofs(what, fn):
    global fails
    try:
        fn()
    except OSError as e:
        if e.errno == errno.EROFS:
            print(f"ok: vm2 {what}: {os.strerror(e.errno)} (EROFS)")
            return
        print(f"FAIL: vm2 {what}: errno {e.errno} {os.strerror(e.errno)}, want EROFS")
        fails += 1
        return
    print(f"FAIL: vm2 {what}: succeeded on a read-only export")
    fails += 1
expect_erofs("create", lambda: os.open(f"{m}/new", os.O_WRONLY | os.O_CREAT, 0o644))
expect_erofs("open existing O_WRONLY", lambda: os.open(f"{m}/data", os.O_WRONLY))
expect_erofs("open existing O_RDWR|O_TRUNC", lambda: os.open(f"{m}/data", os.O_RDWR | os.O_TRUNC))
expect_erofs("mkdir", lambda: os.mkdir(f"{m}/newdir"))
expect_erofs("unlink", lambda: os.unlink(f"{m}/data"))
expect_erofs("rmdir", lambda: os.rmdir(f"{m}/dir"))
expect_erofs("rename", lambda: os.rename(f"{m}/data", f"{m}/data2"))
expect_erofs("chmod", lambda: os.chmod(f"{m}/data", 0o600))
expect_erofs("chown", lambda: os.chown(f"{m}/data", 1, 1))
expect_erofs("truncate", lambda: os.truncate(f"{m}/data", 0))
expect_erofs("utime", lambda: os.utime(f"{m}/data", (0, 0)))
expect_erofs("symlink", lambda: os.symlink("x", f"{m}/sym"))
expect_erofs("link", lambda: os.link(f"{m}/data", f"{m}/hard"))
expect_erofs("mkfifo", lambda: os.mkfifo(f"{m}/fifo"))
expect_erofs("setxattr", lambda: os.setxattr(f"{m}/data", "user.x", b"1"))
sys.exit(1 if fails else 0)
PYEOF
err=$(sh -c "echo x > '$M2/shell-write'" 2>&1) && xf_fail "vm2 shell write succeeded"
case $err in
*"Read-only file system"*) ok "vm2 shell write: $err" ;;
*) xf_fail "vm2 shell write: want 'Read-only file system', got: $err" ;;
esac
cmp "$W/data" "$W/exp/shared/data" || xf_fail "host file changed by vm2"
[ -e "$W/exp/shared/new" ] && xf_fail "vm2 created a file on the host"
[ "$(ls "$W/exp/shared" | sort | tr '\n' ' ')" = "data dir lockf " ] ||
    xf_fail "export content changed: $(ls "$W/exp/shared")"
ok "host export unchanged by vm2's attempts"

# reading still works after the refusals
cmp "$W/data" "$M2/data" || xf_fail "vm2 read after refusals"

# --- vm1 sees its own export, vm2 is refused it
xf_mount "$W/vm1.sock" vm1home "$W/vm1/home"
echo mine >"$W/vm1/home/f" || xf_fail "vm1 write to vm1home"
xf_assert_eq "$(cat "$W/exp/vm1home/f")" mine "vm1home host content"
ok "vm1 mounts and writes its own export"

check_refused()	# DOMAIN TAG MNT
{
	local out rc
	mkdir -p "$3"
	out=$(timeout 20 "$BIN/mount.xenfs" "$2" "$3" -o "socket=$W/$1.sock" \
	    2>&1 </dev/null)
	rc=$?
	xf_is_mounted "$3" && xf_fail "$1 mounted $2 without access"
	[ "$rc" -ne 0 ] || xf_fail "$1 mount of $2: exit 0 though refused"
	[ "$rc" -ne 124 ] || xf_fail "$1 mount of $2: hung (timeout)"
	xf_log "$1 mount of $2 -> exit $rc: $out"
	[ -n "$out" ] || xf_fail "$1 mount of $2: refused without a message"
	echo "$out" | grep -Eiq 'denied|not allowed|no access|permission|forbidden|not permitted|refused' ||
	    xf_fail "$1 mount of $2: message does not say access was denied: $out"
	ok "$1 refused $2 (exit $rc) with a clear message"
}
# new_log_has SINCE REGEX: a log line written after line SINCE matches
new_log_has() { tail -n +"$(( $1 + 1 ))" "$XF_LOG" | grep -Eiq -- "$2"; }
n0=$(wc -l <"$XF_LOG")
check_refused vm3 shared "$W/vm3/shared"
xf_wait_until 5 new_log_has "$n0" 'vm3' ||
    xf_fail "xenfsd logged nothing naming vm3 for its refused mount"
xf_log "xenfsd log: $(tail -n +"$((n0 + 1))" "$XF_LOG" | grep -m1 vm3)"
n0=$(wc -l <"$XF_LOG")
check_refused vm2 vm1home "$W/vm2/home"
xf_wait_until 5 new_log_has "$n0" 'vm2' ||
    xf_fail "xenfsd logged nothing naming vm2 for its refused mount of vm1home"
xf_log "xenfsd log: $(tail -n +"$((n0 + 1))" "$XF_LOG" | grep -m1 vm2)"
ok "xenfsd log names the refused domains"

# unknown export tag
mkdir -p "$W/vm1/none"
if timeout 20 "$BIN/mount.xenfs" nosuchexport "$W/vm1/none" \
    -o "socket=$W/vm1.sock" >"$W/none.out" 2>&1 </dev/null; then
	xf_fail "mount of an unknown export succeeded"
fi
xf_is_mounted "$W/vm1/none" && xf_fail "unknown export got mounted"
ok "unknown export refused: $(head -c 200 "$W/none.out")"

# --- vm1 asking for ro gets ro
xf_mount "$W/vm1.sock" shared "$W/vm1/ro" ro
err=$(sh -c "echo x > '$W/vm1/ro/x'" 2>&1) && xf_fail "vm1 ro mount allowed write"
case $err in
*"Read-only file system"*) ok "vm1 -o ro mount refuses writes" ;;
*) xf_fail "vm1 -o ro write: want EROFS, got: $err" ;;
esac

# mounts are still healthy after all of this
cmp "$W/data" "$M1/data" || xf_fail "vm1 read after refusals"
kill -0 "$XF_BACKEND_PID" || xf_fail "xenfsd died"
for m in "$W/vm1/ro" "$W/vm1/home" "$M2" "$M1"; do xf_umount "$m"; done
# clean shutdown, and no sanitizer report from xenfsd (SANITIZE= builds)
xf_stop_backend
xf_expect_no_log 'Sanitizer|runtime error:'
xf_log "PASS"
