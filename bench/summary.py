"""`python -m bench all` (`parley bench all`): every benchmark behind issue 16's targets, then
one table of the targets and one of the CPU each kind of process used.

Runs, one after the other, each as `python -m bench NAME` (its own table printed as it goes, its
JSON written to bench/results/): `write` (durable commands at 1 and 64 callers), `api` (the
page of 50 messages and the insert of one message, Parley next to a plain strawberry peer and a
bare FastAPI limit, driven by wrk), `gateway` (first token at 100 and 1,000 concurrent
streaming chats next to the bare SDK) and `fanout` (10,000 subscribers on one API process).
Meanwhile it samples the CPU time of every process on the machine (bench/machine_cpu.py), so
the table says which process used how much of the two cores: the load generators share the
machine with the servers.

Then it reads the JSON each benchmark wrote in this run and prints, for every target: what was
measured, the target, whether it is met, and the ratio to the run's own baseline where the
benchmark has one. Writes bench/results/all-<time>.json with both tables.
"""

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from api.topology import default_api_processes
from bench import options
from bench.machine_cpu import MachineCpu
from bench.options import at_least_one, option
from bench.report import RESULTS_DIR, Run, print_columns
from testbed.processes import ROOT


@dataclass(frozen=True)
class Options:
    only: str = option(
        "write,api,gateway,fanout", "the benchmarks to run, separated by commas (in this order)"
    )
    api_seconds: int = option(15, "bench api: seconds per scenario and server", at_least_one)
    fanout_clients: int = option(10_000, "bench fanout: WebSocket subscribers", at_least_one)
    gateway_concurrency: str = option("100,1000", "bench gateway: concurrent chats per step")


@dataclass(frozen=True)
class Target:
    benchmark: str
    figure: str
    measured: str
    target: str
    met: bool | None
    baseline: str = ""
    """The ratio to the run's own baseline (peer, bare SDK, plain eventsourcing), if any."""


def steps(opts: Options) -> list[tuple[str, list[str]]]:
    """(benchmark, its options) in the order they run."""
    processes = default_api_processes()
    every = {
        "write": ["--callers", "1,64"],
        # The deployed topology, as `parley serve` runs by default: one API process per core.
        "api": ["--seconds", str(opts.api_seconds), "--serve-workers", str(processes)],
        "gateway": ["--concurrency", opts.gateway_concurrency],
        "fanout": ["--clients", str(opts.fanout_clients)],
    }
    wanted = [name.strip() for name in opts.only.split(",") if name.strip()]
    unknown = set(wanted) - set(every)
    if unknown:
        raise ValueError(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    return [(name, every[name]) for name in wanted]


def newest_result(benchmark: str, since: float) -> dict[str, Any] | None:
    """The JSON the benchmark wrote after `since` (a time.time()), None if it wrote none."""
    paths = [p for p in RESULTS_DIR.glob(f"{benchmark}-*.json") if p.stat().st_mtime >= since - 1]
    if not paths:
        return None
    return dict(json.loads(max(paths, key=lambda p: p.stat().st_mtime).read_text()))


# -- the targets of each benchmark's result ---------------------------------------------------


def _figure(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 10 else f"{value:,.0f}"


def _met(value: float, op: str, bound: float) -> bool:
    return value >= bound if op == ">=" else value < bound


def write_targets(result: dict[str, Any]) -> list[Target]:
    by = {(s["mode"], s["callers"]): s for s in result.get("steps", [])}
    parley, baseline = by.get(("parley", 64)), by.get(("baseline", 64))
    ceiling = next((s for s in result.get("steps", []) if s["mode"] == "ceiling"), None)
    if parley is None or baseline is None or ceiling is None:
        return []
    rate = parley["commands_per_second"]
    to_baseline = rate / baseline["commands_per_second"]
    to_ceiling = rate / ceiling["commands_per_second"]
    return [
        Target(
            "write",
            "durable commands, 64 callers: parley / one save per command",
            f"{to_baseline:.2f}x ({rate:,.0f}/s)",
            ">= 5x",
            _met(to_baseline, ">=", 5),
            f"baseline {baseline['commands_per_second']:,.0f}/s",
        ),
        Target(
            "write",
            "durable commands, 64 callers: parley / 200 events per save",
            f"{to_ceiling:.1%}",
            ">= 70 %",
            _met(to_ceiling, ">=", 0.7),
            f"ceiling {ceiling['commands_per_second']:,.0f}/s",
        ),
    ]


def api_targets(result: dict[str, Any]) -> list[Target]:
    found = []
    for goal in result.get("targets", []):
        found.append(
            Target(
                "api",
                f"{goal['scenario']}: {goal['figure']}",
                _figure(goal["measured"]),
                goal["target"] or "(reported)",
                goal["met"],
            )
        )
    return found


def gateway_targets(result: dict[str, Any]) -> list[Target]:
    """First token added by Parley over the bare SDK on the same stand-in, per step."""
    found = []
    for step in result.get("steps", []):
        chats = step["concurrent_chats"]
        parley, bare = step["parley"]["ttft_ms"], step["baseline"]["ttft_ms"]
        bound = 100 if chats <= 100 else 500
        for q in ("p50", "p99"):
            added = parley[q] - bare[q]
            found.append(
                Target(
                    "gateway",
                    f"first token added, {chats:,} streaming chats, {q}",
                    f"+{added:,.0f} ms",
                    f"< +{bound} ms" if q == "p99" else "(reported)",
                    _met(added, "<", bound) if q == "p99" else None,
                    f"bare SDK {bare[q]:,.0f} ms, parley {parley[q]:,.0f} ms",
                )
            )
    return found


def fanout_targets(result: dict[str, Any]) -> list[Target]:
    figures = result.get("figures", {})
    if "delivery_ms_p99" not in figures:
        return []
    clients = figures.get("clients")
    p99, kib = figures["delivery_ms_p99"], figures["kib_per_connection"]
    return [
        Target(
            "fanout",
            f"{clients:,} subscribers on one API process: delivery p99",
            f"{p99:,.0f} ms",
            "< 100 ms",
            _met(p99, "<", 100),
        ),
        Target(
            "fanout",
            f"{clients:,} subscribers on one API process: memory each",
            f"{kib:.0f} KiB",
            "< 64 KiB",
            _met(kib, "<", 64),
        ),
    ]


TARGETS: dict[str, Callable[[dict[str, Any]], list[Target]]] = {
    "write": write_targets,
    "api": api_targets,
    "gateway": gateway_targets,
    "fanout": fanout_targets,
}


# -- the run --------------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    opts = options.parse(Options, argv, "all", __doc__)
    try:
        plan = steps(opts)
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    run = Run("all")
    targets: list[Target] = []
    cpu: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for name, args in plan:
        print(f"\n== bench {name} {' '.join(args)}", flush=True)
        since = time.time()
        sampler = MachineCpu().start()
        code = subprocess.call([sys.executable, "-m", "bench", name, *args], cwd=ROOT)
        sampler.stop()
        cpu[name] = {
            "wall_seconds": round(sampler.wall_seconds, 1),
            "cpu_seconds": sampler.seconds_by_group(),
        }
        result = newest_result(name, since)
        if code != 0 or result is None:
            failed.append(f"{name} (exit code {code}{', no result' if result is None else ''})")
        if result is not None:
            targets.extend(TARGETS[name](result))
    print_summary(targets, cpu, failed)
    print(run.load_line())
    run.record(
        asdict(opts),
        targets=[asdict(t) for t in targets],
        cpu=cpu,
        failed=failed,
    )
    return 1 if failed else 0


def print_summary(targets: list[Target], cpu: dict[str, dict[str, Any]], failed: list[str]) -> None:
    print("\n== issue 16's targets, measured in this run\n")

    def verdict(met: bool | None) -> str:
        return "-" if met is None else "met" if met else "MISSED"

    print_columns(
        ("benchmark", "figure", "measured", "target", "", "baseline"),
        [
            (t.benchmark, t.figure, t.measured, t.target, verdict(t.met), t.baseline)
            for t in targets
        ],
        left=(0, 1, 3, 4, 5),
    )
    print("\n== CPU seconds by process during each benchmark (2 cores: wall x 2 is the machine)\n")
    rows = []
    for name, used in cpu.items():
        wall = used["wall_seconds"]
        for group, seconds in used["cpu_seconds"].items():
            rows.append((name, group, f"{seconds:,.1f}", f"{seconds / wall:.0%}" if wall else ""))
        rows.append((name, "(wall time)", f"{wall:,.1f}", ""))
    print_columns(("benchmark", "process", "CPU s", "of one core"), rows, left=(0, 1))
    if failed:
        print("\nFAILED: " + ", ".join(failed))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
