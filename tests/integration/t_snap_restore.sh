#!/usr/bin/env bash
# timeout: 150
# xenfs-snapshot: a tree with every kind of object (sparse file, hard
# links, symlinks, fifo, device node, xattrs, odd modes and owners, odd
# names) is restored bit for bit with its metadata (services/snapshot/
# treecmp.py compares content, mode, owner, mtime, xattrs, link counts,
# symlink targets and holes); data the guest wrote but did not fsync is in
# the snapshot; an incremental snapshot with nothing changed adds
# (almost) nothing; diff lists exactly what changed; restore of one path
# and --in-place; list/diff --json parse; usage errors exit 2; the
# [snapshot] hook runs as HOOK pre|post VM around the freeze.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_cmd python3 setfattr
xf_need_bin xenfsd mount.xenfs xenfsctl xenfs-snapshot
xf_config_std
printf '\n[snapshot]\nrepository = %s\nchunk-avg = 16K\nhook = %s\n' \
    "$W/repo" "$W/hook" >>"$XF_CONF"
# the application hook: records its calls and whether vm1 was frozen
printf '#!/bin/sh\necho "$1 $2 $(%s -c %s guests | grep -c "^vm1 .* yes ")" >>%s\n' \
    "$BIN/xenfsctl" "$XF_CONF" "$W/hook.log" >"$W/hook"
chmod +x "$W/hook"
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" shared "$W/mnt"
SNAP=("$BIN/xenfs-snapshot" -c "$XF_CONF" -q)
CMP="$XF_TOP/services/snapshot/treecmp.py"
S=$W/shared
last_id() { "${SNAP[@]}" list vm1 --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)[-1]["id"])'; }

# a tree with everything, made on dom0 directly in the export
mkdir -p "$S/d/sub" "$S/empty" "$S/we ird/ñame"
head -c 200000 /dev/urandom >"$S/d/rand"
printf 'hello\n' >"$S/d/small"
: >"$S/d/zero"
truncate -s 5M "$S/sparse"
printf 'head' | dd of="$S/sparse" conv=notrunc status=none
printf 'tail' | dd of="$S/sparse" bs=1 seek=$((3 * 1024 * 1024)) \
    conv=notrunc status=none
ln "$S/d/rand" "$S/d/sub/hardlink"
ln "$S/d/small" "$S/we ird/ñame/h2"
ln -s ../d/rand "$S/d/sub/rel-link"
ln -s /etc/passwd "$S/abs-link"
ln -s dangling "$S/dangle"
mkfifo "$S/fifo"
mknod "$S/null" c 1 3
chmod 4751 "$S/d/small"
chmod 1777 "$S/empty"
chown 1234:5678 "$S/d/rand"
chown -h 42:43 "$S/abs-link"
setfattr -n user.color -v blue "$S/d/rand"
setfattr -n user.bin -v 0x00ff00 "$S/d"
setfattr -n trusted.x -v y "$S/sparse"
touch -h -d '2001-02-03 04:05:06.123456789' "$S/dangle"
touch -d '1999-12-31 23:59:59.5' "$S/d/zero"

# unsynced guest data: written through the mount, handle still open
head -c 100000 /dev/urandom >"$W/dirty.src"
exec 7>"$W/mnt/dirty"
cat "$W/dirty.src" >&7

"${SNAP[@]}" vm1 --label first || xf_fail "first snapshot failed"
exec 7>&-
[ "$(cat "$W/hook.log")" = "$(printf 'pre vm1 0\npost vm1 0')" ] ||
	xf_fail "hook calls (want pre then post, unfrozen): $(cat "$W/hook.log")"
id1=$(last_id)
[ -n "$id1" ] || xf_fail "list --json"
"${SNAP[@]}" list vm1 | grep -q first || xf_fail "list lacks the label"

# restore and compare (vm1 has two rw exports: restored under TAG/)
"${SNAP[@]}" restore vm1 "$id1" --to "$W/r1" || xf_fail "restore failed"
[ -d "$W/r1/shared" ] && [ -d "$W/r1/home1" ] ||
	xf_fail "two exports should restore under TAG/: $(ls "$W/r1")"
cmp "$W/dirty.src" "$W/r1/shared/dirty" ||
	xf_fail "unsynced guest data is not in the snapshot"
python3 "$CMP" "$S" "$W/r1/shared" || xf_fail "restored tree differs"

# nothing changed: the second snapshot adds (almost) nothing
du0=$(du -sb "$W/repo/packs" | cut -f1)
"${SNAP[@]}" vm1 --json >"$W/s2.json" || xf_fail "second snapshot"
du1=$(du -sb "$W/repo/packs" | cut -f1)
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["kind"] == "incremental", j
assert j["new_bytes"] == 0, j' "$W/s2.json" ||
	xf_fail "second snapshot: $(cat "$W/s2.json")"
[ "$du1" -eq "$du0" ] || xf_fail "chunks grew from $du0 to $du1"
id2=$(last_id)
d=$("${SNAP[@]}" diff vm1 "$id1" "$id2")
[ -z "$d" ] || xf_fail "diff of identical snapshots: $d"

# changes through the guest: diff lists exactly them
echo new >"$W/mnt/d/added"
echo more >>"$W/mnt/d/small"
rm "$W/mnt/fifo"
chmod 600 "$W/mnt/d/zero"
mv "$W/mnt/we ird" "$W/mnt/renamed"
rm "$W/mnt/d/sub/hardlink"	# d/rand's link count drops with it
"${SNAP[@]}" vm1 || xf_fail "third snapshot"
id3=$(last_id)
"${SNAP[@]}" diff vm1 "$id2" "$id3" | sort >"$W/diff"
printf '%s\n' 'A shared /d/added' 'A shared /renamed' \
    'A shared /renamed/ñame' 'A shared /renamed/ñame/h2' \
    'D shared /d/sub/hardlink' 'D shared /fifo' 'D shared /we ird' 'D shared /we ird/ñame' \
    'D shared /we ird/ñame/h2' 'M shared /d/small' 'M shared /d/zero' |
    sed 's/ñame/\\xc3\\xb1ame/' | sort >"$W/diff.want"
diff -u "$W/diff.want" "$W/diff" || xf_fail "diff is not exact"
"${SNAP[@]}" diff vm1 "$id2" "$id3" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert {"change": "added", "export": "shared", "path": "/d/added"} in d, d
assert len(d) == 11, d' || xf_fail "diff --json"
"${SNAP[@]}" restore vm1 "$id3" --to "$W/r3" || xf_fail "restore 3"
python3 "$CMP" "$S" "$W/r3/shared" || xf_fail "restored tree 3 differs"

# one path, from the first snapshot
"${SNAP[@]}" restore vm1 "$id1" /d --to "$W/r4" --export shared ||
	xf_fail "restore of one path"
cmp "$S/d/rand" "$W/r4/d/rand" || xf_fail "one-path restore content"
[ ! -e "$W/r4/sparse" ] || xf_fail "one-path restore took more"
[ "$(cat "$W/r4/d/small")" = hello ] || xf_fail "one-path restore: old version"

# in place, guest frozen meanwhile: back to snapshot 1 for export shared
"${SNAP[@]}" restore vm1 "$id1" --in-place --export shared ||
	xf_fail "in-place restore"
python3 "$CMP" "$W/r1/shared" "$S" || xf_fail "in-place result differs"
"$BIN/xenfsctl" -c "$XF_CONF" guests | grep -Eq '^vm1 .* yes ' &&
	xf_fail "vm1 left frozen"

# errors and exit codes
"${SNAP[@]}" restore vm1 999 --to "$W/x" 2>/dev/null &&
	xf_fail "restore of a missing snapshot"
"${SNAP[@]}" restore vm1 "$id1" /no/such --to "$W/x" 2>/dev/null &&
	xf_fail "restore of a path the snapshot lacks"
"${SNAP[@]}" nosuchvm 2>/dev/null && xf_fail "snapshot of a domain without exports"
"${SNAP[@]}" diff vm1 1 2>/dev/null; [ $? -eq 2 ] || xf_fail "usage error is not exit 2"
"${SNAP[@]}" --help | grep -q restore || xf_fail "--help"
"${SNAP[@]}" check || xf_fail "check after all that"
exit 0
