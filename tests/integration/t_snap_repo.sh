#!/usr/bin/env bash
# timeout: 170
# xenfs-snapshot repository: two VMs with the same 20 MB of files (random,
# so compression cannot hide duplication; 20 MB rather than 100 MB to
# keep the test fast) grow the repository by ~20 MB, not 40; a second
# snapshot with nothing changed adds nothing; a change made behind
# xenfsd's back is missed by the incremental snapshot and found by
# --verify-walk; a journal that lost records (resync) makes the next
# snapshot a full walk; prune keeps what it must, frees the rest and
# `check` passes after it; `all` and `prune all` (the timer's commands);
# a corrupted chunk is detected by check (exit 3).
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_cmd python3
xf_need_bin xenfsd mount.xenfs xenfsctl xenfs-snapshot
mkdir -p "$W/h1" "$W/h2" "$W/state"
xf_config xenfs.conf <<EOF
[global]
control-socket = $W/control.sock
state-dir = $W/state

[export h1]
path = $W/h1
access = vm1:rw

[export h2]
path = $W/h2
access = vm2:rw

[domain vm1]
local-socket = $(xf_sock vm1)

[domain vm2]
local-socket = $(xf_sock vm2)

[snapshot]
repository = $W/repo
EOF
SNAP=("$BIN/xenfs-snapshot" -c "$XF_CONF" -q)
CMP="$XF_TOP/services/snapshot/treecmp.py"
repo_kb() { du -sk "$W/repo/packs" | cut -f1; }
last_json() { "${SNAP[@]}" list "$1" --json |
	python3 -c "import json,sys; print(json.load(sys.stdin)[-1]['$2'])"; }

mkdir -p "$W/h1/a/b"
for i in 1 2 3 4; do head -c 5000000 /dev/urandom >"$W/h1/a/f$i"; done
head -c 1000 /dev/urandom >"$W/h1/a/b/small"
cp -a "$W/h1/." "$W/h2/"
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" h1 "$W/m1"
# vm2 is not connected: nothing to freeze, the snapshot goes on

"${SNAP[@]}" vm1 || xf_fail "snapshot vm1"
k1=$(repo_kb)
"${SNAP[@]}" vm2 || xf_fail "snapshot vm2 (not connected)"
k2=$(repo_kb)
xf_log "repository: ${k1} KB after vm1, ${k2} KB after vm2"
[ "$k1" -ge 19000 ] && [ "$k1" -le 21500 ] || xf_fail "20 MB stored as $k1 KB"
[ $((k2 - k1)) -le 200 ] || xf_fail "vm2's identical files added $((k2 - k1)) KB"

"${SNAP[@]}" vm1 || xf_fail "unchanged snapshot"
[ "$(repo_kb)" -eq "$k2" ] || xf_fail "an unchanged snapshot grew the repository"
[ "$(last_json vm1 kind)" = incremental ] || xf_fail "second snapshot not incremental"

# a change through the guest: only it is read
head -c 100000 /dev/urandom >>"$W/m1/a/f2"
"${SNAP[@]}" vm1 --json >"$W/s.json" || xf_fail "incremental snapshot"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["kind"] == "incremental" and j["read_bytes"] <= 5200000, j' \
    "$W/s.json" || xf_fail "incremental read too much: $(cat "$W/s.json")"

# behind xenfsd's back (stopped: no record): missed, then --verify-walk
xf_umount "$W/m1"
xf_stop_backend
echo sneaky >"$W/h1/a/b/sneaky"
xf_start_backend "$XF_CONF"
"${SNAP[@]}" vm1 || xf_fail "snapshot after restart"
a=$(last_json vm1 id)
"${SNAP[@]}" vm1 --verify-walk || xf_fail "verify walk"
b=$(last_json vm1 id)
[ "$(last_json vm1 kind)" = full ] || xf_fail "--verify-walk is not a full walk"
[ "$("${SNAP[@]}" diff vm1 "$a" "$b")" = "A h1 /a/b/sneaky" ] ||
	xf_fail "verify walk diff: $("${SNAP[@]}" diff vm1 "$a" "$b")"

# the journal loses records (segments gone): xenfsd appends a resync and
# the next snapshot falls back to a full walk
xf_stop_backend
rm -f "$W/state/journal/"*.seg
echo lost >"$W/h1/a/lost"
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" h1 "$W/m1"
"${SNAP[@]}" vm1 || xf_fail "snapshot after journal loss"
[ "$(last_json vm1 kind)" = full ] || xf_fail "gap did not force a full walk"
c=$(last_json vm1 id)
[ "$("${SNAP[@]}" diff vm1 "$b" "$c")" = "A h1 /a/lost" ] ||
	xf_fail "after the gap: $("${SNAP[@]}" diff vm1 "$b" "$c")"

# prune: keep the last 2 of vm1; vm2 untouched; check passes; what is
# kept still restores; chunks of pruned versions only are freed
rm "$W/m1/a/f1" "$W/m1/a/f3"
"${SNAP[@]}" vm1 || xf_fail "snapshot after deleting"
before=$(repo_kb)
"${SNAP[@]}" prune vm1 --keep-last 1 --json >"$W/p.json" || xf_fail "prune"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["kept"] == 1 and j["pruned"] >= 5, j' "$W/p.json" ||
	xf_fail "prune: $(cat "$W/p.json")"
after=$(repo_kb)
xf_log "prune: ${before} KB -> ${after} KB"
# f1 and f3 are still in vm2's snapshot: nothing of them may go
[ "$after" -ge 19000 ] || xf_fail "prune freed chunks vm2 still uses"
"${SNAP[@]}" prune vm2 --keep-last 1 >/dev/null || xf_fail "prune vm2"
"${SNAP[@]}" check || xf_fail "check after prune"
id=$(last_json vm1 id)
"${SNAP[@]}" restore vm1 "$id" --to "$W/r" || xf_fail "restore after prune"
python3 "$CMP" "$W/h1" "$W/r" || xf_fail "restore after prune differs"
id2=$(last_json vm2 id)
"${SNAP[@]}" restore vm2 "$id2" --to "$W/r2" || xf_fail "restore vm2"
python3 "$CMP" "$W/h2" "$W/r2" || xf_fail "restore of vm2 differs"
# vm2's snapshot gone too: f1/f3 chunks must now be freed
"${SNAP[@]}" prune vm1 --keep-last 1 >/dev/null
rm -rf "$W/h2"/a/f1 "$W/h2"/a/f3
mkdir -p "$W/h2"
"${SNAP[@]}" vm2 >/dev/null || xf_fail "vm2 snapshot after delete"
"${SNAP[@]}" prune vm2 --keep-last 1 >/dev/null || xf_fail "prune vm2 again"
[ "$(repo_kb)" -le 12000 ] || xf_fail "unreferenced chunks not collected: $(repo_kb) KB"

# what the systemd timer runs: one snapshot of every domain, then prune
n1=$("${SNAP[@]}" list vm1 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
"${SNAP[@]}" all --label timer || xf_fail "all"
[ "$(last_json vm1 label)" = timer ] && [ "$(last_json vm2 label)" = timer ] ||
	xf_fail "all did not snapshot both domains"
"${SNAP[@]}" prune all --keep-last 1 --keep-daily 1 >/dev/null || xf_fail "prune all"
[ "$("${SNAP[@]}" list vm1 --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" -eq 1 ] ||
	xf_fail "prune all kept more than one of vm1 (had $n1)"
"${SNAP[@]}" check >/dev/null || xf_fail "check after prune all"

# corruption: flip a byte in the middle of a pack (random data: inside
# some chunk's bytes or header)
pack=$(find "$W/repo/packs" -type f -size +1M | head -n 1)
[ -n "$pack" ] || xf_fail "no pack file found"
printf '\377' | dd of="$pack" bs=1 seek=1000000 conv=notrunc status=none
"${SNAP[@]}" check --json >"$W/c.json"
rc=$?
[ "$rc" -eq 3 ] || xf_fail "check of a corrupt repository exited $rc"
python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))
assert j["ok"] is False and j["corrupt"] == 1, j' "$W/c.json" ||
	xf_fail "check --json: $(cat "$W/c.json")"
"${SNAP[@]}" restore vm1 "$id" --to "$W/r3" 2>/dev/null &&
	xf_fail "restore from a corrupt chunk succeeded silently"
exit 0
