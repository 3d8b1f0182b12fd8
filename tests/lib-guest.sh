# tests/lib-guest.sh: setups several integration tests share, on top of
# tests/lib.sh.  Source it after lib.sh (and after xf_init):
#
#	. "$(dirname "$0")/../lib.sh"
#	. "$(dirname "$0")/../lib-guest.sh"
#
# ---- one guest, one rw export ----
# The config of t_basic, t_posix, t_escape, t_kill_frontend and the
# t_workload_* tests: export `shared` at $EXP, read-write for vm1 over the
# local socket $W/vm1.sock, control socket $W/ctl.sock, state dir
# $W/state.

# xf_shared_backend: write that config to $W/xenfs.conf (sets XF_CONF)
# and start xenfsd on it (sets XF_BACKEND_PID, XF_LOG).  $EXP and
# $W/state must exist.
xf_shared_backend()
{
	xf_config xenfs.conf <<CONF
[global]
control-socket = $W/ctl.sock
state-dir = $W/state

[export shared]
path = $EXP
access = vm1:rw

[domain vm1]
local-socket = $W/vm1.sock
CONF
	xf_start_backend "$XF_CONF"
}

# xf_shared_mount: mount export `shared` as vm1 on $M.
xf_shared_mount() { xf_mount "$W/vm1.sock" shared "$M"; }

# xf_shared_setup: EXP=$W/exp/shared and M=$W/mnt, both directories
# (and $W/state) made, then xf_shared_backend.  Does not mount.
xf_shared_setup()
{
	EXP=$W/exp/shared
	M=$W/mnt
	mkdir -p "$EXP" "$W/state"
	xf_shared_backend
}

# ---- scanner tests ----

# xf_scan_prepare: the scanner tests' common ground: $W/shared, $W/state
# and a world-readable signature database $W/db holding the EICAR string
# (xenfs-test.ndb); ST is a short /tmp link to $W/state (unix socket
# paths are short), removed by the EXIT trap before xf_cleanup.
xf_scan_prepare()
{
	local hex

	mkdir -p "$W/shared" "$W/state" "$W/db"
	chmod 755 "$W/db"
	ST=$(mktemp -u /tmp/xfscan.XXXXXX)
	ln -s "$W/state" "$ST" || xf_fail "symlink $ST"
	trap 'rc=$?; rm -f "$ST"; (exit $rc); xf_cleanup' EXIT
	hex=$(printf '%s' 'EICAR-STANDARD-ANTIVIRUS-TEST-FILE' | od -An -tx1 |
		tr -d ' \n')
	echo "Xenfs.Test.EICAR:0:*:$hex" >"$W/db/xenfs-test.ndb"
	chmod 644 "$W/db"/*
}
