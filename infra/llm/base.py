"""The provider interface: stream a reply for a conversation, then report usage.

A provider yields `Delta`s as text arrives and finishes with exactly one `Completion`. It must
stop promptly (closing its upstream connection) when `cancel` is set, and raise a subclass of
`ProviderError` for failures, so the router (a later issue) can retry or fall back.
"""

import threading
from collections.abc import Iterator
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
    """Set by `stopGeneration`; providers check it between chunks and close their stream."""

    _event: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


class ChatProvider(Protocol):
    name: str

    def supports(self, model: str) -> bool: ...

    def stream(
        self, turns: list[ChatTurn], params: GenerationParams, cancel: CancelToken
    ) -> Iterator[Delta | Completion]: ...
