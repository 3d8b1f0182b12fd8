#!/usr/bin/env bash
# timeout: 60
# xenfsctl against the control socket: status and guests (text and JSON,
# with per-domain rates), reload, socket mode and peer check, and the
# error when xenfsd is not running.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfsctl
xf_config_std
CTL=("$BIN/xenfsctl" -c "$XF_CONF")

# not running: exit 1 with the documented message
"${CTL[@]}" status 2>"$W/e" && xf_fail "status succeeded without xenfsd"
grep -q "cannot connect to $W/control.sock: is xenfsd running?" "$W/e" ||
	xf_fail "wrong error: $(cat "$W/e")"

xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" shared "$W/mnt"
[ "$(stat -c %a "$W/control.sock")" = 660 ] || xf_fail "socket mode"

# traffic, so rates are non-zero over the sampling interval
( end=$((SECONDS + 5)); while [ $SECONDS -lt $end ]; do
	head -c 65536 /dev/zero >"$W/mnt/t"; done ) &
TR=$!
sleep 4.5
st=$("${CTL[@]}" status) || xf_fail "status"
wait "$TR"
echo "$st" | grep -q "^stream: head [1-9]" || xf_fail "no stream head: $st"
echo "$st" | grep -q "shared=$W/shared" || xf_fail "no exports: $st"
line=$(echo "$st" | grep -E '^vm1 +shared +local')
[ -n "$line" ] || xf_fail "vm1 missing: $st"
ops=$(echo "$line" | awk '{ print $7 }')
wr=$(echo "$line" | awk '{ print $9 }')
awk -v o="$ops" -v w="$wr" 'BEGIN { exit !(o > 0 && w > 0) }' ||
	xf_fail "rates not computed: ops/s $ops write B/s $wr"

js=$("${CTL[@]}" --json status) || xf_fail "json status"
if command -v python3 >/dev/null; then
	echo "$js" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["stream"]["head"] > 0
assert d["guests"][0]["domain"] == "vm1"
assert "write_bytes_per_s" in d["guests"][0]
' || xf_fail "json status malformed: $js"
fi
"${CTL[@]}" guests | grep -Eq '^vm1 +shared' || xf_fail "guests"
"${CTL[@]}" --json guests | grep -q '"domain":"vm1"' || xf_fail "json guests"

# reload: good config ok, broken config refused with file:line
"${CTL[@]}" reload | grep -q reloaded || xf_fail "reload"
cp "$XF_CONF" "$W/good.conf"
echo "bogus line" >>"$XF_CONF"
"$BIN/xenfsctl" -s "$W/control.sock" reload 2>"$W/e" &&
	xf_fail "reload of a broken config succeeded"
grep -q "xenfs.conf:" "$W/e" || xf_fail "reload error lacks file:line: $(cat "$W/e")"
cp "$W/good.conf" "$XF_CONF"

# a peer that is neither root nor in control-group is refused
if id nobody >/dev/null 2>&1 && command -v setpriv >/dev/null; then
	chmod 666 "$W/control.sock"	# let it connect, so the peer check speaks
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$BIN/xenfsctl" -s "$W/control.sock" status 2>"$W/e" &&
		xf_fail "nobody was allowed"
	grep -q "permission denied" "$W/e" || xf_fail "peer check: $(cat "$W/e")"
fi
# bad requests
"${CTL[@]}" freeze 'a;b' 2>/dev/null && xf_fail "bad domain name accepted"
exit 0
