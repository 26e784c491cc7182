"""Catch-up rate of the projections: batched (one transaction / bulk request per batch) against
a baseline in the same run (the same events, one transaction / bulk request per event).

Loads a realistic log into a scratch database (tenants, users, chats, alternating user and
assistant messages with token counts), then replays it from position 0 into the Postgres read
models and, when `projections/search_index.py` exists, into Elasticsearch. See bench/README.md.

This module owns the options, the run (what is measured in which order, what a failure of the
Elasticsearch part leaves) and its table and printout; the parts it measures are
bench/projections_read_models.py and bench/projections_search.py, the log is bench/database.py's.
"""

import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from elasticsearch import Elasticsearch
from psycopg_pool import ConnectionPool

from bench import options
from bench.database import (
    Loaded,
    LogShape,
    event_store,
    load_and_read,
    postgres_info,
    run_id,
    scratch_database,
)
from bench.options import option
from bench.projections_read_models import bench_read_models, verify_read_models
from bench.projections_search import (
    bench_search_index,
    elasticsearch_version,
    verify_search_index,
)
from bench.report import (
    CatchUp,
    Row,
    Run,
    RunOutcome,
    log_rows,
    machine_info,
    package_versions,
    print_problems,
    print_table,
    ratio,
    throughput,
)
from bench.services import elasticsearch_url
from infra.eventstore.event_store import EventStore
from infra.postgres import PostgresTarget
from infra.settings import Settings

log = logging.getLogger("bench.projections")

DESCRIPTION = "Projection catch-up rate: batched vs one transaction per event."


@dataclass(frozen=True)
class Options:
    messages: int = options.messages(200_000, "messages to load")
    chats: int = options.chats()
    tenants: int = options.tenants()
    batch: int = options.batch()
    keep: bool = options.keep("the bench database")
    search: bool = option(True, "skip Elasticsearch", flag="--no-search")
    seed: int = options.seed()

    def __post_init__(self) -> None:
        options.check_log_shape(self.chats, self.tenants)

    def log_shape(self) -> LogShape:
        return LogShape(self.messages, self.chats, self.tenants, self.seed)


# -- main ------------------------------------------------------------------------------------


@dataclass
class Outcome(RunOutcome):
    """Everything one run measured and checked."""

    loaded: Loaded
    reading: CatchUp
    pg_batched: CatchUp
    pg_per_event: CatchUp
    verification: dict[str, Any]
    search_status: str = "skipped: --no-search"
    search_runs: dict[str, CatchUp] = field(default_factory=dict)
    search_documents: dict[str, dict[str, int]] = field(default_factory=dict)


def measure(opts: Options, settings: Settings, target: PostgresTarget) -> Outcome:
    with event_store(target) as (store, pool):
        loaded, reading = load_and_read(store, target, opts.log_shape(), batch=opts.batch)
        pg_batched, pg_per_event = bench_read_models(store, pool, target, opts.batch)
        verification = verify_read_models(target, loaded.expected, store.head())
        outcome = Outcome(loaded, reading, pg_batched, pg_per_event, verification)
        outcome.problems += verification["problems"]
        outcome.servers["postgres"] = postgres_info(target)
        if opts.search:
            search_index(store, pool, opts, settings, target, outcome)
        return outcome


def search_index(
    store: EventStore,
    pool: ConnectionPool,
    opts: Options,
    settings: Settings,
    target: PostgresTarget,
    outcome: Outcome,
) -> None:
    """The Elasticsearch part, recorded in `outcome`; its failure keeps the figures so far."""
    if importlib.util.find_spec("projections.search_index") is None:
        outcome.search_status = "skipped: projections/search_index.py does not exist yet"
        return
    url = elasticsearch_url(settings)
    client = Elasticsearch(url, request_timeout=120)
    try:
        outcome.servers["elasticsearch"] = elasticsearch_version(client)
        if outcome.servers["elasticsearch"] is None:
            outcome.search_status = outcome.problem(f"skipped: no Elasticsearch answers at {url}")
            return
        try:
            runs, documents = bench_search_index(store, pool, client, opts.batch, run_id(target))
        except Exception as e:
            log.exception("the Elasticsearch benchmark failed")
            outcome.search_status = outcome.problem(f"failed: {type(e).__name__}: {e}")
            return
        outcome.search_status = "measured"
        outcome.search_runs, outcome.search_documents = runs, documents
        outcome.problems += verify_search_index(documents, outcome.loaded.expected)
    finally:
        client.close()


def main(argv: Sequence[str]) -> int:
    opts = options.parse(Options, argv, "projections", DESCRIPTION)
    run = Run("projections")
    with scratch_database(keep=opts.keep) as target:
        outcome = measure(opts, Settings(), target)
    rows = table_rows(outcome, opts)
    print_report(outcome, rows, opts)
    run.record(
        {
            **asdict(opts),
            **opts.log_shape().settings(),
            "database": target.dbname,
        },
        machine=machine_info(),
        servers=outcome.servers,
        packages=package_versions("eventsourcing", "psycopg", "elasticsearch"),
        load=outcome.loaded.figures(),
        log_read=throughput(outcome.reading.events, outcome.reading.seconds),
        postgres_read_models={
            **_comparison(outcome.pg_batched, outcome.pg_per_event),
            "verification": outcome.verification,
        },
        elasticsearch={
            "status": outcome.search_status,
            **(
                _comparison(outcome.search_runs["batched"], outcome.search_runs["per-event"])
                if outcome.search_runs
                else {}
            ),
            "documents": outcome.search_documents,
        },
        table=[r.figures() for r in rows],
        problems=outcome.problems,
    )
    return outcome.exit_code


def table_rows(outcome: Outcome, opts: Options) -> list[Row]:
    rows = [
        *log_rows(outcome.loaded.row(), outcome.reading, opts.batch, "no projection"),
        *_pair("postgres read models", "tx", opts.batch, outcome.pg_batched, outcome.pg_per_event),
    ]
    if outcome.search_runs:
        runs = outcome.search_runs
        rows += _pair("elasticsearch", "bulk", opts.batch, runs["batched"], runs["per-event"])
    return rows


def print_report(outcome: Outcome, rows: list[Row], opts: Options) -> None:
    print()
    print_table(rows)
    print()
    print(
        "seconds: wall time of replaying the whole log from position 0, reading it in batches "
        f"of {opts.batch} (reading alone: {outcome.reading.seconds:.2f}s), decoding, applying "
        "and committing; per event reads the same batches and commits each event on its own."
    )
    if outcome.search_runs:
        print("elasticsearch: a commit is a bulk request acknowledged, then the position stored.")
        for mode, r in outcome.search_runs.items():
            if r.interruptions:
                print(
                    f"elasticsearch {mode}: the server went away {r.interruptions} time(s); "
                    f"{r.outage_seconds:.1f}s of waiting for it are left out."
                )
    else:
        print(f"elasticsearch: {outcome.search_status}")
    if not print_problems(outcome.problems):
        expected = outcome.loaded.expected
        print(
            "verified: every copy holds the rows, usage sums and documents the load wrote "
            f"({expected.messages:,} messages in {expected.chats:,} chats)."
        )


def _comparison(batched: CatchUp, per_event: CatchUp) -> dict[str, Any]:
    return {
        "batched": batched.figures(),
        "per_event": per_event.figures(),
        "ratio_batched_to_per_event": round(ratio(batched, per_event), 2),
    }


def _pair(benchmark: str, unit: str, batch: int, batched: CatchUp, per_event: CatchUp) -> list[Row]:
    return [
        Row(
            benchmark,
            f"batched ({batch}/{unit})",
            batched.events,
            batched.seconds,
            ratio(batched, per_event),
        ),
        Row(benchmark, f"per event (1/{unit})", per_event.events, per_event.seconds),
    ]
