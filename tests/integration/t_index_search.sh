#!/usr/bin/env bash
# timeout: 150
# Indexer + xenfs-search end to end: files created by vm1 and vm2 through
# their mounts are found by name, substring, content and every filter
# within 2 s of the write, also after renames, moves across directories
# (a directory of many files renamed: its entries follow without a
# re-crawl) and deletes (a deleted file is never returned); --vm limits
# to what that VM sees; --stats, --json, -c, -l, -b, --regex, exit codes.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfs-services xenfs-search
[ -e "$O/lib/xenfs/indexer.so" ] || xf_fail "indexer.so not built"
xf_config_std
# a file that exists before anything starts: found by the first crawl
mkdir -p "$W/shared/old/deep"
echo "ancient parchment text" >"$W/shared/old/deep/scroll.txt"
mkdir -p "$W/home2"
cat >>"$XF_CONF" <<EOF2
[export home2]
path = $W/home2
access = vm2:rw

[services]
plugins = indexer
plugin-dir = $O/lib/xenfs
[index]
max-text-size = 64K
EOF2
xf_start_backend "$XF_CONF"
"$BIN/xenfs-services" -c "$XF_CONF" -f -v >>"$W/services.log" 2>&1 </dev/null &
XF_DAEMONS+=("$!")
xf_mount "$(xf_sock vm1)" shared "$W/m1s"
xf_mount "$(xf_sock vm1)" home1 "$W/m1h"
xf_mount "$(xf_sock vm2)" shared "$W/m2s" ro
xf_mount "$(xf_sock vm2)" home2 "$W/m2h"

S() { "$BIN/xenfs-search" -C "$XF_CONF" "$@"; }
# found FILTERS...: the search prints exactly the expected line(s) in $want
has() { S "$@" 2>/dev/null | grep -qxF -- "$want"; }
hasnt() { ! S "$@" 2>/dev/null | grep -qxF -- "$want"; }
within2() { xf_wait_until 2 "$@" || { tail -n 30 "$W/services.log" >&2; xf_fail "not within 2 s: $* (want $want)"; }; }
never() { "$@" || xf_fail "unexpected: $* (want absent $want)"; }

db_ready() { [ -e "$W/state/index.db" ]; }
xf_wait_until 10 db_ready || { cat "$W/services.log" >&2; xf_fail "no index.db"; }
want="vm1:/old/deep/scroll.txt"; within2 has scroll
want="vm2:/old/deep/scroll.txt"; within2 has scroll

# writes through vm1's mounts
mkdir -p "$W/m1s/docs" "$W/m1h/private"
echo "the quarterly invoice for ACME, total 2024 euros" >"$W/m1s/docs/Invoice-2024.txt"
head -c 300000 /dev/urandom >"$W/m1h/private/blob.bin"
printf 'zebra\0binary' >"$W/m1h/private/zebra.dat"
ln -s docs/Invoice-2024.txt "$W/m1s/link-to-invoice"
want="vm1:/docs/Invoice-2024.txt"; within2 has Invoice-2024
want="vm1:/docs/Invoice-2024.txt"; within2 has voice-20              # substring
want="vm2:/docs/Invoice-2024.txt"; within2 has voice-20              # shared: vm2 sees it
want="vm1:/docs/Invoice-2024.txt"; within2 has -i invoice-2024
want="vm1:/docs/Invoice-2024.txt"; within2 has --vm vm1 -b 'Inv*.txt'
want="vm1:/docs/Invoice-2024.txt"; within2 has --regex '^/docs/I.*[0-9]{4}\.txt$'
want="vm1:/docs/Invoice-2024.txt: the quarterly invoice for ACME, total 2024 euros"
within2 has --vm vm1 --content quarterly
want="vm1:/docs/Invoice-2024.txt"; within2 has --type f --size +10 --newer 1h --path '/docs/*' Invoice
want="vm1:/docs"; within2 has --type d docs
want="vm1:/link-to-invoice"; within2 has --type l invoice
want="vm1:/private/blob.bin"; within2 has --size +200k blob
want="vm1:/private/blob.bin"; within2 has --vm vm1 blob
want="vm2:/private/blob.bin"; never hasnt blob                       # home1 is vm1's only
want="vm1:/private/blob.bin"; never hasnt --vm vm2 blob
want="vm1:/private/blob.bin"; never hasnt --size -100k blob
want="vm1:/private/zebra.dat"; within2 has zebra
want="vm1:/private/zebra.dat"; never hasnt --content zebra           # binary: no text

# a text file larger than [index] max-text-size: name and metadata only
{ echo "hugeword"; head -c 70000 /dev/zero | tr '\0' 'a'; echo; } >"$W/m1h/big.txt"
want="vm1:/big.txt"; within2 has --size +64k big.txt
want="vm1:/big.txt"; never hasnt --content hugeword
# dom0 writing straight into the export (the stream's dom0 watcher)
echo "written on the host by dom0" >"$W/shared/from-dom0.txt"
want="vm2:/from-dom0.txt"; within2 has --vm vm2 from-dom0
want="vm2:/from-dom0.txt: written on the host by dom0"
within2 has --vm vm2 --content host

# vm1 writes into shared: vm2 (ro there) sees it too
echo "note from vm1 for vm2" >"$W/m1s/for-vm2.txt"
want="vm2:/for-vm2.txt"; within2 has --vm vm2 for-vm2

# vm2 writes through its own rw export; only vm2 sees those files
mkdir -p "$W/m2h/photos/2024"
echo "holiday diary: the lighthouse at dawn" >"$W/m2h/photos/2024/Diary.md"
head -c 5000 /dev/urandom >"$W/m2h/photos/2024/IMG_0042.jpg"
want="vm2:/photos/2024/Diary.md"; within2 has Diary.md
want="vm2:/photos/2024/IMG_0042.jpg"; within2 has -i img_0042
want="vm2:/photos/2024/IMG_0042.jpg"; within2 has --vm vm2 --type f --size +4k --path '/photos/*' 0042
want="vm2:/photos/2024/Diary.md: holiday diary: the lighthouse at dawn"
within2 has --vm vm2 --content lighthouse
want="vm2:/photos/2024"; within2 has --type d -b 2024
want="vm1:/photos/2024/Diary.md"; never hasnt Diary
n=$(S -c --vm vm1 Diary); xf_assert_eq "$n" 0 "vm1 must not see vm2's home"
mv "$W/m2h/photos/2024/Diary.md" "$W/m2h/diary-moved.md"
want="vm2:/diary-moved.md"; within2 has diary-moved
want="vm2:/photos/2024/Diary.md"; within2 hasnt Diary
rm -r "$W/m2h/photos"
want="vm2:/photos/2024/IMG_0042.jpg"; within2 hasnt IMG_0042
want="vm2:/photos/2024/IMG_0042.jpg"; never hasnt --size +4k IMG

# rename and move across directories
mv "$W/m1s/docs/Invoice-2024.txt" "$W/m1s/docs/Bill-2024.txt"
want="vm1:/docs/Bill-2024.txt"; within2 has Bill-2024
want="vm1:/docs/Invoice-2024.txt"; within2 hasnt Invoice-2024
want="vm1:/docs/Bill-2024.txt: the quarterly invoice for ACME, total 2024 euros"
within2 has --vm vm1 --content quarterly
mkdir "$W/m1s/archive"
mv "$W/m1s/docs/Bill-2024.txt" "$W/m1s/archive/"
want="vm1:/archive/Bill-2024.txt"; within2 has Bill-2024
want="vm1:/docs/Bill-2024.txt"; within2 hasnt Bill-2024

# a directory of many files renamed: entries follow by prefix
mkdir "$W/m1s/big"
for i in $(seq 1 300); do : >"$W/m1s/big/item$i"; done
want="vm1:/big/item300"; within2 has item300
crawls=$(grep -c 'full crawl' "$W/services.log")
mv "$W/m1s/big" "$W/m1s/moved"
want="vm1:/moved/item300"; within2 has --vm vm1 item300
want="vm1:/moved/item17"; within2 has --vm vm1 -b item17
n=$(S -c --vm vm1 --path '/moved/*' item) || xf_fail "count"
xf_assert_eq "$n" 300 "entries under /moved"
want="vm1:/big/item300"; never hasnt item300
xf_assert_eq "$(grep -c 'full crawl' "$W/services.log")" "$crawls" "crawls after a directory rename"
# RENAME_EXCHANGE swaps two subtrees; a hard link is a second name
if [ -x "$BIN/xf-renameat2" ]; then
	mkdir -p "$W/m1s/xa" "$W/m1s/xb"
	: >"$W/m1s/xa/alpha-only"
	: >"$W/m1s/xb/beta-only"
	want="vm1:/xb/beta-only"; within2 has beta-only
	"$BIN/xf-renameat2" --exchange "$W/m1s/xa" "$W/m1s/xb" || xf_fail "exchange"
	want="vm1:/xa/beta-only"; within2 has --vm vm1 beta-only
	want="vm1:/xb/alpha-only"; within2 has --vm vm1 alpha-only
	want="vm1:/xa/alpha-only"; never hasnt --vm vm1 alpha-only
fi
ln "$W/m1s/for-vm2.txt" "$W/m1s/hardlink-name"
want="vm1:/hardlink-name"; within2 has hardlink-name
rm "$W/m1s/for-vm2.txt"
want="vm1:/for-vm2.txt"; within2 hasnt for-vm2
want="vm1:/hardlink-name"; never has hardlink-name

# modify: new content replaces the old
echo "fresh words aardvark" >"$W/m1s/archive/Bill-2024.txt"
want="vm1:/archive/Bill-2024.txt: fresh words aardvark"
within2 has --vm vm1 --content aardvark
want="vm1:/archive/Bill-2024.txt"; within2 hasnt --content quarterly

# deletes
rm "$W/m1s/archive/Bill-2024.txt"
want="vm1:/archive/Bill-2024.txt"; within2 hasnt Bill-2024
want="vm1:/archive/Bill-2024.txt"; never hasnt --content aardvark
rm -r "$W/m1s/moved"
none_left() { [ "$(S -c item)" = 0 ]; }
xf_wait_until 2 none_left || xf_fail "deleted entries still found: $(S -c item)"

# output forms and exit codes
S nothing-matches-this >/dev/null; xf_assert_eq $? 1 "exit when nothing matched"
S --type x foo >/dev/null 2>&1; xf_assert_eq $? 2 "exit on a bad option"
n=$(S -l 1 scroll | wc -l); xf_assert_eq "$n" 1 "-l 1"
S --json --vm vm1 scroll | grep -q '^{"vm":"vm1","export":"shared","path":"/old/deep/scroll.txt","type":"f","size":23,' ||
	xf_fail "json: $(S --json --vm vm1 scroll)"
S --json --vm vm1 --content parchment | grep -q '"snippet":"ancient parchment text"' ||
	xf_fail "json snippet: $(S --json --vm vm1 --content parchment)"
stats_ok() {
	S --stats >"$W/stats" || xf_fail "--stats failed"
	grep -q '^vm        vm1  ' "$W/stats" && grep -q '^vm        vm2  ' "$W/stats" &&
		grep -q 'lag 0 records' "$W/stats"
}
xf_wait_until 5 stats_ok || { cat "$W/stats" >&2; xf_fail "--stats"; }

# --reindex: a request file the running indexer picks up; the crawl ends
# and the index is unchanged (nothing was stale)
before=$(S --vm vm2 --path '/*' -c '')
S --reindex bad/name >/dev/null 2>&1; xf_assert_eq $? 2 "exit on a bad --reindex name"
S --reindex vm2 >/dev/null || xf_fail "--reindex vm2"
reindexed() { grep -q 'full crawl of export shared (reindex requested)' "$W/services.log"; }
xf_wait_until 5 reindexed || xf_fail "reindex request not picked up"
done_crawl() { [ "$(grep -c 'crawl of export shared done' "$W/services.log")" -ge 2 ]; }
xf_wait_until 20 done_crawl || xf_fail "reindex crawl did not finish"
grep -q 'full crawl of export home1 (reindex' "$W/services.log" &&
	xf_fail "reindex vm2 crawled home1, which vm2 cannot see"
xf_assert_eq "$(S --vm vm2 --path '/*' -c '')" "$before" "entries after reindex"

# on a terminal: a progress bar for --reindex, highlighted snippets
if command -v script >/dev/null; then
	script -qec "$BIN/xenfs-search -C $XF_CONF --reindex vm1" /dev/null \
	    >"$W/tty.out" 2>&1 </dev/null || xf_fail "--reindex on a tty"
	grep -q 'done' "$W/tty.out" || { cat -v "$W/tty.out" >&2; xf_fail "no progress to done on a tty"; }
	script -qec "$BIN/xenfs-search -C $XF_CONF --vm vm1 --content parchment" \
	    /dev/null >"$W/tty.out" 2>&1 </dev/null || xf_fail "--content on a tty"
	grep -q "$(printf '\033\\[1;31mparchment\033\\[0m')" "$W/tty.out" ||
		{ cat -v "$W/tty.out" >&2; xf_fail "match not highlighted on a tty"; }
fi
exit 0
