#!/bin/sh
# /init of dom0 in tests/xen/run: bring up the Xen tools, then run each
# scenario of /etc/xenfs/scenarios and print XFT-PASS/FAIL/SKIP <name>.
# Guest consoles are relayed onto dom0's console (serial) with tail -f.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/lib/xen-4.17/bin:/usr/local/bin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
# XFT_DOM0_ROOT=tmpfs (tests/xen/run): move everything onto a tmpfs and
# switch_root there, so that / is an ordinary mount as on a dom0 with a
# disk (xenfsd's workers then pivot_root into their namespace root).  By
# default dom0 stays on the initramfs, where pivot_root is refused and the
# workers take their move-over-rootfs path.
if [ $$ = 1 ] && [ -z "${XFT_SWITCHED:-}" ] &&
   [ "$(cat /etc/xenfs/dom0-root 2>/dev/null)" = tmpfs ]; then
	mkdir -p /newroot && mount -t tmpfs -o mode=0755 tmpfs /newroot &&
	    for f in /*; do
		[ "$f" = /newroot ] || cp -a "$f" /newroot/ || break
	    done &&
	    XFT_SWITCHED=1 exec switch_root /newroot /init
	echo "XFT-WARN cannot leave the initramfs root; staying on it"
fi
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts; mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run; mkdir -p /run/xen /run/xenstored /run/xenfs /var/lib/xenfs
for m in xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs fuse; do
	insmod /lib/modules/$m.ko || echo "insmod $m failed"
done
mount -t xenfs xenfs /proc/xen
xenstored --pid-file /run/xen/xenstored.pid
i=0; until xenstore-read -s / >/dev/null 2>&1; do i=$((i+1)); [ $i -gt 100 ] && break; sleep 0.2; done
xen-init-dom0 || echo "XFT-WARN xen-init-dom0 failed"
xenconsoled --log=guest --log-dir=/var/log/xen/console --pid-file=/run/xen/xenconsoled.pid
xl info >/dev/null 2>&1 || echo "XFT-WARN xl info failed"
echo "XFT-DOM0-UP uptime=$(cut -d' ' -f1 /proc/uptime)"

# Exports live on a tmpfs ("dom0 disk" for the throughput comparison).
mkdir -p /srv && mount -t tmpfs -o size=600m tmpfs /srv
mkdir -p /srv/shared /srv/rootfs
mkdir -p /srv/tools && printf '#!/bin/sh\necho ran\n' > /srv/tools/run.sh && chmod 0755 /srv/tools/run.sh
tar -xzf /srv-src/rootfs.tar.gz -C /srv/rootfs && rm -f /srv-src/rootfs.tar.gz
echo "XFT dom0 space: $(df -h / /srv | tail -2 | tr '\n' ' ')"
cat > /etc/xenfs/xenfs.conf <<EOF
[global]
state-dir = /var/lib/xenfs
control-socket = /run/xenfs/control.sock
max-region = 64M

[export shared]
path = /srv/shared
access = vm1:rw vm2:rw vm3:ro vmlocal:rw

[export tools]
path = /srv/tools
access = vm1:rw
noexec = yes

[domain vmlocal]
local-socket = /run/xenfs/vmlocal.sock

[export rootfs]
path = /srv/rootfs
access = vmroot:rw
EOF

CONS=/var/log/xen/console
TAILS=
# guest NAME CMDLINE [MEM [RAMDISK]]: create a PV domU (default ramdisk:
# our busybox one, /init = domu-init.sh)
guest() {
	cat > /etc/xen/$1.cfg <<EOF
name = "$1"
type = "pv"
kernel = "/guest/vmlinux"
ramdisk = "${4:-/guest/domu.cpio.gz}"
extra = "console=hvc0 quiet $2"
memory = ${3:-192}
vcpus = 1
on_poweroff = "destroy"
on_crash = "destroy"
EOF
	ok=0
	for try in 1 2 3; do
		if xl create /etc/xen/$1.cfg >/tmp/xl-$1.log 2>&1; then ok=1; break; fi
		echo "XFT-WARN xl create $1 attempt $try failed"; cat /tmp/xl-$1.log
		xl destroy $1 2>/dev/null; sleep 1
	done
	[ $ok = 1 ] || return 1
	i=0; while [ ! -e $CONS/guest-$1.log ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i+1)); done
	tail -n +1 -f $CONS/guest-$1.log & TAILS="$TAILS $!"
	echo "XFT domU $1 is domid $(domid_of $1)"
}
# domid_of NAME: from xenstore (xl itself has crashed under TCG, see
# docs/xen.md, so the harness avoids depending on it where it can)
domid_of() {
	for d in $(xenstore-list /local/domain 2>/dev/null); do
		[ "$(xenstore-read /local/domain/$d/name 2>/dev/null)" = "$1" ] &&
		    { echo $d; return 0; }
	done
	return 1
}
# gone NAME SECONDS [END]: wait for the domain to disappear (its xenstore
# directory is removed when the toolstack destroys it).  If the guest's
# console shows END, the toolstack gets 30 s more; then, or after SECONDS,
# the domain is destroyed and gone fails.
gone() {
	id=$(domid_of $1) || return 0
	i=0; e=-1
	while xenstore-exists /local/domain/$id 2>/dev/null ||
	      xenstore-exists /local/domain/$id 2>/dev/null; do
		sleep 1; i=$((i+1))
		[ $e -lt 0 ] && [ -n "${3:-}" ] && grep -q "$3" $CONS/guest-$1.log 2>/dev/null && e=$i
		if [ $i -gt $2 ] || { [ $e -ge 0 ] && [ $i -gt $((e + 30)) ]; }; then
			echo "XFT-WARN $1 (dom $id) did not go away in $i s; destroying"
			xl list; xl destroy $id
			return 1
		fi
	done
	return 0
}
# glog NAME PATTERN [SECONDS]: wait for PATTERN in the guest's console log
glog() {
	i=0; while ! grep -q "$2" $CONS/guest-$1.log 2>/dev/null; do
		sleep 0.5; i=$((i+1)); [ $i -gt $(( ${3:-60} * 2 )) ] && return 1
	done
	return 0
}
# flog FILE PATTERN [SECONDS]: the same for a log file in dom0
flog() {
	i=0; while ! grep -q "$2" $1 2>/dev/null; do
		sleep 0.5; i=$((i+1)); [ $i -gt $(( ${3:-30} * 2 )) ] && return 1
	done
	return 0
}
gntmaps() { n=$(grep -c /dev/xen/gntdev /proc/$1/maps 2>/dev/null); echo "${n:-0}"; }
# Privilege separation: unless xenfsd runs with --no-sandbox, its main
# process never maps guest memory; each domain's worker process
# ("xenfsd --worker NAME", a child in its own pid namespace) does.
XENFSD_ARGS=$(cat /etc/xenfs/xenfsd-args 2>/dev/null)
case " $XENFSD_ARGS " in *" --no-sandbox "*) SANDBOX=0 ;; *) SANDBOX=1 ;; esac
# (busybox-static has no pgrep: read the command lines)
workers_of() {
	for p in /proc/[0-9]*; do
		case "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" in
		"xenfsd --worker $1 "*) echo ${p#/proc/} ;;
		esac
	done
}
# gntmaps of the processes that serve NAME: its workers, or xenfsd itself
dom_gntmaps() {
	if [ $SANDBOX = 0 ]; then gntmaps $XENFSD; return; fi
	t=0; for w in $(workers_of $1); do t=$((t + $(gntmaps $w))); done
	echo $t
}
# xen_clean NAME SECONDS: the process that mapped NAME's connections says
# it maps and binds nothing any more after NAME went away: xenfsd itself
# (--no-sandbox: its "gone" line), or NAME's worker, whose line for each
# ended connection gives what that worker still maps.
xen_clean() {
	if [ $SANDBOX = 0 ]; then
		flog /var/log/xenfsd.log "$1) gone; xen transport now maps 0 pages, binds 0 ports" $2
		return
	fi
	flog /var/log/xenfsd.log "$1) gone" $2 &&
	    flog /var/log/xenfsd.log "($1) export [^:]*: connection ended; worker still maps 0 pages, binds 0 ports" $2
}
stop_tails() { for t in $TAILS; do kill $t 2>/dev/null; done; TAILS=; }
bad() { echo "XFT-FAIL-DETAIL $S $*"; R=FAIL; }

XENFSD=
start_xenfsd() {
	# as its systemd unit does (LimitNOFILE): max-fds per guest needs room
	ulimit -n 65536
	xenfsd -c /etc/xenfs/xenfs.conf -f -v $XENFSD_ARGS > /var/log/xenfsd.log 2>&1 &
	XENFSD=$!
	tail -f /var/log/xenfsd.log &
	TAILS="$TAILS $!"
	flog /var/log/xenfsd.log "xen: transport on" 20 ||
	    { bad "xenfsd did not start its Xen transport"; cat /var/log/xenfsd.log; return 1; }
}
stop_xenfsd() {
	[ -n "$XENFSD" ] && kill $XENFSD 2>/dev/null && wait $XENFSD 2>/dev/null
	XENFSD=
}

# ---------------------------------------------------------------- scenarios
sc_probe() {
	# split: backend/xen.c takes the privileged parent's path (read the
	# offer, hand its bytes over, map them), as in xenfsd's default mode
	XFT_PROBE_SPLIT=1 xenfs-xen-probe back /etc/xenfs/xenfs.conf > /var/log/probe.log 2>&1 &
	P=$!
	tail -f /var/log/probe.log & TAILS="$TAILS $!"
	flog /var/log/probe.log PROBE-BACK-READY 20 ||
	    { bad "probe backend did not start"; cat /var/log/probe.log; return; }
	guest vm1 "xft=probe" || { bad "xl create vm1"; return; }
	gone vm1 180 "XFT-G probe end" || bad "vm1 did not finish"
	glog vm1 "PROBE-FRONT-ECHO-OK n=200" 1 || bad "no echo round trips (rw)"
	glog vm1 "PROBE-FRONT-ECHO-OK n=5" 1 || bad "no echo round trips after reconnect (ro)"
	grep -q "PROBE-FRONT-CONNECTED granted=1" $CONS/guest-vm1.log || bad "ro flag not granted"
	glog vm1 'PROBE-FRONT-CONNECT-FAIL.*no xenfs device with tag "nosuchtag"' 1 ||
	    bad "unknown tag not refused with a clear message"
	[ "$(grep -c 'PROBE-BACK-STOPPED.*pages=0 ports=0' /var/log/probe.log)" -ge 2 ] ||
	    bad "backend kept grants or ports after the frontend closed"
	grep -q "PROBE-BACK-SPLIT offer mapped" /var/log/probe.log ||
	    bad "the probe did not take the split (parent reads, worker maps) path"
	flog /var/log/probe.log "vm1) gone; its worker unmaps" 10 ||
	    bad "vm1's devices not cleaned up"
	[ -z "$(xenstore-ls /local/domain/0/backend/xenfs 2>/dev/null | grep -v '^ *$')" ] ||
	    { bad "xenstore nodes left behind"; xenstore-ls /local/domain/0/backend/xenfs; }
	# destroyed while connected
	guest vm2 "xft=probe-hold" || { bad "xl create vm2"; return; }
	glog vm2 PROBE-FRONT-HOLDING 120 || bad "vm2 did not connect"
	n=$(gntmaps $P); echo "XFT probe backend has $n gntdev mappings while vm2 is connected"
	[ "$n" -gt 0 ] || bad "no gntdev mapping while connected"
	n0=$(grep -c 'PROBE-BACK-STOPPED.*pages=0 ports=0' /var/log/probe.log)
	xl destroy vm2
	flog /var/log/probe.log "vm2) gone" 20 || bad "vm2's devices not cleaned up"
	[ "$(grep -c 'PROBE-BACK-STOPPED.*pages=0 ports=0' /var/log/probe.log)" -gt "$n0" ] ||
	    bad "destroyed vm2 left grants or ports"
	n=$(gntmaps $P); echo "XFT probe backend has $n gntdev mappings after destroy"
	[ "$n" = 0 ] || bad "gntdev mappings left after destroy"
	kill $P; wait $P
}

sc_basic() {
	start_xenfsd || return
	guest vm1 "xft=basic" || { bad "xl create vm1"; return; }
	gone vm1 240 "XFT-G basic end" || bad "vm1 did not finish"
	glog vm1 "XFT-G basic OK" 1 || bad "guest did not report OK"
	glog vm1 "XFT-G basic NOEXEC-OK" 1 || bad "the noexec export was not mounted noexec, or ran a program"
	md5=$(sed -n 's/.*XFT-G basic OK md5=\([0-9a-f]*\).*/\1/p' $CONS/guest-vm1.log | head -1)
	grep -q "over xenfs" /srv/shared/hello.txt || bad "hello.txt missing in dom0"
	[ -n "$md5" ] && [ "$(md5sum < /srv/shared/dir/sub/big2 | cut -d' ' -f1)" = "$md5" ] ||
	    bad "big file differs in dom0"
	xen_clean vm1 10 || bad "xenfsd kept grants or ports"
	stop_xenfsd
}

sc_root() {
	start_xenfsd || return
	guest vmroot "root=xenfs:rootfs loglevel=7" 256 || { bad "xl create vmroot"; return; }
	gone vmroot 420 "XFT-G root guest poweroff" || bad "vmroot did not finish"
	glog vmroot "XFT-G root guest OK" 1 || bad "guest workload failed"
	[ "$(cat /srv/rootfs/root/xft-result-guest 2>/dev/null)" = ok ] || bad "no result file in dom0"
	# dom0 runs what the guest built and checks the guest's repository
	mount -o bind /dev /srv/rootfs/dev
	[ "$(timeout 60 chroot /srv/rootfs /root/work-guest/xftproj/xftproj 2>/dev/null)" = "$(cat /etc/xenfs/proj-expected)" ] ||
	    bad "guest-built binary wrong in dom0"
	timeout 120 chroot /srv/rootfs /usr/bin/git -C /root/work-guest/xftproj fsck --full --strict > /tmp/fsck.log 2>&1 ||
	    { bad "git fsck in dom0 of the guest's repo failed"; cat /tmp/fsck.log; }
	n=$(timeout 60 chroot /srv/rootfs /usr/bin/git -C /root/work-guest/xftproj log --oneline 2>/dev/null | wc -l)
	[ "$n" = 2 ] || bad "dom0 sees $n commits in the guest's repo, not 2"
	umount /srv/rootfs/dev
	stop_xenfsd
	# The same workload on dom0's own tmpfs, for the ratio.
	cp -a /srv/rootfs /srv/local && rm -rf /srv/local/root/work-guest
	mount -t proc proc /srv/local/proc
	mount -o bind /dev /srv/local/dev
	# twice, keeping the faster run: the host's load varies (TCG)
	lt=
	for run in 1 2; do
		timeout 300 chroot /srv/local /sbin/xft-workload local > /var/log/local-$run.log 2>&1
		cat /var/log/local-$run.log
		umount /srv/local/tmp
		t=$(sed -n 's/.*XFT-G root local OK total=\([0-9.]*\)s.*/\1/p' /var/log/local-$run.log | head -1)
		[ -n "$t" ] || continue
		if [ -z "$lt" ] || awk -v a="$t" -v b="$lt" 'BEGIN { exit !(a < b) }'; then
			lt=$t; cp /var/log/local-$run.log /var/log/local-workload.log
		fi
	done
	umount /srv/local/dev; umount /srv/local/proc
	gt=$(sed -n 's/.*XFT-G root guest OK total=\([0-9.]*\)s.*/\1/p' $CONS/guest-vmroot.log | head -1)
	[ -n "$lt" ] || bad "the workload failed on dom0's tmpfs too"
	echo "XFT-TIME root workload: guest on XenFS ${gt:-?} s, dom0 on tmpfs ${lt:-?} s"
	for st in untar build git fio tree; do
		g1=$(sed -n "s/.*XFT-G root guest step $st ok \([0-9.]*\)s.*/\1/p" $CONS/guest-vmroot.log | head -1)
		l1=$(sed -n "s/.*XFT-G root local step $st ok \([0-9.]*\)s.*/\1/p" /var/log/local-workload.log | head -1)
		echo "XFT-TIME step $st: guest ${g1:-?} s, dom0 ${l1:-?} s"
	done
	[ -n "$gt" ] && [ -n "$lt" ] && awk -v g="$gt" -v l="$lt" 'BEGIN {
	    printf "XFT-RATIO root workload throughput guest-over-XenFS / dom0-tmpfs = %.3f (%.1fx slower)\n",
		l / g, g / (l > 0 ? l : 0.01) }'
	rm -rf /srv/local
}

# A guest boots from an initramfs that Debian's mkinitramfs built on the
# host with our hook (tests/xen/run): initramfs-tools' own /init mounts
# root=xenfs:rootfs through scripts/xenfs and runs /sbin/xft-rootcheck.
sc_initramfs() {
	if [ ! -s /guest/initrd-tools.img ]; then
		R=SKIP; echo "XFT-SKIP initramfs $(cat /guest/initrd-tools.why 2>/dev/null)"
		return
	fi
	rm -f /srv/rootfs/root/xft-initramfs-result
	start_xenfsd || return
	guest vmroot "root=xenfs:rootfs rw init=/sbin/xft-rootcheck" 256 /guest/initrd-tools.img ||
	    { bad "xl create vmroot"; return; }
	gone vmroot 240 "XFT-G initramfs poweroff" || bad "vmroot did not finish"
	glog vmroot "XFT-G initramfs OK" 1 || bad "the guest did not come up on its XenFS root"
	[ "$(cat /srv/rootfs/root/xft-initramfs-result 2>/dev/null)" = ok ] ||
	    bad "the guest's file is not in dom0's export"
	stop_xenfsd
}

# lmount: a local-transport guest of the same xenfsd, mounted in dom0
LMNT=/mnt/local
lmount() {
	mkdir -p $LMNT
	mount.xenfs shared $LMNT -o transport=local,socket=/run/xenfs/vmlocal.sock \
	    > /var/log/mount-local.log 2>&1 ||
	    { bad "local-transport mount failed: $(cat /var/log/mount-local.log)"; return 1; }
	grep -q " $LMNT fuse.xenfs " /proc/mounts || { bad "local mount missing"; return 1; }
	echo "XFT local-transport guest vmlocal mounted shared on $LMNT"
}

sc_share() {
	start_xenfsd || return
	lmount
	guest vm1 "xft=share-rw" || { bad "xl create vm1"; return; }
	guest vm3 "xft=share-ro" || { bad "xl create vm3"; return; }
	glog vm3 "XFT-G share-ro SAW-VM1" 180 || bad "ro guest did not see the rw guest's file"
	glog vm3 "XFT-G share-ro RO-OK" 30 || bad "ro guest could write"
	# the local-transport guest sees vm1's file and writes one vm3 must see
	i=0; while [ ! -e $LMNT/share/from-vm1 ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i+1)); done
	grep -q "written by vm1" $LMNT/share/from-vm1 2>/dev/null ||
	    bad "the local-transport guest did not see vm1's file"
	echo "written by vmlocal" > $LMNT/share/from-local || bad "local-transport guest cannot write"
	glog vm3 "XFT-G share-ro SAW-LOCAL" 60 || bad "ro Xen guest did not see the local guest's file"
	echo "dom0 was here" > /srv/shared/share/from-dom0
	glog vm1 "XFT-G share-rw SAW-DOM0" 180 || bad "rw guest did not see dom0's file"
	touch /srv/shared/share/vm3-ok
	gone vm1 120 "XFT-G share-rw end" || bad "vm1 did not finish"
	glog vm3 "XFT-G share-ro HOLDING" 30 || bad "vm3 not holding its mount"
	n=$(dom_gntmaps vm3); echo "XFT vm3's server ($([ $SANDBOX = 1 ] &&
	    echo "worker $(workers_of vm3 | tr '\n' ' ')" || echo xenfsd)) has $n gntdev mappings while vm3 is mounted"
	[ "$n" -gt 0 ] || bad "no gntdev mapping while vm3 is mounted"
	if [ $SANDBOX = 1 ]; then
		n=$(gntmaps $XENFSD); echo "XFT xenfsd's privileged parent has $n gntdev mappings"
		[ "$n" = 0 ] || bad "xenfsd's parent maps guest memory"
	fi
	xl destroy vm3
	xen_clean vm3 20 || bad "destroyed vm3 left grants or ports in xenfsd"
	n=$(dom_gntmaps vm3); echo "XFT vm3's server has $n gntdev mappings after destroy"
	[ "$n" = 0 ] || bad "gntdev mappings left after destroy"
	n=$(gntmaps $XENFSD)
	[ "$n" = 0 ] || bad "xenfsd has $n gntdev mappings after destroy"
	# every guest is gone: dom0 must have no interdomain port to a domU
	lsevtchn 0 2>/dev/null | grep "Interdomain" | grep -v "Remote Domain 0," > /tmp/ports
	n=$(wc -l < /tmp/ports)
	echo "XFT dom0 interdomain event channels to guests after destroy: $n"
	[ "$n" = 0 ] || { bad "ports still bound to guests"; cat /tmp/ports; }
	[ -z "$(xenstore-ls /local/domain/0/backend/xenfs 2>/dev/null | grep -v '^ *$')" ] ||
	    { bad "xenstore nodes left behind"; xenstore-ls /local/domain/0/backend/xenfs; }
	kill -0 $XENFSD 2>/dev/null || bad "xenfsd died"
	# the local guest still works after the Xen guests left
	cat $LMNT/share/from-vm1 > /dev/null || bad "local mount broken after the Xen guests left"
	umount $LMNT || bad "cannot unmount the local guest"
	stop_xenfsd
}

for S in $(cat /etc/xenfs/scenarios); do
	echo "XFT-SCENARIO-START $S uptime=$(cut -d' ' -f1 /proc/uptime)"
	R=PASS
	case $S in
	probe) sc_probe ;;
	basic|root|share|initramfs)
		if [ "$(cat /etc/xenfs/have-fs)" != 1 ]; then
			R=SKIP; echo "XFT-SKIP $S xenfsd/mount.xenfs with the Xen transport not built"
		else
			sc_$S
		fi ;;
	*) bad "unknown scenario" ;;
	esac
	stop_tails
	# Crashed processes (dom0 or guests) mean the emulation is broken,
	# not XenFS (docs/xen.md, "Testing under QEMU"): say so loudly.
	dmesg | grep -E "segfault at|general protection" > /tmp/segv.d0
	n=$(($(wc -l < /tmp/segv.d0) - ${NSEGV:-0})); NSEGV=$(wc -l < /tmp/segv.d0)
	cat $CONS/guest-*.log 2>/dev/null | grep -E "segfault at|general protection" > /tmp/segv.g
	n=$((n + $(wc -l < /tmp/segv.g)))
	[ $n -gt 0 ] && { echo "XFT-WARN-CRASH $S: $n process(es) in dom0 or a guest segfaulted:"
			  tail -$n /tmp/segv.d0; cat /tmp/segv.g; }
	rm -f $CONS/guest-*.log
	for d in $(xl list 2>/dev/null | awk 'NR>2{print $1}'); do xl destroy $d 2>/dev/null; done
	echo "XFT-SCENARIO-END $S uptime=$(cut -d' ' -f1 /proc/uptime)"
	[ $R = SKIP ] || echo "XFT-$R $S"
done
echo "XFT-DOM0-END uptime=$(cut -d' ' -f1 /proc/uptime)"
sync
poweroff -f
