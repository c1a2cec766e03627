# Shared setup of the daemon benchmarks (bench/daemon-*.sh, bench/sinks.sh),
# sourced after `set -euo pipefail`:
#   bin        the rsysmon under test (RSYSMON=path, else the release build,
#              built when missing)
#   work       a private temp dir, removed with every background job at exit
#   build_program NAME   compile crates/rsysmon/tests/programs/NAME.c to $work/NAME
#   cpu_ms PID           user+system CPU time of PID so far, in ms
#   peak_rss_mib PID     the peak resident set of PID, in MiB
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bin=${RSYSMON:-target/release/rsysmon}
[[ -x $bin ]] || cargo build --release -q
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

build_program() { cc -O2 -pthread -o "$work/$1" "crates/rsysmon/tests/programs/$1.c"; }

ticks=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$ticks" '{print ($14 + $15) * 1000 / t}' "/proc/$1/stat"; }
peak_rss_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
