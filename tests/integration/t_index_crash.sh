#!/usr/bin/env bash
# timeout: 170
# Restarting the indexer after kill -9 loses nothing: a guest keeps
# creating, renaming and deleting files while the indexer process is
# killed (also in the middle of its first crawl); once it caught up with
# the stream, the index equals the export exactly.  A corrupted database
# is reported by xenfs-search with how to rebuild it (exit 2), detected by
# the indexer at start and rebuilt by a crawl.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfs-services xenfs-search xenfsctl xf-bench-index
xf_config_std
# a tree big enough that the first kill lands inside the first crawl
PRE=60000
"$BIN/xf-bench-index" mktree "$W/home1/pre" $PRE || xf_fail "mktree"
cat >>"$XF_CONF" <<EOF2
[services]
plugins = indexer
plugin-dir = $O/lib/xenfs
EOF2
xf_start_backend "$XF_CONF"
start_svc() {
	"$BIN/xenfs-services" -c "$XF_CONF" -f -v >>"$W/services.log" 2>&1 </dev/null &
	SVC=$!
	XF_DAEMONS+=("$SVC")
}
start_svc
xf_mount "$(xf_sock vm1)" shared "$W/m"
S() { "$BIN/xenfs-search" -C "$XF_CONF" "$@"; }
# this test's indexer only (plugin children run "-c CONF ... --name NAME")
ipid() { pgrep -f -- "-c $XF_CONF --plugin .* --name indexer" | head -n 1; }
kill_indexer() {
	local p
	xf_wait_until 10 ipid >/dev/null || xf_fail "no indexer process"
	p=$(ipid)
	kill -9 "$p" 2>/dev/null
}

# a guest workload in the background
(
	mkdir -p "$W/m/w" || exit 1
	for i in $(seq 1 600); do
		echo "file $i" >"$W/m/w/f$i" || exit 1
		case $((i % 10)) in
		3) mv "$W/m/w/f$i" "$W/m/w/r$i" || exit 1 ;;
		7) rm "$W/m/w/f$i" || exit 1 ;;
		esac
		[ $((i % 150)) = 0 ] && { mkdir "$W/m/w/sub$i" && mv "$W/m/w/f$((i-1))" "$W/m/w/sub$i/" || exit 1; }
	done
	exit 0
) &
WR=$!
sleep 0.5
kill_indexer                   # likely during the crawl of home1
sleep 1.5
kill_indexer
sleep 1.5
kill_indexer
wait "$WR" || xf_fail "guest workload failed"

CUR=$W/state/journal/cursors/indexer
head=$("$BIN/xenfsctl" -d "$W/state/journal" events | tail -n 1 | cut -d' ' -f1)
caught_up() { [ "$(cat "$CUR" 2>/dev/null)" = "$head" ]; }
xf_wait_until 60 caught_up || { tail -n 30 "$W/services.log" >&2; xf_fail "cursor did not reach $head"; }
crawled() { S --stats 2>/dev/null | grep -q 'export    home1 .*crawl done'; }
xf_wait_until 60 crawled || { S --stats >&2; xf_fail "crawl of home1 did not finish"; }

compare() {
	(cd "$W/shared" && find . -mindepth 1 | sed 's/^\.//' | sort) >"$W/want"
	S --vm vm1 --path '/*' -0 | tr '\0' '\n' | grep '^vm1:' | sed 's/^vm1://' |
	    sort >"$W/got.all"
	# shared only: home1 paths start with /pre
	grep -v '^/pre' "$W/got.all" >"$W/got" || true
	diff "$W/want" "$W/got" >"$W/diff"
}
xf_wait_until 5 compare || { head -n 20 "$W/diff" >&2; xf_fail "index differs from the export after kill -9"; }
n=$(S -c --vm vm1 --path '/pre/*' --type f report)
xf_assert_eq "$n" $PRE "crawled files after kills during the crawl"
# the crawl was interrupted and resumed (not restarted from scratch)
awk '/crashed \(signal 9\)/ { k = 1 } /crawl of export home1 done/ { if (k) ok = 1 }
     END { exit !ok }' "$W/services.log" ||
	{ cat "$W/services.log" >&2; xf_fail "first crawl not interrupted by a kill"; }
[ "$(grep -c 'full crawl of export home1' "$W/services.log")" = 1 ] ||
	xf_fail "the interrupted crawl started over instead of resuming"

# corruption: stop, scribble over the database, check the CLI's message
kill "$SVC"; wait "$SVC" 2>/dev/null
DB=$W/state/index.db
[ -e "$DB" ] || xf_fail "no $DB"
rm -f "$DB-wal" "$DB-shm"
python3 - "$DB" <<'PY' || dd if=/dev/urandom of="$DB" bs=4096 seek=1 count=8 conv=notrunc status=none
import sys
with open(sys.argv[1], "r+b") as f:
    for off in range(100, 64 * 1024, 512):
        f.seek(off); f.write(b"garbage!garbage!")
PY
S --vm vm1 f1 >"$W/out" 2>"$W/err"; rc=$?
xf_assert_eq "$rc" 2 "xenfs-search exit on a corrupt database"
grep -q 'rebuild' "$W/err" || { cat "$W/err" >&2; xf_fail "no rebuild hint"; }
mv "$DB" "$W/saved.db"
S f1 >/dev/null 2>"$W/err"; rc=$?
xf_assert_eq "$rc" 2 "xenfs-search exit on a missing database"
grep -q 'no index database' "$W/err" || { cat "$W/err" >&2; xf_fail "missing db message"; }
mv "$W/saved.db" "$DB"
start_svc
xf_wait_until 30 grep -q "is damaged" "$W/services.log" ||
	xf_fail "indexer did not detect the damage"
[ -e "$DB.corrupt" ] || xf_fail "damaged database not kept aside"
xf_wait_until 60 crawled || xf_fail "rebuild crawl did not finish"
xf_wait_until 10 compare || { head -n 20 "$W/diff" >&2; xf_fail "rebuilt index differs"; }
# and the stream still updates it
echo new >"$W/m/after-rebuild"
want="vm1:/after-rebuild"
has() { S --vm vm1 after-rebuild 2>/dev/null | grep -qxF "$want"; }
xf_wait_until 2 has || xf_fail "not indexed after the rebuild"
exit 0
