"""Builds the workload programs with the system C compiler."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .workloads import PLUGIN_NAME

SOURCES = Path(__file__).resolve().parent.parent / "workloads"
PROGRAMS = ("spawn", "threads", "dlopen", "syscalls", "mmapanon", "rate", "spin")
# The CPU storm is the busy-machine tests' own program: one source for both.
SHARED_SOURCES = {"spin": Path(__file__).resolve().parents[2] / "crates/rsysmon/tests/programs/spin.c"}


def build_all(build_dir: Path) -> dict[str, Path]:
    """Compile every workload (and the dlopen library) into build_dir;
    return name -> path, with PLUGIN_NAME for the library."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise SystemExit(f"bench: no C compiler '{cc}' found: install gcc (apt-get install gcc libc6-dev) or set CC")
    build_dir.mkdir(parents=True, exist_ok=True)
    jobs = [
        (build_dir / name, [str(SHARED_SOURCES.get(name, SOURCES / f"{name}.c")), "-pthread", "-ldl"])
        for name in PROGRAMS
    ]
    jobs.append((build_dir / PLUGIN_NAME, ["-shared", "-fPIC", str(SOURCES / "plugin.c")]))
    built = {}
    for out, args in jobs:
        cmd = [cc, "-O2", "-Wall", "-Wextra", "-o", str(out), *args]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"bench: building {out.name} failed:\n{' '.join(cmd)}\n{done.stderr}")
        built[out.name] = out
    return built
