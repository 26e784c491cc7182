"""Where verification reads history from: Postgres (events, chain, checkpoints) and Kafka, and
the export of a self-contained bundle from Postgres. The checks themselves are in
`infra/audit/verify.py`, the bundle's format in `infra/audit/bundle.py`."""

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from kafka import KafkaConsumer, TopicPartition
from psycopg import Connection

from infra.audit.bundle import write_bundle
from infra.audit.chain import GENESIS, Checkpoint, event_id
from infra.audit.records import ChainEntry, StoredEvent
from infra.audit.report import Finding, Progress, Report
from infra.audit.signatures import verify_checkpoints
from infra.audit.store import LEDGER_NAME, load_checkpoints, public_keys, tenant_in_state
from infra.audit.verify import verify_chain, verify_events
from infra.eventstore.event_store import EVENTS_TABLE
from infra.eventstore.follower_positions import read_position
from infra.messaging.kafka_relay import RELAY_NAME, decode_record

log = logging.getLogger(__name__)

_PAGE = 5000


def position_at(conn: Connection[Any], value: str | None, *, default: int) -> int:
    """A position from `--from/--to`: an integer position or an ISO-8601 time (the last event
    chained at or before it)."""
    if value is None:
        return default
    if value.isdigit():
        return int(value)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # like every time Parley takes: UTC unless stated
    row = conn.execute(
        "SELECT coalesce(max(position), 0) FROM audit_chain WHERE recorded_at <= %s", (moment,)
    ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class Span:
    """The checkpoint-aligned range to check: positions (start, end]."""

    start: int
    end: int
    previous_chain: bytes


def aligned_span(conn: Connection[Any], lo: int, hi: int, checkpoints: list[Checkpoint]) -> Span:
    """Widen [lo, hi] to whole checkpoints, so their Merkle roots can be recomputed."""
    start = max(0, lo - 1)
    for cp in checkpoints:
        if cp.from_position < lo <= cp.to_position:
            start = cp.from_position
        if cp.from_position < hi <= cp.to_position:
            hi = cp.to_position
    row = conn.execute(
        "SELECT chain FROM audit_chain WHERE position <= %s ORDER BY position DESC LIMIT 1",
        (start,),
    ).fetchone()
    if start > 0 and row is None:
        start = 0
    return Span(start, hi, bytes(row[0]) if row and start > 0 else GENESIS)


def load_entries(conn: Connection[Any], span: Span) -> list[ChainEntry]:
    rows = conn.execute(
        "SELECT position, leaf, chain, originator_id, originator_version, tenant_id, topic"
        " FROM audit_chain WHERE position > %s AND position <= %s ORDER BY position",
        (span.start, span.end),
    ).fetchall()
    return [
        ChainEntry(p, bytes(leaf), bytes(ch), oid, v, t, topic)
        for p, leaf, ch, oid, v, t, topic in rows
    ]


def iter_db_events(
    conn: Connection[Any], start: int, end: int, *, tenant: UUID | None = None
) -> Iterator[StoredEvent]:
    after = start
    while True:
        rows = conn.execute(
            f"SELECT notification_id, originator_id, originator_version, topic, state"
            f" FROM {EVENTS_TABLE} WHERE notification_id > %s AND notification_id <= %s"
            " ORDER BY notification_id LIMIT %s",
            (after, end, _PAGE),
        ).fetchall()
        for position, oid, version, topic, state in rows:
            event = StoredEvent(position, oid, version, topic, bytes(state), tenant_in_state(state))
            if tenant is None or event.tenant_id == tenant:
                yield event
        if len(rows) < _PAGE:
            return
        after = rows[-1][0]


def count_events(conn: Connection[Any], start: int, end: int) -> int:
    row = conn.execute(
        f"SELECT count(*) FROM {EVENTS_TABLE} WHERE notification_id > %s AND notification_id <= %s",
        (start, end),
    ).fetchone()
    return int(row[0]) if row else 0


def verify_database(
    conn: Connection[Any],
    keys: dict[str, bytes],
    *,
    tenant: UUID | None = None,
    lo: str | None = None,
    hi: str | None = None,
    progress: Progress | None = None,
) -> Report:
    report = Report()
    checkpoints = load_checkpoints(conn)
    verify_checkpoints(checkpoints, keys, report)
    ledger_head = read_position(conn, LEDGER_NAME)
    span = aligned_span(
        conn,
        position_at(conn, lo, default=1),
        min(position_at(conn, hi, default=ledger_head), ledger_head),
        checkpoints,
    )
    entries = load_entries(conn, span)
    verify_chain(
        entries,
        checkpoints,
        report,
        previous_chain=span.previous_chain,
        start=span.start,
        until=None if hi is None else span.end,
    )
    head = conn.execute(f"SELECT coalesce(max(notification_id), 0) FROM {EVENTS_TABLE}").fetchone()
    last = max(span.end, int(head[0]) if head else 0) if hi is None else span.end
    verify_events(
        entries,
        iter_db_events(conn, span.start, last),
        report,
        start=span.start,
        tenant=tenant,
        progress=progress,
        total=count_events(conn, span.start, last),
    )
    return report


# -- Kafka -------------------------------------------------------------------------------------


def _consume_all(bootstrap: str, topic: str, timeout: float = 30.0) -> Iterator[Any]:
    """Every record of the topic as it is now, partition by partition, without a group."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=int(timeout * 1000),
        request_timeout_ms=int(timeout * 1000) + 5000,
    )
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        end = consumer.end_offsets(assigned)
        remaining = {tp for tp in assigned if end[tp] > 0}
        while remaining:
            batches = consumer.poll(timeout_ms=int(timeout * 1000))
            if not batches:
                raise TimeoutError(f"Kafka stopped answering while reading {topic}")
            for tp, records in batches.items():
                for record in records:
                    if record.offset < end[tp]:
                        yield record
                if consumer.position(tp) >= end[tp]:
                    remaining.discard(tp)
                    consumer.pause(tp)
    finally:
        consumer.close()


def verify_kafka(
    conn: Connection[Any],
    keys: dict[str, bytes],
    *,
    bootstrap: str,
    topic: str,
    checkpoint_topic: str,
    tenant: UUID | None = None,
    progress: Progress | None = None,
) -> Report:
    """The topic against the audit chain: every relayed event present once (duplicates by
    event_id allowed), unaltered, in order per partition; checkpoints as published to Kafka."""
    report = Report()
    published = []
    for r in _consume_all(bootstrap, checkpoint_topic):
        try:
            published.append(Checkpoint.from_json(json.loads(r.value)))
        except (ValueError, KeyError, TypeError) as e:
            report.findings.append(
                Finding(
                    "checkpoint", 0, f"checkpoint record at offset {r.offset} is unreadable: {e}"
                )
            )
    stored = {cp.seq: cp for cp in load_checkpoints(conn)}
    for cp in published:
        if cp.seq not in stored:
            report.findings.append(
                Finding(
                    "deleted",
                    cp.from_position + 1,
                    f"checkpoint {cp.seq} is on Kafka but not in Postgres: positions"
                    f" {cp.from_position + 1}..{cp.to_position} were truncated from the database",
                )
            )
        elif stored[cp.seq].body() != cp.body():
            report.findings.append(
                Finding(
                    "checkpoint",
                    cp.to_position,
                    f"checkpoint {cp.seq} on Kafka differs from the one in Postgres",
                )
            )
    relayed = read_position(conn, RELAY_NAME)
    # A checkpoint travels in the same flush as its events: one past the relay's stored
    # position is in flight (or was resent), not a claim the chain must meet yet.
    published = [cp for cp in published if cp.to_position <= relayed]
    unique = list({cp.seq: cp for cp in published}.values())  # resends are harmless
    verify_checkpoints(published, keys, report)
    ledger_head = read_position(conn, LEDGER_NAME)
    span = aligned_span(conn, 1, relayed, unique)
    entries = [e for e in load_entries(conn, span) if e.position <= relayed]
    verify_chain(entries, unique, report, previous_chain=span.previous_chain, start=span.start)
    chains = {e.position: e.chain for e in entries}

    def problem(kind: str, position: int, detail: str) -> None:
        report.findings.append(Finding(kind, position, detail))

    def relayed_events() -> Iterator[StoredEvent]:
        """Each event once, as consumers see it after dropping resends by event_id; every
        record checked on the way (envelope, headers, order)."""
        leaf_of: dict[UUID, bytes] = {}
        id_at: dict[int, UUID] = {}
        last_of_aggregate: dict[tuple[int, UUID], int] = {}
        for record in _consume_all(bootstrap, topic):
            headers = dict(record.headers or [])
            try:
                envelope, payload = decode_record(record.value)
                event = StoredEvent(
                    position=int(envelope["position"]),
                    originator_id=UUID(envelope["aggregate_id"]),
                    version=int(envelope["aggregate_version"]),
                    topic=envelope["type"],
                    state=payload,
                    tenant_id=UUID(envelope["tenant_id"]) if envelope.get("tenant_id") else None,
                )
                key = UUID(envelope["event_id"])
                stored = envelope["payload"]
            except (ValueError, KeyError, TypeError) as e:
                where = headers.get("position", b"0").decode()
                problem(
                    "modified",
                    int(where) if where.isdigit() else 0,
                    f"partition {record.partition} offset {record.offset} is not a Parley event"
                    f" record ({e})",
                )
                continue
            if tenant is not None and event.tenant_id != tenant:
                continue
            if event.position > ledger_head:
                problem("inserted", event.position, "a record beyond the end of the chain")
                continue
            if key != event_id(event.originator_id, event.version) or str(
                event.tenant_id or ""
            ) != str(tenant_in_state(payload) or ""):
                problem("modified", event.position, "the record's envelope was altered")
            stamp = stored.get("timestamp") if isinstance(stored, dict) else None
            if isinstance(stamp, dict) and stamp.get("_data_") != envelope.get("occurred_at"):
                problem("modified", event.position, "the record's occurred_at was altered")
            leaf = event.leaf
            if key in leaf_of:
                if leaf_of[key] != leaf:
                    problem("modified", event.position, "a resent record differs from the first")
                continue  # a resend: consumers drop it by event_id
            if id_at.get(event.position, key) != key:
                problem("inserted", event.position, "two different events claim this position")
                continue
            leaf_of[key], id_at[event.position] = leaf, key
            # The contract orders each aggregate's events within its partition.
            stream = (record.partition, event.originator_id)
            previous = last_of_aggregate.get(stream, 0)
            if event.position < previous:
                problem(
                    "reordered",
                    event.position,
                    f"partition {record.partition}: {event.originator_id} v{event.version} comes"
                    f" after position {previous}",
                )
            last_of_aggregate[stream] = max(previous, event.position)
            header = headers.get("chain_hash", b"").decode()
            if event.position in chains and header != chains[event.position].hex():
                problem("modified", event.position, "the record's chain_hash header was altered")
            yield event

    verify_events(
        entries, relayed_events(), report, start=span.start, tenant=tenant, progress=progress
    )
    return report


# -- export ------------------------------------------------------------------------------------


def export_bundle(
    conn: Connection[Any],
    out: Path,
    *,
    tenant: UUID | None,
    lo: str | None,
    hi: str | None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    checkpoints = load_checkpoints(conn)
    # Only what signatures cover: up to the last checkpoint (`parley audit export` seals first).
    sealed_to = checkpoints[-1].to_position if checkpoints else 0
    span = aligned_span(
        conn,
        position_at(conn, lo, default=1),
        min(position_at(conn, hi, default=sealed_to), sealed_to),
        checkpoints,
    )
    entries = load_entries(conn, span)
    if tenant is not None:  # other tenants' events stay opaque
        entries = [
            e if e.tenant_id == tenant else ChainEntry(e.position, e.leaf, e.chain) for e in entries
        ]
    total = count_events(conn, span.start, span.end)
    events = []
    for n, event in enumerate(iter_db_events(conn, span.start, span.end, tenant=tenant), 1):
        events.append(event)
        if progress is not None and n % 1000 == 0:
            progress(n, total)
    if progress is not None:
        progress(total, total)
    # With the checkpoint that ends where the bundle starts: it signs the chain hash the
    # bundle's chain continues from.
    covering = [
        cp for cp in checkpoints if cp.to_position >= span.start and cp.from_position < span.end
    ]
    manifest = {
        "exported_at": datetime.now().astimezone().isoformat(),
        "tenant_id": str(tenant) if tenant else None,
        "from_position": span.start + 1,
        "to_position": span.end,
        "sealed_to": max((cp.to_position for cp in covering), default=0),
    }
    write_bundle(
        out,
        manifest=manifest,
        events=events,
        entries=entries,
        previous_chain=span.previous_chain,
        checkpoints=covering,
        keys=public_keys(conn),
    )
    return {**manifest, "events": len(events), "checkpoints": len(covering)}
