"""Sustained load: the monitor's CPU at a steady exec rate, and the highest
event rate it takes for a long stretch without losing anything."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import workloads

EXEC_RATE = 1000  # exec/s for the CPU test
# Events per second to try, in order; each thread created and joined is two
# events (thread-create, thread-exit).
EVENT_RATES = (10_000, 25_000, 50_000, 60_000, 75_000, 100_000, 150_000, 200_000)
# A step whose generator reached less than this share of its target shows
# the machine's limit, not the monitor's: stepping stops there.
KEEP_UP = 0.9


@dataclass
class Step:
    target_per_s: float  # events/s asked for
    achieved_per_s: float  # events/s the generator made
    seconds: float
    monitor_cpu_percent: float  # of one core
    lost: int
    lost_detail: str  # per stage
    peak_rss_mib: float


def _run(rate_bin: Path, monitor, mode: str, per_second: float, seconds: float, workers: int,
         events_per_op: int, workdir: Path) -> Step:
    monitor.start(workdir)
    try:
        t = workloads.run(rate_bin, [mode, f"{per_second:g}", f"{seconds:g}", str(workers)])
    finally:
        report = monitor.stop(parse=False)
    elapsed_s = t.elapsed_ns / 1e9
    return Step(per_second * events_per_op, t.count * events_per_op / elapsed_s, elapsed_s,
                report.cpu_ns / t.elapsed_ns * 100, report.lost, report.lost_detail, report.peak_rss_kib / 1024)


def exec_cpu(rate_bin: Path, monitor, seconds: float, workdir: Path) -> Step:
    """The monitor's CPU while the machine runs EXEC_RATE exec/s (three
    events each: create, exec, exit)."""
    return _run(rate_bin, monitor, "spawn", EXEC_RATE, seconds, 1, 3, workdir)


def step_rates(rate_bin: Path, monitor, seconds: float, workdir: Path,
               log: Callable[[str], None]) -> tuple[list[Step], str]:
    """Step the thread event rate up until the monitor loses events or the
    generator cannot keep up; return the steps and why stepping stopped."""
    steps = []
    for rate in EVENT_RATES:
        step = _run(rate_bin, monitor, "threads", rate / 2, seconds, os.cpu_count() or 1, 2, workdir)
        steps.append(step)
        log(f"sustained {rate:>7} events/s for {seconds:g} s: achieved {step.achieved_per_s:,.0f}/s, "
            f"lost {step.lost}, monitor CPU {step.monitor_cpu_percent:.1f} %")
        if step.lost:
            return steps, f"the monitor lost events at {rate:,} events/s ({step.lost_detail})"
        if step.achieved_per_s < KEEP_UP * rate:
            return steps, (f"the generator reached only {step.achieved_per_s:,.0f} of {rate:,} events/s "
                           "on this machine")
    return steps, f"no loss up to the highest step ({EVENT_RATES[-1]:,} events/s)"


def highest_clean(steps: list[Step]) -> float | None:
    """The highest achieved rate of a step without loss."""
    clean = [s.achieved_per_s for s in steps if s.lost == 0]
    return max(clean) if clean else None
