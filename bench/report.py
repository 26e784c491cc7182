"""What every benchmark prints and records: a table of figures and a JSON result file."""

import json
import os
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Row:
    """One measured figure."""

    benchmark: str
    mode: str
    events: int
    seconds: float
    ratio: float | None = None
    """batched / baseline events per second; only on the batched row."""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def print_table(rows: list[Row]) -> None:
    header = ("benchmark", "mode", "events", "seconds", "events/s", "batched/baseline")
    cells = [
        (
            r.benchmark,
            r.mode,
            f"{r.events:,}",
            f"{r.seconds:,.2f}",
            f"{r.events_per_second:,.0f}",
            f"{r.ratio:,.1f}x" if r.ratio is not None else "",
        )
        for r in rows
    ]
    widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(len(header))]
    numeric = {2, 3, 4, 5}

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(
            v.rjust(w) if i in numeric else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        )

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print(line(c))


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
