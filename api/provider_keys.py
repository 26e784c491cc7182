"""Tenants' own provider API keys in GraphQL: set, remove, list (never the key itself)."""

import strawberry
from strawberry.types import Info

import commands.messages as cmd
from api.context import ParleyContext, run
from domain.model_settings import ProviderKey
from queries.tenant_settings import provider_keys


@strawberry.type(description="A tenant's own API key for a provider: only how to recognise it.")
class ProviderKeyInfo:
    provider: str
    fingerprint: str = strawberry.field(description="First 12 hex digits of its SHA-256.")
    last4: str = strawberry.field(description="Its last four characters.")

    @classmethod
    def of(cls, key: ProviderKey) -> "ProviderKeyInfo":
        return cls(provider=key.provider, fingerprint=key.fingerprint, last4=key.last4)


@strawberry.input
class SetProviderKeyInput:
    provider: str = strawberry.field(
        description="openai, anthropic, google, azure, or the name "
        "of a configured OpenAI-compatible server."
    )
    api_key: str


@strawberry.input
class ProviderInput:
    provider: str


@strawberry.type
class ProviderKeyPayload:
    key: ProviderKeyInfo | None
    position: int


@strawberry.type
class ProviderKeyQueries:
    @strawberry.field(description="Tenant admins: the tenant's own provider keys (never shown).")
    async def provider_keys(self, info: Info[ParleyContext, None]) -> list[ProviderKeyInfo]:
        actor = info.context.actor()
        keys = await run(info, provider_keys, info.context.services.aggregates, actor)
        return [ProviderKeyInfo.of(k) for k in keys]


@strawberry.type
class ProviderKeyMutations:
    @strawberry.mutation(
        description="Tenant admins: use the tenant's own API key for a provider. It is stored "
        "encrypted and never returned; replies with that provider's models use it."
    )
    async def set_provider_key(
        self, info: Info[ParleyContext, None], input: SetProviderKeyInput
    ) -> ProviderKeyPayload:
        written = await info.context.execute(
            lambda: cmd.SetProviderKey(provider=input.provider, api_key=input.api_key)
        )
        actor = info.context.actor()
        keys = await run(info, provider_keys, info.context.services.aggregates, actor)
        mine = next((k for k in keys if k.provider == input.provider), None)
        return ProviderKeyPayload(
            key=ProviderKeyInfo.of(mine) if mine else None, position=written.position
        )

    @strawberry.mutation(description="Tenant admins: go back to the platform's key.")
    async def remove_provider_key(
        self, info: Info[ParleyContext, None], input: ProviderInput
    ) -> ProviderKeyPayload:
        written = await info.context.execute(lambda: cmd.RemoveProviderKey(provider=input.provider))
        return ProviderKeyPayload(key=None, position=written.position)
