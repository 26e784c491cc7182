"""Document commands: upload, process again, delete, the knowledge projection's outcomes, and a
chat's attachments. Each is `handler(cmd, uow, ...)`, run by the bus."""

import hashlib
from uuid import uuid4

from commands.chats import check_client_mutation_id
from commands.messages import (
    AttachKnowledge,
    DeleteDocument,
    ExpireDocument,
    RecordDocumentFailed,
    RecordDocumentProcessed,
    ReprocessDocument,
    UploadDocument,
)
from commands.results import Written
from commands.unit_of_work import UnitOfWork
from domain.base import stable_id
from domain.chat import MAX_KNOWLEDGE_DOCUMENTS
from domain.document import Document
from domain.errors import InvalidInput, NotFound
from domain.policy import document_owner, managed_document, visible_document, writable_chat
from infra.knowledge.blobs import DocumentBlobs, subject
from infra.knowledge.extraction import sniff

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
"""The default upload limit (PARLEY_DOCUMENT_MAX_BYTES); the HTTP endpoint enforces the setting
before it reads a body, the command this as the last word."""


def upload_document(
    cmd: UploadDocument, uow: UnitOfWork, blobs: DocumentBlobs | None, max_bytes: int | None
) -> Written:
    """Sniff the bytes (the declared type only tells Markdown from text), keep them encrypted,
    record Uploaded; the knowledge projection processes them."""
    me = uow.acting()
    owner = document_owner(me, cmd.collection)
    key = check_client_mutation_id(cmd.client_mutation_id)
    document_id = stable_id("document", me.user_id, key) if key else uuid4()
    if key and uow.store.get_or_none(document_id, readonly=True) is not None:
        return Written(id=document_id, position=uow.head(), duplicate=True)
    limit = max_bytes or MAX_DOCUMENT_BYTES
    if len(cmd.data) > limit:
        raise InvalidInput(
            f"the file is {len(cmd.data):,} bytes; documents may be at most {limit:,} bytes"
        )
    media_type = sniff(cmd.data, cmd.filename, cmd.declared_type)
    document = Document.upload(
        document_id=document_id,
        tenant_id=me.tenant_id,
        owner_id=owner,
        title=cmd.filename,
        media_type=media_type,
        size_bytes=len(cmd.data),
        content_sha256=hashlib.sha256(cmd.data).hexdigest(),
    )
    if blobs is None:
        raise RuntimeError("this process keeps no documents (no DocumentBlobs given to the bus)")
    # Bytes first: an Uploaded event always has its bytes; bytes no event names are removed
    # (only the ones this attempt stored: a concurrent upload under the same key may own them).
    stored = blobs.put(subject(document_id, me.tenant_id, owner), cmd.data)
    try:
        position = uow.save(document)
    except BaseException:
        if stored:
            blobs.delete([document_id])
        raise
    return Written(id=document_id, position=position)


def reprocess_document(cmd: ReprocessDocument, uow: UnitOfWork) -> Written:
    me, _, document = uow.acting_on(cmd.document_id)
    document = managed_document(me, document)
    document.request_processing()
    return Written(id=document.id, position=uow.save(document))


def delete_document(cmd: DeleteDocument, uow: UnitOfWork) -> Written:
    """Crypto-shred the bytes (the document's key), record Deleted; the knowledge projection
    removes the passages and the bytes, and citations of it show as erased."""
    me, _, document = uow.acting_on(cmd.document_id)
    document = managed_document(me, document)
    document.delete()
    # The key first: once Deleted is recorded a retry finds nothing to delete, and the key
    # must not outlive it (its name in the log would stay readable).
    uow.data_keys.destroy([document.id], "document deleted")
    return Written(id=document.id, position=uow.save(document))


def record_document_processed(cmd: RecordDocumentProcessed, uow: UnitOfWork) -> Written | None:
    document = uow.get(cmd.document_id)
    if not isinstance(document, Document):
        return None
    if not document.record_processed(
        revision=cmd.revision,
        chunks=cmd.chunks,
        characters=cmd.characters,
        pages=cmd.pages,
        model=cmd.model,
    ):
        return None
    return Written(id=document.id, position=uow.save(document))


def record_document_failed(cmd: RecordDocumentFailed, uow: UnitOfWork) -> Written | None:
    document = uow.get(cmd.document_id)
    if not isinstance(document, Document):
        return None
    if not document.record_failure(revision=cmd.revision, code=cmd.code, reason=cmd.reason):
        return None
    return Written(id=document.id, position=uow.save(document))


def attach_knowledge(cmd: AttachKnowledge, uow: UnitOfWork) -> Written:
    """Only documents the chat's owner may read can ground its replies."""
    me, _, chat = uow.acting_on(cmd.chat_id)
    chat = writable_chat(me, chat)
    wanted = list(dict.fromkeys(cmd.document_ids))
    if len(wanted) > MAX_KNOWLEDGE_DOCUMENTS:  # before loading any of them
        raise InvalidInput(f"a chat may attach at most {MAX_KNOWLEDGE_DOCUMENTS} documents")
    for document_id in wanted:
        visible_document(me, uow.store.get_or_none(document_id, readonly=True))
    chat.attach_knowledge(wanted, cmd.tenant_collection)
    return Written(id=chat.id, position=uow.save(chat))


def expire_document(cmd: ExpireDocument, uow: UnitOfWork) -> Written:
    """Retention (Parley itself acting): destroy the document's key, record Expired."""
    document = uow.get(cmd.document_id)
    if not isinstance(document, Document):
        raise NotFound("document not found")
    if document.is_deleted:
        return Written(id=document.id, position=uow.head())
    uow.data_keys.destroy([document.id], f"retention: {cmd.retention_days} days")
    document.expire(cmd.retention_days, cmd.last_activity)
    return Written(id=document.id, position=uow.save(document))
