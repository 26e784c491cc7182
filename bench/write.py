"""`python -m bench write`: durable single-event commands per second on the write path.

Three ways of writing the same kind of event, at 1, 16, 64 and 256 concurrent callers, in one run
against one PostgreSQL server (fsync and synchronous_commit as the server has them):

- parley: `sendMessage` through the command layer (`MessageBus.handle(SendMessage)`: the caller's
  user and tenant checked, the chat loaded, the event encrypted, then saved), with group commit
  (the default write path);
- baseline: the plain `eventsourcing` application, one aggregate saved per call (what a command
  layer without group commit gets at best: no loading, no checks, no encryption);
- ceiling: the same events saved 200 aggregates per `save()` by one caller.

Prints commands/s and p50/p99 latency per step, the parley/baseline ratio at each step and the
parley/ceiling ratio, and writes bench/results/write-<time>.json.
"""

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench import options
from bench.database import postgres_info, scratch_database
from bench.options import at_least_one, concurrency_steps, option
from bench.report import Lags, Run, package_versions, print_columns
from commands.bus import MessageBus
from commands.messages import CreateTenant, SendMessage, StartChat
from domain.actor import Actor
from domain.user import Role
from infra.eventstore.data_keys import DataKeys
from infra.eventstore.event_store import open_event_store
from infra.identity.master_key import MasterKey
from infra.postgres import PostgresTarget

CEILING_BATCH = 200
MESSAGES_PER_CHAT = 40
"""A caller moves to a fresh chat after this many messages (long chats cost more to load)."""


@dataclass(frozen=True)
class Options:
    callers: tuple[int, ...] = option((1, 16, 64, 256), "concurrency steps", concurrency_steps)
    commands: int = option(3000, "commands per step", at_least_one)
    """Commands per step (at least 20 per caller)."""
    keep: bool = options.keep()


@dataclass
class Step:
    mode: str
    callers: int
    commands: int
    seconds: float
    latencies: list[float] = field(repr=False)

    @property
    def rate(self) -> float:
        return self.commands / self.seconds

    def latency(self) -> Lags:
        return Lags.of(self.latencies, 2)

    def figures(self) -> dict[str, Any]:
        latency = self.latency()
        return {
            "mode": self.mode,
            "callers": self.callers,
            "commands": self.commands,
            "seconds": round(self.seconds, 3),
            "commands_per_second": round(self.rate, 1),
            "latency_ms_p50": latency.p50,
            "latency_ms_p99": latency.p99,
        }


def run_step(
    mode: str, callers: int, commands: int, one: Callable[[int], Callable[[], None]]
) -> Step:
    """`one(caller)` gives that caller's command function; every caller runs its share."""
    per_caller = max(20, commands // callers)
    start = threading.Barrier(callers + 1)
    latencies: list[list[float]] = [[] for _ in range(callers)]

    def caller(n: int) -> None:
        command = one(n)
        start.wait()
        for _ in range(per_caller):
            t = time.perf_counter()
            command()
            latencies[n].append(time.perf_counter() - t)

    with ThreadPoolExecutor(callers) as pool:
        futures = [pool.submit(caller, n) for n in range(callers)]
        start.wait()
        began = time.perf_counter()
        for f in futures:
            f.result()
        seconds = time.perf_counter() - began
    flat = [x for xs in latencies for x in xs]
    return Step(mode, callers, len(flat), seconds, flat)


# -- parley: the command layer -------------------------------------------------------------


class Parley:
    def __init__(self, target: PostgresTarget) -> None:
        keys = DataKeys.standalone(target.conninfo(), MasterKey(os.urandom(32)))
        self.store = open_event_store(
            target,
            create_tables=False,
            pool_size=20,
            keys=keys,
            group_commit=True,
            aggregate_cache=int(os.environ.get("BENCH_AGGREGATE_CACHE", "10000")),
        )
        self.bus = MessageBus(self.store)
        slug = f"bench-{uuid.uuid4().hex[:8]}"
        created = self.bus.handle(
            CreateTenant(
                name="Bench",
                slug=slug,
                admin_email=f"admin@{slug}.example",
                admin_password="bench-password-123",
            )
        )
        self.actor = Actor(created.admin_user_id, created.tenant_id, Role.TENANT_ADMIN)

    def caller(self, n: int) -> Callable[[], None]:
        state = {"chat": self._chat(), "sent": 0}

        def send() -> None:
            if state["sent"] == MESSAGES_PER_CHAT:
                state["chat"], state["sent"] = self._chat(), 0
            self.bus.handle(
                SendMessage(chat_id=state["chat"], content="hello from the benchmark"), self.actor
            )
            state["sent"] += 1

        return send

    def _chat(self) -> Any:
        return self.bus.handle(StartChat(title="bench"), self.actor).id

    def close(self) -> None:
        self.store.close()


# -- baseline and ceiling: the plain eventsourcing application -----------------------------


class Conversation(Aggregate):
    @event("Started")
    def __init__(self) -> None:
        self.count = 0

    @event("Posted")
    def post(self, content: str) -> None:
        self.count += 1


class PlainApp(Application[uuid.UUID]):
    name = "bench_plain"


def plain_app(target: PostgresTarget) -> PlainApp:
    env = target.eventsourcing_env() | {
        "CREATE_TABLE": "y",
        "POSTGRES_POOL_SIZE": "20",
        "POSTGRES_MAX_OVERFLOW": "300",
    }
    return PlainApp(env=env)


def baseline_caller(app: PlainApp) -> Callable[[int], Callable[[], None]]:
    def one(n: int) -> Callable[[], None]:
        aggregate = Conversation()
        app.save(aggregate)

        def post() -> None:
            aggregate.post(content="hello from the benchmark")
            app.save(aggregate)

        return post

    return one


def ceiling(app: PlainApp, commands: int) -> Step:
    aggregates = [Conversation() for _ in range(CEILING_BATCH)]
    app.save(*aggregates)
    rounds = max(1, commands // CEILING_BATCH)
    latencies = []
    began = time.perf_counter()
    for _ in range(rounds):
        for a in aggregates:
            a.post(content="hello from the benchmark")
        t = time.perf_counter()
        app.save(*aggregates)
        latencies.append(time.perf_counter() - t)
    seconds = time.perf_counter() - began
    return Step("ceiling", 1, rounds * CEILING_BATCH, seconds, latencies)


# -- main ----------------------------------------------------------------------------------


def main(argv: Sequence[str]) -> int:
    opts = options.parse(Options, argv, "write", __doc__)
    with scratch_database(keep=opts.keep) as target:
        run = Run("write")
        steps, commit = measure(target, opts)
    ratios = print_report(steps)
    run.record(
        {
            **asdict(opts),
            "postgres_fsync": commit["fsync"],
            "postgres_synchronous_commit": commit["synchronous_commit"],
            "group_commit": "on (max 200 events, no window)",
            "messages_per_chat": MESSAGES_PER_CHAT,
            "ceiling_batch": CEILING_BATCH,
            "load_generator": "threads in the benchmark process, which also runs the command "
            "layer (as an API process does); PostgreSQL runs on the same machine",
        },
        packages=package_versions("eventsourcing", "psycopg"),
        steps=[s.figures() for s in steps],
        ratios=ratios,
    )
    return 0


def measure(target: PostgresTarget, opts: Options) -> tuple[list[Step], dict[str, str]]:
    """Every step, parley and baseline at each number of callers, then the ceiling; and the
    server's settings that decide what a commit costs."""
    steps: list[Step] = []
    parley: Parley | None = None
    plain: PlainApp | None = None
    try:
        parley, plain = Parley(target), plain_app(target)
        commit = postgres_info(target, ("fsync", "synchronous_commit"))
        for callers in opts.callers:
            for mode, one in (("parley", parley.caller), ("baseline", baseline_caller(plain))):
                step = run_step(mode, callers, opts.commands, one)
                steps.append(step)
                print(
                    f"{mode:>8} {callers:>4} callers: {step.rate:8,.0f} commands/s",
                    file=sys.stderr,
                )
        steps.append(ceiling(plain, opts.commands * 2))
    finally:
        if parley is not None:
            parley.close()
        if plain is not None:
            plain.close()
    return steps, commit


def print_report(steps: list[Step]) -> dict[str, float]:
    cells = []
    for s in steps:
        latency = s.latency()
        cells.append(
            (s.mode, str(s.callers), f"{s.commands:,}", f"{s.rate:,.0f}")
            + (str(latency.p50), str(latency.p99))
        )
    print_columns(("mode", "callers", "commands", "cmd/s", "p50 ms", "p99 ms"), cells)
    ratios: dict[str, float] = {}
    by = {(s.mode, s.callers): s for s in steps}
    ceiling_rate = next(s.rate for s in steps if s.mode == "ceiling")
    for (mode, callers), s in by.items():
        if mode == "parley" and ("baseline", callers) in by:
            ratios[f"parley/baseline at {callers}"] = round(
                s.rate / by["baseline", callers].rate, 2
            )
            ratios[f"parley/ceiling at {callers}"] = round(s.rate / ceiling_rate, 3)
    for name, value in ratios.items():
        print(f"{name}: {value}")
    return ratios
