"""Interleaved runs: for each workload, pair after pair, one run under each
condition in turn (baseline first), so slow drifts in the machine's load hit
every condition alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import completeness, workloads
from .workloads import PLUGIN_NAME, Workload


@dataclass
class Sample:
    workload: str
    condition: str
    pair: int
    count: int
    elapsed_ns: int
    # From the monitor; None under the baseline.
    cpu_ns: int | None = None
    peak_rss_kib: int | None = None
    events: int | None = None
    lost: int | None = None
    # Events of this run seen by the monitor, and how many it generated;
    # None when the monitor cannot report any kind the workload generates.
    seen: int | None = None
    expected: int | None = None


def workload_args(workload: Workload, count: int, binaries: dict[str, Path]) -> list[str]:
    args = [str(count)]
    if workload.name == "dlopen":
        args.append(str(binaries[PLUGIN_NAME]))
    return args


def run_once(workload: Workload, condition, count: int, binaries: dict[str, Path], workdir: Path,
             pair: int) -> Sample:
    condition.start(workdir)
    try:
        timing = workloads.run(binaries[workload.name], workload_args(workload, count, binaries))
    finally:
        report = condition.stop(parse=True)
    sample = Sample(workload.name, condition.name, pair, timing.count, timing.elapsed_ns)
    if report is None:
        return sample
    sample.cpu_ns, sample.peak_rss_kib = report.cpu_ns, report.peak_rss_kib
    sample.events, sample.lost = report.events, report.lost
    kinds = completeness.expected_kinds(workload, condition.kinds)
    if kinds:
        sample.expected = len(kinds) * timing.count
        sample.seen = completeness.seen(workload, kinds, timing.pid, report.records)
    return sample


def run_pairs(chosen: list[Workload], conditions: list, pairs: int, quick: bool, binaries: dict[str, Path],
              workdir: Path, log: Callable[[str], None]) -> list[Sample]:
    samples = []
    for workload in chosen:
        count = workload.quick_count if quick else workload.count
        for pair in range(1, pairs + 1):
            for condition in conditions:
                s = run_once(workload, condition, count, binaries, workdir, pair)
                extra = f", seen {s.seen}/{s.expected}" if s.expected is not None else ""
                extra += f", lost {s.lost}" if s.lost is not None else ""
                log(f"{workload.name:9} pair {pair}/{pairs} {condition.name:9} "
                    f"{s.elapsed_ns / s.count:10.1f} ns/op{extra}")
                samples.append(s)
    return samples
