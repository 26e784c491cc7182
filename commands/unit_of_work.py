"""One attempt of a command: what it saves, and who it is by.

The actor is explicit: a handler names the caller once it has established that they may act
(`CommandHandlers.acting`), and every event the attempt saves is stamped with them (`actor_id`,
for auditors). An attempt that names nobody is the system's own work (retention, an operator's
bootstrap), and its events say so (None)."""

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.domain import Aggregate

from infra.eventstore.event_store import EventStore


@dataclass
class UnitOfWork:
    store: EventStore
    actor_id: UUID | None = None

    def save(self, *aggregates: Aggregate) -> int:
        """Save the aggregates' pending events atomically, stamped with the actor; the last log
        position written."""
        return self.store.save_all(*aggregates, actor=self.actor_id)
