#!/usr/bin/env bash
# timeout: 300
#
# A hostile frontend costs only its own connection.  xenfsd serves two
# domains: "evil" (driven by tests/tools/xf-evil, which breaks the ring
# protocol and sends FUSE garbage in every way it knows) and "good"
# (mounted with mount.xenfs).  After each evil mode:
#   - xf-evil itself reports that the backend behaved (closed the
#     connection on ring violations, answered garbage with errors and
#     stayed connected), exit 0;
#   - xenfsd is still running;
#   - the good mount still works (write + read back a file);
#   - xenfsd logged the evil connection going away;
#   - xenfsd's descriptor count returns to its baseline (nothing leaked):
#     the parent's and its per-domain worker processes' together.
# Last, lookupflood keeps 5000 inodes alive on one connection: xenfsd's
# descriptors must stay within max-fds meanwhile.
#
# XF_EVIL_SECONDS (default 2) bounds the timed modes (toctou, flood,
# forgetflood).
. "$(dirname "$0")/../lib.sh"
xf_init
xf_need_root
xf_need_fuse
xf_need_bin xenfsd mount.xenfs xf-evil

SECS=${XF_EVIL_SECONDS:-2}
MAXFDS=64
mkdir -p "$W/evil" "$W/good" "$W/state"
echo seed >"$W/evil/f"
# names for lookupflood: far more inodes than max-fds
(cd "$W/evil" && for i in $(seq 0 4999); do : >"l$i"; done) ||
	xf_fail "cannot create lookupflood files"
xf_config xenfs.conf <<EOF
[global]
control-socket = $W/control.sock
state-dir = $W/state
max-fds = $MAXFDS

[export ev]
path = $W/evil
access = evil:rw

[export gd]
path = $W/good
access = good:rw

[domain evil]
local-socket = $(xf_sock evil)

[domain good]
local-socket = $(xf_sock good)
EOF

xf_start_backend "$XF_CONF"
PID=$XF_BACKEND_PID
xf_mount "$(xf_sock good)" gd "$W/mnt"

good_io()
{
	# always the same file: the good session's own inode cache (one
	# O_PATH descriptor per live inode) must not grow between samples
	local f=$W/mnt/probe want="good $1 $$ $RANDOM"
	echo "$want" >"$f" || xf_fail "$1: write on the good mount"
	[ "$(cat "$f")" = "$want" ] || xf_fail "$1: read back on the good mount"
	[ "$(cat "$W/good/probe")" = "$want" ] ||
		xf_fail "$1: the good export did not get the write"
}

tree_fds() { xf_tree_fdcount "$PID"; }

# Baseline: the good connection is up and has done I/O; the evil domain
# has been served once (so its worker process exists, idle).
good_io baseline
xf_mount "$(xf_sock evil)" ev "$W/evilmnt"
cat "$W/evilmnt/f" >/dev/null || xf_fail "benign mount of the evil export"
xf_umount "$W/evilmnt"
sleep 0.2
BASE=$(tree_fds) || xf_fail "cannot count xenfsd's descriptors"
xf_log "xenfsd fd baseline: $BASE"

fd_back_to_base()
{
	local n
	n=$(tree_fds) || return 1
	[ "$n" -le "$BASE" ]
}

disconnects() { grep -c "dom evil: export 'ev' disconnected" "$XF_LOG"; }

for mode in badprod badbuf badlen garbage-op forgetflood toctou flood; do
	before=$(disconnects)
	out=$W/evil-$mode.out
	timeout -k 5 $((SECS * 3 + 90)) "$BIN/xf-evil" -s "$(xf_sock evil)" \
	    -t ev -d "$SECS" "$mode" >"$out" 2>&1
	rc=$?
	cat "$out" >&2
	[ "$rc" -eq 0 ] || xf_fail "$mode: xf-evil exited $rc"
	kill -0 "$PID" 2>/dev/null || xf_fail "$mode: xenfsd died"
	good_io "$mode"
	# every mode ends with its connection gone, and xenfsd says so
	xf_wait_until 10 eval '[ "$(disconnects)" -gt "$before" ]' ||
		xf_fail "$mode: xenfsd did not log the evil connection closing"
	case $mode in
	badprod|badbuf|badlen)
		xf_expect_log "dom evil: queue [0-9]+: .*; closing connection"
		;;
	esac
	if ! xf_wait_until 10 fd_back_to_base; then
		for p in "$PID" $(pgrep -P "$PID"); do ls -l "/proc/$p/fd"; done >&2
		xf_fail "$mode: xenfsd has $(tree_fds) descriptors," \
		    "baseline $BASE"
	fi
	xf_log "$mode: ok (fds $(tree_fds))"
done

# lookupflood: 5000 live inodes on one connection; while it holds them
# xenfsd stays within max-fds (plus the connection's own descriptors:
# socket, doorbells, export root: 16 is generous)
before=$(disconnects)
out=$W/evil-lookupflood.out
timeout -k 5 $((SECS * 3 + 90)) "$BIN/xf-evil" -s "$(xf_sock evil)" \
    -t ev -d "$((SECS + 3))" lookupflood >"$out" 2>&1 &
EVIL=$!
xf_wait_until 60 grep -q holding "$out" || {
	cat "$out" >&2
	xf_fail "lookupflood: xf-evil did not get to hold its inodes"
}
n=$(tree_fds)
xf_log "lookupflood: xenfsd holds $n descriptors (baseline $BASE," \
    "max-fds $MAXFDS)"
[ "$n" -le $((BASE + MAXFDS + 16)) ] ||
	xf_fail "lookupflood: $n descriptors exceed max-fds $MAXFDS"
good_io lookupflood
wait "$EVIL"
rc=$?
cat "$out" >&2
[ "$rc" -eq 0 ] || xf_fail "lookupflood: xf-evil exited $rc"
xf_wait_until 10 eval '[ "$(disconnects)" -gt "$before" ]' ||
	xf_fail "lookupflood: xenfsd did not log the evil connection closing"
xf_wait_until 10 fd_back_to_base ||
	xf_fail "lookupflood: xenfsd has $(tree_fds) descriptors," \
	    "baseline $BASE"

# still the same daemon, still serving
kill -0 "$PID" 2>/dev/null || xf_fail "xenfsd died"
good_io final
xf_umount "$W/mnt"
exit 0
