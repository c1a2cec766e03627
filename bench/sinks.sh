#!/usr/bin/env bash
# The daemon's sinks under a sustained load: paced thread create/exit at
# RATE events/s for SECONDS, with no sink, the file sink, and the file and
# NATS JetStream sinks (a real nats-server -js on loopback). For each:
# events made, losses per stage, what each sink delivered, daemon CPU per
# 1000 events and peak RSS.
#   bench/sinks.sh [RATE] [SECONDS]     (default 50000 events/s for 10 s)
# RSYSMON=path/to/rsysmon measures another build.
set -euo pipefail
source "$(dirname "$0")/lib/daemon.sh"
rate=${1:-50000}
seconds=${2:-10}
command -v nats-server >/dev/null || [[ -x /usr/sbin/nats-server ]] || scripts/install-deps.sh
build_program paced_threads

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

echo "| sinks | events | lost (stage=n) | delivered (sink=n) | daemon CPU ms / 1000 events | peak RSS MiB |"
echo "|-------|-------:|----------------|--------------------|----------------------------:|-------------:|"
for sinks in none file file+nats; do
    sock="$work/$sinks.sock"
    {
        printf '[socket]\npath = "%s"\n[blocking]\nrules_file = "%s/rules-%s.json"\n' "$sock" "$work" "$sinks"
        if [[ $sinks == none ]]; then
            printf '[outputs.file]\nenabled = false\n'
        else
            printf '[outputs.file]\npath = "%s/events-%s.jsonl"\n' "$work" "$sinks"
        fi
        if [[ $sinks == *nats* ]]; then
            printf '[outputs.nats]\nenabled = true\nurl = "nats://127.0.0.1:%s"\n' "$port"
        fi
    } > "$work/c.toml"
    nats=
    if [[ $sinks == *nats* ]]; then
        /usr/sbin/nats-server -js -a 127.0.0.1 -p "$port" -sd "$work/nats" >/dev/null 2>&1 &
        nats=$!
        sleep 1
    fi
    $bin daemon --config "$work/c.toml" 2>"$work/daemon-$sinks.log" &
    daemon=$!
    for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
    sleep 1
    before=$($bin status --json --socket "$sock")
    before_cpu=$(cpu_ms $daemon)
    # Two workers, each event pair one thread: RATE/2 threads a second.
    "$work/paced_threads" $((rate / 2)) "$seconds" 2 >/dev/null
    # Let the sinks drain before reading the counters.
    for _ in $(seq 100); do
        queued=$($bin status --json --socket "$sock" | python3 -c 'import json,sys; print(sum(s["queued"] for s in json.load(sys.stdin)["sinks"]))')
        [[ $queued == 0 ]] && break
        sleep 0.2
    done
    after_cpu=$(cpu_ms $daemon)
    after=$($bin status --json --socket "$sock")
    python3 - "$before" "$after" "$before_cpu" "$after_cpu" "$sinks" "$daemon" <<'PY'
import json, sys
b, a = json.loads(sys.argv[1]), json.loads(sys.argv[2])
c0, c1 = float(sys.argv[3]), float(sys.argv[4])
count = lambda s: sum(v for k, v in s["events"].items() if k != "remote-thread-allowed")
events = count(a) - count(b)
lost = " ".join(f"{k}={a['lost'][k] - b['lost'].get(k, 0)}" for k in sorted(a["lost"]))
before_sinks = {s["name"]: s["delivered"] for s in b["sinks"]}
delivered = " ".join(f"{s['name']}={s['delivered'] - before_sinks.get(s['name'], 0)}" for s in a["sinks"]) or "-"
rss = next(int(l.split()[1]) for l in open(f"/proc/{sys.argv[6]}/status") if l.startswith("VmHWM")) / 1024
print(f"| {sys.argv[5]} | {events} | {lost} | {delivered} | {(c1 - c0) * 1000 / max(events, 1):.2f} | {rss:.1f} |")
PY
    kill -INT $daemon; wait $daemon 2>/dev/null || true
    [[ -n $nats ]] && { kill $nats; wait $nats 2>/dev/null || true; }
done
