"""The check of a presented service-account key (`pk_<key id>_<secret>`).

A key is checked against its tenant's aggregate in the event store, not a read model: a
projection lags, and a revoked key must be refused at once by every API process. Each request
asks the store for the tenant's current version (one primary-key lookup); the tenant's keys are
reloaded only when that version moved, so the cache (bounded, LRU) saves the aggregate's replay,
never the revocation check."""

from dataclasses import dataclass
from uuid import UUID

from domain.actor import Actor
from domain.api_keys import ApiKey, service_account_id
from domain.errors import NotAuthenticated
from domain.tenant import Tenant
from domain.user import Role
from infra.eventstore.event_store import EventStore
from infra.identity.api_keys import parse_api_key, secret_matches
from infra.lru import Lru

INVALID = "invalid API key"


@dataclass(frozen=True)
class _TenantKeys:
    version: int
    active: bool
    keys: dict[str, ApiKey]


class ApiKeyVerifier:
    """Turns a presented `pk_…` key into the actor it authenticates (or NotAuthenticated)."""

    def __init__(self, store: EventStore, cache_size: int) -> None:
        self._store = store
        self._cache: Lru[UUID, _TenantKeys] = Lru(max(1, cache_size))

    def verify(self, credential: str) -> Actor:
        """Blocking (the event store is): call it off the event loop."""
        presented = parse_api_key(credential)
        if presented is None:
            raise NotAuthenticated(INVALID)
        tenant = self._tenant_keys(presented.tenant_id)
        key = tenant.keys.get(presented.key_id) if tenant else None
        # One answer for an unknown key id and a wrong secret: nothing to learn by probing.
        if tenant is None or key is None or not secret_matches(presented.secret, key.secret_sha256):
            raise NotAuthenticated(INVALID)
        if key.revoked_at is not None:
            raise NotAuthenticated("API key revoked")
        if not tenant.active:
            raise NotAuthenticated("tenant is deactivated")
        return Actor(
            user_id=service_account_id(presented.tenant_id, key.key_id),
            tenant_id=presented.tenant_id,
            role=Role(key.role),
            api_key_id=key.key_id,
        )

    def _tenant_keys(self, tenant_id: UUID) -> _TenantKeys | None:
        latest = self._store.recorder.select_events(tenant_id, desc=True, limit=1)
        if not latest:
            return None
        version = latest[0].originator_version
        cached = self._cache.get(tenant_id)
        if cached is not None and cached.version == version:
            return cached
        aggregate = self._store.get_or_none(tenant_id)
        if not isinstance(aggregate, Tenant):
            return None
        loaded = _TenantKeys(aggregate.version, aggregate.active, dict(aggregate.api_keys))
        self._cache.put(tenant_id, loaded)
        return loaded
