"""The rsysmon condition: `rsysmon run --json -o FILE` with everything on."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .monitor import MonitorProcess, MonitorReport

# "Everything on", in one place: each optional feature, the `rsysmon run`
# flag that turns it on and the flag's arguments. A flag the binary does not
# list in `rsysmon run --help` is left out and reported as off, so features
# that land later are picked up without changing the harness. Features that
# are on by default show up as event kinds and attached probes instead.
# `{blocked}` is a copy of /bin/true in a temporary directory.
OPTIONAL_FLAGS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("exec blocking (1 rule)", "--block", ("{blocked}",)),
)

READY = "rsysmon: watching"
SUMMARY = re.compile(r"rsysmon: events:(?P<events>[^;]*); lost:(?P<lost>.*)")


@dataclass
class Features:
    flags: list[str]  # the extra command-line flags
    on: list[str]  # optional features turned on by those flags
    off: list[str]  # optional features this binary does not offer
    kinds: list[str]  # event kinds the binary can report
    blocked: Path | None  # the file the blocking rule refuses, if blocking is on


def detect(binary: Path, blocked: Path) -> Features:
    """Read `rsysmon run --help` to see which optional flags exist."""
    done = subprocess.run([str(binary), "run", "--help"], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: `{binary} run --help` failed: {done.stderr.strip()}; "
                         "build it with `cargo build --release`")
    help_text = done.stdout
    flags, on, off = [], [], []
    for feature, flag, args in OPTIONAL_FLAGS:
        if re.search(rf"(^|\s){re.escape(flag)}[\s=<,]", help_text):
            flags += [flag, *(a.format(blocked=blocked) for a in args)]
            on.append(feature)
        else:
            off.append(feature)
    # The --kind paragraph (its first line and the deeper-indented lines under
    # it) lists the kinds after a colon.
    kind_help = re.search(r"--kind[^\n]*\n(?:\s{12,}[^-\s][^\n]*\n)*", help_text)
    listed = kind_help[0].split(":", 1)[-1] if kind_help else ""
    kinds = sorted(set(re.findall(r"\b[a-z]+(?:-[a-z]+)+\b", listed)))
    return Features(flags, on, off, kinds, blocked if "--block" in flags else None)


class Rsysmon:
    name = "rsysmon"

    def __init__(self, binary: Path, features: Features, env: dict[str, str] | None = None):
        self.binary = binary
        self.env = env
        self.features = features
        self.kinds = features.kinds
        self.description = " ".join(["rsysmon run --json -o FILE", *features.flags])
        self.attached = ""
        self._proc: MonitorProcess | None = None
        self._stderr = ""

    def start(self, workdir: Path) -> None:
        self.events_file = workdir / "rsysmon-events.jsonl"
        cmd = [str(self.binary), "run", "--json", "-o", str(self.events_file), *self.features.flags]
        self._stderr = ""
        self._proc = MonitorProcess(cmd, "rsysmon", env=self.env)
        self._proc.wait_ready(self._saw_ready)
        line = next(line for line in self._stderr.splitlines() if line.startswith(READY))
        self.attached = line.removeprefix("rsysmon: ").split("; Ctrl-C")[0]

    def _saw_ready(self) -> bool:
        # Raw reads of whatever is there: a buffered readline() could keep
        # further lines in its buffer where select() no longer sees them.
        fd = self._proc.proc.stderr.fileno()
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self._stderr += chunk.decode(errors="replace")
        return READY in self._stderr

    def stop(self, parse: bool) -> MonitorReport:
        cpu, rss, err = self._proc.interrupt()
        match = SUMMARY.search(err)
        if not match:
            raise RuntimeError(f"rsysmon printed no summary line on exit: {err.strip()}")
        events = sum(int(v) for _, v in _pairs(match["events"]))
        lost = sum(int(v) for _, v in _pairs(match["lost"]))
        records = read_events(self.events_file) if parse else []
        self.events_file.unlink(missing_ok=True)
        return MonitorReport(cpu, rss, events, lost, match["lost"].strip(), records)


# The same binary on the kernel's tracepoint mechanism: BPF trampolines
# (fexit) and BPF LSM hidden, as on a kernel that refuses them.
TRACEPOINTS_ENV = {"RSYSMON_TEST_HIDE_KERNEL_FEATURES": "bpf_trampoline,bpf_lsm"}


def on_tracepoints(binary: Path, features: Features) -> Rsysmon:
    """The rsysmon-tracepoints condition."""
    monitor = Rsysmon(binary, features, env=TRACEPOINTS_ENV)
    monitor.name = "rsysmon-tracepoints"
    monitor.description = f"{monitor.description}, with {TRACEPOINTS_ENV}"
    return monitor


def _pairs(text: str) -> list[tuple[str, str]]:
    return [tuple(item.split("=", 1)) for item in text.split() if "=" in item]


def read_events(path: Path) -> list[dict]:
    """Every event in a JSON-lines file; a line that is not JSON is an error."""
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def check_blocking(monitor: Rsysmon, workdir: Path) -> str:
    """Start rsysmon with everything on and, if blocking is on, confirm that
    executing the blocked file fails. Returns what was found, in words."""
    monitor.start(workdir)
    verdict = "blocking off"
    try:
        blocked = monitor.features.blocked
        if blocked:
            try:
                subprocess.run([str(blocked)], check=True, capture_output=True)
                verdict = f"blocking did NOT refuse {blocked}"
            except (PermissionError, subprocess.CalledProcessError) as e:
                verdict = f"blocking verified: executing {blocked} failed ({type(e).__name__})"
    finally:
        monitor.stop(parse=False)
    return verdict
