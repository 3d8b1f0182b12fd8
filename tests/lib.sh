# tests/lib.sh: shared helpers for XenFS integration tests (bash).
#
# Source it from a test under tests/integration/ and call xf_init first:
#
#	#!/usr/bin/env bash
#	# timeout: 120
#	. "$(dirname "$0")/../lib.sh"
#	xf_init
#	xf_need_root; xf_need_fuse
#	mkdir -p "$W/export"
#	xf_config xenfs.conf <<EOF
#	[export shared]
#	path = $W/export
#	access = vm1:rw
#	[domain vm1]
#	local-socket = $(xf_sock vm1)
#	EOF
#	xf_start_backend "$W/xenfs.conf"
#	xf_mount "$(xf_sock vm1)" shared "$W/mnt"
#	echo hi > "$W/mnt/f" || xf_fail "write"
#	xf_umount "$W/mnt"
#
# Exit status: 0 pass, 77 skip (xf_skip), anything else a failure
# (xf_fail).  The EXIT trap unmounts every mount under $W, stops every
# daemon started through these helpers (and anything that daemonized from
# them: each carries XF_OWNER=$W in its environment), and removes $W
# unless the test failed or XF_KEEP=1 is set.
#
# Variables set by xf_init: XF_TOP (source tree), O (build dir, absolute),
# BIN ($O/bin), W (private work dir), XF_NAME (test name).
# Variables set by xf_start_backend: XF_BACKEND_PID, XF_LOG.

# ---- basics ----

xf_log() { printf '%s: %s\n' "${XF_NAME:-test}" "$*" >&2; }

xf_fail()
{
	printf '%s: FAIL: %s\n' "${XF_NAME:-test}" "$*" >&2
	exit 1
}

xf_skip()
{
	printf '%s: SKIP: %s\n' "${XF_NAME:-test}" "$*" >&2
	exit 77
}

xf_need_root()
{
	[ "$(id -u)" -eq 0 ] || xf_skip "needs root"
}

xf_need_fuse()
{
	[ -c /dev/fuse ] || modprobe fuse 2>/dev/null || true
	[ -c /dev/fuse ] || xf_skip "no /dev/fuse"
	[ -w /dev/fuse ] || xf_skip "/dev/fuse not writable"
}

# xf_need_cmd CMD...: skip unless every command exists.
xf_need_cmd()
{
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || xf_skip "needs $c"
	done
}

# xf_need_bin NAME...: fail unless $BIN/NAME was built (a build problem
# is a failure, not a reason to skip).
xf_need_bin()
{
	local b
	for b in "$@"; do
		[ -x "$BIN/$b" ] || xf_fail "$BIN/$b not built (run make O=$O)"
	done
}

# xf_wait_until SECONDS CMD...: poll CMD every 50 ms; 0 once it succeeds,
# 1 on timeout.
xf_wait_until()
{
	local t=$1 end
	shift
	end=$(( $(date +%s%N) / 1000000 + t * 1000 ))
	while :; do
		"$@" && return 0
		[ $(( $(date +%s%N) / 1000000 )) -ge "$end" ] && return 1
		sleep 0.05
	done
}

# xf_expect_fail CMD...: CMD must fail (non-zero exit).
xf_expect_fail()
{
	if "$@" 2>/dev/null; then
		xf_fail "expected failure: $*"
	fi
	return 0
}

# xf_assert_eq GOT WANT [WHAT]
xf_assert_eq()
{
	[ "$1" = "$2" ] || xf_fail "${3:-value}: got '$1', want '$2'"
}

# xf_fdcount PID: number of open descriptors of PID.
xf_fdcount()
{
	local n
	n=$(ls "/proc/$1/fd" 2>/dev/null | wc -l) || return 1
	echo "$n"
}

# xf_tree_fdcount PID: descriptors of xenfsd PID and of its per-domain
# worker processes (its children) together.
xf_tree_fdcount()
{
	local p n t=0
	n=$(xf_fdcount "$1") || return 1
	t=$n
	for p in $(pgrep -P "$1"); do
		n=$(xf_fdcount "$p") || continue
		t=$((t + n))
	done
	echo "$t"
}

# xf_tree_taskcount PID: threads of xenfsd PID and of its workers.
xf_tree_taskcount()
{
	local p t=0
	for p in "$1" $(pgrep -P "$1"); do
		t=$((t + $(ls "/proc/$p/task" 2>/dev/null | wc -l)))
	done
	echo "$t"
}

# ---- setup and cleanup ----

xf_init()
{
	set -u
	XF_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	XF_NAME=$(basename "$0" .sh)
	O=${O:-build}
	case $O in
	/*) ;;
	*) O=$XF_TOP/$O ;;
	esac
	BIN=$O/bin
	W=$(mktemp -d "${TMPDIR:-/tmp}/xf-$XF_NAME.XXXXXX") ||
		xf_fail "mktemp"
	chmod 755 "$W"
	XF_LOG=$W/xenfsd.log
	XF_DAEMONS=()
	# Marker inherited by everything we start, even what daemonizes
	# (setsid leaves the process group but keeps the environment).
	export XF_OWNER=$W
	export O BIN W
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
	trap xf_cleanup EXIT
	trap 'exit 130' INT TERM HUP
}

# Mount points (unescaped) at or below $1, deepest first.  Also used by
# tests/run-all and scripts/demo, which source this file for it.
xf_mounts_under()
{
	local base=$1
	awk -v base="$base" '
	function unesc(s,   r, i, c) {
		r = ""
		for (i = 1; i <= length(s); i++) {
			c = substr(s, i, 1)
			if (c == "\\" && substr(s, i + 1, 3) ~ /^[0-7][0-7][0-7]$/) {
				r = r sprintf("%c", (substr(s, i + 1, 1) * 64 + \
				    substr(s, i + 2, 1) * 8 + substr(s, i + 3, 1)))
				i += 3
			} else
				r = r c
		}
		return r
	}
	{ m = unesc($5)
	  if (m == base || index(m, base "/") == 1) print length(m) " " m }' \
	    /proc/self/mountinfo | sort -rn | cut -d' ' -f2-
}

# xf_is_mounted MNT: 0 if MNT is a mount point now.
xf_is_mounted()
{
	local m
	m=$(realpath -m "$1")
	xf_mounts_under "$m" | grep -qxF -- "$m"
}

# Pids (other than ours) whose environment carries XF_OWNER=$1.
xf_owned_pids()
{
	local p
	for p in $(grep -lzxF -- "XF_OWNER=$1" /proc/[0-9]*/environ \
	    2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/environ$|\1|p'); do
		# skip ourselves and our ancestors (subshells of this test)
		xf_is_ancestor "$p" && continue
		[ "$p" = "$BASHPID" ] && continue
		[ -d "/proc/$p" ] && echo "$p"
	done
}

xf_is_ancestor()
{
	local p=$$ pp
	while [ "$p" -gt 1 ]; do
		[ "$p" = "$1" ] && return 0
		pp=$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null) || return 1
		p=${pp:-1}
	done
	return 1
}

# xf_kill_wait SIG PID...: signal, then wait up to 5 s for them to go.
xf_kill_wait()
{
	local sig=$1 p i
	shift
	[ $# -gt 0 ] || return 0
	kill "-$sig" "$@" 2>/dev/null
	for i in $(seq 100); do
		for p in "$@"; do
			kill -0 "$p" 2>/dev/null && break
			p=
		done
		[ -z "$p" ] && return 0
		sleep 0.05
	done
	return 1
}

xf_cleanup()
{
	local rc=$? m pids
	trap - EXIT
	set +e
	[ -n "${W:-}" ] || exit "$rc"
	while IFS= read -r m; do
		fusermount3 -u -z "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done < <(xf_mounts_under "$W")
	[ ${#XF_DAEMONS[@]} -gt 0 ] &&
		xf_kill_wait TERM "${XF_DAEMONS[@]}"
	pids=$(xf_owned_pids "$W")
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		xf_kill_wait TERM $pids || xf_kill_wait KILL $pids
	fi
	# a sanitizer report in a daemon's log fails the test (tests/run-all
	# also collects report files, but a confined process, e.g. a xenfsd
	# worker under Landlock, cannot create one and reports on stderr)
	if xf__san_reports "$W"; then
		[ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] && rc=1
		echo "$XF_NAME: FAIL: sanitizer report in a daemon log" >&2
	fi
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		if [ -s "$XF_LOG" ]; then
			echo "---- last 40 lines of $XF_LOG ----" >&2
			tail -n 40 "$XF_LOG" >&2
		fi
		echo "$XF_NAME: work dir kept: $W" >&2
	elif [ "${XF_KEEP:-0}" = 1 ]; then
		echo "$XF_NAME: work dir kept: $W" >&2
	else
		rm -rf --one-file-system "$W"
	fi
	exit "$rc"
}

# xf__san_reports DIR: print the sanitizer reports found in DIR/*.log (the
# daemons' logs); 0 if there was one.
xf__san_reports()
{
	local f found=1
	for f in "$1"/*.log; do
		[ -f "$f" ] || continue
		if grep -Eq "$XF_SAN_RE" "$f" 2>/dev/null; then
			echo "---- sanitizer report in $f ----" >&2
			grep -E -A 30 "$XF_SAN_RE" "$f" | head -n 60 >&2
			found=0
		fi
	done
	return $found
}
XF_SAN_RE='ERROR: (Address|Leak|Thread|Memory)Sanitizer|: runtime error: |'
XF_SAN_RE+="SUMMARY: [A-Za-z]*Sanitizer|ERROR: Can't open file: "

# ---- config ----

# xf_sock DOMAIN: the conventional local socket path of DOMAIN.
xf_sock() { echo "$W/$1.sock"; }

# xf_config NAME <<EOF ... EOF: write stdin to $W/NAME; sets XF_CONF.
xf_config()
{
	XF_CONF=$W/$1
	cat >"$XF_CONF" || xf_fail "cannot write $XF_CONF"
}

# xf_config_std NAME: a config with two exports and two domains, the
# shape most tests need:
#   [export shared]  $W/shared   vm1 rw, vm2 ro
#   [export home1]   $W/home1    vm1 rw
#   [domain vm1|vm2] local sockets $W/vm1.sock, $W/vm2.sock
# plus a [global] control socket and state dir inside $W.
xf_config_std()
{
	mkdir -p "$W/shared" "$W/home1" "$W/state"
	xf_config "${1:-xenfs.conf}" <<EOF
[global]
control-socket = $W/control.sock
state-dir = $W/state

[export shared]
path = $W/shared
access = vm1:rw vm2:ro

[export home1]
path = $W/home1
access = vm1:rw

[domain vm1]
local-socket = $(xf_sock vm1)

[domain vm2]
local-socket = $(xf_sock vm2)
EOF
}

# Local sockets a config declares (local_socket / local-socket keys).
xf_config_sockets()
{
	sed -n 's/^[[:space:]]*local[-_]socket[[:space:]]*=[[:space:]]*//p' \
	    "$1" | sed 's/[[:space:]]*$//'
}

# ---- daemons ----

# xf_start_backend CONF [extra xenfsd args]: start xenfsd in the
# foreground (in the background of this shell), log to $XF_LOG, and wait
# until every local socket of CONF exists.
xf_start_backend()
{
	local conf=$1 s pid
	shift
	xf_need_bin xenfsd
	echo "---- xenfsd -c $conf -f -v $* ----" >>"$XF_LOG"
	# sanitizer reports go to its log, which xf_cleanup checks: its
	# confined worker threads cannot create a log_path file (run-all)
	ASAN_OPTIONS=${ASAN_OPTIONS:-}:log_path=stderr \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-}:log_path=stderr \
	"$BIN/xenfsd" -c "$conf" -f -v "$@" >>"$XF_LOG" 2>&1 </dev/null &
	pid=$!
	XF_DAEMONS+=("$pid")
	XF_BACKEND_PID=$pid
	for s in $(xf_config_sockets "$conf"); do
		if ! xf_wait_until 15 xf__sock_or_dead "$s" "$pid"; then
			cat "$XF_LOG" >&2
			xf_fail "xenfsd: socket $s did not appear"
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			cat "$XF_LOG" >&2
			xf_fail "xenfsd died at startup"
		fi
	done
	kill -0 "$pid" 2>/dev/null || { cat "$XF_LOG" >&2; xf_fail "xenfsd died"; }
}

xf__sock_or_dead() { [ -S "$1" ] || ! kill -0 "$2" 2>/dev/null; }

# xf_stop_backend [PID]: SIGTERM and wait for it to exit.
xf_stop_backend()
{
	local pid=${1:-$XF_BACKEND_PID}
	xf_kill_wait TERM "$pid" || xf_kill_wait KILL "$pid"
	wait "$pid" 2>/dev/null
	return 0
}

# xf_expect_log PATTERN [SECONDS]: an extended regex must show up in
# xenfsd's log (waits up to SECONDS, default 5, since logging is async).
xf_expect_log()
{
	if ! xf_wait_until "${2:-5}" grep -Eq -- "$1" "$XF_LOG"; then
		tail -n 40 "$XF_LOG" >&2
		xf_fail "xenfsd log lacks /$1/"
	fi
}

# xf_expect_no_log PATTERN: the regex must not appear in the log.
xf_expect_no_log()
{
	if grep -Eq -- "$1" "$XF_LOG"; then
		grep -E -- "$1" "$XF_LOG" | head -n 5 >&2
		xf_fail "xenfsd log unexpectedly has /$1/"
	fi
}

# xf_mount SOCKET TAG MNT [OPTS]: mount export TAG over SOCKET on MNT with
# mount.xenfs, extra comma-separated OPTS appended to -o.  Works whether
# mount.xenfs stays in the foreground or forks and exits once mounted.
# Output goes to $W/mount.log.  Sets XF_MOUNT_PID (the process started;
# after daemonizing it may be gone).
xf_mount()
{
	local sock=$1 tag=$2 mnt=$3 opts="socket=$1" pid rc i
	[ $# -ge 4 ] && [ -n "$4" ] && opts="$opts,$4"
	xf_need_bin mount.xenfs
	mkdir -p "$mnt" || xf_fail "mkdir $mnt"
	echo "---- mount.xenfs $tag $mnt -o $opts ----" >>"$W/mount.log"
	"$BIN/mount.xenfs" "$tag" "$mnt" -o "$opts" \
	    >>"$W/mount.log" 2>&1 </dev/null &
	pid=$!
	XF_MOUNT_PID=$pid
	XF_DAEMONS+=("$pid")
	rc=
	for i in $(seq 300); do
		xf_is_mounted "$mnt" && return 0
		if [ -z "$rc" ] && ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			rc=$?
			if [ "$rc" -ne 0 ]; then
				cat "$W/mount.log" >&2
				xf_fail "mount.xenfs $tag $mnt exited $rc"
			fi
			# parent exited 0: it daemonized; keep waiting briefly
		fi
		sleep 0.05
	done
	cat "$W/mount.log" >&2
	xf_fail "mount of $tag on $mnt did not appear in mountinfo"
}

# xf_mount_expect_fail SOCKET TAG MNT [OPTS]: mount.xenfs must refuse
# (non-zero exit, no mount).  The message is left in $W/mount.log.
xf_mount_expect_fail()
{
	local sock=$1 tag=$2 mnt=$3 opts="socket=$1"
	[ $# -ge 4 ] && [ -n "$4" ] && opts="$opts,$4"
	xf_need_bin mount.xenfs
	mkdir -p "$mnt"
	echo "---- mount.xenfs $tag $mnt -o $opts (expect failure) ----" \
	    >>"$W/mount.log"
	if timeout 20 "$BIN/mount.xenfs" "$tag" "$mnt" -o "$opts" \
	    >>"$W/mount.log" 2>&1 </dev/null; then
		xf_is_mounted "$mnt" && xf_umount "$mnt"
		xf_fail "mount.xenfs $tag unexpectedly succeeded"
	fi
	xf_is_mounted "$mnt" && xf_fail "failed mount left $mnt mounted"
	return 0
}

# xf_umount MNT: unmount and wait for it to vanish from mountinfo.
xf_umount()
{
	local mnt=$1
	xf_is_mounted "$mnt" || return 0
	if ! fusermount3 -u "$mnt" 2>/dev/null && ! umount "$mnt"; then
		xf_fail "cannot unmount $mnt"
	fi
	xf_wait_until 10 xf__not_mounted "$mnt" ||
		xf_fail "$mnt still mounted"
}

xf__not_mounted() { ! xf_is_mounted "$1"; }
