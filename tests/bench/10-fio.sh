# tests/bench/10-fio.sh (sourced by tests/bench/run): fio sequential
# 1 MiB write and read; 4k random read at queue depth 1 through the page
# cache ("qd1": the first open after the file was written, so every
# target starts with an empty guest cache and fills it; "qd1-reopen": the
# same job again, where only a target that keeps its cache across opens
# of an unchanged file starts warm),
# at queue depth 1 with O_DIRECT ("qd1-direct": one round trip per read),
# and at queue depth 16.

fio_field()
{
	# $1 terse line, $2 field; ERR if fio failed or reported an error
	local v e
	e=$(printf '%s' "$1" | cut -d';' -f5)
	v=$(printf '%s' "$1" | cut -d';' -f"$2")
	if [ -z "$1" ] || [ "$e" != 0 ] || [ -z "$v" ]; then
		echo ERR
	else
		echo "$v"
	fi
}

kib_to_mib() { awk -v k="$1" 'BEGIN { if (k ~ /^[0-9.]+$/) printf "%.1f", k / 1024; else print k }'; }

fio_seq()
{
	local d=$1 w r
	w=$(fio_field "$(bench_fio "$d" --rw=write --bs=1M --size="$BENCH_SIZE" \
	    --ioengine=psync --direct=0 --end_fsync=1)" 48)
	drop_caches
	r=$(fio_field "$(bench_fio "$d" --rw=read --bs=1M --size="$BENCH_SIZE" \
	    --ioengine=psync --direct=0)" 7)
	echo "write $(kib_to_mib "$w") read $(kib_to_mib "$r")"
}

fio_rand()
{
	local d=$1 q1 qd q16
	# lay the file out first so that it is not part of the timed jobs
	bench_fio "$d" --rw=write --bs=1M --size="$BENCH_SIZE" \
	    --ioengine=psync --end_fsync=1 >/dev/null
	drop_caches
	q1=$(fio_field "$(bench_fio "$d" --rw=randread --bs=4k \
	    --size="$BENCH_SIZE" --ioengine=psync --direct=0 \
	    --runtime="$BENCH_RUNTIME" --time_based)" 8)
	# the same job again on the unchanged file: a target that keeps
	# its page cache across opens (xenfs: close-to-open, the file is
	# unchanged; passthrough_ll cache=auto never does) reads from it
	q1r=$(fio_field "$(bench_fio "$d" --rw=randread --bs=4k \
	    --size="$BENCH_SIZE" --ioengine=psync --direct=0 \
	    --runtime="$BENCH_RUNTIME" --time_based)" 8)
	# O_DIRECT: no guest-side page cache, so every read is a round trip
	# through the transport (and, natively, the disk)
	drop_caches
	qd=$(fio_field "$(bench_fio "$d" --rw=randread --bs=4k \
	    --size="$BENCH_SIZE" --ioengine=psync --direct=1 \
	    --runtime="$BENCH_RUNTIME" --time_based)" 8)
	drop_caches
	# shellcheck disable=SC2086
	q16=$(fio_field "$(bench_fio "$d" --rw=randread --bs=4k \
	    --size="$BENCH_SIZE" $FIO_QD16 --iodepth=16 \
	    --runtime="$BENCH_RUNTIME" --time_based)" 8)
	echo "qd1 $q1 qd1-reopen $q1r qd1-direct $qd qd16 $q16"
}

# QD16 engine: libaio with O_DIRECT where every target takes it (the
# FUSE ones must accept O_DIRECT opens), else POSIX AIO through the cache.
fio_pick_qd16()
{
	local t d line
	FIO_QD16="--ioengine=libaio --direct=1"
	for t in "${BENCH_TARGETS[@]}"; do
		[ -n "${BENCH_OK[$t]:-}" ] || continue
		d=$(bench_dir "$t")
		line=$(bench_fio "$d" --rw=randread --bs=4k --size=4M \
		    --ioengine=libaio --direct=1 --iodepth=16 --runtime=1 \
		    --time_based)
		rm -f "$d/fio.dat"
		if [ "$(fio_field "$line" 8)" = ERR ]; then
			FIO_QD16="--ioengine=posixaio --direct=0"
			notes+=("randread qd16: $t refused libaio+O_DIRECT; all targets use posixaio (cached)")
			return
		fi
	done
	notes+=("randread qd16: libaio, direct=1 (O_DIRECT: includes the disk)")
}

fio_pick_qd16
notes+=("direct reads: xenfsd opens host files without O_DIRECT (backend/fs_data.c), so xenfs's qd1-direct/qd16 reads come from the host page cache while native and passthrough_ll (which passes O_DIRECT on) reach the disk")
bench_add "seq 1M" "MiB/s" fio_seq
bench_add "randread 4k" "IOPS" fio_rand
