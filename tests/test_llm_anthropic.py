"""The Anthropic provider: the official SDK against a local fake of the Messages API."""

import socket
from collections.abc import Iterator
from functools import partial

import pytest

from infra.llm.anthropic_provider import AnthropicProvider
from infra.llm.base import (
    CancelToken,
    ChatTurn,
    Completion,
    ContextTooLong,
    Delta,
    GenerationParams,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    StreamCut,
)
from testbed.llm_fakes import anthropic as fake
from testbed.llm_fakes.server import FakeProviderServer, Stream
from tests import provider_harness as harness
from tests.provider_harness import TURNS

KEY = "sk-ant-test-0123456789"
PARAMS = GenerationParams(model="claude-test")


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as s:
        yield s


@pytest.fixture
def provider(server: FakeProviderServer) -> AnthropicProvider:
    return AnthropicProvider(api_key=KEY, base_url=server.url, timeout=5.0)


drain = partial(harness.drain, params=PARAMS)


async def test_streams_text_deltas_then_one_completion_with_usage(
    server: FakeProviderServer, provider: AnthropicProvider
) -> None:
    server.queue(
        Stream(
            fake.message_events(
                ["Teal", ", ", "mostly."],
                model="claude-test-20261101",
                message_id="msg_abc",
                input_tokens=31,
                output_tokens=5,
            )
        )
    )
    texts, completion = await drain(provider)
    assert texts == ["Teal", ", ", "mostly."]
    assert completion == Completion(
        finish_reason="stop",
        input_tokens=31,
        output_tokens=5,
        provider="anthropic",
        model="claude-test-20261101",
        provider_response_id="msg_abc",
    )


async def test_sends_system_turns_as_the_system_parameter_and_merges_runs_of_one_role(
    server: FakeProviderServer, provider: AnthropicProvider
) -> None:
    server.queue(fake.reply(["Blue."]))
    turns = [
        ChatTurn("system", "You are terse."),
        ChatTurn("user", "Hi"),
        ChatTurn("system", "Answer in English."),
        ChatTurn("user", "Still there?"),
        ChatTurn("assistant", ""),  # a reply stopped before its first token
        ChatTurn("user", "Name a colour."),
        ChatTurn("assistant", "Red."),
        ChatTurn("user", "Another."),
    ]
    await drain(provider, turns)
    [request] = server.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.body == {
        "model": "claude-test",
        "max_tokens": 1024,
        "system": "You are terse.\n\nAnswer in English.",
        "messages": [
            {"role": "user", "content": "Hi\n\nStill there?\n\nName a colour."},
            {"role": "assistant", "content": "Red."},
            {"role": "user", "content": "Another."},
        ],
        "stream": True,
    }
    # The 2.x SDK sends the key as a bearer token (1.x sent `x-api-key`); the API takes both.
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["anthropic-version"]
    assert request.headers["x-stainless-retry-count"] == "0"


async def test_sends_no_system_parameter_without_system_turns_and_uses_the_requested_max_tokens(
    server: FakeProviderServer, provider: AnthropicProvider
) -> None:
    server.queue(fake.reply(["Blue."]))
    await drain(
        provider, [ChatTurn("user", "Name a colour.")], params=GenerationParams("claude-x", 64)
    )
    [request] = server.requests
    assert "system" not in request.body
    assert request.body["max_tokens"] == 64
    assert request.body["model"] == "claude-x"


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "content_filter"),
    ],
)
async def test_stop_reasons_map_to_finish_reasons(
    server: FakeProviderServer, provider: AnthropicProvider, stop_reason: str, finish_reason: str
) -> None:
    server.queue(Stream(fake.message_events(["Well"], stop_reason=stop_reason)))
    assert (await drain(provider))[1].finish_reason == finish_reason


async def test_rate_limit_is_rate_limited_with_the_retry_after_seconds_and_not_retried_by_the_sdk(
    server: FakeProviderServer, provider: AnthropicProvider
) -> None:
    server.queue(
        fake.error(
            429, "rate_limit_error", "Number of request tokens exceeded", {"retry-after": "7"}
        )
    )
    with pytest.raises(ProviderRateLimited) as raised:
        await drain(provider)
    assert raised.value.retry_after == 7.0
    assert "rate_limit_error" in str(raised.value)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "kind"), [(500, "api_error"), (503, "api_error"), (529, "overloaded_error")]
)
async def test_server_errors_and_overload_are_unavailable_and_not_retried_by_the_sdk(
    server: FakeProviderServer, provider: AnthropicProvider, status: int, kind: str
) -> None:
    server.queue(fake.error(status, kind, "Overloaded"))
    with pytest.raises(ProviderUnavailable, match=f"HTTP {status}"):
        await drain(provider)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("status", "kind"), [(401, "authentication_error"), (403, "permission_error")]
)
async def test_a_rejected_key_is_an_auth_error(
    server: FakeProviderServer, provider: AnthropicProvider, status: int, kind: str
) -> None:
    server.queue(fake.error(status, kind, "invalid x-api-key"))
    with pytest.raises(ProviderAuthError) as raised:
        await drain(provider)
    assert KEY not in str(raised.value)


async def test_a_prompt_too_long_is_context_too_long(
    server: FakeProviderServer, provider: AnthropicProvider
) -> None:
    server.queue(fake.prompt_too_long())
    with pytest.raises(ContextTooLong, match="prompt is too long"):
        await drain(provider)


async def test_another_invalid_request_is_a_plain_provider_error(
    server: FakeProviderServer, provider: AnthropicProvider
) -> None:
    server.queue(fake.error(400, "invalid_request_error", "messages: field required"))
    with pytest.raises(ProviderError) as raised:
        await drain(provider)
    assert type(raised.value) is ProviderError
    assert not raised.value.retryable


async def test_a_slow_first_token_within_the_timeout_is_streamed(
    server: FakeProviderServer,
) -> None:
    server.queue(fake.reply(["Late", " but here."], first_delay=0.6))
    provider = AnthropicProvider(api_key=KEY, base_url=server.url, timeout=3.0)
    assert (await drain(provider))[0] == ["Late", " but here."]


async def test_no_first_token_within_the_timeout_is_a_timeout(server: FakeProviderServer) -> None:
    server.queue(fake.reply(["Too late."], first_delay=3.0))
    provider = AnthropicProvider(api_key=KEY, base_url=server.url, timeout=0.5)
    with pytest.raises(ProviderTimeout):
        await drain(provider)


async def test_a_stream_cut_in_the_middle_is_unavailable_after_the_text_so_far(
    server: FakeProviderServer, provider: AnthropicProvider
) -> None:
    server.queue(fake.reply(["One", " two", " three", " four"], cut_after=fake.TEXT_STARTS_AT + 2))
    received: list[str] = []
    with pytest.raises(StreamCut) as raised:
        async for item in provider.stream(TURNS, PARAMS, CancelToken()):
            assert isinstance(item, Delta)
            received.append(item.text)
    assert raised.value.retryable
    assert received == ["One", " two"]


async def test_a_stream_that_ends_without_a_stop_reason_is_cut(
    server: FakeProviderServer, provider: AnthropicProvider
) -> None:
    events = fake.message_events(["One", " two"])
    server.queue(Stream(events[: fake.TEXT_STARTS_AT + 2]))  # ends cleanly, but early
    with pytest.raises(StreamCut):
        await drain(provider)


@pytest.mark.parametrize(
    ("kind", "message", "error"),
    [
        ("overloaded_error", "Overloaded", ProviderUnavailable),
        ("api_error", "Internal server error", ProviderUnavailable),
        ("rate_limit_error", "Rate limited", ProviderRateLimited),
        ("invalid_request_error", "prompt is too long: 1 tokens > 0 maximum", ContextTooLong),
    ],
)
async def test_an_error_event_in_the_stream_is_the_typed_error(
    server: FakeProviderServer,
    provider: AnthropicProvider,
    kind: str,
    message: str,
    error: type[ProviderError],
) -> None:
    events = fake.message_events(["Half"])[: fake.TEXT_STARTS_AT + 1]
    server.queue(Stream([*events, fake.error_event(kind, message)]))
    with pytest.raises(error, match="error event in the stream"):
        await drain(provider)


async def test_cancelling_mid_stream_closes_the_connection_and_completes_cancelled(
    server: FakeProviderServer, provider: AnthropicProvider
) -> None:
    server.queue(
        Stream(
            fake.message_events([f"w{n} " for n in range(300)], message_id="msg_cut"), delay=0.01
        )
    )
    cancel = CancelToken()
    items: list[Delta | Completion] = []
    closed_before_completion = False
    async for item in provider.stream(TURNS, PARAMS, cancel):
        items.append(item)
        if len(items) == 2:
            cancel.cancel()
        if isinstance(item, Completion):  # the provider's generator is still alive here
            closed_before_completion = server.wait_for_disconnects(1, timeout=5.0)
    *deltas, completion = items
    assert [d.text for d in deltas if isinstance(d, Delta)] == ["w0 ", "w1 "]
    assert isinstance(completion, Completion)
    assert completion.finish_reason == "cancelled"
    assert completion.input_tokens == 21  # known from message_start
    assert completion.provider_response_id == "msg_cut"
    assert closed_before_completion


async def test_cancelled_before_the_start_sends_no_request(
    server: FakeProviderServer, provider: AnthropicProvider
) -> None:
    cancel = CancelToken()
    cancel.cancel()
    texts, completion = await drain(provider, cancel=cancel)
    assert (texts, completion.finish_reason) == ([], "cancelled")
    assert server.requests == []


async def test_a_refused_connection_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = AnthropicProvider(api_key=KEY, base_url=f"http://127.0.0.1:{port}", timeout=2.0)
    with pytest.raises(ProviderUnavailable) as raised:
        await drain(provider)
    assert raised.value.retryable
    assert not isinstance(raised.value, StreamCut)  # nothing had started
