#!/usr/bin/env bash
# t_many_inodes.sh: the guest can hold far more inodes than xenfsd may
# keep descriptors (max-fds = 256).  On a host tree of 20k directories the
# guest walks and stats everything, then pins every directory with an
# O_PATH descriptor (so the guest kernel keeps >20k inodes alive), reopens
# 2000 of them through /proc/self/fd, lists them and creates a file in 200
# of them by descriptor; the files must land in the right host
# directories.  Throughout, xenfsd's own descriptor count is sampled and
# must stay far below 1024.
# timeout: 900
. "$(dirname "$0")/../lib.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_bin xenfsd mount.xenfs
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || xf_skip "needs python3"

ok() { xf_log "ok: $*"; }
t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 ))s"; }
LIMIT=1024

EXP=$W/exp/shared
M=$W/mnt
mkdir -p "$EXP" "$W/state"
xf_config xenfs.conf <<CONF
[global]
control-socket = $W/ctl.sock
state-dir = $W/state
max-fds = 256

[export shared]
path = $EXP
access = vm1:rw

[domain vm1]
local-socket = $W/vm1.sock
CONF

# --- 200 x 100 directories, one file per top directory, made on the host
"$PY" - "$EXP" <<'PYEOF' || xf_fail "create the host tree"
import os, sys
root = sys.argv[1]
for a in range(200):
    top = os.path.join(root, f"t{a:03}")
    os.mkdir(top)
    with open(os.path.join(top, "f"), "w") as f:
        f.write(f"t{a:03}\n")
    for b in range(100):
        os.mkdir(os.path.join(top, f"d{b:03}"))
PYEOF
want=$(find "$EXP" | wc -l)
xf_log "host tree: $want entries ($(elapsed))"
[ "$want" -gt 20000 ] || xf_fail "test bug: only $want entries"

xf_start_backend "$XF_CONF"
B=$XF_BACKEND_PID
export B
xf_mount "$W/vm1.sock" shared "$M"

# sample xenfsd's descriptor count every 100 ms into $W/fdmax
: >"$W/fdmax"
(
	max=0
	while kill -0 "$B" 2>/dev/null && [ ! -e "$W/stop-sampler" ]; do
		n=$(ls "/proc/$B/fd" 2>/dev/null | wc -l)
		[ "$n" -gt "$max" ] && max=$n && echo "$max" >"$W/fdmax"
		sleep 0.1
	done
) &
sampler=$!
fdmax() { cat "$W/fdmax"; }

# --- walk and stat everything through the mount
got=$(find "$M" | wc -l)
xf_assert_eq "$got" "$want" "find | wc -l through the mount"
ok "find sees all $got entries ($(elapsed), xenfsd fds max $(fdmax))"
"$PY" - "$M" "$EXP" <<'PYEOF' || xf_fail "stat of every entry"
import os, stat, sys
m, h = sys.argv[1], sys.argv[2]
n = 0
for dirpath, dirs, files in os.walk(m):
    rel = os.path.relpath(dirpath, m)
    hdir = os.path.join(h, rel)
    if sorted(dirs + files) != sorted(os.listdir(hdir)):
        sys.exit(f"listing of {rel} differs from the host")
    for name in dirs + files:
        gs = os.lstat(os.path.join(dirpath, name))
        hs = os.lstat(os.path.join(hdir, name))
        if stat.S_IFMT(gs.st_mode) != stat.S_IFMT(hs.st_mode) or \
           gs.st_mode != hs.st_mode or gs.st_mtime_ns != hs.st_mtime_ns:
            sys.exit(f"stat of {rel}/{name} differs from the host")
        n += 1
print(f"stat'ed {n} entries; mode, type and mtime match the host")
PYEOF
ok "stat of every entry matches the host ($(elapsed), xenfsd fds max $(fdmax))"

# --- pin every directory in the guest and use them by descriptor
"$PY" - "$M" "$EXP" <<'PYEOF' || xf_fail "pinned-inode checks"
import os, resource, sys
m, h = sys.argv[1], sys.argv[2]
# RLIMIT_NOFILE may be capped near 20000 without CAP_SYS_RESOURCE: two
# processes pin half the tree each, both at once (a pipe barrier).
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
if hard < 10200:
    sys.exit(f"RLIMIT_NOFILE hard limit {hard} is too small to pin the tree")

def pin(tops):
    fds = {}
    for a in tops:
        top = f"t{a:03}"
        fds[top] = os.open(os.path.join(m, top), os.O_PATH | os.O_DIRECTORY)
        for b in range(100):
            rel = f"{top}/d{b:03}"
            fds[rel] = os.open(os.path.join(m, rel), os.O_PATH | os.O_DIRECTORY)
    return fds

def check(fds, who):
    # fstat every pinned inode (getattr on nodeids the backend may have
    # evicted from its descriptor cache)
    for rel, fd in fds.items():
        gs = os.fstat(fd)
        hs = os.lstat(os.path.join(h, rel))
        if gs.st_mtime_ns != hs.st_mtime_ns or gs.st_mode != hs.st_mode:
            sys.exit(f"{who}: fstat of pinned {rel} differs from the host")
    # reopen 1000 for reading through the magic link (OPENDIR on a nodeid
    # with no fresh lookup) and list them
    rels = list(fds)
    for rel in rels[::10][:1000]:
        d = os.open(f"/proc/self/fd/{fds[rel]}", os.O_RDONLY | os.O_DIRECTORY)
        names = sorted(os.listdir(d))
        os.close(d)
        if names != sorted(os.listdir(os.path.join(h, rel))):
            sys.exit(f"{who}: listing of reopened {rel} differs from the host")
    # create a file by descriptor in 100 pinned directories spread over the
    # tree: each must land in the right host directory
    for rel in rels[::100][:100]:
        fd = os.open("made-by-fd", os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o644, dir_fd=fds[rel])
        os.write(fd, rel.encode())
        os.close(fd)
    for rel in rels[::100][:100]:
        with open(os.path.join(h, rel, "made-by-fd")) as f:
            if f.read() != rel:
                sys.exit(f"{who}: file made in pinned {rel} has wrong content")
    print(f"{who}: fstat of {len(fds)} pinned dirs matches the host; 1000 "
          f"reopened and listed; 100 files created by dir descriptor")

r1, w1 = os.pipe()
r2, w2 = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r1); os.close(w2)
    fds = pin(range(100, 200))
    os.write(w1, b"p")              # pinned
    os.read(r2, 1)                  # parent pinned too
    check(fds, "child")
    os._exit(0)
os.close(w1); os.close(r2)
fds = pin(range(0, 100))
if os.read(r1, 1) != b"p":
    sys.exit("child failed to pin its half")
os.write(w2, b"g")
n_b = len(os.listdir(f"/proc/{os.environ['B']}/fd"))
print(f"guest holds {2 * len(fds)} pinned directory inodes; "
      f"xenfsd has {n_b} descriptors")
check(fds, "parent")
_, st = os.waitpid(pid, 0)
if st != 0:
    sys.exit("child checks failed")
PYEOF
ok "20k+ inodes pinned in the guest, used by descriptor ($(elapsed), xenfsd fds max $(fdmax))"

n=$(find "$EXP" -name made-by-fd | wc -l)
xf_assert_eq "$n" 200 "files created by descriptor on the host"
xf_assert_eq "$(cat "$M/t123/f")" t123 "file content after all the evictions"

touch "$W/stop-sampler"
wait "$sampler"
max=$(fdmax)
xf_log "xenfsd descriptor count: max $max over the run (max-fds = 256)"
[ -n "$max" ] && [ "$max" -gt 0 ] || xf_fail "sampler recorded nothing"
[ "$max" -lt "$LIMIT" ] ||
    xf_fail "xenfsd used $max descriptors with max-fds = 256 (limit $LIMIT)"
ok "xenfsd stayed at <= $max descriptors while the guest held >20k inodes"
kill -0 "$B" || xf_fail "xenfsd died"
xf_umount "$M"
# clean shutdown, and no sanitizer report from xenfsd (SANITIZE= builds)
xf_stop_backend
xf_expect_no_log 'Sanitizer|runtime error:'
xf_log "PASS"
