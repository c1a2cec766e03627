#!/bin/bash
# In the QEMU guest (scripts/vm-run.sh --rw target/tmp -- bench/image-hook-cost.sh):
# what the image-load probes for mmap and mprotect cost, from
# kernel.bpf_stats_enabled, with BPF trampolines (fexit vm_mmap_pgoff and
# do_mprotect_pkey) and with them hidden (the VMA store and the mprotect
# syscall exit tracepoints), for the same workloads: 2000 dlopen+dlclose,
# 100000 anonymous mmap+munmap, 100000 anonymous mprotect.
cd "$(dirname "$0")/.."
b=$PWD/target/tmp/image-cost; mkdir -p $b
gcc -O2 -Ibench/workloads -o $b/dlopen bench/workloads/dlopen.c -ldl
gcc -O2 -shared -fPIC -o $b/libbenchplugin.so bench/workloads/plugin.c
gcc -O2 -Ibench/workloads -o $b/mmapanon bench/workloads/mmapanon.c
gcc -O2 -Ibench/workloads -o $b/mprotect bench/workloads/mprotect.c
sysctl -qw kernel.bpf_stats_enabled=1
# name run_time_ns run_cnt of each image-load program for mmap/mprotect.
snapshot() {
    bpftool -j prog show | python3 -c '
import json, re, sys
for p in json.load(sys.stdin):
    if re.fullmatch("fexit_vm_mmap|fexit_mprotect|on_vma_store|on_ma_write|on_mmap_exit|on_mprotect_exit|on_pkey_mprotec.*", p.get("name", "")):
        print(p["name"], p.get("run_time_ns", 0), p.get("run_cnt", 0))'
}
for hide in "" bpf_trampoline; do
    echo "== RSYSMON_TEST_HIDE_KERNEL_FEATURES=$hide"
    RSYSMON_TEST_HIDE_KERNEL_FEATURES=$hide target/release/rsysmon run --json >/dev/null 2>$b/err & pid=$!
    for _ in $(seq 120); do grep -q "probes attached" $b/err && break; sleep 1; done
    grep "capabilities:" $b/err | cut -c1-200
    for w in "dlopen 2000 $b/libbenchplugin.so" "mmapanon 100000" "mprotect 100000"; do
        before=$(snapshot)
        $b/$w >/dev/null
        after=$(snapshot)
        echo "-- $w"
        # Per program: runs and ns during the workload, and ns per run.
        join <(echo "$before" | sort) <(echo "$after" | sort) |
            awk '{t=$4-$2; n=$5-$3; if (n>0) printf "   %-18s runs %8d  total %12d ns  %8.0f ns/run\n", $1, n, t, t/n}'
    done
    kill $pid; wait $pid 2>/dev/null
done
