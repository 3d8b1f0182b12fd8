#!/bin/sh
# /init of the test domUs (tests/xen/run).  The kernel command line picks
# the role: xft=probe|probe-hold|basic|share-rw|share-ro, or
# root=xenfs:TAG (mount the export as / and switch_root into it).
# Every line the harness looks at starts with "XFT-G <role>".
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/local/bin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
role=none root=
for w in $(cat /proc/cmdline); do
	case $w in
	xft=*) role=${w#xft=} ;;
	root=xenfs:*) root=${w#root=xenfs:}; role=root ;;
	esac
done
g() { echo "XFT-G $role $*"; }
g "init uptime=$(cut -d' ' -f1 /proc/uptime)"
insmod /lib/modules/xen-evtchn.ko
insmod /lib/modules/xen-gntalloc.ko limit=65536
insmod /lib/modules/xen-gntdev.ko
insmod /lib/modules/fuse.ko
end() { g "end uptime=$(cut -d' ' -f1 /proc/uptime)"; sync; poweroff -f; }

# xmount TAG DIR [OPTS]: mount.xenfs in the background, wait for the mount
xmount() {
	o=transport=xen; [ -n "${3:-}" ] && o="$o,$3"
	# root: the daemon outlives the initramfs, so its messages go to the console
	if [ "$role" = root ]; then log=/dev/console; else log=/tmp/mount-$1.log; fi
	/sbin/mount.xenfs "$1" "$2" -o "$o" > $log 2>&1 &
	i=0
	while ! grep -q " $2 " /proc/mounts; do
		i=$((i + 1))
		if [ $i -gt 300 ]; then
			g "FAIL mount $1 on $2 did not appear:"; cat /tmp/mount-$1.log
			return 1
		fi
		sleep 0.2
	done
	g "mounted $1 on $2 after $((i / 5)) s"
}

case $role in
probe)
	xenfs-xen-probe front shared 200
	xenfs-xen-probe front shared 5 ro
	xenfs-xen-probe front nosuchtag 1
	end ;;
probe-hold)
	xenfs-xen-probe front shared 20 hold
	end ;;
basic)
	mkdir -p /mnt/x
	xmount shared /mnt/x || end
	echo "hello from $(cat /proc/sys/kernel/hostname) over xenfs" > /mnt/x/hello.txt
	mkdir -p /mnt/x/dir/sub
	dd if=/dev/urandom of=/tmp/big bs=64k count=64 2>/dev/null
	cp /tmp/big /mnt/x/dir/big
	sync
	a=$(md5sum < /tmp/big | cut -d' ' -f1)
	echo 3 > /proc/sys/vm/drop_caches
	b=$(md5sum < /mnt/x/dir/big | cut -d' ' -f1)
	mv /mnt/x/dir/big /mnt/x/dir/sub/big2
	ls -la /mnt/x /mnt/x/dir/sub
	if [ "$a" = "$b" ] && [ -f /mnt/x/dir/sub/big2 ] &&
	   grep -q "over xenfs" /mnt/x/hello.txt; then
		g "OK md5=$a"
	else
		g "FAIL md5 $a != $b or files missing"
	fi
	umount /mnt/x && g "umounted"
	# an export with noexec = yes: the backend grants NOEXEC, the mount
	# carries it and nothing on it runs
	mkdir -p /mnt/t
	if xmount tools /mnt/t; then
		grep " /mnt/t " /proc/mounts
		if grep " /mnt/t " /proc/mounts | grep -q noexec &&
		   [ -f /mnt/t/run.sh ] && ! /mnt/t/run.sh 2>/dev/null; then
			g "NOEXEC-OK"
		else
			g "FAIL noexec export"
		fi
		umount /mnt/t
	fi
	sleep 1
	end ;;
share-rw)
	mkdir -p /mnt/s
	xmount shared /mnt/s || end
	mkdir -p /mnt/s/share
	echo "written by vm1" > /mnt/s/share/from-vm1 && sync && g "WROTE"
	i=0; while [ ! -e /mnt/s/share/from-dom0 ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done
	[ -e /mnt/s/share/from-dom0 ] && g "SAW-DOM0 $(cat /mnt/s/share/from-dom0)"
	i=0; while [ ! -e /mnt/s/share/vm3-ok ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done
	umount /mnt/s && g "umounted"
	end ;;
share-ro)
	mkdir -p /mnt/s
	xmount shared /mnt/s ro || end
	i=0; while [ ! -e /mnt/s/share/from-vm1 ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done
	[ -e /mnt/s/share/from-vm1 ] && g "SAW-VM1 $(cat /mnt/s/share/from-vm1)"
	if echo x > /mnt/s/share/from-vm3 2>/dev/null; then g "FAIL ro mount accepted a write"
	else g "RO-OK"; fi
	i=0; while [ ! -e /mnt/s/share/from-local ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done
	[ -e /mnt/s/share/from-local ] && g "SAW-LOCAL $(cat /mnt/s/share/from-local)"
	g "HOLDING"
	while :; do sleep 10; done ;;
root)
	# initramfs-tools' boot script (frontend/initramfs/scripts/xenfs),
	# with stand-ins for what initramfs-tools' /init provides.  A syslogd
	# puts mount.xenfs's messages (it logs to syslog once detached) on
	# the console.
	syslogd -O /dev/console
	mkdir -p /newroot
	rootmnt=/newroot ROOT=xenfs:$root quiet=n readonly=n ROOTFLAGS=
	panic() { g "FAIL panic: $*"; end; }
	log_begin_msg() { g "$*"; }
	log_end_msg() { g "mounted $root on $rootmnt"; }
	modprobe() { m=$1; shift; insmod /lib/modules/$m.ko "$@" 2>/dev/null; }
	. /scripts/xenfs
	mountroot
	[ -x /newroot/sbin/xft-workload ] || { g "FAIL no /sbin/xft-workload in the root"; end; }
	mount --move /dev /newroot/dev 2>/dev/null || mount -t devtmpfs devtmpfs /newroot/dev
	umount /proc /sys 2>/dev/null
	g "switch_root"
	exec switch_root /newroot /sbin/xft-workload guest
	;;
*)
	g "FAIL unknown role"; end ;;
esac
end
