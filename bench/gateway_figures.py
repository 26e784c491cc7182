"""The `gateway` benchmark's figures: one reply's timings, the CPU the parts of the benchmark
used (the clients, the server, the upstream, the whole machine, from /proc), and everything
measured at one level of concurrency, with the `figures` of the run's JSON record."""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.report import Percentiles


@dataclass(frozen=True)
class Sample:
    """One reply, in seconds from the moment its message was sent."""

    ttft: float
    """To the first piece of text: a `ReplyDelta` / the SDK's first content chunk."""
    total: float
    """To the whole reply: the assistant's `MessageAdded` / the end of the SDK's stream."""
    ack: float | None = None
    """Parley: to the `sendMessage` response."""
    provider_ttft: float | None = None
    """Parley: `timeToFirstTokenMs` as the server recorded it (provider call to first token)."""
    reply: float | None = None
    """Parley: `latencyMs` as the server recorded it (picking up the message to the last token)."""


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds used so far by the parts of the benchmark, and by the whole machine."""

    client: float
    server: float
    """`parley serve` and its child processes."""
    upstream: float
    machine_busy: float
    at: float

    @classmethod
    def now(cls, server_pid: int, upstream_pid: int) -> "CpuTimes":
        return cls(
            time.process_time(),
            _tree_cpu(server_pid),
            _process_cpu(upstream_pid),
            _machine_busy(),
            time.perf_counter(),
        )


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) from /proc; 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree_cpu(root: int) -> float:
    """CPU seconds of a process and its live descendants (`parley serve`'s API processes and
    worker process are its children): one pass over /proc for the parent of every process."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree = {root}
    grew = True
    while grew:
        before = len(tree)
        tree |= {pid for pid, parent in parents.items() if parent in tree}
        grew = len(tree) > before
    return sum(_process_cpu(pid) for pid in tree)


def _machine_busy() -> float:
    """CPU seconds every core spent on anything but idling, since boot."""
    try:
        cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(t) for t in cpu]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuUse:
    """CPU used during the measured rounds of one path, summed over them."""

    PARTS = ("client", "server", "upstream", "machine")
    wall: float = 0.0
    client: float = 0.0
    server: float = 0.0
    upstream: float = 0.0
    machine: float = 0.0

    def add(self, before: CpuTimes, after: CpuTimes) -> None:
        self.wall += after.at - before.at
        self.client += after.client - before.client
        self.server += after.server - before.server
        self.upstream += after.upstream - before.upstream
        self.machine += after.machine_busy - before.machine_busy

    def cores(self) -> dict[str, float]:
        """Average cores busy: CPU seconds per second of wall time."""
        if self.wall <= 0:
            return {}
        return {p: round(getattr(self, p) / self.wall, 2) for p in self.PARTS}

    def figures(self, replies: int) -> dict[str, Any]:
        return {
            "wall_seconds": round(self.wall, 3),
            "cpu_seconds": {p: round(getattr(self, p), 3) for p in self.PARTS},
            "cores_busy": self.cores(),
            "cpu_ms_per_reply": {
                p: round(getattr(self, p) / replies * 1000, 2) if replies else None
                for p in self.PARTS
            },
        }


@dataclass
class Step:
    """Everything measured at one level of concurrency."""

    chats: int
    rounds: int
    parley: list[Sample] = field(default_factory=list)
    baseline: list[Sample] = field(default_factory=list)
    parley_cpu: CpuUse = field(default_factory=CpuUse)
    baseline_cpu: CpuUse = field(default_factory=CpuUse)
    rounds_done: int = 0

    def added(self) -> dict[str, float]:
        """Parley minus the baseline, in milliseconds."""
        out = {}
        for name in ("ttft", "total"):
            mine = Percentiles.of([getattr(s, name) for s in self.parley])
            base = Percentiles.of([getattr(s, name) for s in self.baseline])
            out[f"{name}_p50"] = round(mine.p50 - base.p50, 2)
            out[f"{name}_p99"] = round(mine.p99 - base.p99, 2)
        return out

    def figures(self) -> dict[str, Any]:
        def of(samples: list[Sample], name: str) -> dict[str, Any]:
            values = [v for s in samples if (v := getattr(s, name)) is not None]
            return Percentiles.of(values).figures()

        return {
            "concurrent_chats": self.chats,
            "rounds": self.rounds_done,
            "parley": {
                "ttft_ms": of(self.parley, "ttft"),
                "total_ms": of(self.parley, "total"),
                "send_message_response_ms": of(self.parley, "ack"),
                "server_recorded_provider_ttft_ms": of(self.parley, "provider_ttft"),
                "server_recorded_reply_latency_ms": of(self.parley, "reply"),
                **self.parley_cpu.figures(len(self.parley)),
            },
            "baseline": {
                "ttft_ms": of(self.baseline, "ttft"),
                "total_ms": of(self.baseline, "total"),
                **self.baseline_cpu.figures(len(self.baseline)),
            },
            "added_ms": self.added(),
        }
