"""The OpenAI Chat Completions wire format, for `FakeProviderServer` (and Azure OpenAI's variant).

A streamed reply is `data: {chat.completion.chunk}` events: the first delta carries the role, then
one content delta per token, then a chunk whose choice has a `finish_reason` and an empty delta;
with `stream_options.include_usage` every chunk has `"usage": null` and one more chunk with empty
`choices` carries the usage; `data: [DONE]` ends the stream. Errors are JSON bodies
`{"error": {"message", "type", "param", "code"}}`, with the status, as the API sends them.
Azure adds a first chunk with empty `choices`, empty `id` and `model` and the prompt's filter
results, and `content_filter_results` in every choice; its errors often carry only `code` and
`message`.

Embeddings (`POST /v1/embeddings`, Azure: `/openai/deployments/<name>/embeddings`) answer a
`list` of `embedding` objects numbered by `index`, each vector a JSON array of floats or, for
`encoding_format: base64` (what the SDK asks for by default), the base64 of little-endian
float32s, with `usage.prompt_tokens`. `embeddings_answer` computes them from the request.
"""

import base64
import hashlib
import math
import random
import struct
from collections.abc import Sequence
from typing import Any

from testbed.llm_fakes.server import Error, Json, Recorded, Stream, sse

CHAT_PATH = "/v1/chat/completions"
MODEL = "gpt-4o-mini-2024-07-18"
"""What OpenAI reports for a request that asked for `gpt-4o-mini`."""
COMPLETION_ID = "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT"
CREATED = 1741569952
FINGERPRINT = "fp_06737a9306"

_SAFE = {"filtered": False, "severity": "safe"}
FILTER_RESULTS_SAFE = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}


def azure_path(deployment: str, api_version: str) -> str:
    """Where the SDK posts an Azure chat completion for `deployment`."""
    return f"/openai/deployments/{deployment}/chat/completions?api-version={api_version}"


def chunk(
    choices: list[dict[str, Any]],
    *,
    model: str = MODEL,
    completion_id: str = COMPLETION_ID,
    usage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
        "usage": usage,
    }


def choice(
    delta: dict[str, Any], finish_reason: str | None = None, *, azure: bool = False
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "index": 0,
        "delta": delta,
        "logprobs": None,
        "finish_reason": finish_reason,
    }
    if azure and finish_reason is None:
        body["content_filter_results"] = FILTER_RESULTS_SAFE
    return body


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_events(
    pieces: Sequence[str],
    *,
    finish_reason: str = "stop",
    prompt_tokens: int = 19,
    model: str = MODEL,
    completion_id: str = COMPLETION_ID,
    include_usage: bool = True,
    azure: bool = False,
) -> list[bytes]:
    """A whole streamed reply, `data: [DONE]` included; the usage chunk when `include_usage`."""

    def event(choices: list[dict[str, Any]], counts: dict[str, Any] | None = None) -> bytes:
        body = chunk(choices, model=model, completion_id=completion_id, usage=counts)
        if not include_usage:
            del body["usage"]
        return sse(body)

    events = []
    if azure:
        events.append(sse(azure_prompt_filter_chunk()))
    events.append(event([choice({"role": "assistant", "content": "", "refusal": None})]))
    events += [event([choice({"content": piece}, azure=azure)]) for piece in pieces]
    events.append(event([choice({}, finish_reason)]))
    if include_usage:
        events.append(event([], usage(prompt_tokens, len(pieces))))
    events.append(sse("[DONE]"))
    return events


def chat_stream(
    pieces: Sequence[str],
    *,
    first_delay: float = 0.0,
    delay: float = 0.0,
    cut_after: int | None = None,
    **reply: Any,
) -> Stream:
    """A 200 streamed reply of `pieces` (`reply` options as for `chat_events`)."""
    return Stream(chat_events(pieces, **reply), first_delay, delay, cut_after)


def azure_prompt_filter_chunk() -> dict[str, Any]:
    """Azure's first chunk: no choices, no id or model, the prompt's content filter results."""
    return {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [
            {"prompt_index": 0, "content_filter_results": FILTER_RESULTS_SAFE}
        ],
    }


def error_body(
    message: str, type: str | None, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_event(message: str, type: str | None, code: str | None = None) -> bytes:
    """An error inside a 200 stream, as OpenAI sends when a reply fails after it started."""
    return sse(error_body(message, type, code))


def invalid_api_key(key: str = "sk-wrong") -> Error:
    return Error(
        401,
        error_body(
            f"Incorrect API key provided: {key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
    )


def rate_limited(retry_after: str | None = "20", retry_after_ms: str | None = None) -> Error:
    """429 for requests per minute, with OpenAI's rate-limit headers."""
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "20s",
    }
    if retry_after is not None:
        headers["retry-after"] = retry_after
    if retry_after_ms is not None:
        headers["retry-after-ms"] = retry_after_ms
    return Error(
        429,
        error_body(
            f"Rate limit reached for gpt-4o-mini in organization org-parley on requests per min "
            f"(RPM): Limit 500, Used 500, Requested 1. Please try again in {retry_after or 20}s. "
            "Visit https://platform.openai.com/account/rate-limits to learn more.",
            "requests",
            "rate_limit_exceeded",
        ),
        headers,
    )


def insufficient_quota() -> Error:
    return Error(
        429,
        error_body(
            "You exceeded your current quota, please check your plan and billing details. For "
            "more information on this error, read the docs: "
            "https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            "insufficient_quota",
        ),
    )


def server_error(status: int = 500) -> Error:
    return Error(
        status,
        error_body(
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
        ),
    )


def context_length_exceeded(limit: int = 128000, asked: int = 130532) -> Error:
    return Error(
        400,
        error_body(
            f"This model's maximum context length is {limit} tokens. However, your messages "
            f"resulted in {asked} tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
            "messages",
        ),
    )


def model_not_found(model: str) -> Error:
    return Error(
        404,
        error_body(
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
    )


def azure_access_denied() -> Error:
    return Error(
        401,
        {
            "error": {
                "code": "401",
                "message": "Access denied due to invalid subscription key or wrong API endpoint. "
                "Make sure to provide a valid key for an active subscription and use a correct "
                "regional API endpoint for your resource.",
            }
        },
    )


def azure_rate_limited(seconds: int = 6, api_version: str = "2024-10-21") -> Error:
    return Error(
        429,
        {
            "error": {
                "code": "429",
                "message": "Requests to the ChatCompletions_Create Operation under Azure OpenAI "
                f"API version {api_version} have exceeded token rate limit of your current "
                f"OpenAI S0 pricing tier. Please retry after {seconds} seconds. Please go here: "
                "https://aka.ms/oai/quotaincrease if you would like to further increase the "
                "default rate limit.",
            }
        },
        {"retry-after": str(seconds), "retry-after-ms": str(seconds * 1000)},
    )


def azure_prompt_filtered() -> Error:
    """400: the prompt tripped Azure's content filter (nothing was generated)."""
    hate = {"filtered": True, "severity": "high"}
    return Error(
        400,
        {
            "error": {
                "message": "The response was filtered due to the prompt triggering Azure "
                "OpenAI's content management policy. Please modify your prompt and retry. To "
                "learn more about our content filtering policies please read our documentation: "
                "https://go.microsoft.com/fwlink/?linkid=2198766",
                "type": None,
                "param": "prompt",
                "code": "content_filter",
                "status": 400,
                "innererror": {
                    "code": "ResponsibleAIPolicyViolation",
                    "content_filter_result": {**FILTER_RESULTS_SAFE, "hate": hate},
                },
            }
        },
    )


EMBEDDINGS_PATH = "/v1/embeddings"
EMBEDDING_MODEL = "text-embedding-3-small"
EMBEDDING_DIMENSIONS = 1536


def embedding_vector(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The fake's vector for `text`: random but the same for the same text, of length 1."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def embeddings_body(
    vectors: Sequence[Sequence[float]],
    *,
    prompt_tokens: int,
    encoding_format: str = "float",
    model: str = EMBEDDING_MODEL,
) -> dict[str, Any]:
    def encoded(vector: Sequence[float]) -> list[float] | str:
        if encoding_format == "base64":
            return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        return list(vector)

    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encoded(v)}
            for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def embeddings_answer(request: Recorded) -> Json:
    """What OpenAI answers an embeddings request: `embedding_vector` of every input, as wide as
    its `dimensions` asks, in the `encoding_format` it asks for."""
    body = request.body if isinstance(request.body, dict) else {}
    texts = body.get("input", [])
    texts = [texts] if isinstance(texts, str) else texts
    dimensions = int(body.get("dimensions") or EMBEDDING_DIMENSIONS)
    return Json(
        embeddings_body(
            [embedding_vector(text, dimensions) for text in texts],
            prompt_tokens=sum(len(text.split()) for text in texts),
            encoding_format=body.get("encoding_format") or "float",
            model=str(body.get("model") or EMBEDDING_MODEL),
        )
    )
