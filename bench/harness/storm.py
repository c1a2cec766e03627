"""bench/storm.sh: completeness on a busy machine.

A parallel build (`make -j2` of FILES small C files) runs while busy loops
at normal priority (two per CPU) hold every CPU. rsysmon watches; the
kernel's own count of the build's execs (`perf stat -e
sched:sched_process_exec`, which follows the build's process tree) is the
truth it is compared with. Then paced threads at a steady rate under the
same storm: every thread made must be reported."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import build, cli, procstat, rsysmon, workloads

FILES = 200
THREAD_RATE = 25_000  # threads/s under the storm: 50,000 events/s asked for
THREAD_SECONDS = 5


def log(line: str) -> None:
    print(f"storm: {line}", file=sys.stderr, flush=True)


def write_project(root: Path, files: int) -> None:
    """FILES C files, each a few functions, and a Makefile that builds them
    into one program."""
    root.mkdir(parents=True)
    for i in range(files):
        body = "\n".join(f"int f{i}_{j}(int x) {{ return x * {j} + {i}; }}" for j in range(20))
        (root / f"unit{i}.c").write_text(body + "\n")
    (root / "main.c").write_text("int main(void) { return 0; }\n")
    (root / "Makefile").write_text(
        "SRCS := $(wildcard *.c)\nOBJS := $(SRCS:.c=.o)\n"
        "prog: $(OBJS)\n\tcc -o $@ $(OBJS)\n"
        "%.o: %.c\n\tcc -O1 -c $< -o $@\n")


def ensure_perf(install: bool) -> None:
    if shutil.which("perf"):
        return
    if not install:
        raise SystemExit("storm: needs perf (apt-get install linux-perf) for the kernel's exec count")
    log("installing linux-perf")
    subprocess.run(["apt-get", "install", "-y", "-qq", "linux-perf"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def start_storm(spin: Path, seconds: int) -> list[subprocess.Popen]:
    cpus = os.cpu_count() or 1
    return [subprocess.Popen([str(spin), str(seconds)]) for _ in range(2 * cpus)]


def stop_storm(storm: list[subprocess.Popen]) -> None:
    for p in storm:
        p.kill()
    for p in storm:
        p.wait()


def descendants(root: int, records: list[dict]) -> set[int]:
    """Every process created below `root`, from the creation events."""
    children: dict[int, list[int]] = {}
    for r in records:
        if r["kind"] == "process-create":
            children.setdefault(r.get("ppid", 0), []).append(r["pid"])
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def build_under_storm(monitor: rsysmon.Rsysmon, binaries: dict, workdir: Path, files: int) -> dict:
    project = workdir / "project"
    write_project(project, files)
    counts = workdir / "perf-stat.csv"
    monitor.start(workdir)
    storm = start_storm(binaries["spin"], 600)
    try:
        started = time.monotonic()
        perf = subprocess.Popen(["perf", "stat", "-x,", "-e", "sched:sched_process_exec", "-o", str(counts),
                                 "--", "make", "-s", "-j2", "-C", str(project)], stdout=subprocess.DEVNULL)
        status = perf.wait()
        elapsed = time.monotonic() - started
    finally:
        stop_storm(storm)
        report = monitor.stop(parse=True)
    if status != 0:
        raise RuntimeError(f"the build failed with status {status}")
    line = next(l for l in counts.read_text().splitlines() if "sched_process_exec" in l)
    truth = int(line.split(",")[0])
    tree = descendants(perf.pid, report.records)
    seen = sum(1 for r in report.records if r["kind"] == "process-exec" and r["pid"] in tree)
    return {"files": files, "seconds": elapsed, "execs (kernel)": truth, "execs (rsysmon)": seen,
            "lost": report.lost, "lost detail": report.lost_detail,
            "monitor CPU %": report.cpu_ns / (elapsed * 1e9) * 100, "peak RSS MiB": report.peak_rss_kib / 1024}


def threads_under_storm(monitor: rsysmon.Rsysmon, binaries: dict, workdir: Path) -> dict:
    monitor.start(workdir)
    storm = start_storm(binaries["spin"], 600)
    try:
        t = workloads.run(binaries["rate"], ["threads", str(THREAD_RATE), str(THREAD_SECONDS), "2"])
    finally:
        stop_storm(storm)
        report = monitor.stop(parse=True)
    seen = sum(1 for r in report.records if r["kind"] == "thread-create" and r["pid"] == t.pid)
    seconds = t.elapsed_ns / 1e9
    return {"events/s asked": 2 * THREAD_RATE, "events/s made": 2 * t.count / seconds,
            "threads (made)": t.count + 2, "threads (rsysmon)": seen, "lost": report.lost,
            "lost detail": report.lost_detail, "monitor CPU %": report.cpu_ns / t.elapsed_ns * 100,
            "peak RSS MiB": report.peak_rss_kib / 1024}


def main() -> int:
    p = argparse.ArgumentParser(prog="bench/storm.sh", description=__doc__)
    p.add_argument("--files", type=int, default=FILES, help="C files in the build (default %(default)s)")
    p.add_argument("--rsysmon", type=Path, default=cli.REPO / "target/release/rsysmon")
    p.add_argument("--build-dir", type=Path, default=cli.REPO / "bench/build")
    p.add_argument("--no-install", action="store_true", help="do not apt-get install perf when missing")
    args = p.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("storm: needs root to load probes")
    ensure_perf(not args.no_install)
    binaries = build.build_all(args.build_dir)
    with tempfile.TemporaryDirectory(prefix="rsysmon-storm-") as tmp:
        workdir = Path(tmp)
        blocked = workdir / "blocked" / "true"
        blocked.parent.mkdir()
        shutil.copy2("/bin/true", blocked)
        monitor = rsysmon.Rsysmon(args.rsysmon, rsysmon.detect(args.rsysmon, blocked))
        log(f"load average before: {procstat.load_average()}")
        results = {"build": build_under_storm(monitor, binaries, workdir, args.files),
                   "threads": threads_under_storm(monitor, binaries, workdir)}
    ok = True
    for name, r in results.items():
        log(f"{name} under a {2 * (os.cpu_count() or 1)}-loop CPU storm: "
            + ", ".join(f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))
    b, t = results["build"], results["threads"]
    ok = b["execs (rsysmon)"] == b["execs (kernel)"] and t["threads (rsysmon)"] == t["threads (made)"]
    ok = ok and b["lost"] == 0 and t["lost"] == 0
    log("complete: every exec and thread reported, 0 lost" if ok else "INCOMPLETE")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as e:
        sys.exit(f"storm: {e}")
