# tests/bench/20-meta.sh (sourced by tests/bench/run): create, stat and
# unlink of many empty files in one directory (tests/bench/xf-bench-meta).

META_FILES=10000
[ "$BENCH_QUICK" = 1 ] && META_FILES=2000

meta_run()
{
	"$BIN/xf-bench-meta" "$1" "$META_FILES"
}

if [ -x "$BIN/xf-bench-meta" ]; then
	bench_add "${META_FILES} files" "ops/s" meta_run
else
	notes+=("metadata: $BIN/xf-bench-meta not built (make programs)")
fi
