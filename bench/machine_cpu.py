"""CPU time of every process on the machine during a stretch of a run, grouped by what the
process is (PostgreSQL, Parley's API processes, its worker process, the load generator, ...).

A benchmark's servers and load generator share this machine, so "Parley served N requests a
second" means little without "and used this much of the machine, beside a load generator that
used that much". The sampler reads /proc every half second in a thread; a process's CPU in the
stretch is its utime + stime at the last sample minus at the first (zero for one that started
during the stretch). A process that ends between two samples loses at most half a second of its
time; its children's time is not counted twice (cutime is left out).
"""

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

from bench.cpu import PROC, TICKS

SAMPLE_SECONDS = 0.5


@dataclass(frozen=True)
class _Seen:
    group: str
    first: float
    last: float


def _read(pid: int) -> tuple[int, str, float, int] | None:
    """(parent, command name, CPU seconds, start time in ticks) of a process, from one read of
    its /proc stat; None once it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / TICKS, int(fields[19])


def _cmdline(pid: int) -> str:
    try:
        line = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return ""
    return line.replace(b"\0", b" ").decode(errors="replace")


def group_of(pid: int, comm: str, parent: int) -> str:
    """What a process is, for the CPU table."""
    if comm.startswith("postgres"):
        return "PostgreSQL"
    if comm == "wrk":
        return "wrk (load generator)"
    if comm.startswith("redis"):
        return "Redis"
    if comm == "java":
        return "Kafka / Elasticsearch"
    line = _cmdline(pid)
    if "api.cli worker" in line:
        return "parley worker process"
    if "api.cli serve" in line:
        return "parley serve (the supervisor)"
    parent_line = _cmdline(parent) if "multiprocessing" in line else ""
    if "api.cli serve" in parent_line:
        return "parley API processes"
    if "peers" in line or "peers" in parent_line:
        return "peer and limit servers"
    if "-m bench" in line or "-m bench" in parent_line:
        return "benchmark process (load generator, stand-in provider)"
    return "other"


@dataclass
class MachineCpu:
    """Samples every process's CPU time until `stop()`; `seconds_by_group()` sums them."""

    seen: dict[tuple[int, int], _Seen] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "MachineCpu":
        self._sample(first=True)
        self._thread = threading.Thread(target=self._run, name="machine-cpu", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample(first=False)
        self.ended = time.monotonic()

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._sample(first=False)

    def _sample(self, *, first: bool) -> None:
        for entry in PROC.iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            read = _read(pid)
            if read is None:
                continue
            parent, comm, cpu, started = read
            # A pid with its start time is one process, even if the pid is reused later.
            key = (pid, started)
            known = self.seen.get(key)
            if known is None:
                self.seen[key] = _Seen(group_of(pid, comm, parent), cpu if first else 0.0, cpu)
            else:
                self.seen[key] = _Seen(known.group, known.first, cpu)

    @property
    def wall_seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def seconds_by_group(self) -> dict[str, float]:
        """CPU seconds per group, largest first (groups that used under 0.05 s left out)."""
        totals: dict[str, float] = defaultdict(float)
        for seen in self.seen.values():
            totals[seen.group] += seen.last - seen.first
        return {
            group: round(seconds, 2)
            for group, seconds in sorted(totals.items(), key=lambda kv: -kv[1])
            if seconds >= 0.05
        }
