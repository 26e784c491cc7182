"""What travels to live subscribers (and between API processes): message rows as the read model
stores them, the removal of a chat, the pieces of a reply in progress, and requests to stop one.
Both sides import these (the projection and the responder that produce them, the subscriptions
and the fan-out that carry them), so no adapter imports a command or a projection."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class MessageRow:
    """A message as the read model stores it; also what live subscribers receive."""

    message_id: UUID
    tenant_id: UUID
    chat_id: UUID
    seq: int
    role: str
    content: str
    model: str | None
    author_id: UUID | None
    reply_to: UUID | None
    input_tokens: int
    output_tokens: int
    finish_reason: str | None
    latency_ms: int | None
    created_at: datetime
    provider: str | None = None
    attempts: int | None = None
    fallbacks: int | None = None
    time_to_first_token_ms: int | None = None
    cost_nanos: int | None = None
    cached: bool | None = None
    citations: list[dict[str, Any]] | None = None
    """The knowledge passages an assistant reply was given (domain.chat.Citation)."""


@dataclass(frozen=True)
class ChatRemoved:
    """Live signal: the chat was deleted; its subscribers are finished."""

    chat_id: UUID


LiveItem = MessageRow | ChatRemoved
Committed = Callable[[int, list[LiveItem]], None]


@dataclass(frozen=True)
class StopRequested:
    """`stopGeneration`: travels like live items (through Redis to every process) and reaches
    the responder of whichever process is generating the chat's reply."""

    chat_id: UUID


@dataclass(frozen=True)
class ReplyDelta:
    """An ephemeral piece of a reply in progress (not an event: only the finished reply is)."""

    chat_id: UUID
    message_id: UUID
    delta: str
    offset: int = 0
    """Characters of the reply before this delta (a resumed stream skips what it has)."""
