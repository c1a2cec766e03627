#!/usr/bin/env bash
# Daemon cost with 1, 10 and 100 `rsysmon watch` clients attached: CPU time
# per 1000 events and peak RSS, for a burst of thread create/exit events.
#   bench/daemon-clients.sh [THREADS]    (default 50000 threads = 100000 events)
# RSYSMON=path/to/rsysmon measures another build; CLIENTS="1 10" other counts.
set -euo pipefail
source "$(dirname "$0")/lib/daemon.sh"
threads=${1:-50000}
build_program burst


echo "| clients | events | daemon CPU ms | CPU ms / 1000 events | peak RSS MiB | client losses |"
echo "|--------:|-------:|--------------:|---------------------:|-------------:|--------------:|"
for clients in ${CLIENTS:-1 10 100}; do
    sock="$work/s$clients.sock"
    printf '[socket]\npath = "%s"\n' "$sock" > "$work/c.toml"
    $bin daemon --config "$work/c.toml" 2>"$work/daemon.log" &
    daemon=$!
    for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
    pids=()
    for _ in $(seq "$clients"); do
        $bin watch --json --socket "$sock" >/dev/null &
        pids+=($!)
    done
    sleep 0.5
    before_events=$($bin status --json --socket "$sock" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(sum(v for k,v in s["events"].items() if k!="remote-thread-allowed"))')
    before_cpu=$(cpu_ms $daemon)
    "$work/burst" "$threads"
    sleep 1
    after_cpu=$(cpu_ms $daemon)
    status=$($bin status --json --socket "$sock")
    python3 - "$status" "$before_events" "$before_cpu" "$after_cpu" "$clients" "$daemon" <<'PY'
import json, sys
s = json.loads(sys.argv[1]); before = int(sys.argv[2]); c0, c1 = float(sys.argv[3]), float(sys.argv[4])
events = sum(v for k, v in s["events"].items() if k != "remote-thread-allowed") - before
rss = next(int(l.split()[1]) for l in open(f"/proc/{sys.argv[6]}/status") if l.startswith("VmHWM")) / 1024
print(f"| {sys.argv[5]} | {events} | {c1 - c0:.0f} | {(c1 - c0) * 1000 / max(events, 1):.2f} | {rss:.1f} | {s['lost']['client']} |")
PY
    kill "${pids[@]}" 2>/dev/null || true
    kill -INT $daemon; wait $daemon 2>/dev/null || true
done
