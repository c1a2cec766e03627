"""The workloads: what each does, how many times, what it should cost at
most under the monitor, and which events it generates per iteration."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The library the dlopen workload loads; its name marks its image-load events.
PLUGIN_NAME = "libbenchplugin.so"


@dataclass(frozen=True)
class Workload:
    name: str
    count: int
    quick_count: int
    # Highest acceptable median ratio monitored/baseline; None means "at the
    # floor the syscall-tracepoint path imposes" (compared with that run).
    target_ratio: float | None
    # Event kinds generated once per iteration. process-* kinds are counted
    # for the workload's children, the others for the workload process.
    events_per_iteration: tuple[str, ...]
    what: str


WORKLOADS: tuple[Workload, ...] = (
    Workload("spawn", 3000, 200, 1.03, ("process-create", "process-exec", "process-exit"),
             "fork + exec /bin/true + wait"),
    Workload("threads", 30000, 2000, 1.05, ("thread-create", "thread-exit"),
             "pthread_create + pthread_join"),
    Workload("dlopen", 3000, 200, 1.05, ("image-load",),
             f"dlopen + dlclose of {PLUGIN_NAME}"),
    Workload("syscalls", 5_000_000, 300_000, None, (), "getppid"),
    Workload("mmapanon", 500_000, 30_000, 1.03, (), "anonymous mmap + munmap of one page"),
)


def by_names(names: list[str]) -> list[Workload]:
    known = {w.name: w for w in WORKLOADS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"bench: unknown workload(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return [known[n] for n in names]


@dataclass(frozen=True)
class Timing:
    """What a workload run reports about itself."""
    count: int
    elapsed_ns: int
    pid: int


def run(binary: Path, args: list[str]) -> Timing:
    """Run a workload binary and read its one JSON line."""
    done = subprocess.run([str(binary), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"workload {binary.name} {' '.join(args)} failed with status {done.returncode}: "
                           f"{done.stderr.strip()}")
    line = json.loads(done.stdout.strip().splitlines()[-1])
    return Timing(count=line["count"], elapsed_ns=line["elapsed_ns"], pid=line["pid"])
