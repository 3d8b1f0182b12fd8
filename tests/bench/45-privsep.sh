# tests/bench/45-privsep.sh (sourced by tests/bench/run): what privilege
# separation costs.  The default xenfs target runs the domain in its own
# worker process, so every change crosses to the parent once (the journal
# append before the reply, docs/security.md section 4).  The same
# metadata workload (xf-bench-meta: create, stat, unlink of many empty
# files) runs on the xenfs target and on a second xenfsd started with
# --no-sandbox (everything in one process, no
# confinement).  Rows "privsep on/off" fill the xenfs column only; the
# ratio on/off is the cost of the process boundary.

PRIVSEP_FILES=10000
[ "$BENCH_QUICK" = 1 ] && PRIVSEP_FILES=2000

privsep_bench()
{
	local on_dir off_root=$BENCH_DIR/nosandbox i out_on out_off op
	local v_on v_off
	[ -n "${BENCH_OK[xenfs]:-}" ] || { notes+=("privsep: xenfs target not up"); return; }
	[ -x "$BIN/xf-bench-meta" ] || { notes+=("privsep: xf-bench-meta not built"); return; }
	on_dir=$(bench_dir xenfs)/privsep
	rm -rf --one-file-system "$on_dir" "$off_root"
	mkdir -p "$on_dir"
	bench_second_xenfs "$off_root" --no-sandbox || return
	# alternate on/off twice and keep the better of each: the machine
	# is shared, one slow burst should not decide the ratio
	out_on= out_off=
	for i in 1 2; do
		bench_log "privsep on ($i)"
		sync
		out_on+=" $("$BIN/xf-bench-meta" "$on_dir" "$PRIVSEP_FILES" || true)"
		bench_log "privsep off ($i)"
		sync
		out_off+=" $("$BIN/xf-bench-meta" "$off_root/mnt" "$PRIVSEP_FILES" || true)"
	done
	bench_second_stop "$off_root"
	rm -rf --one-file-system "$on_dir" "$off_root"
	best() { echo "$1" | awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k && $(i + 1) > m) m = $(i + 1) } END { if (m) print m }'; }
	for op in create stat unlink; do
		v_on=$(best "$out_on" "$op")
		v_off=$(best "$out_off" "$op")
		bench_row "privsep on: $op" "ops/s" - - "${v_on:-ERR}"
		bench_row "privsep off: $op" "ops/s" - - "${v_off:-ERR}"
	done
}

privsep_bench
