"""Full-text search over messages and chat titles: one interface, two adapters.

`ElasticsearchSearch` (`queries/search_elasticsearch.py`) reads the index that
`projections/search_index.py` builds; `PostgresSearch` (`queries/search_postgres.py`) reads the
rm_* read models. Both scope every query to the caller's tenant (Elasticsearch: a filter and
routing taken from the actor, never from input; Postgres: row-level security plus the same
filter) and to the chats the caller may see (their own; auditors: every chat of the tenant).

Both return the same thing (defined here, with the port): hits ranked by score, an opaque cursor
(score, then the log position of the hit, which is unique), and highlights that are HTML-escaped
text in which only `<em>…</em>` marks the matches, so a client may render them as HTML.

This module is the port: the `SearchIndex` protocol the resolvers call and what crosses it. A
`SearchQuery` goes in (checked by `check_query`, the same for every adapter), a `SearchPage` of
`SearchHit`s comes out. Cursors are defined here too, so that both adapters encode them alike and
a cursor from one engine is refused by the other.
"""

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from domain.actor import Actor
from domain.chat import MessageRole
from domain.errors import InvalidInput

MAX_QUERY_LENGTH = 500
MAX_FIRST = 100
MAX_SNAPSHOT_ID = 4096
"""A point-in-time id grows with the index's shards (~100 bytes each); longer is not one."""

HitKind = Literal["message", "chat_title"]


@dataclass(frozen=True)
class SearchQuery:
    text: str
    """Web-search syntax: words (all must match), "quoted phrases", -excluded words."""
    chat_id: UUID | None = None
    role: MessageRole | None = None
    """Only messages of this role (chat-title hits have no role, so they drop out)."""
    from_ts: datetime | None = None
    """Inclusive lower bound of created_at (naive datetimes are taken as UTC)."""
    to_ts: datetime | None = None
    """Exclusive upper bound of created_at."""
    first: int = 20
    after: str | None = None


@dataclass(frozen=True)
class SearchHit:
    kind: HitKind
    chat_id: UUID
    chat_title: str
    message_id: UUID | None
    role: MessageRole | None
    content: str
    """The message text, or the chat title for a chat-title hit (raw, not escaped)."""
    created_at: datetime
    position: int
    """Log position of the event that created the message or started the chat."""
    score: float
    highlights: list[str]
    """HTML-escaped fragments; matches are wrapped in <em>…</em>."""
    cursor: str
    """Pass as `after` to continue after this hit."""


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit]
    end_cursor: str | None
    has_next_page: bool


class SearchIndex(Protocol):
    async def search(self, actor: Actor, q: SearchQuery) -> SearchPage:
        """The caller's visible hits for `q`, best first; raises InvalidInput, SearchUnavailable."""
        ...


def check_query(q: SearchQuery) -> SearchQuery:
    """Validate the client's input; bounds are normalised to aware datetimes."""
    text = q.text.strip() if isinstance(q.text, str) else ""
    if not text:
        raise InvalidInput("query must not be empty")
    if "\x00" in text:
        # PostgreSQL text cannot hold NUL: refused here rather than failing in the database.
        raise InvalidInput("query must not contain NUL characters")
    if len(text) > MAX_QUERY_LENGTH:
        raise InvalidInput(f"query must be at most {MAX_QUERY_LENGTH} characters")
    if not 1 <= q.first <= MAX_FIRST:
        raise InvalidInput(f"first must be 1..{MAX_FIRST}")
    from_ts, to_ts = _aware(q.from_ts), _aware(q.to_ts)
    if from_ts is not None and to_ts is not None and from_ts >= to_ts:
        raise InvalidInput("from must be before to")
    return SearchQuery(
        text=text,
        chat_id=q.chat_id,
        role=None if q.role is None else MessageRole(q.role),
        from_ts=from_ts,
        to_ts=to_ts,
        first=q.first,
        after=q.after,
    )


def _aware(ts: datetime | None) -> datetime | None:
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts


# -- cursors ---------------------------------------------------------------------------------------
# A cursor is the (score, position) of the last hit, tagged with its adapter so that a cursor from
# one engine is refused by the other instead of silently paging wrongly. Elasticsearch cursors also
# carry the id of the snapshot (point in time) their search reads.

POSTGRES_CURSOR = "pg"
ELASTICSEARCH_CURSOR = "es"
"""The only adapter whose cursors carry a snapshot id."""


@dataclass(frozen=True)
class Cursor:
    score: float
    position: int
    snapshot: str | None = None


def encode_cursor(adapter: str, score: float, position: int, snapshot: str | None = None) -> str:
    fields: list[Any] = [adapter, score, position]
    if snapshot is not None:
        fields.append(snapshot)
    raw = json.dumps(fields, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(adapter: str, cursor: str | None) -> Cursor | None:
    if cursor is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("invalid cursor") from None
    match value:
        case [str() as tag, int() | float() as score, int() as position, *rest] if (
            tag == adapter
            and not isinstance(score, bool)
            and not isinstance(position, bool)
            and math.isfinite(score)
            and 0 <= position < 2**63
        ):
            match rest:
                case []:
                    return Cursor(float(score), position)
                case [str() as snapshot] if (
                    adapter == ELASTICSEARCH_CURSOR and 0 < len(snapshot) <= MAX_SNAPSHOT_ID
                ):
                    return Cursor(float(score), position, snapshot)
    raise InvalidInput("invalid cursor")
