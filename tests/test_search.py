"""Search over messages and chat titles, against the real servers, for both adapters.

Every behaviour runs on Postgres full-text search and on Elasticsearch (`engine` is parametrized).
Events are written through the real command handlers; the echo responder answers every user
message with the same words, so each user message has an assistant reply that matches too. The
Elasticsearch index is built by running `SearchProjection` over the log ourselves, into an alias
of its own; Elasticsearch-only behaviours (external versions, acknowledgement, mapping) follow.
"""

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
import strawberry
from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import HttpxAsyncHttpNode
from elasticsearch import AsyncElasticsearch, Elasticsearch, NotFoundError
from eventsourcing.persistence import Notification
from psycopg_pool import ConnectionPool
from strawberry.tools import merge_types

from api.errors import ParleyErrors
from api.runtime import Runtime
from commands.messages import DeleteChat, RenameChat, SendMessage, StartChat
from domain.actor import Actor
from domain.chat import MessageRole, reply_id_for
from domain.errors import InvalidInput, SearchUnavailable
from domain.user import Role
from infra.eventstore.follower_positions import read_position, store_position
from infra.messaging.live_feed import LiveFeed
from infra.postgres import PostgresTarget, open_pool
from projections.search_index import (
    CHAT_STARTED,
    IndexSpec,
    SearchIndexingFailed,
    SearchProjection,
    create_index,
    ensure_index,
    index_name,
    point_alias,
)
from queries.read_models import ReadModels
from queries.schema import Query
from queries.search import (
    SearchHit,
    SearchIndex,
    SearchQuery,
    decode_cursor,
    encode_cursor,
)
from queries.search_elasticsearch import ElasticsearchSearch
from queries.search_postgres import PostgresSearch
from queries.search_schema import SearchQueries
from testbed.processes import free_port
from tests.test_commands import create_tenant, register, wait_for_quiet_log

CATCH_UP_TIMEOUT = 30.0
BATCH = 500


# -- engines: each adapter and a way to make it include everything written so far ----------------


@dataclass
class Engine:
    name: str
    search: SearchIndex
    catch_up: Callable[[], Awaitable[None]]


async def settled_head(runtime: Runtime, read_models: ReadModels) -> int:
    """The log head once every user message is answered and the read models include it."""
    head = await asyncio.to_thread(wait_for_quiet_log, runtime)
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    while await read_models.position() < head:
        if time.monotonic() > deadline:
            pytest.fail(f"read models did not reach {head} in {CATCH_UP_TIMEOUT}s")
        await asyncio.sleep(0.02)
    return head


def index_log(projection: SearchProjection, runtime: Runtime, head: int) -> None:
    """What the LogFollower does, synchronously: batches after the position up to `head`."""
    while projection.position() < head:
        projection.handle(runtime.store.read(projection.position(), BATCH))


@pytest.fixture(scope="module")
def es(elasticsearch_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(elasticsearch_url)
    yield client
    client.close()


def drop_indices(es: Elasticsearch, alias: str) -> None:
    """Every generation of the alias's index (the server refuses wildcard deletes)."""
    generations = es.indices.get(index=f"{alias}-v*", expand_wildcards="all")
    if generations.body:
        es.indices.delete(index=",".join(generations.body))


@pytest.fixture(scope="module")
def alias(es: Elasticsearch) -> Iterator[str]:
    """A fresh index of this module's own, behind its own alias."""
    name = f"parley-test-{uuid.uuid4().hex[:12]}"
    ensure_index(es, name, 1)
    yield name
    drop_indices(es, name)


@pytest.fixture(scope="module")
def writer_pool(pg_target: PostgresTarget) -> Iterator[ConnectionPool]:
    pool = open_pool(pg_target.conninfo(), size=2, name="search-test")
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def projection(
    runtime: Runtime, writer_pool: ConnectionPool, es: Elasticsearch, alias: str
) -> SearchProjection:
    # A position name of its own: other tests' projections must not move ours.
    return SearchProjection(
        runtime.store, writer_pool, es, alias, name=f"search-test-{uuid.uuid4().hex[:8]}"
    )


@pytest.fixture(scope="module")
async def es_async(elasticsearch_url: str) -> AsyncIterator[AsyncElasticsearch]:
    client = AsyncElasticsearch(elasticsearch_url, node_class=HttpxAsyncHttpNode)
    yield client
    await client.close()


def elasticsearch_engine(
    runtime: Runtime,
    read_models: ReadModels,
    projection: SearchProjection,
    es: Elasticsearch,
    es_async: AsyncElasticsearch,
    alias: str,
) -> Engine:
    async def index_caught_up() -> None:
        head = await settled_head(runtime, read_models)
        await asyncio.to_thread(index_log, projection, runtime, head)
        await asyncio.to_thread(es.indices.refresh, index=alias)

    return Engine("elasticsearch", ElasticsearchSearch(es_async, alias), index_caught_up)


@pytest.fixture(scope="module")
def es_engine(
    runtime: Runtime,
    read_models: ReadModels,
    projection: SearchProjection,
    es: Elasticsearch,
    es_async: AsyncElasticsearch,
    alias: str,
) -> Engine:
    return elasticsearch_engine(runtime, read_models, projection, es, es_async, alias)


@pytest.fixture(scope="module", params=["postgres", "elasticsearch"])
def engine(
    request: pytest.FixtureRequest,
    runtime: Runtime,
    read_models: ReadModels,
    es_engine: Engine,
) -> Engine:
    if request.param == "elasticsearch":
        return es_engine

    async def read_models_caught_up() -> None:
        await settled_head(runtime, read_models)

    return Engine("postgres", PostgresSearch(read_models), read_models_caught_up)


# -- the world: two tenants using the same words ------------------------------------------------


@dataclass(frozen=True)
class SeededChat:
    id: UUID
    title: str
    user_messages: list[UUID]

    @property
    def replies(self) -> list[UUID]:
        return [reply_id_for(m) for m in self.user_messages]

    def keys(self, *, title: bool) -> set[tuple[str, UUID]]:
        """What a search for a word in every message (and, with `title`, the title) finds."""
        found = {("message", m) for m in self.user_messages + self.replies}
        return found | ({("chat_title", self.id)} if title else set())


@dataclass(frozen=True)
class World:
    admin: Actor
    alice: Actor
    bob: Actor
    audrey: Actor
    """An auditor: sees every chat of the tenant."""
    roadmap: SeededChat
    """Alice's; "zephyr" in its title and all five messages."""
    garden: SeededChat
    """Alice's; "zephyr" in its message only."""
    diary: SeededChat
    """Bob's; "zephyr" in its title and its message."""
    other_admin: Actor
    """Another tenant's admin, whose chat uses the same words."""
    other_roadmap: SeededChat


def seed_chat(runtime: Runtime, owner: Actor, title: str, *contents: str) -> SeededChat:
    chat = runtime.bus.handle(StartChat(title=title), owner)
    sent = [
        runtime.bus.handle(SendMessage(chat_id=chat.id, content=c), owner).message_id
        for c in contents
    ]
    return SeededChat(chat.id, title, sent)


@pytest.fixture(scope="module")
def world(runtime: Runtime) -> World:
    tenant, other = create_tenant(runtime), create_tenant(runtime)
    alice, bob = register(runtime, tenant, "alice"), register(runtime, tenant, "bob")
    numbers = ("one", "two", "three", "four", "five")
    return World(
        admin=tenant.admin,
        alice=alice,
        bob=bob,
        audrey=register(runtime, tenant, "audrey", Role.AUDITOR),
        roadmap=seed_chat(
            runtime, alice, "Zephyr roadmap", *(f"zephyr note number {n}" for n in numbers)
        ),
        garden=seed_chat(runtime, alice, "Garden plans", "a zephyr in the garden"),
        diary=seed_chat(runtime, bob, "Bob's zephyr diary", "zephyr from bob"),
        other_admin=other.admin,
        other_roadmap=seed_chat(runtime, other.admin, "Zephyr roadmap", "zephyr note number one"),
    )


@pytest.fixture(scope="module")
async def indexed(engine: Engine, world: World) -> World:
    """The world, once the engine under test includes all of it."""
    await engine.catch_up()
    return world


async def search_all(engine: Engine, actor: Actor, text: str, **filters: Any) -> list[SearchHit]:
    """Every page of a search, in order."""
    hits: list[SearchHit] = []
    after: str | None = None
    while True:
        page = await engine.search.search(
            actor, SearchQuery(text=text, first=7, after=after, **filters)
        )
        hits += page.hits
        if not page.has_next_page:
            return hits
        after = page.end_cursor


def keys(hits: list[SearchHit]) -> set[tuple[str, UUID]]:
    found = [(h.kind, h.message_id or h.chat_id) for h in hits]
    assert len(found) == len(set(found)), "a hit came back twice"
    return set(found)


# -- tenants and visibility ---------------------------------------------------------------------


async def test_search_returns_only_the_callers_tenants_matches(
    engine: Engine, indexed: World
) -> None:
    w = indexed
    theirs = keys(await search_all(engine, w.other_admin, "zephyr"))
    ours = keys(await search_all(engine, w.audrey, "zephyr"))

    assert theirs == w.other_roadmap.keys(title=True)
    assert not ours & theirs


async def test_a_chat_filter_naming_another_tenants_chat_finds_nothing(
    engine: Engine, indexed: World
) -> None:
    w = indexed
    for actor in (w.alice, w.audrey):
        page = await engine.search.search(
            actor, SearchQuery(text="zephyr", chat_id=w.other_roadmap.id)
        )
        assert page.hits == [] and not page.has_next_page


async def test_members_see_only_hits_from_their_own_chats(engine: Engine, indexed: World) -> None:
    w = indexed

    alice = keys(await search_all(engine, w.alice, "zephyr"))
    bob = keys(await search_all(engine, w.bob, "zephyr"))
    admin = keys(await search_all(engine, w.admin, "zephyr"))

    assert alice == w.roadmap.keys(title=True) | w.garden.keys(title=False)
    assert bob == w.diary.keys(title=True)
    assert admin == set()  # tenant admins, too, read only their own chats


async def test_auditors_see_hits_from_every_chat_of_their_tenant(
    engine: Engine, indexed: World
) -> None:
    w = indexed

    audrey = keys(await search_all(engine, w.audrey, "zephyr"))

    expected = w.roadmap.keys(title=True) | w.garden.keys(title=False) | w.diary.keys(title=True)
    assert audrey == expected


# -- filters ------------------------------------------------------------------------------------


async def test_chat_filter_keeps_hits_of_that_chat(engine: Engine, indexed: World) -> None:
    w = indexed

    garden = await search_all(engine, w.alice, "zephyr", chat_id=w.garden.id)
    diary_for_auditor = await search_all(engine, w.audrey, "zephyr", chat_id=w.diary.id)
    diary_for_alice = await search_all(engine, w.alice, "zephyr", chat_id=w.diary.id)

    assert keys(garden) == w.garden.keys(title=False)
    assert {h.chat_title for h in garden} == {"Garden plans"}
    assert keys(diary_for_auditor) == w.diary.keys(title=True)
    assert diary_for_alice == []


async def test_role_filter_keeps_messages_of_that_role(engine: Engine, indexed: World) -> None:
    w = indexed

    replies = await search_all(engine, w.alice, "zephyr", role=MessageRole.ASSISTANT)
    questions = await search_all(engine, w.alice, "zephyr", role=MessageRole.USER)

    assert keys(replies) == {("message", m) for m in w.roadmap.replies + w.garden.replies}
    assert {h.role for h in replies} == {MessageRole.ASSISTANT}
    assert keys(questions) == {
        ("message", m) for m in w.roadmap.user_messages + w.garden.user_messages
    }


async def test_date_range_is_from_inclusive_to_exclusive(
    engine: Engine, indexed: World, read_models: ReadModels
) -> None:
    w = indexed
    sent_at = []
    for message_id in w.roadmap.user_messages:
        row = await read_models.message(w.alice.tenant_id, message_id)
        assert row is not None
        sent_at.append(row["created_at"])

    between = await search_all(
        engine,
        w.alice,
        "zephyr",
        chat_id=w.roadmap.id,
        role=MessageRole.USER,
        from_ts=sent_at[2],
        to_ts=sent_at[4],
    )
    before_any = await search_all(engine, w.alice, "zephyr", to_ts=sent_at[0] - timedelta(days=1))

    assert keys(between) == {("message", m) for m in w.roadmap.user_messages[2:4]}
    assert all(sent_at[2] <= h.created_at < sent_at[4] for h in between)
    assert before_any == []


# -- pagination, highlights, titles -------------------------------------------------------------


async def test_cursor_pagination_walks_every_hit_exactly_once(
    engine: Engine, indexed: World
) -> None:
    w = indexed
    query = SearchQuery(text="zephyr", chat_id=w.roadmap.id, role=MessageRole.USER, first=2)

    pages = []
    after: str | None = None
    while True:
        page = await engine.search.search(w.alice, SearchQuery(**{**vars(query), "after": after}))
        pages.append(page)
        if not page.has_next_page:
            break
        after = page.end_cursor

    assert [len(p.hits) for p in pages] == [2, 2, 1]
    assert [p.has_next_page for p in pages] == [True, True, False]
    walked = [h for p in pages for h in p.hits]
    assert keys(walked) == {("message", m) for m in w.roadmap.user_messages}
    one_page = await engine.search.search(w.alice, SearchQuery(**{**vars(query), "first": 100}))
    assert [h.message_id for h in walked] == [h.message_id for h in one_page.hits]
    assert [h.score for h in walked] == sorted((h.score for h in walked), reverse=True)


async def test_pages_of_mixed_hits_match_one_big_page(engine: Engine, indexed: World) -> None:
    w = indexed

    walked = await search_all(engine, w.audrey, "zephyr")  # pages of 7
    one_page = await engine.search.search(w.audrey, SearchQuery(text="zephyr", first=100))

    assert [(h.kind, h.message_id, h.chat_id) for h in walked] == [
        (h.kind, h.message_id, h.chat_id) for h in one_page.hits
    ]


async def test_pages_of_one_search_neither_repeat_nor_skip_while_new_matches_arrive(
    engine: Engine, runtime: Runtime
) -> None:
    """New matching messages change Elasticsearch's scores (how many documents hold the word):
    pages read after them must still continue the first page's ranking, not re-rank it."""
    owner = create_tenant(runtime).admin
    chat = seed_chat(runtime, owner, "Marsupials", *(f"quokka sighting {n}" for n in range(6)))
    await engine.catch_up()
    before = keys(await search_all(engine, owner, "quokka"))

    first = await engine.search.search(owner, SearchQuery(text="quokka", first=2))
    for n in range(20):
        runtime.bus.handle(SendMessage(chat_id=chat.id, content=f"quokka quokka {n}"), owner)
    await engine.catch_up()
    walked = list(first.hits)
    after = first.end_cursor
    while after is not None:
        page = await engine.search.search(owner, SearchQuery(text="quokka", first=2, after=after))
        walked += page.hits
        after = page.end_cursor if page.has_next_page else None

    assert len(before) == 12  # six messages and their six echoed replies
    assert before <= keys(walked)  # keys() also fails on a hit that came back twice


async def test_the_last_page_closes_its_snapshot_and_a_cursor_outliving_it_continues(
    es_engine: Engine, world: World, es: Elasticsearch
) -> None:
    w = world
    await es_engine.catch_up()
    query = SearchQuery(text="zephyr", chat_id=w.roadmap.id, role=MessageRole.USER, first=2)
    pages = [await es_engine.search.search(w.alice, query)]
    while pages[-1].has_next_page:
        pages.append(
            await es_engine.search.search(
                w.alice, SearchQuery(**{**vars(query), "after": pages[-1].end_cursor})
            )
        )
    snapshot = decode_cursor("es", pages[0].end_cursor)
    assert snapshot is not None and snapshot.snapshot is not None
    with pytest.raises(NotFoundError):  # closed by the last page
        es.search(pit={"id": snapshot.snapshot}, size=1)

    again = await es_engine.search.search(
        w.alice, SearchQuery(**{**vars(query), "after": pages[0].end_cursor})
    )
    forged = encode_cursor("es", snapshot.score, snapshot.position, "bm90IGEgc25hcHNob3Q")
    from_forged = await es_engine.search.search(
        w.alice, SearchQuery(**{**vars(query), "after": forged})
    )
    assert [len(p.hits) for p in pages] == [2, 2, 1]
    assert [h.message_id for h in again.hits] == [h.message_id for h in pages[1].hits]
    assert [h.message_id for h in from_forged.hits] == [h.message_id for h in pages[1].hits]


async def test_highlights_mark_every_match_with_em(engine: Engine, indexed: World) -> None:
    w = indexed

    hits = await search_all(engine, w.alice, "zephyr")

    assert hits
    for hit in hits:
        assert hit.highlights, hit
        for fragment in hit.highlights:
            marked = re.findall(r"<em>(.*?)</em>", fragment)
            assert marked and {m.lower() for m in marked} == {"zephyr"}, fragment


async def test_a_word_in_a_chat_title_finds_the_chat(engine: Engine, indexed: World) -> None:
    w = indexed

    hits = await search_all(engine, w.alice, "roadmap")

    assert len(hits) == 1
    hit = hits[0]
    assert (hit.kind, hit.chat_id, hit.message_id, hit.role) == (
        "chat_title",
        w.roadmap.id,
        None,
        None,
    )
    assert hit.chat_title == hit.content == "Zephyr roadmap"
    assert hit.highlights == ["Zephyr <em>roadmap</em>"]


async def test_message_hits_carry_their_chats_title(engine: Engine, indexed: World) -> None:
    w = indexed

    hits = await search_all(engine, w.alice, "garden", role=MessageRole.USER)

    assert [(h.message_id, h.chat_title, h.content) for h in hits] == [
        (w.garden.user_messages[0], "Garden plans", "a zephyr in the garden")
    ]


# -- changes to chats ---------------------------------------------------------------------------


async def test_renamed_chat_is_found_by_its_new_title_only(
    engine: Engine, runtime: Runtime
) -> None:
    owner = create_tenant(runtime).admin
    chat = seed_chat(runtime, owner, "Nebula draft", "comet tail sighting")
    await engine.catch_up()
    assert len(await search_all(engine, owner, "nebula")) == 1

    runtime.bus.handle(RenameChat(chat_id=chat.id, title="Pulsar final"), owner)
    await engine.catch_up()

    assert await search_all(engine, owner, "nebula") == []
    renamed = await search_all(engine, owner, "pulsar")
    assert [(h.kind, h.chat_title) for h in renamed] == [("chat_title", "Pulsar final")]
    messages = await search_all(engine, owner, "comet")
    assert keys(messages) == chat.keys(title=False)
    assert {h.chat_title for h in messages} == {"Pulsar final"}


async def test_deleting_a_chat_removes_its_hits(engine: Engine, runtime: Runtime) -> None:
    owner = create_tenant(runtime).admin
    chat = seed_chat(runtime, owner, "Quokka notes", "quokka spotted", "another quokka")
    kept = seed_chat(runtime, owner, "Other notes", "a quokka elsewhere")
    await engine.catch_up()
    assert keys(await search_all(engine, owner, "quokka")) == chat.keys(title=True) | kept.keys(
        title=False
    )

    runtime.bus.handle(DeleteChat(chat_id=chat.id), owner)
    await engine.catch_up()

    assert keys(await search_all(engine, owner, "quokka")) == kept.keys(title=False)
    assert await search_all(engine, owner, "quokka", chat_id=chat.id) == []


async def test_highlights_escape_the_message_markup(engine: Engine, runtime: Runtime) -> None:
    owner = create_tenant(runtime).admin
    seed_chat(runtime, owner, "Markup", "quasar <b>bold</b> & <script>alert(1)</script>")
    await engine.catch_up()

    hits = await search_all(engine, owner, "quasar")

    assert len(hits) == 2  # the message and its echoed reply
    for hit in hits:
        assert "<script>" in hit.content  # the text itself is returned as written
        for fragment in hit.highlights:
            assert "<em>quasar</em>" in fragment
            assert "<b>" not in fragment and "<script>" not in fragment


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"after": "not a cursor"}, id="garbage-cursor"),
        pytest.param({"after": encode_cursor("xx", 1.0, 1)}, id="foreign-cursor"),
        pytest.param({"first": 0}, id="first-zero"),
        pytest.param({"first": 101}, id="first-too-big"),
        pytest.param({"text": "   "}, id="empty-query"),
        pytest.param({"text": "x" * 501}, id="long-query"),
    ],
)
async def test_bad_input_is_invalid_input(
    engine: Engine, world: World, bad: dict[str, Any]
) -> None:
    with pytest.raises(InvalidInput) as e:
        await engine.search.search(world.alice, SearchQuery(**{"text": "zephyr", **bad}))
    assert e.value.code == "BAD_USER_INPUT"


async def test_a_cursor_from_the_other_engine_is_invalid_input(
    engine: Engine, world: World
) -> None:
    other = "es" if engine.name == "postgres" else "pg"
    with pytest.raises(InvalidInput):
        await engine.search.search(
            world.alice, SearchQuery(text="zephyr", after=encode_cursor(other, 0.5, 10))
        )


async def test_an_empty_date_range_is_invalid_input(engine: Engine, world: World) -> None:
    now = datetime.now(UTC)
    with pytest.raises(InvalidInput):
        await engine.search.search(world.alice, SearchQuery(text="zephyr", from_ts=now, to_ts=now))


# -- GraphQL ------------------------------------------------------------------------------------


@dataclass
class SearchContextForTest:
    """The query context the API builds, with a search index and a fixed caller."""

    read_models: ReadModels
    live_feed: LiveFeed
    search: SearchIndex
    caller: Actor

    def actor(self) -> Actor:
        return self.caller


SEARCH_SCHEMA = strawberry.Schema(
    query=merge_types("Query", (Query, SearchQueries)), extensions=[ParleyErrors]
)
SEARCH_DOCUMENT = """
query ($q: String!, $after: String, $role: MessageRole, $from: DateTime) {
  searchMessages(query: $q, first: 4, after: $after, role: $role, from: $from) {
    edges { cursor node {
      kind score highlights chatId chatTitle messageId role content createdAt position
      chat { id title } message { id content role }
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_graphql_search_messages_pages_with_chat_message_score_and_highlights(
    engine: Engine, indexed: World, runtime: Runtime, read_models: ReadModels
) -> None:
    w = indexed
    context = SearchContextForTest(read_models, runtime.live_feed, engine.search, w.alice)

    seen: list[dict[str, Any]] = []
    after = None
    while True:
        result = await SEARCH_SCHEMA.execute(
            SEARCH_DOCUMENT, variable_values={"q": "zephyr", "after": after}, context_value=context
        )
        assert result.errors is None, result.errors
        assert result.data is not None
        connection = result.data["searchMessages"]
        seen += [edge["node"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]

    assert len(seen) == len(w.roadmap.keys(title=True) | w.garden.keys(title=False)) == 13
    for node in seen:
        assert node["score"] > 0 and "<em>" in node["highlights"][0]
        assert node["chat"]["id"] == node["chatId"] and node["chat"]["title"] == node["chatTitle"]
        if node["kind"] == "MESSAGE":
            assert node["message"]["id"] == node["messageId"]
            assert node["message"]["content"] == node["content"]
            assert node["message"]["role"] == node["role"]
        else:
            assert node["message"] is None and node["role"] is None


async def test_graphql_bad_cursor_is_bad_user_input(
    engine: Engine, world: World, runtime: Runtime, read_models: ReadModels
) -> None:
    context = SearchContextForTest(read_models, runtime.live_feed, engine.search, world.alice)

    result = await SEARCH_SCHEMA.execute(
        SEARCH_DOCUMENT, variable_values={"q": "zephyr", "after": "nope"}, context_value=context
    )

    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "BAD_USER_INPUT"}


# -- Elasticsearch only: idempotent writes, acknowledgement, mapping, outage ---------------------


def notifications(runtime: Runtime) -> list[Notification]:
    everything: list[Notification] = []
    while batch := runtime.store.read(everything[-1].id if everything else 0, BATCH):
        everything += batch
    return everything


def tenant_docs(es: Elasticsearch, alias: str, tenant_id: UUID) -> list[dict[str, Any]]:
    es.indices.refresh(index=alias)
    response = es.search(
        index=alias,
        routing=str(tenant_id),
        query={"term": {"tenant_id": str(tenant_id)}},
        size=1000,
        version=True,
    )
    return list(response["hits"]["hits"])


async def test_replaying_the_log_twice_leaves_one_document_per_message_and_chat(
    es_engine: Engine,
    world: World,
    runtime: Runtime,
    projection: SearchProjection,
    es: Elasticsearch,
    alias: str,
) -> None:
    w = world
    await es_engine.catch_up()
    chats = (w.roadmap, w.garden, w.diary)
    expected = {str(i) for chat in chats for _, i in chat.keys(title=True)}
    before = tenant_docs(es, alias, w.alice.tenant_id)
    log = await asyncio.to_thread(notifications, runtime)

    for _ in range(2):
        for start in range(0, len(log), BATCH):
            await asyncio.to_thread(projection.handle, log[start : start + BATCH])

    after = tenant_docs(es, alias, w.alice.tenant_id)
    assert sorted(d["_id"] for d in after) == sorted(expected)
    assert sorted((d["_id"], d["_version"]) for d in after) == sorted(
        (d["_id"], d["_version"]) for d in before
    )
    for doc in after:
        if doc["_source"]["kind"] == "message":
            assert doc["_version"] == doc["_source"]["position"]  # the event's log position


def started_event(runtime: Runtime, chat_id: UUID) -> Notification:
    return next(
        n for n in notifications(runtime) if n.topic == CHAT_STARTED and n.originator_id == chat_id
    )


async def test_an_older_event_replayed_after_a_newer_one_changes_nothing(
    es_engine: Engine, runtime: Runtime, projection: SearchProjection
) -> None:
    owner = create_tenant(runtime).admin
    chat = seed_chat(runtime, owner, "Alpha title")
    runtime.bus.handle(RenameChat(chat_id=chat.id, title="Omega title"), owner)
    await es_engine.catch_up()
    position = projection.position()

    await asyncio.to_thread(projection.handle, [started_event(runtime, chat.id)])
    await es_engine.catch_up()

    assert await search_all(es_engine, owner, "alpha") == []
    assert [h.chat_title for h in await search_all(es_engine, owner, "omega")] == ["Omega title"]
    assert projection.position() == position  # a stored position never moves backwards


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


async def test_position_is_stored_only_after_elasticsearch_acknowledged(
    runtime: Runtime, writer_pool: ConnectionPool, es: Elasticsearch, alias: str, world: World
) -> None:
    name = f"search-ack-{uuid.uuid4().hex[:8]}"
    batch = [started_event(runtime, world.roadmap.id)]
    down = Elasticsearch(closed_port_url(), max_retries=0)
    failing = SearchProjection(runtime.store, writer_pool, down, alias, name=name)

    with pytest.raises(TransportConnectionError):
        await asyncio.to_thread(failing.handle, batch)
    down.close()
    with writer_pool.connection() as conn:
        assert read_position(conn, name) == 0

    working = SearchProjection(runtime.store, writer_pool, es, alias, name=name)
    await asyncio.to_thread(working.handle, batch)
    with writer_pool.connection() as conn:
        assert read_position(conn, name) == batch[-1].id


async def test_a_missing_index_is_never_created_on_the_fly(
    runtime: Runtime, writer_pool: ConnectionPool, es: Elasticsearch
) -> None:
    owner = create_tenant(runtime).admin
    chat = seed_chat(runtime, owner, "Lost title")
    missing = f"parley-test-missing-{uuid.uuid4().hex[:8]}"
    name = f"search-missing-{uuid.uuid4().hex[:8]}"
    lost = SearchProjection(runtime.store, writer_pool, es, missing, name=name)

    with pytest.raises(SearchIndexingFailed, match="index_not_found"):
        await asyncio.to_thread(lost.handle, [started_event(runtime, chat.id)])

    assert not es.indices.exists(index=missing)
    with writer_pool.connection() as conn:
        assert read_position(conn, name) == 0


def test_index_mapping_is_explicit_strict_routed_with_english_stopwords(
    es: Elasticsearch, alias: str
) -> None:
    mapping = es.indices.get_mapping(index=alias)[index_name(alias, 1)]["mappings"]
    settings = es.indices.get_settings(index=alias)[index_name(alias, 1)]["settings"]["index"]
    tokens = es.indices.analyze(index=alias, analyzer="parley_text", text="The Zephyr of it")

    assert mapping["dynamic"] == "strict"
    assert mapping["_routing"] == {"required": True}
    assert mapping["properties"]["tenant_id"] == {"type": "keyword"}
    assert mapping["properties"]["content"] == {"type": "text", "analyzer": "parley_text"}
    assert (settings["number_of_shards"], settings["number_of_replicas"]) == ("1", "0")
    assert [t["token"] for t in tokens["tokens"]] == ["zephyr"]


def test_ensure_index_creates_once_and_never_moves_a_serving_alias(es: Elasticsearch) -> None:
    alias = f"parley-test-alias-{uuid.uuid4().hex[:8]}"
    try:
        first = ensure_index(es, alias, 1)
        assert ensure_index(es, alias, 1) == first

        assert ensure_index(es, alias, 2) == first  # a new mapping version waits for a rebuild

        assert list(es.indices.get_alias(name=alias).body) == [first]
        assert not es.indices.exists(index=index_name(alias, 2))
    finally:
        drop_indices(es, alias)


def test_point_alias_moves_readers_to_the_new_index_in_one_step(es: Elasticsearch) -> None:
    alias = f"parley-test-alias-{uuid.uuid4().hex[:8]}"
    try:
        first = ensure_index(es, alias, 1)
        second = index_name(alias, 2)
        create_index(es, second)

        point_alias(es, alias, second)

        assert list(es.indices.get_alias(name=alias).body) == [second]
        assert es.indices.exists(index=first)  # the old copy stays until the operator drops it
    finally:
        drop_indices(es, alias)


async def test_a_projection_starting_from_zero_creates_its_index(
    runtime: Runtime, writer_pool: ConnectionPool, es: Elasticsearch, world: World
) -> None:
    alias = f"parley-test-fresh-{uuid.uuid4().hex[:8]}"
    name = f"search-fresh-{uuid.uuid4().hex[:8]}"
    fresh = SearchProjection(
        runtime.store, writer_pool, es, alias, name=name, create=IndexSpec(version=3)
    )
    try:
        await asyncio.to_thread(fresh.handle, [started_event(runtime, world.roadmap.id)])

        assert list(es.indices.get_alias(name=alias).body) == [index_name(alias, 3)]
        assert es.get(index=alias, id=str(world.roadmap.id), routing=str(world.alice.tenant_id))[
            "found"
        ]
    finally:
        drop_indices(es, alias)


async def test_a_projection_past_zero_never_recreates_a_lost_index(
    runtime: Runtime, writer_pool: ConnectionPool, es: Elasticsearch, world: World
) -> None:
    alias = f"parley-test-lost-{uuid.uuid4().hex[:8]}"
    name = f"search-lost-{uuid.uuid4().hex[:8]}"
    with writer_pool.connection() as conn:
        store_position(conn, name, 1)  # it had indexed something before the index was lost
    lost = SearchProjection(
        runtime.store, writer_pool, es, alias, name=name, create=IndexSpec(version=1)
    )
    batch = [started_event(runtime, world.roadmap.id)]

    with pytest.raises(SearchIndexingFailed, match="index_not_found"):
        await asyncio.to_thread(lost.handle, batch)

    assert not es.indices.exists_alias(name=alias)
    with writer_pool.connection() as conn:
        assert read_position(conn, name) == 1


async def test_elasticsearch_down_makes_search_unavailable(world: World) -> None:
    down = AsyncElasticsearch(closed_port_url(), node_class=HttpxAsyncHttpNode, max_retries=0)
    try:
        with pytest.raises(SearchUnavailable) as e:
            await ElasticsearchSearch(down, "parley-search").search(
                world.alice, SearchQuery(text="zephyr")
            )
    finally:
        await down.close()

    assert e.value.code == "UNAVAILABLE"
    assert "retry" in e.value.message


async def test_graphql_reports_elasticsearch_down_as_unavailable(
    world: World, runtime: Runtime, read_models: ReadModels
) -> None:
    down = AsyncElasticsearch(closed_port_url(), node_class=HttpxAsyncHttpNode, max_retries=0)
    search = ElasticsearchSearch(down, "parley-search")
    context = SearchContextForTest(read_models, runtime.live_feed, search, world.alice)
    try:
        result = await SEARCH_SCHEMA.execute(
            SEARCH_DOCUMENT, variable_values={"q": "zephyr"}, context_value=context
        )
    finally:
        await down.close()

    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "UNAVAILABLE"}
    assert "127.0.0.1" not in result.errors[0].message
