#!/usr/bin/env bash
# Daemon cost of /metrics and of filter rules: CPU time per 1000 events and
# peak RSS for a burst of thread create/exit events, under
#   off        metrics off, no filter rules (the file sink on, as by default)
#   metrics    [outputs.metrics] on, scraped 10 times a second
#   rules      8 filter rules that match nothing (every event is checked)
#   dropping   a rule dropping the burst's thread events
#   bench/daemon-metrics.sh [THREADS]    (default 50000 threads = 100000 events)
# RSYSMON=path/to/rsysmon measures another build; CONDITIONS="off metrics" a subset.
set -euo pipefail
source "$(dirname "$0")/lib/daemon.sh"
threads=${1:-50000}
build_program burst
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

rule() { printf '[[filter.rules]]\naction = "exclude"\nkind = "%s"\nfield = "%s"\nop = "%s"\nvalue = "%s"\n' "$@"; }

echo "| condition | events | filtered | daemon CPU ms | CPU ms / 1000 events | peak RSS MiB | scrapes |"
echo "|-----------|-------:|---------:|--------------:|---------------------:|-------------:|--------:|"
for condition in ${CONDITIONS:-off metrics rules dropping}; do
    sock="$work/$condition.sock"
    {
        printf '[socket]\npath = "%s"\n[blocking]\nrules_file = "%s/rules.json"\n' "$sock" "$work"
        printf '[outputs.file]\npath = "%s/events.jsonl"\n' "$work"
        case $condition in
        metrics) printf '[outputs.metrics]\nenabled = true\nlisten = "127.0.0.1:%s"\n' "$port" ;;
        rules)
            for i in 1 2 3 4; do
                rule thread-create exe begins-with "/nonexistent$i/"
                rule '*' comm is "no-such-comm-$i"
            done ;;
        dropping) rule thread-create exe is "$work/burst"; rule thread-exit exe is "$work/burst" ;;
        esac
    } > "$work/c.toml"
    rm -f "$work/events.jsonl"*
    $bin daemon --config "$work/c.toml" 2>"$work/daemon.log" &
    daemon=$!
    for _ in $(seq 100); do [[ -S $sock ]] && break; sleep 0.1; done
    scraper=
    if [[ $condition == metrics ]]; then
        python3 - "$port" > "$work/scrapes" <<'PY' &
import sys, time, urllib.request
n = 0
try:
    while True:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read()
        n += 1
        print(n, flush=True)
        time.sleep(0.1)
except Exception:
    pass
PY
        scraper=$!
    fi
    sleep 0.5
    count='import json,sys; s=json.load(sys.stdin); print(sum(v for k,v in s["events"].items() if k!="remote-thread-allowed"), sum(s.get("filtered", {}).values()))'
    read -r before_events before_filtered < <($bin status --json --socket "$sock" | python3 -c "$count")
    before_cpu=$(cpu_ms $daemon)
    "$work/burst" "$threads"
    sleep 1
    after_cpu=$(cpu_ms $daemon)
    read -r after_events after_filtered < <($bin status --json --socket "$sock" | python3 -c "$count")
    scrapes=0
    if [[ -n $scraper ]]; then kill "$scraper" 2>/dev/null || true; scrapes=$(tail -1 "$work/scrapes"); fi
    rss=$(peak_rss_mib $daemon)
    events=$((after_events - before_events)); filtered=$((after_filtered - before_filtered))
    awk -v c="$condition" -v e="$events" -v f="$filtered" -v c0="$before_cpu" -v c1="$after_cpu" -v r="$rss" -v s="$scrapes" \
        'BEGIN { n = e + f; printf "| %s | %d | %d | %.0f | %.2f | %s | %s |\n", c, e, f, c1 - c0, (c1 - c0) * 1000 / (n ? n : 1), r, s }'
    kill -INT $daemon; wait $daemon 2>/dev/null || true
done
