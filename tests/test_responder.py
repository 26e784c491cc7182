"""The responder on its event loop, against the real event store and message bus: coalesced
deltas, the memory cap, stopping a reply, and a reply cut by shutdown produced again after the
restart. Providers are scripted here (the real ones are tested against local servers speaking
their protocols, in tests/test_llm_*.py)."""

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import pytest

from api.runtime import Runtime
from commands.messages import SendMessage, StartChat
from commands.responder import MESSAGE_POSTED_TOPIC, Responder, Streaming
from domain.chat import ChatSession, reply_id_for
from infra.llm.base import CancelToken, ChatTurn, Completion, Delta, GenerationParams
from infra.llm.router import Router
from infra.messaging.live_items import ReplyDelta
from infra.messaging.reply_buffer import MemoryReplyBuffer
from infra.settings import Settings
from testbed.processes import target_url
from tests.conftest import fresh_database
from tests.test_commands import TenantFixture, create_tenant

WAIT = 20.0


@dataclass
class Scripted:
    """Streams `pieces` as the `echo` model (the chats' default), `delay` seconds apart."""

    pieces: list[str]
    delay: float = 0.0
    name: str = "echo"
    closed: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    threads: list[int] = field(default_factory=list)
    """Threads alive in the process whenever a reply started."""

    def supports(self, model: str) -> bool:
        return True

    async def stream(
        self, turns: list[ChatTurn], params: GenerationParams, cancel: CancelToken
    ) -> AsyncGenerator[Delta | Completion, None]:
        self.started.set()
        self.threads.append(threading.active_count())
        sent = 0
        try:
            for piece in self.pieces:
                if self.delay and await cancel.sleep(self.delay) or cancel.cancelled:
                    break
                sent += 1
                yield Delta(piece)
            reason = "cancelled" if cancel.cancelled else "stop"
            yield Completion(reason, 7, sent, provider=self.name, model=params.model)
        finally:
            self.closed.set()


@dataclass
class Feed:
    """What the responder published, and the positions it stored."""

    items: list[Any] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)

    def publish_many(self, items: Sequence[tuple[UUID, object]]) -> None:
        self.items.extend(item for _, item in items)

    def deltas(self) -> list[ReplyDelta]:
        return [i for i in self.items if isinstance(i, ReplyDelta)]


@pytest.fixture(scope="module")
def runtime(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """A write side without followers: the tests' own responder is the only one."""
    target = fresh_database(postgres_url)
    settings = Settings(
        database_url=target_url(target),
        data_dir=tmp_path_factory.mktemp("responder"),
        kafka_bootstrap_servers=None,
    )
    rt = Runtime(settings)
    rt.start(workers=False)
    yield rt
    rt.stop()


@pytest.fixture(scope="module")
def tenant(runtime: Runtime) -> TenantFixture:
    return create_tenant(runtime)


def responder(
    runtime: Runtime,
    provider: Scripted,
    feed: Feed,
    *,
    start: int = 0,
    partials: MemoryReplyBuffer | None = None,
    streaming: Streaming | None = None,
) -> Responder:
    return Responder(
        store=runtime.store,
        bus=runtime.bus,
        router=Router({"echo": provider}),
        partials=partials,
        publish=feed.publish_many,
        save_position=feed.positions.append,
        start_position=start,
        streaming=streaming,
    )


def ask(runtime: Runtime, tenant: TenantFixture) -> tuple[UUID, UUID, int]:
    """A new chat with one user message: (chat id, message id, its log position)."""
    chat = runtime.bus.handle(StartChat(title="responder"), tenant.admin)
    sent = runtime.bus.handle(SendMessage(chat_id=chat.id, content="Hello?"), tenant.admin)
    return chat.id, sent.message_id, sent.position


def answer_all(
    runtime: Runtime,
    tenant: TenantFixture,
    provider: Scripted,
    feed: Feed,
    chats: int,
    partials: MemoryReplyBuffer | None = None,
    **streaming: Any,
) -> list[Any]:
    """Ask in `chats` new chats and let one responder answer them all: the recorded replies'
    events."""
    r = responder(runtime, provider, feed, partials=partials, streaming=Streaming(**streaming))
    asked = [ask(runtime, tenant) for _ in range(chats)]
    try:
        r.handle(notifications_upto(runtime, max(position for _, _, position in asked)))
        return [reply_of(runtime, chat_id, message_id) for chat_id, message_id, _ in asked]
    finally:
        r.close()


def answer(
    runtime: Runtime, tenant: TenantFixture, provider: Scripted, feed: Feed, **streaming: Any
) -> Any:
    """Ask in a new chat and let a responder answer: the recorded reply's event."""
    [reply] = answer_all(runtime, tenant, provider, feed, 1, **streaming)
    return reply


def notifications_upto(runtime: Runtime, position: int, after: int = 0) -> list[Any]:
    return [n for n in runtime.store.read(after, 10_000) if n.id <= position]


def reply_of(runtime: Runtime, chat_id: UUID, message_id: UUID) -> Any:
    """The reply's MessagePosted event, once recorded (content, finish_reason, tokens)."""
    deadline = time.monotonic() + WAIT
    reply_id = reply_id_for(message_id)
    while time.monotonic() < deadline:
        chat = runtime.store.get_or_none(chat_id)
        assert isinstance(chat, ChatSession)
        if chat.has_message(reply_id):
            for notification in runtime.store.read(0, 100_000):
                if notification.topic == MESSAGE_POSTED_TOPIC:
                    event = runtime.store.decode(notification)
                    if event.message_id == reply_id:
                        return event
        time.sleep(0.02)
    raise AssertionError("no reply recorded")


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def stop_mid_reply(
    runtime: Runtime,
    tenant: TenantFixture,
    provider: Scripted,
    feed: Feed,
    streaming: Callable[[], bool],
) -> tuple[Any, float]:
    """Ask, press stop once `streaming()` holds: the recorded reply's event and how long the
    provider took to be closed."""
    r = responder(runtime, provider, feed)
    chat_id, message_id, position = ask(runtime, tenant)
    try:
        r.handle(notifications_upto(runtime, position))
        until(streaming)
        stopped_at = time.monotonic()
        assert r.stop_generation(chat_id)
        assert provider.closed.wait(WAIT)
        closed_within = time.monotonic() - stopped_at
        reply = reply_of(runtime, chat_id, message_id)
        until(lambda: not r.stop_generation(chat_id))  # nothing left to stop
        return reply, closed_within
    finally:
        r.close()


def test_deltas_arriving_together_go_out_as_fewer_reply_deltas_with_exact_offsets(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    pieces = [f"w{n} " for n in range(200)]
    feed = Feed()
    reply = answer(runtime, tenant, Scripted(pieces), feed, coalesce_seconds=0.05)
    deltas = feed.deltas()
    assert reply.content == "".join(pieces)
    assert "".join(d.delta for d in deltas) == reply.content
    assert deltas[0].delta == pieces[0]  # the first goes out at once
    assert 2 <= len(deltas) < len(pieces) / 4
    offsets = [sum(len(d.delta) for d in deltas[:n]) for n in range(len(deltas))]
    assert [d.offset for d in deltas] == offsets
    assert {d.message_id for d in deltas} == {reply.message_id}


def test_pending_text_over_the_flush_size_goes_out_without_waiting_for_the_window(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    pieces = ["x" * 10 for _ in range(100)]
    feed = Feed()
    # A minute's window does not hold the reply up.
    reply = answer(runtime, tenant, Scripted(pieces), feed, coalesce_seconds=60.0, flush_chars=100)
    deltas = feed.deltas()
    assert "".join(d.delta for d in deltas) == reply.content == "x" * 1000
    assert all(len(d.delta) <= 100 for d in deltas) and len(deltas) == 11


def test_a_subscriber_resuming_mid_reply_reads_the_text_published_so_far(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    provider = Scripted([f"w{n} " for n in range(100)], delay=0.01)
    feed, partials = Feed(), MemoryReplyBuffer()
    r = responder(runtime, provider, feed, partials=partials)
    chat_id, message_id, position = ask(runtime, tenant)
    try:
        r.handle(notifications_upto(runtime, position))
        until(lambda: len(feed.deltas()) >= 5)
        so_far = partials.snapshot(chat_id)[reply_id_for(message_id)]
        assert so_far.startswith("w0 w1 w2 ")
        published = "".join(d.delta for d in list(feed.deltas()))
        assert published.startswith(so_far) or so_far.startswith(published)
        reply_of(runtime, chat_id, message_id)
    finally:
        r.close()
    assert partials.snapshot(chat_id) == {}  # cleared once recorded


def test_a_reply_reaching_the_character_cap_is_finished_with_finish_reason_length(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    provider = Scripted(["0123456789"] * 1000, delay=0.001)
    feed = Feed()
    reply = answer(runtime, tenant, provider, feed, max_reply_chars=95)
    assert reply.content == ("0123456789" * 10)[:95]
    assert reply.finish_reason == "length"
    assert "".join(d.delta for d in feed.deltas()) == reply.content
    assert provider.closed.is_set()  # the provider was stopped, not read to its end
    assert reply.output_tokens < 1000


def test_stop_generation_ends_a_streaming_reply_promptly_and_keeps_the_text_so_far(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    provider = Scripted([f"w{n} " for n in range(1000)], delay=0.02)
    feed = Feed()
    reply, closed_within = stop_mid_reply(
        runtime, tenant, provider, feed, lambda: len(feed.deltas()) >= 3
    )
    assert closed_within < 0.5
    assert reply.finish_reason == "cancelled"
    assert reply.content == "".join(d.delta for d in feed.deltas())
    assert reply.content.startswith("w0 w1 w2 ") and len(reply.content) < 1000 * 4


def test_a_reply_cut_by_shutdown_is_not_recorded_and_is_produced_again_after_a_restart(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    first = Scripted([f"w{n} " for n in range(1000)], delay=0.02)
    feed = Feed()
    _, _, before = ask(runtime, tenant)  # the log up to here is someone else's
    chat_id, message_id, position = ask(runtime, tenant)
    r = responder(runtime, first, feed, start=before)
    r.handle(notifications_upto(runtime, position, after=before))
    until(lambda: len(feed.deltas()) >= 2)
    r.close()
    chat = runtime.store.get_or_none(chat_id)
    assert isinstance(chat, ChatSession) and not chat.has_message(reply_id_for(message_id))
    stored = max(feed.positions, default=before)
    assert stored < position  # the low-water mark stays below the abandoned reply

    again = Scripted(["all ", "of ", "it"])
    restarted = responder(runtime, again, Feed(), start=stored)
    try:
        restarted.handle(notifications_upto(runtime, position, after=stored))
        reply = reply_of(runtime, chat_id, message_id)
    finally:
        restarted.close()
    assert (reply.content, reply.finish_reason) == ("all of it", "stop")
    chat = runtime.store.get_or_none(chat_id)
    assert isinstance(chat, ChatSession)
    assert sum(1 for m in chat.messages if m.id == reply_id_for(message_id)) == 1


def test_many_replies_stream_at_once_on_the_one_event_loop(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    provider = Scripted(["a ", "b ", "c"], delay=0.2)
    threads_before = threading.active_count()
    started = time.monotonic()
    replies = answer_all(runtime, tenant, provider, Feed(), 40)
    took = time.monotonic() - started
    assert all(reply.content == "a b c" for reply in replies)
    assert took < 0.6 * 40 / 4  # not one after another
    # The loop's thread and the bounded pool, not a thread per reply.
    assert max(provider.threads) - threads_before <= 1 + 16


def test_close_with_nothing_in_flight_stores_the_position_seen(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    feed = Feed()
    chat_id, message_id, position = ask(runtime, tenant)
    r = responder(runtime, Scripted(["ok"]), feed)
    r.handle(notifications_upto(runtime, position))
    reply_of(runtime, chat_id, message_id)
    until(lambda: r.in_flight == 0)
    r.close()
    assert feed.positions and feed.positions[-1] == position
    assert r.position() == position


class CountingBuffer(MemoryReplyBuffer):
    """Counts the calls (each a round trip for Redis and PostgreSQL)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def append_many(self, pieces: Any) -> None:
        self.calls.append(len(pieces))
        super().append_many(pieces)


def test_deltas_of_replies_streaming_together_are_kept_in_shared_batches(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    provider = Scripted([f"w{n} " for n in range(10)], delay=0.01)
    feed, partials = Feed(), CountingBuffer()
    replies = answer_all(runtime, tenant, provider, feed, 30, partials)
    assert all(reply.content == "".join(provider.pieces) for reply in replies)
    assert sum(partials.calls) == len(feed.deltas())  # every published delta was kept
    assert len(partials.calls) < len(feed.deltas()) / 2  # in batches across replies


@dataclass
class GoesSilent(Scripted):
    """Streams its pieces, then sends nothing (and never looks at the stop) for an hour."""

    async def stream(
        self, turns: list[ChatTurn], params: GenerationParams, cancel: CancelToken
    ) -> AsyncGenerator[Delta | Completion, None]:
        try:
            for piece in self.pieces:
                yield Delta(piece)
            await asyncio.sleep(3600)
            yield Completion("stop", 7, len(self.pieces), provider=self.name, model=params.model)
        finally:
            self.closed.set()


def test_stop_generation_interrupts_a_provider_that_has_gone_silent(
    runtime: Runtime, tenant: TenantFixture
) -> None:
    provider = GoesSilent(["partial ", "answer"])
    feed = Feed()
    reply, closed_within = stop_mid_reply(
        runtime, tenant, provider, feed, lambda: len(feed.deltas()) >= 1
    )
    assert closed_within < 2.0  # not the provider's read timeout
    assert (reply.content, reply.finish_reason) == ("partial answer", "cancelled")
