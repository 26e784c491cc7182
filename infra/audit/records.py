"""The two sides verification compares: what the audit ledger chained at a position
(`ChainEntry`) and an event as a source (Postgres, Kafka, a bundle) holds it now (`StoredEvent`)."""

from dataclasses import dataclass
from functools import cached_property
from uuid import UUID

from infra.audit.chain import leaf_hash

Identity = tuple[UUID, int]


@dataclass(frozen=True)
class ChainEntry:
    """What the ledger recorded for one position (identity and tenant may be withheld)."""

    position: int
    leaf: bytes
    chain: bytes
    originator_id: UUID | None = None
    version: int | None = None
    tenant_id: UUID | None = None
    topic: str | None = None

    @property
    def identity(self) -> Identity | None:
        if self.originator_id is None or self.version is None:
            return None
        return (self.originator_id, self.version)


@dataclass(frozen=True)
class StoredEvent:
    """One event as the source holds it now: exactly the stored bytes."""

    position: int
    originator_id: UUID
    version: int
    topic: str
    state: bytes
    tenant_id: UUID | None = None

    @property
    def identity(self) -> Identity:
        return (self.originator_id, self.version)

    @cached_property
    def leaf(self) -> bytes:
        """Hashed once (the Kafka check and the comparison with the chain both need it)."""
        return leaf_hash(self.position, self.originator_id, self.version, self.topic, self.state)
