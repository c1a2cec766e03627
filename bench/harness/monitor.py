"""What every condition shares: start a monitor, wait until its probes are
attached, stop it with SIGINT, and report what it cost and what it saw."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import procstat

# Time a monitor gets, after the workload ends, to drain what its buffers
# still hold before its CPU time is read.
SETTLE_SECONDS = 0.2
# Time a monitor gets to exit after SIGINT.
STOP_SECONDS = 30
# Pause after a monitor exits, so the kernel's deferred teardown of its
# probes (RCU callbacks, freeing programs and buffers) is not timed as part
# of the next run.
TEARDOWN_SECONDS = 0.5


@dataclass
class MonitorReport:
    cpu_ns: int  # CPU time of the monitor process while the workload ran
    peak_rss_kib: int
    events: int  # everything it reported, from any process on the machine
    lost: int  # events it knows it lost, all stages
    lost_detail: str  # the same per stage, as the monitor reports it
    # Parsed events, each with at least kind, pid, tid; ppid for process-create.
    records: list[dict] = field(default_factory=list)


class Baseline:
    """Nothing attached."""

    name = "baseline"
    description = "nothing attached"
    kinds: list[str] = []

    def start(self, workdir: Path) -> None:
        pass

    def stop(self, parse: bool) -> MonitorReport | None:
        return None


class MonitorProcess:
    """A monitor running as a child process."""

    def __init__(self, cmd: list[str], what: str, stdout=subprocess.DEVNULL, env: dict[str, str] | None = None):
        self.what = what
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE,
                                     text=True, env=None if env is None else {**os.environ, **env})
        self.cpu_at_start = 0

    def wait_ready(self, is_ready, timeout: float = 60.0) -> None:
        """Poll is_ready() until true; fail with the monitor's stderr if it
        exits or takes longer than timeout."""
        deadline = time.monotonic() + timeout
        while not is_ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.what} exited with status {self.proc.returncode} before attaching: "
                                   f"{self.proc.stderr.read().strip()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"{self.what} did not attach within {timeout:.0f} s")
            time.sleep(0.01)
        self.cpu_at_start = procstat.cpu_ns(self.proc.pid)

    def interrupt(self) -> tuple[int, int, str]:
        """SIGINT after a short settle; returns (cpu_ns, peak_rss_kib, stderr).

        A monitor that ignores SIGINT for STOP_SECONDS gets SIGKILL, and the
        stderr returned says so: the run's timing stands, its event counts
        may not."""
        time.sleep(SETTLE_SECONDS)
        cpu = procstat.cpu_ns(self.proc.pid) - self.cpu_at_start
        rss = procstat.peak_rss_kib(self.proc.pid)
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
            return cpu, rss, f"{err}\n{self.what} did not exit within {STOP_SECONDS} s of SIGINT and was killed"
        if self.proc.returncode not in (0, -signal.SIGINT):
            raise RuntimeError(f"{self.what} exited with status {self.proc.returncode}: {err.strip()}")
        time.sleep(TEARDOWN_SECONDS)
        return cpu, rss, err
