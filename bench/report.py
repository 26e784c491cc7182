"""What every benchmark prints and records: its figures (rates, ratios, percentiles, a replay of
the log), tables of them, and a JSON result file with the settings, the machine and the package
versions."""

import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Self

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# -- figures ------------------------------------------------------------------------------------


class Rate(Protocol):
    @property
    def events_per_second(self) -> float: ...


class Rated:
    """A `Rate` for the figures that hold `events` and the `seconds` they took."""

    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def ratio(a: Rate, b: Rate) -> float:
    """a's events per second over b's (0 when b has none): the ratio rows' last column."""
    return a.events_per_second / b.events_per_second if b.events_per_second else 0.0


def throughput(events: int, seconds: float) -> dict[str, Any]:
    """`events`, `seconds` and `events_per_second`, as the JSON records them."""
    return {
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_second": round(events / seconds, 1) if seconds > 0 else 0.0,
    }


def nearest_rank(ordered: Sequence[float], percent: float) -> float:
    """The nearest-rank percentile of values sorted in ascending order."""
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Percentiles:
    """Nearest-rank percentiles of durations, in milliseconds."""

    samples: int
    p50: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Self:
        ordered = sorted(seconds)
        if not ordered:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        return cls(
            len(ordered),
            nearest_rank(ordered, 50) * 1000,
            nearest_rank(ordered, 99) * 1000,
            ordered[-1] * 1000,
            sum(ordered) / len(ordered) * 1000,
        )

    def figures(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "p50": round(self.p50, 2),
            "p99": round(self.p99, 2),
            "max": round(self.max, 2),
            "mean": round(self.mean, 2),
        }


class Lags(NamedTuple):
    """The median, the 99th percentile and the maximum of durations, in milliseconds (None when
    there are none). The 99th is the value at rank ⌊0.99 n⌋ (the lower of the two nearest
    ranks), as the `write`, `api`, `fanout` and `freshness` figures have always been taken."""

    p50: float | None
    p99: float | None
    max: float | None

    @classmethod
    def of(cls, seconds: Iterable[float], digits: int) -> "Lags":
        ordered = sorted(seconds)
        if not ordered:
            return cls(None, None, None)

        def ms(value: float) -> float:
            return round(1000 * value, digits)

        return cls(
            ms(statistics.median(ordered)),
            ms(ordered[max(0, int(len(ordered) * 0.99) - 1)]),
            ms(ordered[-1]),
        )


@dataclass(frozen=True)
class CatchUp(Rated):
    """One replay of the whole log: wall time, and the part of it spent reading the log."""

    events: int
    seconds: float
    read_seconds: float
    commits: int
    interruptions: int = 0
    """Times the server went away mid-run (a shared server restarted) and the batch was retried."""
    outage_seconds: float = 0.0
    """Time spent waiting for it to come back: left out of `seconds`."""

    def figures(self) -> dict[str, Any]:
        return {
            **throughput(self.events, self.seconds),
            "read_seconds": round(self.read_seconds, 3),
            "commits": self.commits,
            "interruptions": self.interruptions,
            "outage_seconds": round(self.outage_seconds, 3),
        }


# -- tables -------------------------------------------------------------------------------------


def print_columns(
    header: Sequence[str], cells: Iterable[Sequence[str]], *, left: Collection[int] = (0,)
) -> None:
    """A table with a rule under its header, each column as wide as its widest cell: the
    columns numbered in `left` aligned left, the others (figures) right."""
    rows = [tuple(header), *(tuple(c) for c in cells)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(
            v.ljust(w) if i in left else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        )

    print(line(rows[0]))
    print("  ".join("-" * w for w in widths))
    for row in rows[1:]:
        print(line(row))


@dataclass(frozen=True)
class Row(Rated):
    """One measured rate."""

    benchmark: str
    mode: str
    events: int
    seconds: float
    ratio: float | None = None
    """batched / baseline events per second; only on the batched row."""

    def figures(self) -> dict[str, Any]:
        return {**asdict(self), "events_per_second": round(self.events_per_second, 1)}


def print_table(rows: list[Row]) -> None:
    print_columns(
        ("benchmark", "mode", "events", "seconds", "events/s", "batched/baseline"),
        [
            (
                r.benchmark,
                r.mode,
                f"{r.events:,}",
                f"{r.seconds:,.2f}",
                f"{r.events_per_second:,.0f}",
                f"{r.ratio:,.1f}x" if r.ratio is not None else "",
            )
            for r in rows
        ],
        left=(0, 1),
    )


def log_rows(load: Row, reading: CatchUp, batch: int, idle: str) -> list[Row]:
    """The first rows of a table over a loaded log: the load, and reading the whole log doing
    `idle`."""
    return [load, Row("log read", f"{batch}/read, {idle}", reading.events, reading.seconds)]


@dataclass(kw_only=True)
class RunOutcome:
    """What a run keeps besides its figures: the servers it measured (for the JSON) and the
    problems it found, any of which makes the exit code 1."""

    servers: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.problems else 0

    def problem(self, text: str) -> str:
        """Count `text` as a problem of the run; return it (the status of a part skipped or
        failed)."""
        self.problems.append(text)
        return text


def print_problems(problems: Sequence[str]) -> bool:
    """The problems found, if any (they make the exit code 1); whether there were any."""
    if problems:
        print("PROBLEMS:\n  " + "\n  ".join(problems))
    return bool(problems)


# -- the JSON record ----------------------------------------------------------------------------


class Run:
    """One run of a benchmark: when it started and the machine's load average then (the
    machine may be shared: what else ran decides how far the figures carry); `record` writes
    its JSON result."""

    def __init__(self, benchmark: str) -> None:
        self.benchmark = benchmark
        self.started_at = now_iso()
        self.load_at_start = os.getloadavg()
        self._load_at_end: tuple[float, float, float] | None = None

    @property
    def load_at_end(self) -> tuple[float, float, float]:
        """The load average when the measuring ended (taken the first time it is asked for)."""
        if self._load_at_end is None:
            self._load_at_end = os.getloadavg()
        return self._load_at_end

    def load_line(self) -> str:
        def loads(averages: tuple[float, float, float]) -> str:
            return "/".join(f"{x:.1f}" for x in averages)

        return (
            f"load average (1/5/15 min): {loads(self.load_at_start)} at the start, "
            f"{loads(self.load_at_end)} at the end, on {os.cpu_count()} CPUs; whatever else "
            "runs slows every figure."
        )

    def machine(self) -> dict[str, Any]:
        return {
            **machine_info(),
            "load_average_at_start": [round(x, 2) for x in self.load_at_start],
            "load_average_at_end": [round(x, 2) for x in self.load_at_end],
        }

    def record(self, settings: dict[str, Any], **sections: Any) -> Path:
        """Write the result (the benchmark, when it ran, `settings`, the machine, then the
        `sections` in their order; a `machine` section replaces the machine's) and print where."""
        payload = {
            "benchmark": self.benchmark,
            "started_at": self.started_at,
            "finished_at": now_iso(),
            "settings": settings,
            "machine": self.machine(),
            **sections,
        }
        path = write_result(self.benchmark, payload)
        print(f"results: {path}")
        return path


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
    }
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for text in cpuinfo.read_text().splitlines():
            if text.startswith("model name"):
                info["cpu_model"] = text.split(":", 1)[1].strip()
                break
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for text in meminfo.read_text().splitlines():
            if text.startswith("MemTotal:"):
                info["memory_mib"] = int(text.split()[1]) // 1024
                break
    return info


def package_versions(*names: str) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_result(benchmark: str, payload: dict[str, Any]) -> Path:
    """Write `bench/results/<benchmark>-<UTC timestamp>.json`; return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{benchmark}-{stamp}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
