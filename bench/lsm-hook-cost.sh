#!/bin/bash
# In the QEMU guest (scripts/vm-run.sh --rw target/tmp -- bench/lsm-hook-cost.sh):
# what each LSM hook costs per call (kernel.bpf_stats_enabled) while 2000
# dlopen+dlclose and 100 spawns run under `rsysmon run --block`.
cd "$(dirname "$0")/.."
b=$PWD/target/tmp/cost; mkdir -p $b
gcc -O2 -Ibench/workloads -o $b/dlopen bench/workloads/dlopen.c -ldl
gcc -O2 -shared -fPIC -o $b/libbenchplugin.so bench/workloads/plugin.c
gcc -O2 -Ibench/workloads -o $b/spawn bench/workloads/spawn.c
cp /bin/true $b/blocked
sysctl -qw kernel.bpf_stats_enabled=1
target/release/rsysmon run --json --block $b/blocked >/dev/null 2>$b/err & pid=$!
sleep 25; cat $b/err | cut -c1-200
$b/dlopen 2000 $b/libbenchplugin.so; $b/spawn 100
bpftool prog show | grep -A1 -E "lsm_|name on_mmap_exit|name on_mprotect_exit|name on_exec_images" | grep -oE "name [a-z_]+|run_time_ns [0-9]+|run_cnt [0-9]+" | paste - - - 
kill $pid; wait
cat $b/err | cut -c1-400
