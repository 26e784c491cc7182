"""Operating the Elasticsearch index: an outage (commands keep succeeding, search says
UNAVAILABLE, the index catches up once the server is back; the test really stops and restarts
it) and a rebuild under traffic that swaps the alias to a complete copy."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from api.runtime import Runtime
from commands.messages import CreateTenant, SendMessage, StartChat
from domain.actor import Actor
from domain.errors import SearchUnavailable
from domain.user import Role
from infra.eventstore.follower_positions import read_position
from infra.services.registry import build_services
from infra.settings import Settings
from queries.search import SearchQuery
from testbed.processes import target_url
from tests.conftest import fresh_database


@pytest.fixture
async def es_runtime(postgres_url: str, elasticsearch_url: str, tmp_path) -> AsyncIterator[Runtime]:
    database = fresh_database(postgres_url)
    settings = Settings(
        database_url=target_url(database),
        reader_database_url=target_url(replace(database, user="parley_reader")),
        elasticsearch_url=elasticsearch_url,
        elasticsearch_index=f"parley-outage-{uuid.uuid4().hex[:8]}",
        data_dir=tmp_path,
        follower_poll_seconds=0.2,
    )
    runtime = Runtime(settings)
    await asyncio.to_thread(runtime.start, workers={"projections"})
    await runtime.open_read_side()
    yield runtime
    await runtime.close_read_side()
    await asyncio.to_thread(runtime.stop)


def search_position(runtime: Runtime) -> int:
    with runtime.writer_pool.connection() as conn:
        return read_position(conn, "search")


async def wait_for_search(runtime: Runtime, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while search_position(runtime) < runtime.store.head():
        assert time.monotonic() < deadline, "the search index did not catch up"
        await asyncio.sleep(0.2)


async def found_messages(runtime: Runtime, actor: Actor, text: str, count: int) -> list[str]:
    """Search until `count` message hits appear (the index refreshes about once a second)."""
    deadline = time.monotonic() + 10
    while True:
        page = await runtime.search.search(actor, SearchQuery(text=text, first=10))
        contents = sorted(h.content for h in page.hits if h.message_id)
        if len(contents) >= count or time.monotonic() > deadline:
            return contents
        await asyncio.sleep(0.2)


async def test_search_outage_is_reported_and_the_index_catches_up(es_runtime: Runtime) -> None:
    runtime = es_runtime
    slug = f"outage-{uuid.uuid4().hex[:8]}"
    created = runtime.bus.handle(
        CreateTenant(
            name="Outage",
            slug=slug,
            admin_email="a@example.com",
            admin_password="a-long-password-1",
        )
    )
    admin = Actor(created.admin_user_id, created.tenant_id, Role.TENANT_ADMIN)
    chat = runtime.bus.handle(StartChat(title="Resilience"), admin)
    runtime.bus.handle(SendMessage(chat_id=chat.id, content="before the outage"), admin)
    await wait_for_search(runtime, 30)
    assert await found_messages(runtime, admin, "before", 1) == ["before the outage"]

    elasticsearch = build_services(Settings())["elasticsearch"]
    assert elasticsearch.down()
    try:
        # Commands do not depend on the search index.
        for n in range(3):
            runtime.bus.handle(
                SendMessage(chat_id=chat.id, content=f"written meanwhile {n}"), admin
            )
        with pytest.raises(SearchUnavailable) as failure:
            await runtime.search.search(admin, SearchQuery(text="outage", first=10))
        assert failure.value.code == "UNAVAILABLE"
        head = runtime.store.head()
        await runtime.read_models.wait_for(head)  # the Postgres read models keep going
        assert search_position(runtime) < head
    finally:
        await asyncio.to_thread(elasticsearch.up)

    await wait_for_search(runtime, 90)
    assert await found_messages(runtime, admin, "meanwhile", 3) == [
        f"written meanwhile {n}" for n in range(3)
    ]


async def test_rebuilding_the_search_index_under_traffic_swaps_the_alias_to_a_full_copy(
    es_runtime: Runtime,
) -> None:
    from elasticsearch import Elasticsearch

    from projections.rebuild import rebuild_search

    runtime = es_runtime
    alias = runtime.settings.elasticsearch_index
    created = runtime.bus.handle(
        CreateTenant(
            name="Rebuild",
            slug=f"rb-{uuid.uuid4().hex[:8]}",
            admin_email="a@example.com",
            admin_password="a-long-password-1",
        )
    )
    admin = Actor(created.admin_user_id, created.tenant_id, Role.TENANT_ADMIN)
    chat = runtime.bus.handle(StartChat(title="Rebuild me"), admin)
    for n in range(30):
        runtime.bus.handle(SendMessage(chat_id=chat.id, content=f"alpha {n}"), admin)
    await wait_for_search(runtime, 30)

    stop = asyncio.Event()

    async def traffic() -> None:
        n = 0
        while not stop.is_set():
            await asyncio.to_thread(
                runtime.bus.handle,
                SendMessage(chat_id=chat.id, content=f"alpha late {n}"),
                admin,
            )
            n += 1
            await asyncio.sleep(0.02)

    # A search paged before the rebuild: its snapshot's index is deleted by the swap.
    deadline = time.monotonic() + 10  # the index refreshes about once a second
    while True:
        before_rebuild = await runtime.search.search(admin, SearchQuery(text="alpha", first=10))
        if before_rebuild.has_next_page or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert before_rebuild.has_next_page
    writer = asyncio.create_task(traffic())
    with Elasticsearch(runtime.settings.elasticsearch_url) as client:
        before = list(client.indices.get_alias(name=alias).body)
        await asyncio.to_thread(
            rebuild_search,
            runtime.store,
            runtime.writer_pool,
            client,
            alias,
            progress=lambda done, total: None,
        )
        stop.set()
        await writer
        after = list(client.indices.get_alias(name=alias).body)
        assert before == [f"{alias}-v1"] and after == [f"{alias}-v2"]
        assert not client.indices.exists(index=f"{alias}-v1")
        assert not client.indices.exists_alias(name=f"{alias}-rebuild")
    await wait_for_search(runtime, 30)
    continued = await runtime.search.search(
        admin, SearchQuery(text="alpha", first=10, after=before_rebuild.end_cursor)
    )
    assert len(continued.hits) == 10  # on a snapshot of the new index, not an error
    messages = len(runtime.store.repository.get(chat.id).messages)
    deadline = time.monotonic() + 10  # the index refreshes about once a second
    while True:
        page_hits: list[str] = []
        after_cursor = None
        while True:
            page = await runtime.search.search(
                admin, SearchQuery(text="alpha", first=100, after=after_cursor)
            )
            page_hits += [h.content for h in page.hits if h.message_id]
            if not page.has_next_page:
                break
            after_cursor = page.end_cursor
        if len(page_hits) >= messages or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert len(page_hits) == len(set(page_hits)) == messages
