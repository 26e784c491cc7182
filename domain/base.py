"""What every Parley aggregate shares: stable topics, the tenant id on every event, and ids
(deterministic ones, and those a client sends)."""

from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import InvalidInput

# Namespace for deterministic ids (slugs, e-mails, idempotency keys). Never change it:
# stored aggregate ids depend on it.
PARLEY_NAMESPACE = UUID("8a1c5c8e-6f0e-4f55-9b8f-3d1f0c7d2a10")


def parse_id(value: str, what: str = "id") -> UUID:
    """An id a client sent (a GraphQL `ID`); BAD_USER_INPUT when it is not one."""
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidInput(f"{what} is not a valid id") from None


def stable_id(*parts: object) -> UUID:
    """A deterministic UUID for the given parts (uniqueness enforced by the event store)."""
    return uuid5(PARLEY_NAMESPACE, "\x1f".join(str(p) for p in parts))


class TenantScopedAggregate(Aggregate):
    """An aggregate whose every event names its tenant, so followers route without loading state."""

    tenant_id: UUID

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:  # type: ignore[override]
        kwargs.setdefault("tenant_id", self.tenant_id)
        super().trigger_event(event_class, **kwargs)


def check_text(value: object, *, field: str) -> str:
    """Text that every store downstream can hold: PostgreSQL text cannot contain NUL, and an
    event the read models cannot store would stall them for every tenant."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text")
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain NUL characters")
    return value


def check_length(value: str, *, field: str, low: int, high: int) -> str:
    """Strip and bound a text field; raise InvalidInput when outside [low, high] characters."""
    value = check_text(value, field=field)
    stripped = value.strip()
    if not low <= len(stripped) <= high:
        raise InvalidInput(f"{field} must be {low}..{high} characters (got {len(stripped)})")
    return stripped
