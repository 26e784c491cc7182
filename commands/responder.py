"""The responder: follows the log and answers every user message with an assistant reply.

Replies run concurrently (bounded) as asyncio tasks on one event loop, in a thread of the
responder's own: streaming a reply costs a task, not a thread. What blocks (event-store loads,
recording the reply, the response cache, publishing and keeping the partial text when those go
through Redis or PostgreSQL) runs on a small bounded thread pool. Each reply's deltas are
coalesced (`Outbox`): those arriving within a few milliseconds go out as one `ReplyDelta` and one
append to the partial-reply buffer; and what all replies have to send at one moment goes off the
loop in one batch (one hop to the pool, one append call).

The durable position is the low-water mark: the highest log position below which every user
message has been answered. After a crash the responder resumes from there; replies already
recorded are skipped (reply ids are deterministic), unfinished ones are produced again.
"""

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from contextlib import aclosing
from dataclasses import dataclass, field, replace
from typing import ParamSpec, TypeVar
from uuid import UUID

from eventsourcing.persistence import Notification

from commands.admission import debit_reply_tokens
from commands.bus import MessageBus
from commands.messages import RecordReply
from domain.chat import ChatSession, Citation, Generation, MessageRole, reply_id_for
from domain.errors import NotFound
from domain.tenant import Tenant
from infra.eventstore.event_store import EventStore
from infra.identity.master_key import MasterKey
from infra.knowledge.index import Passage, Scope
from infra.knowledge.prompt import cited_numbers, grounding_prompt
from infra.knowledge.retrieval import Knowledge
from infra.llm.base import (
    CancelToken,
    ChatProvider,
    ChatTurn,
    Completion,
    Delta,
    GenerationParams,
    ProviderError,
)
from infra.llm.cache import CachedReply, MemoryCache, ResponseCache, cache_key
from infra.llm.catalog import cost_nanos
from infra.llm.context import build_context, estimate_tokens
from infra.llm.router import Routed, Router, split_ref
from infra.messaging.live_items import ReplyDelta
from infra.messaging.reply_buffer import MemoryReplyBuffer, ReplyBuffer
from infra.metrics import (
    GEN_AI_ATTEMPTS,
    GEN_AI_DURATION,
    GEN_AI_FALLBACKS,
    GEN_AI_REQUESTS,
    GEN_AI_SPEND,
    GEN_AI_TOKENS,
    GEN_AI_TTFT,
    REPLIES,
    REPLY_FIRST_DELTA,
)
from infra.rate_limits import Buckets

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

MESSAGE_POSTED_TOPIC = "parley.ChatSession.MessagePosted"
INTERRUPT_GRACE_SECONDS = 0.25
"""How long a stopped reply's provider has to notice the stop by itself before its read is
interrupted (noticing keeps its usage figures; interrupting loses them)."""
FOLLOWER_NAME = "responder"


@dataclass(frozen=True)
class ModelPolicy:
    """What the responder needs to know about models beyond the router."""

    prices: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """USD per million tokens by model reference."""
    context_windows: Mapping[str, int] = field(default_factory=dict)
    default_context_window: int = 128_000
    max_output_tokens: int = 1024


@dataclass(frozen=True)
class Streaming:
    """How replies stream out (the settings `PARLEY_RESPONDER_*`)."""

    coalesce_seconds: float = 0.005
    """Deltas of one reply arriving within this window go out as one `ReplyDelta`."""
    flush_chars: int = 1024
    """Pending text of this size goes out at once, window or not."""
    max_reply_chars: int = 262_144
    """A reply that reaches this many characters is finished with finish reason `length`."""


class Outbox:
    """One reply's text on its way out: kept whole (`text`), and sent coalesced through `emit`
    (`emit(text, offset)`: publish one `ReplyDelta` and append it to the partial reply).

    The first delta goes out at once; later ones wait up to `coalesce_seconds` for company, or
    until `flush_chars` are pending. Emits are sequential, so offsets (characters before a
    delta) always grow, and a subscriber that resumes mid-reply reads the text emitted so far
    from the partial-reply buffer. Memory is bounded by `max_reply_chars`."""

    def __init__(self, emit: Callable[[str, int], Awaitable[None]], streaming: Streaming) -> None:
        self._emit = emit
        self._streaming = streaming
        self._parts: list[str] = []
        self.length = 0
        """Characters accepted (emitted or pending)."""
        self._pending: list[str] = []
        self._pending_chars = 0
        self._emitted = 0
        self._started = False
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def full(self) -> bool:
        """The reply has reached `max_reply_chars`."""
        return self.length >= self._streaming.max_reply_chars

    async def add(self, text: str) -> bool:
        """Take in a delta; False once the reply is full (the text is cut at the cap)."""
        room = self._streaming.max_reply_chars - self.length
        full = len(text) >= room
        text = text[:room]
        if text:
            self._parts.append(text)
            self.length += len(text)
            self._pending.append(text)
            self._pending_chars += len(text)
        if not self._started or self._pending_chars >= self._streaming.flush_chars:
            self._started = True
            await self.flush()
        elif self._timer is None and self._pending:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._streaming.coalesce_seconds, self._flush_later)
        return not full

    def _flush_later(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self.flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def flush(self) -> None:
        """Emit what is pending (after any emit under way)."""
        async with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._pending:
                return
            text, offset = "".join(self._pending), self._emitted
            self._pending.clear()
            self._pending_chars = 0
            self._emitted += len(text)
            await self._emit(text, offset)

    async def close(self) -> None:
        """Emit the rest; afterwards nothing more is emitted."""
        await self.flush()
        await asyncio.gather(*self._flushes, return_exceptions=True)


@dataclass
class _Plan:
    """What one reply needs, loaded (off the loop) before it streams."""

    chat: ChatSession
    tenant: object
    history: list[ChatTurn]
    chain: list[str]
    caps: dict[str, int]
    turns: list[ChatTurn]
    params: GenerationParams
    own: dict[str, ChatProvider]
    key: str | None
    ttl: int | None
    hit: CachedReply | None
    given: list[Passage] = field(default_factory=list)
    """The knowledge passages the model is given, best first (numbered from 1)."""


def chat_scope(chat: ChatSession) -> Scope:
    """What a grounded chat's replies may draw on: the documents attached to it, or, with the
    tenant's collection attached, everything its owner may read (their own documents and the
    collection). Always as the chat's owner sees them, whoever else reads the chat."""
    documents = None if chat.knowledge_collection else frozenset(chat.knowledge_documents)
    return Scope(tenant_id=chat.tenant_id, owner_id=chat.owner_id, document_ids=documents)


def citations_of(given: list[Passage], reply: str) -> list[Citation]:
    cited = cited_numbers(reply, len(given))
    return [
        Citation(
            document_id=str(p.document_id),
            revision=p.revision,
            chunk_id=str(p.chunk_id),
            chunk_index=p.index,
            rank=n,
            score=round(p.score, 6),
            cited=n in cited,
        )
        for n, p in enumerate(given, start=1)
    ]


class Responder:
    def __init__(
        self,
        *,
        store: EventStore,
        bus: MessageBus,
        router: Router,
        models: ModelPolicy | None = None,
        cache: ResponseCache | None = None,
        buckets: Buckets | None = None,
        partials: ReplyBuffer | None = None,
        keyed: Callable[[str, str], ChatProvider | None] | None = None,
        master_key: MasterKey | None = None,
        publish: Callable[[Sequence[tuple[UUID, object]]], None],
        save_position: Callable[[int], None],
        start_position: int,
        concurrency: int = 2048,
        blocking_threads: int = 16,
        streaming: Streaming | None = None,
        read_models_reached: Callable[[int, float], bool] = lambda _position, _timeout: True,
        knowledge: Knowledge | None = None,
        knowledge_passages: int = 5,
    ) -> None:
        """`knowledge`: grounds the replies of chats with documents attached (None: such chats
        are answered without them, and a warning says so)."""
        self._store = store
        self._knowledge = knowledge
        self._knowledge_passages = knowledge_passages
        self._bus = bus
        self._router = router
        self._models = models or ModelPolicy()
        self._cache: ResponseCache = cache or MemoryCache()
        self._buckets = buckets
        self._partials: ReplyBuffer = partials or MemoryReplyBuffer()
        self._keyed = keyed
        self._master_key = master_key
        self._own: dict[tuple[UUID, str, str], ChatProvider] = {}
        self._own_lock = threading.Lock()
        self._publish = publish
        self._save_position = save_position
        self._streaming = streaming or Streaming()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._save_lock = threading.Lock()
        self._in_flight: dict[int, Future[bool]] = {}
        self._seen = start_position
        self._saved = start_position
        self._read_models_reached = read_models_reached
        self._closing = threading.Event()
        self._cancels: dict[UUID, dict[UUID, CancelToken]] = {}
        """Replies in progress per chat (several may run at once), by reply id."""
        self._blocking = ThreadPoolExecutor(blocking_threads, thread_name_prefix="reply-io")
        self._loop = asyncio.new_event_loop()
        self._loop.set_default_executor(self._blocking)
        self._closed = asyncio.Event()
        self._emits: list[tuple[UUID, UUID, str, int, asyncio.Future[None]]] = []
        """Coalesced deltas of every reply waiting for the next batch (see `_emit`)."""
        self._emitter: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run_loop, name="responder", daemon=True)
        self._thread.start()
        log.info(
            "responder started: up to %d replies at once on one event loop, %d threads for "
            "blocking work",
            concurrency,
            blocking_threads,
        )

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    # The follower reads from what we have *seen*; the durable position is the low-water mark.
    def position(self) -> int:
        return self._seen

    def handle(self, batch: Sequence[Notification]) -> None:
        for notification in batch:
            if notification.topic == MESSAGE_POSTED_TOPIC:
                event = self._store.decode(notification)
                if event.role == MessageRole.USER.value:
                    self._slots.acquire()  # back-pressure: never more than `concurrency` at once
                    future = asyncio.run_coroutine_threadsafe(
                        self._reply_with_retries(
                            event.originator_id, event.message_id, notification.id
                        ),
                        self._loop,
                    )
                    with self._lock:
                        self._in_flight[notification.id] = future
                    future.add_done_callback(functools.partial(self._done, notification.id))
            with self._lock:
                self._seen = notification.id
        self._checkpoint()

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def stop_generation(self, chat_id: UUID) -> bool:
        """Cancel every reply being generated in the chat; False when there was none."""
        with self._lock:
            tokens = list(self._cancels.get(chat_id, {}).values())
        for token in tokens:
            token.cancel()
        return bool(tokens)

    def close(self) -> None:
        """Stop: replies cut short by shutdown are not recorded; the next start redoes them."""
        self._closing.set()
        self._loop.call_soon_threadsafe(self._closed.set)
        with self._lock:
            tokens = [t for replies in self._cancels.values() for t in replies.values()]
            replies = list(self._in_flight.values())
        for token in tokens:
            token.cancel()
        wait_all(replies)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self._blocking.shutdown(wait=True)
        self._checkpoint()
        log.info("responder stopped at position %d", self._saved)

    def _done(self, notification_id: int, future: "Future[bool]") -> None:
        finished = not future.cancelled() and future.exception() is None and future.result()
        with self._lock:
            if finished or not self._closing.is_set():
                # An abandoned reply keeps the low-water mark below it: redone after restart.
                self._in_flight.pop(notification_id, None)
        self._slots.release()
        if not self._closing.is_set():
            # Called on the event loop: the position is written by the blocking pool.
            self._blocking.submit(self._checkpoint)

    def _checkpoint(self) -> None:
        with self._save_lock:  # positions are stored in the order they were reached
            with self._lock:
                low_water = min(self._in_flight) - 1 if self._in_flight else self._seen
                if low_water <= self._saved:
                    return
                self._saved = low_water
            try:
                self._save_position(low_water)
            except Exception:
                log.exception("responder could not store its position %s", low_water)

    async def _off_loop(self, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking work on the responder's thread pool."""
        return await self._loop.run_in_executor(
            self._blocking, functools.partial(work, *args, **kwargs)
        )

    def _own_providers(self, tenant: object) -> dict[str, ChatProvider]:
        """The tenant's own keys as providers (built once per key, by fingerprint)."""
        if not isinstance(tenant, Tenant) or not tenant.provider_keys:
            return {}
        if self._keyed is None or self._master_key is None:
            return {}
        own = {}
        with self._own_lock:
            for name, key in tenant.provider_keys.items():
                cache_key = (tenant.id, name, key.fingerprint)
                provider = self._own.get(cache_key)
                if provider is None:
                    api_key = self._master_key.open(key.sealed, f"{tenant.id}:{name}")
                    provider = self._keyed(name, api_key)
                    if provider is None:
                        continue
                    self._own[cache_key] = provider
                own[name] = provider
        return own

    async def _emit(self, chat_id: UUID, reply_id: UUID, text: str, offset: int) -> None:
        """Send one coalesced delta; returns once it is kept and published. Deltas of every
        reply sent meanwhile go in the same batch, off the loop."""
        sent = self._loop.create_future()
        self._emits.append((chat_id, reply_id, text, offset, sent))
        if self._emitter is None or self._emitter.done():
            self._emitter = self._loop.create_task(self._emit_batches())
        await sent

    async def _emit_batches(self) -> None:
        while self._emits:
            batch, self._emits = self._emits, []
            try:
                await self._off_loop(self._stream_out, [item[:4] for item in batch])
            finally:
                for *_, sent in batch:
                    if not sent.done():
                        sent.set_result(None)

    def _stream_out(self, deltas: list[tuple[UUID, UUID, str, int]]) -> None:
        """Keep coalesced deltas for resuming subscribers (one call), then publish them."""
        try:
            self._partials.append_many([(chat, reply, text) for chat, reply, text, _ in deltas])
        except Exception:  # resuming is a convenience: the live stream must go on
            log.warning("could not keep %d partial replies", len(deltas), exc_info=True)
        try:  # one round trip for the batch where the fan-out crosses processes
            self._publish(
                [
                    (chat_id, ReplyDelta(chat_id, reply_id, text, offset))
                    for chat_id, reply_id, text, offset in deltas
                ]
            )
        except Exception:  # live delivery is best effort; the reply is recorded regardless
            log.warning("could not publish %d deltas", len(deltas), exc_info=True)

    def _forget_partial(self, chat_id: UUID, reply_id: UUID) -> None:
        try:
            self._partials.finish(chat_id, reply_id)
        except Exception:  # it expires on its own
            log.warning("could not clear the partial reply of chat %s", chat_id, exc_info=True)

    @staticmethod
    def _observe(tenant_id: UUID, routed: Routed, completion: Completion, cost: int) -> None:
        labels = ("chat", completion.provider, completion.model)
        error = "none" if completion.finish_reason != "error" else "error"
        GEN_AI_DURATION.labels(*labels, error).observe(routed.duration)
        if routed.time_to_first_token is not None:
            GEN_AI_TTFT.labels(*labels).observe(routed.time_to_first_token)
        GEN_AI_TOKENS.labels(*labels, "input").observe(completion.input_tokens)
        GEN_AI_TOKENS.labels(*labels, "output").observe(completion.output_tokens)
        GEN_AI_REQUESTS.labels(
            completion.provider, completion.model, completion.finish_reason
        ).inc()
        GEN_AI_ATTEMPTS.labels(completion.provider, completion.model).inc(routed.attempts)
        if routed.fallbacks:
            GEN_AI_FALLBACKS.labels(completion.provider, completion.model).inc()
        if cost:
            GEN_AI_SPEND.labels(str(tenant_id)).inc(cost / 1e9)

    async def _pause(self, seconds: float) -> bool:
        """Wait before another attempt; True when the responder closes meanwhile."""
        try:
            await asyncio.wait_for(self._closed.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _reply_with_retries(
        self, chat_id: UUID, message_id: UUID, position: int, attempts: int = 5
    ) -> bool:
        """True when the message is answered (or needs no answer); False when abandoned."""
        for n in range(1, attempts + 1):
            try:
                return await self._reply(chat_id, message_id, position)
            except NotFound:
                # Erased (its owner, or by retention) or deleted while we were answering.
                log.info("chat %s is gone; its reply is dropped", chat_id)
                return True
            except Exception:
                log.exception("reply to %s in chat %s failed (attempt %d)", message_id, chat_id, n)
                if await self._pause(min(5.0, 0.2 * 2**n)):
                    return False
        REPLIES.labels("unknown", "failed").inc()
        log.error("gave up replying to message %s in chat %s", message_id, chat_id)
        return True

    def _plan(self, chat_id: UUID, message_id: UUID, position: int) -> _Plan | None:
        """Everything the reply needs from the event store and the cache; None: no reply."""
        # Subscribers see the user's message (from the read models) before the reply's deltas.
        if not self._read_models_reached(position, 5.0):
            log.warning("read models lag behind position %d; replying anyway", position)
        chat = self._store.get_or_none(chat_id)
        if not isinstance(chat, ChatSession) or chat.is_deleted:
            return None
        if self._store.data_keys.destroyed(chat_id):
            return None  # its owner was erased: nothing of it goes to a provider
        if chat.has_message(reply_id_for(message_id)):
            return None  # answered before a restart
        history = []
        for m in chat.messages:
            history.append(ChatTurn(role=m.role.value, content=m.content))
            if m.id == message_id:
                break
        model = chat.model
        tenant = self._store.get_or_none(chat.tenant_id)
        chain = [model]
        caps: dict[str, int] = {}
        if isinstance(tenant, Tenant):
            # A provider the tenant disabled after the chat was started is skipped, not called.
            chain = [m for m in [model, *tenant.fallback_models] if tenant.provider_enabled(m)]
            caps = tenant.model_max_tokens
        max_tokens = caps.get(model, self._models.max_output_tokens)
        window = self._models.context_windows.get(model, self._models.default_context_window)
        system_prompt = tenant.system_prompt if isinstance(tenant, Tenant) else None
        given: list[Passage] = []
        if chat.has_knowledge:
            system_prompt, given = self._ground(chat, history, system_prompt, window - max_tokens)
        context = build_context(
            history,
            system_prompt=system_prompt,
            context_window=window,
            reserve_for_reply=max_tokens,
        )
        params = GenerationParams(model=model, max_tokens=max_tokens)
        ttl = tenant.cache_ttl_seconds if isinstance(tenant, Tenant) else None
        key = cache_key(chat.tenant_id, model, context.turns, params) if ttl else None
        return _Plan(
            chat=chat,
            tenant=tenant,
            history=history,
            chain=chain,
            caps=caps,
            turns=context.turns,
            params=params,
            own=self._own_providers(tenant),
            key=key,
            ttl=ttl,
            hit=self._cache.get(key) if key else None,
            given=given,
        )

    def _ground(
        self, chat: ChatSession, history: list[ChatTurn], system_prompt: str | None, room: int
    ) -> tuple[str | None, list[Passage]]:
        """The system prompt with the passages retrieved for the message being answered, and
        those passages. Up to half the window's room (after the reply's) goes to passages: the
        question and the recent conversation keep the rest."""
        if self._knowledge is None:
            log.warning(
                "chat %s is grounded in documents, but this process has no knowledge "
                "index: answering without them",
                chat.id,
            )
            return system_prompt, []
        question = history[-1].content if history else ""
        try:
            found = self._knowledge.search(
                chat_scope(chat), question, first=self._knowledge_passages, mode="hybrid"
            )
        except Exception:
            # The reply goes out without passages (and records none) rather than not at all.
            log.exception("knowledge retrieval for chat %s failed: answering without it", chat.id)
            return system_prompt, []
        if not found:
            return system_prompt, []
        own = estimate_tokens(system_prompt) if system_prompt else 0
        budget = max(256, (room - own - estimate_tokens(question)) // 2)
        grounding, count = grounding_prompt(found, budget)
        prompt = f"{system_prompt}\n\n{grounding}" if system_prompt else grounding
        return prompt, found[:count]

    async def _reply(self, chat_id: UUID, message_id: UUID, position: int) -> bool:
        started = time.perf_counter()
        reply_id = reply_id_for(message_id)
        # Registered first: a close() that starts while the reply is being planned stops it.
        cancel = CancelToken()
        with self._lock:
            self._cancels.setdefault(chat_id, {})[reply_id] = cancel
        try:
            plan = await self._off_loop(self._plan, chat_id, message_id, position)
            if plan is None:
                return True
            if self._closing.is_set():
                return False
            return await self._answer(plan, chat_id, message_id, reply_id, cancel, started)
        finally:
            with self._lock:
                replies = self._cancels.get(chat_id, {})
                replies.pop(reply_id, None)
                if not replies:
                    self._cancels.pop(chat_id, None)

    async def _answer(
        self,
        plan: _Plan,
        chat_id: UUID,
        message_id: UUID,
        reply_id: UUID,
        cancel: CancelToken,
        started: float,
    ) -> bool:
        model, hit = plan.params.model, plan.hit

        async def emit(text: str, offset: int) -> None:
            await self._emit(chat_id, reply_id, text, offset)

        out = Outbox(emit, self._streaming)
        routed: Routed | None = None
        try:
            if hit is not None:
                await out.add(hit.content)
                routed = Routed(
                    Completion(
                        "stop", hit.input_tokens, hit.output_tokens, hit.provider, hit.model
                    ),
                    deployment=model,
                    attempts=0,
                    fallbacks=0,
                    time_to_first_token=time.perf_counter() - started,
                    duration=time.perf_counter() - started,
                )
            else:
                routed = await self._interruptible(self._stream(plan, cancel, out, started), cancel)
                if routed is None:  # a silent provider, interrupted: no usage came back
                    provider, model_name = split_ref(model)
                    routed = Routed(
                        Completion("cancelled", 0, 0, provider=provider, model=model_name),
                        deployment=model,
                        attempts=1,
                        fallbacks=0,
                        time_to_first_token=None,
                        duration=time.perf_counter() - started,
                    )
        except ProviderError as e:
            log.warning("no model answered chat %s message %s: %s", chat_id, message_id, e)
            routed = Routed(
                Completion("error", 0, 0, provider="none", model=model),
                deployment=model,
                attempts=getattr(e, "attempts", 0),
                fallbacks=max(0, len(plan.chain) - 1),
                time_to_first_token=None,
                duration=time.perf_counter() - started,
            )
            if not out.length:
                await out.add("Sorry, the model could not answer this message.")
        finally:
            try:
                await out.close()
            finally:
                await self._off_loop(self._forget_partial, chat_id, reply_id)
        assert routed is not None
        if cancel.cancelled and self._closing.is_set():
            log.info("reply to %s abandoned at shutdown; it will be produced again", message_id)
            return False
        completion = routed.completion
        if out.full:
            log.warning(
                "reply to %s in chat %s reached %d characters: finished with finish reason length",
                message_id,
                chat_id,
                self._streaming.max_reply_chars,
            )
            completion = replace(completion, finish_reason="length")
        elif cancel.cancelled:
            completion = replace(completion, finish_reason="cancelled")
        await self._off_loop(
            self._record, plan, chat_id, message_id, out.text, routed, completion, started
        )
        return True

    async def _stream(
        self, plan: _Plan, cancel: CancelToken, out: "Outbox", started: float
    ) -> Routed | None:
        """Stream the reply through the router into `out`; how it was produced."""
        routed: Routed | None = None
        model = plan.params.model
        stream = self._router.stream(
            plan.chain,
            plan.turns,
            plan.params,
            cancel,
            overrides=plan.own,
            scope=str(plan.chat.tenant_id),
            max_tokens={m: plan.caps.get(m, self._models.max_output_tokens) for m in plan.chain},
        )
        async with aclosing(stream):
            async for item in stream:
                if not isinstance(item, Delta):
                    routed = item
                elif not out.full:
                    if not out.length:
                        REPLY_FIRST_DELTA.labels(model).observe(time.perf_counter() - started)
                    if not await out.add(item.text):
                        # Stop the provider (its usage still comes back); keep no more.
                        cancel.cancel()
        return routed

    @staticmethod
    async def _interruptible(streaming: Awaitable[T], cancel: CancelToken) -> T | None:
        """Run `streaming`; once the reply is stopped, a provider that has not noticed within
        INTERRUPT_GRACE_SECONDS (it notices at its next chunk; a silent one may not send one
        for its whole read timeout) is interrupted: its read is cancelled, which closes its
        connection. None when interrupted."""
        task = asyncio.ensure_future(streaming)

        async def interrupt() -> None:
            await cancel.sleep(None)
            await asyncio.sleep(INTERRUPT_GRACE_SECONDS)
            task.cancel()

        watcher = asyncio.ensure_future(interrupt())
        try:
            return await task
        except asyncio.CancelledError:
            if not (task.cancelled() and cancel.cancelled):
                raise
            return None
        finally:
            watcher.cancel()

    def _record(
        self,
        plan: _Plan,
        chat_id: UUID,
        message_id: UUID,
        text: str,
        routed: Routed,
        completion: Completion,
        started: float,
    ) -> None:
        """Record the reply (and cache it, count it, debit its tokens)."""
        hit, key, ttl, tenant = plan.hit, plan.key, plan.ttl, plan.tenant
        content = text or "(no reply)"
        cost = (
            0
            if hit
            else cost_nanos(
                self._models.prices,
                routed.deployment,
                completion.input_tokens,
                completion.output_tokens,
            )
        )
        if key and ttl and not hit and completion.finish_reason == "stop" and not routed.fallbacks:
            self._cache.put(
                key,
                CachedReply(
                    content,
                    completion.provider,
                    completion.model,
                    completion.input_tokens,
                    completion.output_tokens,
                ),
                ttl,
            )
        self._bus.handle(
            RecordReply(
                chat_id=chat_id,
                reply_to=message_id,
                content=content,
                model=completion.model,
                input_tokens=completion.input_tokens,
                output_tokens=completion.output_tokens,
                finish_reason=completion.finish_reason,
                latency_ms=int((time.perf_counter() - started) * 1000),
                generation=Generation(
                    provider=completion.provider,
                    attempts=routed.attempts,
                    fallbacks=routed.fallbacks,
                    time_to_first_token_ms=None
                    if routed.time_to_first_token is None
                    else int(routed.time_to_first_token * 1000),
                    cost_nanos=cost,
                    cached=hit is not None,
                ),
                citations=citations_of(plan.given, content) if plan.given else None,
            )
        )
        REPLIES.labels(plan.params.model, completion.finish_reason).inc()
        self._observe(plan.chat.tenant_id, routed, completion, cost)
        if isinstance(tenant, Tenant) and self._buckets is not None and not hit:
            asked = next((t.content for t in reversed(plan.history) if t.role == "user"), "")
            debit_reply_tokens(
                self._buckets, tenant, asked, completion.input_tokens, completion.output_tokens
            )
