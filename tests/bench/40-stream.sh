# tests/bench/40-stream.sh (sourced by tests/bench/run): what the
# operation stream costs.  The metadata workload (xf-bench-meta: create,
# stat, unlink of many empty files; every create and unlink appends a
# journal record before its reply) runs on the xenfs target (stream on,
# journal in BENCH_DIR/state on the same disk) and on a second xenfsd
# started with XENFS_NO_STREAM=1 (a debug switch of backend/events.c: no
# journal at all).  Rows "stream on"/"stream off" fill the xenfs column
# only.  We compare against no stream rather than against a journal on
# tmpfs because the journal's cost is one write(2) per change into the
# page cache either way (no fsync per record: docs/stream.md), so tmpfs
# vs disk would differ only by the once-a-second fdatasync.

STREAM_FILES=10000
[ "$BENCH_QUICK" = 1 ] && STREAM_FILES=2000

stream_bench()
{
	local on_dir off_root=$BENCH_DIR/nostream out_on out_off
	[ -n "${BENCH_OK[xenfs]:-}" ] || { notes+=("stream: xenfs target not up"); return; }
	[ -x "$BIN/xf-bench-meta" ] || { notes+=("stream: xf-bench-meta not built"); return; }
	on_dir=$(bench_dir xenfs)/stream
	rm -rf --one-file-system "$on_dir" "$off_root"
	mkdir -p "$on_dir"
	XENFS_NO_STREAM=1 bench_second_xenfs "$off_root" || return
	bench_log "stream on"
	sync
	out_on=$("$BIN/xf-bench-meta" "$on_dir" "$STREAM_FILES") || out_on=
	bench_log "stream off"
	sync
	out_off=$("$BIN/xf-bench-meta" "$off_root/mnt" "$STREAM_FILES") || out_off=
	bench_second_stop "$off_root"
	rm -rf --one-file-system "$on_dir" "$off_root"
	local op v_on v_off
	for op in create unlink; do
		v_on=$(echo "$out_on" | awk -v k="$op" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }')
		v_off=$(echo "$out_off" | awk -v k="$op" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }')
		bench_row "stream on: $op" "ops/s" - - "${v_on:-ERR}"
		bench_row "stream off: $op" "ops/s" - - "${v_off:-ERR}"
	done
}

stream_bench
