"""The results as a Markdown report and a JSON file."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from .stats import Row
from .sustained import EXEC_RATE, Step, highest_clean

TARGET_CPU_PERCENT = 1.0  # of one core, at EXEC_RATE exec/s
TARGET_CLEAN_RATE = 50_000  # events/s without loss
TARGET_RSS_MIB = 40


def _yes_no(ok: bool | None) -> str:
    return "–" if ok is None else ("yes" if ok else "**no**")


def markdown(meta: dict, rows: list[Row], exec_step: Step | None, steps: list[Step], stop_reason: str) -> str:
    out = [f"# rsysmon benchmark, {meta['date']}", ""]
    out += [f"- {k}: {v}" for k, v in meta.items() if k != "date"]
    out += ["", "## Workloads", "",
            "Ratio = monitored / baseline time per operation, per interleaved pair; median (min–max).", "",
            "| workload | condition | ratio | min–max | baseline ns/op | monitored ns/op | seen / generated "
            "| lost | monitor CPU ms per 1000 events | peak RSS MiB | target | met |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        seen = "n/a" if r.expected is None else f"{r.seen}/{r.expected}"
        # Without events of its own the workload only shows the monitor's idle cost.
        cpu = "n/a" if r.cpu_ms_per_1000_events is None or r.expected is None else f"{r.cpu_ms_per_1000_events:.2f}"
        out.append(f"| {r.workload} | {r.condition} | {r.ratio_median:.3f}× | {r.ratio_min:.3f}–{r.ratio_max:.3f} "
                   f"| {r.baseline_ns_per_op:,.0f} | {r.ns_per_op:,.0f} | {seen} | {r.lost} | {cpu} "
                   f"| {r.peak_rss_mib:.1f} | {r.target} | {_yes_no(r.meets_target if r.target else None)} |")
    beyond = [r for r in rows if r.beyond_floor is not None]
    if beyond:
        out += ["", "rsysmon beyond the floor (its ratio divided by that of the exit floor, or of the entry "
                    "floor when the exit floor was not run): "
                + ", ".join(f"{r.workload} {r.beyond_floor:.3f}×" for r in beyond) + "."]
    rss = [r.peak_rss_mib for r in rows if r.condition == "rsysmon"]
    steps_rss = [s.peak_rss_mib for s in steps + ([exec_step] if exec_step else [])]
    out += ["", "## Sustained", ""]
    if exec_step:
        ok = exec_step.monitor_cpu_percent <= TARGET_CPU_PERCENT
        out.append(f"- rsysmon CPU at {EXEC_RATE} exec/s (achieved {exec_step.achieved_per_s / 3:,.0f} exec/s for "
                   f"{exec_step.seconds:.0f} s): **{exec_step.monitor_cpu_percent:.2f} %** of one core, "
                   f"lost {exec_step.lost}; target ≤ {TARGET_CPU_PERCENT:g} %: {_yes_no(ok)}")
    if steps:
        clean = highest_clean(steps)
        ok = clean is not None and clean >= TARGET_CLEAN_RATE
        shown = "none" if clean is None else f"{clean:,.0f} events/s"
        out += [f"- highest rate with zero loss: **{shown}** (stopped because {stop_reason}); "
                f"target ≥ {TARGET_CLEAN_RATE:,} events/s: {_yes_no(ok)}", "",
                "| target events/s | achieved events/s | seconds | lost | rsysmon CPU % of a core | peak RSS MiB |",
                "|---|---|---|---|---|---|"]
        out += [f"| {s.target_per_s:,.0f} | {s.achieved_per_s:,.0f} | {s.seconds:.0f} "
                f"| {s.lost}{f' ({s.lost_detail})' if s.lost else ''} "
                f"| {s.monitor_cpu_percent:.1f} | {s.peak_rss_mib:.1f} |" for s in steps]
    if rss or steps_rss:
        peak = max(rss + steps_rss)
        out += ["", f"- rsysmon peak RSS over all runs: **{peak:.1f} MiB**; target ≤ {TARGET_RSS_MIB} MB: "
                    f"{_yes_no(peak * 1.048576 <= TARGET_RSS_MIB)}"]
    return "\n".join(out) + "\n"


def write(results_dir: Path, stamp: str, text: str, meta: dict, rows: list[Row], samples: list,
          exec_step: Step | None, steps: list[Step], stop_reason: str) -> tuple[Path, Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    md, js = results_dir / f"{stamp}.md", results_dir / f"{stamp}.json"
    md.write_text(text)
    js.write_text(json.dumps({
        "meta": meta,
        "rows": [asdict(r) for r in rows],
        "samples": [asdict(s) for s in samples],
        "exec_cpu": asdict(exec_step) if exec_step else None,
        "sustained": {"steps": [asdict(s) for s in steps], "stopped_because": stop_reason,
                      "highest_clean_per_s": highest_clean(steps)},
    }, indent=2) + "\n")
    return md, js
