#!/usr/bin/env bash
# timeout: 90
# The operation stream records a guest workload exactly, in order: creates,
# coalesced writes (one modify per flush), renames, links, deletes, with
# inode identity and sizes; xenfsctl events prints it.
. "$(dirname "$0")/../lib.sh"
xf_init
[ -n "${W:-}" ] || exit 1
xf_need_root; xf_need_fuse
xf_need_bin xenfsd mount.xenfs xenfsctl
xf_config_std
xf_start_backend "$XF_CONF"
xf_mount "$(xf_sock vm1)" shared "$W/mnt"
M=$W/mnt
J=$W/state/journal

head0=$("$BIN/xenfsctl" -d "$J" events | tail -n 1 | cut -d' ' -f1)
head0=${head0:-0}

# the workload
mkdir "$M/d" || xf_fail mkdir
printf 'a%.0s' $(seq 1000) > "$M/d/f" || xf_fail create+write
dd if=/dev/zero of="$M/big" bs=4k count=64 status=none || xf_fail dd
mv "$M/d/f" "$M/d/g" || xf_fail rename
ln "$M/d/g" "$M/hard" || xf_fail link
ln -s d/g "$M/sym" || xf_fail symlink
truncate -s 10 "$M/big" || xf_fail truncate
rm "$M/hard" "$M/sym" || xf_fail unlink
rm "$M/d/g" || xf_fail unlink2
rmdir "$M/d" || xf_fail rmdir

# ops, paths, as the stream must show them (origin guest, domain vm1)
expect="mkdir /d
create /d/f
modify /d/f size=1000
create /big
modify /big size=262144
rename /d/f /d/g
link /d/g /hard
symlink /sym
setattr /big size=10 truncate
unlink /hard
unlink /sym
unlink /d/g
rmdir /d"

got=$("$BIN/xenfsctl" -d "$J" events --from $((head0 + 1)) |
    awk '$3 == "vm1" && $4 == "shared" {
	line = $2 " " $5
	if ($2 == "rename" || $2 == "link") line = line " " $6
	if ($2 == "modify" || ($2 == "setattr")) {
		for (i = 6; i <= NF; i++) if ($i ~ /^size=/) line = line " " $i
		if ($NF == "truncate") line = line " truncate"
	}
	print line }')
if [ "$got" != "$expect" ]; then
	printf 'expected:\n%s\ngot:\n%s\nfull stream:\n' "$expect" "$got" >&2
	"$BIN/xenfsctl" -d "$J" events >&2
	xf_fail "stream does not match the workload"
fi

# identity: the rename keeps the inode of the create
ino_c=$("$BIN/xenfsctl" -d "$J" events | awk '$2 == "create" && $5 == "/d/f" { sub("ino=", "", $7); print $7 }')
ino_r=$("$BIN/xenfsctl" -d "$J" events | awk '$2 == "rename" { sub("ino=", "", $8); print $8 }')
[ -n "$ino_c" ] && [ "$ino_c" = "$ino_r" ] ||
	xf_fail "rename inode $ino_r differs from create inode $ino_c"
"$BIN/xenfsctl" -d "$J" --json events | head -n 1 | grep -q '"seq":' ||
	xf_fail "json output"
exit 0
