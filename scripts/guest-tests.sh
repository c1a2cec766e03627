#!/usr/bin/env bash
# Runs prebuilt test binaries inside a guest (scripts/vm-run.sh); nothing is
# built here. scripts/test-kernels.sh writes the manifest on the host:
#   PACKAGE/TARGET EXECUTABLE PACKAGE-DIR     one test target a line
#   PACKAGE/TARGET -                          a target this tree lacks
#
#   scripts/guest-tests.sh MANIFEST [SKIP-LIST]
#
# First the guest is made a fresh machine: virtme-ng's init mounts tracefs
# and debugfs, a new Debian system has neither until something mounts them,
# so both are unmounted (RSYSMON_VM_KEEP_TRACEFS=1 keeps them). Each test
# named in the skip list (default scripts/guest-skip.list) is skipped and
# printed with its reason. The last line counts every test:
#   guest: N passed, N failed, N skipped
# and the exit code is 0 only if nothing failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
manifest=${1:?usage: $0 MANIFEST [SKIP-LIST]}
skiplist=${2:-$here/guest-skip.list}
target_timeout=${RSYSMON_GUEST_TARGET_TIMEOUT:-900}
for f in "$manifest" "$skiplist"; do
    [[ -r $f ]] || { echo "guest: cannot read $f" >&2; exit 1; }
done

if [[ ${RSYSMON_VM_KEEP_TRACEFS:-0} != 1 ]]; then
    # Deepest first: tracefs may sit on debugfs's tracing directory.
    for m in $(findmnt -rn -t tracefs,debugfs -o TARGET | sort -r); do
        umount "$m" || { echo "guest: cannot unmount $m" >&2; exit 1; }
    done
fi
tracefs=$(findmnt -rn -t tracefs -o TARGET | tr '\n' ' ')
echo "guest: kernel $(uname -r); LSMs $(cat /sys/kernel/security/lsm 2>/dev/null || echo '?'); tracefs ${tracefs:-not mounted}"

# vm-run.sh boots with bpf among the LSMs: the blocking tests must find
# BPF LSM in use there, and fail on a silent fallback.
export RSYSMON_EXPECT_BPF_LSM=${RSYSMON_EXPECT_BPF_LSM:-1}
# Its kernel runs fexit programs too: image loads by mmap and mprotect must
# use them (no syscall tracepoint), and so must takeovers: no silent fallback.
export RSYSMON_EXPECT_BPF_TRAMPOLINES=${RSYSMON_EXPECT_BPF_TRAMPOLINES:-1}

passed=0 failed=0 skipped=0
failures=()
stage_start=$SECONDS
out=$(mktemp)
while read -r label exe dir; do
    [[ -z $label || $label == \#* ]] && continue
    if [[ $exe == - ]]; then
        echo "guest: $label: not in this tree, not run"
        continue
    fi
    skip_args=()
    while read -r slabel sname sreason; do
        [[ $slabel == "$label" ]] || continue
        skip_args+=(--skip "$sname")
        skipped=$((skipped + 1))
        echo "guest: skip $label $sname: $sreason"
    done < <(grep -v '^\s*\(#\|$\)' "$skiplist")

    echo "guest: $label"
    start=$SECONDS
    (cd "$dir" && timeout -k 10 "$target_timeout" "$exe" --exact "${skip_args[@]}") 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    secs=$((SECONDS - start))

    # libtest's summary: "test result: ok. 3 passed; 0 failed; 0 ignored; ..."
    result=$(grep -E '^test result: ' "$out" | tail -n1)
    p=$(sed -nE 's/.* ([0-9]+) passed;.*/\1/p' <<<"$result")
    f=$(sed -nE 's/.* ([0-9]+) failed;.*/\1/p' <<<"$result")
    passed=$((passed + ${p:-0}))
    if [[ -z $result ]]; then
        # Killed, crashed or timed out before its summary: count it as one failure.
        failed=$((failed + 1))
        failures+=("$label (exit $rc after ${secs}s, no summary)")
    else
        failed=$((failed + ${f:-0}))
        while read -r name; do
            failures+=("$label $name")
        done < <(sed -nE 's/^test (.+) \.\.\. FAILED$/\1/p' "$out")
        if ((rc != 0 && ${f:-0} == 0)); then
            failed=$((failed + 1))
            failures+=("$label (exit $rc)")
        fi
    fi
    echo "guest: $label: ${p:-0} passed, ${f:-?} failed in ${secs}s"
done <"$manifest"
rm -f "$out"

echo "guest: $(uname -r): tests took $((SECONDS - stage_start))s"
for f in "${failures[@]}"; do
    echo "guest: FAILED $f"
done
echo "guest: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
