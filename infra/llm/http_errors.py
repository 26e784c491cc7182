"""From HTTP failures to the typed provider errors the router acts on.

The provider SDKs raise their own errors for a bad status. A timeout or a broken connection
reaches us from whichever layer noticed it, and which one that is changes between releases: the
transport's own error (httpx2, which the OpenAI, Anthropic and Google SDKs all use), or an SDK's
connection error raised `from` it. `connection_error` classifies by the transport error behind
either, so a release that starts (or stops) wrapping cannot change what the router sees.
"""

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import httpx2

from infra.llm.base import (
    ContextTooLong,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    StreamCut,
)


def status_error(status: int, message: str, retry_after: float | None = None) -> ProviderError:
    """The typed error for an HTTP error status (or the status an error type stands for)."""
    if status in (401, 403):
        return ProviderAuthError(message)
    if status == 429:
        return ProviderRateLimited(message, retry_after)
    if status == 413:
        return ContextTooLong(message)
    if status in (408, 504):
        return ProviderTimeout(message)
    if status >= 500:  # 529 is Anthropic's "overloaded"
        return ProviderUnavailable(message)
    return ProviderError(message)


def connection_error(provider: str, error: BaseException, cut_after: str | None) -> ProviderError:
    """A timeout or a broken connection, reported by the transport or by an SDK wrapping it.

    `cut_after` says how far the reply had come (e.g. "after 3 chunks") when the stream had
    started, and is None when the failure came before any of it: a connection that breaks in
    the middle of a reply is a `StreamCut`, one that never delivered a reply is unavailable.
    """
    cause = transport_cause(error) or error
    detail = f"{type(cause).__name__}: {cause}"
    where = f", {cut_after}" if cut_after is not None else ""
    if isinstance(cause, httpx2.TimeoutException):
        return ProviderTimeout(f"{provider}: timed out waiting for the provider{where} ({detail})")
    if cut_after is not None:
        return StreamCut(
            f"{provider}: the connection closed before the reply was complete{where} ({detail})"
        )
    return ProviderUnavailable(f"{provider}: connection failed ({detail})")


def transport_cause(error: BaseException) -> httpx2.TransportError | None:
    """The transport's error behind `error` (itself, or what it was raised `from`), if any.

    Only the explicit chain: an error merely raised while another was being handled (a status
    error after a retried connection failure) is not caused by it."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, httpx2.TransportError):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the provider asks us to wait: `retry-after-ms`, or `retry-after` (seconds or an
    HTTP date); None when it does not say."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    if (ms := lower.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
