"""The Document aggregate: a file a user or a tenant's admins gave Parley to answer from.

A document belongs to its tenant and either to the user who uploaded it (a personal document) or
to the tenant's collection, which admins manage (`owner_id` None). Its bytes are kept outside the
log, encrypted under the document's own data key, owned by its owner (so erasing the owner
crypto-shreds them with their chats); the log records what happened to it: uploaded, processed
(or not), processed again, deleted.

Every processing is a *revision*: the upload is revision 1 and each request to process it again
adds one. Passages are identified per revision (`infra/knowledge/chunking.chunk_id`), so a
citation names exactly the passage an answer was given, even after the document was processed
again with other settings or another embedding model.
"""

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from domain.base import TenantScopedAggregate, check_length
from domain.erased import ERASED
from domain.errors import InvalidInput, NotFound

MAX_TITLE = 255
MAX_FAILURE_REASON = 500


class Collection(StrEnum):
    PERSONAL = "personal"
    """The uploader's own: only they (and the tenant's auditors) read it."""
    TENANT = "tenant"
    """The tenant's shared collection: every member reads it, admins manage it."""


class DocumentStatus(StrEnum):
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"
    DELETED = "deleted"


class Document(TenantScopedAggregate):
    TOPIC = "parley.Document"

    class Event(TenantScopedAggregate.Event):
        TOPIC = "parley.Document.Event"
        tenant_id: UUID

    @classmethod
    def upload(
        cls,
        *,
        document_id: UUID,
        tenant_id: UUID,
        owner_id: UUID | None,
        title: str,
        media_type: str,
        size_bytes: int,
        content_sha256: str,
    ) -> "Document":
        if size_bytes <= 0:
            raise InvalidInput("the document is empty")
        return cls(
            id=document_id,
            tenant_id=tenant_id,
            owner_id=owner_id,
            collection=(Collection.PERSONAL if owner_id else Collection.TENANT).value,
            title=check_length(title, field="file name", low=1, high=MAX_TITLE),
            media_type=media_type,
            size_bytes=size_bytes,
            content_sha256=content_sha256,
        )

    @event("Uploaded", topic="parley.Document.Uploaded")
    def __init__(
        self,
        id: UUID,
        tenant_id: UUID,
        owner_id: UUID | None,
        collection: str,
        title: str,
        media_type: str,
        size_bytes: int,
        content_sha256: str,
    ) -> None:
        self.tenant_id = tenant_id
        self.owner_id = owner_id
        self.collection = Collection(collection)
        self.title = title
        self.media_type = media_type
        self.size_bytes = size_bytes
        self.content_sha256 = content_sha256
        self.revision = 1
        self.status = DocumentStatus.PROCESSING
        self.chunks = 0
        self.pages: int | None = None
        self.embedding_model: str | None = None
        self.failure: str | None = None

    @property
    def is_deleted(self) -> bool:
        return self.status is DocumentStatus.DELETED

    def request_processing(self) -> None:
        """Process the bytes again (new chunk sizes, a new embedding model, a failure fixed)."""
        self._ensure_not_deleted()
        self._processing_requested(revision=self.revision + 1)

    @event("ProcessingRequested", topic="parley.Document.ProcessingRequested")
    def _processing_requested(self, revision: int) -> None:
        self.revision = revision
        self.status = DocumentStatus.PROCESSING
        self.failure = None

    def record_processed(
        self, *, revision: int, chunks: int, characters: int, pages: int | None, model: str
    ) -> bool:
        """The processing of `revision` finished; False when it is stale or already recorded."""
        if (
            self.is_deleted
            or revision != self.revision
            or self.status is not DocumentStatus.PROCESSING
        ):
            return False
        self._processed(
            revision=revision,
            chunks=chunks,
            characters=characters,
            pages=pages,
            embedding_model=model,
        )
        return True

    @event("Processed", topic="parley.Document.Processed")
    def _processed(
        self, revision: int, chunks: int, characters: int, pages: int | None, embedding_model: str
    ) -> None:
        self.status = DocumentStatus.READY
        self.chunks = chunks
        self.pages = pages
        self.embedding_model = embedding_model

    def record_failure(self, *, revision: int, code: str, reason: str) -> bool:
        """The processing of `revision` cannot succeed (the file is unreadable or unsupported);
        False when it is stale or already recorded."""
        if (
            self.is_deleted
            or revision != self.revision
            or self.status is not DocumentStatus.PROCESSING
        ):
            return False
        self._processing_failed(revision=revision, code=code, reason=reason[:MAX_FAILURE_REASON])
        return True

    @event("ProcessingFailed", topic="parley.Document.ProcessingFailed")
    def _processing_failed(self, revision: int, code: str, reason: str) -> None:
        self.status = DocumentStatus.FAILED
        self.failure = reason

    def delete(self) -> None:
        self._ensure_not_deleted()
        self._deleted()

    @event("Deleted", topic="parley.Document.Deleted")
    def _deleted(self) -> None:
        self.status = DocumentStatus.DELETED
        self.title = ERASED

    def expire(self, retention_days: int, last_activity: datetime) -> None:
        """Retention: the document's key is destroyed and it is gone for every reader."""
        if not self.is_deleted:
            self._expired(retention_days=retention_days, last_activity=last_activity)

    @event("Expired", topic="parley.Document.Expired")
    def _expired(self, retention_days: int, last_activity: datetime) -> None:
        self.status = DocumentStatus.DELETED
        self.title = ERASED

    def _ensure_not_deleted(self) -> None:
        if self.is_deleted:
            raise NotFound("document not found")
