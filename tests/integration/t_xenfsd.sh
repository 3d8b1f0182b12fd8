#!/usr/bin/env bash
# t_xenfsd.sh: the daemon around the fs layer.  Check mode, policy
# refusals at the handshake, a client that never says hello, hostile
# frontends that break the ring protocol (each loses only its own
# connection), kill -9 of a frontend (every descriptor and thread of its
# connection is released), SIGHUP reload (bad file kept out, revocation,
# rw -> ro), stale-socket replacement and SIGTERM.
# timeout: 120
. "$(dirname "$0")/../lib.sh"
xf_init
xf_need_root
xf_need_fuse
xf_need_cmd python3
xf_need_bin xenfsd mount.xenfs

ok() { xf_log "ok: $*"; }

xf_config_std xenfs.conf

# --- check mode, usage
out=$("$BIN/xenfsd" -n -c "$XF_CONF" 2>&1) || xf_fail "-n on a good config"
xf_assert_eq "$out" "configuration OK" "-n output"
{ cat "$XF_CONF"; echo "bogus line"; } >"$W/bad.conf"
if out=$("$BIN/xenfsd" -n -c "$W/bad.conf" 2>&1); then
	xf_fail "-n accepted a bad config"
fi
case $out in
"$W/bad.conf:"[0-9]*": "*) ;;
*) xf_fail "-n error is not file:line: '$out'" ;;
esac
"$BIN/xenfsd" -V >/dev/null || xf_fail "-V"
"$BIN/xenfsd" --help | grep -q usage || xf_fail "--help"
xf_expect_fail "$BIN/xenfsd" --bogus-option
ok "check mode and usage"

# --- a stale socket from a crashed run is replaced
python3 - "$(xf_sock vm1)" <<'EOF' || xf_fail "make stale socket"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
EOF
xf_start_backend "$XF_CONF"
xf_expect_log "privilege separation: each domain is served by its own worker process|NOT confined"
[ "$(stat -c %a "$(xf_sock vm1)")" = 600 ] || xf_fail "socket mode"
ok "stale socket replaced, sockets are 0600"

# --- policy at the handshake
xf_mount "$(xf_sock vm1)" shared "$W/m1"
ls "$W/m1" >/dev/null || xf_fail "ls on the mount"
mkdir -p "$W/mx"
if "$BIN/mount.xenfs" home1 "$W/mx" -o "socket=$(xf_sock vm2)" \
    >"$W/refuse.log" 2>&1; then
	xf_fail "vm2 mounted home1"
fi
grep -q "domain vm2 has no access to export 'home1'" "$W/refuse.log" ||
	xf_fail "refusal message: $(cat "$W/refuse.log")"
xf_expect_log "dom vm2: domain vm2 has no access to export 'home1'"
if "$BIN/mount.xenfs" nosuch "$W/mx" -o "socket=$(xf_sock vm1)" \
    >"$W/refuse.log" 2>&1; then
	xf_fail "mounted an unknown export"
fi
grep -q "no export 'nosuch'" "$W/refuse.log" || xf_fail "ENOENT message"
xf_mount "$(xf_sock vm2)" shared "$W/m2"
xf_expect_fail mkdir "$W/m2/nope"
ok "EACCES and ENOENT refusals with reasons, ro grant"

# --- a client that connects and says nothing is dropped
python3 - "$(xf_sock vm1)" <<'EOF' || xf_fail "silent client"
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(15)
t = time.time()
d = s.recv(512)          # the backend's ETIMEDOUT welcome, then EOF
while d:
    d = s.recv(512)
if time.time() - t > 12:
    sys.exit("not dropped in time")
EOF
xf_expect_log "sent no hello within"
ok "silent client dropped after the hello timeout"

# --- hostile frontends: broken ring indices, buffer of nobody
cat >"$W/evil.py" <<'EOF'
import fcntl, os, socket, struct, sys, time, mmap
path, tag, mode = sys.argv[1], sys.argv[2], sys.argv[3]
nq, order, bufsz = 1, 1, 3 * 4096
size = (1 + nq) * 4096 + (nq << order) * bufsz
fd = os.memfd_create("evil", os.MFD_ALLOW_SEALING)
os.ftruncate(fd, size)
fcntl.fcntl(fd, 1033, 2 | 4)           # F_ADD_SEALS: SHRINK | GROW
m = mmap.mmap(fd, size)
struct.pack_into("<II", m, 0, 0x584e4653, 1)
struct.pack_into("<IIII", m, 4096, 0, 1, 0, 1)
kick, wait = os.eventfd(0), os.eventfd(0)
hello = struct.pack("<IHHIIIIII64s", 0x4c4e4658, 1, 1, nq, order, bufsz, 0,
                    0, 0, tag.encode())
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.sendmsg([hello], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                     struct.pack("<3i", fd, kick, wait))])
w = s.recv(248)
err = struct.unpack_from("<i", w, 8)[0]
if err:
    sys.exit("refused: %d" % err)
if mode == "index":
    struct.pack_into("<I", m, 4096, 1000)   # req_prod far past the ring
else:
    # one request naming buffer 999 (there are 2)
    struct.pack_into("<QII", m, 4096 + 64, 1, 999, 40)
    struct.pack_into("<I", m, 4096, 1)
os.eventfd_write(kick, 1)
s.settimeout(10)
if s.recv(1) != b"":
    sys.exit("backend sent data")
EOF
python3 "$W/evil.py" "$(xf_sock vm1)" shared index ||
	xf_fail "hostile frontend (index) was not disconnected"
xf_expect_log "dom vm1: queue 0: ring indices out of range; closing"
python3 "$W/evil.py" "$(xf_sock vm1)" shared buf ||
	xf_fail "hostile frontend (buf) was not disconnected"
xf_expect_log "dom vm1: queue 0: request names a buffer outside its queue"
ls "$W/m1" >/dev/null || xf_fail "the honest mount suffered"
kill -0 "$XF_BACKEND_PID" || xf_fail "xenfsd died"
ok "hostile frontends lose only their own connection"

# --- at most 16 connections per domain: the 17th is refused with EBUSY
cat >"$W/many.py" <<'EOF'
import fcntl, os, socket, struct, sys
path, tag = sys.argv[1], sys.argv[2]
nq, order, bufsz = 1, 1, 3 * 4096
size = (1 + nq) * 4096 + (nq << order) * bufsz
keep, errs = [], []
for i in range(17):
    fd = os.memfd_create("c", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    fcntl.fcntl(fd, 1033, 2 | 4)
    kick, wait = os.eventfd(0), os.eventfd(0)
    hello = struct.pack("<IHHIIIIII64s", 0x4c4e4658, 1, 1, nq, order,
                        bufsz, 0, 0, 0, tag.encode())
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendmsg([hello], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                         struct.pack("<3i", fd, kick, wait))])
    w = s.recv(248)
    errs.append(struct.unpack_from("<i", w, 8)[0])
    keep.append((s, fd, kick, wait))
# vm1 already holds one connection (m1): 15 more fit, then EBUSY
if errs[:15] != [0] * 15 or errs[15:] != [16, 16]:
    sys.exit("errors: %r" % errs)
EOF
n0=$(xf_tree_fdcount "$XF_BACKEND_PID")
python3 "$W/many.py" "$(xf_sock vm1)" shared || xf_fail "connection limit"
xf_expect_log "dom vm1: domain vm1 has too many connections"
ls "$W/m1" >/dev/null || xf_fail "m1 after the limit test"
# slack: the fs layer's and the stream's own descriptors may grow a
# little meanwhile; a leak of 15 connections would be dozens
xf_wait_until 10 test "$(xf_tree_fdcount "$XF_BACKEND_PID")" -le $((n0 + 4)) ||
	xf_fail "the 15 closed connections left descriptors behind"
ok "17th connection of a domain refused with EBUSY"

# --- kill -9 of a frontend frees its connection
before=$(xf_tree_fdcount "$XF_BACKEND_PID")
tb=$(xf_tree_taskcount "$XF_BACKEND_PID")
xf_mount "$(xf_sock vm1)" home1 "$W/m3"
ls "$W/m3" >/dev/null || xf_fail "ls m3"
during=$(xf_tree_fdcount "$XF_BACKEND_PID")
[ "$during" -gt "$before" ] || xf_fail "no descriptors for the connection?"
fp=$(pgrep -f "mount.xenfs home1 $W/m3" | head -n 1)
[ -n "$fp" ] || xf_fail "frontend pid"
kill -9 "$fp"
xf_expect_log "export 'home1' disconnected: frontend disconnected"
# -le: the other live mounts' inode caches may shrink meanwhile
xf_wait_until 5 test "$(xf_tree_fdcount "$XF_BACKEND_PID")" -le "$before" ||
	xf_fail "fds: $before before, $(xf_tree_fdcount "$XF_BACKEND_PID") after"
xf_wait_until 5 test "$(xf_tree_taskcount "$XF_BACKEND_PID")" -eq "$tb" ||
	xf_fail "worker threads left behind"
umount -l "$W/m3" 2>/dev/null
ok "kill -9 of a frontend: $before fds before, $during during, all released"

# --- SIGHUP: a bad file is kept out; revocation; rw -> ro
cp "$XF_CONF" "$W/good.conf"
echo "junk" >>"$XF_CONF"
kill -HUP "$XF_BACKEND_PID"
xf_expect_log "reload failed, keeping the current configuration"
ls "$W/m1" >/dev/null || xf_fail "mount after failed reload"
sed -e 's/^access = vm1:rw vm2:ro$/access = vm1:ro/' "$W/good.conf" >"$XF_CONF"
kill -HUP "$XF_BACKEND_PID"
xf_expect_log "dom vm2: export 'shared' disconnected: access revoked"
xf_expect_log "dom vm1: export 'shared' is read-only from now on"
if mkdir "$W/m1/after-ro" 2>"$W/mkdir.err"; then
	xf_fail "mkdir succeeded after rw -> ro"
fi
grep -q "Read-only file system" "$W/mkdir.err" ||
	xf_fail "mkdir after ro: $(cat "$W/mkdir.err")"
ok "reload: bad file ignored, revoked guest dropped, ro downgrade EROFS"

# --- SIGTERM: clean exit, sockets removed
kill -TERM "$XF_BACKEND_PID"
wait "$XF_BACKEND_PID"
rc=$?
xf_assert_eq "$rc" 0 "exit status after SIGTERM"
[ -e "$(xf_sock vm1)" ] && xf_fail "socket left behind"
xf_expect_log "exiting"
ok "SIGTERM: exit 0, sockets removed"
exit 0
