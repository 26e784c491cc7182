"""The `relay` benchmark's Kafka part: the chained log relayed by the `KafkaRelay` into
throw-away topics, next to a baseline (a bare kafka-python producer sending the same records,
encoded beforehand, flushing per batch and once at the end), then `verify_kafka` over the topic
and a count of what each topic holds; and the topics made and deleted around it."""

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from psycopg_pool import ConnectionPool

from api.progress import ProgressBar
from bench.database import LogReader
from bench.relay_figures import Encoding, KafkaFigures, Latency, Measured, Verified
from bench.report import CatchUp
from infra.audit.sources import verify_kafka
from infra.eventstore.event_store import EventStore
from infra.eventstore.follower_positions import read_position
from infra.messaging.kafka_relay import (
    CHECKPOINTS_POSITION,
    KafkaRelay,
    RelaySettings,
    encode_record,
    ensure_topics,
)

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


def bench_kafka(
    store: EventStore,
    pool: ConnectionPool,
    keys: dict[str, bytes],
    batch: int,
    relay_settings: RelaySettings,
    topics: Topics,
) -> KafkaFigures:
    """Relay the chained log and send the same records with a bare producer, then verify."""
    for topic in (topics.events, topics.baseline_batched, topics.baseline_streamed):
        # Untimed, as a deployed relay finds its topics made; the checkpoint topic comes along.
        ensure_topics(replace(relay_settings, topic=topic))
    batches, encoding = encode_log(store, pool, batch)
    relay, batched = relay_and_baseline(store, pool, relay_settings, topics, batches, batch)
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
    batch: int,
) -> tuple[Measured, Measured]:
    """The relay over the whole log and the baseline over the same records, taking turns batch
    by batch, so that whatever else the machine does slows both alike.

    The relay's time is its reads and its `handle` calls; the baseline's, its sends and waits.
    Each makes its producer in its first batch."""
    relay = KafkaRelay(store, pool, relay_settings)
    baseline = BareProducer(
        relay_settings.bootstrap_servers, topics.baseline_batched, relay_settings.timeout_seconds
    )
    reader = LogReader(store, batch, "kafka relay + baseline")
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
