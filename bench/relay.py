"""The audit trail's throughput: chaining the log, relaying it to Kafka (acknowledged) next to a
baseline in the same run (a bare kafka-python producer sending the same records), and verifying
the history in Postgres and on the topic.

Loads a realistic log into a scratch database (bench/database.py's loader), chains and seals it
with the `AuditLedger`, relays it with the `KafkaRelay` into throw-away topics, then runs
`verify_database` and `verify_kafka` over the whole history. See bench/README.md.

This module owns the options, the Postgres part (the ledger, `verify_database`), the run (what is
measured in which order, what a failure of the Kafka part leaves) and its table and printout; the
Kafka part is bench/relay_kafka.py, the figures bench/relay_figures.py.
"""

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg_pool import ConnectionPool

from api.progress import ProgressBar
from bench import options
from bench.database import (
    Loaded,
    LogShape,
    catch_up,
    event_store,
    load_and_read,
    postgres_info,
    run_id,
    scratch_database,
    vacuum,
)
from bench.options import at_least_one, option
from bench.relay_figures import KafkaFigures, Measured, Timed, Verified
from bench.relay_kafka import (
    BASELINE_PRODUCER,
    Topics,
    bench_kafka,
    delete_topics,
    kafka_reachable,
)
from bench.report import (
    CatchUp,
    Row,
    Run,
    RunOutcome,
    log_rows,
    package_versions,
    print_problems,
    print_table,
    ratio,
)
from bench.services import kafka_bootstrap, local_kafka
from infra.audit.chain import SigningKey
from infra.audit.sources import verify_database
from infra.eventstore.event_store import EventStore
from infra.messaging.kafka_relay import RelaySettings
from infra.postgres import PostgresTarget
from infra.settings import Settings
from projections.audit_ledger import AuditLedger

log = logging.getLogger("bench.relay")

DESCRIPTION = "Audit ledger, Kafka relay (vs a bare kafka-python producer) and verify rates."


@dataclass(frozen=True)
class Options:
    events: int = option(100_000, "events to load (tenants, users and chats included)")
    chats: int = options.chats()
    tenants: int = options.tenants()
    batch: int = options.batch()
    checkpoint_events: int = option(1_000, "events per signed checkpoint", at_least_one)
    partitions: int = option(6, "partitions of the event topics", at_least_one)
    keep: bool = options.keep("the bench database and topics")
    seed: int = options.seed()

    def __post_init__(self) -> None:
        options.check_log_shape(self.chats, self.tenants)
        messages = self.log_shape().messages
        if messages < 1:
            fixed = self.events - messages
            raise ValueError(
                f"--events must exceed {fixed:,} (tenants, users and chats) to hold messages"
            )

    def log_shape(self) -> LogShape:
        """The generated log, with as many messages as make `events` in all."""
        shape = LogShape(messages=0, chats=self.chats, tenants=self.tenants, seed=self.seed)
        return replace(shape, messages=self.events - shape.events)


# -- Postgres: the ledger and verify ----------------------------------------------------------


def chain_log(
    store: EventStore, pool: ConnectionPool, key: SigningKey, opts: Options
) -> tuple[Measured, int]:
    """Chain and seal the whole log from position 0; return the run and the checkpoints."""
    ledger = AuditLedger(store, pool, key, checkpoint_events=opts.checkpoint_events)
    handle = Timed(ledger.handle)
    run = catch_up(store, handle, batch=opts.batch, per_event=False, label="audit ledger")
    with pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM audit_checkpoints").fetchone()
    return handle.measured(run), int(row[0]) if row else 0


def verify_db(pool: ConnectionPool, keys: dict[str, bytes]) -> Verified:
    """`parley audit verify` (the database) over the whole history."""
    bar = ProgressBar("verify database")
    with pool.connection() as conn:
        started = time.perf_counter()
        report = verify_database(conn, keys, progress=bar.update)
        return Verified("db", time.perf_counter() - started, report)


# -- main ------------------------------------------------------------------------------------


@dataclass
class Outcome(RunOutcome):
    """Everything one run measured and checked."""

    loaded: Loaded
    reading: CatchUp
    ledger: Measured
    checkpoints: int
    verified_db: Verified
    kafka_status: str = "not run"
    kafka: KafkaFigures | None = None


def measure(opts: Options, settings: Settings, target: PostgresTarget, bootstrap: str) -> Outcome:
    key = SigningKey(Ed25519PrivateKey.generate())  # throw-away: the run's checkpoints only
    keys = {key.key_id: key.public_bytes}  # trusted independently, like --public-key
    with event_store(target) as (store, pool):
        loaded, reading = load_and_read(store, target, opts.log_shape(), batch=opts.batch)
        ledger, checkpoints = chain_log(store, pool, key, opts)
        vacuum(target, "audit_chain")
        verified_db = verify_db(pool, keys)
        outcome = Outcome(loaded, reading, ledger, checkpoints, verified_db)
        outcome.servers["postgres"] = postgres_info(target)
        outcome.problems += verified_db.problems()
        if loaded.events != opts.events:
            outcome.problems.append(f"the load wrote {loaded.events} events, not {opts.events}")
        measure_kafka(store, pool, keys, opts, settings, target, bootstrap, outcome)
        return outcome


def measure_kafka(
    store: EventStore,
    pool: ConnectionPool,
    keys: dict[str, bytes],
    opts: Options,
    settings: Settings,
    target: PostgresTarget,
    bootstrap: str,
    outcome: Outcome,
) -> None:
    """The Kafka part, recorded in `outcome`; its failure keeps the figures so far."""
    if not kafka_reachable(bootstrap):
        outcome.kafka_status = outcome.problem(f"skipped: no Kafka answers at {bootstrap}")
        return
    if bootstrap == local_kafka(settings).address:
        outcome.servers["kafka"] = settings.services_kafka_version
    topics = Topics.for_run(run_id(target))
    relay_settings = RelaySettings(
        bootstrap_servers=bootstrap,
        topic=topics.events,
        checkpoint_topic=topics.checkpoints,
        partitions=opts.partitions,
        replication_factor=settings.kafka_replication_factor,
        timeout_seconds=settings.kafka_timeout_seconds,
    )
    try:
        figures = bench_kafka(store, pool, keys, opts.batch, relay_settings, topics)
    except Exception as e:
        log.exception("the Kafka benchmark failed")
        outcome.kafka_status = outcome.problem(f"failed: {type(e).__name__}: {e}")
        return
    finally:
        if opts.keep:
            print(f"kept topics {', '.join(topics.all())}", file=sys.stderr)
        else:
            delete_topics(bootstrap, topics.all())
    outcome.kafka_status, outcome.kafka = "measured", figures
    outcome.problems += figures.verified.problems()
    outcome.problems += [
        f"topic {topic} holds {n} records, the log {outcome.loaded.events}"
        for topic, n in figures.topic_records.items()
        if n != outcome.loaded.events
    ]
    if figures.checkpoints_relayed != outcome.checkpoints:
        outcome.problems.append(
            f"{figures.checkpoints_relayed} checkpoints relayed, {outcome.checkpoints} sealed"
        )


def main(argv: Sequence[str]) -> int:
    opts = options.parse(Options, argv, "relay", DESCRIPTION)
    settings = Settings()
    bootstrap = kafka_bootstrap(settings)
    run = Run("relay")
    with scratch_database(keep=opts.keep) as target:
        outcome = measure(opts, settings, target, bootstrap)
    rows = table_rows(outcome, opts)
    print_report(outcome, rows, opts)
    print(run.load_line())
    run.record(
        {
            **asdict(opts),
            **opts.log_shape().settings(),
            "database": target.dbname,
            "kafka_bootstrap": bootstrap,
            "replication_factor": settings.kafka_replication_factor,
            "baseline_producer": BASELINE_PRODUCER,
        },
        servers=outcome.servers,
        packages=package_versions("eventsourcing", "psycopg", "kafka-python", "cryptography"),
        load=outcome.loaded.figures(),
        log_read=outcome.reading.figures(),
        audit_ledger={**outcome.ledger.figures(), "checkpoints": outcome.checkpoints},
        verify_database=outcome.verified_db.figures(),
        kafka={
            "status": outcome.kafka_status,
            **(outcome.kafka.figures() if outcome.kafka is not None else {}),
        },
        table=[r.figures() for r in rows],
        problems=outcome.problems,
    )
    return outcome.exit_code


def table_rows(outcome: Outcome, opts: Options) -> list[Row]:
    rows = [
        *log_rows(outcome.loaded.row(), outcome.reading, opts.batch, "nothing done"),
        Row(
            "audit ledger",
            f"chain {opts.batch}/tx, seal every {opts.checkpoint_events:,}",
            outcome.ledger.run.events,
            outcome.ledger.run.seconds,
        ),
        _verify_row(outcome.verified_db, "verify_database, whole history"),
    ]
    k = outcome.kafka
    if k is not None:
        rows += [
            Row(
                "relay encoding",
                "encode_record (one JSON parse of the stored state), no I/O",
                k.encoding.events,
                k.encoding.seconds,
            ),
            Row(
                "kafka relay",
                f"log -> Kafka acked, {opts.batch}/flush",
                k.relay.run.events,
                k.relay.run.seconds,
                ratio(k.relay.run, k.baseline_batched.run),
            ),
            Row(
                "kafka-python baseline",
                f"same records, {opts.batch}/flush",
                k.baseline_batched.run.events,
                k.baseline_batched.run.seconds,
            ),
            Row(
                "kafka-python baseline",
                "same records, one flush at the end",
                k.baseline_streamed.run.events,
                k.baseline_streamed.run.seconds,
            ),
            _verify_row(k.verified, "verify_kafka, whole topic"),
        ]
    return rows


def _verify_row(verified: Verified, mode: str) -> Row:
    return Row(f"audit verify ({verified.source})", mode, verified.events, verified.seconds)


def print_report(outcome: Outcome, rows: list[Row], opts: Options) -> None:
    print()
    print_table(rows)
    print()
    print(
        "seconds: wall time over the whole log from position 0. The ledger and the relay read "
        f"the log in batches of {opts.batch} (reading alone: {outcome.reading.seconds:.2f}s) and "
        "commit (the ledger) or wait for every acknowledgement and store the position (the "
        "relay) once per batch; the baseline sends records encoded beforehand, taking turns "
        "with the relay batch by batch (the streamed baseline runs after both)."
    )
    ledger = outcome.ledger.latency
    print(
        f"audit ledger: {outcome.checkpoints:,} signed checkpoints; per batch p50 "
        f"{ledger.p50:.1f} ms, p99 {ledger.p99:.1f} ms."
    )
    k = outcome.kafka
    if k is None:
        print(f"kafka: {outcome.kafka_status}")
    else:
        relay, baseline = k.relay.latency, k.baseline_batched.latency
        print(
            f"kafka relay per batch of {opts.batch}: p50 {relay.p50:.1f} ms, p99 {relay.p99:.1f} "
            f"ms, max {relay.max:.1f} ms (baseline: p50 {baseline.p50:.1f} ms, p99 "
            f"{baseline.p99:.1f} ms, max {baseline.max:.1f} ms)."
        )
        print(
            f"relay/baseline: {ratio(k.relay.run, k.baseline_batched.run):.2f} of the bare "
            f"producer flushing per batch, {ratio(k.relay.run, k.baseline_streamed.run):.2f} "
            f"of it flushing once; {k.checkpoints_relayed:,} checkpoints relayed."
        )
    if not print_problems(outcome.problems):
        print(
            "verified: the chain, every signed checkpoint and every event, in the database and "
            "on the topic; every topic holds one record per event."
        )
