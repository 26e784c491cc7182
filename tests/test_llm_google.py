"""The Google provider: the official `google-genai` SDK against a local fake of the Gemini API."""

import socket
from collections.abc import Iterator
from functools import partial

import pytest

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
from infra.llm.google_provider import GoogleProvider
from testbed.llm_fakes import google as fake
from testbed.llm_fakes.server import FakeProviderServer, Stream
from tests import provider_harness as harness
from tests.provider_harness import TURNS

KEY = "AIza-test-0123456789"
PARAMS = GenerationParams(model="gemini-test")


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as s:
        yield s


@pytest.fixture
def provider(server: FakeProviderServer) -> GoogleProvider:
    return GoogleProvider(api_key=KEY, base_url=server.url, timeout=5.0)


drain = partial(harness.drain, params=PARAMS)


async def test_streams_text_deltas_then_one_completion_with_usage(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    server.queue(
        Stream(
            fake.content_events(
                ["Teal", ", ", "mostly."],
                model_version="gemini-test-002",
                response_id="resp_abc",
                prompt_tokens=31,
            )
        )
    )
    texts, completion = await drain(provider)
    assert texts == ["Teal", ", ", "mostly."]
    assert completion == Completion(
        finish_reason="stop",
        input_tokens=31,
        output_tokens=3,
        provider="google",
        model="gemini-test-002",
        provider_response_id="resp_abc",
    )


async def test_sends_system_turns_as_the_system_instruction_and_assistant_turns_as_model(
    server: FakeProviderServer, provider: GoogleProvider
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
    await drain(
        provider, turns, params=GenerationParams("gemini-test", max_tokens=50, temperature=0.2)
    )
    [request] = server.requests
    assert (request.method, request.path) == (
        "POST",
        "/v1beta/models/gemini-test:streamGenerateContent?alt=sse",
    )
    assert request.body["systemInstruction"]["parts"] == [
        {"text": "You are terse.\n\nAnswer in English."}
    ]
    assert request.body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi\n\nStill there?\n\nName a colour."}]},
        {"role": "model", "parts": [{"text": "Red."}]},
        {"role": "user", "parts": [{"text": "Another."}]},
    ]
    assert request.body["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.2}
    assert set(request.body) == {"contents", "systemInstruction", "generationConfig"}
    assert request.headers["x-goog-api-key"] == KEY
    assert "key=" not in request.path  # the key travels in the header, never in the URL


async def test_sends_no_system_instruction_and_no_limits_when_there_are_none(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    server.queue(fake.reply(["Blue."]))
    await drain(provider, [ChatTurn("user", "Name a colour.")])
    [request] = server.requests
    assert "systemInstruction" not in request.body
    assert request.body.get("generationConfig", {}) == {}  # the SDK sends an empty one


async def test_thoughts_are_not_streamed_but_thinking_counts_as_output(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    thought = fake.data(
        {
            "candidates": [
                {"content": {"parts": [{"text": "Let me think", "thought": True}], "role": "model"}}
            ],
            "usageMetadata": {"promptTokenCount": 17, "thoughtsTokenCount": 40},
        }
    )
    server.queue(Stream([thought, *fake.content_events(["Blue."], thoughts_tokens=40)]))
    texts, completion = await drain(provider)
    assert texts == ["Blue."]
    assert (completion.input_tokens, completion.output_tokens) == (17, 41)


@pytest.mark.parametrize(
    ("reason", "finish_reason"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "error"),
    ],
)
async def test_finish_reasons_are_mapped(
    server: FakeProviderServer, provider: GoogleProvider, reason: str, finish_reason: str
) -> None:
    server.queue(Stream(fake.content_events(["Well"], finish_reason=reason)))
    assert (await drain(provider))[1].finish_reason == finish_reason


async def test_a_blocked_prompt_completes_as_content_filter_with_its_input_tokens(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    server.queue(fake.prompt_blocked(prompt_tokens=23))
    texts, completion = await drain(provider)
    assert (texts, completion.finish_reason) == ([], "content_filter")
    assert (completion.input_tokens, completion.output_tokens) == (23, 0)


async def test_quota_exceeded_is_rate_limited_after_the_retry_info_delay_and_not_retried_by_the_sdk(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    server.queue(fake.quota_exceeded(retry_delay="37s"))
    with pytest.raises(ProviderRateLimited) as raised:
        await drain(provider)
    assert raised.value.retry_after == 37.0
    assert "RESOURCE_EXHAUSTED" in str(raised.value)
    assert len(server.requests) == 1


async def test_a_retry_after_header_wins_over_retry_info(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    server.queue(fake.quota_exceeded(retry_delay="37s", headers={"Retry-After": "7"}))
    with pytest.raises(ProviderRateLimited) as raised:
        await drain(provider)
    assert raised.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        (500, "INTERNAL", ProviderUnavailable),
        (503, "UNAVAILABLE", ProviderUnavailable),
        (504, "DEADLINE_EXCEEDED", ProviderTimeout),
    ],
)
async def test_server_errors_are_retryable_and_not_retried_by_the_sdk(
    server: FakeProviderServer,
    provider: GoogleProvider,
    code: int,
    status: str,
    error: type[ProviderError],
) -> None:
    server.queue(fake.error(code, status, "The model is overloaded. Please try again later."))
    with pytest.raises(error, match=f"HTTP {code} {status}"):
        await drain(provider)
    assert len(server.requests) == 1


async def test_an_invalid_api_key_is_an_auth_error_though_google_answers_400(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    server.queue(fake.api_key_invalid())
    with pytest.raises(ProviderAuthError, match="API key not valid") as raised:
        await drain(provider)
    assert KEY not in str(raised.value)


@pytest.mark.parametrize(("code", "status"), [(401, "UNAUTHENTICATED"), (403, "PERMISSION_DENIED")])
async def test_unauthenticated_and_permission_denied_are_auth_errors(
    server: FakeProviderServer, provider: GoogleProvider, code: int, status: str
) -> None:
    server.queue(fake.error(code, status, "Method doesn't allow unregistered callers."))
    with pytest.raises(ProviderAuthError):
        await drain(provider)


async def test_an_input_over_the_token_limit_is_context_too_long(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    server.queue(fake.input_too_long())
    with pytest.raises(ContextTooLong, match="exceeds the maximum number of tokens"):
        await drain(provider)


async def test_another_invalid_argument_is_a_plain_provider_error(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    server.queue(fake.error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: required"))
    with pytest.raises(ProviderError) as raised:
        await drain(provider)
    assert type(raised.value) is ProviderError


async def test_a_slow_first_token_within_the_timeout_is_streamed(
    server: FakeProviderServer,
) -> None:
    server.queue(fake.reply(["Late", " but here."], first_delay=0.6))
    provider = GoogleProvider(api_key=KEY, base_url=server.url, timeout=3.0)
    assert (await drain(provider))[0] == ["Late", " but here."]


async def test_no_first_token_within_the_timeout_is_a_timeout(server: FakeProviderServer) -> None:
    server.queue(fake.reply(["Too late."], first_delay=3.0))
    provider = GoogleProvider(api_key=KEY, base_url=server.url, timeout=0.5)
    with pytest.raises(ProviderTimeout):
        await drain(provider)
    assert len(server.requests) == 1


async def test_a_stream_cut_in_the_middle_is_unavailable_and_not_resent_by_the_sdk(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    server.queue(fake.reply(["One", " two", " three", " four"], cut_after=2))
    received: list[str] = []
    with pytest.raises(StreamCut) as raised:
        async for item in provider.stream(TURNS, PARAMS, CancelToken()):
            assert isinstance(item, Delta)
            received.append(item.text)
    assert raised.value.retryable
    assert received == ["One", " two"]
    # The SDK's automatic continuation would have sent the request again.
    assert len(server.requests) == 1


async def test_a_stream_cut_before_any_text_is_not_resent_by_the_sdk(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    server.queue(fake.reply(["One", " two"], cut_after=0), fake.reply(["Resent!"]))
    with pytest.raises(ProviderUnavailable):
        await drain(provider)
    assert len(server.requests) == 1


async def test_a_stream_that_ends_without_a_finish_reason_is_cut(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    server.queue(Stream(fake.content_events(["One", " two", " three"])[:2]))
    with pytest.raises(StreamCut):
        await drain(provider)
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        (503, "UNAVAILABLE", ProviderUnavailable),
        (500, "INTERNAL", ProviderUnavailable),
        (429, "RESOURCE_EXHAUSTED", ProviderRateLimited),
    ],
)
async def test_an_error_in_the_stream_is_the_typed_error(
    server: FakeProviderServer,
    provider: GoogleProvider,
    code: int,
    status: str,
    error: type[ProviderError],
) -> None:
    events = fake.content_events(["Half", " way"])[:1]
    server.queue(Stream([*events, fake.error_event(code, status, "The model is overloaded.")]))
    with pytest.raises(error, match=status):
        await drain(provider)


async def test_cancelling_mid_stream_closes_the_connection_and_completes_cancelled(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    server.queue(
        Stream(
            fake.content_events(
                [f"w{n} " for n in range(300)], response_id="resp_cut", prompt_tokens=29
            ),
            delay=0.01,
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
    assert (completion.input_tokens, completion.output_tokens) == (29, 2)  # running totals
    assert completion.provider_response_id == "resp_cut"
    assert closed_before_completion


async def test_a_cancel_on_the_chunk_that_finishes_the_reply_keeps_it_finished(
    server: FakeProviderServer, provider: GoogleProvider
) -> None:
    server.queue(fake.reply(["Blue", " and green."]))  # the last chunk carries STOP
    cancel = CancelToken()
    items: list[Delta | Completion] = []
    async for item in provider.stream(TURNS, PARAMS, cancel):
        items.append(item)
        if isinstance(item, Delta) and item.text == " and green.":
            cancel.cancel()
    completion = items[-1]
    assert isinstance(completion, Completion)
    assert (completion.finish_reason, completion.output_tokens) == ("stop", 2)


async def test_cancelled_before_the_start_sends_no_request(
    server: FakeProviderServer, provider: GoogleProvider
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
    provider = GoogleProvider(api_key=KEY, base_url=f"http://127.0.0.1:{port}", timeout=2.0)
    with pytest.raises(ProviderUnavailable) as raised:
        await drain(provider)
    assert raised.value.retryable
    assert not isinstance(raised.value, StreamCut)  # nothing had started
