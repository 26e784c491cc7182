"""Who may do what in which tenant. Every write passes through here."""

from uuid import UUID

from domain.actor import Actor
from domain.chat import ChatSession
from domain.errors import NotAllowed, NotFound
from domain.user import Role

__all__ = ["Actor", "require_role", "target_tenant", "visible_chat", "writable_chat"]

# Roles that may start chats and write to their own.
CHATTING_ROLES = frozenset({Role.MEMBER, Role.TENANT_ADMIN, Role.PLATFORM_ADMIN})
ADMIN_ROLES = frozenset({Role.TENANT_ADMIN, Role.PLATFORM_ADMIN})


def require_role(actor: Actor, allowed: frozenset[Role], action: str) -> None:
    if actor.role not in allowed:
        raise NotAllowed(f"role {actor.role.value} may not {action}")


def target_tenant(actor: Actor, requested: UUID | None) -> UUID:
    """The tenant a command acts on: the caller's own, or any for a platform admin."""
    if requested is None or requested == actor.tenant_id:
        return actor.tenant_id
    if actor.is_platform_admin:
        return requested
    raise NotAllowed("cannot act in another tenant")


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
    require_role(actor, CHATTING_ROLES, "write to chats")
    return chat
