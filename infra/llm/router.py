"""The model router: one reply through a chain of deployments, with retries, back-off and a
circuit breaker per deployment.

A *model reference* names a deployment: `provider/model` (`openai/gpt-4o-mini`,
`anthropic/claude-sonnet-4-5`, `azure/<deployment>`, `vllm/<model>` for a configured
OpenAI-compatible server), or `echo`. For one reply the router walks the chain (the chat's model,
then the tenant's fallbacks):

- a retryable error (rate limit, timeout, unavailable) is retried on the same deployment with
  exponential back-off and full jitter, waiting at least the provider's `Retry-After` (but a
  wait longer than `max_retry_wait` moves on to the next deployment instead);
- a deployment that fails `breaker_threshold` times in a row is *open* (skipped) for
  `cooldown_seconds`, then *half-open*: one trial reply decides;
- authentication failures, context too long and unavailability move to the next deployment;
  content filtering ends the reply (another model must not be asked to say what one refused);
- once text has been streamed, nothing is retried (subscribers have seen it): the reply ends
  with finish reason `error` and keeps the partial text.

Streaming is asynchronous (an async generator over the providers' async generators), so one
event loop carries every reply in progress; the breakers are shared with other threads (the
admins' status query) under a lock held only for bookkeeping.
"""

import logging
import random
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace

from infra.llm.base import (
    CancelToken,
    ChatProvider,
    ChatTurn,
    Completion,
    ContentFiltered,
    Delta,
    GenerationParams,
    ProviderError,
    ProviderRateLimited,
)

log = logging.getLogger(__name__)


class NoDeployment(ProviderError):
    """Nothing in the chain could be tried (unknown models, or every breaker open)."""


class RoutingFailed(ProviderError):
    """Every deployment of the chain failed; `errors` says how, `attempts` how many calls."""

    def __init__(self, errors: Sequence[str], attempts: int) -> None:
        super().__init__("; ".join(errors) or "no deployment answered")
        self.errors = tuple(errors)
        self.attempts = attempts


def split_ref(ref: str) -> tuple[str, str]:
    """`provider/model` → (provider, model); `echo` → ("echo", "echo")."""
    provider, sep, model = ref.partition("/")
    return (provider, model) if sep else (ref, ref)


@dataclass
class Breaker:
    failures: int = 0
    open_until: float = 0.0
    trial_running: bool = False
    last_error: str | None = None

    def state(self, now: float) -> str:
        if self.open_until > now:
            return "open"
        return "half-open" if self.failures and self.open_until else "closed"


@dataclass(frozen=True)
class BreakerStatus:
    deployment: str
    state: str
    consecutive_failures: int
    open_seconds_left: float
    last_error: str | None


@dataclass(frozen=True)
class Routed:
    """How a reply was produced: the completion and what it took."""

    completion: Completion
    deployment: str
    attempts: int
    """Provider calls made, every deployment counted."""
    fallbacks: int
    """Deployments given up on before the one that answered."""
    time_to_first_token: float | None
    duration: float
    errors: tuple[str, ...] = ()


@dataclass
class RouterPolicy:
    max_attempts: int = 3
    base_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_wait: float = 30.0
    breaker_threshold: int = 3
    cooldown_seconds: float = 30.0


@dataclass
class Router:
    providers: Mapping[str, ChatProvider]
    """By provider name (the part of a model reference before the slash; `echo` for echo)."""
    policy: RouterPolicy = field(default_factory=RouterPolicy)
    sleep: Callable[[float, CancelToken], Awaitable[bool]] = field(
        default=lambda seconds, cancel: cancel.sleep(seconds)
    )
    """Wait between attempts; True when cancelled meanwhile."""
    clock: Callable[[], float] = time.monotonic
    _breakers: dict[str, Breaker] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def knows(self, ref: str) -> bool:
        return split_ref(ref)[0] in self.providers

    def status(self) -> list[BreakerStatus]:
        now = self.clock()
        with self._lock:
            return [
                BreakerStatus(
                    ref, b.state(now), b.failures, max(0.0, b.open_until - now), b.last_error
                )
                for ref, b in sorted(self._breakers.items())
            ]

    async def stream(
        self,
        chain: Sequence[str],
        turns: list[ChatTurn],
        params: GenerationParams,
        cancel: CancelToken,
        overrides: Mapping[str, ChatProvider] | None = None,
        scope: str = "",
        max_tokens: Mapping[str, int] | None = None,
    ) -> AsyncGenerator[Delta | Routed, None]:
        """Yield the reply's deltas, then one `Routed`. Raises `RoutingFailed` (caused by the last
        provider error) when no deployment answered and nothing was streamed. `max_tokens`
        caps the reply per deployment (others: `params.max_tokens`)."""
        started = self.clock()
        first_token: float | None = None
        attempts = fallbacks = 0
        errors: list[str] = []
        last_error: ProviderError | None = None
        deployments = list(dict.fromkeys(chain))  # each deployment once, in order
        for index, ref in enumerate(deployments):
            name, model = split_ref(ref)
            own = overrides is not None and name in overrides
            provider = overrides[name] if overrides and own else self.providers.get(name)
            if provider is None:
                errors.append(f"{ref}: no such provider")
                continue
            # A tenant's own key has its own health (its quota, its mistakes): its own breaker.
            breaker = f"{ref} ({scope})" if own and scope else ref
            if not self._admit(breaker):
                errors.append(f"{ref}: circuit open")
                continue
            cap = (max_tokens or {}).get(ref, params.max_tokens)
            for attempt in range(1, self.policy.max_attempts + 1):
                attempts += 1
                streamed = False
                items = provider.stream(turns, replace(params, model=model, max_tokens=cap), cancel)
                try:
                    # Closed however we leave (a consumer that stops early closes us, and we
                    # close the provider's stream, hence its connection).
                    async with aclosing(items):
                        async for item in items:
                            if isinstance(item, Delta):
                                if first_token is None:
                                    first_token = self.clock() - started
                                streamed = True
                                yield item
                            else:
                                self._succeeded(breaker)
                                yield self._routed(
                                    item, ref, attempts, fallbacks, first_token, started, errors
                                )
                                return
                    raise ProviderError(f"{ref} ended its stream without a completion")
                except ProviderError as e:
                    last_error = e
                    errors.append(f"{ref}: {type(e).__name__}: {e}")
                    self._failed(breaker, e)
                    log.warning("model %s failed (attempt %d): %s", ref, attempt, e)
                    if streamed or isinstance(e, ContentFiltered) or cancel.cancelled:
                        ended = self._ended(e, ref, cancelled=cancel.cancelled)
                        yield self._routed(
                            ended, ref, attempts, fallbacks, first_token, started, errors
                        )
                        return
                    if not e.retryable or attempt == self.policy.max_attempts:
                        break
                    wait = self._backoff(attempt, e)
                    if wait is None:
                        break  # the provider asks for longer than we wait: next deployment
                    if await self.sleep(wait, cancel):
                        ended = self._ended(e, ref, cancelled=True)
                        yield self._routed(
                            ended, ref, attempts, fallbacks, first_token, started, errors
                        )
                        return
            if index < len(deployments) - 1:
                fallbacks += 1
        if last_error is None:
            raise NoDeployment("no deployment could be tried: " + "; ".join(errors))
        raise RoutingFailed(errors, attempts) from last_error

    @staticmethod
    def _ended(error: ProviderError, ref: str, *, cancelled: bool) -> Completion:
        """A reply that stops here (partial text kept, or filtered, or cancelled while waiting)."""
        name, model = split_ref(ref)
        reason = "content_filter" if isinstance(error, ContentFiltered) else "error"
        if cancelled:
            reason = "cancelled"
        return Completion(reason, 0, 0, provider=name, model=model)

    def _routed(
        self,
        completion: Completion,
        ref: str,
        attempts: int,
        fallbacks: int,
        first_token: float | None,
        started: float,
        errors: list[str],
    ) -> Routed:
        return Routed(
            completion,
            ref,
            attempts,
            fallbacks,
            first_token,
            self.clock() - started,
            tuple(errors),
        )

    def _backoff(self, attempt: int, error: ProviderError) -> float | None:
        ceiling = min(self.policy.max_backoff, self.policy.base_backoff * 2 ** (attempt - 1))
        wait = random.uniform(0, ceiling)  # full jitter
        if isinstance(error, ProviderRateLimited) and error.retry_after is not None:
            if error.retry_after > self.policy.max_retry_wait:
                return None
            wait = max(wait, error.retry_after)
        return wait

    # -- circuit breaker -------------------------------------------------------------------------

    def _admit(self, ref: str) -> bool:
        now = self.clock()
        with self._lock:
            breaker = self._breakers.setdefault(ref, Breaker())
            if breaker.open_until > now:
                return False
            if breaker.open_until and breaker.failures >= self.policy.breaker_threshold:
                if breaker.trial_running:
                    return False  # half-open: one trial at a time
                breaker.trial_running = True
            return True

    def _succeeded(self, ref: str) -> None:
        with self._lock:
            breaker = self._breakers.setdefault(ref, Breaker())
            if breaker.failures:
                log.info("model %s answers again; circuit closed", ref)
            self._breakers[ref] = Breaker()

    def _failed(self, ref: str, error: ProviderError) -> None:
        with self._lock:
            breaker = self._breakers.setdefault(ref, Breaker())
            breaker.trial_running = False
            if not error.retryable:
                return  # a bad key or a too-long prompt says nothing about the deployment's health
            breaker.failures += 1
            breaker.last_error = f"{type(error).__name__}: {error}"
            if breaker.failures >= self.policy.breaker_threshold:
                breaker.open_until = self.clock() + self.policy.cooldown_seconds
                log.warning(
                    "model %s failed %d times in a row: circuit open for %.0fs",
                    ref,
                    breaker.failures,
                    self.policy.cooldown_seconds,
                )
