#!/usr/bin/env bash
# bench/run.sh inside a QEMU guest running Debian 12's 6.1 kernel (booted
# with bpf among the LSMs, scripts/vm-run.sh): rsysmon on BPF trampolines
# and BPF LSM (condition rsysmon) beside the same binary on the tracepoint
# mechanism (rsysmon-tracepoints), interleaved pair by pair with the
# baseline.
#
#   bench/guest.sh [bench/run.sh OPTIONS]
#
# Default options: --workloads syscalls,mmapanon,dlopen,spawn --pairs 5
# --sustained-seconds 0 --conditions rsysmon,rsysmon-tracepoints.
#
# The guest runs under TCG (no nested virtualisation here). TCG's wall
# clock follows the host's load, so its ratios swing with whatever else
# runs. The guest is given one CPU and an instruction-counting clock
# instead (QEMU -icount shift=0: one virtual ns per guest instruction;
# idle time still passes at the host's pace, so timeouts in the guest
# hold): a ratio then compares the work the guest executed, whatever the
# host is doing, for workloads that never wait (syscalls, mmapanon,
# dlopen). spawn waits on the host for every exec (the guest's root is
# shared over 9p), so its ratios keep the host's noise. It counts rsysmon's own reader on
# the same CPU too, so event-heavy workloads (spawn, dlopen) pay for the
# user-space side as well as the probes. RSYSMON_VM_KERNEL picks another
# kernel (scripts/vm-run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x target/release/rsysmon ]] || cargo build --release -q
(($#)) || set -- --workloads syscalls,mmapanon,dlopen,spawn --pairs 5 --sustained-seconds 0 \
    --conditions rsysmon,rsysmon-tracepoints
export RSYSMON_VM_CPUS=${RSYSMON_VM_CPUS:-1}
export RSYSMON_VM_ACCEL=tcg
export RSYSMON_VM_QEMU_OPTS=${RSYSMON_VM_QEMU_OPTS:--icount shift=0}
exec scripts/vm-run.sh -- bench/run.sh --no-install --build-dir /tmp/bench-build \
    --results-dir /tmp/bench-results "$@"
