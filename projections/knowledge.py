"""The knowledge projection: documents' bytes to searchable passages, followed from the log.

For each Uploaded or ProcessingRequested it reads the revision's bytes (decrypted with the
document's key), extracts the text, cuts it into passages, embeds them and writes them to the
knowledge index (`infra/knowledge/index.py`), then records the outcome on the document (through
`record`, the bus): Processed (passages, pages, the embedding model) or ProcessingFailed (a typed
reason, for a file that will never be read: unsupported, too large, unreadable). An outage (the
database, Elasticsearch, an embedding provider) raises instead, and the follower retries.

Deleted, Expired (retention) and the owner's erasure remove the passages and the bytes. Index
writes are idempotent (passage ids per revision, the event's log position as version), so a batch
replayed after a crash changes nothing; the position is stored after the batch's writes.

One projection per embedding model: its position is named `knowledge:<model>`, so changing the
model (`PARLEY_EMBEDDING_MODEL`) starts a new projection from the beginning of the log beside
the old index, blue/green (docs/knowledge.md).
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from psycopg_pool import ConnectionPool

from domain.document import Document
from infra.eventstore.event_store import EventStore
from infra.eventstore.follower_positions import read_position, store_position
from infra.knowledge.blobs import DocumentBlobs
from infra.knowledge.chunking import DEFAULT_SIZES, ChunkSizes
from infra.knowledge.embeddings import Embedder
from infra.knowledge.extraction import (
    DEFAULT_LIMITS,
    DocumentTooLarge,
    ExtractionLimits,
    UnreadableDocument,
    UnsupportedDocument,
)
from infra.knowledge.index import KnowledgeIndex
from infra.knowledge.ingest import DocumentFacts, ingest
from infra.metrics import KNOWLEDGE_CHUNKS, KNOWLEDGE_DOCUMENTS, KNOWLEDGE_SECONDS

log = logging.getLogger(__name__)

UPLOADED = "parley.Document.Uploaded"
REPROCESS = "parley.Document.ProcessingRequested"
DELETED = "parley.Document.Deleted"
EXPIRED = "parley.Document.Expired"
USER_ERASED = "parley.User.Erased"
TOPICS = frozenset({UPLOADED, REPROCESS, DELETED, EXPIRED, USER_ERASED})

FAILURES: dict[type[Exception], str] = {
    UnsupportedDocument: "UNSUPPORTED_DOCUMENT",
    DocumentTooLarge: "DOCUMENT_TOO_LARGE",
    UnreadableDocument: "UNREADABLE_DOCUMENT",
}


@dataclass(frozen=True)
class Processed:
    document_id: UUID
    revision: int
    chunks: int
    characters: int
    pages: int | None
    model: str


@dataclass(frozen=True)
class Failed:
    document_id: UUID
    revision: int
    code: str
    reason: str


Outcome = Processed | Failed
Record = Callable[[Outcome], None]
"""Records an outcome on its document (the composition root sends it through the bus)."""


PREFIX = "knowledge:"


def projection_name(model: str) -> str:
    return f"{PREFIX}{model}"


class KnowledgeProjection:
    def __init__(
        self,
        store: EventStore,
        pool: ConnectionPool,
        index: KnowledgeIndex,
        blobs: DocumentBlobs,
        embedder: Embedder,
        record: Record | None,
        *,
        sizes: ChunkSizes = DEFAULT_SIZES,
        limits: ExtractionLimits = DEFAULT_LIMITS,
        prepare: Callable[[], object] | None = None,
    ) -> None:
        """`record`: records outcomes on the documents (the serving projection's; a projection
        building the index of a new model beside it records nothing: None). `prepare`: run
        before the first batch (creating an Elasticsearch index; retried with the batch)."""
        self._prepare = prepare
        if embedder.model != index.model:
            raise ValueError(f"the index holds {index.model} vectors, not {embedder.model}")
        self.name = projection_name(index.model)
        self._store = store
        self._pool = pool
        self._index = index
        self._blobs = blobs
        self._embedder = embedder
        self._sizes = sizes
        self._limits = limits
        self._record = record
        self._position: int | None = None

    def position(self) -> int:
        if self._position is None:
            with self._pool.connection() as conn:
                self._position = read_position(conn, self.name)
        return self._position

    def handle(self, batch: Sequence[Notification]) -> None:
        if self._prepare is not None:
            self._prepare()
            self._prepare = None
        for notification in batch:
            if notification.topic in TOPICS:
                self._apply(notification.id, notification.topic, self._store.decode(notification))
        with self._pool.connection() as conn:
            store_position(conn, self.name, batch[-1].id)
        self._position = max(self.position(), batch[-1].id)

    def _apply(self, position: int, topic: str, e: Any) -> None:
        if topic in (UPLOADED, REPROCESS):
            # Uploaded is revision 1; each ProcessingRequested names its own.
            self._process(position, e.originator_id, e.tenant_id, getattr(e, "revision", 1))
        elif topic in (DELETED, EXPIRED):
            self._index.delete_documents(e.tenant_id, [e.originator_id])
            self._blobs.delete([e.originator_id])
            self._visible()
        elif topic == USER_ERASED:
            user_id = e.originator_id
            self._index.delete_owner(e.tenant_id, user_id)
            self._blobs.delete(self._blobs.of_owner(e.tenant_id, user_id))
            self._visible()

    def _visible(self) -> None:
        """Make the writes visible to searches now: Elasticsearch shows them at its next refresh
        otherwise (up to a second), and a document recorded READY must be found."""
        refresh = getattr(self._index, "refresh", None)
        if refresh is not None:
            refresh()

    def _process(self, position: int, document_id: UUID, tenant_id: UUID, revision: int) -> None:
        document = self._store.get_or_none(document_id, readonly=True)
        if not isinstance(document, Document) or document.is_deleted:
            return  # deleted later in the log: nothing to index
        if revision < document.revision:
            return  # a later revision replaces this one: only that one is worth embedding
        data = self._blobs.get(document_id)
        if data is None:
            if self._blobs.erased(document_id):
                return  # its owner was erased (the erasure removes what was indexed)
            if self._record is not None:  # never stored (a failed upload's race): say so
                self._record(
                    Failed(
                        document_id,
                        revision,
                        "DOCUMENT_MISSING",
                        "the document's file is missing: upload it again",
                    )
                )
            return
        facts = DocumentFacts(
            document_id=document_id,
            tenant_id=tenant_id,
            owner_id=document.owner_id,
            title=document.title,
            media_type=document.media_type,
            revision=revision,
            position=position,
        )
        started = time.perf_counter()
        try:
            ingested = ingest(data, facts, self._embedder, sizes=self._sizes, limits=self._limits)
        except tuple(FAILURES) as failure:
            code = FAILURES[type(failure)]
            KNOWLEDGE_DOCUMENTS.labels("failed").inc()
            log.info("document %s revision %d cannot be processed: %s", document_id, revision, code)
            if self._record is not None:
                self._record(Failed(document_id, revision, code, str(failure)))
            return
        self._index.replace_document(tenant_id, document_id, revision, ingested.chunks)
        self._visible()  # READY means searchable
        KNOWLEDGE_DOCUMENTS.labels("processed").inc()
        KNOWLEDGE_CHUNKS.inc(len(ingested.chunks))
        KNOWLEDGE_SECONDS.observe(time.perf_counter() - started)
        log.info(
            "document %s revision %d: %d passages embedded by %s in %.1fs",
            document_id,
            revision,
            len(ingested.chunks),
            self._embedder.model,
            time.perf_counter() - started,
        )
        if self._record is not None:
            self._record(
                Processed(
                    document_id,
                    revision,
                    len(ingested.chunks),
                    len(ingested.extracted.text),
                    ingested.extracted.page_count,
                    self._embedder.model,
                )
            )
