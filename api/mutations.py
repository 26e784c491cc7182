"""GraphQL mutations: input → command → the bus (`ParleyContext.execute`) → payload."""

import strawberry
from strawberry.types import Info

from api.command_mutation import command_mutation
from api.context import ParleyContext
from api.services import Services
from commands import messages as cmd
from commands.results import TenantCreated, Written
from domain.base import parse_id
from domain.errors import InvalidInput, NotFound
from domain.user import Role as DomainRole
from infra.messaging.live_items import StopRequested
from queries.types import Message, MessageRole, Role


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


def _create_tenant(input: CreateTenantInput) -> cmd.CreateTenant:
    return cmd.CreateTenant(
        name=input.name,
        slug=input.slug,
        admin_email=input.admin_email,
        admin_password=input.admin_password,
        admin_display_name=input.admin_display_name,
    )


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
    return cmd.ChangeTenantSettings(
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


def _rename_tenant(input: RenameTenantInput) -> cmd.RenameTenant:
    return cmd.RenameTenant(name=input.name)


def _deactivate_tenant(input: DeactivateTenantInput) -> cmd.DeactivateTenant:
    return cmd.DeactivateTenant(tenant_id=parse_id(input.tenant_id, "tenant id"))


def _tenant_written(r: Written, input: object) -> TenantPayload:
    return TenantPayload(tenant_id=strawberry.ID(str(r.id)), position=r.position)


def _start_chat(input: StartChatInput) -> cmd.StartChat:
    return cmd.StartChat(
        title=input.title, model=input.model, client_mutation_id=input.client_mutation_id
    )


def _chat_started(r: Written, input: StartChatInput) -> StartChatPayload:
    return StartChatPayload(
        chat_id=strawberry.ID(str(r.id)),
        position=r.position,
        client_mutation_id=input.client_mutation_id,
    )


def _rename_chat(input: RenameChatInput) -> cmd.RenameChat:
    return cmd.RenameChat(chat_id=parse_id(input.chat_id, "chat id"), title=input.title)


def _archive_chat(input: ChatIdInput) -> cmd.ArchiveChat:
    return cmd.ArchiveChat(chat_id=parse_id(input.chat_id, "chat id"))


def _delete_chat(input: ChatIdInput) -> cmd.DeleteChat:
    return cmd.DeleteChat(chat_id=parse_id(input.chat_id, "chat id"))


def _chat_written(r: Written, input: object) -> ChatPayload:
    return ChatPayload(chat_id=strawberry.ID(str(r.id)), position=r.position)


async def _end_sign_ins(services: Services, r: Written) -> None:
    """A deactivated user's access tokens are refused from now on (every operation checks);
    their sign-ins end."""
    await services.run_blocking(services.refresh_tokens.revoke_user, r.id, "deactivated")


async def _end_tenant_sign_ins(services: Services, r: Written) -> None:
    await services.run_blocking(services.refresh_tokens.revoke_tenant, r.id, "deactivated")


@strawberry.type
class Mutation:
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
    start_chat = command_mutation(
        _start_chat,
        _chat_started,
        description="Start a chat. A repeated clientMutationId returns the first.",
    )

    @strawberry.mutation(
        description="Post a user message; the assistant's reply follows on chatEvents. "
        "A repeated clientMutationId returns the first result and records nothing new."
    )
    async def send_message(
        self, info: Info[ParleyContext, None], input: SendMessageInput
    ) -> SendMessagePayload:
        # One thread hop: the handler authorises the caller, admits the message (budget, rate
        # limits) over the tenant it loaded with the chat, and records it.
        r = await info.context.execute(
            lambda: cmd.SendMessage(
                chat_id=parse_id(input.chat_id, "chat id"),
                content=input.content,
                client_mutation_id=input.client_mutation_id,
            )
        )
        if r.duplicate:
            # The first result is durable; read it back as recorded.
            read_models = info.context.read_models
            await read_models.wait_for(r.position)
            row = await read_models.message(info.context.actor().tenant_id, r.message_id)
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

    rename_chat = command_mutation(
        _rename_chat, _chat_written, description="Rename one of your chats."
    )
    archive_chat = command_mutation(
        _archive_chat,
        _chat_written,
        description="Archive one of your chats (still readable, still writable).",
    )

    @strawberry.mutation(
        description="Stop the reply being generated in one of your chats: the provider's "
        "connection is closed and the text so far is recorded with finishReason `cancelled` "
        "(it arrives as a MessageAdded). Harmless when nothing is being generated."
    )
    async def stop_generation(
        self, info: Info[ParleyContext, None], input: ChatIdInput
    ) -> StopGenerationPayload:
        chat_id = await info.context.execute(
            lambda: cmd.StopGeneration(chat_id=parse_id(input.chat_id, "chat id"))
        )
        info.context.services.publish_live(chat_id, StopRequested(chat_id))
        return StopGenerationPayload(chat_id=input.chat_id, requested=True)

    delete_chat = command_mutation(
        _delete_chat,
        _chat_written,
        description="Delete one of your chats: it leaves every read model.",
    )
