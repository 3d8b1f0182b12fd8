#!/usr/bin/env bash
# t_kill_frontend.sh: a frontend that dies (kill -9 of mount.xenfs with a
# file open on the mount) costs nothing but its own connection.  The
# mount point reports ENOTCONN, umount clears it, xenfsd logs the
# disconnect, its descriptor count returns to the pre-mount baseline, and
# a remount works; five more kill cycles must not leak descriptors.
# timeout: 300
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../lib-guest.sh"
xf_init
export LC_ALL=C
xf_need_root
xf_need_fuse
xf_need_bin xenfsd mount.xenfs

ok() { xf_log "ok: $*"; }

xf_shared_setup
B=$XF_BACKEND_PID

# find_frontend MNT: pid of the mount.xenfs serving MNT (it daemonizes)
find_frontend()
{
	local p args
	for p in /proc/[0-9]*; do
		mapfile -t args < <(tr '\0' '\n' <"$p/cmdline" 2>/dev/null)
		[ "${#args[@]}" -ge 3 ] || continue
		[ "${args[0]##*/}" = mount.xenfs ] && [ "${args[2]}" = "$1" ] &&
		    echo "${p#/proc/}"
	done
}
fd_le() { [ "$(xf_tree_fdcount "$B")" -le "$1" ]; }
stat_err() { stat "$M" 2>&1 >/dev/null; }
is_enotconn() { case $(stat_err) in *"not connected"*) return 0 ;; esac; return 1; }

# one mount first, so that the domain's worker process exists (idle) in
# the baseline: descriptors are counted over xenfsd and its workers
xf_mount "$W/vm1.sock" shared "$M"
xf_umount "$M"
sleep 0.5
base=$(xf_tree_fdcount "$B") || xf_fail "cannot count xenfsd's descriptors"
xf_log "xenfsd descriptors before any mount: $base"

xf_mount "$W/vm1.sock" shared "$M"
echo survivor >"$M/held" || xf_fail "write through the mount"
( exec 3<"$M/held"; exec sleep 300 ) &
holder=$!
sleep 0.3
[ -e "/proc/$holder/fd/3" ] || xf_fail "holder did not open the file"
mounted=$(xf_tree_fdcount "$B")
xf_log "xenfsd descriptors with the mount and an open file: $mounted"
[ "$mounted" -gt "$base" ] ||
    xf_fail "descriptor count did not grow with a connection ($base -> $mounted)"

fpid=$(find_frontend "$M")
[ -n "$fpid" ] || xf_fail "cannot find the mount.xenfs process for $M"
[ "$(echo "$fpid" | wc -w)" -eq 1 ] || xf_fail "several frontends for $M: $fpid"
nlog=$(wc -l <"$XF_LOG")
kill -9 "$fpid" || xf_fail "kill -9 $fpid"
xf_wait_until 5 sh -c "! kill -0 $fpid 2>/dev/null" || xf_fail "frontend survived kill -9"
ok "killed mount.xenfs (pid $fpid) with a file open"

xf_wait_until 5 is_enotconn ||
    xf_fail "mount point after the kill: want ENOTCONN, got: $(stat_err)"
ok "mount point reports: $(stat_err)"
err=$(cat "$M/held" 2>&1) && xf_fail "read through a dead mount succeeded"
ok "reads fail: $err"

kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
umount "$M" || xf_fail "umount of the dead mount failed"
xf_is_mounted "$M" && xf_fail "still mounted after umount"
ok "umount cleared the dead mount"

xf_wait_until 5 fd_le "$base" ||
    xf_fail "xenfsd descriptors did not return to $base (now $(xf_tree_fdcount "$B"))"
ok "xenfsd descriptors back to $(xf_tree_fdcount "$B") (baseline $base)"
new_log() { tail -n +"$((nlog + 1))" "$XF_LOG"; }
xf_wait_until 5 sh -c "tail -n +$((nlog + 1)) '$XF_LOG' | grep -Eiq 'vm1.*(disconnect|closed|gone|lost|hang)'" ||
    xf_fail "xenfsd did not log vm1's disconnect; new log lines: $(new_log | tail -5)"
ok "xenfsd logged: $(new_log | grep -Ei 'vm1.*(disconnect|closed|gone|lost|hang)' | head -1)"
kill -0 "$B" || xf_fail "xenfsd died with its frontend"

xf_mount "$W/vm1.sock" shared "$M"
xf_assert_eq "$(cat "$M/held")" survivor "content after remount"
echo again >"$M/after" || xf_fail "write after remount"
xf_assert_eq "$(cat "$EXP/after")" again "host content after remount"
ok "remount works"
xf_umount "$M"
xf_wait_until 5 fd_le "$base" ||
    xf_fail "descriptors after a clean umount: $(xf_tree_fdcount "$B"), want $base"

# five more abrupt deaths, with writes in flight, must not leak
for i in 1 2 3 4 5; do
	xf_mount "$W/vm1.sock" shared "$M"
	( exec 3<"$M/held"; exec sleep 300 ) &
	holder=$!
	dd if=/dev/zero of="$M/inflight$i" bs=64k count=2000 status=none 2>/dev/null &
	writer=$!
	sleep 0.2
	fpid=$(find_frontend "$M")
	[ -n "$fpid" ] || xf_fail "cycle $i: no frontend"
	kill -9 "$fpid"
	xf_wait_until 5 is_enotconn || xf_fail "cycle $i: no ENOTCONN: $(stat_err)"
	kill "$holder" 2>/dev/null
	wait "$holder" "$writer" 2>/dev/null
	umount "$M" || umount -l "$M" || xf_fail "cycle $i: umount"
	xf_wait_until 5 fd_le "$base" ||
	    xf_fail "cycle $i: descriptors $(xf_tree_fdcount "$B"), baseline $base"
done
kill -0 "$B" || xf_fail "xenfsd died during the kill cycles"
ok "5 more kill -9 cycles with I/O in flight: no descriptor leak ($(xf_tree_fdcount "$B") <= $base)"
xf_mount "$W/vm1.sock" shared "$M"
xf_assert_eq "$(cat "$M/held")" survivor "content after the kill cycles"
xf_umount "$M"
# clean shutdown, and no sanitizer report from xenfsd (SANITIZE= builds)
xf_stop_backend
xf_expect_no_log 'Sanitizer|runtime error:'
xf_log "PASS"
