"""Full-text search on the PostgreSQL read models: `PostgresSearch`, the default search adapter
when Elasticsearch is not configured.

It queries the read models' generated tsvector columns (rm_messages.search_tsv,
rm_chats.title_tsv, both GIN-indexed); table names resolve in the live read-model schema through
the reader pool's search_path. Every query is scoped to the caller's tenant by row-level security
plus the same filter, and to the chats the caller may see.
"""

import html

from domain.actor import Actor
from domain.chat import MessageRole
from domain.policy import chat_owner_filter
from queries.read_models import ReadModels
from queries.search import (
    POSTGRES_CURSOR,
    SearchHit,
    SearchPage,
    SearchQuery,
    check_query,
    decode_cursor,
    encode_cursor,
)

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

    adapter = POSTGRES_CURSOR

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
