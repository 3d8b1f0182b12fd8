#!/usr/bin/env bash
# timeout: 120
# A plugin that crashes on every event and one that hangs in on_event:
# file serving goes on, the healthy plugin keeps receiving every event,
# the supervisor restarts the crasher with backoff and kills the hung
# one after the watchdog, and xenfsctl status shows both as faulty.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfsctl xenfs-services
xf_config_std
cat >>"$XF_CONF" <<EOF
[services]
plugins = test-crash test-hang test-record
plugin-dir = $O/lib/xenfs
EOF
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" shared "$W/mnt"
"$BIN/xenfs-services" -c "$XF_CONF" -f --watchdog 2 \
    >>"$W/services.log" 2>&1 </dev/null &
SVC=$!
XF_DAEMONS+=("$SVC")
REC=$W/state/test-record/events

for i in $(seq 1 20); do
	echo "$i" >"$W/mnt/f$i" || xf_fail "write f$i while plugins misbehave"
	sleep 0.1
done
head=$("$BIN/xenfsctl" -d "$W/state/journal" events | tail -n 1 |
    cut -d' ' -f1)
[ "$head" -ge 40 ] || xf_fail "stream head $head, expected >= 40"
last_rec() { [ "$(tail -n 1 "$REC" 2>/dev/null | cut -d' ' -f1)" = "$head" ]; }
xf_wait_until 10 last_rec ||
	xf_fail "healthy plugin did not receive up to $head: $(tail -n 2 "$REC")"
# every event exactly once, in order
seq 1 "$head" >"$W/want"
cut -d' ' -f1 "$REC" >"$W/got"
cmp -s "$W/want" "$W/got" || xf_fail "healthy plugin missed or repeated events"

# crasher restarted, hung one killed by the watchdog
xf_wait_until 15 grep -q "plugin test-hang: hung in on_event" \
    "$W/services.log" || xf_fail "watchdog did not kill test-hang"
xf_wait_until 10 grep -q "plugin test-crash: crashed (signal 6)" \
    "$W/services.log" || xf_fail "no crash reported for test-crash"
sleep 1.5
st=$("$BIN/xenfsctl" -c "$XF_CONF" status) || xf_fail "xenfsctl status"
echo "$st" | grep -Eq '^test-crash .*crashed \(signal 6\)' ||
	xf_fail "status does not show test-crash as faulty: $st"
echo "$st" | grep -Eq '^test-hang .*hung in on_event' ||
	xf_fail "status does not show test-hang as hung: $st"
echo "$st" | grep -Eq '^test-record +running .* 0  -$' ||
	xf_fail "status: test-record should be running with lag 0: $st"
# faulty plugins never advanced their cursors: their lag is visible
echo "$st" | grep -Eq "^test-crash .* 0 +$head  " ||
	xf_fail "status: test-crash lag should be $head: $st"
kill -0 "$SVC" || xf_fail "supervisor died"
echo still-serving >"$W/mnt/last" || xf_fail "serving stopped"
exit 0
