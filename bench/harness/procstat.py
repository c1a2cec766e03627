"""What a running monitor costs, read from /proc."""

from __future__ import annotations

import os
from pathlib import Path


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of pid so far, user + system, in ns.

    Each thread's /proc/PID/task/TID/schedstat starts with its run time in
    ns; that is finer than the clock ticks of /proc/PID/stat, which is the
    fallback on kernels without schedstat."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
        return total
    except (FileNotFoundError, ProcessLookupError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int) -> int:
    """Peak resident set size (VmHWM) of pid, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as `uptime` shows them."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])
