"""The one `eventsourcing` Application that holds every aggregate: one totally ordered log."""

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Mapper, Notification

from infra.data_keys import DataKeys
from infra.group_commit import GroupCommitter
from infra.personal_data import PersonalDataMapper
from infra.postgres import PostgresTarget

log = logging.getLogger(__name__)

APPLICATION_NAME = "parley"
EVENTS_TABLE = "parley_events"


CURRENT_ACTOR: ContextVar[UUID | None] = ContextVar("parley_current_actor", default=None)
"""Who is acting in this command: stamped on every event it saves as `actor_id` (for auditors)."""


@contextmanager
def acting_as(actor_id: UUID | None) -> Iterator[None]:
    token = CURRENT_ACTOR.set(actor_id)
    try:
        yield
    finally:
        CURRENT_ACTOR.reset(token)


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
                lambda events: self.save(*events), max_events=max_events, window=window_ms / 1000
            )

    def construct_mapper(self) -> Mapper[UUID]:
        """Personal fields encrypted per data subject (infra/personal_data.py)."""
        return PersonalDataMapper(self.construct_transcoder(), self.data_keys)

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

    def save_all(self, *aggregates: Aggregate) -> int:
        """Save the aggregates' pending events atomically; return the last log position written.

        Raises `IntegrityError` when another writer got there first (optimistic concurrency).
        Every event is stamped with the acting user (`actor_id`, None for the system itself).
        """
        actor = CURRENT_ACTOR.get()
        for aggregate in aggregates:
            for pending in aggregate.pending_events:
                if "actor_id" not in vars(pending):
                    object.__setattr__(pending, "actor_id", actor)
        if self._committer is None:
            recordings = self.save(*aggregates)
        else:
            # Collected here (it empties the aggregates' pending events): a batch that fails is
            # saved again request by request, from these very events.
            events = [e for a in aggregates for e in a.collect_events()]
            recordings = self._committer.save(events) if events else []
        ids = [r.notification.id for r in recordings if r.notification.id is not None]
        return max(ids) if ids else self.head()

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
    """`group_commit`: concurrent `save_all` calls share transactions (infra/group_commit.py)."""
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
    return EventStore(
        env,
        keys,
        group_commit=group_commit,
        max_events=group_commit_max_events,
        window_ms=group_commit_window_ms,
    )


__all__ = ["EVENTS_TABLE", "EventStore", "IntegrityError", "open_event_store"]
