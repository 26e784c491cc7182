"""The text of replies in progress, in process, on a real Redis and on a real PostgreSQL (the
same contract): several replies appended in one call, in order."""

import uuid
from collections.abc import Iterator

import pytest

from infra.messaging.reply_buffer import (
    MemoryReplyBuffer,
    PostgresReplyBuffer,
    RedisReplyBuffer,
    ReplyBuffer,
)


@pytest.fixture(params=["memory", "redis", "postgres"])
def buffer(request: pytest.FixtureRequest, redis_url: str) -> Iterator[ReplyBuffer]:
    if request.param == "postgres":
        yield PostgresReplyBuffer(request.getfixturevalue("pg_pool"))
    else:
        yield MemoryReplyBuffer() if request.param == "memory" else RedisReplyBuffer(redis_url)


def test_a_reply_in_progress_is_readable_until_it_finishes(buffer: ReplyBuffer) -> None:
    chat, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert buffer.snapshot(chat) == {}
    buffer.append_many([(chat, a, "Hel")])
    buffer.append_many([(chat, a, "lo "), (chat, b, "oth"), (chat, a, "wörld"), (chat, b, "er")])
    buffer.append_many([])
    assert buffer.snapshot(chat) == {a: "Hello wörld", b: "other"}
    buffer.finish(chat, a)
    assert buffer.snapshot(chat) == {b: "other"}
    assert buffer.snapshot(uuid.uuid4()) == {}
