"""Service accounts in GraphQL (create, revoke, list keys; the secret shown once) and the check
of a presented key.

A key is checked against its tenant's aggregate in the event store, not a read model: a
projection lags, and a revoked key must be refused at once by every API process. Each request
asks the store for the tenant's current version (one primary-key lookup); the tenant's keys are
reloaded only when that version moved, so the cache (bounded, LRU) saves the aggregate's replay,
never the revocation check."""

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING
from uuid import UUID

import strawberry
from strawberry.types import Info

import commands.messages as cmd
from api.context import ParleyContext
from api.mutations import command, run
from domain.actor import Actor
from domain.errors import NotAuthenticated
from domain.tenant import ApiKey, Tenant, service_account_id
from domain.user import Role
from infra.api_keys import PREFIX, parse_api_key, secret_matches

if TYPE_CHECKING:
    from api.runtime import Runtime

log = logging.getLogger(__name__)

INVALID = "invalid API key"


@dataclass(frozen=True)
class _TenantKeys:
    version: int
    active: bool
    keys: dict[str, ApiKey]


class ApiKeyVerifier:
    """Turns a presented `pk_…` key into the actor it authenticates (or NotAuthenticated)."""

    def __init__(self, runtime: "Runtime", cache_size: int) -> None:
        self._runtime = runtime  # its event store opens when the app starts
        self._cache: OrderedDict[UUID, _TenantKeys] = OrderedDict()
        self._cache_size = max(1, cache_size)
        self._lock = threading.Lock()

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
        latest = self._runtime.store.recorder.select_events(tenant_id, desc=True, limit=1)
        if not latest:
            return None
        version = latest[0].originator_version
        with self._lock:
            cached = self._cache.get(tenant_id)
            if cached is not None and cached.version == version:
                self._cache.move_to_end(tenant_id)
                return cached
        aggregate = self._runtime.store.get_or_none(tenant_id)
        if not isinstance(aggregate, Tenant):
            return None
        loaded = _TenantKeys(aggregate.version, aggregate.active, dict(aggregate.api_keys))
        with self._lock:
            self._cache[tenant_id] = loaded
            self._cache.move_to_end(tenant_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return loaded


# -- GraphQL ------------------------------------------------------------------------------------


@strawberry.enum(description="What a service account may do: a user role, never platform admin.")
class ApiKeyRole(Enum):
    TENANT_ADMIN = "tenant_admin"
    MEMBER = "member"
    AUDITOR = "auditor"


@strawberry.type(description="A service account's API key: how to recognise it, never its secret.")
class ApiKeyInfo:
    key_id: strawberry.ID
    name: str
    role: ApiKeyRole
    prefix: str = strawberry.field(description="`pk_<keyId>`: the key's public start.")
    last4: str = strawberry.field(description="The key's last four characters.")
    service_account_id: strawberry.ID = strawberry.field(
        description="The user id the key acts as (its chats, the audit log's actorId)."
    )
    created_at: datetime
    revoked_at: datetime | None
    revoked: bool

    @classmethod
    def of(cls, tenant_id: UUID, key: ApiKey) -> "ApiKeyInfo":
        return cls(
            key_id=strawberry.ID(key.key_id),
            name=key.name,
            role=ApiKeyRole(key.role),
            prefix=f"{PREFIX}{key.key_id}",
            last4=key.last4,
            service_account_id=strawberry.ID(str(service_account_id(tenant_id, key.key_id))),
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            revoked=key.revoked_at is not None,
        )


@strawberry.input
class CreateApiKeyInput:
    name: str = strawberry.field(description='What the key is for, e.g. "analytics export".')
    role: ApiKeyRole


@strawberry.input
class RevokeApiKeyInput:
    key_id: strawberry.ID


@strawberry.type
class CreateApiKeyPayload:
    key: ApiKeyInfo
    secret: str = strawberry.field(
        description="The whole key (`pk_<keyId>_<secret>`), shown this once and never again: "
        "send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`."
    )
    position: int


@strawberry.type
class RevokeApiKeyPayload:
    key_id: strawberry.ID
    position: int


@strawberry.type
class ApiKeyQueries:
    @strawberry.field(description="Tenant admins: the tenant's API keys, revoked ones included.")
    async def api_keys(self, info: Info[ParleyContext, None]) -> list[ApiKeyInfo]:
        actor = info.context.actor()
        keys = await run(info, info.context.handlers.api_keys, actor)
        return [ApiKeyInfo.of(actor.tenant_id, k) for k in keys]


@strawberry.type
class ApiKeyMutations:
    @strawberry.mutation(
        description="Tenant admins (signed in, not by API key): a service account's API key for "
        "integrations. Its secret is in this answer only; Parley keeps its SHA-256."
    )
    async def create_api_key(
        self, info: Info[ParleyContext, None], input: CreateApiKeyInput
    ) -> CreateApiKeyPayload:
        actor = info.context.actor()
        c = command(cmd.CreateApiKey, name=input.name, role=Role(input.role.value))
        issued = await run(info, info.context.handlers.create_api_key, c, actor)
        return CreateApiKeyPayload(
            key=ApiKeyInfo.of(actor.tenant_id, issued.key),
            secret=issued.token,
            position=issued.position,
        )

    @strawberry.mutation(
        description="Tenant admins (signed in): revoke an API key; every API process refuses it "
        "from the next request on."
    )
    async def revoke_api_key(
        self, info: Info[ParleyContext, None], input: RevokeApiKeyInput
    ) -> RevokeApiKeyPayload:
        actor = info.context.actor()
        c = command(cmd.RevokeApiKey, key_id=str(input.key_id))
        written = await run(info, info.context.handlers.revoke_api_key, c, actor)
        return RevokeApiKeyPayload(key_id=input.key_id, position=written.position)
