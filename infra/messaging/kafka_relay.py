"""The Kafka relay: every event, in log order, to one topic, as the audit trail and analytics feed.

It follows the log behind the audit ledger (it publishes only chained events, so each record
carries its chain hash), keyed by aggregate id (one aggregate's events stay in one partition, in
order), with an idempotent producer and `acks=all`. A batch's position is stored only after the
broker acknowledged every record of it; a crash in between resends the batch on restart, so
consumers deduplicate by `event_id` (docs/events/README.md). Kafka being down never touches the
write path: the LogFollower retries the batch with back-off and reports the lag.

Record value (UTF-8 JSON, fixed field order, the stored payload embedded byte for byte last, so
a verifier can recompute the audit leaf from the record alone):

    {"event_id":…,"type":…,"schema_version":…,"tenant_id":…,"aggregate_id":…,
     "aggregate_version":…,"position":…,"occurred_at":…,"payload":<stored state bytes>}
"""

import itertools
import json
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from psycopg_pool import ConnectionPool

from infra.audit.chain import Checkpoint, canonical_json, event_id
from infra.audit.store import LEDGER_NAME, checkpoint_from_row
from infra.eventstore.event_store import EventStore
from infra.eventstore.follower_positions import read_position, store_position
from infra.metrics import RELAY_RECORDS

log = logging.getLogger(__name__)

RELAY_NAME = "relay"
CHECKPOINTS_POSITION = "relay-checkpoints"
"""follower_positions row holding the last checkpoint seq published."""
CHECKPOINT_PUBLISH_SECONDS = 2.0
"""How often `publish_checkpoints` runs (a PeriodicTask), for checkpoints sealed by time."""
PAYLOAD_MARKER = b',"payload":'
Record = tuple[str, bytes, bytes, list[tuple[str, bytes]]]
"""(topic, key, value, headers)."""
TOPIC_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1", "cleanup.policy": "delete"}


@dataclass(frozen=True)
class RelaySettings:
    bootstrap_servers: str
    topic: str = "parley.events.v1"
    checkpoint_topic: str = "parley.audit-checkpoints.v1"
    partitions: int = 6
    replication_factor: int = 1
    timeout_seconds: float = 30.0


def _uuid_text(value: Any) -> str | None:
    """A UUID as eventsourcing stores it ({"_type_": "uuid_hex", "_data_": hex}) as text."""
    if value is None:
        return None
    return str(UUID(value["_data_"] if isinstance(value, dict) else value))


def encode_record(n: Notification, chain: bytes) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of one event's Kafka record.

    Reads the few envelope fields straight from the stored JSON (no domain decoding, one parse):
    the tenant, the time, and `class_version`, which eventsourcing stores when above 1, so an old
    event keeps the version it was written with however its class evolves."""
    state = json.loads(n.state)
    tenant = _uuid_text(state.get("tenant_id"))
    stamp = state["timestamp"]
    occurred_at = stamp["_data_"] if isinstance(stamp, dict) else str(stamp)
    version = int(state.get("class_version", 1))
    aggregate = str(n.originator_id)
    event = str(event_id(n.originator_id, n.originator_version))
    value = (
        f'{{"event_id":"{event}","type":{json.dumps(n.topic)},"schema_version":{version},'
        f'"tenant_id":{json.dumps(tenant)},"aggregate_id":"{aggregate}",'
        f'"aggregate_version":{n.originator_version},"position":{n.id},'
        f'"occurred_at":{json.dumps(occurred_at)}'
    ).encode()
    value += PAYLOAD_MARKER + n.state + b"}"
    headers = [
        ("event_id", event.encode()),
        ("event_type", n.topic.encode()),
        ("schema_version", str(version).encode()),
        ("tenant_id", (tenant or "").encode()),
        ("aggregate_id", aggregate.encode()),
        ("aggregate_version", str(n.originator_version).encode()),
        ("position", str(n.id).encode()),
        ("occurred_at", occurred_at.encode()),
        ("chain_hash", chain.hex().encode()),
        ("content_type", b"application/json"),
    ]
    return aggregate.encode(), value, headers


def decode_record(value: bytes) -> tuple[dict[str, Any], bytes]:
    """The envelope fields and the stored payload bytes, exactly as the relay embedded them."""
    envelope = json.loads(value)
    start = value.index(PAYLOAD_MARKER) + len(PAYLOAD_MARKER)
    if not value.endswith(b"}"):
        raise ValueError("record value is not a Parley event envelope")
    return envelope, value[start:-1]


def _timeouts(settings: RelaySettings) -> dict[str, int]:
    """Every wait of the client bounded by our timeout (kafka-python defaults some to 30 s)."""
    timeout_ms = int(settings.timeout_seconds * 1000)
    return {
        "request_timeout_ms": timeout_ms,
        "bootstrap_timeout_ms": timeout_ms,
        "reconnect_backoff_max_ms": min(timeout_ms, 5000),
    }


class _AdminClient(KafkaAdminClient):
    """A KafkaAdminClient that does not outlive a failed connection."""

    def __init__(self, **configs: Any) -> None:
        try:
            super().__init__(**configs)
        except Exception:
            # kafka-python 3 starts the client's IO thread before it bootstraps and leaves it
            # running when that fails, with no client to close: while Kafka is down every retry
            # of the relay would leak one thread.
            if hasattr(self, "_net"):
                self._closed = False  # close() skips a client whose __init__ did not finish
                self.close()
            raise


def ensure_topics(settings: RelaySettings) -> None:
    """Create the event topic (unlimited retention, no compaction) and the checkpoint topic."""
    admin = _AdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="parley-relay-admin",
        **_timeouts(settings),
    )
    try:
        for name, partitions in (
            (settings.topic, settings.partitions),
            (settings.checkpoint_topic, 1),
        ):
            try:
                admin.create_topics(
                    [
                        NewTopic(
                            name=name,
                            num_partitions=partitions,
                            replication_factor=settings.replication_factor,
                            topic_configs=TOPIC_CONFIG,
                        )
                    ]
                )
                log.info("created Kafka topic %s (%d partitions)", name, partitions)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


class KafkaRelay:
    name = RELAY_NAME

    def __init__(self, store: EventStore, pool: ConnectionPool, settings: RelaySettings) -> None:
        self._store = store
        self._pool = pool
        self.settings = settings
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def position(self) -> int:
        with self._pool.connection() as conn:
            return read_position(conn, self.name)

    def ledger_position(self) -> int:
        with self._pool.connection() as conn:
            return read_position(conn, LEDGER_NAME)

    def _connect(self) -> KafkaProducer:
        if self._producer is None:
            ensure_topics(self.settings)
            timeout_ms = int(self.settings.timeout_seconds * 1000)
            self._producer = KafkaProducer(
                bootstrap_servers=self.settings.bootstrap_servers,
                client_id="parley-relay",
                acks="all",
                enable_idempotence=True,  # explicit: a config that turns it off must fail
                linger_ms=5,
                batch_size=256 * 1024,
                compression_type=None,
                max_block_ms=timeout_ms,
                delivery_timeout_ms=timeout_ms * 2,
                **_timeouts(self.settings),
            )
            log.info("relay connected to Kafka at %s", self.settings.bootstrap_servers)
        return self._producer

    def _reset(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close(timeout=1)
            except Exception:
                # kafka-python's close() flushes first and raises while records are pending,
                # before it stops its network thread: stop that thread ourselves, or every
                # outage leaks one producer that retries forever.
                log.debug("closing the Kafka producer failed; forcing it", exc_info=True)
                sender = getattr(producer, "_sender", None)
                if sender is not None and sender.is_alive():
                    sender.force_close()
                    sender.join(timeout=5)
                producer._closed = True  # its __del__ must not try to close it again

    def handle(self, batch: Sequence[Notification]) -> None:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT position, chain FROM audit_chain WHERE position BETWEEN %s AND %s",
                (batch[0].id, batch[-1].id),
            ).fetchall()
        chains = {int(p): bytes(c) for p, c in rows}
        missing = [n.id for n in batch if n.id not in chains]
        if missing:
            raise RuntimeError(
                f"event {missing[0]} has no audit chain entry: the relay publishes only chained"
                " events (is the audit ledger running, or was an event skipped in it?)"
            )
        events = ((self.settings.topic, *encode_record(n, chains[n.id])) for n in batch)
        with self._lock:
            # Checkpoints this batch completes travel in the same flush: no extra round trip.
            checkpoints = self._unpublished_checkpoints(batch[-1].id)
            # A generator: each record is sent as soon as it is encoded, so encoding the rest
            # overlaps with the producer's network thread sending the first.
            self._send_all(
                itertools.chain(events, (self._checkpoint_record(cp) for cp in checkpoints))
            )
            self._record_progress(batch[-1].id, checkpoints)
        RELAY_RECORDS.labels("events").inc(len(batch))
        RELAY_RECORDS.labels("checkpoints").inc(len(checkpoints))

    def _unpublished_checkpoints(self, upto: int) -> list[Checkpoint]:
        with self._pool.connection() as conn:
            published = read_position(conn, CHECKPOINTS_POSITION)
            rows = conn.execute(
                "SELECT seq, from_position, to_position, count, merkle_root, chain_hash,"
                " previous, created_at, key_id, signature FROM audit_checkpoints"
                " WHERE seq > %s AND to_position <= %s ORDER BY seq",
                (published, upto),
            ).fetchall()
        return [checkpoint_from_row(r) for r in rows]

    def _checkpoint_record(self, cp: Checkpoint) -> Record:
        return (
            self.settings.checkpoint_topic,
            str(cp.seq).encode(),
            canonical_json(cp.to_json()),
            [("seq", str(cp.seq).encode()), ("key_id", cp.key_id.encode())],
        )

    def _record_progress(self, position: int | None, checkpoints: list[Checkpoint]) -> None:
        """After the broker acknowledged: both positions in one transaction."""
        with self._pool.connection() as conn, conn.transaction():
            if position is not None:
                store_position(conn, self.name, position)
            if checkpoints:
                store_position(conn, CHECKPOINTS_POSITION, checkpoints[-1].seq)

    def _send_all(self, records: Iterable[Record]) -> None:
        """Send and wait until the broker acknowledged every record, or raise."""
        try:
            producer = self._connect()
            futures = [
                producer.send(topic, key=key, value=value, headers=headers)
                for topic, key, value, headers in records
            ]
            producer.flush(timeout=self.settings.timeout_seconds)
            for future in futures:
                future.get(timeout=self.settings.timeout_seconds)
        except KafkaError:
            # A fresh producer (new idempotence session) for the retry; the records of this
            # batch that did land will be sent again, and consumers drop them by event_id.
            self._reset()
            raise

    def publish_checkpoints(self) -> int:
        """Publish sealed checkpoints whose events are all on the topic; return how many."""
        with self._lock:
            checkpoints = self._unpublished_checkpoints(self.position())
            if not checkpoints:
                return 0
            self._send_all(self._checkpoint_record(cp) for cp in checkpoints)
            self._record_progress(None, checkpoints)
        RELAY_RECORDS.labels("checkpoints").inc(len(checkpoints))
        return len(checkpoints)

    def stop(self) -> None:
        """Close the producer (after the loops that call `handle` and `publish_checkpoints`
        stopped)."""
        with self._lock:
            self._reset()
