"""The ChatSession aggregate: one conversation, its messages and its life cycle."""

from dataclasses import dataclass, fields, replace
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import event
from typing_extensions import TypedDict

from domain.base import TenantScopedAggregate, check_length, check_text, stable_id
from domain.erased import ERASED
from domain.errors import Conflict, InvalidInput, NotFound

MAX_CONTENT = 32_000
MAX_TITLE = 200
MAX_KNOWLEDGE_DOCUMENTS = 50


class MessageRole(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


class ChatStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    DELETED = "deleted"


@dataclass(frozen=True)
class Message:
    """A message as the aggregate remembers it (enough to rebuild the conversation)."""

    id: UUID
    role: MessageRole
    content: str
    citations: tuple["Citation", ...] = ()
    """What a grounded reply was given (its text is not here: see Citation)."""

    def __deepcopy__(self, memo: dict[int, object]) -> "Message":
        return self  # immutable all the way down: copying a cached chat need not copy it


@dataclass(frozen=True)
class Generation:
    """How the model gateway produced an assistant reply (recorded on its MessagePosted)."""

    provider: str
    attempts: int
    fallbacks: int
    time_to_first_token_ms: int | None
    cost_nanos: int
    """Price in billionths of a US dollar (exact; from the configured price table)."""
    cached: bool = False


class Citation(TypedDict):
    """A passage an assistant reply was given (and whether the reply cited it), as its
    MessagePosted records it: which document, which revision of it, which passage, how it ranked.
    The passage's text is not copied: it is read from the knowledge index, and shows as erased
    once the document was deleted or its owner erased."""

    document_id: str
    revision: int
    chunk_id: str
    chunk_index: int
    rank: int
    """1 for the best passage; the number the model was asked to cite it by."""
    score: float
    cited: bool


def reply_id_for(message_id: UUID) -> UUID:
    """The assistant reply to a user message has a deterministic id: replies are idempotent."""
    return stable_id("reply", message_id)


def check_content(content: str) -> str:
    if not check_text(content, field="content").strip():
        raise InvalidInput("content must not be empty")
    if len(content) > MAX_CONTENT:
        raise InvalidInput(f"content must be at most {MAX_CONTENT} characters (got {len(content)})")
    return content


class ChatSession(TenantScopedAggregate):
    TOPIC = "parley.ChatSession"

    class Event(TenantScopedAggregate.Event):
        TOPIC = "parley.ChatSession.Event"
        tenant_id: UUID

    @classmethod
    def start(
        cls, *, chat_id: UUID, tenant_id: UUID, owner_id: UUID, title: str, model: str
    ) -> "ChatSession":
        return cls(
            id=chat_id,
            tenant_id=tenant_id,
            owner_id=owner_id,
            title=check_length(title, field="title", low=1, high=MAX_TITLE),
            model=model,
        )

    def __deepcopy__(self, memo: dict[int, object]) -> "ChatSession":
        """Commands change a copy of the cached chat. Its containers are copied one level (a
        deep copy of a long chat was an eighth of a command's CPU); what they hold is immutable
        (UUIDs, strings, datetimes, frozen Messages and events) and shared."""
        copy = object.__new__(type(self))
        copy.__dict__.update(
            {
                name: type(value)(value) if isinstance(value, list | dict | set) else value
                for name, value in self.__dict__.items()
            }
        )
        return copy

    @event("Started", topic="parley.ChatSession.Started")
    def __init__(self, id: UUID, tenant_id: UUID, owner_id: UUID, title: str, model: str) -> None:
        self.tenant_id = tenant_id
        self.owner_id = owner_id
        """The user who started the chat; only they write to it."""
        self.title = title
        self.model = model
        self.status = ChatStatus.ACTIVE
        self.messages: list[Message] = []
        self.client_mutation_ids: dict[str, UUID] = {}
        """Idempotency keys already used in this chat, mapped to the message they produced."""
        self.knowledge_documents: tuple[UUID, ...] = ()
        """Documents the chat's replies are grounded in."""
        self.knowledge_collection = False
        """Whether the tenant's whole collection grounds the replies too."""

    @property
    def has_knowledge(self) -> bool:
        return bool(self.knowledge_documents) or self.knowledge_collection

    def has_message(self, message_id: UUID) -> bool:
        return any(m.id == message_id for m in self.messages)

    def message_for_client_mutation(self, client_mutation_id: str | None) -> UUID | None:
        if client_mutation_id is None:
            return None
        return self.client_mutation_ids.get(client_mutation_id)

    def post_message(
        self,
        *,
        message_id: UUID,
        role: MessageRole,
        content: str,
        author_id: UUID | None,
        model: str | None = None,
        input_tokens: int = 0,
        output_tokens: int = 0,
        finish_reason: str | None = None,
        latency_ms: int | None = None,
        reply_to: UUID | None = None,
        client_mutation_id: str | None = None,
        generation: Generation | None = None,
        citations: list[Citation] | None = None,
    ) -> None:
        self._ensure_not_deleted()
        content = check_content(content)
        # Absent, not null, on messages without knowledge: their stored form stays as it was.
        grounded: dict[str, Any] = {"citations": citations} if citations else {}
        if self.has_message(message_id):
            raise Conflict("message already exists")
        if client_mutation_id is not None and client_mutation_id in self.client_mutation_ids:
            raise Conflict("clientMutationId already used in this chat")
        self._message_posted(
            message_id=message_id,
            role=MessageRole(role).value,
            content=content,
            author_id=author_id,
            model=model,
            input_tokens=int(input_tokens),
            output_tokens=int(output_tokens),
            finish_reason=finish_reason,
            latency_ms=latency_ms,
            reply_to=reply_to,
            client_mutation_id=client_mutation_id,
            **{f.name: getattr(generation, f.name, None) for f in fields(Generation)},
            **grounded,
        )

    @event("MessagePosted", topic="parley.ChatSession.MessagePosted")
    def _message_posted(
        self,
        message_id: UUID,
        role: str,
        content: str,
        author_id: UUID | None,
        model: str | None,
        input_tokens: int,
        output_tokens: int,
        finish_reason: str | None,
        latency_ms: int | None,
        reply_to: UUID | None,
        client_mutation_id: str | None,
        # How an assistant reply was produced (absent on user messages and on replies recorded
        # before the model gateway: optional within version 1 of the event).
        provider: str | None = None,
        attempts: int | None = None,
        fallbacks: int | None = None,
        time_to_first_token_ms: int | None = None,
        cost_nanos: int | None = None,
        cached: bool | None = None,
        # The knowledge passages an assistant reply was given (absent without knowledge).
        citations: list[Citation] | None = None,
    ) -> None:
        self.messages.append(
            Message(
                id=message_id,
                role=MessageRole(role),
                content=content,
                citations=tuple(citations or ()),
            )
        )
        if client_mutation_id is not None:
            self.client_mutation_ids[client_mutation_id] = message_id

    def attach_knowledge(self, document_ids: list[UUID], collection: bool) -> None:
        """Ground the chat's next replies in these documents (and the tenant's collection);
        whether the owner may read them is the policy's decision, made before."""
        self._ensure_not_deleted()
        unique = tuple(dict.fromkeys(document_ids))
        if len(unique) > MAX_KNOWLEDGE_DOCUMENTS:
            raise InvalidInput(f"a chat may attach at most {MAX_KNOWLEDGE_DOCUMENTS} documents")
        if unique != self.knowledge_documents or collection != self.knowledge_collection:
            self._knowledge_changed(document_ids=list(unique), tenant_collection=collection)

    @event("KnowledgeChanged", topic="parley.ChatSession.KnowledgeChanged")
    def _knowledge_changed(self, document_ids: list[UUID], tenant_collection: bool) -> None:
        self.knowledge_documents = tuple(document_ids)
        self.knowledge_collection = tenant_collection

    def rename(self, title: str) -> None:
        self._ensure_not_deleted()
        title = check_length(title, field="title", low=1, high=MAX_TITLE)
        if title != self.title:
            self._renamed(title=title)

    @event("Renamed", topic="parley.ChatSession.Renamed")
    def _renamed(self, title: str) -> None:
        self.title = title

    def archive(self) -> None:
        self._ensure_not_deleted()
        if self.status is not ChatStatus.ARCHIVED:
            self._archived()

    @event("Archived", topic="parley.ChatSession.Archived")
    def _archived(self) -> None:
        self.status = ChatStatus.ARCHIVED

    def delete(self) -> None:
        self._ensure_not_deleted()
        self._deleted()

    @event("Deleted", topic="parley.ChatSession.Deleted")
    def _deleted(self) -> None:
        self.status = ChatStatus.DELETED

    def expire(self, retention_days: int, last_activity: datetime) -> None:
        """Retention: the chat's data key is destroyed and the chat is gone for every reader."""
        if not self.is_deleted:
            self._expired(retention_days=retention_days, last_activity=last_activity)

    @event("Expired", topic="parley.ChatSession.Expired")
    def _expired(self, retention_days: int, last_activity: datetime) -> None:
        self.status = ChatStatus.DELETED
        self.title = ERASED
        self.messages = [replace(m, content=ERASED) for m in self.messages]

    @property
    def is_deleted(self) -> bool:
        return self.status is ChatStatus.DELETED

    def _ensure_not_deleted(self) -> None:
        # A deleted chat is indistinguishable from one that never existed.
        if self.is_deleted:
            raise NotFound("chat not found")
