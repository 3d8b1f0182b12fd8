#!/bin/sh
# The root=xenfs workload (tests/xen/run): untar and build a small C
# project with tcc, git init/commit/fsck, fio write+verify.  Runs as PID 1
# of a domU whose root is a XenFS export ("guest"), or in a chroot in dom0
# on its own tmpfs for the throughput comparison ("local").  Results go to
# /root/xft-result; lines the harness reads start with "XFT-G root".
mode=${1:-guest}
export PATH=/bin:/sbin:/usr/bin:/usr/sbin:/usr/local/bin
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
export HOME=/root
if [ "$mode" = guest ]; then
	mount -t proc proc /proc; mount -t sysfs sysfs /sys
fi
g() { echo "XFT-G root $mode $*"; }
now() { cut -d' ' -f1 /proc/uptime; }
fail=0
step() { name=$1; shift; t=$(now); if "$@" > /tmp/xft-$name.log 2>&1; then
		g "step $name ok $(awk -v a="$t" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')s"
	else g "FAIL step $name"; tail -5 /tmp/xft-$name.log; fail=1; fi; }
mkdir -p /tmp 2>/dev/null
mount -t tmpfs tmpfs /tmp 2>/dev/null
W=/root/work-$mode
rm -rf "$W"; mkdir -p "$W"; cd "$W" || exit 1
t0=$(now)
g "start uptime=$t0 root=$(grep ' / ' /proc/mounts | head -1)"

step untar tar -xf /root/xftproj.tar
build() { cd xftproj && for f in src/*.c; do tcc -c "$f" -o "${f%.c}.o" || return 1; done &&
	  tcc -o xftproj src/*.o && ./xftproj > out.txt && cmp out.txt /root/xftproj.expected; r=$?; cd ..; return $r; }
step build build
gitw() { cd xftproj && git init -q && git add -A && git -c user.name=xft -c user.email=xft@example \
	 commit -q -m "built in $mode" && echo change >> src/main.c && git add -A &&
	 git -c user.name=xft -c user.email=xft@example commit -q -m second &&
	 git fsck --full --strict && git log --oneline | wc -l | grep -qx 2; r=$?; cd ..; return $r; }
step git gitw
step fio fio --name=xft --filename="$W/fio.dat" --size=8M --bs=64k --rw=write \
	--ioengine=psync --verify=crc32c --do_verify=1 --end_fsync=1
step tree sh -c "cp -a /usr/include/asm-generic $W/inc && ls -lR $W/inc | wc -l > $W/inc.count && rm -r $W/inc"
sync
t1=$(now)
tot=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
if [ $fail = 0 ]; then echo ok > /root/xft-result-$mode; g "OK total=${tot}s"
else echo fail > /root/xft-result-$mode; g "FAIL total=${tot}s"; fi
sync
if [ "$mode" = guest ]; then
	g "poweroff"
	poweroff -f
fi
exit $fail
