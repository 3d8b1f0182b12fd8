#!/usr/bin/env bash
# timeout: 120
# kill -9 of the services host while events flow: its plugin children die
# with it; a new host resumes each plugin from its cursor.  Nothing is
# missed, and nothing with seq <= the committed cursor is delivered
# again.  A failing batch (on_event returns -EAGAIN once) is redelivered.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfsctl xenfs-services
xf_config_std
cat >>"$XF_CONF" <<EOF
[services]
plugins = test-record
plugin-dir = $O/lib/xenfs
EOF
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" shared "$W/mnt"
REC=$W/state/test-record/events
CUR=$W/state/journal/cursors/test-record
mkdir -p "$W/state/test-record"
touch "$W/state/test-record/fail-once"

start_host() {
	"$BIN/xenfs-services" -c "$XF_CONF" -f >>"$W/services.log" 2>&1 \
	    </dev/null &
	SVC=$!
	XF_DAEMONS+=("$SVC")
}
start_host

# a writer in the background keeps events coming
( for i in $(seq 1 1500); do echo "$i" >"$W/mnt/f$i" || exit 1; done ) &
WR=$!
sleep 2
kill -9 "$SVC"
wait "$SVC" 2>/dev/null
# children die with the supervisor (PR_SET_PDEATHSIG)
gone() { ! pgrep -f -- "-c $XF_CONF --plugin .* --name test-record" >/dev/null; }
xf_wait_until 5 gone || xf_fail "plugin child outlived its supervisor"
cut1=$(cat "$CUR" 2>/dev/null || echo 0)
sleep 0.3
start_host
wait "$WR" || xf_fail "guest writer failed"
head=$("$BIN/xenfsctl" -d "$W/state/journal" events | tail -n 1 |
    cut -d' ' -f1)
caught_up() { [ "$(cat "$CUR" 2>/dev/null)" = "$head" ]; }
xf_wait_until 20 caught_up ||
	xf_fail "cursor $(cat "$CUR") did not reach head $head"
[ -e "$W/state/test-record/fail-once" ] &&
	xf_fail "the failing batch was never attempted"
grep -q "will be redelivered" "$W/services.log" ||
	xf_fail "no redelivery reported"

# nothing missed
cut -d' ' -f1 "$REC" | sort -n | uniq >"$W/got"
seq 1 "$head" >"$W/want"
cmp -s "$W/want" "$W/got" || xf_fail "events missed (head $head)"
# duplicates only from the batch that was not committed at the kill
dups=$(cut -d' ' -f1 "$REC" | sort -n | uniq -d)
for d in $dups; do
	[ "$d" -gt "$cut1" ] ||
		xf_fail "seq $d delivered twice although cursor was $cut1"
done
xf_log "head $head, cursor at kill $cut1, redelivered: $(echo $dups | wc -w)"
exit 0
