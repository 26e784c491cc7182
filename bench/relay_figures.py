"""The `relay` benchmark's figures: the wall time of each batch of a pass over the log (and the
`handle` wrapper that records it), a `parley audit verify` run, building the relay's records, and
everything the Kafka part measured, each with the `figures` of the run's JSON record."""

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Self

from eventsourcing.persistence import Notification

from bench.database import Handle
from bench.report import CatchUp, Percentiles, ratio, throughput
from infra.audit.report import Report


@dataclass(frozen=True)
class Latency(Percentiles):
    """Per-batch wall time, in milliseconds."""

    mean_by_quarter: tuple[float, ...] = ()
    """Mean of each quarter of the run, in log order: a rise means cost grows with the log."""

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Self:
        quarters = [seconds[len(seconds) * q // 4 : len(seconds) * (q + 1) // 4] for q in range(4)]
        return replace(
            super().of(seconds),
            mean_by_quarter=tuple(sum(q) / len(q) * 1000 for q in quarters if q),
        )

    def figures(self) -> dict[str, Any]:
        spread = super().figures()
        return {
            "batches": spread.pop("samples"),
            **spread,
            "mean_by_quarter": [round(m, 2) for m in self.mean_by_quarter],
        }


@dataclass(frozen=True)
class Measured:
    """One pass over the whole log, with the wall time of each batch."""

    run: CatchUp
    latency: Latency

    def figures(self) -> dict[str, Any]:
        if not self.latency.samples:  # one wait at the end: no batches to time
            return self.run.figures()
        return {**self.run.figures(), "batch_latency_ms": self.latency.figures()}


class Timed:
    """A `handle` that records how long each batch took."""

    def __init__(self, handle: Handle) -> None:
        self._handle = handle
        self.seconds: list[float] = []

    def __call__(self, batch: Sequence[Notification]) -> None:
        started = time.perf_counter()
        self._handle(batch)
        self.seconds.append(time.perf_counter() - started)

    def measured(self, run: CatchUp) -> Measured:
        return Measured(run, Latency.of(self.seconds))


@dataclass(frozen=True)
class Verified:
    """One `parley audit verify` over the whole history."""

    source: str
    seconds: float
    report: Report

    @property
    def events(self) -> int:
        return self.report.events_checked

    def figures(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "checkpoints": self.report.checkpoints_checked,
            **throughput(self.events, self.seconds),
            "ok": self.report.ok,
            "findings": len(self.report.findings),
            "unsealed": self.report.unsealed,
            "unchained": self.report.unchained,
        }

    def problems(self) -> list[str]:
        """Its findings (the first 20), and a verification that checked nothing."""
        problems = [f"verify {self.source}: {f}" for f in self.report.findings[:20]]
        if self.report.events_checked == 0:
            problems.append(f"verify {self.source} checked no events")
        return problems


@dataclass(frozen=True)
class Encoding:
    """Building the relay's records without sending them: CPU time, in two parts."""

    events: int
    decode_seconds: float
    """`EventStore.decode` (for the tenant and the time of each event)."""
    encode_seconds: float
    """`encode_record` (event id, envelope, headers)."""
    read_seconds: float
    """Reading the log, apart from both."""

    @property
    def seconds(self) -> float:
        return self.decode_seconds + self.encode_seconds

    def figures(self) -> dict[str, Any]:
        return {
            **throughput(self.events, self.seconds),
            "decode_seconds": round(self.decode_seconds, 3),
            "encode_seconds": round(self.encode_seconds, 3),
            "read_seconds": round(self.read_seconds, 3),
        }


@dataclass
class KafkaFigures:
    """The Kafka part: the relay, the bare producer's two baselines, verifying the topic."""

    relay: Measured
    checkpoints_relayed: int
    encoding: Encoding
    baseline_batched: Measured
    baseline_streamed: Measured
    verified: Verified
    topic_records: dict[str, int]

    def figures(self) -> dict[str, Any]:
        return {
            "relay": {**self.relay.figures(), "checkpoints": self.checkpoints_relayed},
            "encoding": self.encoding.figures(),
            "baseline_batched": self.baseline_batched.figures(),
            "baseline_streamed": self.baseline_streamed.figures(),
            "ratio_relay_to_baseline_batched": round(
                ratio(self.relay.run, self.baseline_batched.run), 3
            ),
            "ratio_relay_to_baseline_streamed": round(
                ratio(self.relay.run, self.baseline_streamed.run), 3
            ),
            "verify_kafka": self.verified.figures(),
            "topic_records": self.topic_records,
        }
