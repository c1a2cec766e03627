#!/usr/bin/env bash
# Boots a Debian kernel in a QEMU guest with virtme-ng, runs one command in it
# as root and exits with that command's exit code.
#
#   scripts/vm-run.sh [--kernel VMLINUZ|PACKAGE] [--rw DIR]... [--] COMMAND [ARG]...
#
# The guest sees this machine's root filesystem read-only (the test binaries,
# gcc, python3 and gdb are all there), with a fresh tmpfs on /tmp and on each
# --rw DIR (created here first if missing), so a test run writes nothing back.
# The command starts in the current directory. The environment is not the
# host's: PATH, HOME, TERM, RUST_BACKTRACE, RUST_LOG and every RSYSMON_*
# variable are passed on, plus the names listed in RSYSMON_VM_ENV.
#
#   --kernel   a vmlinuz path, or a Debian package for scripts/vm-kernel.sh;
#              default $RSYSMON_VM_KERNEL, else the newest Debian 12 6.1 kernel
#   RSYSMON_VM_MEMORY   guest memory (default 2G)
#   RSYSMON_VM_CPUS     guest CPUs (default 2)
#   RSYSMON_VM_TIMEOUT  seconds before the guest is killed (default 3600)
#   RSYSMON_VM_ACCEL    kvm, tcg or auto (default): KVM when the CPU has
#                       vmx/svm and /dev/kvm opens, and a guest boots with it
#                       within 120 s; TCG otherwise
#   RSYSMON_VM_QEMU_OPTS  more QEMU options (e.g. `-icount shift=0,sleep=off`
#                       for a virtual clock that counts instructions: see
#                       bench/guest.sh)
#   RSYSMON_VM_VERBOSE=1  show the guest's boot console
#
# The guest kernel boots with every LSM rsysmon needs (bpf among them), as
# Debian's kernel does not enable the BPF LSM by default.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self="$here/$(basename "${BASH_SOURCE[0]}")"
lsm="lockdown,capability,landlock,yama,apparmor,bpf"

# Inside the guest: mount the writable places, then run the command.
if [[ ${1:-} == --in-guest ]]; then
    shift
    # virtme-ng links /lib/modules/$(uname -r) to the kernel's cache under
    # /var/tmp, then mounts a tmpfs on /var/tmp: reach the cache through a
    # plain bind of the root, so modules still load on demand.
    mods=/lib/modules/$(uname -r)
    if [[ -L $mods && ! -e $mods ]]; then
        mkdir -p /run/vm-run/host
        mount --bind / /run/vm-run/host
        ln -sfn "/run/vm-run/host$(readlink "$mods")" "$mods"
    fi
    # The guest's own /tmp hides the host's: a checkout that lives under it
    # (a CI clone, say) is bound back in place first.
    cwd=$PWD
    mkdir -p /run/vm-run/host-tmp
    mount --bind /tmp /run/vm-run/host-tmp
    mount -t tmpfs -o mode=1777 tmpfs /tmp
    if [[ $cwd == /tmp/* ]]; then
        mkdir -p "$cwd"
        mount --bind "/run/vm-run/host-tmp/${cwd#/tmp/}" "$cwd"
        cd "$cwd"
    fi
    while [[ ${1:-} == --rw ]]; do
        mount -t tmpfs -o mode=1777 tmpfs "$2"
        shift 2
    done
    [[ ${1:-} == -- ]] && shift
    exec "$@"
fi

say() { echo "vm-run: $*" >&2; }
usage() {
    echo "usage: $0 [--kernel VMLINUZ|PACKAGE] [--rw DIR]... [--] COMMAND [ARG]..." >&2
    exit 2
}

kernel=${RSYSMON_VM_KERNEL:-}
rw=()
while (($#)); do
    case $1 in
    --kernel) (($# >= 2)) || usage; kernel=$2; shift 2 ;;
    --rw) (($# >= 2)) || usage; rw+=("$2"); shift 2 ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
    esac
done
(($#)) || usage

# virtme-ng: scripts/install-vm-deps.sh's, else one on PATH.
tools=${RSYSMON_VM_TOOLS:-/opt/rsysmon/virtme-ng}
[[ -x $tools/bin/vng ]] && PATH="$tools/bin:$PATH"
if ! command -v vng >/dev/null 2>&1 || ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    say "virtme-ng (vng) or qemu-system-x86_64 is missing: run scripts/install-vm-deps.sh"
    exit 1
fi

if [[ -z $kernel || ! -f $kernel ]]; then
    kernel=$("$here/vm-kernel.sh" ${kernel:+"$kernel"})
fi

guest_args=(--in-guest)
for d in "${rw[@]}"; do
    mkdir -p "$d"
    guest_args+=(--rw "$(cd "$d" && pwd)")
done

# The guest starts with an empty environment: pass on what tests read.
envs=(PATH HOME TERM RUST_BACKTRACE RUST_LOG ${RSYSMON_VM_ENV:-})
envs+=($(compgen -e | grep '^RSYSMON_' | grep -v '^RSYSMON_VM_' || true))
guest_args+=(-- env)
for name in "${envs[@]}"; do
    [[ -n ${!name+x} ]] && guest_args+=("$name=${!name}")
done
guest_args+=("$@")

printf -v guest_cmd '%q ' "$self" "${guest_args[@]}"

vng_args=(
    --run "$kernel"
    --memory "${RSYSMON_VM_MEMORY:-2G}"
    --cpus "${RSYSMON_VM_CPUS:-2}"
    --cwd "$PWD"
    --user root
    --append "lsm=$lsm"
    # Debian's virtiofsd takes other options than virtme-ng passes; 9p
    # works everywhere and avoids waiting for virtiofsd to fail.
    --force-9p
)
[[ ${RSYSMON_VM_VERBOSE:-0} == 1 ]] && vng_args+=(--verbose)
[[ -n ${RSYSMON_VM_QEMU_OPTS:-} ]] && vng_args+=(--qemu-opts "$RSYSMON_VM_QEMU_OPTS")
timeout_s=${RSYSMON_VM_TIMEOUT:-3600}

# KVM when it works; TCG (slower, always there) otherwise. A KVM guest has
# been seen to hang at "Booting from ROM", so KVM must first boot a guest
# that runs `true` within a bounded time.
accel=${RSYSMON_VM_ACCEL:-auto}
if [[ $accel == auto ]]; then
    accel=tcg
    if grep -qwE 'vmx|svm' /proc/cpuinfo && { : <>/dev/kvm; } 2>/dev/null; then
        if timeout -k 10 120 vng "${vng_args[@]}" --exec true </dev/null >/dev/null 2>&1; then
            accel=kvm
        else
            say "KVM did not boot a guest within 120 s; using TCG"
        fi
    fi
fi
[[ $accel == tcg ]] && vng_args+=(--disable-kvm)

say "booting $(basename "$kernel") ($accel, ${RSYSMON_VM_CPUS:-2} CPUs, ${RSYSMON_VM_MEMORY:-2G})"
# QEMU opens /proc/self/fd/1 and 2 anew, which truncates a regular file:
# hand it a pipe, so output redirected to a file keeps what came before.
# The guest's stdout and stderr arrive merged, in order, on stdout.
set +e
timeout -k 30 "$timeout_s" vng "${vng_args[@]}" --exec "$guest_cmd" </dev/null 2>&1 | cat
rc=${PIPESTATUS[0]}
set -e
if ((rc == 124)); then
    say "the guest did not finish within ${timeout_s} s (RSYSMON_VM_TIMEOUT)"
elif ((rc == 255)); then
    say "the guest gave no exit code (did it boot? RSYSMON_VM_VERBOSE=1 shows its console)"
fi
exit "$rc"
