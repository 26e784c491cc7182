"""Postgres read models (tenants, users, chats, messages), tenant-isolated by row-level security.

An exactly-once projection: each batch's rows and the new position commit in one transaction, so a
crash at any point replays nothing twice and skips nothing.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import fields
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from psycopg import Connection, sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from domain.erased import ERASED
from domain.model_settings import DEFAULT_MODEL
from infra.eventstore.event_store import EventStore
from infra.eventstore.follower_positions import store_position
from infra.messaging.live_items import ChatRemoved, Committed, LiveItem, MessageRow
from infra.read_model_schema import (
    PROJECTION_NAME,
    READ_SCHEMA,
)
from projections.fencing import FencedProjection

log = logging.getLogger(__name__)


class ReadModelProjection(FencedProjection):
    """Builds the rm_* tables from the log. Position and rows commit together (exactly-once).

    `schema` and `name` default to the live generation; a rebuild runs another instance into
    READ_SCHEMA_NEXT under its own position name.
    """

    def __init__(
        self,
        store: EventStore,
        pool: ConnectionPool,
        on_committed: Committed | None = None,
        *,
        schema: str = READ_SCHEMA,
        name: str = PROJECTION_NAME,
    ) -> None:
        self._store = store
        self._pool = pool
        self._on_committed = on_committed
        self.schema = schema
        self.name = name
        self._position: int | None = None

    def handle(self, batch: Sequence[Notification]) -> None:
        with self.fenced() as conn:
            if conn is None:  # a rebuild swapped in a new generation: continue from there
                return
            added = self.apply(conn, batch)
        self._position = batch[-1].id
        if self._on_committed is not None:
            self._on_committed(batch[-1].id, added)

    def apply(self, conn: Connection, batch: Sequence[Notification]) -> list[LiveItem]:
        """Apply a batch and store its position, inside the caller's transaction.

        Runs of consecutive messages (most of the log) are written set-based, a few statements
        per run instead of three per message; everything else is applied in log order.
        """
        conn.execute(
            sql.SQL("SET LOCAL search_path TO {}, public").format(sql.Identifier(self.schema))
        )
        added: list[LiveItem] = []
        pending: list[MessageRow] = []
        for notification in batch:
            if notification.topic == MESSAGE_POSTED:
                pending.append(message_row(notification.id, self._store.decode(notification)))
                continue
            handler = _HANDLERS.get(notification.topic)
            if handler is None:
                continue
            if pending:
                added += insert_messages(conn, pending)
                pending = []
            row = handler(conn, notification.id, self._store.decode(notification))
            if row is not None:
                added.append(row)
        if pending:
            added += insert_messages(conn, pending)
        store_position(conn, self.name, batch[-1].id)
        return added


def _tenant_created(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        """INSERT INTO rm_tenants (tenant_id, name, slug, default_model, allowed_models,
               created_at, updated_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
        (e.tenant_id, e.name, e.slug, DEFAULT_MODEL, [DEFAULT_MODEL], e.timestamp, e.timestamp),
    )


def _tenant_renamed(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        "UPDATE rm_tenants SET name = %s, updated_at = %s WHERE tenant_id = %s",
        (e.name, e.timestamp, e.tenant_id),
    )


def _tenant_settings_changed(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        """UPDATE rm_tenants SET default_model = %s, allowed_models = %s, retention_days = %s,
               model_settings = %s, updated_at = %s WHERE tenant_id = %s""",
        (
            e.default_model,
            list(e.allowed_models),
            e.retention_days,
            Jsonb(_model_settings(e)),
            e.timestamp,
            e.tenant_id,
        ),
    )


def _model_settings(e: Any) -> dict[str, Any]:
    """The optional gateway fields of a SettingsChanged (absent from early events)."""
    names = (
        "fallback_models",
        "system_prompt",
        "cache_ttl_seconds",
        "user_requests_per_minute",
        "tenant_requests_per_minute",
        "tenant_tokens_per_minute",
        "monthly_budget_usd",
        "enabled_providers",
        "model_max_tokens",
    )
    return {n: getattr(e, n, None) for n in names}


def _tenant_deactivated(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        "UPDATE rm_tenants SET active = false, updated_at = %s WHERE tenant_id = %s",
        (e.timestamp, e.tenant_id),
    )


def _user_registered(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        """INSERT INTO rm_users (user_id, tenant_id, email, display_name, role, created_at,
               updated_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
        (e.originator_id, e.tenant_id, e.email, e.display_name, e.role, e.timestamp, e.timestamp),
    )


def _user_role_changed(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        "UPDATE rm_users SET role = %s, updated_at = %s WHERE user_id = %s",
        (e.role, e.timestamp, e.originator_id),
    )


def _user_deactivated(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        "UPDATE rm_users SET active = false, updated_at = %s WHERE user_id = %s",
        (e.timestamp, e.originator_id),
    )


def _chat_started(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        """INSERT INTO rm_chats (chat_id, tenant_id, owner_id, title, model, status, seq,
               created_at, updated_at)
           VALUES (%s, %s, %s, %s, %s, 'active', %s, %s, %s) ON CONFLICT DO NOTHING""",
        (e.originator_id, e.tenant_id, e.owner_id, e.title, e.model, seq, e.timestamp, e.timestamp),
    )


MESSAGE_POSTED = "parley.ChatSession.MessagePosted"
_MESSAGE_COLUMNS = (
    "message_id",
    "tenant_id",
    "chat_id",
    "seq",
    "role",
    "content",
    "model",
    "author_id",
    "reply_to",
    "input_tokens",
    "output_tokens",
    "finish_reason",
    "latency_ms",
    "created_at",
    "provider",
    "attempts",
    "fallbacks",
    "time_to_first_token_ms",
    "cost_nanos",
    "cached",
    "citations",
)
_MESSAGE_TYPES = (
    "uuid",
    "uuid",
    "uuid",
    "bigint",
    "text",
    "text",
    "text",
    "uuid",
    "uuid",
    "integer",
    "integer",
    "text",
    "integer",
    "timestamptz",
    "text",
    "integer",
    "integer",
    "integer",
    "bigint",
    "boolean",
    "jsonb",
)


_FROM_EVENT = tuple(
    f.name for f in fields(MessageRow) if f.name not in ("chat_id", "seq", "created_at")
)
"""The row's fields that a MessagePosted event carries under the same name."""


def message_row(seq: int, e: Any) -> MessageRow:
    """The read-model row of a MessagePosted event. The gateway's fields (provider, attempts,
    …) are absent from replies recorded before the model gateway: None."""
    carried: dict[str, Any] = {name: getattr(e, name, None) for name in _FROM_EVENT}
    return MessageRow(chat_id=e.originator_id, seq=seq, created_at=e.timestamp, **carried)


def insert_messages(conn: Connection, rows: list[MessageRow]) -> list[MessageRow]:
    """Insert messages; move chat counters and usage only for rows really inserted (a replay
    inserts nothing and moves nothing). Returns the inserted rows, in log order."""
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in _MESSAGE_COLUMNS)
    arrays = sql.SQL(", ").join(sql.SQL("%s::{}[]").format(sql.SQL(t)) for t in _MESSAGE_TYPES)
    inserted = {
        r[0]
        for r in conn.execute(
            sql.SQL(
                "INSERT INTO rm_messages ({}) SELECT * FROM unnest({}) "
                "ON CONFLICT DO NOTHING RETURNING message_id"
            ).format(columns, arrays),
            [[_db_value(getattr(r, c)) for r in rows] for c in _MESSAGE_COLUMNS],
        ).fetchall()
    }
    new = [r for r in rows if r.message_id in inserted]
    if not new:
        return []
    per_chat: dict[UUID, tuple[int, datetime]] = {}
    for r in new:
        count, _ = per_chat.get(r.chat_id, (0, r.created_at))
        per_chat[r.chat_id] = (count + 1, r.created_at)  # log order: the last is the latest
    chats = {
        chat_id: (owner_id, model)
        for chat_id, owner_id, model in conn.execute(
            """UPDATE rm_chats c SET message_count = c.message_count + d.n,
                   last_message_at = d.at, updated_at = d.at
               FROM unnest(%s::uuid[], %s::integer[], %s::timestamptz[]) AS d(chat_id, n, at)
               WHERE c.chat_id = d.chat_id
               RETURNING c.chat_id, c.owner_id, c.model""",
            (
                list(per_chat),
                [n for n, _ in per_chat.values()],
                [at for _, at in per_chat.values()],
            ),
        ).fetchall()
    }
    usage: dict[tuple[UUID, date, UUID, str], list[int]] = {}
    for r in new:
        if r.chat_id not in chats:
            continue
        owner_id, chat_model = chats[r.chat_id]
        day = r.created_at.astimezone(UTC).date()
        sums = usage.setdefault((r.tenant_id, day, owner_id, r.model or chat_model), [0] * 6)
        is_user = r.role == "user"
        sums[0] += int(is_user)
        sums[1] += int(not is_user)
        sums[2] += r.input_tokens
        sums[3] += r.output_tokens
        sums[4] += r.latency_ms or 0
        sums[5] += r.cost_nanos or 0
    if usage:
        keys, values = list(usage), list(usage.values())
        conn.execute(
            """INSERT INTO rm_usage AS u (tenant_id, day, user_id, model, user_messages,
                   assistant_messages, input_tokens, output_tokens, latency_ms_sum, cost_nanos)
               SELECT * FROM unnest(%s::uuid[], %s::date[], %s::uuid[], %s::text[],
                   %s::integer[], %s::integer[], %s::bigint[], %s::bigint[], %s::bigint[],
                   %s::bigint[])
               ON CONFLICT (tenant_id, day, user_id, model) DO UPDATE SET
                   user_messages = u.user_messages + EXCLUDED.user_messages,
                   assistant_messages = u.assistant_messages + EXCLUDED.assistant_messages,
                   input_tokens = u.input_tokens + EXCLUDED.input_tokens,
                   output_tokens = u.output_tokens + EXCLUDED.output_tokens,
                   latency_ms_sum = u.latency_ms_sum + EXCLUDED.latency_ms_sum,
                   cost_nanos = u.cost_nanos + EXCLUDED.cost_nanos""",
            [[k[i] for k in keys] for i in range(4)] + [[v[i] for v in values] for i in range(6)],
        )
    return new


def _db_value(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, list) else value


def _chat_renamed(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        "UPDATE rm_chats SET title = %s, updated_at = %s WHERE chat_id = %s",
        (e.title, e.timestamp, e.originator_id),
    )


def _chat_archived(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        "UPDATE rm_chats SET status = 'archived', updated_at = %s WHERE chat_id = %s",
        (e.timestamp, e.originator_id),
    )


def _chat_deleted(conn: Connection, seq: int, e: Any) -> ChatRemoved:
    # Deleted chats leave the read side entirely; the log keeps their history for auditors.
    conn.execute("DELETE FROM rm_messages WHERE chat_id = %s", (e.originator_id,))
    conn.execute("DELETE FROM rm_chats WHERE chat_id = %s", (e.originator_id,))
    return ChatRemoved(e.originator_id)


def _chat_knowledge_changed(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        """UPDATE rm_chats SET knowledge_documents = %s, knowledge_collection = %s,
               updated_at = %s WHERE chat_id = %s""",
        (list(e.document_ids), e.tenant_collection, e.timestamp, e.originator_id),
    )


def _document_uploaded(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        """INSERT INTO rm_documents (document_id, tenant_id, owner_id, collection, title,
               media_type, size_bytes, content_sha256, status, revision, seq, created_at,
               updated_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'processing', 1, %s, %s, %s)
           ON CONFLICT DO NOTHING""",
        (
            e.originator_id,
            e.tenant_id,
            e.owner_id,
            e.collection,
            e.title,
            e.media_type,
            e.size_bytes,
            e.content_sha256,
            seq,
            e.timestamp,
            e.timestamp,
        ),
    )


def _document_processing_requested(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        """UPDATE rm_documents SET status = 'processing', revision = %s, failure_code = NULL,
               failure_reason = NULL, updated_at = %s WHERE document_id = %s""",
        (e.revision, e.timestamp, e.originator_id),
    )


def _document_processed(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        """UPDATE rm_documents SET status = 'ready', chunks = %s, characters = %s, pages = %s,
               embedding_model = %s, updated_at = %s WHERE document_id = %s AND revision = %s""",
        (
            e.chunks,
            e.characters,
            e.pages,
            e.embedding_model,
            e.timestamp,
            e.originator_id,
            e.revision,
        ),
    )


def _document_processing_failed(conn: Connection, seq: int, e: Any) -> None:
    conn.execute(
        """UPDATE rm_documents SET status = 'failed', failure_code = %s, failure_reason = %s,
               updated_at = %s WHERE document_id = %s AND revision = %s""",
        (e.code, e.reason, e.timestamp, e.originator_id, e.revision),
    )


def _document_deleted(conn: Connection, seq: int, e: Any) -> None:
    conn.execute("DELETE FROM rm_documents WHERE document_id = %s", (e.originator_id,))


def _user_erased(conn: Connection, seq: int, e: Any) -> None:
    """Nothing personal of the user stays on the read side: profile, their chats' titles and
    every message of those chats read as the placeholder (the rows stay, for counts)."""
    user = e.originator_id
    conn.execute(
        """UPDATE rm_users SET email = %s, display_name = %s, active = false, updated_at = %s
           WHERE user_id = %s""",
        (ERASED, ERASED, e.timestamp, user),
    )
    conn.execute(
        """UPDATE rm_messages SET content = %s
           WHERE chat_id IN (SELECT chat_id FROM rm_chats WHERE owner_id = %s)""",
        (ERASED, user),
    )
    conn.execute(
        "UPDATE rm_chats SET title = %s, updated_at = %s WHERE owner_id = %s",
        (ERASED, e.timestamp, user),
    )
    # Their documents are crypto-shredded: they leave the read side like deleted ones.
    conn.execute("DELETE FROM rm_documents WHERE owner_id = %s", (user,))


_HANDLERS: dict[str, Callable[[Connection, int, Any], LiveItem | None]] = {
    "parley.Tenant.Created": _tenant_created,
    "parley.Tenant.Renamed": _tenant_renamed,
    "parley.Tenant.SettingsChanged": _tenant_settings_changed,
    "parley.Tenant.Deactivated": _tenant_deactivated,
    "parley.User.Registered": _user_registered,
    "parley.User.RoleChanged": _user_role_changed,
    "parley.User.Deactivated": _user_deactivated,
    "parley.User.Erased": _user_erased,
    "parley.ChatSession.Started": _chat_started,
    "parley.ChatSession.Renamed": _chat_renamed,
    "parley.ChatSession.Archived": _chat_archived,
    "parley.ChatSession.Deleted": _chat_deleted,
    "parley.ChatSession.Expired": _chat_deleted,  # retention: gone like a deleted chat
    "parley.ChatSession.KnowledgeChanged": _chat_knowledge_changed,
    "parley.Document.Uploaded": _document_uploaded,
    "parley.Document.ProcessingRequested": _document_processing_requested,
    "parley.Document.Processed": _document_processed,
    "parley.Document.ProcessingFailed": _document_processing_failed,
    "parley.Document.Deleted": _document_deleted,
    "parley.Document.Expired": _document_deleted,  # retention: gone like a deleted document
}
