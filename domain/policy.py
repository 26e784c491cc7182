"""Who may do what, in which tenant, to whose data: the one place that decides.

Commands (their handlers in commands/), queries, subscriptions and search (queries/) and the audit
queries all ask here. Decisions are made on the caller as they are now (`acting_user`,
`acting_service_account`: not the token's role claim, which may be up to one token lifetime old)
and are role × tenant × ownership:

- PLATFORM (platform_admin): create and deactivate tenants, grant platform_admin, act in
  any tenant where a command names it.
- ADMINISTER (tenant_admin, platform_admin): users, roles, erasure, tenant settings, provider
  keys, API keys, OIDC, the gateway's status.
- CHAT (member, tenant_admin, platform_admin): start chats and write to one's own.
- READ_ALL_CHATS (auditor): read every chat of the tenant, not only one's own.
- AUDIT (auditor, platform_admin): the audit log and point-in-time replay.
- SEE_ALL_USAGE (tenant_admin, auditor, platform_admin): everyone's usage (others: their own).
- LIST_USERS (tenant_admin, auditor, platform_admin): the list of the tenant's users.
- LIST_TENANTS (platform_admin): the list of every tenant (the one read across tenants).
- Documents: members upload personal documents (theirs to manage); admins manage the tenant's
  collection, which every member reads and grounds chats in; auditors read every document of
  the tenant (they read every chat, and chats cite documents).

Data of another tenant is never "forbidden" but "not found": ids must not be probeable. Platform
admins act in another tenant only where a command names it explicitly (`target_tenant`); reads
are always scoped to the caller's own tenant, except LIST_TENANTS' directory of tenants.
"""

from dataclasses import replace
from uuid import UUID

from domain.actor import Actor
from domain.chat import ChatSession
from domain.document import Collection, Document
from domain.errors import NotAllowed, NotAuthenticated, NotFound
from domain.tenant import Tenant
from domain.user import Role, User

PLATFORM = frozenset({Role.PLATFORM_ADMIN})
ADMINISTER = frozenset({Role.TENANT_ADMIN, Role.PLATFORM_ADMIN})
CHAT = frozenset({Role.MEMBER, Role.TENANT_ADMIN, Role.PLATFORM_ADMIN})
READ_ALL_CHATS = frozenset({Role.AUDITOR})
AUDIT = frozenset({Role.AUDITOR, Role.PLATFORM_ADMIN})
SEE_ALL_USAGE = frozenset({Role.TENANT_ADMIN, Role.AUDITOR, Role.PLATFORM_ADMIN})
LIST_USERS = frozenset({Role.TENANT_ADMIN, Role.AUDITOR, Role.PLATFORM_ADMIN})
LIST_TENANTS = PLATFORM


def own_user(actor: Actor, user: object) -> User:
    """`user` if it is the caller's own, active aggregate."""
    if not isinstance(user, User) or user.tenant_id != actor.tenant_id:
        raise NotAuthenticated("unknown user")
    user.ensure_active()
    return user


def acting_user(actor: Actor, user: object, tenant: object) -> Actor:
    """The caller as their loaded user and tenant have them now: active, in an active tenant,
    with their current role."""
    role = own_user(actor, user).role
    if not isinstance(tenant, Tenant) or not tenant.active:
        raise NotAllowed("tenant is deactivated")
    return replace(actor, role=role)


def acting_service_account(actor: Actor, tenant: object) -> Actor:
    """An API key's actor as its loaded tenant has it now: the key unrevoked, the tenant
    active, the key's role."""
    key = tenant.api_keys.get(actor.api_key_id or "") if isinstance(tenant, Tenant) else None
    if not isinstance(tenant, Tenant) or key is None or key.revoked_at is not None:
        raise NotAuthenticated("API key revoked")
    if not tenant.active:
        raise NotAllowed("tenant is deactivated")
    return replace(actor, role=Role(key.role))


def allows(actor: Actor, permission: frozenset[Role]) -> bool:
    return actor.role in permission


def require_role(actor: Actor, permission: frozenset[Role], action: str) -> None:
    if actor.role not in permission:
        raise NotAllowed(f"role {actor.role.value} may not {action}")


def target_tenant(actor: Actor, requested: UUID | None) -> UUID:
    """The tenant a command acts on: the caller's own, or any for a platform admin."""
    if requested is None or requested == actor.tenant_id:
        return actor.tenant_id
    if actor.is_platform_admin:
        return requested
    raise NotAllowed("cannot act in another tenant")


def may_read_chat(actor: Actor, tenant_id: UUID, owner_id: UUID) -> bool:
    """A chat is readable by its owner and, in its tenant, by auditors."""
    return tenant_id == actor.tenant_id and (
        owner_id == actor.user_id or allows(actor, READ_ALL_CHATS)
    )


def chat_owner_filter(actor: Actor) -> UUID | None:
    """For lists and search: whose chats the caller sees in their tenant (None: everyone's)."""
    return None if allows(actor, READ_ALL_CHATS) else actor.user_id


def usage_user_filter(actor: Actor) -> UUID | None:
    """For usage: whose usage the caller sees in their tenant (None: everyone's)."""
    return None if allows(actor, SEE_ALL_USAGE) else actor.user_id


def may_audit(actor: Actor, tenant_id: UUID | None) -> bool:
    """Raises NotAllowed for roles that never audit; False for aggregates of another tenant (to
    be answered as not found)."""
    require_role(actor, AUDIT, "read the audit trail")
    return tenant_id is not None and (tenant_id == actor.tenant_id or actor.is_platform_admin)


def visible_chat(actor: Actor, chat: object) -> ChatSession:
    """The chat if it is in the caller's tenant; otherwise NotFound (never reveal foreign ids)."""
    # Any id may arrive here (a user's, a tenant's): only a live chat of this tenant is found.
    if not isinstance(chat, ChatSession) or chat.tenant_id != actor.tenant_id or chat.is_deleted:
        raise NotFound("chat not found")
    return chat


def writable_chat(actor: Actor, chat: object) -> ChatSession:
    """Only the chat's owner writes to it."""
    chat = visible_chat(actor, chat)
    if chat.owner_id != actor.user_id:
        # Same answer as a missing chat: members must not learn which ids exist.
        raise NotFound("chat not found")
    require_role(actor, CHAT, "write to chats")
    return chat


def may_read_document(actor: Actor, tenant_id: UUID, owner_id: UUID | None) -> bool:
    """The tenant's collection (no owner) is every member's; a personal document its owner's
    (and, in its tenant, auditors')."""
    return tenant_id == actor.tenant_id and (
        owner_id is None or owner_id == actor.user_id or allows(actor, READ_ALL_CHATS)
    )


def visible_document(actor: Actor, document: object) -> Document:
    """The document if the caller may read it; otherwise NotFound (never reveal foreign ids)."""
    if (
        not isinstance(document, Document)
        or document.is_deleted
        or not may_read_document(actor, document.tenant_id, document.owner_id)
    ):
        raise NotFound("document not found")
    return document


def managed_document(actor: Actor, document: object) -> Document:
    """A personal document is managed (processed again, deleted) by its owner; the tenant's
    collection by its admins."""
    document = visible_document(actor, document)
    if document.owner_id is None:
        require_role(actor, ADMINISTER, "manage the tenant's documents")
    elif document.owner_id != actor.user_id:
        raise NotFound("document not found")  # an auditor reads it; only its owner manages it
    return document


def document_owner(actor: Actor, collection: Collection) -> UUID | None:
    """Who an upload to `collection` belongs to: the caller, or (admins) the tenant (None)."""
    if collection is Collection.TENANT:
        require_role(actor, ADMINISTER, "add documents to the tenant's collection")
        return None
    require_role(actor, CHAT, "upload documents")
    return actor.user_id


def knowledge_owner_filter(actor: Actor) -> UUID | None:
    """Whose personal documents the caller's knowledge searches see besides the tenant's
    collection: their own, or everyone's for auditors (None)."""
    return None if allows(actor, READ_ALL_CHATS) else actor.user_id
