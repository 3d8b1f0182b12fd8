# tests/bench/70-snapshot.sh (sourced by tests/bench/run): xenfs-snapshot.
# A private xenfsd exports a tree of SNAP_FILES small files (100 per
# directory, 0..2 KB of random bytes each) plus SNAP_BIG_MB of big random
# files; no guest is connected (nothing to freeze, the capture path is
# otherwise the same).  Rows (xenfs column):
#   snapshot full               files/s of the first (full) snapshot
#   snapshot full throughput    MB/s of a full snapshot of the big files
#   snapshot incremental 1%     seconds for a snapshot after 1% of the
#                               small files changed (dom0 appends; the
#                               journal says which)
#   snapshot walk 1%            seconds for a --verify-walk snapshot after
#                               another 1% changed (lstat + catalog compare
#                               of every object, the same content work)
#   snapshot incr/walk          the ratio (target <= 0.1)
# The pair runs twice: with the host caches warm, and after dropping
# them (echo 3 > drop_caches: a nightly backup's situation, where the
# walk's lstat of every inode goes to disk) unless SNAP_COLD=0.
# Repository in BENCH_DIR (same disk as the exports: what matters here is
# the walk and the store, not the medium).

SNAP_FILES=${SNAP_FILES:-100000}
SNAP_BIG_MB=${SNAP_BIG_MB:-1024}
if [ "$BENCH_QUICK" = 1 ]; then
	SNAP_FILES=20000
	SNAP_BIG_MB=256
fi

snap_time() # CMD...: seconds (3 decimals) the command took
{
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null || return 1
	t1=$(date +%s%N)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}

# snap_change TREE K: append to one file in every directory (1%), a
# different file each K; wait for dom0watch (holds events 150 ms)
snap_change()
{
	python3 - "$1" "$SNAP_FILES" "$2" <<'PY'
import os, sys
root, n, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(0, n, 100):
    p = os.path.join(root, "d%04d" % (i // 100), "f%03d" % (37 + k))
    with open(p, "ab") as f:
        f.write(b"changed\n")
PY
	sleep 1.5
	sync
}

snap_drop()
{
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
}

snapshot_bench()
{
	local root=$BENCH_DIR/snapshot pid i s ts tb ti tw
	[ -x "$BIN/xenfs-snapshot" ] || { notes+=("snapshot: not built"); return; }
	rm -rf --one-file-system "$root"
	mkdir -p "$root/tree" "$root/big" "$root/state" "$root/run"
	bench_log "snapshot: tree of $SNAP_FILES files, $SNAP_BIG_MB MB of big files"
	python3 - "$root/tree" "$SNAP_FILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
r = random.Random(7)
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // 100))
    if i % 100 == 0:
        os.mkdir(d)
    with open(os.path.join(d, "f%03d" % (i % 100)), "wb") as f:
        f.write(os.urandom(r.randint(0, 2048)))
PY
	for i in $(seq 1 $((SNAP_BIG_MB / 64))); do
		head -c $((64 << 20)) /dev/urandom >"$root/big/b$i"
	done
	cat >"$root/xenfs.conf" <<EOC
[global]
control-socket = $root/run/control.sock
state-dir = $root/state

[export tree]
path = $root/tree
access = bench:rw

[export big]
path = $root/big
access = bigvm:rw

[domain bench]
local-socket = $root/run/bench.sock

[domain bigvm]
local-socket = $root/run/bigvm.sock

[snapshot]
repository = $root/repo
EOC
	"$BIN/xenfsd" -c "$root/xenfs.conf" -f >"$root/xenfsd.log" 2>&1 \
	    </dev/null &
	pid=$!
	for i in $(seq 100); do
		[ -S "$root/run/control.sock" ] && break
		sleep 0.1
	done
	s=("$BIN/xenfs-snapshot" -c "$root/xenfs.conf" -q)
	sync
	bench_log "snapshot: full"
	if ts=$(snap_time "${s[@]}" bench); then
		bench_row "snapshot full ($SNAP_FILES files)" "files/s" - - \
		    "$(awk -v n="$SNAP_FILES" -v t="$ts" 'BEGIN { printf "%.0f", n / t }')"
	else
		notes+=("snapshot: full snapshot failed")
	fi
	sync
	if tb=$(snap_time "${s[@]}" bigvm); then
		bench_row "snapshot full throughput" "MB/s" - - \
		    "$(awk -v n="$SNAP_BIG_MB" -v t="$tb" 'BEGIN { printf "%.0f", n * 1.048576 / t }')"
	fi
	local round=0 mode
	for mode in warm cold; do
		[ "$mode" = cold ] && [ "${SNAP_COLD:-1}" = 0 ] && continue
		bench_log "snapshot: incremental vs walk after 1% changed ($mode)"
		snap_change "$root/tree" $((round++))
		[ "$mode" = cold ] && snap_drop
		ti=$(snap_time "${s[@]}" bench) || notes+=("snapshot: incremental failed")
		snap_change "$root/tree" $((round++))
		[ "$mode" = cold ] && snap_drop
		tw=$(snap_time "${s[@]}" bench --verify-walk) || notes+=("snapshot: walk failed")
		if [ -n "${ti:-}" ] && [ -n "${tw:-}" ]; then
			bench_row "snapshot incremental 1% ($SNAP_FILES files, $mode)" "s" - - "$ti"
			bench_row "snapshot walk 1% ($SNAP_FILES files, $mode)" "s" - - "$tw"
			bench_row "snapshot incr/walk ($mode; target <= 0.1)" "ratio" - - \
			    "$(awk -v a="$ti" -v b="$tw" 'BEGIN { printf "%.3f", a / b }')"
		fi
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -rf --one-file-system "$root"
}
snapshot_bench
