"""Full-text search over messages and chat titles: one interface, two adapters.

`ElasticsearchSearch` (`queries/search_elasticsearch.py`) reads the index that
`projections/search_index.py` builds; `PostgresSearch` (`queries/search_postgres.py`) reads the
rm_* read models. Both scope every query to the caller's tenant (Elasticsearch: a filter and
routing taken from the actor, never from input; Postgres: row-level security plus the same
filter) and to the chats the caller may see (their own; auditors: every chat of the tenant).

Both return the same thing (`queries/search_port.py`): hits ranked by score, an opaque cursor
(score, then the log position of the hit, which is unique), and highlights that are HTML-escaped
text in which only `<em>…</em>` marks the matches, so a client may render them as HTML.

This module is where the rest of Parley imports search from (the composition root picks an
adapter, the resolvers call the port); it defines nothing itself, so that the adapters can import
the port without a cycle.
"""

from queries.search_elasticsearch import ElasticsearchSearch
from queries.search_port import (
    SearchHit,
    SearchIndex,
    SearchPage,
    SearchQuery,
    check_query,
    decode_cursor,
    encode_cursor,
)
from queries.search_postgres import PostgresSearch

__all__ = [
    "ElasticsearchSearch",
    "PostgresSearch",
    "SearchHit",
    "SearchIndex",
    "SearchPage",
    "SearchQuery",
    "check_query",
    "decode_cursor",
    "encode_cursor",
]
