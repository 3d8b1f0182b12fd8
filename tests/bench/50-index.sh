# tests/bench/50-index.sh (sourced by tests/bench/run): the indexer.
# xf-bench-index builds a tree of INDEX_FILES files (100 per directory,
# every 10th a small text file) under BENCH_DIR, crawls it into a fresh
# index database through the indexer's own crawl code (names and
# metadata: the figure the >= 20k files/s target is about), runs the
# content pass (text files through the unprivileged extraction helper),
# then times queries on a read-only connection, as xenfs-search opens
# it: name (a whole file name), substring (5 characters inside names),
# content (a word of the text).  Rows fill the xenfs column; latencies
# are in ms (lower is better, unlike the other rows).  Targets: crawl >=
# 20000 files/s, p50 <= 10 ms.

INDEX_FILES=${INDEX_FILES:-100000}
[ "$BENCH_QUICK" = 1 ] && INDEX_FILES=20000

index_bench()
{
	local root=$BENCH_DIR/index out k v
	[ -x "$BIN/xf-bench-index" ] || { notes+=("index: xf-bench-index not built"); return; }
	rm -rf --one-file-system "$root"
	mkdir -p "$root"
	bench_log "index: tree of $INDEX_FILES files"
	if ! "$BIN/xf-bench-index" mktree "$root/tree" "$INDEX_FILES"; then
		notes+=("index: could not build the tree")
		return
	fi
	sync
	bench_log "index: crawl and queries"
	if ! out=$("$BIN/xf-bench-index" run "$root/tree" "$root/index.db" 300); then
		notes+=("index: benchmark failed")
		return
	fi
	set -- $out
	while [ $# -ge 2 ]; do
		k=$1 v=$2
		shift 2
		case $k in
		crawl_files) ;;
		crawl_rate) bench_row "index crawl ($INDEX_FILES files)" "files/s" - - "$v" ;;
		content_rate) bench_row "index content pass" "files/s" - - "$v" ;;
		*_p50|*_p99) bench_row "index query ${k%_*} ${k##*_}" "ms" - - "$v" ;;
		esac
	done
	rm -rf --one-file-system "$root"
}
index_bench
