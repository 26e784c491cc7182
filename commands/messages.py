"""Commands: small immutable requests to change state, validated on construction of the domain."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.chat import Citation, Generation
from domain.document import Collection
from domain.user import Role


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateTenant(Command):
    name: str
    slug: str
    admin_email: str
    admin_password: str
    admin_display_name: str = "Administrator"


class CreatePlatformAdmin(Command):
    """Operator bootstrap (CLI only): a platform admin in the reserved `platform` tenant."""

    email: str
    password: str
    display_name: str = "Platform Admin"


class RenameTenant(Command):
    name: str
    tenant_id: UUID | None = None  # only platform admins may name another tenant


class DeactivateTenant(Command):
    tenant_id: UUID


class RegisterUser(Command):
    email: str
    password: str
    display_name: str
    role: Role = Role.MEMBER
    tenant_id: UUID | None = None  # only platform admins may name another tenant


class ChangeUserRole(Command):
    user_id: UUID
    role: Role


class DeactivateUser(Command):
    user_id: UUID


class ChangePassword(Command):
    """The caller's own password; the current one proves it is them."""

    current_password: str
    new_password: str


class ResetPassword(Command):
    """An operator's (no caller): a user's password set without the current one."""

    user_id: UUID
    new_password: str


class ChangeTenantSettings(Command):
    default_model: str
    allowed_models: list[str]
    retention_days: int | None = None
    fallback_models: list[str] | None = None
    system_prompt: str | None = None
    cache_ttl_seconds: int | None = None
    user_requests_per_minute: int | None = None
    tenant_requests_per_minute: int | None = None
    tenant_tokens_per_minute: int | None = None
    monthly_budget_usd: float | None = None
    enabled_providers: list[str] | None = None
    model_max_tokens: dict[str, int] | None = None


class SetProviderKey(Command):
    provider: str
    api_key: str


class RemoveProviderKey(Command):
    provider: str


class CreateApiKey(Command):
    name: str
    role: Role


class RevokeApiKey(Command):
    key_id: str


class StartChat(Command):
    title: str
    model: str | None = None
    client_mutation_id: str | None = None


class SendMessage(Command):
    chat_id: UUID
    content: str
    client_mutation_id: str | None = None


class RenameChat(Command):
    chat_id: UUID
    title: str


class ArchiveChat(Command):
    chat_id: UUID


class DeleteChat(Command):
    chat_id: UUID


class StopGeneration(Command):
    """Only the chat's owner controls its replies; the stop itself travels on the live feed."""

    chat_id: UUID


class ExpireChat(Command):
    """Retention (Parley itself): the chat's last activity is older than the tenant allows."""

    chat_id: UUID
    retention_days: int
    last_activity: datetime


class ResealProviderKeys(Command):
    """Master key rotation (an operator): one tenant's provider keys, under the current key."""

    tenant_id: UUID


class ResealOidcSecret(Command):
    """Master key rotation (an operator): one tenant's OIDC client secret, under the current key."""

    tenant_id: UUID


class SignInWithOidc(Command):
    """The tenant's issuer vouched for a verified e-mail address (the user may be provisioned)."""

    tenant_id: UUID
    email: str
    display_name: str | None = None


class EraseUser(Command):
    user_id: UUID


class RecordReply(Command):
    """Issued by the responder, not by clients: the finished assistant reply to a user message."""

    chat_id: UUID
    reply_to: UUID
    content: str
    model: str
    input_tokens: int
    output_tokens: int
    finish_reason: str
    latency_ms: int
    generation: Generation | None = None
    citations: list[Citation] | None = None


class ConfigureOidc(Command):
    issuer: str
    client_id: str
    client_secret: str | None = None
    """None: keep the current secret (same issuer and client only); "": a public client."""
    allowed_domains: list[str] = []
    auto_provision_role: Role | None = None
    redirect_uris: list[str]


class RemoveOidc(Command):
    pass


class UploadDocument(Command):
    """A file to answer from: the caller's own, or (admins) the tenant's collection."""

    filename: str
    data: bytes
    declared_type: str | None = None
    """What the client says the file is; the bytes decide."""
    collection: Collection = Collection.PERSONAL
    client_mutation_id: str | None = None


class ReprocessDocument(Command):
    document_id: UUID


class DeleteDocument(Command):
    document_id: UUID


class RecordDocumentProcessed(Command):
    """Issued by the knowledge projection: a revision's passages are indexed."""

    document_id: UUID
    revision: int
    chunks: int
    characters: int
    pages: int | None
    model: str


class RecordDocumentFailed(Command):
    """Issued by the knowledge projection: a revision cannot be processed."""

    document_id: UUID
    revision: int
    code: str
    reason: str


class AttachKnowledge(Command):
    """Ground a chat's replies in documents (replacing what it had) and the tenant's collection."""

    chat_id: UUID
    document_ids: list[UUID]
    tenant_collection: bool = False


class ExpireDocument(Command):
    """Retention (Parley itself): the document was not used for its tenant's period."""

    document_id: UUID
    retention_days: int
    last_activity: datetime
