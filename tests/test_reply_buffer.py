"""The text of replies in progress, in process and on a real Redis (the same contract)."""

import uuid
from collections.abc import Iterator

import pytest

from infra.messaging.reply_buffer import MemoryReplyBuffer, RedisReplyBuffer, ReplyBuffer


@pytest.fixture(params=["memory", "redis"])
def buffer(request: pytest.FixtureRequest, redis_url: str) -> Iterator[ReplyBuffer]:
    yield MemoryReplyBuffer() if request.param == "memory" else RedisReplyBuffer(redis_url)


def test_a_reply_in_progress_is_readable_until_it_finishes(buffer: ReplyBuffer) -> None:
    chat, a, b = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert buffer.snapshot(chat) == {}
    for piece in ("Hel", "lo ", "wörld"):
        buffer.append(chat, a, piece)
    buffer.append(chat, b, "other")
    assert buffer.snapshot(chat) == {a: "Hello wörld", b: "other"}
    buffer.finish(chat, a)
    assert buffer.snapshot(chat) == {b: "other"}
    assert buffer.snapshot(uuid.uuid4()) == {}
