#!/usr/bin/env bash
# timeout: 120
# Trimming: a consumer that is stopped while the journal outgrows
# [services] journal-max loses the oldest segments, xenfsd logs that it
# fell behind, and when it comes back it gets an explicit re-crawl signal
# (on_resync) before the records that are still kept -- never silent loss.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root
xf_need_bin xenfsd xenfsctl xenfs-services
xf_config_std
cat >>"$XF_CONF" <<EOF
[services]
plugins = test-record
plugin-dir = $O/lib/xenfs
journal-max = 1M
EOF
xf_start_backend "$XF_CONF"
S=$W/shared
REC=$W/state/test-record/events
start_host() {
	"$BIN/xenfs-services" -c "$XF_CONF" -f >>"$W/services.log" 2>&1 \
	    </dev/null &
	SVC=$!
	XF_DAEMONS+=("$SVC")
}
start_host
echo first >"$S/first"
got_first() { grep -q " /first" "$REC" 2>/dev/null; }
xf_wait_until 10 got_first || xf_fail "plugin did not get the first event"
kill "$SVC"; wait "$SVC" 2>/dev/null

# > 1M of records (dom0 changes: create + modify per file)
for i in $(seq 1 7000); do : >"$S/f$i"; done
xf_expect_log "consumer test-record fell behind" 25
[ "$(ls "$W/state/journal" | grep -c '\.seg$')" -le 17 ] ||
	xf_fail "journal not trimmed to journal-max"

start_host
echo last >"$S/last"
got_last() { grep -q " /last" "$REC" 2>/dev/null; }
xf_wait_until 20 got_last || xf_fail "plugin did not catch up"
grep -q "^resync - -" "$REC" || xf_fail "no re-crawl signal delivered"
grep -q "consumer test-record fell behind: records" "$W/services.log" ||
	xf_fail "reader did not log the gap"
# the resync comes before every record delivered after the restart
r=$(grep -n "^resync" "$REC" | head -n 1 | cut -d: -f1)
f=$(grep -n " /first" "$REC" | head -n 1 | cut -d: -f1)
[ "$f" -lt "$r" ] || xf_fail "order"
exit 0
