"""Full-text search over messages and chat titles: one interface, two adapters.

`ElasticsearchSearch` reads the index that `projections/search_index.py` builds; `PostgresSearch`
reads the rm_* read models. Both scope every query to the caller's tenant (Elasticsearch: a filter
and routing taken from the actor, never from input; Postgres: row-level security plus the same
filter) and to the chats the caller may see (their own; auditors: every chat of the tenant).

Both return the same thing: hits ranked by score, an opaque cursor (score, then the log position
of the hit, which is unique), and highlights that are HTML-escaped text in which only
`<em>…</em>` marks the matches, so a client may render them as HTML.
"""

import base64
import binascii
import html
import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from uuid import UUID

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from domain.actor import Actor
from domain.chat import MessageRole
from domain.errors import InvalidInput, SearchUnavailable
from domain.policy import chat_owner_filter
from queries.read_models import ReadModels

log = logging.getLogger(__name__)

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
                    adapter == ElasticsearchSearch.adapter and 0 < len(snapshot) <= MAX_SNAPSHOT_ID
                ):
                    return Cursor(float(score), position, snapshot)
    raise InvalidInput("invalid cursor")


# -- Postgres full-text search ---------------------------------------------------------------------
# Over the read models' generated tsvector columns (rm_messages.search_tsv, rm_chats.title_tsv,
# both GIN-indexed); table names resolve in the live read-model schema through the reader pool's
# search_path.

# ts_headline marks matches with private-use characters instead of <em> so that we can
# HTML-escape the user's text afterwards and still keep our own tags. The same characters are
# removed from the text first, so a message containing them cannot forge a mark.
_START, _STOP, _FRAGMENTS = "\ue000", "\ue001", "\ue002"
_MESSAGE_HEADLINE = (
    f"StartSel={_START}, StopSel={_STOP}, MaxFragments=3, MaxWords=20, MinWords=5, "
    f"FragmentDelimiter={_FRAGMENTS}"
)
_TITLE_HEADLINE = f"StartSel={_START}, StopSel={_STOP}, HighlightAll=true"

# Ranked and paged first; ts_headline (the expensive part) runs on the page only. Scores are
# float8: a float4 printed as text does not read back as the same number, and the cursor
# compares scores exactly.
_PG_SEARCH = """
WITH q AS (SELECT websearch_to_tsquery('simple', %(text)s) AS query),
hits AS (
    SELECT 'message' AS kind, m.chat_id, m.message_id, m.role, m.content AS text,
           m.created_at, m.seq AS position, ts_rank(m.search_tsv, q.query)::float8 AS score
    FROM q, rm_messages m JOIN rm_chats c ON c.chat_id = m.chat_id
    WHERE m.search_tsv @@ q.query
      AND m.tenant_id = %(tenant)s
      AND (%(owner)s::uuid IS NULL OR c.owner_id = %(owner)s)
      AND (%(chat)s::uuid IS NULL OR m.chat_id = %(chat)s)
      AND (%(role)s::text IS NULL OR m.role = %(role)s)
      AND (%(from)s::timestamptz IS NULL OR m.created_at >= %(from)s)
      AND (%(to)s::timestamptz IS NULL OR m.created_at < %(to)s)
    UNION ALL
    SELECT 'chat_title', c.chat_id, NULL, NULL, c.title,
           c.created_at, c.seq, ts_rank(c.title_tsv, q.query)::float8
    FROM q, rm_chats c
    WHERE %(role)s::text IS NULL
      AND c.title_tsv @@ q.query
      AND c.tenant_id = %(tenant)s
      AND (%(owner)s::uuid IS NULL OR c.owner_id = %(owner)s)
      AND (%(chat)s::uuid IS NULL OR c.chat_id = %(chat)s)
      AND (%(from)s::timestamptz IS NULL OR c.created_at >= %(from)s)
      AND (%(to)s::timestamptz IS NULL OR c.created_at < %(to)s)
),
page AS (
    SELECT * FROM hits
    WHERE %(after_score)s::float8 IS NULL
       OR (score, position) < (%(after_score)s::float8, %(after_position)s::bigint)
    ORDER BY score DESC, position DESC
    LIMIT %(limit)s
)
SELECT page.kind, page.chat_id, c.title AS chat_title, page.message_id, page.role,
       page.text, page.created_at, page.position, page.score,
       ts_headline('simple', translate(page.text, %(marks)s, ''), q.query,
                   CASE page.kind WHEN 'chat_title' THEN %(title_headline)s
                                  ELSE %(message_headline)s END) AS headline
FROM page JOIN rm_chats c ON c.chat_id = page.chat_id, q
ORDER BY page.score DESC, page.position DESC
"""


class PostgresSearch:
    """Full-text search on the read models (the default when Elasticsearch is not configured)."""

    adapter = "pg"

    def __init__(self, read_models: ReadModels) -> None:
        self._read_models = read_models

    async def search(self, actor: Actor, q: SearchQuery) -> SearchPage:
        q = check_query(q)
        after = decode_cursor(self.adapter, q.after)
        params = {
            "text": q.text,
            "tenant": actor.tenant_id,
            "owner": chat_owner_filter(actor),
            "chat": q.chat_id,
            "role": None if q.role is None else q.role.value,
            "from": q.from_ts,
            "to": q.to_ts,
            "after_score": None if after is None else after.score,
            "after_position": None if after is None else after.position,
            "limit": q.first + 1,
            "marks": _START + _STOP + _FRAGMENTS,
            "title_headline": _TITLE_HEADLINE,
            "message_headline": _MESSAGE_HEADLINE,
        }
        async with self._read_models.tenant(actor.tenant_id) as conn:
            cur = await conn.execute(_PG_SEARCH, params)
            rows = await cur.fetchall()
        hits = [
            SearchHit(
                kind=row["kind"],
                chat_id=row["chat_id"],
                chat_title=row["chat_title"],
                message_id=row["message_id"],
                role=None if row["role"] is None else MessageRole(row["role"]),
                content=row["text"],
                created_at=row["created_at"],
                position=row["position"],
                score=row["score"],
                highlights=_pg_highlights(row["headline"]),
                cursor=encode_cursor(self.adapter, row["score"], row["position"]),
            )
            for row in rows[: q.first]
        ]
        return SearchPage(
            hits=hits,
            end_cursor=hits[-1].cursor if hits else None,
            has_next_page=len(rows) > q.first,
        )


def _pg_highlights(headline: str) -> list[str]:
    # ts_headline falls back to the document's first words when a fragment has no match (a
    # query of exclusions only); like Elasticsearch, we return only fragments with a match.
    return [
        html.escape(fragment.strip()).replace(_START, "<em>").replace(_STOP, "</em>")
        for fragment in headline.split(_FRAGMENTS)
        if _START in fragment
    ]


# -- Elasticsearch ---------------------------------------------------------------------------------

_SOURCE_FIELDS = ["kind", "chat_id", "message_id", "role", "content", "chat_title", "created_at"]
_HIGHLIGHT = {
    "encoder": "html",  # escapes the user's text; only our tags stay markup
    "pre_tags": ["<em>"],
    "post_tags": ["</em>"],
    "fields": {
        "content": {"fragment_size": 150, "number_of_fragments": 3},
        "chat_title": {"number_of_fragments": 0},  # titles are short: the whole title
    },
}


def tenant_scope(actor: Actor) -> list[dict[str, Any]]:
    """The filters every search carries: the actor's tenant and, for non-auditors, their chats.

    Built from the authenticated actor only, so no query input can widen them."""
    filters: list[dict[str, Any]] = [{"term": {"tenant_id": str(actor.tenant_id)}}]
    owner = chat_owner_filter(actor)
    if owner is not None:
        filters.append({"term": {"owner_id": str(owner)}})
    return filters


class ElasticsearchSearch:
    """Search over the Elasticsearch index (when PARLEY_ELASTICSEARCH_URL is set).

    Scores depend on the index's statistics (how many documents hold a word), so a page read
    after new messages were indexed would rank earlier hits differently, and a score cursor would
    then repeat or skip hits. Every page of one search therefore reads the snapshot (point in
    time) its first page opened: the cursors carry its id, each page extends it by
    `snapshot_seconds`, and the last page closes it. A cursor whose snapshot is gone (expired,
    its index replaced by a rebuild) continues from the same place on a new snapshot."""

    adapter = "es"

    def __init__(
        self, client: AsyncElasticsearch, alias: str, *, snapshot_seconds: int = 120
    ) -> None:
        self._client = client
        self._alias = alias
        self._keep_alive = f"{snapshot_seconds}s"
        self._generation = re.compile(re.escape(alias) + r"-v\d+")

    async def search(self, actor: Actor, q: SearchQuery) -> SearchPage:
        q = check_query(q)
        after = decode_cursor(self.adapter, q.after)
        filters = tenant_scope(actor)
        if q.chat_id is not None:
            filters.append({"term": {"chat_id": str(q.chat_id)}})
        if q.role is not None:
            filters.append({"term": {"role": q.role.value}})
        if q.from_ts is not None or q.to_ts is not None:
            bounds = {"gte": q.from_ts, "lt": q.to_ts}
            filters.append(
                {"range": {"created_at": {k: v.isoformat() for k, v in bounds.items() if v}}}
            )
        query = {
            "bool": {
                "must": [
                    {
                        # The closest match to Postgres' websearch_to_tsquery: all words must
                        # match, quotes make phrases, a leading '-' excludes; never a syntax error.
                        "simple_query_string": {
                            "query": q.text,
                            "fields": ["content", "chat_title"],
                            "default_operator": "and",
                            "flags": "AND|OR|NOT|PHRASE|PRECEDENCE|WHITESPACE|ESCAPE",
                        }
                    }
                ],
                "filter": filters,
            }
        }
        request = {
            "query": query,
            "sort": [{"_score": "desc"}, {"position": "desc"}],
            "search_after": None if after is None else [after.score, after.position],
            "size": q.first + 1,
            "source": {"includes": _SOURCE_FIELDS},
            "highlight": _HIGHLIGHT,
            "track_total_hits": False,
        }
        try:
            snapshot, raw = await self._page(actor, after, request)
            try:
                page = raw[: q.first]
                if any(not self._generation.fullmatch(h["_index"]) for h in page):
                    raise InvalidInput("invalid cursor")  # a forged id naming another index
                titles = await self._chat_titles(actor, {h["_source"]["chat_id"] for h in page})
            except BaseException:
                await self._close(snapshot)  # nobody will page on with it
                raise
            if len(raw) <= q.first:
                await self._close(snapshot)
        except (ApiError, TransportError) as e:
            log.warning("search on %s failed: %s", self._alias, e)
            raise SearchUnavailable("search is unavailable at the moment; retry later") from e
        hits = [
            _es_hit(h, titles[h["_source"]["chat_id"]], snapshot)
            for h in page
            # A chat being deleted right now loses its title document first: skip its messages.
            if h["_source"]["chat_id"] in titles
        ]
        end_cursor = None
        if page:
            score, position = page[-1]["sort"][:2]  # then the snapshot's own tiebreaker
            end_cursor = encode_cursor(self.adapter, score, position, snapshot)
        return SearchPage(
            hits=hits,
            end_cursor=end_cursor,
            has_next_page=len(raw) > q.first,
        )

    async def _page(
        self, actor: Actor, after: Cursor | None, request: dict[str, Any]
    ) -> tuple[str, list[dict[str, Any]]]:
        """The page's hits, read from the cursor's snapshot or a new one; and that snapshot's id."""
        if after is not None and after.snapshot is not None:
            try:
                # Not retried by the client: a deleted index's 503 would be, three times over.
                return await self._read(after.snapshot, request, retry=False)
            except ApiError as e:
                # 404: expired or closed; 400: not an id at all; 503: its index is gone (a
                # rebuild swapped the alias). Anything else (an overloaded cluster: 429) is
                # answered UNAVAILABLE, so that the retried cursor keeps its snapshot.
                if e.status_code not in (400, 404, 503):
                    raise
                log.info("search snapshot unusable (%s): continuing on a new one", e.message)
        opened = await self._client.open_point_in_time(
            index=self._alias, keep_alive=self._keep_alive, routing=str(actor.tenant_id)
        )
        try:
            return await self._read(opened["id"], request)
        except BaseException:
            await self._close(opened["id"])
            raise

    async def _read(
        self, snapshot: str, request: dict[str, Any], *, retry: bool = True
    ) -> tuple[str, list[dict[str, Any]]]:
        client = self._client if retry else self._client.options(retry_on_status=())
        response = await client.search(
            pit={"id": snapshot, "keep_alive": self._keep_alive}, **request
        )
        return response.get("pit_id", snapshot), response["hits"]["hits"]

    async def _close(self, snapshot: str) -> None:
        """Free a snapshot nobody will page on with (else it lives until it expires)."""
        try:
            await self._client.close_point_in_time(id=snapshot)
        except (ApiError, TransportError) as e:
            log.info("closing search snapshot failed (it expires on its own): %s", e)

    async def _chat_titles(self, actor: Actor, chat_ids: set[str]) -> dict[str, str]:
        """Current titles of the hits' chats (message documents do not copy the title, so a
        rename rewrites one document, not every message)."""
        if not chat_ids:
            return {}
        response = await self._client.search(
            index=self._alias,
            routing=str(actor.tenant_id),
            query={
                "bool": {
                    "filter": [
                        *tenant_scope(actor),
                        {"term": {"kind": "chat_title"}},
                        {"terms": {"chat_id": sorted(chat_ids)}},
                    ]
                }
            },
            size=len(chat_ids),
            source={"includes": ["chat_id", "chat_title"]},
            track_total_hits=False,
        )
        return {
            h["_source"]["chat_id"]: h["_source"]["chat_title"] for h in response["hits"]["hits"]
        }


def _es_hit(hit: dict[str, Any], chat_title: str, snapshot: str) -> SearchHit:
    source = hit["_source"]
    kind: HitKind = "chat_title" if source["kind"] == "chat_title" else "message"
    field = "chat_title" if kind == "chat_title" else "content"
    score, position = hit["sort"][:2]
    return SearchHit(
        kind=kind,
        chat_id=UUID(source["chat_id"]),
        chat_title=chat_title,
        message_id=UUID(source["message_id"]) if source.get("message_id") else None,
        role=MessageRole(source["role"]) if source.get("role") else None,
        content=source[field],
        created_at=datetime.fromisoformat(source["created_at"]),
        position=position,
        score=score,
        highlights=list(hit.get("highlight", {}).get(field, [])),
        cursor=encode_cursor(ElasticsearchSearch.adapter, score, position, snapshot),
    )
