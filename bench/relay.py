"""The audit trail's throughput: chaining the log, relaying it to Kafka (acknowledged) next to a
baseline in the same run (a bare kafka-python producer sending the same records), and verifying
the history in Postgres and on the topic.

Loads a realistic log into a scratch database (the loader of `bench/projections.py`), chains and
seals it with the `AuditLedger`, relays it with the `KafkaRelay` into throw-away topics, then runs
`verify_database` and `verify_kafka` over the whole history. See bench/README.md.
"""

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Self

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from eventsourcing.persistence import Notification
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from psycopg_pool import ConnectionPool

from api.progress import ProgressBar
from bench import options, projections
from bench.database import (
    event_store,
    postgres_info,
    run_id,
    scratch_database,
    vacuum,
)
from bench.options import at_least_one, option
from bench.projections import CatchUp, Handle, Loaded, LogReader, catch_up, read_only
from bench.report import (
    Percentiles,
    Row,
    Run,
    package_versions,
    print_problems,
    print_table,
    ratio,
    throughput,
)
from bench.services import kafka_bootstrap, local_kafka
from infra.audit.chain import SigningKey
from infra.audit.sources import verify_database, verify_kafka
from infra.audit.verify import Report
from infra.eventstore.event_store import EventStore
from infra.eventstore.follower_positions import read_position
from infra.messaging.kafka_relay import (
    CHECKPOINTS_POSITION,
    KafkaRelay,
    RelaySettings,
    encode_record,
    ensure_topics,
)
from infra.postgres import PostgresTarget
from infra.settings import Settings
from projections.audit_ledger import AuditLedger

log = logging.getLogger("bench.relay")

DESCRIPTION = "Audit ledger, Kafka relay (vs a bare kafka-python producer) and verify rates."

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]

# The relay's producer (infra/messaging/kafka_relay.py, `KafkaRelay._connect`) without the relay
# around it, so that the ratio measures what the relay adds: reading, decoding, encoding, the chain
# lookup, positions and checkpoints.
BASELINE_PRODUCER = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "batch_size": 256 * 1024,
    "compression_type": None,
}


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
        messages = self.load_options().messages
        if messages < 1:
            fixed = self.events - messages
            raise ValueError(
                f"--events must exceed {fixed:,} (tenants, users and chats) to hold messages"
            )

    def load_options(self) -> projections.Options:
        """The projections benchmark's load, with as many messages as make `events` in all."""
        shape = projections.Options(
            messages=1,
            chats=self.chats,
            tenants=self.tenants,
            batch=self.batch,
            keep=self.keep,
            search=False,
            seed=self.seed,
        )
        return projections.Options(**{**asdict(shape), "messages": self.events - shape.events + 1})


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


# -- Kafka: the relay, the baseline and verify ------------------------------------------------


@dataclass(frozen=True)
class Topics:
    """Throw-away topics of one run."""

    events: str
    checkpoints: str
    baseline_batched: str
    baseline_streamed: str

    @classmethod
    def for_run(cls, run_id: str) -> "Topics":
        prefix = f"parley-bench-{run_id}"
        return cls(
            f"{prefix}-events",
            f"{prefix}-checkpoints",
            f"{prefix}-baseline-batched",
            f"{prefix}-baseline-streamed",
        )

    def all(self) -> list[str]:
        return list(asdict(self).values())


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
    relay: Measured
    checkpoints_relayed: int
    encoding: Encoding
    baseline_batched: Measured
    baseline_streamed: Measured
    verified: Verified
    topic_records: dict[str, int]


def bench_kafka(
    store: EventStore,
    pool: ConnectionPool,
    keys: dict[str, bytes],
    opts: Options,
    relay_settings: RelaySettings,
    topics: Topics,
) -> KafkaFigures:
    """Relay the chained log and send the same records with a bare producer, then verify."""
    for topic in (topics.events, topics.baseline_batched, topics.baseline_streamed):
        # Untimed, as a deployed relay finds its topics made; the checkpoint topic comes along.
        ensure_topics(replace(relay_settings, topic=topic))
    batches, encoding = encode_log(store, pool, opts.batch)
    relay, batched = relay_and_baseline(store, pool, relay_settings, topics, batches, opts)
    streamed = stream(relay_settings, topics.baseline_streamed, batches)
    del batches
    with pool.connection() as conn:
        checkpoints_relayed = read_position(conn, CHECKPOINTS_POSITION)
    bar = ProgressBar("verify kafka")
    with pool.connection() as conn:
        started = time.perf_counter()
        report = verify_kafka(
            conn,
            keys,
            bootstrap=relay_settings.bootstrap_servers,
            topic=topics.events,
            checkpoint_topic=topics.checkpoints,
            progress=bar.update,
        )
        verified = Verified("kafka", time.perf_counter() - started, report)
    records = topic_records(
        relay_settings.bootstrap_servers,
        [topics.events, topics.baseline_batched, topics.baseline_streamed],
    )
    return KafkaFigures(relay, checkpoints_relayed, encoding, batched, streamed, verified, records)


def relay_and_baseline(
    store: EventStore,
    pool: ConnectionPool,
    relay_settings: RelaySettings,
    topics: Topics,
    batches: Sequence[Sequence[Record]],
    opts: Options,
) -> tuple[Measured, Measured]:
    """The relay over the whole log and the baseline over the same records, taking turns batch
    by batch, so that whatever else the machine does slows both alike.

    The relay's time is its reads and its `handle` calls; the baseline's, its sends and waits.
    Each makes its producer in its first batch."""
    relay = KafkaRelay(store, pool, relay_settings)
    baseline = BareProducer(
        relay_settings.bootstrap_servers, topics.baseline_batched, relay_settings.timeout_seconds
    )
    reader = LogReader(store, opts.batch, "kafka relay + baseline")
    relay_seconds: list[float] = []
    baseline_seconds: list[float] = []
    try:
        # `batches` first: zip stops there, without reading past the last batch.
        for records, notifications in zip(batches, reader, strict=False):
            if len(notifications) != len(records):
                raise RuntimeError(f"the log after {reader.position} changed since it was encoded")
            before = time.perf_counter()
            relay.handle(notifications)
            relay_seconds.append(time.perf_counter() - before)
            before = time.perf_counter()
            baseline.send(records)
            baseline.wait()
            baseline_seconds.append(time.perf_counter() - before)
    finally:
        relay.stop()
        baseline.close()
    read_seconds = reader.read_seconds
    relayed = Measured(
        CatchUp(reader.events, read_seconds + sum(relay_seconds), read_seconds, len(relay_seconds)),
        Latency.of(relay_seconds),
    )
    sent = Measured(
        CatchUp(baseline.sent, sum(baseline_seconds), 0.0, len(baseline_seconds)),
        Latency.of(baseline_seconds),
    )
    return relayed, sent


def stream(
    relay_settings: RelaySettings, topic: str, batches: Sequence[Sequence[Record]]
) -> Measured:
    """The baseline without waiting per batch: every record sent, then one wait at the end."""
    producer = BareProducer(relay_settings.bootstrap_servers, topic, relay_settings.timeout_seconds)
    total = sum(len(b) for b in batches)
    progress = ProgressBar("baseline streamed")
    try:
        started = time.perf_counter()
        for records in batches:
            producer.send(records)
            progress.update(producer.sent, total)
        producer.wait()
        seconds = time.perf_counter() - started
    finally:
        producer.close()
    return Measured(CatchUp(producer.sent, seconds, 0.0, commits=1), Latency.of([]))


def encode_log(
    store: EventStore, pool: ConnectionPool, batch: int
) -> tuple[list[list[Record]], Encoding]:
    """The relay's records of the whole log, in its batches, built as the relay builds them; and
    the time that took."""
    with pool.connection() as conn:
        chains = {
            int(p): bytes(c)
            for p, c in conn.execute("SELECT position, chain FROM audit_chain").fetchall()
        }
    reader = LogReader(store, batch, "encode records")
    batches: list[list[Record]] = []
    encode_seconds = 0.0
    for notifications in reader:
        before = time.perf_counter()
        batches.append([encode_record(n, chains[n.id]) for n in notifications])
        encode_seconds += time.perf_counter() - before
    # The relay no longer decodes: no decode time.
    return batches, Encoding(reader.events, 0.0, encode_seconds, reader.read_seconds)


class BareProducer:
    """The baseline: a kafka-python producer with the relay's settings and nothing around it,
    sending records encoded beforehand. It is made on the first send, as the relay makes its
    own on its first batch."""

    def __init__(self, bootstrap: str, topic: str, timeout: float) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._timeout = timeout
        self._producer: KafkaProducer | None = None
        self._pending: list[Any] = []
        self.sent = 0

    def send(self, records: Sequence[Record]) -> None:
        if self._producer is None:
            timeout_ms = int(self._timeout * 1000)
            self._producer = KafkaProducer(
                bootstrap_servers=self._bootstrap,
                client_id="parley-bench-baseline",
                max_block_ms=timeout_ms,
                request_timeout_ms=timeout_ms,
                delivery_timeout_ms=timeout_ms * 2,
                **BASELINE_PRODUCER,
            )
        self._pending += [
            self._producer.send(self._topic, key=key, value=value, headers=headers)
            for key, value, headers in records
        ]
        self.sent += len(records)

    def wait(self) -> None:
        """Flush and wait until the broker acknowledged everything sent, or raise."""
        if self._producer is None:
            return
        self._producer.flush(timeout=self._timeout)
        for future in self._pending:
            future.get(timeout=self._timeout)
        self._pending = []

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


def topic_records(bootstrap: str, topics: Sequence[str]) -> dict[str, int]:
    """Records on each topic (its partitions' end offsets: no transactions, no markers)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        counts = {}
        for topic in topics:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
            counts[topic] = sum(consumer.end_offsets(partitions).values())
        return counts
    finally:
        consumer.close()


def kafka_reachable(bootstrap: str) -> bool:
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    except Exception:
        return False
    admin.close()
    return True


def delete_topics(bootstrap: str, topics: Sequence[str]) -> None:
    """Delete those of the topics that exist; a failure is reported, not raised."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
        try:
            doomed = sorted(set(topics) & set(admin.list_topics()))
            if doomed:
                admin.delete_topics(doomed)
        finally:
            admin.close()
    except Exception as e:
        print(f"could not delete the topics {', '.join(topics)}: {e}", file=sys.stderr)


# -- main ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Everything one run measured and checked."""

    loaded: Loaded
    reading: CatchUp
    ledger: Measured
    checkpoints: int
    verified_db: Verified
    kafka_status: str = "not run"
    kafka: KafkaFigures | None = None
    servers: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def measure(opts: Options, settings: Settings, target: PostgresTarget, bootstrap: str) -> Outcome:
    key = SigningKey(Ed25519PrivateKey.generate())  # throw-away: the run's checkpoints only
    keys = {key.key_id: key.public_bytes}  # trusted independently, like --public-key
    with event_store(target) as (store, pool):
        loaded = projections.load(store, opts.load_options())
        vacuum(target, "parley_events")
        reading = read_only(store, batch=opts.batch)
        ledger, checkpoints = chain_log(store, pool, key, opts)
        vacuum(target, "audit_chain")
        verified_db = verify_db(pool, keys)
        outcome = Outcome(loaded, reading, ledger, checkpoints, verified_db)
        outcome.servers["postgres"] = postgres_info(target)
        outcome.problems += _findings(verified_db)
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
        outcome.kafka_status = f"skipped: no Kafka answers at {bootstrap}"
        outcome.problems.append(outcome.kafka_status)
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
        figures = bench_kafka(store, pool, keys, opts, relay_settings, topics)
    except Exception as e:
        log.exception("the Kafka benchmark failed")
        outcome.kafka_status = f"failed: {type(e).__name__}: {e}"
        outcome.problems.append(outcome.kafka_status)
        return
    finally:
        if opts.keep:
            print(f"kept topics {', '.join(topics.all())}", file=sys.stderr)
        else:
            delete_topics(bootstrap, topics.all())
    outcome.kafka_status, outcome.kafka = "measured", figures
    outcome.problems += _findings(figures.verified)
    outcome.problems += [
        f"topic {topic} holds {n} records, the log {outcome.loaded.events}"
        for topic, n in figures.topic_records.items()
        if n != outcome.loaded.events
    ]
    if figures.checkpoints_relayed != outcome.checkpoints:
        outcome.problems.append(
            f"{figures.checkpoints_relayed} checkpoints relayed, {outcome.checkpoints} sealed"
        )


def _findings(verified: Verified) -> list[str]:
    report = verified.report
    problems = [f"verify {verified.source}: {f}" for f in report.findings[:20]]
    if report.events_checked == 0:
        problems.append(f"verify {verified.source} checked no events")
    return problems


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
    load_opts = opts.load_options()
    k = outcome.kafka
    run.record(
        {
            **asdict(opts),
            "messages": load_opts.messages,
            "users_per_tenant": load_opts.users_per_tenant,
            "chats_per_save": projections.CHATS_PER_SAVE,
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
            **(
                {
                    "relay": {**k.relay.figures(), "checkpoints": k.checkpoints_relayed},
                    "encoding": k.encoding.figures(),
                    "baseline_batched": k.baseline_batched.figures(),
                    "baseline_streamed": k.baseline_streamed.figures(),
                    "ratio_relay_to_baseline_batched": round(
                        ratio(k.relay.run, k.baseline_batched.run), 3
                    ),
                    "ratio_relay_to_baseline_streamed": round(
                        ratio(k.relay.run, k.baseline_streamed.run), 3
                    ),
                    "verify_kafka": k.verified.figures(),
                    "topic_records": k.topic_records,
                }
                if k is not None
                else {}
            ),
        },
        table=[r.figures() for r in rows],
        problems=outcome.problems,
    )
    return 1 if outcome.problems else 0


def table_rows(outcome: Outcome, opts: Options) -> list[Row]:
    rows = [
        *projections.log_rows(outcome.loaded, outcome.reading, opts.batch, "nothing done"),
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
