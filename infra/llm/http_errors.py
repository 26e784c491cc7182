"""From HTTP failures to the typed provider errors the router acts on.

The provider SDKs raise their own errors for a bad status, but let the transport's errors
(httpx2, which both the Anthropic and Google SDKs stream over) out of a stream's iterator
unwrapped: a read timeout or a connection cut in the middle of a reply arrives as one of those.
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


def transport_error(provider: str, error: httpx2.TransportError) -> ProviderError:
    """A timeout or a broken connection, before or during a stream."""
    if isinstance(error, httpx2.TimeoutException):
        return ProviderTimeout(f"{provider}: timed out waiting for the provider ({error})")
    if isinstance(error, httpx2.RemoteProtocolError):
        return ProviderUnavailable(
            f"{provider}: the connection closed before the reply was complete ({error})"
        )
    return ProviderUnavailable(f"{provider}: connection failed ({type(error).__name__}: {error})")


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
