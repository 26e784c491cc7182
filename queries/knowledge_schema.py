"""GraphQL for knowledge: `documents`, `document`, `searchKnowledge`, and what a chat is
grounded in (`chatKnowledge`). Merged into the root Query in api/schema.py."""

import logging
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

import strawberry
from strawberry.types import Info

from domain.base import parse_id
from domain.errors import InvalidInput, NotFound, ParleyError, SearchUnavailable
from domain.policy import knowledge_owner_filter, may_read_document
from infra.knowledge.index import Passage, Scope
from queries.context import QueryContext
from queries.schema import AfterPosition, viewer, viewer_and_chat
from queries.types import PageInfo, check_first, decode_cursor, encode_cursor

log = logging.getLogger(__name__)

MAX_QUESTION = 2_000


@strawberry.enum
class DocumentCollection(Enum):
    PERSONAL = "personal"
    TENANT = "tenant"


@strawberry.enum
class DocumentStatus(Enum):
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


@strawberry.enum
class RetrievalMode(Enum):
    HYBRID = "hybrid"
    BM25 = "bm25"
    VECTOR = "vector"


@strawberry.type(description="A document Parley answers from.")
class Document:
    id: strawberry.ID
    title: str = strawberry.field(description="Its file name.")
    collection: DocumentCollection
    owner_id: strawberry.ID | None = strawberry.field(
        description="Who uploaded a personal document; null for the tenant's collection."
    )
    media_type: str = strawberry.field(description="Its type, sniffed from its bytes.")
    size_bytes: float
    content_sha256: str
    status: DocumentStatus
    revision: int = strawberry.field(
        description="1 for the upload, one more for each reprocessing."
    )
    chunks: int | None = strawberry.field(description="Passages of the current revision.")
    pages: int | None
    characters: int | None
    embedding_model: str | None
    failure_code: str | None = strawberry.field(
        description="Why processing failed: UNSUPPORTED_DOCUMENT, DOCUMENT_TOO_LARGE, "
        "UNREADABLE_DOCUMENT."
    )
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime
    position: int = strawberry.field(description="Log position of its upload.")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Document":
        return cls(
            id=strawberry.ID(str(row["document_id"])),
            title=row["title"],
            collection=DocumentCollection(row["collection"]),
            owner_id=strawberry.ID(str(row["owner_id"])) if row["owner_id"] else None,
            media_type=row["media_type"],
            size_bytes=row["size_bytes"],
            content_sha256=row["content_sha256"],
            status=DocumentStatus(row["status"]),
            revision=row["revision"],
            chunks=row["chunks"],
            pages=row["pages"],
            characters=row["characters"],
            embedding_model=row["embedding_model"],
            failure_code=row["failure_code"],
            failure_reason=row["failure_reason"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            position=row["seq"],
        )


@strawberry.type
class DocumentConnection:
    nodes: list[Document]
    page_info: PageInfo


@strawberry.type(description="A passage of a document that matched a knowledge search.")
class KnowledgePassage:
    document_id: strawberry.ID
    document_revision: int
    chunk_id: strawberry.ID
    chunk_index: int
    title: str
    location: str = strawberry.field(description='"page 3", "Setup > Requirements", or "".')
    text: str
    start: int = strawberry.field(description="Offset of the passage in the document's text.")
    end: int
    score: float

    @classmethod
    def of(cls, p: Passage) -> "KnowledgePassage":
        return cls(
            document_id=strawberry.ID(str(p.document_id)),
            document_revision=p.revision,
            chunk_id=strawberry.ID(str(p.chunk_id)),
            chunk_index=p.index,
            title=p.title,
            location=p.location,
            text=p.text,
            start=p.start,
            end=p.end,
            score=p.score,
        )


@strawberry.type(description="What a chat's replies are grounded in.")
class ChatKnowledge:
    tenant_collection: bool = strawberry.field(
        description="The tenant's collection (and the chat owner's own documents) ground it."
    )
    documents: list[Document] = strawberry.field(
        description="The documents attached to it that still exist."
    )


@strawberry.type
class KnowledgeQueries:
    @strawberry.field(
        description="Documents you may read, newest first: your own and the tenant's collection "
        "(auditors: every document of the tenant)."
    )
    async def documents(
        self,
        info: Info[QueryContext, None],
        collection: DocumentCollection | None = None,
        first: int = 20,
        after: str | None = None,
        after_position: AfterPosition = None,
    ) -> DocumentConnection:
        actor = await viewer(info, after_position)
        first = check_first(first)
        rows = await info.context.read_models.documents(
            actor.tenant_id,
            knowledge_owner_filter(actor),
            collection=collection.value if collection else None,
            first=first + 1,
            before_seq=decode_cursor("doc", after),
        )
        nodes = [Document.from_row(r) for r in rows[:first]]
        return DocumentConnection(
            nodes=nodes,
            page_info=PageInfo(
                has_next_page=len(rows) > first,
                end_cursor=encode_cursor("doc", nodes[-1].position) if nodes else None,
            ),
        )

    @strawberry.field(description="One document, if you may read it.")
    async def document(
        self,
        info: Info[QueryContext, None],
        id: strawberry.ID,
        after_position: AfterPosition = None,
    ) -> Document:
        actor = await viewer(info, after_position)
        rows = await info.context.read_models.documents_by_id(
            actor.tenant_id, [parse_id(id, "document id")]
        )
        visible = [r for r in rows if may_read_document(actor, r["tenant_id"], r["owner_id"])]
        if not visible:
            raise NotFound("document not found")
        return Document.from_row(visible[0])

    @strawberry.field(
        description="The passages of your documents (and the tenant's collection) that best "
        "answer `query`: words (BM25) and meaning (embeddings) fused by reciprocal rank fusion, "
        "or one of the two alone (`mode`). `documentIds` keeps the search to those documents."
    )
    async def search_knowledge(
        self,
        info: Info[QueryContext, None],
        query: str,
        first: int = 5,
        mode: RetrievalMode = RetrievalMode.HYBRID,
        document_ids: list[strawberry.ID] | None = None,
    ) -> list[KnowledgePassage]:
        actor = await viewer(info)
        if len(query) > MAX_QUESTION:
            raise InvalidInput(f"query must be at most {MAX_QUESTION} characters")
        if "\x00" in query:
            raise InvalidInput("query must not contain NUL characters")
        first = check_first(first, maximum=50)
        ids = None
        if document_ids is not None:
            if len(document_ids) > 100:
                raise InvalidInput("documentIds may name at most 100 documents")
            ids = frozenset(parse_id(d, "document id") for d in document_ids)
            # Only documents the caller may read can be named: any other id is not found.
            rows = await info.context.read_models.documents_by_id(actor.tenant_id, list(ids))
            readable = {
                r["document_id"]
                for r in rows
                if may_read_document(actor, r["tenant_id"], r["owner_id"])
            }
            if readable != ids:
                raise NotFound("document not found")
        scope = Scope(actor.tenant_id, knowledge_owner_filter(actor), ids)
        try:
            passages = await info.context.run_blocking(
                lambda: info.context.knowledge.search(scope, query, first=first, mode=mode.value)
            )
        except ParleyError:
            raise
        except Exception as e:  # the engine or the embedding provider is down
            log.warning("knowledge search failed: %s", e)
            raise SearchUnavailable("the knowledge search is unavailable; retry shortly") from e
        return [KnowledgePassage.of(p) for p in passages]

    @strawberry.field(description="What a chat's replies are grounded in, if you may see it.")
    async def chat_knowledge(
        self,
        info: Info[QueryContext, None],
        chat_id: strawberry.ID,
        after_position: AfterPosition = None,
    ) -> ChatKnowledge:
        actor, chat, _ = await viewer_and_chat(info, parse_id(chat_id, "chat id"), after_position)
        ids: list[UUID] = list(chat.get("knowledge_documents") or [])
        rows = await info.context.read_models.documents_by_id(actor.tenant_id, ids) if ids else []
        order = {d: n for n, d in enumerate(ids)}
        rows.sort(key=lambda r: order[r["document_id"]])
        return ChatKnowledge(
            tenant_collection=bool(chat.get("knowledge_collection")),
            documents=[Document.from_row(r) for r in rows],
        )
