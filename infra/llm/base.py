"""The provider interface: stream a reply for a conversation, then report usage.

A provider is an asynchronous generator: it yields `Delta`s as text arrives and finishes with
exactly one `Completion`. It must stop promptly (closing its upstream connection) when `cancel` is
set, and raise a subclass of `ProviderError` for failures, so the router can retry or fall back.
Many replies stream at once on one event loop (the responder's), so nothing in a provider may
block that loop.
"""

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class ChatTurn:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class GenerationParams:
    model: str
    max_tokens: int | None = None
    temperature: float | None = None


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Completion:
    finish_reason: str  # "stop" | "length" | "cancelled" | "content_filter" | "error"
    input_tokens: int
    output_tokens: int
    provider: str
    model: str
    provider_response_id: str | None = None


class ProviderError(Exception):
    retryable = False


class ProviderAuthError(ProviderError):
    pass


class ProviderRateLimited(ProviderError):
    retryable = True

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderTimeout(ProviderError):
    retryable = True


class ContextTooLong(ProviderError):
    pass


class ContentFiltered(ProviderError):
    pass


class ProviderUnavailable(ProviderError):
    retryable = True


class StreamCut(ProviderUnavailable):
    """The reply stopped before it was complete (the connection broke, or the stream ended
    without a finish reason): the text streamed so far stands, the rest never came."""


@dataclass
class CancelToken:
    """Set by `stopGeneration` (from any thread); providers check it between chunks and close
    their stream, and waits on the event loop (`sleep`) end as soon as it is set."""

    _event: threading.Event = field(default_factory=threading.Event)
    _waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def cancel(self) -> None:
        with self._lock:
            self._event.set()
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            # A closed loop has nobody waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    async def sleep(self, seconds: float | None) -> bool:
        """Wait `seconds` (None: until cancelled) on the running loop, or less if cancelled
        meanwhile; True if cancelled."""
        event = asyncio.Event()
        with self._lock:
            if self._event.is_set():
                return True
            entry = (asyncio.get_running_loop(), event)
            self._waiters.append(entry)
        try:
            await asyncio.wait_for(event.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                if entry in self._waiters:
                    self._waiters.remove(entry)
        return self._event.is_set()


class ChatProvider(Protocol):
    name: str

    def supports(self, model: str) -> bool: ...

    def stream(
        self, turns: list[ChatTurn], params: GenerationParams, cancel: CancelToken
    ) -> AsyncGenerator[Delta | Completion, None]: ...
