#!/usr/bin/env bash
# timeout: 90
# xenfsctl freeze: data the guest wrote before the freeze (dirty in its
# page cache) is on dom0's disk when freeze returns; a guest writer blocks
# while frozen and resumes without error after thaw; the stream carries
# freeze/thaw markers after every change made before the freeze.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfsctl
xf_config_std
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" shared "$W/mnt"
CTL=("$BIN/xenfsctl" -c "$XF_CONF")

# dirty data in the guest cache (no sync)
head -c 300000 /dev/urandom >"$W/data"
printf precious >"$W/mnt/keep"	# truncated by the guest while frozen, below
exec 7>"$W/mnt/dirty"		# kept open: no flush on close
cat "$W/data" >&7
"${CTL[@]}" freeze vm1 >"$W/freeze.out" || xf_fail "freeze failed"
grep -q "frozen vm1 seq" "$W/freeze.out" || xf_fail "freeze output: $(cat "$W/freeze.out")"
cmp -s "$W/data" "$W/shared/dirty" ||
	xf_fail "data written before the freeze is not on dom0's disk"
"${CTL[@]}" guests | grep -Eq '^vm1 .* yes ' || xf_fail "guests does not show frozen"

# a writer blocks while frozen
( echo blocked >"$W/mnt/during" && echo done >"$W/writer.done" ) 2>"$W/writer.err" &
WR=$!
# an open with O_TRUNC changes the file: it must wait for the thaw too
( : >"$W/mnt/keep" ) 2>"$W/trunc.err" &
TR=$!
sleep 1.5
[ -e "$W/writer.done" ] && xf_fail "guest write completed while frozen"
[ "$(cat "$W/shared/keep")" = precious ] ||
	xf_fail "O_TRUNC open truncated the file while frozen"
[ -e "$W/shared/during" ] && [ -s "$W/shared/during" ] &&
	xf_fail "change reached dom0 while frozen"
"${CTL[@]}" thaw vm1 >/dev/null || xf_fail "thaw failed"
wait "$WR" || xf_fail "writer failed after thaw: $(cat "$W/writer.err")"
wait "$TR" || xf_fail "truncating open failed after thaw: $(cat "$W/trunc.err")"
[ -s "$W/shared/keep" ] && xf_fail "truncation after thaw lost"
[ "$(cat "$W/shared/during")" = blocked ] || xf_fail "write after thaw lost"
exec 7>&-

# stream: freeze marker after the dirty file's records, thaw after it
"$BIN/xenfsctl" -d "$W/state/journal" events >"$W/ev"
fz=$(awk '$2 == "freeze" && $3 == "vm1" { print $1; exit }' "$W/ev")
th=$(awk '$2 == "thaw" && $3 == "vm1" { print $1; exit }' "$W/ev")
cr=$(awk '$2 == "create" && $5 == "/dirty" { print $1; exit }' "$W/ev")
du=$(awk '$5 == "/during" { print $1; exit }' "$W/ev")
[ -n "$fz" ] && [ -n "$th" ] && [ -n "$cr" ] && [ -n "$du" ] ||
	xf_fail "markers or records missing: $(cat "$W/ev")"
[ "$cr" -lt "$fz" ] && [ "$fz" -lt "$th" ] && [ "$th" -lt "$du" ] ||
	xf_fail "order create $cr < freeze $fz < thaw $th < during $du violated"

# errors
"${CTL[@]}" freeze nosuchvm 2>"$W/e" && xf_fail "freeze of unknown domain succeeded"
grep -q "xenfsctl:" "$W/e" || xf_fail "no error message"
exit 0
