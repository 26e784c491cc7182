"""GraphQL mutations on tenants and their users (input → command → the bus → payload; see
`api/command_mutation.py`). Chats' are in `api/chat_mutations.py`."""

import strawberry

from api.command_mutation import command_mutation
from api.services import Services
from commands import messages as cmd
from commands.results import TenantCreated, Written
from domain.base import parse_id
from domain.errors import InvalidInput
from domain.user import Role as DomainRole
from queries.types import Role


@strawberry.input
class CreateTenantInput:
    name: str
    slug: str
    admin_email: str
    admin_password: str
    admin_display_name: str = "Administrator"


@strawberry.type
class CreateTenantPayload:
    tenant_id: strawberry.ID
    admin_user_id: strawberry.ID
    position: int


@strawberry.input
class RegisterUserInput:
    email: str
    password: str
    display_name: str
    role: Role = Role.MEMBER
    tenant_id: strawberry.ID | None = strawberry.field(
        default=None, description="Platform admins only: register in another tenant."
    )


@strawberry.input
class ChangeUserRoleInput:
    user_id: strawberry.ID
    role: Role


@strawberry.input
class DeactivateUserInput:
    user_id: strawberry.ID


@strawberry.type
class UserPayload:
    user_id: strawberry.ID
    position: int


@strawberry.input(description="A cap on the reply tokens of one model.")
class ModelMaxTokensInput:
    model: str
    max_tokens: int


@strawberry.input
class UpdateTenantSettingsInput:
    default_model: str
    allowed_models: list[str]
    retention_days: int | None = None
    fallback_models: list[str] | None = strawberry.field(
        default=None,
        description="Model references tried in order when a chat's model fails (each must be "
        "allowed). Omitted: unchanged.",
    )
    system_prompt: str | None = strawberry.field(
        default=None,
        description="Sent before every conversation. Omitted: unchanged; empty: removed.",
    )
    user_requests_per_minute: int | None = strawberry.field(
        default=None, description="Messages per minute per user (0: no limit; omitted: same)."
    )
    tenant_requests_per_minute: int | None = strawberry.field(
        default=None, description="Messages per minute for the tenant (0: no limit)."
    )
    tenant_tokens_per_minute: int | None = strawberry.field(
        default=None,
        description="Tokens per minute for the tenant: estimated at send, then the replies' "
        "real usage (0: no limit).",
    )
    monthly_budget_usd: float | None = strawberry.field(
        default=None,
        description="Model spend per calendar month (UTC); beyond it sendMessage answers "
        "QUOTA_EXCEEDED (0: no budget).",
    )
    cache_ttl_seconds: int | None = strawberry.field(
        default=None,
        description="Reuse a reply to an identical conversation (same model, messages and "
        "parameters) for this many seconds; cached replies cost nothing. 0: off. Omitted: "
        "unchanged.",
    )
    enabled_providers: list[str] | None = strawberry.field(
        default=None,
        description='Providers the tenant\'s models may use (e.g. ["openai", "anthropic"]); '
        "every allowed model must belong to one. Empty: no restriction. Omitted: unchanged.",
    )
    model_max_tokens: list[ModelMaxTokensInput] | None = strawberry.field(
        default=None,
        description="The most tokens a reply of each listed (allowed) model may have; other "
        "models use the platform default. Empty: no caps. Omitted: unchanged.",
    )


@strawberry.input
class RenameTenantInput:
    name: str
    tenant_id: strawberry.ID | None = strawberry.field(
        default=None, description="Platform admins only: rename another tenant."
    )


@strawberry.input
class DeactivateTenantInput:
    tenant_id: strawberry.ID


@strawberry.type
class TenantPayload:
    tenant_id: strawberry.ID
    position: int


def _create_tenant(input: CreateTenantInput) -> cmd.CreateTenant:
    return cmd.CreateTenant(**vars(input))  # the same fields (the command forbids others)


def _tenant_created(r: TenantCreated, input: CreateTenantInput) -> CreateTenantPayload:
    return CreateTenantPayload(
        tenant_id=strawberry.ID(str(r.tenant_id)),
        admin_user_id=strawberry.ID(str(r.admin_user_id)),
        position=r.position,
    )


def _register_user(input: RegisterUserInput) -> cmd.RegisterUser:
    return cmd.RegisterUser(
        email=input.email,
        password=input.password,
        display_name=input.display_name,
        role=DomainRole(input.role.value),
        tenant_id=parse_id(input.tenant_id, "tenant id") if input.tenant_id else None,
    )


def _change_user_role(input: ChangeUserRoleInput) -> cmd.ChangeUserRole:
    return cmd.ChangeUserRole(
        user_id=parse_id(input.user_id, "user id"), role=DomainRole(input.role.value)
    )


def _deactivate_user(input: DeactivateUserInput) -> cmd.DeactivateUser:
    return cmd.DeactivateUser(user_id=parse_id(input.user_id, "user id"))


def _user_written(r: Written, input: object) -> UserPayload:
    return UserPayload(user_id=strawberry.ID(str(r.id)), position=r.position)


def _change_settings(input: UpdateTenantSettingsInput) -> cmd.ChangeTenantSettings:
    caps = input.model_max_tokens
    if caps is not None and len({m.model for m in caps}) != len(caps):
        raise InvalidInput("modelMaxTokens lists a model twice")
    per_model = None if caps is None else {m.model: m.max_tokens for m in caps}
    return cmd.ChangeTenantSettings(**(vars(input) | {"model_max_tokens": per_model}))


def _rename_tenant(input: RenameTenantInput) -> cmd.RenameTenant:
    return cmd.RenameTenant(
        name=input.name,
        tenant_id=parse_id(input.tenant_id, "tenant id") if input.tenant_id else None,
    )


def _deactivate_tenant(input: DeactivateTenantInput) -> cmd.DeactivateTenant:
    return cmd.DeactivateTenant(tenant_id=parse_id(input.tenant_id, "tenant id"))


def _tenant_written(r: Written, input: object) -> TenantPayload:
    return TenantPayload(tenant_id=strawberry.ID(str(r.id)), position=r.position)


async def _end_sign_ins(services: Services, r: Written) -> None:
    """A deactivated user's access tokens are refused from now on (every operation checks);
    their sign-ins end."""
    await services.run_blocking(services.refresh_tokens.revoke_user, r.id, "deactivated")


async def _end_tenant_sign_ins(services: Services, r: Written) -> None:
    await services.run_blocking(services.refresh_tokens.revoke_tenant, r.id, "deactivated")


@strawberry.type
class TenantMutations:
    create_tenant = command_mutation(
        _create_tenant,
        _tenant_created,
        description="Platform admins: create a tenant and its first admin.",
    )
    register_user = command_mutation(
        _register_user, _user_written, description="Tenant admins: add a user to the tenant."
    )
    change_user_role = command_mutation(
        _change_user_role, _user_written, description="Tenant admins: change a user's role."
    )
    deactivate_user = command_mutation(
        _deactivate_user,
        _user_written,
        then=_end_sign_ins,
        description="Tenant admins: deactivate a user (they can no longer act).",
    )
    update_tenant_settings = command_mutation(
        _change_settings,
        _tenant_written,
        description="Tenant admins: models (default, allowed, fallbacks, enabled providers, "
        "max tokens), system prompt, cache, rate limits, budget, retention.",
    )
    rename_tenant = command_mutation(
        _rename_tenant, _tenant_written, description="Tenant admins: rename your tenant."
    )
    deactivate_tenant = command_mutation(
        _deactivate_tenant,
        _tenant_written,
        then=_end_tenant_sign_ins,
        description="Platform admins: deactivate a tenant (its users are locked out).",
    )
