#!/usr/bin/env bash
# The kernel matrix: runs the tests of scripts/guest-tests.list under each
# given Debian kernel, in a QEMU guest (scripts/vm-run.sh).
#
#   scripts/test-kernels.sh [KERNEL]...
#
# KERNEL is a Debian kernel package (linux-image-6.1.0-57-cloud-amd64, or
# 6.1.0-57-rt-amd64 without the prefix) or a vmlinuz path; with none, the
# newest linux-image-6.1.0-*-amd64 (Debian 12's stock kernel). The test
# binaries are built here, once, with the release profile; the guest only
# runs them. Logs go to target/guest-tests/<kernel>.log. The last line counts
# the tests of every kernel together:
#   matrix: N passed, N failed, N skipped
# RSYSMON_GUEST_TESTS and RSYSMON_GUEST_SKIP name other list files (same
# format) to run fewer or other tests.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here/.."

# The guest runs root integration tests only.
if [[ ${RSYSMON_SKIP_ROOT_TESTS:-} == 1 ]]; then
    echo "test-kernels: RSYSMON_SKIP_ROOT_TESTS=1: not running the tests under other kernels"
    exit 0
fi
cargo=${CARGO:-cargo}
kernels=("$@")
((${#kernels[@]})) || kernels=("")

out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Build every test target and keep the executables of the listed ones.
echo "test-kernels: building the test binaries"
"$cargo" test --release --workspace --no-run --message-format=json-render-diagnostics >"$out"
target_dir=$("$cargo" metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
logs="$target_dir/guest-tests"
mkdir -p "$logs"
manifest="$logs/manifest"
tests_list=${RSYSMON_GUEST_TESTS:-$here/guest-tests.list}
skip_list=${RSYSMON_GUEST_SKIP:-$here/guest-skip.list}
python3 - "$out" "$tests_list" >"$manifest" <<'EOF'
import json, os, re, sys

artifacts, listfile = sys.argv[1], sys.argv[2]
found = {}
for line in open(artifacts):
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
        continue
    if not msg.get("profile", {}).get("test"):
        continue
    kind = msg["target"]["kind"]
    pid = msg["package_id"]
    # "path+file:///…/crates/NAME#0.1.0" or "NAME 0.1.0 (path+file:///…)"
    m = re.match(r"^(\S+) \d", pid)
    if m:
        package = m.group(1)
    else:
        package = pid.split("#")[0].rstrip("/").rsplit("/", 1)[-1]
        tail = pid.split("#")[-1]
        if "@" in tail:
            package = tail.split("@")[0]
    target = "lib" if "lib" in kind else msg["target"]["name"]
    found[f"{package}/{target}"] = (msg["executable"], os.path.dirname(msg["manifest_path"]))

for line in open(listfile):
    words = line.split("#")[0].split()
    if not words:
        continue
    label = f"{words[0]}/{words[1]}"
    if label in found:
        exe, pkg_dir = found[label]
        print(label, exe, pkg_dir)
    else:
        print(label, "-")
EOF

# The guest sees this machine's files, but not its /tmp.
cp "$skip_list" "$logs/skip.list"

# Tests write under CARGO_TARGET_TMPDIR (target/tmp): writable in the guest.
tmpdir="$target_dir/tmp"
total_p=0 total_f=0 total_s=0
summary=()
for k in "${kernels[@]}"; do
    # A package name or a path to its vmlinuz, fetched once here.
    [[ -f $k ]] || k=$("$here/vm-kernel.sh" ${k:+"$k"})
    name=${k##*/}
    [[ $k == */linux-image-*/boot/vmlinuz-* ]] && name=$(basename "$(dirname "$(dirname "$k")")")
    log="$logs/${name}.log"
    echo "test-kernels: $name (log: $log)"
    start=$SECONDS
    set +e
    "$here/vm-run.sh" --kernel "$k" --rw "$tmpdir" -- \
        "$here/guest-tests.sh" "$manifest" "$logs/skip.list" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    set -e
    secs=$((SECONDS - start))
    last=$(grep -E '^guest: [0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -n1)
    if [[ -z $last ]]; then
        # The guest did not boot, or died before its summary.
        total_f=$((total_f + 1))
        summary+=("$name: no result (exit $rc) in ${secs}s")
        continue
    fi
    read -r p f s <<<"$(sed -E 's/guest: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped/\1 \2 \3/' <<<"$last")"
    ((rc == 0 || f > 0)) || f=1
    total_p=$((total_p + p)) total_f=$((total_f + f)) total_s=$((total_s + s))
    summary+=("$name: $p passed, $f failed, $s skipped in ${secs}s (boot included)")
done

for line in "${summary[@]}"; do
    echo "test-kernels: $line"
done
echo "matrix: $total_p passed, $total_f failed, $total_s skipped"
((total_f == 0))
