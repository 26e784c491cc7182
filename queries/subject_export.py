"""Right of access: everything Parley holds about one user, read from the event log (the source of
truth, deleted chats included) and decrypted with their data keys. After an erasure the same
export shows the placeholder where their data was."""

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from domain.chat import ChatSession
from domain.document import Document
from domain.errors import NotFound
from domain.user import User
from infra.audit.store import tenant_of
from infra.eventstore.event_store import EVENTS_TABLE, EventStore
from queries.replay import SECRET_FIELDS, _log_cursor, decode, to_json

Progress = Callable[[int, int], None]

CHAT_STARTED = "parley.ChatSession.Started"
DOCUMENT_UPLOADED = "parley.Document.Uploaded"
Bytes = Callable[[UUID], bytes | None]
"""A document's bytes (None once deleted or erased)."""
FORMAT = "parley.subject-export.v1"


def export_user(
    store: EventStore,
    user_id: UUID,
    progress: Progress | None = None,
    document_bytes: Bytes | None = None,
) -> dict:
    """With `document_bytes`, the user's documents' files are included (base64)."""
    user = store.get_or_none(user_id)
    if not isinstance(user, User):
        raise NotFound(f"user {user_id} not found")
    chats = [
        _chat(store, chat_id)
        for chat_id in _started_by(store, CHAT_STARTED, user.id, user.tenant_id, progress)
    ]
    documents = [
        _document(store, document_id, document_bytes)
        for document_id in _started_by(store, DOCUMENT_UPLOADED, user.id, user.tenant_id, None)
    ]
    return {
        "format": FORMAT,
        "exported_at": datetime.now(UTC).isoformat(),
        "user": {
            "id": str(user.id),
            "tenant_id": str(user.tenant_id),
            "email": user.email,
            "display_name": user.display_name,
            "role": user.role.value,
            "active": user.active,
            "erased": getattr(user, "erased", False),
            "history": _history(store, user.id),
        },
        "chats": chats,
        "documents": documents,
        "notes": "Read from Parley's event log. Message contents of both sides of each "
        "conversation are included; password hashes are not. Documents the user uploaded to "
        "their own collection are included with their files (base64), unless deleted. "
        "'(erased)' marks data whose key was destroyed.",
    }


def _started_by(
    store: EventStore, topic: str, user_id: UUID, tenant_id: UUID, progress: Progress | None
) -> list[UUID]:
    """The aggregates whose first event (`topic`) names the user as their owner."""
    with _log_cursor(store) as cursor:
        cursor.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {EVENTS_TABLE}"
            " WHERE topic = %s ORDER BY notification_id",
            (topic,),
        )
        rows = cursor.fetchall()
    found = []
    for n, row in enumerate(rows, start=1):
        event = decode(
            store,
            StoredEvent(
                row["originator_id"], row["originator_version"], row["topic"], row["state"]
            ),
        )
        if getattr(event, "owner_id", None) == user_id and tenant_of(event) == tenant_id:
            found.append(event.originator_id)
        if progress is not None and (n % 500 == 0 or n == len(rows)):
            progress(n, len(rows))
    return found


def _chat(store: EventStore, chat_id: UUID) -> dict[str, Any]:
    chat = store.get_or_none(chat_id)
    messages = [
        {
            "id": str(e.message_id),
            "role": e.role,
            "content": e.content,
            "model": getattr(e, "model", None),
            "at": e.timestamp.isoformat(),
        }
        for e in _events(store, chat_id)
        if type(e).__name__ == "MessagePosted"
    ]
    assert isinstance(chat, ChatSession)
    return {
        "id": str(chat_id),
        "title": chat.title,
        "model": chat.model,
        "status": chat.status.value,
        "messages": messages,
        "history": _history(store, chat_id),
    }


def _document(store: EventStore, document_id: UUID, read: Bytes | None) -> dict[str, Any]:
    document = store.get_or_none(document_id)
    assert isinstance(document, Document)
    data = read(document_id) if read is not None and not document.is_deleted else None
    return {
        "id": str(document_id),
        "title": document.title,
        "media_type": document.media_type,
        "size_bytes": document.size_bytes,
        "content_sha256": document.content_sha256,
        "status": document.status.value,
        "content_base64": base64.b64encode(data).decode() if data is not None else None,
        "history": _history(store, document_id),
    }


def _history(store: EventStore, aggregate_id: UUID) -> list[dict[str, Any]]:
    """Each event of the aggregate: its type, time and fields (secrets left out)."""
    return [
        {
            "type": type(e).__qualname__,
            "version": e.originator_version,
            "at": e.timestamp.isoformat(),
            "fields": {
                k: to_json(v)
                for k, v in vars(e).items()
                if k not in SECRET_FIELDS
                and k not in ("originator_id", "originator_version", "timestamp")
            },
        }
        for e in _events(store, aggregate_id)
    ]


def _events(store: EventStore, aggregate_id: UUID) -> list[Any]:
    return list(store.events.get(aggregate_id))
