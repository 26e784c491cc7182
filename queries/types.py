"""GraphQL types: thin views over read-model rows."""

import base64
import binascii
import dataclasses
import json
import logging
from collections.abc import Sequence
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any
from uuid import UUID

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from domain.errors import InvalidInput
from infra.knowledge.index import Passage
from queries.context import QueryContext
from queries.read_models import MESSAGE_PAGE_COLUMNS


@strawberry.enum
class Role(Enum):
    PLATFORM_ADMIN = "platform_admin"
    TENANT_ADMIN = "tenant_admin"
    MEMBER = "member"
    AUDITOR = "auditor"


@strawberry.enum
class MessageRole(Enum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


@strawberry.enum
class ChatStatus(Enum):
    ACTIVE = "active"
    ARCHIVED = "archived"


@strawberry.enum
class UsageDimension(Enum):
    DAY = "day"
    USER = "user_id"
    MODEL = "model"


@strawberry.type
class UsageRow:
    day: date | None
    user_id: strawberry.ID | None
    model: str | None
    user_messages: int
    assistant_messages: int
    input_tokens: int
    output_tokens: int
    average_latency_ms: float | None = strawberry.field(
        description="Mean latency of the assistant replies in this row."
    )
    cost_usd: float = strawberry.field(
        default=0.0, description="Spend on the assistant replies in this row (price table)."
    )

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "UsageRow":
        replies = row["assistant_messages"]
        return cls(
            day=row.get("day"),
            user_id=strawberry.ID(str(row["user_id"])) if row.get("user_id") else None,
            model=row.get("model"),
            user_messages=row["user_messages"] or 0,
            assistant_messages=replies or 0,
            input_tokens=row["input_tokens"] or 0,
            output_tokens=row["output_tokens"] or 0,
            average_latency_ms=(row["latency_ms_sum"] / replies) if replies else None,
            cost_usd=(row.get("cost_nanos") or 0) / 1e9,
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


def encode_cursor(kind: str, seq: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode()


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        prefix, _, seq = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        value = int(seq)
        if prefix != kind or not 0 <= value < 2**63:
            raise ValueError(prefix)
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("invalid cursor") from None


def encode_key_cursor(kind: str, *keys: str) -> str:
    """A cursor over a text sort key (e-mail, slug): opaque to clients, like `encode_cursor`."""
    return base64.urlsafe_b64encode(json.dumps([kind, *keys]).encode()).decode()


def decode_key_cursor(kind: str, cursor: str | None, arity: int) -> list[str] | None:
    if cursor is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error):
        raise InvalidInput("invalid cursor") from None
    if (
        not isinstance(value, list)
        or len(value) != arity + 1
        or value[0] != kind
        or not all(isinstance(key, str) and len(key) <= 1024 for key in value[1:])
    ):
        raise InvalidInput("invalid cursor")
    return value[1:]


def check_first(first: int, *, maximum: int = 100) -> int:
    if not 1 <= first <= maximum:
        raise InvalidInput(f"first must be 1..{maximum}")
    return first


@strawberry.type
class User:
    id: strawberry.ID
    tenant_id: strawberry.ID
    email: str
    display_name: str
    role: Role
    active: bool

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "User":
        return cls(
            id=strawberry.ID(str(row["user_id"])),
            tenant_id=strawberry.ID(str(row["tenant_id"])),
            email=row["email"],
            display_name=row["display_name"],
            role=Role(row["role"]),
            active=row["active"],
        )


@strawberry.type
class ModelMaxTokens:
    model: str
    max_tokens: int


@strawberry.type(description="How the tenant's replies are produced (the model gateway).")
class TenantModelSettings:
    fallback_models: list[str]
    system_prompt: str | None
    cache_ttl_seconds: int | None
    enabled_providers: list[str] | None = strawberry.field(
        description="Null: every provider the platform offers."
    )
    model_max_tokens: list[ModelMaxTokens]
    user_requests_per_minute: int | None
    tenant_requests_per_minute: int | None
    tenant_tokens_per_minute: int | None
    monthly_budget_usd: float | None

    @classmethod
    def from_json(cls, s: dict[str, Any]) -> "TenantModelSettings":
        return cls(
            fallback_models=list(s.get("fallback_models") or []),
            system_prompt=s.get("system_prompt"),
            cache_ttl_seconds=s.get("cache_ttl_seconds"),
            enabled_providers=s.get("enabled_providers") or None,
            model_max_tokens=[
                ModelMaxTokens(model=m, max_tokens=n)
                for m, n in sorted((s.get("model_max_tokens") or {}).items())
            ],
            user_requests_per_minute=s.get("user_requests_per_minute"),
            tenant_requests_per_minute=s.get("tenant_requests_per_minute"),
            tenant_tokens_per_minute=s.get("tenant_tokens_per_minute"),
            monthly_budget_usd=s.get("monthly_budget_usd"),
        )


@strawberry.type
class Tenant:
    id: strawberry.ID
    name: str
    slug: str
    default_model: str
    allowed_models: list[str]
    retention_days: int | None
    active: bool
    model_settings: TenantModelSettings | None = strawberry.field(
        default=None, description="Tenant and platform admins only (null for other roles)."
    )

    @classmethod
    def from_row(cls, row: dict[str, Any], *, admin: bool = False) -> "Tenant":
        return cls(
            id=strawberry.ID(str(row["tenant_id"])),
            name=row["name"],
            slug=row["slug"],
            default_model=row["default_model"],
            allowed_models=list(row["allowed_models"]),
            retention_days=row["retention_days"],
            active=row["active"],
            model_settings=TenantModelSettings.from_json(row["model_settings"]) if admin else None,
        )


@strawberry.type
class Message:
    id: strawberry.ID
    chat_id: strawberry.ID
    role: MessageRole
    content: str
    model: str | None
    created_at: datetime
    position: int = strawberry.field(description="Log position of the event that recorded it.")
    reply_to: strawberry.ID | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    finish_reason: str | None = None
    latency_ms: int | None = None
    provider: str | None = strawberry.field(
        default=None, description="Assistant replies: the provider that answered."
    )
    attempts: int | None = strawberry.field(
        default=None, description="Assistant replies: provider calls made (retries included)."
    )
    fallbacks: int | None = strawberry.field(
        default=None, description="Assistant replies: models given up on before this one."
    )
    time_to_first_token_ms: int | None = None
    cost_usd: float | None = strawberry.field(
        default=None, description="Assistant replies: price from the configured price table."
    )
    cached: bool | None = None
    citation_records: strawberry.Private[list[dict[str, Any]] | None] = None

    @strawberry.field(
        description="Assistant replies grounded in documents: every passage the model was "
        "given, best first, and whether the reply cited it. A passage of a document deleted "
        "since, or of an erased user, shows as erased."
    )
    async def citations(self, info: Info[QueryContext, None]) -> list["Citation"]:
        return await resolve_citations(info, self.citation_records)

    @classmethod
    def from_row(cls, row: Any) -> "Message":
        """From a read-model row (a dict) or a live item (a dataclass with the same names)."""
        data: dict[str, Any] = row if isinstance(row, dict) else dataclasses.asdict(row)
        return cls.from_columns([data.get(column) for column in MESSAGE_PAGE_COLUMNS])

    @classmethod
    def from_columns(cls, row: Sequence[Any]) -> "Message":
        """From the values of `MESSAGE_PAGE_COLUMNS`, in that order (ids as text or UUIDs)."""
        (
            message_id,
            chat_id,
            role,
            content,
            model,
            created_at,
            seq,
            reply_to,
            input_tokens,
            output_tokens,
            finish_reason,
            latency_ms,
            provider,
            attempts,
            fallbacks,
            time_to_first_token_ms,
            cost_nanos,
            cached,
            citations,
        ) = row
        return cls(
            id=strawberry.ID(str(message_id)),
            chat_id=strawberry.ID(str(chat_id)),
            role=MESSAGE_ROLES[role],
            content=content,
            model=model,
            created_at=created_at,
            position=seq,
            reply_to=strawberry.ID(str(reply_to)) if reply_to else None,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            finish_reason=finish_reason,
            latency_ms=latency_ms,
            provider=provider,
            attempts=attempts,
            fallbacks=fallbacks,
            time_to_first_token_ms=time_to_first_token_ms,
            cost_usd=None if cost_nanos is None else cost_nanos / 1e9,
            cached=cached,
            citation_records=citations,
        )


MESSAGE_ROLES = {role.value: role for role in MessageRole}


@strawberry.type(
    description="A passage of a document an assistant reply was given: which one, how it "
    "ranked, whether the reply cited it, and (unless erased since) its text."
)
class Citation:
    rank: int = strawberry.field(description="1 for the best passage: the reply cites it as [1].")
    cited: bool = strawberry.field(description="Whether the reply cites it as [rank].")
    score: float = strawberry.field(description="Its retrieval score (reciprocal rank fusion).")
    document_id: strawberry.ID
    document_revision: int = strawberry.field(
        description="Which processing of the document the passage comes from."
    )
    chunk_id: strawberry.ID
    chunk_index: int = strawberry.field(description="The passage's place in that revision (0…).")
    erased: bool = strawberry.field(
        description="The passage is gone: its document was deleted or its owner erased. The "
        "record of what the reply was given stays; the text does not."
    )
    title: str | None = strawberry.field(description="The document's title; null once erased.")
    location: str | None = strawberry.field(
        description='Where in the document: "page 3", "Setup > Requirements"; null once erased.'
    )
    text: str | None = strawberry.field(description="The passage; null once erased.")
    unavailable: bool = strawberry.field(
        default=False,
        description="The knowledge index could not be read just now: title, location and text "
        "are null though the passage may exist (retry).",
    )

    @classmethod
    def of(
        cls, record: dict[str, Any], passage: Passage | None, *, unavailable: bool = False
    ) -> "Citation":
        return cls(
            unavailable=unavailable,
            rank=record["rank"],
            cited=record["cited"],
            score=record["score"],
            document_id=strawberry.ID(record["document_id"]),
            document_revision=record["revision"],
            chunk_id=strawberry.ID(record["chunk_id"]),
            chunk_index=record["chunk_index"],
            erased=passage is None and not unavailable,
            title=passage.title if passage else None,
            location=passage.location if passage else None,
            text=passage.text if passage else None,
        )


async def resolve_citations(
    info: Info[QueryContext, None],
    records: Sequence[dict[str, Any]] | None,
    tenant_id: UUID | None = None,
) -> list[Citation]:
    """The citations of a reply, their passages read from the knowledge index in the reply's
    tenant (the caller's unless given): whoever may read the chat may read what its replies
    were given."""
    if not records:
        return []
    tenant_id = tenant_id or info.context.actor().tenant_id
    loader = passage_loader(info.context)
    try:
        found = await loader.load_many([(tenant_id, UUID(r["chunk_id"])) for r in records])
    except Exception:
        # The index is down: the record of what the reply was given still answers; the
        # passages' text does not (a page of messages must not fail with it).
        logging.getLogger(__name__).exception("citations' passages could not be read")
        return [Citation.of(r, None, unavailable=True) for r in records]
    return [Citation.of(r, p) for r, p in zip(records, found, strict=True)]


PassageKey = tuple[UUID, UUID]
"""(tenant, passage id)."""


def passage_loader(context: QueryContext) -> DataLoader[PassageKey, Passage | None]:
    """One loader per request (or WebSocket connection): the citations of every message of a
    page are read in one batch, not one round trip per message. It batches but does not cache
    (a connection lives long; an erased passage must read as erased at its next load)."""
    loader: DataLoader[PassageKey, Passage | None] | None = getattr(
        context, "_passage_loader", None
    )
    if loader is None:

        async def load(keys: list[PassageKey]) -> list[Passage | None]:
            wanted: dict[UUID, list[UUID]] = {}
            for tenant_id, chunk_id in keys:
                wanted.setdefault(tenant_id, []).append(chunk_id)
            found: dict[PassageKey, Passage] = {}
            for tenant_id, chunk_ids in wanted.items():
                passages = await context.run_blocking(
                    context.knowledge.passages, tenant_id, chunk_ids
                )
                found |= {(tenant_id, c): p for c, p in passages.items()}
            return [found.get(key) for key in keys]

        loader = DataLoader(load, cache=False)
        setattr(context, "_passage_loader", loader)  # noqa: B010 (the protocol has no slot)
    return loader


@strawberry.type
class MessageEdge:
    cursor: str
    node: Message


def message_edges(root: "MessageConnection") -> list[MessageEdge]:
    """Built for the clients that ask: a page read through `nodes` makes no edge or cursor."""
    return [MessageEdge(cursor=encode_cursor("msg", m.position), node=m) for m in root.nodes]


@strawberry.type
class MessageConnection:
    edges: list[MessageEdge] = strawberry.field(resolver=message_edges)
    page_info: PageInfo
    nodes: list[Message]


@strawberry.type
class MessageAdded:
    message: Message


@strawberry.type
class ReplyDelta:
    chat_id: strawberry.ID
    message_id: strawberry.ID
    delta: str
    offset: int = strawberry.field(
        default=0,
        description="Characters of the reply before this delta. A client subscribing while a "
        "reply is being generated first gets the text so far as one delta at offset 0.",
    )


@strawberry.type
class ChatDeleted:
    chat_id: strawberry.ID


ChatEvent = Annotated[MessageAdded | ReplyDelta | ChatDeleted, strawberry.union("ChatEvent")]


@strawberry.type(description="A model deployment's health as this process's router sees it.")
class ModelDeployment:
    deployment: str = strawberry.field(description="Model reference, e.g. openai/gpt-4o-mini.")
    state: str = strawberry.field(description="closed (healthy), open (skipped), half-open.")
    consecutive_failures: int
    open_seconds_left: float
    last_error: str | None


@strawberry.type
class ModelGatewayStatus:
    providers: list[str] = strawberry.field(
        description="Providers configured in the replying process."
    )
    deployments: list[ModelDeployment] = strawberry.field(
        description="Every deployment tried since start, with its circuit breaker."
    )
    reported_at: datetime = strawberry.field(
        description="When the replying process reported this (every 2 s while it runs)."
    )
