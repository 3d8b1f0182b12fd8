#!/usr/bin/env bash
# timeout: 120
# kill -9 of xenfsd in the middle of a write-heavy guest workload, then a
# restart: every operation the guest saw succeed is in the stream (the
# record is written before the reply), the journal's tail is intact or
# repaired, and sequence numbers continue after the restart.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfsctl
xf_config_std
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" shared "$W/mnt"
J=$W/state/journal

# each line of ok.list is a file whose create+write+close succeeded
( i=0
  while :; do
	i=$((i + 1))
	head -c $((i % 7 * 1000 + 1)) /dev/zero >"$W/mnt/f$i" 2>/dev/null ||
		exit 0
	echo "$i" >>"$W/ok.list"
  done ) &
WR=$!
sleep 1.5
kill -9 "$XF_BACKEND_PID"
wait "$WR"
n=$(wc -l <"$W/ok.list")
[ "$n" -gt 20 ] || xf_fail "only $n files written before the kill"
fusermount3 -u -z "$W/mnt" 2>/dev/null || umount -l "$W/mnt"

# the journal as the killed xenfsd left it
"$BIN/xenfsctl" -d "$J" events >"$W/before" || xf_fail "reading journal"
for i in $(cat "$W/ok.list"); do
	echo "create /f$i"
	echo "modify /f$i"
done | sort >"$W/want"
awk '$2 == "create" || $2 == "modify" { print $2, $5 }' "$W/before" |
    sort >"$W/got"
missing=$(comm -23 "$W/want" "$W/got" | head -n 5)
[ -z "$missing" ] || xf_fail "acknowledged ops missing from the stream: $missing"

# restart: the stream continues after the last good record
last=$(tail -n 1 "$W/before" | cut -d' ' -f1)
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" shared "$W/mnt2"
echo after >"$W/mnt2/after" || xf_fail "write after restart"
next=$("$BIN/xenfsctl" -d "$J" events --from $((last + 1)) |
    awk '$5 == "/after" { print $1; exit }')
[ -n "$next" ] && [ "$next" -gt "$last" ] ||
	xf_fail "no /after event past seq $last"
# seqs are gapless across the restart
"$BIN/xenfsctl" -d "$J" events | cut -d' ' -f1 >"$W/seqs"
seq 1 "$(tail -n 1 "$W/seqs")" | cmp -s - "$W/seqs" ||
	xf_fail "sequence numbers have gaps or repeats"
xf_log "$n files acknowledged before kill -9, all in the stream"
exit 0
