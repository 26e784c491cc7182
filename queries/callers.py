"""Whether a caller may still act, and see a chat: shared by queries, subscriptions and their
re-checks."""

from dataclasses import replace
from typing import Any

from domain.actor import Actor
from domain.errors import NotAllowed, NotFound
from domain.policy import may_read_chat
from domain.user import Role


def current_actor(actor: Actor, row: Any) -> Actor:
    """`actor` with the role its user row has now; refused when the user or tenant is inactive."""
    if row is None:
        return actor
    if not row["active"]:
        raise NotAllowed("user is deactivated")
    if not row["tenant_active"]:
        raise NotAllowed("tenant is deactivated")
    return replace(actor, role=Role(row["role"]))


def visible(actor: Actor, chat: Any) -> Any:
    if chat is None or not may_read_chat(actor, chat["tenant_id"], chat["owner_id"]):
        raise NotFound("chat not found")
    return chat
