"""The router's policy, with scripted providers (the providers themselves are tested against
local servers speaking their real protocols, in tests/test_llm_*.py)."""

import threading
import time
from collections.abc import AsyncGenerator

import pytest

from infra.llm.base import (
    CancelToken,
    ChatTurn,
    Completion,
    ContentFiltered,
    Delta,
    GenerationParams,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderUnavailable,
)
from infra.llm.router import NoDeployment, Routed, Router, RouterPolicy, RoutingFailed

TURNS = [ChatTurn("user", "hi")]


class Scripted:
    """Answers each call with the next script item: an exception, or text to stream."""

    def __init__(self, name: str, *script: str | ProviderError) -> None:
        self.name = name
        self.script = list(script)
        self.calls: list[str] = []

    def supports(self, model: str) -> bool:
        return True

    async def stream(
        self, turns: list[ChatTurn], params: GenerationParams, cancel: CancelToken
    ) -> AsyncGenerator[Delta | Completion, None]:
        self.calls.append(params.model)
        step = self.script.pop(0)
        if isinstance(step, ProviderError):
            raise step
        for word in step.split():
            yield Delta(word + " ")
        if step.endswith("!cut"):
            raise ProviderUnavailable("stream cut")
        yield Completion("stop", 3, len(step.split()), provider=self.name, model=params.model)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float, cancel: CancelToken) -> bool:
        self.slept.append(seconds)
        self.now += seconds
        return cancel.cancelled


async def run(
    router: Router, chain: list[str], cancel: CancelToken | None = None
) -> tuple[str, Routed]:
    text, routed = "", None
    async for item in router.stream(
        chain, TURNS, GenerationParams(model=""), cancel or CancelToken()
    ):
        if isinstance(item, Delta):
            text += item.text
        else:
            routed = item
    assert routed is not None
    return text, routed


def router(*providers: Scripted, **policy: float) -> tuple[Router, Clock]:
    clock = Clock()
    return (
        Router(
            {p.name: p for p in providers},
            RouterPolicy(**policy),  # type: ignore[arg-type]
            sleep=clock.sleep,
            clock=clock,
        ),
        clock,
    )


async def test_a_rate_limit_is_retried_after_the_providers_retry_after() -> None:
    a = Scripted("a", ProviderRateLimited("slow down", retry_after=7.0), "hello there")
    r, clock = router(a)
    text, routed = await run(r, ["a/m1"])
    assert text == "hello there "
    assert (routed.deployment, routed.attempts, routed.fallbacks) == ("a/m1", 2, 0)
    assert a.calls == ["m1", "m1"] and clock.slept and clock.slept[0] >= 7.0


async def test_a_failing_provider_falls_back_to_the_next_in_the_chain() -> None:
    a = Scripted("a", *(ProviderUnavailable("500") for _ in range(3)))
    b = Scripted("b", "from b")
    r, _ = router(a, b)
    text, routed = await run(r, ["a/m1", "b/m2"])
    assert text == "from b "
    assert (routed.deployment, routed.attempts, routed.fallbacks) == ("b/m2", 4, 1)
    assert routed.completion.provider == "b" and len(routed.errors) == 3


async def test_auth_errors_fall_back_at_once_and_do_not_trip_the_breaker() -> None:
    a = Scripted("a", ProviderAuthError("bad key"), ProviderAuthError("bad key"))
    b = Scripted("b", "ok", "ok")
    r, _ = router(a, b, breaker_threshold=1)
    assert (await run(r, ["a/m", "b/m"]))[1].attempts == 2
    assert (await run(r, ["a/m", "b/m"]))[1].attempts == 2  # a is still tried: its health is fine
    assert [s.state for s in r.status() if s.deployment == "a/m"] == ["closed"]


async def test_a_retry_after_longer_than_we_wait_moves_on() -> None:
    a = Scripted("a", ProviderRateLimited("quota", retry_after=3600))
    b = Scripted("b", "ok")
    r, clock = router(a, b, max_retry_wait=30)
    assert (await run(r, ["a/m", "b/m"]))[1].deployment == "b/m"
    assert clock.slept == []


async def test_the_circuit_opens_after_repeated_failures_and_half_opens_after_the_cooldown() -> (
    None
):
    a = Scripted("a", *(ProviderUnavailable("down") for _ in range(2)), "back")
    b = Scripted("b", "b1", "b2", "b3")
    r, clock = router(a, b, max_attempts=2, breaker_threshold=2, cooldown_seconds=60)
    assert (await run(r, ["a/m", "b/m"]))[1].deployment == "b/m"
    [status] = [s for s in r.status() if s.deployment == "a/m"]
    assert status.state == "open" and status.consecutive_failures == 2
    assert (await run(r, ["a/m", "b/m"]))[1].attempts == 1  # a skipped while open
    assert len(a.calls) == 2
    clock.now += 61
    assert (await run(r, ["a/m", "b/m"]))[1].deployment == "a/m"  # the trial succeeds: closed again
    assert [s.state for s in r.status() if s.deployment == "a/m"] == ["closed"]


async def test_text_already_streamed_is_never_retried() -> None:
    a = Scripted("a", "partial answer !cut", "never")
    b = Scripted("b", "never")
    r, _ = router(a, b)
    text, routed = await run(r, ["a/m", "b/m"])
    assert text == "partial answer !cut "
    assert routed.completion.finish_reason == "error" and b.calls == [] and len(a.calls) == 1


async def test_content_filtering_ends_the_reply_without_asking_another_model() -> None:
    a = Scripted("a", ContentFiltered("refused"))
    b = Scripted("b", "never")
    r, _ = router(a, b)
    assert (await run(r, ["a/m", "b/m"]))[1].completion.finish_reason == "content_filter"
    assert b.calls == []


async def test_when_nothing_answers_the_last_error_is_raised() -> None:
    r, _ = router(Scripted("a", *(ProviderUnavailable("down") for _ in range(3))))
    with pytest.raises(RoutingFailed) as failed:
        await run(r, ["a/m", "unknown/m"])
    assert failed.value.attempts == 3 and isinstance(failed.value.__cause__, ProviderUnavailable)
    with pytest.raises(NoDeployment):
        await run(r, ["unknown/m"])


async def test_cancelling_during_a_back_off_ends_the_reply() -> None:
    cancel = CancelToken()
    a = Scripted("a", ProviderRateLimited("slow", retry_after=1), "never")
    r, _ = router(a)

    async def stop_button_pressed(seconds: float, token: CancelToken) -> bool:
        token.cancel()
        return True

    r.sleep = stop_button_pressed
    _, routed = await run(r, ["a/m"], cancel)
    assert routed.completion.finish_reason == "cancelled" and len(a.calls) == 1


async def test_a_back_off_ends_at_once_when_the_reply_is_stopped_from_another_thread() -> None:
    cancel = CancelToken()
    a = Scripted("a", ProviderRateLimited("slow", retry_after=20), "never")
    r = Router({"a": a}, RouterPolicy(max_retry_wait=60))  # the real wait on the event loop
    threading.Timer(0.1, cancel.cancel).start()  # stopGeneration arrives on another thread
    started = time.monotonic()
    _, routed = await run(r, ["a/m"], cancel)
    assert time.monotonic() - started < 2.0
    assert routed.completion.finish_reason == "cancelled" and len(a.calls) == 1
