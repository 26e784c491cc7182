"""GraphQL mutations: translate input into a command, run its handler, shape the result."""

from collections.abc import Callable
from typing import Any, TypeVar

import strawberry
from pydantic import ValidationError
from strawberry.types import Info

from api.context import ParleyContext
from commands import messages as cmd
from domain.errors import InvalidInput, NotFound
from domain.user import Role as DomainRole
from domain.user import User as UserAggregate
from infra.identity.refresh_tokens import RefreshGrant
from infra.identity.tokens import REFRESH
from infra.messaging.live_items import (
    StopRequested,
)
from queries.schema import parse_id
from queries.types import Message, MessageRole, Role, User

T = TypeVar("T")


async def run(info: Info[ParleyContext, None], fn: Callable[..., T], *args: Any) -> T:
    """Run a synchronous handler off the event loop."""
    return await info.context.runtime.run_blocking(fn, *args)


def command(factory: type[cmd.Command], **fields: Any) -> Any:
    try:
        return factory(**fields)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidInput(f"{where}: {first.get('msg', 'invalid')}") from None


def user_view(user: UserAggregate) -> User:
    return User(
        id=strawberry.ID(str(user.id)),
        tenant_id=strawberry.ID(str(user.tenant_id)),
        email=user.email,
        display_name=user.display_name,
        role=Role(user.role.value),
        active=user.active,
    )


@strawberry.type
class LoginPayload:
    access_token: str
    refresh_token: str = strawberry.field(
        description="Single use: refreshToken returns its successor. Presenting a used one "
        "again signs out the whole sign-in."
    )
    token_type: str
    expires_in: int
    user: User
    position: int


def token_pair(
    context: ParleyContext,
    user: UserAggregate,
    position: int,
    grant: RefreshGrant | None = None,
) -> LoginPayload:
    """An access and a refresh token for the user. Without `grant`, a new sign-in (refresh
    token family) is recorded here, blocking for one INSERT: async code should make the grant
    with `runtime.run_blocking(runtime.refresh_tokens.start, ...)` and pass it."""
    runtime = context.runtime
    if grant is None:
        grant = runtime.refresh_tokens.start(tenant_id=user.tenant_id, user_id=user.id)
    access = runtime.tokens.issue(
        user_id=user.id, tenant_id=user.tenant_id, role=user.role.value, session_id=grant.session_id
    )
    refresh = runtime.tokens.issue(
        user_id=user.id,
        tenant_id=user.tenant_id,
        role=user.role.value,
        token_type=REFRESH,
        session_id=grant.session_id,
        token_id=grant.token_id,
        expires_at=grant.expires_at,
    )
    return LoginPayload(
        access_token=access,
        refresh_token=refresh,
        token_type="Bearer",
        expires_in=runtime.settings.access_token_ttl_seconds,
        user=user_view(user),
        position=position,
    )


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


@strawberry.input
class DeactivateTenantInput:
    tenant_id: strawberry.ID


@strawberry.type
class TenantPayload:
    tenant_id: strawberry.ID
    position: int


@strawberry.input
class StartChatInput:
    title: str
    model: str | None = None
    client_mutation_id: str | None = None


@strawberry.type
class StartChatPayload:
    chat_id: strawberry.ID
    position: int
    client_mutation_id: str | None


@strawberry.input
class SendMessageInput:
    chat_id: strawberry.ID
    content: str
    client_mutation_id: str | None = None


@strawberry.type
class SendMessagePayload:
    message_id: strawberry.ID
    chat_id: strawberry.ID
    position: int
    client_mutation_id: str | None
    duplicate: bool = strawberry.field(
        description="True when this clientMutationId was seen before: nothing new was recorded."
    )
    message: Message


@strawberry.input
class ChatIdInput:
    chat_id: strawberry.ID


@strawberry.input
class RenameChatInput:
    chat_id: strawberry.ID
    title: str


@strawberry.type
class ChatPayload:
    chat_id: strawberry.ID
    position: int


@strawberry.type
class StopGenerationPayload:
    chat_id: strawberry.ID
    requested: bool = strawberry.field(
        description="The stop was sent to every process that may be generating the reply."
    )


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Platform admins: create a tenant and its first admin.")
    async def create_tenant(
        self, info: Info[ParleyContext, None], input: CreateTenantInput
    ) -> CreateTenantPayload:
        actor = info.context.actor()
        c = command(
            cmd.CreateTenant,
            name=input.name,
            slug=input.slug,
            admin_email=input.admin_email,
            admin_password=input.admin_password,
            admin_display_name=input.admin_display_name,
        )
        r = await run(info, info.context.handlers.create_tenant, c, actor)
        return CreateTenantPayload(
            tenant_id=strawberry.ID(str(r.tenant_id)),
            admin_user_id=strawberry.ID(str(r.admin_user_id)),
            position=r.position,
        )

    @strawberry.mutation(description="Tenant admins: add a user to the tenant.")
    async def register_user(
        self, info: Info[ParleyContext, None], input: RegisterUserInput
    ) -> UserPayload:
        actor = info.context.actor()
        c = command(
            cmd.RegisterUser,
            email=input.email,
            password=input.password,
            display_name=input.display_name,
            role=DomainRole(input.role.value),
            tenant_id=parse_id(input.tenant_id, "tenant id") if input.tenant_id else None,
        )
        r = await run(info, info.context.handlers.register_user, c, actor)
        return UserPayload(user_id=strawberry.ID(str(r.id)), position=r.position)

    @strawberry.mutation(description="Tenant admins: change a user's role.")
    async def change_user_role(
        self, info: Info[ParleyContext, None], input: ChangeUserRoleInput
    ) -> UserPayload:
        actor = info.context.actor()
        c = command(
            cmd.ChangeUserRole,
            user_id=parse_id(input.user_id, "user id"),
            role=DomainRole(input.role.value),
        )
        r = await run(info, info.context.handlers.change_user_role, c, actor)
        return UserPayload(user_id=strawberry.ID(str(r.id)), position=r.position)

    @strawberry.mutation(description="Tenant admins: deactivate a user (they can no longer act).")
    async def deactivate_user(
        self, info: Info[ParleyContext, None], input: DeactivateUserInput
    ) -> UserPayload:
        actor = info.context.actor()
        c = command(cmd.DeactivateUser, user_id=parse_id(input.user_id, "user id"))
        r = await run(info, info.context.handlers.deactivate_user, c, actor)
        # Their access tokens are refused from now on (every operation checks); sign-ins end.
        await run(info, info.context.runtime.refresh_tokens.revoke_user, r.id, "deactivated")
        return UserPayload(user_id=strawberry.ID(str(r.id)), position=r.position)

    @strawberry.mutation(
        description="Tenant admins: models (default, allowed, fallbacks, enabled providers, "
        "max tokens), system prompt, cache, rate limits, budget, retention."
    )
    async def update_tenant_settings(
        self, info: Info[ParleyContext, None], input: UpdateTenantSettingsInput
    ) -> TenantPayload:
        actor = info.context.actor()
        caps = input.model_max_tokens
        if caps is not None and len({m.model for m in caps}) != len(caps):
            raise InvalidInput("modelMaxTokens lists a model twice")
        c = command(
            cmd.ChangeTenantSettings,
            default_model=input.default_model,
            allowed_models=input.allowed_models,
            retention_days=input.retention_days,
            fallback_models=input.fallback_models,
            system_prompt=input.system_prompt,
            cache_ttl_seconds=input.cache_ttl_seconds,
            user_requests_per_minute=input.user_requests_per_minute,
            tenant_requests_per_minute=input.tenant_requests_per_minute,
            tenant_tokens_per_minute=input.tenant_tokens_per_minute,
            monthly_budget_usd=input.monthly_budget_usd,
            enabled_providers=input.enabled_providers,
            model_max_tokens=None if caps is None else {m.model: m.max_tokens for m in caps},
        )
        r = await run(info, info.context.handlers.change_tenant_settings, c, actor)
        return TenantPayload(tenant_id=strawberry.ID(str(r.id)), position=r.position)

    @strawberry.mutation(description="Tenant admins: rename your tenant.")
    async def rename_tenant(
        self, info: Info[ParleyContext, None], input: RenameTenantInput
    ) -> TenantPayload:
        actor = info.context.actor()
        c = command(cmd.RenameTenant, name=input.name)
        r = await run(info, info.context.handlers.rename_tenant, c, actor)
        return TenantPayload(tenant_id=strawberry.ID(str(r.id)), position=r.position)

    @strawberry.mutation(
        description="Platform admins: deactivate a tenant (its users are locked out)."
    )
    async def deactivate_tenant(
        self, info: Info[ParleyContext, None], input: DeactivateTenantInput
    ) -> TenantPayload:
        actor = info.context.actor()
        c = command(cmd.DeactivateTenant, tenant_id=parse_id(input.tenant_id, "tenant id"))
        r = await run(info, info.context.handlers.deactivate_tenant, c, actor)
        await run(info, info.context.runtime.refresh_tokens.revoke_tenant, r.id, "deactivated")
        return TenantPayload(tenant_id=strawberry.ID(str(r.id)), position=r.position)

    @strawberry.mutation(description="Start a chat. A repeated clientMutationId returns the first.")
    async def start_chat(
        self, info: Info[ParleyContext, None], input: StartChatInput
    ) -> StartChatPayload:
        actor = info.context.actor()
        c = command(
            cmd.StartChat,
            title=input.title,
            model=input.model,
            client_mutation_id=input.client_mutation_id,
        )
        r = await run(info, info.context.handlers.start_chat, c, actor)
        return StartChatPayload(
            chat_id=strawberry.ID(str(r.id)),
            position=r.position,
            client_mutation_id=input.client_mutation_id,
        )

    @strawberry.mutation(
        description="Post a user message; the assistant's reply follows on chatEvents. "
        "A repeated clientMutationId returns the first result and records nothing new."
    )
    async def send_message(
        self, info: Info[ParleyContext, None], input: SendMessageInput
    ) -> SendMessagePayload:
        actor = info.context.actor()
        c = command(
            cmd.SendMessage,
            chat_id=parse_id(input.chat_id, "chat id"),
            content=input.content,
            client_mutation_id=input.client_mutation_id,
        )
        # A deactivated user's token must not consume the tenant's rate limits either.
        await run(info, info.context.runtime.authentication.check_can_act, actor)
        await info.context.runtime.admission.admit(actor, input.content)
        r = await run(info, info.context.handlers.send_message, c, actor)
        if r.duplicate:
            # The first result is durable; read it back as recorded.
            await info.context.read_models.wait_for(r.position)
            row = await info.context.read_models.message(actor.tenant_id, r.message_id)
            if row is None:  # deleted since
                raise NotFound("message not found")
            message = Message.from_row(row)
        else:
            assert r.created_at is not None
            message = Message(
                id=strawberry.ID(str(r.message_id)),
                chat_id=strawberry.ID(str(r.chat_id)),
                role=MessageRole.USER,
                content=r.content,
                model=r.model,
                created_at=r.created_at,
                position=r.position,
            )
        return SendMessagePayload(
            message_id=message.id,
            chat_id=message.chat_id,
            position=r.position,
            client_mutation_id=input.client_mutation_id,
            duplicate=r.duplicate,
            message=message,
        )

    @strawberry.mutation(description="Rename one of your chats.")
    async def rename_chat(
        self, info: Info[ParleyContext, None], input: RenameChatInput
    ) -> ChatPayload:
        actor = info.context.actor()
        c = command(cmd.RenameChat, chat_id=parse_id(input.chat_id, "chat id"), title=input.title)
        r = await run(info, info.context.handlers.rename_chat, c, actor)
        return ChatPayload(chat_id=strawberry.ID(str(r.id)), position=r.position)

    @strawberry.mutation(description="Archive one of your chats (still readable, still writable).")
    async def archive_chat(
        self, info: Info[ParleyContext, None], input: ChatIdInput
    ) -> ChatPayload:
        actor = info.context.actor()
        c = command(cmd.ArchiveChat, chat_id=parse_id(input.chat_id, "chat id"))
        r = await run(info, info.context.handlers.archive_chat, c, actor)
        return ChatPayload(chat_id=strawberry.ID(str(r.id)), position=r.position)

    @strawberry.mutation(
        description="Stop the reply being generated in one of your chats: the provider's "
        "connection is closed and the text so far is recorded with finishReason `cancelled` "
        "(it arrives as a MessageAdded). Harmless when nothing is being generated."
    )
    async def stop_generation(
        self, info: Info[ParleyContext, None], input: ChatIdInput
    ) -> StopGenerationPayload:
        actor = info.context.actor()
        chat_id = parse_id(input.chat_id, "chat id")
        await run(info, info.context.handlers.check_writable_chat, chat_id, actor)
        info.context.runtime.publish_live(chat_id, StopRequested(chat_id))
        return StopGenerationPayload(chat_id=input.chat_id, requested=True)

    @strawberry.mutation(description="Delete one of your chats: it leaves every read model.")
    async def delete_chat(self, info: Info[ParleyContext, None], input: ChatIdInput) -> ChatPayload:
        actor = info.context.actor()
        c = command(cmd.DeleteChat, chat_id=parse_id(input.chat_id, "chat id"))
        r = await run(info, info.context.handlers.delete_chat, c, actor)
        return ChatPayload(chat_id=strawberry.ID(str(r.id)), position=r.position)
