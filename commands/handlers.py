"""One handler per command: load, decide (in the aggregate), save. Retried on write conflicts.

Handlers are synchronous (the event store is) and run in a worker thread when called from the API.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from commands.messages import (
    ArchiveChat,
    ChangePassword,
    ChangeTenantSettings,
    ChangeUserRole,
    ConfigureOidc,
    CreateApiKey,
    CreatePlatformAdmin,
    CreateTenant,
    DeactivateTenant,
    DeactivateUser,
    DeleteChat,
    EraseUser,
    RecordReply,
    RegisterUser,
    RemoveOidc,
    RemoveProviderKey,
    RenameChat,
    RenameTenant,
    RevokeApiKey,
    SendMessage,
    SetProviderKey,
    StartChat,
)
from commands.runner import CommandRunner
from commands.unit_of_work import UnitOfWork
from domain.actor import Actor
from domain.base import stable_id
from domain.chat import ChatSession, MessageRole, reply_id_for
from domain.errors import (
    Conflict,
    InvalidInput,
    NotAllowed,
    NotFound,
    WrongPassword,
)
from domain.policy import (
    ADMINISTER,
    CHAT,
    PLATFORM,
    acting_user,
    own_user,
    require_role,
    target_tenant,
    writable_chat,
)
from domain.tenant import (
    ApiKey,
    Limits,
    Tenant,
    oidc_secret_context,
    tenant_id_for_slug,
)
from domain.user import Role, User
from infra.eventstore.event_store import EventStore
from infra.identity.acting import acting_now
from infra.identity.api_keys import issue_api_key
from infra.identity.master_key import MasterKey, fingerprint
from infra.identity.passwords import hash_password, verify_password
from infra.metrics import USERS_ERASED

log = logging.getLogger(__name__)

MIN_PASSWORD = 12
PLATFORM_SLUG = "platform"
MAX_PASSWORD = 1024
MAX_CLIENT_MUTATION_ID = 200


@dataclass(frozen=True)
class Written:
    """What a command produced: the aggregate it touched and the log position to wait for."""

    id: UUID
    position: int
    duplicate: bool = False


@dataclass(frozen=True)
class TenantCreated:
    tenant_id: UUID
    admin_user_id: UUID
    position: int


@dataclass(frozen=True)
class MessageSent:
    chat_id: UUID
    message_id: UUID
    content: str
    model: str | None
    created_at: datetime | None
    position: int
    duplicate: bool


@dataclass(frozen=True)
class IssuedApiKey:
    key: ApiKey
    token: str
    """`pk_<key id>_<secret>`: shown to the tenant admin once, never stored."""
    position: int


class CommandHandlers:
    """The write side's service layer, wired to one event store."""

    def __init__(
        self, store: EventStore, *, max_attempts: int = 20, master_key: MasterKey | None = None
    ) -> None:
        self.store = store
        self.master_key = master_key
        self.runner = CommandRunner(store, max_attempts)
        """Also sign-in's (commands/authentication.py): one runner per process."""
        self._run = self.runner.run

    # -- tenants and users -------------------------------------------------------------------

    def create_tenant(self, cmd: CreateTenant, actor: Actor | None = None) -> TenantCreated:
        """Platform operation (CLI or a platform admin): a tenant and its first tenant admin."""
        if cmd.slug == PLATFORM_SLUG:
            raise InvalidInput(f"the slug {PLATFORM_SLUG!r} is reserved")

        def attempt(uow: UnitOfWork) -> TenantCreated:
            if actor is not None:  # inside _run: the events name the platform admin
                me = self.acting(uow, actor)
                require_role(me, PLATFORM, "create tenants")
            tenant = Tenant.create(name=cmd.name, slug=cmd.slug)
            admin = User.register(
                tenant_id=tenant.id,
                email=cmd.admin_email,
                display_name=cmd.admin_display_name,
                role=Role.TENANT_ADMIN,
                password_hash=hash_password(check_password(cmd.admin_password)),
            )
            try:
                position = uow.save(tenant, admin)
            except IntegrityError:
                raise Conflict(f"tenant slug {cmd.slug!r} is taken") from None
            return TenantCreated(tenant_id=tenant.id, admin_user_id=admin.id, position=position)

        return self._run("create_tenant", attempt)

    def create_platform_admin(self, cmd: CreatePlatformAdmin) -> Written:
        """Operator bootstrap: the `platform` tenant (created on first use) and an admin in it."""

        def attempt(uow: UnitOfWork) -> Written:
            tenant_id = tenant_id_for_slug(PLATFORM_SLUG)
            tenant = self.store.get_or_none(tenant_id)
            pending: list[Tenant | User] = []
            if tenant is None:
                tenant = Tenant.create(name="Platform", slug=PLATFORM_SLUG)
                pending.append(tenant)
            user = User.register(
                tenant_id=tenant_id,
                email=cmd.email,
                display_name=cmd.display_name,
                role=Role.PLATFORM_ADMIN,
                password_hash=hash_password(check_password(cmd.password)),
            )
            try:
                position = uow.save(*pending, user)
            except IntegrityError:
                if self.store.get_or_none(user.id) is not None:
                    raise Conflict("this platform admin already exists") from None
                raise  # the platform tenant was created concurrently: retry
            return Written(id=user.id, position=position)

        return self._run("create_platform_admin", attempt, retry=True)

    def rename_tenant(self, cmd: RenameTenant, actor: Actor) -> Written:
        def attempt(uow: UnitOfWork) -> Written:
            me = self.acting(uow, actor)
            require_role(me, ADMINISTER, "rename the tenant")
            tenant = self._tenant(me.tenant_id)
            tenant.rename(cmd.name)
            return Written(id=tenant.id, position=uow.save(tenant))

        return self._run("rename_tenant", attempt, retry=True)

    def deactivate_tenant(self, cmd: DeactivateTenant, actor: Actor) -> Written:
        """Platform admins only: the tenant's users can no longer sign in, read or write."""

        def attempt(uow: UnitOfWork) -> Written:
            me = self.acting(uow, actor)
            require_role(me, PLATFORM, "deactivate tenants")
            if cmd.tenant_id == me.tenant_id:
                raise InvalidInput("you cannot deactivate your own tenant")
            tenant = self._tenant(cmd.tenant_id)
            tenant.deactivate()
            return Written(id=tenant.id, position=uow.save(tenant))

        return self._run("deactivate_tenant", attempt, retry=True)

    def register_user(self, cmd: RegisterUser, actor: Actor) -> Written:
        def attempt(uow: UnitOfWork) -> Written:
            me = self.acting(uow, actor)
            require_role(me, ADMINISTER, "register users")
            tenant_id = target_tenant(me, cmd.tenant_id)
            if cmd.role is Role.PLATFORM_ADMIN and not me.is_platform_admin:
                raise NotAllowed("only platform admins may grant platform_admin")
            tenant = self._tenant(tenant_id)
            if not tenant.active:
                raise NotAllowed("tenant is deactivated")
            user = User.register(
                tenant_id=tenant_id,
                email=cmd.email,
                display_name=cmd.display_name,
                role=cmd.role,
                password_hash=hash_password(check_password(cmd.password)),
            )
            try:
                position = uow.save(user)
            except IntegrityError:
                raise Conflict("a user with this email already exists in the tenant") from None
            return Written(id=user.id, position=position)

        return self._run("register_user", attempt)

    def change_user_role(self, cmd: ChangeUserRole, actor: Actor) -> Written:
        def attempt(uow: UnitOfWork) -> Written:
            me = self.acting(uow, actor)
            require_role(me, ADMINISTER, "change roles")
            user = self._user_in_tenant(cmd.user_id, me)
            if cmd.role is Role.PLATFORM_ADMIN and not me.is_platform_admin:
                raise NotAllowed("only platform admins may grant platform_admin")
            user.change_role(cmd.role)
            return Written(id=user.id, position=uow.save(user))

        return self._run("change_user_role", attempt, retry=True)

    def deactivate_user(self, cmd: DeactivateUser, actor: Actor) -> Written:
        def attempt(uow: UnitOfWork) -> Written:
            me = self.acting(uow, actor)
            require_role(me, ADMINISTER, "deactivate users")
            user = self._user_in_tenant(cmd.user_id, me)
            if user.id == me.user_id:
                raise InvalidInput("you cannot deactivate yourself")
            user.deactivate()
            return Written(id=user.id, position=uow.save(user))

        return self._run("deactivate_user", attempt, retry=True)

    def erase_user(self, cmd: EraseUser, actor: Actor | None) -> Written:
        """GDPR erasure: destroy the user's data keys (theirs and their chats'), then record
        `User.Erased`. Their personal data in the log, on Kafka and in backups of the log is
        ciphertext nobody can decrypt any more; projections remove it from the read side.
        `actor` None: an operator at the command line."""

        def attempt(uow: UnitOfWork) -> Written:
            if actor is None:
                user = self.store.get_or_none(cmd.user_id)
                if not isinstance(user, User):
                    raise NotFound("user not found")
            else:
                me = self.acting(uow, actor)
                require_role(me, ADMINISTER, "erase users")
                user = self._user_in_tenant(cmd.user_id, me)
                if user.id == me.user_id:
                    raise InvalidInput("you cannot erase yourself: ask another admin")
            keys = self.store.data_keys
            with keys.connection() as conn:
                key_ids = keys.keys_of_user(conn, user.tenant_id, user.id)
                keys.destroy([user.id, *key_ids], f"user {user.id} erased", conn)
            user.erase(keys_destroyed=len(set([user.id, *key_ids])))
            position = uow.save(user)
            USERS_ERASED.inc()
            log.info("erased user %s of tenant %s", user.id, user.tenant_id)
            return Written(id=user.id, position=position)

        return self._run("erase_user", attempt, retry=True)

    def expire_chat(self, chat_id: UUID, retention_days: int, last_activity: datetime) -> Written:
        """Retention (Parley itself acting): destroy the chat's data key, record Expired."""

        def attempt(uow: UnitOfWork) -> Written:
            chat = self.store.get_or_none(chat_id)
            if not isinstance(chat, ChatSession):
                raise NotFound("chat not found")
            if chat.is_deleted:
                return Written(id=chat.id, position=self.store.head())
            self.store.data_keys.destroy([chat.id], f"retention: {retention_days} days")
            chat.expire(retention_days, last_activity)
            return Written(id=chat.id, position=uow.save(chat))

        return self._run("expire_chat", attempt, retry=True, key=chat_id)

    def change_tenant_settings(self, cmd: ChangeTenantSettings, actor: Actor) -> Written:
        def attempt(uow: UnitOfWork) -> Written:
            me = self.acting(uow, actor)
            require_role(me, ADMINISTER, "change tenant settings")
            tenant = self._tenant(me.tenant_id)
            tenant.change_settings(
                default_model=cmd.default_model,
                allowed_models=cmd.allowed_models,
                retention_days=cmd.retention_days,
                fallback_models=cmd.fallback_models,
                system_prompt=cmd.system_prompt,
                cache_ttl_seconds=cmd.cache_ttl_seconds,
                limits=_limits(tenant.limits, cmd),
                enabled_providers=cmd.enabled_providers,
                model_max_tokens=cmd.model_max_tokens,
            )
            return Written(id=tenant.id, position=uow.save(tenant))

        return self._run("change_tenant_settings", attempt, retry=True)

    def set_provider_key(self, cmd: SetProviderKey, actor: Actor) -> Written:
        """Tenant admins: the tenant's own key for a provider, sealed under the master key
        (bound to the tenant and provider); the plaintext is never stored or returned."""
        api_key = cmd.api_key.strip()
        if not 8 <= len(api_key) <= 1000:
            raise InvalidInput("apiKey must be 8..1000 characters")
        if self.master_key is None:
            raise NotAllowed("this deployment has no master key for tenant keys")
        master_key = self.master_key

        def attempt(uow: UnitOfWork) -> Written:
            me = self.acting(uow, actor)
            require_role(me, ADMINISTER, "set provider keys")
            tenant = self._tenant(me.tenant_id)
            tenant.set_provider_key(
                provider=cmd.provider,
                sealed=master_key.seal(api_key, f"{tenant.id}:{cmd.provider}"),
                fingerprint=fingerprint(api_key),
                last4=api_key[-4:],
            )
            return Written(id=tenant.id, position=uow.save(tenant))

        return self._run("set_provider_key", attempt, retry=True)

    def reseal_provider_keys(self, tenant_ids: list[UUID]) -> int:
        """Master key rotation (an operator): re-record every provider key not sealed under
        the current master key, sealed under it (the recorded ones are immutable). Returns how
        many were re-sealed."""

        def reseal(tenant: Tenant, master_key: MasterKey) -> int:
            stale = [
                k for k in tenant.provider_keys.values() if not master_key.is_current(k.sealed)
            ]
            for key in stale:
                tenant.set_provider_key(
                    provider=key.provider,
                    sealed=master_key.reseal(key.sealed, f"{tenant.id}:{key.provider}"),
                    fingerprint=key.fingerprint,
                    last4=key.last4,
                )
            return len(stale)

        return self._reseal("reseal_provider_keys", tenant_ids, reseal)

    def _reseal(
        self, name: str, tenant_ids: list[UUID], reseal: Callable[[Tenant, MasterKey], int]
    ) -> int:
        """Run `reseal` on each active tenant (one command each), saving what it re-recorded; a
        deactivated tenant's secrets are never used again. Returns the total re-sealed."""
        master_key = self.master_key
        if master_key is None:
            return 0
        resealed = 0
        for tenant_id in tenant_ids:

            def attempt(uow: UnitOfWork, tenant_id: UUID = tenant_id) -> int:
                tenant = self._tenant(tenant_id)
                if not tenant.active:
                    return 0
                count = reseal(tenant, master_key)
                if count:
                    uow.save(tenant)
                return count

            resealed += self._run(name, attempt, retry=True)
        return resealed

    def remove_provider_key(self, cmd: RemoveProviderKey, actor: Actor) -> Written:
        def attempt(uow: UnitOfWork) -> Written:
            me = self.acting(uow, actor)
            require_role(me, ADMINISTER, "remove provider keys")
            tenant = self._tenant(me.tenant_id)
            tenant.remove_provider_key(cmd.provider)
            return Written(id=tenant.id, position=uow.save(tenant))

        return self._run("remove_provider_key", attempt, retry=True)

    def configure_oidc(self, cmd: ConfigureOidc, actor: Actor) -> Written:
        """Tenant admins: sign-in through an OpenID Connect issuer. The client secret is sealed
        under the master key (bound to tenant, issuer and client) and never returned."""
        secret = None if cmd.client_secret is None else cmd.client_secret.strip()
        if secret and len(secret) > 1000:
            raise InvalidInput("clientSecret must be at most 1000 characters")
        if secret and self.master_key is None:
            raise NotAllowed("this deployment has no master key for client secrets")
        master_key = self.master_key

        def attempt(uow: UnitOfWork) -> Written:
            me = self.acting(uow, actor)
            require_role(me, ADMINISTER, "configure OIDC sign-in")
            tenant = self._tenant(me.tenant_id)
            issuer, client_id = cmd.issuer.strip(), cmd.client_id.strip()
            current = tenant.oidc
            same_client = current is not None and (current.issuer, current.client_id) == (
                issuer,
                client_id,
            )
            sealed: str | None = None
            if secret:
                assert master_key is not None
                sealed = master_key.seal(secret, oidc_secret_context(tenant.id, issuer, client_id))
            elif secret is None and current is not None and same_client:
                # Kept only for the same issuer and client: never sent to another token endpoint.
                sealed = current.sealed_client_secret
            tenant.configure_oidc(
                issuer=issuer,
                client_id=client_id,
                sealed_client_secret=sealed,
                allowed_domains=cmd.allowed_domains,
                auto_provision_role=cmd.auto_provision_role.value
                if cmd.auto_provision_role
                else None,
                redirect_uris=cmd.redirect_uris,
            )
            return Written(id=tenant.id, position=uow.save(tenant))

        return self._run("configure_oidc", attempt, retry=True)

    def remove_oidc(self, cmd: RemoveOidc, actor: Actor) -> Written:
        def attempt(uow: UnitOfWork) -> Written:
            me = self.acting(uow, actor)
            require_role(me, ADMINISTER, "remove OIDC sign-in")
            tenant = self._tenant(me.tenant_id)
            tenant.remove_oidc()
            return Written(id=tenant.id, position=uow.save(tenant))

        return self._run("remove_oidc", attempt, retry=True)

    def reseal_oidc_secrets(self, tenant_ids: list[UUID]) -> int:
        """Master key rotation (an operator): re-record each OIDC client secret not sealed under
        the current master key, sealed under it. Returns how many were re-sealed."""

        def reseal(tenant: Tenant, master_key: MasterKey) -> int:
            config = tenant.oidc
            if config is None or config.sealed_client_secret is None:
                return 0
            if master_key.is_current(config.sealed_client_secret):
                return 0
            context = oidc_secret_context(tenant.id, config.issuer, config.client_id)
            tenant.configure_oidc(
                issuer=config.issuer,
                client_id=config.client_id,
                sealed_client_secret=master_key.reseal(config.sealed_client_secret, context),
                allowed_domains=list(config.allowed_domains),
                auto_provision_role=config.auto_provision_role,
                redirect_uris=list(config.redirect_uris),
            )
            return 1

        return self._reseal("reseal_oidc_secrets", tenant_ids, reseal)

    def change_password(self, cmd: ChangePassword, actor: Actor) -> Written:
        """The caller's own password, once they proved they know the current one. Runs argon2
        twice: call it on the password pool."""
        new_password = check_password(cmd.new_password)

        def attempt(uow: UnitOfWork) -> Written:
            self.acting(uow, actor)
            user = self.active_user(actor)
            if not verify_password(user.password_hash, cmd.current_password):
                raise WrongPassword("currentPassword is not your current password")
            user.change_password_hash(hash_password(new_password))
            return Written(id=user.id, position=uow.save(user))

        return self._run("change_password", attempt, retry=True, key=actor.user_id)

    def active_user(self, actor: Actor) -> User:
        """The caller's own aggregate, to change; no action by a deactivated (or vanished) user."""
        return own_user(actor, self.store.get_or_none(actor.user_id))

    def acting(self, uow: UnitOfWork, actor: Actor) -> Actor:
        """The caller as they are now (`acting_now`); from here on, the one the attempt's events
        name."""
        me = acting_now(self.store, actor)
        uow.actor_id = actor.user_id
        return me

    def acting_on(self, uow: UnitOfWork, actor: Actor, aggregate_id: UUID) -> tuple[Actor, Any]:
        """`acting`, and the aggregate the command changes (or None): read together, one round
        trip for all three when they are cached."""
        if actor.api_key_id is not None:
            return self.acting(uow, actor), self.store.get_or_none(aggregate_id)
        user, tenant, target = self.store.load(
            (actor.user_id, True), (actor.tenant_id, True), (aggregate_id, False)
        )
        me = acting_user(actor, user, tenant)
        uow.actor_id = actor.user_id
        return me, target

    # -- service accounts ----------------------------------------------------------------------

    def create_api_key(self, cmd: CreateApiKey, actor: Actor) -> IssuedApiKey:
        """Tenant admins: a service account's key. Its secret is returned here only; the
        tenant keeps its SHA-256."""

        def attempt(uow: UnitOfWork) -> IssuedApiKey:
            me = self._managing_api_keys(uow, actor, "create API keys")
            tenant = self._tenant(me.tenant_id)
            issued = issue_api_key(tenant.id)
            tenant.create_api_key(
                key_id=issued.key_id,
                name=cmd.name,
                role=Role(cmd.role).value,
                secret_sha256=issued.secret_sha256,
                last4=issued.last4,
            )
            position = uow.save(tenant)
            return IssuedApiKey(tenant.api_keys[issued.key_id], issued.token, position)

        return self._run("create_api_key", attempt, retry=True)

    def revoke_api_key(self, cmd: RevokeApiKey, actor: Actor) -> Written:
        def attempt(uow: UnitOfWork) -> Written:
            me = self._managing_api_keys(uow, actor, "revoke API keys")
            tenant = self._tenant(me.tenant_id)
            tenant.revoke_api_key(cmd.key_id)
            return Written(id=tenant.id, position=uow.save(tenant))

        return self._run("revoke_api_key", attempt, retry=True)

    def _managing_api_keys(self, uow: UnitOfWork, actor: Actor, action: str) -> Actor:
        """Only people manage keys: a leaked key must not be able to mint or keep others."""
        me = self.acting(uow, actor)
        require_role(me, ADMINISTER, action)
        if me.api_key_id is not None:
            raise NotAllowed(f"API keys may not {action}; a tenant admin signs in for that")
        return me

    # -- chats -------------------------------------------------------------------------------

    def start_chat(self, cmd: StartChat, actor: Actor) -> Written:
        def attempt(uow: UnitOfWork) -> Written:
            me = self.acting(uow, actor)
            require_role(me, CHAT, "start chats")
            key = check_client_mutation_id(cmd.client_mutation_id)
            chat_id = stable_id("chat", me.user_id, key) if key else uuid4()
            if key:
                existing = self.store.get_or_none(chat_id)
                if existing is not None:
                    return Written(id=chat_id, position=self.store.head(), duplicate=True)
            model = self._tenant(me.tenant_id).resolve_model(cmd.model)
            chat = ChatSession.start(
                chat_id=chat_id,
                tenant_id=me.tenant_id,
                owner_id=me.user_id,
                title=cmd.title,
                model=model,
            )
            return Written(id=chat.id, position=uow.save(chat))

        return self._run("start_chat", attempt, retry=True)

    def send_message(self, cmd: SendMessage, actor: Actor) -> MessageSent:
        def attempt(uow: UnitOfWork) -> MessageSent:
            me, chat = self.acting_on(uow, actor, cmd.chat_id)
            key = check_client_mutation_id(cmd.client_mutation_id)
            chat = writable_chat(me, chat)
            first = chat.message_for_client_mutation(key)
            if first is not None:
                original = next(m for m in chat.messages if m.id == first)
                return MessageSent(
                    chat_id=chat.id,
                    message_id=first,
                    content=original.content,
                    model=chat.model,
                    created_at=None,
                    position=self.store.head(),
                    duplicate=True,
                )
            message_id = stable_id("message", chat.id, key) if key else uuid4()
            chat.post_message(
                message_id=message_id,
                role=MessageRole.USER,
                content=cmd.content,
                author_id=me.user_id,
                model=chat.model,
                client_mutation_id=key,
            )
            position = uow.save(chat)
            return MessageSent(
                chat_id=chat.id,
                message_id=message_id,
                content=cmd.content,
                model=chat.model,
                created_at=chat.modified_on,
                position=position,
                duplicate=False,
            )

        return self._run("send_message", attempt, retry=True, key=cmd.chat_id)

    def check_writable_chat(self, chat_id: UUID, actor: Actor) -> None:
        """For stopGeneration: only the chat's owner controls its replies."""

        def attempt(uow: UnitOfWork) -> None:
            writable_chat(*self.acting_on(uow, actor, chat_id))

        self._run("stop_generation", attempt)

    def rename_chat(self, cmd: RenameChat, actor: Actor) -> Written:
        def attempt(uow: UnitOfWork) -> Written:
            chat = writable_chat(*self.acting_on(uow, actor, cmd.chat_id))
            chat.rename(cmd.title)
            return Written(id=chat.id, position=uow.save(chat))

        return self._run("rename_chat", attempt, retry=True, key=cmd.chat_id)

    def archive_chat(self, cmd: ArchiveChat, actor: Actor) -> Written:
        def attempt(uow: UnitOfWork) -> Written:
            chat = writable_chat(*self.acting_on(uow, actor, cmd.chat_id))
            chat.archive()
            return Written(id=chat.id, position=uow.save(chat))

        return self._run("archive_chat", attempt, retry=True, key=cmd.chat_id)

    def delete_chat(self, cmd: DeleteChat, actor: Actor) -> Written:
        def attempt(uow: UnitOfWork) -> Written:
            chat = writable_chat(*self.acting_on(uow, actor, cmd.chat_id))
            chat.delete()
            return Written(id=chat.id, position=uow.save(chat))

        return self._run("delete_chat", attempt, retry=True, key=cmd.chat_id)

    def record_reply(self, cmd: RecordReply) -> Written | None:
        """The responder's write: idempotent (the reply id derives from the user message id)."""

        def attempt(uow: UnitOfWork) -> Written | None:
            chat = self.store.get_or_none(cmd.chat_id)
            reply_id = reply_id_for(cmd.reply_to)
            if not isinstance(chat, ChatSession) or chat.is_deleted:
                return None  # the chat went away while we were answering
            if chat.has_message(reply_id):
                return Written(id=reply_id, position=self.store.head(), duplicate=True)
            chat.post_message(
                message_id=reply_id,
                role=MessageRole.ASSISTANT,
                content=cmd.content,
                author_id=None,
                model=cmd.model,
                input_tokens=cmd.input_tokens,
                output_tokens=cmd.output_tokens,
                finish_reason=cmd.finish_reason,
                latency_ms=cmd.latency_ms,
                reply_to=cmd.reply_to,
                generation=cmd.generation,
            )
            return Written(id=reply_id, position=uow.save(chat))

        return self._run("record_reply", attempt, retry=True, key=cmd.chat_id)

    # -- plumbing ----------------------------------------------------------------------------

    def _tenant(self, tenant_id: UUID) -> Tenant:
        tenant = self.store.get_or_none(tenant_id)
        if not isinstance(tenant, Tenant):
            raise NotFound("tenant not found")
        return tenant

    def _user_in_tenant(self, user_id: UUID, actor: Actor) -> User:
        user = self.store.get_or_none(user_id)
        if not isinstance(user, User) or (
            user.tenant_id != actor.tenant_id and not actor.is_platform_admin
        ):
            raise NotFound("user not found")
        return user


def _limits(current: Limits, cmd: ChangeTenantSettings) -> Limits | None:
    """The limits after the command: each given field replaces the current one."""
    given = {
        name: getattr(cmd, name)
        for name in (
            "user_requests_per_minute",
            "tenant_requests_per_minute",
            "tenant_tokens_per_minute",
            "monthly_budget_usd",
        )
        if getattr(cmd, name) is not None
    }
    return replace(current, **given) if given else None


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"password must be {MIN_PASSWORD}..{MAX_PASSWORD} characters")
    return password


def check_client_mutation_id(key: str | None) -> str | None:
    if key is None or key == "":
        return None
    if len(key) > MAX_CLIENT_MUTATION_ID:
        raise InvalidInput(f"clientMutationId must be at most {MAX_CLIENT_MUTATION_ID} characters")
    return key
