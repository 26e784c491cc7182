"""Point-in-time replay and the audit log: what an aggregate was at a moment, and who changed it.

Both read the event store itself, not the read models: auditors see history as it was recorded,
chats deleted since included. Both are synchronous (the event store is); the API runs them
through `Runtime.run_blocking`.
"""

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from eventsourcing.application import project_aggregate
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from psycopg import Cursor
from psycopg.rows import DictRow

from domain.errors import InvalidInput, NotFound
from infra.audit.store import tenant_in_state
from infra.eventstore.event_store import EVENTS_TABLE, EventStore

Progress = Callable[[int, int], None]

REPLAY_BATCH = 1000
"""Events read per round trip while replaying (the progress callback fires once per batch)."""
MAX_AUDIT_PAGE = 500
SECRET_FIELDS = frozenset({"password_hash"})
"""State that never leaves the write side, not even for auditors."""


class NoStateAt(NotFound):
    """The aggregate does not exist, or did not exist yet at the moment asked for."""


def as_utc(moment: datetime) -> datetime:
    """Times without a zone are taken as UTC (event timestamps are UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def tenant_of_aggregate(store: EventStore, aggregate_id: UUID) -> UUID | None:
    """The tenant an aggregate belongs to (from its first event); None when there is none.

    Read from the plaintext tenant id in the stored bytes, not by decoding the event: callers
    check the tenant before anything else, so an event altered since (HistoryTampered) must not
    tell another tenant's auditor that the aggregate exists. Bytes too mangled for even that
    give the tenant the audit chain recorded when the event was written."""
    first = store.recorder.select_events(aggregate_id, limit=1)
    if not first:
        return None
    tenant = tenant_in_state(first[0].state)
    if tenant is None:
        with _log_cursor(store) as cursor:
            cursor.execute(
                "SELECT tenant_id FROM audit_chain"
                " WHERE originator_id = %s AND originator_version = %s",
                (aggregate_id, first[0].originator_version),
            )
            row = cursor.fetchone()
        tenant = row["tenant_id"] if row else None
    return tenant


def decode(store: EventStore, stored: StoredEvent) -> Aggregate.Event:
    event = store.mapper.to_domain_event(stored)
    assert isinstance(event, Aggregate.Event), stored.topic
    return event


def state_at(
    store: EventStore,
    aggregate_id: UUID,
    *,
    as_of: datetime | None = None,
    version: int | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The aggregate at `version`, or after its last event at or before `as_of` (the latest
    state with neither), rebuilt from its stored events, as JSON-able data."""
    if as_of is not None and version is not None:
        raise InvalidInput("give a time or a version, not both")
    if version is not None and version < 1:
        raise InvalidInput("version must be 1 or more")
    as_of = as_utc(as_of) if as_of is not None else None
    last = store.recorder.select_events(aggregate_id, desc=True, limit=1)
    if not last:
        raise NoStateAt(f"aggregate {aggregate_id} not found")
    total = last[0].originator_version
    if version is not None and version > total:
        raise NoStateAt(f"aggregate {aggregate_id} has no version {version} (the last is {total})")
    total = version or total

    aggregate: Aggregate | None = None
    # Writers' clocks may disagree a little, so "the last event at or before as_of" may come
    # after a later-stamped one: those wait here and are applied only if such an event follows.
    held: list[Any] = []
    done = 0
    while done < total:
        stored = store.recorder.select_events(aggregate_id, gt=done, lte=total, limit=REPLAY_BATCH)
        if not stored:
            break
        for event in (decode(store, s) for s in stored):
            if as_of is not None and event.timestamp > as_of:
                held.append(event)
            else:
                aggregate = project_aggregate(aggregate, [*held, event])
                held.clear()
        done = stored[-1].originator_version
        if progress is not None:
            progress(done, total)
    if aggregate is None:
        assert as_of is not None
        raise NoStateAt(f"aggregate {aggregate_id} did not exist yet at {as_of.isoformat()}")
    return state_of(aggregate, as_of)


def state_of(aggregate: Aggregate, as_of: datetime | None = None) -> dict[str, Any]:
    """An aggregate's state as JSON-able data: ids as strings, times ISO 8601, enums' values."""
    kind = type(aggregate)
    state: dict[str, Any] = {
        "type": getattr(kind, "TOPIC", None) or kind.__name__,
        "id": str(aggregate.id),
        "version": aggregate.version,
        "as_of": (as_of or aggregate.modified_on).isoformat(),
        "created_on": aggregate.created_on.isoformat(),
        "modified_on": aggregate.modified_on.isoformat(),
    }
    for name, value in vars(aggregate).items():
        if not name.startswith("_") and name not in SECRET_FIELDS:
            state[name] = to_json(value)
    return state


def to_json(value: Any) -> Any:
    if isinstance(value, Enum):
        return to_json(value.value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(to_json(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_json(v) for v in value]
    return value


# -- the audit log --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    """One event of an aggregate as an auditor sees it: what, when, who, and its chain hash."""

    position: int
    event_type: str
    aggregate_version: int
    actor_id: UUID | None
    """The acting user; None for the system itself (e.g. the responder's replies)."""
    occurred_at: datetime
    chain_hash: str | None
    """Hex of the audit chain's hash at this position; None until the ledger has chained it."""


@dataclasses.dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    has_next_page: bool


@contextmanager
def _log_cursor(store: EventStore) -> Iterator[Cursor[DictRow]]:
    """A read-only cursor on the event store's own pool (not the followers')."""
    recorder = store.recorder
    if not isinstance(recorder, PostgresAggregateRecorder):
        raise TypeError("the audit log needs the Postgres event store")
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute("SET TRANSACTION READ ONLY")
        yield cursor


def audit_log(
    store: EventStore,
    aggregate_id: UUID,
    *,
    from_: datetime | None = None,
    to: datetime | None = None,
    first: int = 50,
    after_version: int | None = None,
) -> AuditPage:
    """The aggregate's events in log order, occurring in [from_, to), after `after_version`."""
    if not 1 <= first <= MAX_AUDIT_PAGE:
        raise InvalidInput(f"first must be 1..{MAX_AUDIT_PAGE}")
    from_ = as_utc(from_) if from_ is not None else None
    to = as_utc(to) if to is not None else None
    if from_ is not None and to is not None and to < from_:
        raise InvalidInput("`to` must be on or after `from`")
    entries: list[AuditEntry] = []
    version = after_version or 0
    batch = first + 1 if from_ is None and to is None else REPLAY_BATCH
    # An aggregate's versions are written in log order (version n+1 is saved only after n
    # committed), so paging by version is paging by position, along the primary key.
    with _log_cursor(store) as cursor:
        while len(entries) <= first:
            cursor.execute(
                "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic,"
                f" e.state, c.chain FROM {EVENTS_TABLE} e"
                " LEFT JOIN audit_chain c ON c.position = e.notification_id"
                " WHERE e.originator_id = %s AND e.originator_version > %s"
                " ORDER BY e.originator_version LIMIT %s",
                (aggregate_id, version, batch),
            )
            rows = cursor.fetchall()
            for row in rows:
                entry = _entry(store, row)
                if (from_ is None or entry.occurred_at >= from_) and (
                    to is None or entry.occurred_at < to
                ):
                    entries.append(entry)
            if len(rows) < batch:
                break
            version = rows[-1]["originator_version"]
    return AuditPage(entries=entries[:first], has_next_page=len(entries) > first)


def _entry(store: EventStore, row: DictRow) -> AuditEntry:
    event = decode(
        store,
        StoredEvent(
            originator_id=row["originator_id"],
            originator_version=row["originator_version"],
            topic=row["topic"],
            state=bytes(row["state"]),
        ),
    )
    actor = getattr(event, "actor_id", None)
    return AuditEntry(
        position=row["notification_id"],
        event_type=row["topic"],
        aggregate_version=row["originator_version"],
        actor_id=actor if isinstance(actor, UUID) else None,
        occurred_at=event.timestamp,
        chain_hash=bytes(row["chain"]).hex() if row["chain"] is not None else None,
    )
