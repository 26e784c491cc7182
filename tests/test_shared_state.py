"""State that the processes of one deployment share without Redis, on a real PostgreSQL: sign-ins
in progress (single use, expiring) and live events over LISTEN/NOTIFY (in order, large ones by
reference), each seen by another process's listener as by its own."""

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from psycopg_pool import ConnectionPool

from infra.identity.oidc_sign_ins import PostgresSignInStore, RedisSignInStore, SignInStore
from infra.messaging.live_feed import LiveFeed
from infra.messaging.live_items import MessageRow, ReplyDelta, StopRequested
from infra.messaging.pg_fanout import MAX_NOTIFY_BYTES, PostgresFanout
from infra.postgres import PostgresTarget


@pytest.fixture(params=["redis", "postgres"])
def sign_ins(request: pytest.FixtureRequest, redis_url: str) -> SignInStore:
    if request.param == "postgres":
        pool: ConnectionPool = request.getfixturevalue("pg_pool")
        return PostgresSignInStore(pool)
    return RedisSignInStore(redis_url)


def test_a_shared_sign_in_in_progress_is_single_use_and_expires(sign_ins: SignInStore) -> None:
    a, b = f"a-{uuid.uuid4()}", f"b-{uuid.uuid4()}"
    sign_ins.put(a, {"n": 1}, 60)
    sign_ins.put(b, {"n": 2}, 0.05)
    assert sign_ins.take(a) == {"n": 1} and sign_ins.take(a) is None
    time.sleep(0.1)
    assert sign_ins.take(b) is None


@pytest.fixture
def two_processes(pg_target: PostgresTarget) -> Iterator[tuple[PostgresFanout, LiveFeed]]:
    """A publisher's fan-out and another listener's feed (as in two processes)."""
    publisher = PostgresFanout(pg_target.conninfo(), LiveFeed())
    remote = LiveFeed()
    listener = PostgresFanout(pg_target.conninfo(), remote)
    publisher.start()
    listener.start()
    yield publisher, remote
    publisher.stop()
    listener.stop()


async def test_live_items_reach_another_process_in_order_large_ones_too(
    two_processes: tuple[PostgresFanout, LiveFeed],
) -> None:
    publisher, remote = two_processes
    chat = uuid.uuid4()
    reply = uuid.uuid4()
    big = "x" * (MAX_NOTIFY_BYTES * 3)  # over NOTIFY's limit: spilled, sent by reference
    row = MessageRow(
        message_id=uuid.uuid4(),
        tenant_id=uuid.uuid4(),
        chat_id=chat,
        seq=1,
        role="assistant",
        content=big,
        model="echo",
        author_id=None,
        reply_to=uuid.uuid4(),
        input_tokens=1,
        output_tokens=2,
        finish_reason="stop",
        latency_ms=3,
        created_at=datetime.now(UTC),
    )
    sent = [ReplyDelta(chat, reply, f"piece {n} ", offset=n) for n in range(50)]
    sent += [row, StopRequested(chat)]
    with remote.open(chat) as subscription:
        for item in sent:
            await asyncio.to_thread(publisher.publish, chat, item)
        received = [await asyncio.wait_for(subscription.next(), timeout=10) for _ in sent]
    assert received == sent

    # The same in one batch (one round trip), the large one spilled, the order kept.
    with remote.open(chat) as subscription:
        await asyncio.to_thread(publisher.publish_many, [(chat, item) for item in sent])
        received = [await asyncio.wait_for(subscription.next(), timeout=10) for _ in sent]
    assert received == sent


async def test_a_stop_request_reaches_a_process_with_no_subscriber_of_the_chat(
    two_processes: tuple[PostgresFanout, LiveFeed],
) -> None:
    """The responder's process follows no chat, yet must see every stop (its feed's control);
    other items of chats nobody there follows are skipped."""
    publisher, remote = two_processes
    seen: list[object] = []
    arrived = asyncio.Event()
    loop = asyncio.get_running_loop()

    def control(chat_id: uuid.UUID, item: object) -> bool:
        seen.append(item)
        loop.call_soon_threadsafe(arrived.set)
        return True

    remote.control = control
    chat = uuid.uuid4()
    await asyncio.to_thread(publisher.publish, chat, ReplyDelta(chat, uuid.uuid4(), "skipped"))
    await asyncio.to_thread(publisher.publish, chat, StopRequested(chat))
    await asyncio.wait_for(arrived.wait(), timeout=10)
    assert seen == [StopRequested(chat)]
