"""From samples to the numbers the report shows."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .measure import Sample
from .workloads import Workload

# Slack on the syscalls floor comparison: two medians of noisy runs.
FLOOR_SLACK = 0.01
# The floor rsysmon is held to: it attaches syscall exit tracepoints only.
# Without that run, the entry floor stands in (it is the lower of the two).
FLOORS = ("floor-exit", "floor")


@dataclass
class Row:
    workload: str
    condition: str
    ratio_median: float
    ratio_min: float
    ratio_max: float
    baseline_ns_per_op: float  # medians
    ns_per_op: float
    seen: int | None
    expected: int | None
    lost: int
    cpu_ms_per_1000_events: float | None
    peak_rss_mib: float
    target: str
    meets_target: bool | None
    # rsysmon's median ratio divided by the floor's: what rsysmon costs
    # beyond merely having a syscall tracepoint attached.
    beyond_floor: float | None = None


def summarize(chosen: list[Workload], samples: list[Sample]) -> list[Row]:
    rows = []
    for workload in chosen:
        mine = [s for s in samples if s.workload == workload.name]
        base = {s.pair: s for s in mine if s.condition == "baseline"}
        conditions = list(dict.fromkeys(s.condition for s in mine if s.condition != "baseline"))
        floors = {}
        for condition in conditions:
            runs = [s for s in mine if s.condition == condition]
            ratios = [per_op(s) / per_op(base[s.pair]) for s in runs]
            events = sum(s.events for s in runs)
            cpu = sum(s.cpu_ns for s in runs)
            expected = None if runs[0].expected is None else sum(s.expected for s in runs)
            row = Row(
                workload=workload.name, condition=condition,
                ratio_median=statistics.median(ratios), ratio_min=min(ratios), ratio_max=max(ratios),
                baseline_ns_per_op=statistics.median(per_op(base[s.pair]) for s in runs),
                ns_per_op=statistics.median(per_op(s) for s in runs),
                seen=None if expected is None else sum(s.seen for s in runs), expected=expected,
                lost=sum(s.lost for s in runs),
                cpu_ms_per_1000_events=cpu / 1e6 / events * 1000 if events else None,
                peak_rss_mib=max(s.peak_rss_kib for s in runs) / 1024,
                target="", meets_target=None)
            if condition in FLOORS:
                floors[condition] = row.ratio_median
            rows.append(row)
        floor_name = next((f for f in FLOORS if f in floors), None)
        floor_ratio = floors.get(floor_name)
        for row in rows:
            if row.workload != workload.name or row.condition != "rsysmon":
                continue
            if floor_ratio is not None:
                row.beyond_floor = row.ratio_median / floor_ratio
            if workload.target_ratio is not None:
                row.target = f"≤ {workload.target_ratio:.2f}×"
                row.meets_target = row.ratio_median <= workload.target_ratio
            elif floor_ratio is not None:
                row.target = f"≤ {floor_name} ({floor_ratio:.3f}×)"
                row.meets_target = row.ratio_median <= floor_ratio + FLOOR_SLACK
            else:
                row.target = "floor (not measured)"
    return rows


def per_op(s: Sample) -> float:
    return s.elapsed_ns / s.count
