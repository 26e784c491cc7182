"""A tenant's OpenID Connect sign-in in GraphQL: configure, remove, read back (never the secret).
The sign-in itself is plain HTTP (api/oidc_sign_in.py)."""

import strawberry
from strawberry.types import Info

import commands.messages as cmd
from api.context import ParleyContext, run
from domain.oidc import OidcConfig as OidcConfigState
from domain.tenant import Tenant
from queries.tenant_settings import oidc_config
from queries.types import Role


@strawberry.type(
    description="A tenant's OpenID Connect sign-in (the client secret is never shown)."
)
class OidcConfig:
    issuer: str
    client_id: str
    has_client_secret: bool = strawberry.field(
        description="Parley authenticates to the token endpoint with a secret (false: a "
        "public client, PKCE only)."
    )
    allowed_domains: list[str] = strawberry.field(
        description="E-mail domains that may sign in this way (empty: any existing user)."
    )
    auto_provision_role: Role | None = strawberry.field(
        description="Unknown users of an allowed domain are created with this role at their "
        "first sign-in (null: they are refused)."
    )
    redirect_uris: list[str]
    login_path: str = strawberry.field(
        description="Where a client sends the browser: GET this path on Parley with "
        "?redirect_uri=… (see docs/oidc.md)."
    )
    callback_path: str = strawberry.field(
        description="The redirect URI to register at the issuer: Parley's public URL, then this."
    )

    @classmethod
    def of(cls, config: OidcConfigState, slug: str) -> "OidcConfig":
        role = config.auto_provision_role
        return cls(
            issuer=config.issuer,
            client_id=config.client_id,
            has_client_secret=config.sealed_client_secret is not None,
            allowed_domains=list(config.allowed_domains),
            auto_provision_role=Role(role) if role else None,
            redirect_uris=list(config.redirect_uris),
            login_path=f"/auth/oidc/{slug}/login",
            callback_path=f"/auth/oidc/{slug}/callback",
        )


@strawberry.input
class ConfigureOidcInput:
    issuer: str = strawberry.field(
        description="The issuer URL exactly as its discovery document names it (https; http "
        "only on loopback addresses)."
    )
    client_id: str
    client_secret: str | None = strawberry.field(
        default=None,
        description="Stored encrypted, never returned. Omitted: keep the current one (same "
        "issuer and client only); empty: a public client (PKCE only).",
    )
    allowed_domains: list[str] | None = strawberry.field(
        default=None,
        description="E-mail domains that may sign in this way (empty or omitted: any existing "
        "user of the tenant).",
    )
    auto_provision_role: Role | None = strawberry.field(
        default=None,
        description="member or auditor: create unknown users of an allowed domain at their "
        "first sign-in (needs allowedDomains). Omitted: unknown users are refused.",
    )
    redirect_uris: list[str] = strawberry.field(
        description="Your client applications' pages a finished sign-in may return to with its "
        "one-time code (exact match; https, or http on loopback)."
    )


@strawberry.type
class OidcConfigPayload:
    config: OidcConfig | None
    position: int


async def _config(info: Info[ParleyContext, None]) -> OidcConfig | None:
    store = info.context.services.aggregates
    actor = info.context.actor()
    config = await run(info, oidc_config, store, actor)
    if config is None:
        return None
    tenant = await run(info, store.get_or_none, actor.tenant_id)
    return OidcConfig.of(config, tenant.slug if isinstance(tenant, Tenant) else "")


@strawberry.type
class OidcQueries:
    @strawberry.field(description="Tenant admins: the tenant's OIDC sign-in, if configured.")
    async def oidc_config(self, info: Info[ParleyContext, None]) -> OidcConfig | None:
        return await _config(info)


@strawberry.type
class OidcMutations:
    @strawberry.mutation(
        description="Tenant admins: let the tenant's users sign in through an OpenID Connect "
        "issuer (authorization code with PKCE). Replaces the current configuration."
    )
    async def configure_oidc(
        self, info: Info[ParleyContext, None], input: ConfigureOidcInput
    ) -> OidcConfigPayload:
        role = input.auto_provision_role
        written = await info.context.execute(
            lambda: cmd.ConfigureOidc(
                issuer=input.issuer,
                client_id=input.client_id,
                client_secret=input.client_secret,
                allowed_domains=input.allowed_domains or [],
                auto_provision_role=role.value if role else None,  # type: ignore[arg-type]
                redirect_uris=input.redirect_uris,
            )
        )
        return OidcConfigPayload(config=await _config(info), position=written.position)

    @strawberry.mutation(description="Tenant admins: turn OIDC sign-in off (passwords remain).")
    async def remove_oidc(self, info: Info[ParleyContext, None]) -> OidcConfigPayload:
        written = await info.context.execute(cmd.RemoveOidc)
        return OidcConfigPayload(config=None, position=written.position)
