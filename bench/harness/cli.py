"""Command-line options of bench/run.sh."""

from __future__ import annotations

import argparse
from pathlib import Path

from .workloads import WORKLOADS

REPO = Path(__file__).resolve().parents[2]
CONDITIONS = ("rsysmon", "rsysmon-tracepoints", "floor", "floor-exit", "floor-fire", "bpftrace")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench/run.sh",
        description="Measure what rsysmon costs: workloads run alternately with nothing attached and under "
                    "each monitor; then sustained-rate tests. Needs root. See BENCHMARKS.md.")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: small counts, 3 pairs, 3 s sustained steps (about two minutes)")
    p.add_argument("--pairs", type=int, metavar="N", help="baseline/monitored pairs per workload (default 5; 3 with --quick)")
    p.add_argument("--workloads", metavar="LIST", default=",".join(w.name for w in WORKLOADS),
                   help="comma-separated subset of: %(default)s")
    p.add_argument("--conditions", metavar="LIST", default=",".join(CONDITIONS),
                   help="monitored conditions besides the baseline, comma-separated subset of: %(default)s")
    p.add_argument("--sustained-seconds", type=float, metavar="S",
                   help="length of each sustained-rate step (default 60; 3 with --quick); 0 skips the "
                        "sustained tests")
    p.add_argument("--rsysmon", type=Path, metavar="PATH", default=REPO / "target/release/rsysmon",
                   help="the rsysmon binary (default: %(default)s)")
    p.add_argument("--rsysmon-before", type=Path, metavar="PATH",
                   help="also measure this other rsysmon build, interleaved with the rest, as the condition "
                        "rsysmon-before: a before/after comparison in one run")
    p.add_argument("--results-dir", type=Path, metavar="DIR", default=REPO / "bench/results",
                   help="where the Markdown and JSON results go (default: %(default)s)")
    p.add_argument("--build-dir", type=Path, metavar="DIR", default=REPO / "bench/build",
                   help="where the workloads are built (default: %(default)s)")
    p.add_argument("--no-install", action="store_true",
                   help="do not apt-get install bpftrace when it is missing; skip its conditions instead")
    args = p.parse_args(argv)
    if args.pairs is None:
        args.pairs = 3 if args.quick else 5
    if args.sustained_seconds is None:
        args.sustained_seconds = 3.0 if args.quick else 60.0
    if args.pairs < 1:
        p.error("--pairs must be at least 1")
    args.workloads = [w for w in args.workloads.split(",") if w]
    args.conditions = [c for c in args.conditions.split(",") if c]
    unknown = set(args.conditions) - set(CONDITIONS)
    if unknown:
        p.error(f"unknown condition(s) {', '.join(sorted(unknown))}; choose from {', '.join(CONDITIONS)}")
    return args
