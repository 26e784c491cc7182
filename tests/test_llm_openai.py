"""The OpenAI-protocol providers, through the real `openai` SDK, against a local server speaking
the Chat Completions streaming protocol (OpenAI's, Azure's and a compatible server's flavours)."""

from collections.abc import Iterator

import pytest

from infra.llm.base import (
    CancelToken,
    ChatTurn,
    Completion,
    ContentFiltered,
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
from infra.llm.openai_provider import AzureOpenAIProvider, OpenAIProvider
from testbed.llm_fakes import openai as wire
from testbed.llm_fakes.server import Error, FakeProviderServer, Stream, sse

TURNS = [
    ChatTurn("system", "You are terse."),
    ChatTurn("user", "Say hello."),
    ChatTurn("assistant", "Hello."),
    ChatTurn("user", "Again, to the world."),
]
PARAMS = GenerationParams(model="gpt-4o-mini")
API_VERSION = "2024-10-21"


@pytest.fixture
def server() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def openai_at(server: FakeProviderServer, timeout: float = 5.0) -> OpenAIProvider:
    """OpenAI as configured with OPENAI_BASE_URL pointing at the fake server."""
    return OpenAIProvider(
        "openai",
        api_key="sk-test-key",
        base_url=f"{server.url}/v1",
        timeout=timeout,
        max_tokens_param="max_completion_tokens",
    )


def azure_at(server: FakeProviderServer) -> AzureOpenAIProvider:
    return AzureOpenAIProvider(
        azure_endpoint=server.url, api_version=API_VERSION, api_key="azure-key", timeout=5.0
    )


async def collect(
    provider: OpenAIProvider | AzureOpenAIProvider,
    params: GenerationParams = PARAMS,
    cancel: CancelToken | None = None,
    texts: list[str] | None = None,
) -> tuple[list[str], Completion]:
    """Run one reply: its deltas' texts (also into `texts`, for replies that end in an error)
    and its completion, checking that exactly one completion comes last."""
    texts = [] if texts is None else texts
    completions: list[Completion] = []
    async for item in provider.stream(TURNS, params, cancel or CancelToken()):
        assert not completions, "nothing may follow the completion"
        if isinstance(item, Delta):
            texts.append(item.text)
        else:
            completions.append(item)
    assert len(completions) == 1
    return texts, completions[0]


# -- a reply -------------------------------------------------------------------------------------


async def test_streams_the_text_then_one_completion_with_the_servers_usage_model_and_id(
    server: FakeProviderServer,
) -> None:
    server.queue(wire.chat_stream(["Hello", ",", " world", "."], prompt_tokens=31))

    texts, completion = await collect(openai_at(server))

    assert texts == ["Hello", ",", " world", "."]
    assert completion == Completion(
        finish_reason="stop",
        input_tokens=31,
        output_tokens=4,
        provider="openai",
        model=wire.MODEL,
        provider_response_id=wire.COMPLETION_ID,
    )


async def test_sends_the_turns_as_messages_with_streaming_usage_and_the_limits(
    server: FakeProviderServer,
) -> None:
    server.queue(wire.chat_stream(["Hi"]))

    await collect(
        openai_at(server), GenerationParams("gpt-4o-mini", max_tokens=50, temperature=0.2)
    )

    [request] = server.requests
    assert (request.method, request.path) == ("POST", wire.CHAT_PATH)
    assert request.body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Say hello."},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Again, to the world."},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 50,
        "temperature": 0.2,
    }


async def test_leaves_out_the_limits_that_are_not_set(server: FakeProviderServer) -> None:
    server.queue(wire.chat_stream(["Hi"]))

    await collect(openai_at(server))

    body = server.requests[0].body
    assert not {"max_tokens", "max_completion_tokens", "temperature"} & set(body)


async def test_sends_the_api_key_as_a_bearer_token(server: FakeProviderServer) -> None:
    server.queue(wire.chat_stream(["Hi"]))

    await collect(openai_at(server))

    assert server.requests[0].headers["authorization"] == "Bearer sk-test-key"


async def test_reports_the_finish_reason_length(server: FakeProviderServer) -> None:
    server.queue(wire.chat_stream(["Once", " upon"], finish_reason="length"))

    _, completion = await collect(openai_at(server))

    assert completion.finish_reason == "length"


async def test_a_slow_first_token_is_waited_for(server: FakeProviderServer) -> None:
    # The timeout bounds each silence, not the whole reply: this one takes longer than it.
    server.queue(wire.chat_stream(["Slow", " but", " sure"], first_delay=0.6, delay=0.15))

    texts, completion = await collect(openai_at(server, timeout=1.0))

    assert texts == ["Slow", " but", " sure"]
    assert completion.finish_reason == "stop"


# -- errors --------------------------------------------------------------------------------------


async def test_a_wrong_api_key_is_an_auth_error(server: FakeProviderServer) -> None:
    server.queue(wire.invalid_api_key())

    with pytest.raises(ProviderAuthError, match="invalid_api_key"):
        await collect(openai_at(server))


async def test_a_rate_limit_carries_the_retry_after_seconds(server: FakeProviderServer) -> None:
    server.queue(wire.rate_limited(retry_after="20"))

    with pytest.raises(ProviderRateLimited) as raised:
        await collect(openai_at(server))

    assert raised.value.retry_after == 20.0
    assert raised.value.retryable


async def test_a_rate_limit_prefers_retry_after_ms(server: FakeProviderServer) -> None:
    server.queue(wire.rate_limited(retry_after="2", retry_after_ms="1500"))

    with pytest.raises(ProviderRateLimited) as raised:
        await collect(openai_at(server))

    assert raised.value.retry_after == 1.5


async def test_an_exhausted_quota_is_an_auth_error_not_a_rate_limit(
    server: FakeProviderServer,
) -> None:
    server.queue(wire.insufficient_quota())

    with pytest.raises(ProviderAuthError, match="insufficient_quota"):
        await collect(openai_at(server))


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_error_is_unavailable(server: FakeProviderServer, status: int) -> None:
    server.queue(wire.server_error(status))

    with pytest.raises(ProviderUnavailable, match=f"HTTP {status}"):
        await collect(openai_at(server))


async def test_the_sdk_does_not_retry_the_router_does(server: FakeProviderServer) -> None:
    server.queue(wire.server_error(503), wire.chat_stream(["too late"]))

    with pytest.raises(ProviderUnavailable):
        await collect(openai_at(server))

    assert len(server.requests) == 1


async def test_a_context_that_is_too_long_is_context_too_long(server: FakeProviderServer) -> None:
    server.queue(wire.context_length_exceeded())

    with pytest.raises(ContextTooLong, match="maximum context length"):
        await collect(openai_at(server))


async def test_an_unknown_model_is_an_error_that_is_not_retried(server: FakeProviderServer) -> None:
    server.queue(wire.model_not_found("gpt-nope"))

    with pytest.raises(ProviderError, match="model_not_found") as raised:
        await collect(openai_at(server), GenerationParams("gpt-nope"))

    assert not raised.value.retryable


async def test_a_server_that_cannot_be_reached_is_unavailable() -> None:
    with FakeProviderServer() as gone:
        base_url = f"{gone.url}/v1"
    provider = OpenAIProvider(api_key="sk-test-key", base_url=base_url, timeout=2.0)

    with pytest.raises(ProviderUnavailable) as raised:
        await collect(provider)
    assert raised.value.retryable
    assert not isinstance(raised.value, StreamCut)  # nothing had started


async def test_silence_longer_than_the_timeout_is_a_timeout(server: FakeProviderServer) -> None:
    server.queue(wire.chat_stream(["late"], first_delay=1.5))

    with pytest.raises(ProviderTimeout):
        await collect(openai_at(server, timeout=0.5))


async def test_a_stream_cut_in_the_middle_is_unavailable_after_the_partial_text(
    server: FakeProviderServer,
) -> None:
    # role chunk, "Hello", ", " … then the connection drops without the final chunk
    server.queue(wire.chat_stream(["Hello", ", ", "world"], cut_after=3))
    texts: list[str] = []

    with pytest.raises(StreamCut) as raised:
        await collect(openai_at(server), texts=texts)

    assert raised.value.retryable
    assert texts == ["Hello", ", "]


async def test_a_stream_that_ends_without_a_finish_reason_is_cut(
    server: FakeProviderServer,
) -> None:
    events = wire.chat_events(["Hello", " there"])[:3]  # role, two deltas; a clean end
    server.queue(Stream(events))
    texts: list[str] = []

    with pytest.raises(StreamCut):
        await collect(openai_at(server), texts=texts)

    assert texts == ["Hello", " there"]


async def test_a_connection_lost_after_the_finish_reason_completes_with_estimated_usage(
    server: FakeProviderServer,
) -> None:
    # role, two deltas, the finish chunk; the usage chunk and [DONE] never come
    server.queue(wire.chat_stream(["Hello", " there"], cut_after=4))

    texts, completion = await collect(openai_at(server))

    assert texts == ["Hello", " there"]
    assert completion.finish_reason == "stop"
    assert completion.output_tokens == 2
    prompt_chars = sum(len(turn.content) for turn in TURNS)
    assert completion.input_tokens == -(-prompt_chars // 4)


@pytest.mark.parametrize(
    ("kind", "code", "error"),
    [
        ("server_error", None, ProviderUnavailable),
        ("tokens", "rate_limit_exceeded", ProviderRateLimited),
        ("invalid_request_error", "context_length_exceeded", ContextTooLong),
    ],
)
async def test_an_error_event_inside_the_stream_is_typed(
    server: FakeProviderServer, kind: str, code: str | None, error: type[ProviderError]
) -> None:
    events = wire.chat_events(["Hello", " there"])[:3]
    events.append(wire.error_event("Something went wrong mid-reply.", kind, code))
    server.queue(Stream(events))
    texts: list[str] = []

    with pytest.raises(error, match="Something went wrong mid-reply"):
        await collect(openai_at(server), texts=texts)

    assert texts == ["Hello", " there"]


async def test_a_content_filter_after_some_text_ends_the_reply_with_that_reason(
    server: FakeProviderServer,
) -> None:
    server.queue(wire.chat_stream(["Well", ", "], finish_reason="content_filter"))

    texts, completion = await collect(openai_at(server))

    assert texts == ["Well", ", "]
    assert completion.finish_reason == "content_filter"
    assert completion.output_tokens == 2  # the server's usage: the partial reply is billed


async def test_a_content_filter_before_any_text_is_content_filtered(
    server: FakeProviderServer,
) -> None:
    server.queue(wire.chat_stream([], finish_reason="content_filter"))

    with pytest.raises(ContentFiltered):
        await collect(openai_at(server))


# -- cancelling ----------------------------------------------------------------------------------


async def test_cancelling_closes_the_upstream_connection_and_finishes_cancelled(
    server: FakeProviderServer,
) -> None:
    words = [f" word{n}" for n in range(200)]
    server.queue(wire.chat_stream(words, delay=0.01))
    cancel = CancelToken()
    texts: list[str] = []
    completions: list[Completion] = []

    async for item in openai_at(server).stream(TURNS, PARAMS, cancel):
        if isinstance(item, Delta):
            texts.append(item.text)
            if len(texts) == 3:
                cancel.cancel()
        else:
            completions.append(item)

    assert texts == words[:3]
    [completion] = completions
    assert completion.finish_reason == "cancelled"
    assert completion.output_tokens == 3  # no usage chunk: the chunks seen
    assert completion.input_tokens > 0  # estimated from the prompt
    assert (completion.model, completion.provider_response_id) == (wire.MODEL, wire.COMPLETION_ID)
    assert server.wait_for_disconnects(1, timeout=5.0)


async def test_a_reply_cancelled_before_it_starts_sends_nothing(server: FakeProviderServer) -> None:
    cancel = CancelToken()
    cancel.cancel()

    texts, completion = await collect(openai_at(server), cancel=cancel)

    assert texts == []
    assert (completion.finish_reason, completion.input_tokens) == ("cancelled", 0)
    assert server.requests == []


# -- OpenAI-compatible servers -------------------------------------------------------------------


async def test_a_compatible_server_answers_under_its_own_name_with_max_tokens(
    server: FakeProviderServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-our-real-key")
    model = "Qwen/Qwen2.5-0.5B-Instruct"
    server.queue(wire.chat_stream(["Hi", "!"], model=model, completion_id="chatcmpl-7f3e"))
    vllm = OpenAIProvider("vllm", base_url=f"{server.url}/v1", timeout=5.0)

    texts, completion = await collect(vllm, GenerationParams(model, max_tokens=16))

    assert texts == ["Hi", "!"]
    assert (completion.provider, completion.model) == ("vllm", model)
    assert completion.provider_response_id == "chatcmpl-7f3e"
    request = server.requests[0]
    assert request.body["max_tokens"] == 16
    assert "max_completion_tokens" not in request.body
    assert "sk-our-real-key" not in request.headers.get("authorization", "")


async def test_a_compatible_server_without_usage_reports_estimated_usage(
    server: FakeProviderServer,
) -> None:
    server.queue(wire.chat_stream(["one", " two", " three"], include_usage=False))
    llama = OpenAIProvider(
        "llamacpp", base_url=f"{server.url}/v1", timeout=5.0, include_usage=False
    )

    _, completion = await collect(llama, GenerationParams("gemma-3-270m"))

    assert "stream_options" not in server.requests[0].body
    assert completion.output_tokens == 3
    assert completion.input_tokens == -(-sum(len(turn.content) for turn in TURNS) // 4)


async def test_a_compatible_server_says_context_too_long_in_words(
    server: FakeProviderServer,
) -> None:
    server.queue(
        Error(
            400,
            {
                "error": {
                    "code": 400,
                    "message": "the request exceeds the available context size, try increasing it",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": 9000,
                    "n_ctx": 8192,
                }
            },
        )
    )
    llama = OpenAIProvider("llamacpp", base_url=f"{server.url}/v1", timeout=5.0)

    with pytest.raises(ContextTooLong):
        await collect(llama, GenerationParams("gemma-3-270m"))


# -- Azure OpenAI --------------------------------------------------------------------------------


async def test_azure_posts_to_the_deployment_with_the_api_version_and_api_key(
    server: FakeProviderServer,
) -> None:
    server.queue(wire.chat_stream(["Hi", " there"], model="gpt-4o-2024-11-20", azure=True))

    texts, completion = await collect(
        azure_at(server), GenerationParams("chat-prod", max_tokens=30)
    )

    assert texts == ["Hi", " there"]
    request = server.requests[0]
    assert request.path == wire.azure_path("chat-prod", API_VERSION)
    assert request.headers["api-key"] == "azure-key"
    assert "authorization" not in request.headers
    assert request.body["max_completion_tokens"] == 30
    # Azure's leading filter chunk has no id or model: the real ones are reported.
    assert completion.provider == "azure"
    assert completion.model == "gpt-4o-2024-11-20"
    assert completion.provider_response_id == wire.COMPLETION_ID


async def test_azure_skips_filter_annotations_without_a_delta(server: FakeProviderServer) -> None:
    events = wire.chat_events(["Hi", " there"], azure=True)
    annotation = {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [
            {
                "index": 0,
                "finish_reason": None,
                "content_filter_results": wire.FILTER_RESULTS_SAFE,
                "content_filter_offsets": {"check_offset": 0, "start_offset": 0, "end_offset": 8},
            }
        ],
        "usage": None,
    }
    events.insert(4, sse(annotation))
    server.queue(Stream(events))

    texts, completion = await collect(azure_at(server), GenerationParams("chat-prod"))

    assert texts == ["Hi", " there"]
    assert completion.finish_reason == "stop"


async def test_azure_entra_id_tokens_go_as_bearer_tokens(server: FakeProviderServer) -> None:
    server.queue(wire.chat_stream(["Hi"], azure=True))
    azure = AzureOpenAIProvider(
        azure_endpoint=server.url,
        api_version=API_VERSION,
        azure_ad_token_provider=lambda: "entra-token",
        timeout=5.0,
    )

    await collect(azure, GenerationParams("chat-prod"))

    assert server.requests[0].headers["authorization"] == "Bearer entra-token"


async def test_azure_access_denied_is_an_auth_error(server: FakeProviderServer) -> None:
    server.queue(wire.azure_access_denied())

    with pytest.raises(ProviderAuthError, match="Access denied"):
        await collect(azure_at(server), GenerationParams("chat-prod"))


async def test_azure_rate_limit_carries_retry_after(server: FakeProviderServer) -> None:
    server.queue(wire.azure_rate_limited(seconds=6))

    with pytest.raises(ProviderRateLimited) as raised:
        await collect(azure_at(server), GenerationParams("chat-prod"))

    assert raised.value.retry_after == 6.0


async def test_azure_filtering_the_prompt_is_content_filtered(server: FakeProviderServer) -> None:
    server.queue(wire.azure_prompt_filtered())

    with pytest.raises(ContentFiltered, match="content management policy"):
        await collect(azure_at(server), GenerationParams("chat-prod"))
