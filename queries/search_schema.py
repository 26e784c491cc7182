"""GraphQL for search: `searchMessages(query, chatId, role, from, to, first, after)`.

Kept apart from queries/schema.py (which it imports) so that the root Query type can be assembled
without an import cycle: `merge_types("Query", (Query, SearchQueries))` in api/schema.py.
"""

from datetime import datetime
from enum import Enum
from typing import Annotated
from uuid import UUID

import strawberry
from strawberry.types import Info

from domain.chat import MessageRole as DomainMessageRole
from queries.context import QueryContext
from queries.schema import AfterPosition, Chat, parse_id, viewer
from queries.search import SearchHit as FoundHit
from queries.search import SearchQuery
from queries.types import Message, MessageRole, PageInfo


@strawberry.enum
class SearchHitKind(Enum):
    MESSAGE = "message"
    CHAT_TITLE = "chat_title"


@strawberry.type(description="A message or a chat title that matched a search.")
class SearchHit:
    kind: SearchHitKind
    score: float
    highlights: list[str] = strawberry.field(
        description="HTML-escaped fragments of the matching text; matches are in <em>…</em>."
    )
    chat_id: strawberry.ID
    chat_title: str
    message_id: strawberry.ID | None
    role: MessageRole | None
    content: str = strawberry.field(description="The message text, or the chat title.")
    created_at: datetime
    position: int = strawberry.field(description="Log position of the message or chat start.")
    tenant_id: strawberry.Private[UUID]

    @classmethod
    def from_hit(cls, hit: FoundHit, tenant_id: UUID) -> "SearchHit":
        return cls(
            kind=SearchHitKind(hit.kind),
            score=hit.score,
            highlights=hit.highlights,
            chat_id=strawberry.ID(str(hit.chat_id)),
            chat_title=hit.chat_title,
            message_id=strawberry.ID(str(hit.message_id)) if hit.message_id else None,
            role=MessageRole(hit.role.value) if hit.role else None,
            content=hit.content,
            created_at=hit.created_at,
            position=hit.position,
            tenant_id=tenant_id,
        )

    @strawberry.field(description="The chat, from the read models (null if it is gone since).")
    async def chat(self, info: Info[QueryContext, None]) -> Chat | None:
        row = await info.context.read_models.chat(self.tenant_id, UUID(self.chat_id))
        return Chat.from_row(row) if row else None

    @strawberry.field(description="The message, from the read models (null for chat titles).")
    async def message(self, info: Info[QueryContext, None]) -> Message | None:
        if self.message_id is None:
            return None
        row = await info.context.read_models.message(self.tenant_id, UUID(self.message_id))
        return Message.from_row(row) if row else None


@strawberry.type
class SearchHitEdge:
    cursor: str
    node: SearchHit


@strawberry.type
class SearchHitConnection:
    edges: list[SearchHitEdge]
    page_info: PageInfo

    @strawberry.field
    def nodes(self) -> list[SearchHit]:
        return [e.node for e in self.edges]


async def search_messages(
    info: Info[QueryContext, None],
    query: str,
    chat_id: strawberry.ID | None = None,
    role: MessageRole | None = None,
    from_: Annotated[
        datetime | None,
        strawberry.argument(name="from", description="Created at or after (inclusive)."),
    ] = None,
    to: Annotated[
        datetime | None, strawberry.argument(description="Created before (exclusive).")
    ] = None,
    first: int = 20,
    after: str | None = None,
    after_position: AfterPosition = None,
) -> SearchHitConnection:
    actor = await viewer(info, after_position)
    page = await info.context.search.search(
        actor,
        SearchQuery(
            text=query,
            chat_id=parse_id(chat_id, "chat id") if chat_id is not None else None,
            role=DomainMessageRole(role.value) if role is not None else None,
            from_ts=from_,
            to_ts=to,
            first=first,
            after=after,
        ),
    )
    return SearchHitConnection(
        edges=[
            SearchHitEdge(cursor=hit.cursor, node=SearchHit.from_hit(hit, actor.tenant_id))
            for hit in page.hits
        ],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
    )


@strawberry.type
class SearchQueries:
    search_messages: SearchHitConnection = strawberry.field(
        resolver=search_messages,
        description="Full-text search over your chats' messages and titles (auditors: every "
        "chat of the tenant), best match first, with highlighted fragments.",
    )
