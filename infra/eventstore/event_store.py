"""The one `eventsourcing` Application that holds every aggregate: one totally ordered log."""

import logging
from collections.abc import Sequence
from copy import deepcopy
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Mapper,
    Notification,
    OperationalError,
    ProgrammingError,
    Recording,
    StoredEvent,
)
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg import sql

from infra.eventstore.data_keys import DataKeys
from infra.eventstore.group_commit import GroupCommitter
from infra.eventstore.personal_data import PersonalDataMapper
from infra.postgres import PostgresTarget

log = logging.getLogger(__name__)

APPLICATION_NAME = "parley"
EVENTS_TABLE = "parley_events"

INSERT_EVENTS_FUNCTION = "parley_insert_events"
_INSERT_CALL = sql.SQL("SELECT notification_id FROM {}(%s)").format(
    sql.Identifier(INSERT_EVENTS_FUNCTION)
)


def insert_events_function_ddl(recorder: PostgresApplicationRecorder) -> sql.Composed:
    """Group commit's insert as one statement: what eventsourcing's insert does (lock timeout,
    EXCLUSIVE table lock so positions commit in order, NOTIFY, INSERT … RETURNING), in one
    function. (eventsourcing's own POSTGRES_ENABLE_DB_FUNCTIONS variant takes no table lock.)"""
    datastore = recorder.datastore
    return sql.SQL(
        "CREATE OR REPLACE FUNCTION {schema}.{function}(events {schema}.{event_type}[])"
        " RETURNS TABLE (notification_id bigint) LANGUAGE plpgsql AS $body$"
        " BEGIN"
        "  PERFORM set_config('lock_timeout', {lock_timeout}, true);"
        "  LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;"
        "  NOTIFY {channel};"
        "  RETURN QUERY INSERT INTO {schema}.{table} AS t"
        "   (originator_id, originator_version, topic, state)"
        "   SELECT e.originator_id, e.originator_version, e.topic, e.state FROM unnest(events) e"
        "   RETURNING t.notification_id;"
        " END $body$"
    ).format(
        schema=sql.Identifier(datastore.schema),
        function=sql.Identifier(INSERT_EVENTS_FUNCTION),
        event_type=sql.Identifier(recorder.stored_event_type_name),
        lock_timeout=sql.Literal(f"{datastore.lock_timeout}s"),
        table=sql.Identifier(recorder.events_table_name),
        channel=sql.Identifier(recorder.channel_name),
    )


class EventStore(Application[UUID]):
    """All Parley aggregates in one log (table `parley_events`)."""

    name = APPLICATION_NAME
    # Snapshots stay off until aggregate state has explicit transcodings (see docs/architecture.md).
    is_snapshotting_enabled = False

    def __init__(
        self,
        env: dict[str, str],
        keys: DataKeys,
        *,
        group_commit: bool = False,
        max_events: int = 200,
        window_ms: float = 0.0,
    ) -> None:
        self.data_keys = keys
        super().__init__(env=env)
        self._committer: GroupCommitter | None = None
        if group_commit:
            self._committer = GroupCommitter(
                self._insert, max_events=max_events, window=window_ms / 1000
            )

    def construct_mapper(self) -> Mapper[UUID]:
        """Personal fields encrypted per data subject (infra/eventstore/personal_data.py)."""
        return PersonalDataMapper(self.construct_transcoder(), self.data_keys, self.position_of)

    def close(self) -> None:
        if self._committer is not None:
            self._committer.close()
        super().close()
        self.data_keys.close()

    def get_or_none(self, aggregate_id: UUID, *, readonly: bool = False) -> Any | None:
        """The aggregate, or None. `readonly`: the caller promises not to change it, so a cached
        aggregate is handed out as it is instead of deep-copied (a third of a command's CPU)."""
        try:
            return self.repository.get(aggregate_id, deepcopy_from_cache=not readonly)
        except AggregateNotFoundError:
            return None

    def load(self, *requests: tuple[UUID, bool]) -> list[Any | None]:
        """Several aggregates as they are now, `(id, readonly)` each, with one query for all the
        cached ones (instead of one locked fast-forward each).

        The query reads every event written after each cached version; an aggregate with none
        (the usual case for a caller's user and tenant) is used without taking its fast-forward
        lock, so concurrent commands of one user do not queue behind each other's round trips.
        New events are applied to the cached aggregate under its lock (skipping any another
        thread applied meanwhile). Not cached: loaded as `get_or_none` does.
        """
        repository = self.repository
        cache = repository.cache
        if cache is None:
            return [self.get_or_none(i, readonly=r) for i, r in requests]
        cached: dict[UUID, Any] = {}
        for aggregate_id, _ in requests:
            try:
                cached[aggregate_id] = cache.get(aggregate_id)
            except KeyError:
                continue
        if cached:
            for aggregate_id, events in self._events_after(
                {i: a.version for i, a in cached.items()}
            ).items():
                lock = repository._use_fastforward_lock(aggregate_id)
                try:
                    with lock:
                        aggregate = cached[aggregate_id]
                        for event in events:
                            if event.originator_version > aggregate.version:
                                aggregate = event.mutate(aggregate)
                        cached[aggregate_id] = aggregate
                finally:
                    repository._disuse_fastforward_lock(aggregate_id)
        loaded = []
        for aggregate_id, readonly in requests:
            if aggregate_id in cached:
                aggregate = cached[aggregate_id]
                loaded.append(aggregate if readonly else deepcopy(aggregate))
            else:
                loaded.append(self.get_or_none(aggregate_id, readonly=readonly))
        return loaded

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as eventsourcing's
    def _events_after(self, versions: dict[UUID, int]) -> dict[UUID, list[Any]]:
        recorder = self.recorder
        assert isinstance(recorder, PostgresAggregateRecorder)
        statement = sql.SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state"
            " FROM unnest(%s::uuid[], %s::bigint[]) AS w(id, v)"
            " JOIN {schema}.{table} e ON e.originator_id = w.id AND e.originator_version > w.v"
            " ORDER BY e.originator_id, e.originator_version"
        ).format(
            schema=sql.Identifier(recorder.datastore.schema),
            table=sql.Identifier(recorder.events_table_name),
        )
        ids = list(versions)
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, (ids, [versions[i] for i in ids]), prepare=True)
            rows = cursor.fetchall()
        events: dict[UUID, list[Any]] = {}
        for row in rows:
            stored = StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            events.setdefault(row["originator_id"], []).append(self.mapper.to_domain_event(stored))
        return events

    def save_all(self, *aggregates: Aggregate, actor: UUID | None) -> int:
        """Save the aggregates' pending events atomically; return the last log position written.

        Raises `IntegrityError` when another writer got there first (optimistic concurrency).
        Every event is stamped with `actor`, the user it is by (`actor_id`; None for the system
        itself): always named by the caller, never taken from ambient state.
        """
        for aggregate in aggregates:
            for pending in aggregate.pending_events:
                if "actor_id" not in vars(pending):
                    object.__setattr__(pending, "actor_id", actor)
        if self._committer is None:
            recordings = self.save(*aggregates)
        else:
            # Collected and encoded here, in the caller's thread (it empties the aggregates'
            # pending events): the committer thread only inserts, and a batch that fails is
            # inserted again request by request from these very records.
            events = [e for a in aggregates for e in a.collect_events()]
            pairs = [(e, self.mapper.to_stored_event(e)) for e in events]
            recordings = self._committer.save(pairs) if pairs else []
        ids = [r.notification.id for r in recordings if r.notification.id is not None]
        return max(ids) if ids else self.head()

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as eventsourcing's
    def _insert(self, pairs: Sequence[tuple[Any, StoredEvent]]) -> list[Recording[UUID]]:
        """The committer's transaction: encoded events in, their recordings out (in order).

        One statement in autocommit (`parley_insert_events`: table lock, NOTIFY, INSERT, then
        the commit), so the committer thread sends once and waits once. eventsourcing's own
        insert pipelines five statements, and every step re-takes the GIL from the command
        threads: under 64 callers a 16-event insert took 30 ms, almost all of it waiting."""
        recorder = self.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        events = [
            recorder.construct_pg_stored_event(
                s.originator_id, s.originator_version, s.topic, s.state
            )
            for _, s in pairs
        ]
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(_INSERT_CALL, (events,), prepare=True)
            ids = [row["notification_id"] for row in cursor.fetchall()]
        if len(ids) != len(pairs):
            raise ProgrammingError(f"inserted {len(pairs)} events, got {len(ids)} positions")
        return [
            Recording(
                event,
                Notification(
                    originator_id=stored.originator_id,
                    originator_version=stored.originator_version,
                    topic=stored.topic,
                    state=stored.state,
                    id=notification_id,
                ),
            )
            for (event, stored), notification_id in zip(pairs, ids, strict=True)
        ]

    def position_of(self, aggregate_id: UUID, version: int) -> int | None:
        """The log position of an aggregate's event; None when there is no such event."""
        recorder = self.recorder
        assert isinstance(recorder, PostgresApplicationRecorder)
        statement = sql.SQL(
            "SELECT notification_id FROM {schema}.{table}"
            " WHERE originator_id = %s AND originator_version = %s"
        ).format(
            schema=sql.Identifier(recorder.datastore.schema),
            table=sql.Identifier(recorder.events_table_name),
        )
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, (aggregate_id, version))
            row = cursor.fetchone()
        return int(row["notification_id"]) if row else None

    def head(self) -> int:
        """The highest log position written so far (0 for an empty log)."""
        return self.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int) -> Sequence[Notification]:
        return self.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )

    def decode(self, notification: Notification) -> Any:
        return self.mapper.to_domain_event(notification)


def open_event_store(
    target: PostgresTarget,
    *,
    create_tables: bool,
    pool_size: int,
    keys: DataKeys,
    group_commit: bool = False,
    group_commit_max_events: int = 200,
    group_commit_window_ms: float = 0.0,
    aggregate_cache: int = 0,
) -> EventStore:
    """`group_commit`: concurrent `save_all` calls share transactions
    (infra/eventstore/group_commit.py)."""
    env = target.eventsourcing_env() | {
        "CREATE_TABLE": "y" if create_tables else "n",
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        # A retry loop sits above us; waiting long for the table lock only adds latency.
        "POSTGRES_LOCK_TIMEOUT": "5",
        # No ping before every checkout (a round trip per load and per save, measured at ~12%
        # of a command): a connection that died is retried by eventsourcing's retry decorator.
        "POSTGRES_PRE_PING": "n",
    }
    if aggregate_cache > 0:
        # Commands load cached aggregates and read only the events written since (fast-forward
        # under a per-aggregate lock), instead of replaying every event on every command.
        env["AGGREGATE_CACHE_MAXSIZE"] = str(aggregate_cache)
    store = EventStore(
        env,
        keys,
        group_commit=group_commit,
        max_events=group_commit_max_events,
        window_ms=group_commit_window_ms,
    )
    recorder = store.recorder
    assert isinstance(recorder, PostgresApplicationRecorder)
    with recorder.datastore.get_connection() as conn:
        if create_tables:
            conn.execute(insert_events_function_ddl(recorder))
        elif group_commit:
            found = conn.execute(
                "SELECT to_regproc(%s) IS NOT NULL AS found", (INSERT_EVENTS_FUNCTION,)
            ).fetchone()
            if not (found and found["found"]):
                store.close()
                raise RuntimeError(
                    f"the database lacks {INSERT_EVENTS_FUNCTION}(): run `parley migrate`"
                )
    return store


__all__ = ["EVENTS_TABLE", "EventStore", "IntegrityError", "open_event_store"]
