#!/usr/bin/env bash
# Cost of the image-load probes, measured as the issue asks:
#   dlopen_loop     dlopen + dlclose of a tiny library (one image load each)
#   anon_mmap_loop  mmap + munmap of an anonymous page (the probe must return at once)
# in three setups, interleaved (the order rotates every round), PAIRS rounds:
#   baseline   nothing attached
#   floor      one unrelated syscall tracepoint attached (perf counting
#              sys_exit_getppid): the kernel's slow syscall path that any
#              syscall tracepoint costs, whatever the probe does
#   monitored  rsysmon run --json -o FILE
# and prints the medians of ns/op (the workload's own CPU time, which the
# probes are charged to, so waiting for a CPU on a busy machine does not
# count) and the ratios monitored/baseline and monitored/floor. Run as root,
# preferably on a quiet machine:
#   sudo bench/image_load.sh            (PAIRS=5 by default)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
rsysmon=${RSYSMON:-$root/target/release/rsysmon}
pairs=${PAIRS:-5}
work=$(mktemp -d)
helper=

stop_helper() {
	if [[ -n $helper ]]; then
		kill -INT "$helper" 2>/dev/null || true
		wait "$helper" 2>/dev/null || true
		helper=
	fi
}
trap 'stop_helper; rm -rf "$work"' EXIT

[[ -x $rsysmon ]] || { echo "no $rsysmon: run 'cargo build --release' first" >&2; exit 1; }
command -v perf >/dev/null || { echo "perf is needed for the floor setup (apt-get install linux-perf)" >&2; exit 1; }

cc -O2 -o "$work/dlopen_loop" "$root/bench/workloads/dlopen_loop.c" -ldl
cc -O2 -o "$work/anon_mmap_loop" "$root/bench/workloads/anon_mmap_loop.c"
cc -O2 -shared -fPIC -o "$work/libtiny.so" "$root/bench/workloads/tiny_lib.c"

start() {
	case $1 in
	baseline) ;;
	floor)
		perf stat -a -e syscalls:sys_exit_getppid -o /dev/null &
		helper=$!
		sleep 1
		;;
	monitored)
		"$rsysmon" run --json -o "$work/events.jsonl" 2>"$work/rsysmon.err" &
		helper=$!
		until grep -q "probes attached" "$work/rsysmon.err"; do
			kill -0 "$helper" || { cat "$work/rsysmon.err" >&2; exit 1; }
			sleep 0.1
		done
		;;
	esac
}

measure() { "$@" | awk '/^ns_per_op/ { print $2 }'; }

setups=(baseline floor monitored)
for ((round = 0; round < pairs; round++)); do
	for ((k = 0; k < 3; k++)); do
		setup=${setups[(round + k) % 3]}
		start "$setup"
		measure "$work/dlopen_loop" "$work/libtiny.so" 3000 >>"$work/dlopen.$setup"
		measure "$work/anon_mmap_loop" 500000 >>"$work/mmap.$setup"
		stop_helper
	done
done

median() { sort -g "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

printf '%-15s %12s %12s %12s %14s %13s\n' workload "baseline ns" "floor ns" "monitored ns" "mon/baseline" "mon/floor"
for w in dlopen mmap; do
	b=$(median "$work/$w.baseline")
	f=$(median "$work/$w.floor")
	m=$(median "$work/$w.monitored")
	printf '%-15s %12.1f %12.1f %12.1f %13.3fx %12.3fx\n' "$w" "$b" "$f" "$m" \
		"$(echo "$m / $b" | bc -l)" "$(echo "$m / $f" | bc -l)"
done
echo "($pairs interleaved rounds, medians; dlopen: 3000 dlopen+dlclose, mmap: 500000 anonymous mmap+munmap)"
