# tests/bench/30-tree.sh (sourced by tests/bench/run): untar, grep -r and
# rm -r of a source tree built at run time from /usr/include and
# /usr/share/doc (about 15k files; /usr/include alone with BENCH_QUICK).

TREE_TAR=$BENCH_DIR/tree.tar
tree_make()
{
	local parts=(usr/include usr/share/doc) tag=full
	[ "$BENCH_QUICK" = 1 ] && parts=(usr/include) tag=quick
	if [ ! -s "$TREE_TAR" ] || [ "$(cat "$TREE_TAR.tag" 2>/dev/null)" != $tag ]; then
		bench_log "building $TREE_TAR from ${parts[*]}"
		tar -C / -cf "$TREE_TAR" "${parts[@]}" 2>/dev/null ||
			[ -s "$TREE_TAR" ]
		echo $tag >"$TREE_TAR.tag"
	fi
	TREE_FILES=$(tar -tf "$TREE_TAR" | grep -vc '/$')
	TREE_MB=$(( $(stat -c %s "$TREE_TAR") / 1048576 ))
}

# rate = files per second of each phase
tree_run()
{
	local d=$1 t0 t1 t2 t3
	t0=$(bench_now_ms)
	tar -C "$d" --no-same-owner -xf "$TREE_TAR" || return 1
	t1=$(bench_now_ms)
	drop_caches
	# a pattern that never matches: grep reads every byte of every file
	grep -r -q -F "xenfs-bench-no-such-string-$$" "$d" && return 1
	t2=$(bench_now_ms)
	rm -r "$d/usr" || return 1
	t3=$(bench_now_ms)
	awk -v n="$TREE_FILES" -v a="$t0" -v b="$t1" -v c="$t2" -v e="$t3" \
	    'function r(ms) { return ms > 0 ? n * 1000 / ms : 0 }
	    BEGIN { printf "untar %.0f grep-r %.0f rm-r %.0f\n",
	    r(b - a), r(c - b), r(e - c) }'
}

tree_make
bench_add "tree ${TREE_FILES}f" "files/s" tree_run
notes+=("tree: $TREE_FILES files, ${TREE_MB} MiB tar of /usr/include$([ "$BENCH_QUICK" = 1 ] || echo ' + /usr/share/doc')")
