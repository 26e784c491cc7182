"""The `gateway` benchmark's figures: one reply's timings, the CPU the parts of the benchmark
used (the clients, the server, the upstream, the whole machine, from /proc), and everything
measured at one level of concurrency, with the `figures` of the run's JSON record."""

import time
from dataclasses import dataclass, field
from typing import Any

from bench.cpu import machine_cpu_seconds, process_cpu_seconds, tree_cpu_seconds
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
            tree_cpu_seconds(server_pid) or 0.0,
            process_cpu_seconds(upstream_pid) or 0.0,
            machine_cpu_seconds() or 0.0,
            time.perf_counter(),
        )


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
