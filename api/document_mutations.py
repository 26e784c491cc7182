"""Documents over GraphQL: upload (base64, for files that fit a GraphQL request; larger ones go to
`POST /documents`), process again, delete, and what a chat is grounded in."""

import base64
import binascii

import strawberry

from api.command_mutation import command_mutation
from commands import messages as cmd
from commands.results import Written
from domain.base import parse_id
from domain.document import Collection
from domain.errors import InvalidInput
from queries.knowledge_schema import DocumentCollection


@strawberry.input
class UploadDocumentInput:
    filename: str = strawberry.field(description="The file's name; the document's title.")
    content_base64: str = strawberry.field(
        description="The file's bytes, base64. GraphQL requests are limited to "
        "PARLEY_HTTP_MAX_BODY_BYTES (1 MiB): POST larger files to /documents (multipart)."
    )
    content_type: str | None = strawberry.field(
        default=None,
        description="What you say it is. Parley reads the bytes; this only tells Markdown "
        "(text/markdown) and HTML from plain text.",
    )
    collection: DocumentCollection = strawberry.field(
        default=DocumentCollection.PERSONAL,
        description="PERSONAL (yours) or TENANT (the tenant's collection: admins only).",
    )
    client_mutation_id: str | None = None


@strawberry.type
class DocumentPayload:
    document_id: strawberry.ID
    position: int = strawberry.field(
        description="Pass as afterPosition to read the document (its status moves from "
        "PROCESSING to READY or FAILED when the knowledge projection has processed it)."
    )
    duplicate: bool = strawberry.field(
        description="True when this clientMutationId was seen before: nothing new was recorded."
    )


@strawberry.input
class DocumentIdInput:
    document_id: strawberry.ID


@strawberry.input
class AttachKnowledgeInput:
    chat_id: strawberry.ID
    document_ids: list[strawberry.ID] = strawberry.field(
        description="The documents the chat's replies are grounded in (replacing the chat's "
        "current ones); yours or the tenant's collection's. Empty: none."
    )
    tenant_collection: bool = strawberry.field(
        default=False,
        description="Ground the replies in the tenant's whole collection and your own "
        "documents (then documentIds adds nothing).",
    )


@strawberry.type
class AttachKnowledgePayload:
    chat_id: strawberry.ID
    position: int


def decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("contentBase64 is not valid base64") from None


def _upload(input: UploadDocumentInput) -> cmd.UploadDocument:
    return cmd.UploadDocument(
        filename=input.filename,
        data=decode_base64(input.content_base64),
        declared_type=input.content_type,
        collection=Collection(input.collection.value),
        client_mutation_id=input.client_mutation_id,
    )


def _reprocess(input: DocumentIdInput) -> cmd.ReprocessDocument:
    return cmd.ReprocessDocument(document_id=parse_id(input.document_id, "document id"))


def _delete(input: DocumentIdInput) -> cmd.DeleteDocument:
    return cmd.DeleteDocument(document_id=parse_id(input.document_id, "document id"))


def _document_written(r: Written, input: object) -> DocumentPayload:
    return DocumentPayload(
        document_id=strawberry.ID(str(r.id)), position=r.position, duplicate=r.duplicate
    )


def _attach(input: AttachKnowledgeInput) -> cmd.AttachKnowledge:
    return cmd.AttachKnowledge(
        chat_id=parse_id(input.chat_id, "chat id"),
        document_ids=[parse_id(d, "document id") for d in input.document_ids],
        tenant_collection=input.tenant_collection,
    )


def _attached(r: Written, input: object) -> AttachKnowledgePayload:
    return AttachKnowledgePayload(chat_id=strawberry.ID(str(r.id)), position=r.position)


@strawberry.type
class DocumentMutations:
    upload_document = command_mutation(
        _upload,
        _document_written,
        description="Upload a document to answer from (PDF, Word .docx, HTML, Markdown or plain "
        "text; the type is read from the bytes). It is processed in the background: passages "
        "are extracted and embedded, then `document.status` is READY (or FAILED, with why).",
    )
    reprocess_document = command_mutation(
        _reprocess,
        _document_written,
        description="Process a document again (a new revision: new chunk sizes or embedding "
        "model, or after a failure). Its owner; the tenant's collection: admins.",
    )
    delete_document = command_mutation(
        _delete,
        _document_written,
        description="Delete a document: its bytes are crypto-shredded (its key destroyed) and "
        "its passages removed; replies that cited it show those citations as erased.",
    )
    attach_knowledge = command_mutation(
        _attach,
        _attached,
        description="Ground a chat's replies in documents: each reply is given the passages "
        "that best answer the message and asked to cite them.",
    )
