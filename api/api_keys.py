"""Service accounts in GraphQL: create, revoke, list keys (the secret shown once). The check of a
presented key is `api.api_key_verifier`."""

import logging
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING
from uuid import UUID

import strawberry
from strawberry.types import Info

import commands.messages as cmd
from api.context import ParleyContext, run
from domain.api_keys import ApiKey, service_account_id
from domain.user import Role
from infra.identity.api_keys import PREFIX
from queries.tenant_settings import api_keys

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

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
        keys = await run(info, api_keys, info.context.services.aggregates, actor)
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
        issued = await info.context.execute(
            lambda: cmd.CreateApiKey(name=input.name, role=Role(input.role.value))
        )
        return CreateApiKeyPayload(
            key=ApiKeyInfo.of(info.context.actor().tenant_id, issued.key),
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
        written = await info.context.execute(lambda: cmd.RevokeApiKey(key_id=str(input.key_id)))
        return RevokeApiKeyPayload(key_id=input.key_id, position=written.position)
