"""bench/run.sh: build the workloads, run them interleaved under each
condition, run the sustained tests, and write the report."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import bpftrace, build, cli, measure, procstat, report, rsysmon, stats, sustained, workloads
from .monitor import Baseline


def log(line: str) -> None:
    print(f"bench: {line}", file=sys.stderr, flush=True)


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(cli.REPO), *args], capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") else "")


def main() -> int:
    args = cli.parse()
    if sys.version_info < (3, 11):
        raise SystemExit("bench: needs Python 3.11 or newer")
    if os.geteuid() != 0:
        raise SystemExit("bench: needs root to load probes: run it with sudo (sudo make bench)")
    if not args.rsysmon.is_file():
        raise SystemExit(f"bench: no rsysmon binary at {args.rsysmon}: run `cargo build --release` "
                         "or `make bench`, or pass --rsysmon PATH")
    chosen = workloads.by_names(args.workloads)
    binaries = build.build_all(args.build_dir)
    log(f"workloads built in {args.build_dir}")

    with tempfile.TemporaryDirectory(prefix="rsysmon-bench-") as tmp:
        workdir = Path(tmp)
        blocked = workdir / "blocked" / "true"
        blocked.parent.mkdir()
        shutil.copy2("/bin/true", blocked)

        features = rsysmon.detect(args.rsysmon, blocked)
        monitor = rsysmon.Rsysmon(args.rsysmon, features)
        block_check = rsysmon.check_blocking(monitor, workdir)
        log(f"rsysmon {monitor.attached}")
        log(f"optional features on: {', '.join(features.on) or 'none'}; "
            f"not offered by this binary: {', '.join(features.off) or 'none'}; {block_check}")

        conditions: list = [Baseline()]
        skipped = {}
        for name in args.conditions:
            if name == "rsysmon":
                if args.rsysmon_before:
                    # The same flags: the harness detected them on the build under test.
                    before = rsysmon.Rsysmon(args.rsysmon_before, features)
                    before.name = "rsysmon-before"
                    conditions.append(before)
                conditions.append(monitor)
                continue
            if name == "rsysmon-tracepoints":
                conditions.append(rsysmon.on_tracepoints(args.rsysmon, features))
                continue
            why = bpftrace.ensure_available(install=not args.no_install)
            if why:
                skipped[name] = why
                log(f"skipping condition {name}: {why}")
            else:
                conditions.append({"floor": bpftrace.floor, "floor-exit": bpftrace.floor_exit,
                                   "floor-fire": bpftrace.floor_fire,
                                   "bpftrace": bpftrace.peer}[name]())

        load_before = procstat.load_average()
        started = time.monotonic()
        meta = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "commit": commit(),
            "mode": "quick" if args.quick else "full",
            "pairs": args.pairs,
            "machine": f"{platform.node()}, Linux {platform.release()}, {os.cpu_count()} CPUs",
            "load average before (1/5/15 min)": load_before,
            "rsysmon": monitor.attached,
            "rsysmon flags": monitor.description,
            "optional features on": ", ".join(features.on) or "none",
            "optional features not offered": ", ".join(features.off) or "none",
            "event kinds": ", ".join(features.kinds),
            "blocking check": block_check,
            "conditions": "; ".join(f"{c.name}: {c.description}" for c in conditions),
            "skipped conditions": "; ".join(f"{k}: {v}" for k, v in skipped.items()) or "none",
        }

        samples = measure.run_pairs(chosen, conditions, args.pairs, args.quick, binaries, workdir, log)
        rows = stats.summarize(chosen, samples)
        forced = {c.name: c.forced_stops for c in conditions if getattr(c, "forced_stops", 0)}
        if forced:
            meta["runs killed after ignoring SIGINT"] = ", ".join(f"{k}: {v}" for k, v in forced.items())

        exec_step, steps, stop_reason = None, [], "not run"
        if args.sustained_seconds > 0 and "rsysmon" in args.conditions:
            exec_step = sustained.exec_cpu(binaries["rate"], monitor, args.sustained_seconds / 2, workdir)
            log(f"rsysmon CPU at {sustained.EXEC_RATE} exec/s: {exec_step.monitor_cpu_percent:.2f} %")
            steps, stop_reason = sustained.step_rates(binaries["rate"], monitor, args.sustained_seconds, workdir, log)

    meta["load average after (1/5/15 min)"] = procstat.load_average()
    meta["duration"] = f"{time.monotonic() - started:.0f} s"
    text = report.markdown(meta, rows, exec_step, steps, stop_reason)
    stamp = time.strftime("%Y%m%d-%H%M%S") + ("-quick" if args.quick else "")
    md, js = report.write(args.results_dir, stamp, text, meta, rows, samples, exec_step, steps, stop_reason)
    print(text)
    log(f"results written to {md} and {js}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        sys.exit(f"bench: {e}")
