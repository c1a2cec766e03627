#!/bin/bash
# In the QEMU guest (scripts/vm-run.sh --rw target/tmp -- bench/injection-hook-cost.sh):
# 1. what each takeover probe costs per call (kernel.bpf_stats_enabled),
#    fexit (the default where trampolines work) against the syscall exit
#    tracepoints (trampolines hidden), under bench/workloads/takeover.c;
# 2. what an unrelated syscall loop (getppid) pays: no monitor; rsysmon
#    --no-syscall-tracepoints with injection on by fexit; the same with
#    trampolines hidden (injection off: what fexit adds is the difference);
#    and rsysmon with trampolines hidden (injection, and mprotect, on
#    syscall exit tracepoints); interleaved rounds, order turning.
# ROUNDS=0 skips part 2, COST=0 part 1.
cd "$(dirname "$0")/.."
b=$PWD/target/tmp/injcost; mkdir -p $b
gcc -O2 -Ibench/workloads -o $b/takeover bench/workloads/takeover.c
gcc -O2 -Ibench/workloads -o $b/syscalls bench/workloads/syscalls.c
n=${TAKEOVERS:-2000}
calls=${GETPPID_CALLS:-1000000}
rounds=${ROUNDS:-6}
programs='on_arch_ptrace|on_compat_arch_|on_ptrace_attach|on_vm_writev_x64|on_vm_writev_ia32|on_mem_open|on_ptrace_exit|on_vm_writev_exit|on_openat_exit|on_openat2_exit|on_open_exit|on_creat_exit'

start_monitor() { # ENV-ASSIGNMENT-OR-EMPTY ARGS...
    local envs=$1; shift
    env $envs target/release/rsysmon run --json "$@" >/dev/null 2>$b/err & pid=$!
    for _ in $(seq 600); do grep -q 'probes attached' $b/err && return; sleep 0.2; done
    echo "monitor did not start"; cat $b/err; exit 1
}
stop_monitor() { kill -INT $pid; wait $pid; }
# One line per takeover program: name, runs, ns per run.
stats() {
    bpftool prog show | grep -E "name ($programs) " | awk '{
        name = ""; t = 0; c = 0
        for (i = 1; i < NF; i++) {
            if ($i == "name") name = $(i + 1)
            if ($i == "run_time_ns") t = $(i + 1)
            if ($i == "run_cnt") c = $(i + 1)
        }
        printf "%-20s runs %7d  ns/run %s\n", name, c, c ? int(t / c) : "-"
    }'
}

sysctl -qw kernel.bpf_stats_enabled=1
[[ ${COST:-1} == 0 ]] || for mode in fexit tracepoints; do
    envs=""; [[ $mode == tracepoints ]] && envs=RSYSMON_TEST_HIDE_KERNEL_FEATURES=bpf_trampoline
    start_monitor "$envs"
    echo "== $mode: $(grep -o 'injection [a-z]* ([^)]*' $b/err | head -1)"
    $b/takeover $n
    stats
    stop_monitor
done

echo "== getppid x $calls, ns per call (the order of the four turns each round)"
per_call() { $b/syscalls $calls | grep -oE '"elapsed_ns":[0-9]+' | awk -F: -v n=$calls '{print int($2 / n)}'; }
run_none() { none=$(per_call); }
run_fexit() {
    start_monitor "" --no-syscall-tracepoints
    local before after
    before=$(stats | awk '{s+=$3} END {print s+0}')
    fexit=$(per_call)
    after=$(stats | awk '{s+=$3} END {print s+0}')
    ran=$((after - before))
    syscall_tps=$(grep 'watching, ' $b/err | grep -o 'tracepoint/syscalls/' | wc -l)
    stop_monitor
}
run_noinj() {
    start_monitor RSYSMON_TEST_HIDE_KERNEL_FEATURES=bpf_trampoline --no-syscall-tracepoints
    noinj=$(per_call)
    stop_monitor
}
run_tp() {
    start_monitor RSYSMON_TEST_HIDE_KERNEL_FEATURES=bpf_trampoline
    tp=$(per_call)
    stop_monitor
}
orders=("run_none run_fexit run_noinj run_tp" "run_fexit run_noinj run_tp run_none"
    "run_noinj run_tp run_none run_fexit" "run_tp run_none run_fexit run_noinj")
for r in $(seq $rounds); do
    for step in ${orders[$((r % 4))]}; do $step; done
    echo "round $r: none $none, fexit injection $fexit (syscall tracepoints attached: $syscall_tps; takeover programs ran $ran times), no injection $noinj, tracepoints $tp"
done
sysctl -qw kernel.bpf_stats_enabled=0
