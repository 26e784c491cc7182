"""Search over the Elasticsearch index that `projections/search_index.py` builds:
`ElasticsearchSearch`, the search adapter when PARLEY_ELASTICSEARCH_URL is set.

Every query is scoped to the caller's tenant and to the chats they may see by `tenant_scope`
(a filter and routing taken from the actor, never from input); pages read one point-in-time
snapshot, whose id the cursors carry.
"""

import logging
import re
from datetime import datetime
from typing import Any
from uuid import UUID

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from domain.actor import Actor
from domain.chat import MessageRole
from domain.errors import InvalidInput, SearchUnavailable
from domain.policy import chat_owner_filter
from queries.search import (
    ELASTICSEARCH_CURSOR,
    Cursor,
    HitKind,
    SearchHit,
    SearchPage,
    SearchQuery,
    check_query,
    decode_cursor,
    encode_cursor,
)

log = logging.getLogger(__name__)

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

    adapter = ELASTICSEARCH_CURSOR

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
