"""Conditions run by bpftrace: the syscall-tracepoint floor, and a peer
monitor with the same coverage as rsysmon."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from .monitor import MonitorProcess, MonitorReport

# bpftrace prints "Attaching N probes...", then runs BEGIN once every other
# probe is attached; BEGIN's line is the sign to start the workload.
READY_LINE = "ready"
BEGIN = f'BEGIN {{ printf("{READY_LINE}\\n"); }}\n'

# The floor: one empty program on one syscall tracepoint. Attaching any
# syscall tracepoint makes every task take the kernel's slow syscall path
# (SYSCALL_WORK_SYSCALL_TRACEPOINT), whatever the program does. `floor`
# attaches it to acct, which no workload calls, so it measures that slow path
# alone: the least any monitor with a syscall tracepoint costs. `floor-fire`
# attaches it to getppid, so in the syscalls workload the empty program also
# runs on every call: the least a probe on that very syscall costs.
# `floor-exit` is `floor` on the exit side: the kernel's syscall-exit
# tracepoint path costs more than the entry one, and a probe that needs a
# syscall's result (rsysmon's mmap, mprotect, open, ptrace probes) can only
# sit there. It is the floor rsysmon is held to.
FLOOR_SCRIPT = BEGIN + "tracepoint:syscalls:sys_enter_acct {}\n"
FLOOR_EXIT_SCRIPT = BEGIN + "tracepoint:syscalls:sys_exit_acct {}\n"
FLOOR_FIRE_SCRIPT = BEGIN + "tracepoint:syscalls:sys_enter_getppid {}\n"

# What rsysmon reports, one line per event: KIND PID TID PPID [PATH].
# Threads and processes are told apart by CLONE_THREAD (0x10000); image
# loads are executable mappings of a file (PROT_EXEC = 4). bpftrace cannot
# resolve the file's path from a syscall tracepoint, so it prints the fd.
PEER_SCRIPT = BEGIN + r"""
tracepoint:task:task_newtask {
  if (args->clone_flags & 0x10000) { printf("thread-create %d %d 0\n", pid, args->pid); }
  else { printf("process-create %d %d %d\n", args->pid, args->pid, pid); }
}
tracepoint:sched:sched_process_exec { printf("process-exec %d %d 0 %s\n", pid, tid, str(args->filename)); }
tracepoint:sched:sched_process_exit {
  if (args->group_dead) { printf("process-exit %d %d 0\n", pid, tid); }
  else { printf("thread-exit %d %d 0\n", pid, tid); }
}
tracepoint:syscalls:sys_enter_mmap /(args->prot & 4) && (int64)args->fd >= 0/ {
  printf("image-load %d %d 0 fd=%d\n", pid, tid, args->fd);
}
"""

LOST = re.compile(r"^Lost (\d+) events", re.M)


def ensure_available(install: bool) -> str | None:
    """bpftrace and a mounted tracefs, or the reason they are not there.

    Debian's bpftrace looks up tracepoints in tracefs, which minimal systems
    do not mount; mounting it changes nothing else."""
    if shutil.which("bpftrace") is None and install:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "bpftrace"], env=env,
                       capture_output=True)
    if shutil.which("bpftrace") is None:
        return "bpftrace is not installed (apt-get install bpftrace)"
    tracefs = Path("/sys/kernel/tracing")
    if not (tracefs / "events").is_dir():
        done = subprocess.run(["mount", "-t", "tracefs", "nodev", str(tracefs)], capture_output=True, text=True)
        if done.returncode != 0:
            return f"tracefs is not mounted and mounting it failed: {done.stderr.strip()}"
    return None


class Bpftrace:
    def __init__(self, name: str, script: str, description: str, kinds: list[str]):
        self.name = name
        self.kinds = kinds  # kinds whose events can be matched to a workload
        self.script = script
        self.description = description
        self._proc: MonitorProcess | None = None
        # Runs where bpftrace ignored SIGINT and was killed (seen rarely
        # under heavy load); their timings stand.
        self.forced_stops = 0

    def start(self, workdir: Path) -> None:
        # Standard output, not -o: bpftrace flushes stdout after each line
        # but buffers a file opened with -o.
        self.output = workdir / f"{self.name}.out"
        with self.output.open("w") as out:
            self._proc = MonitorProcess(["bpftrace", "-e", self.script], self.name, stdout=out)
        self._proc.wait_ready(self._saw_ready)

    def _saw_ready(self) -> bool:
        return f"\n{READY_LINE}\n" in self.output.read_text()

    def stop(self, parse: bool) -> MonitorReport:
        cpu, rss, err = self._proc.interrupt()
        if "was killed" in err:
            self.forced_stops += 1
        text = self.output.read_text()
        self.output.unlink()
        lines = text.split(f"\n{READY_LINE}\n", 1)[1].splitlines()
        lost = sum(int(n) for n in LOST.findall(text))
        records = [r for r in map(_record, lines) if r]
        return MonitorReport(cpu, rss, len(records), lost, f"perf buffer={lost}", records if parse else [])


def _record(line: str) -> dict | None:
    parts = line.split(" ", 4)
    if len(parts) < 4 or not parts[1].isdigit():
        return None
    return {"kind": parts[0], "pid": int(parts[1]), "tid": int(parts[2]), "ppid": int(parts[3]),
            "path": parts[4] if len(parts) > 4 else ""}


def floor() -> Bpftrace:
    return Bpftrace("floor", FLOOR_SCRIPT, "bpftrace, one empty program on tracepoint:syscalls:sys_enter_acct", [])


def floor_exit() -> Bpftrace:
    return Bpftrace("floor-exit", FLOOR_EXIT_SCRIPT, "bpftrace, one empty program on tracepoint:syscalls:sys_exit_acct", [])


def floor_fire() -> Bpftrace:
    return Bpftrace("floor-fire", FLOOR_FIRE_SCRIPT,
                    "bpftrace, one empty program on tracepoint:syscalls:sys_enter_getppid", [])


def peer() -> Bpftrace:
    return Bpftrace("bpftrace", PEER_SCRIPT,
                    "bpftrace printing process, thread and exec-mapping events to a file (text)",
                    ["process-create", "process-exec", "process-exit", "thread-create", "thread-exit"])
