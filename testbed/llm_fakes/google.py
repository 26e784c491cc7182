"""Google's Gemini API as `FakeProviderServer` plays it: `streamGenerateContent?alt=sse` chunks
(`data:` lines of GenerateContentResponse JSON, CRLF-separated as the API sends them, usage as
running totals on every chunk) and `google.rpc.Status` error bodies `{"error": {...}}`.

Point `genai.Client(http_options=HttpOptions(base_url=server.url))` at the server: the SDK posts
to `/<api_version>/models/<model>:streamGenerateContent?alt=sse`, and embeddings to
`/<api_version>/models/<model>:batchEmbedContents` (`embeddings_answer`).
"""

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from testbed.llm_fakes.server import Error, Json, Recorded, Stream


def data(payload: dict[str, Any]) -> bytes:
    """One event as the Gemini API writes it: a `data:` line and a blank line, CRLF."""
    return f"data: {json.dumps(payload, separators=(',', ':'))}\r\n\r\n".encode()


def content_events(
    texts: list[str],
    *,
    model_version: str = "gemini-test-001",
    response_id: str = "resp_fake01",
    prompt_tokens: int = 17,
    thoughts_tokens: int = 0,
    finish_reason: str = "STOP",
) -> list[bytes]:
    """A reply streamed as `texts` (one chunk each, one candidate token per chunk); the last
    chunk carries `finishReason`."""
    pieces = texts or [""]
    events = []
    for n, text in enumerate(pieces, start=1):
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        }
        if n == len(pieces):
            candidate["finishReason"] = finish_reason
        usage = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": n if texts else 0,
            "totalTokenCount": prompt_tokens + thoughts_tokens + (n if texts else 0),
        }
        if thoughts_tokens:
            usage["thoughtsTokenCount"] = thoughts_tokens
        events.append(
            data(
                {
                    "candidates": [candidate],
                    "usageMetadata": usage,
                    "modelVersion": model_version,
                    "responseId": response_id,
                }
            )
        )
    return events


def reply(texts: list[str], **stream: Any) -> Stream:
    """`content_events(texts)` as a `Stream`; keyword arguments go to `Stream` (delays, cuts)."""
    return Stream(content_events(texts), **stream)


def prompt_blocked(reason: str = "PROHIBITED_CONTENT", prompt_tokens: int = 17) -> Stream:
    """The prompt itself refused: `promptFeedback.blockReason` and no candidates."""
    return Stream(
        [
            data(
                {
                    "promptFeedback": {"blockReason": reason},
                    "usageMetadata": {
                        "promptTokenCount": prompt_tokens,
                        "totalTokenCount": prompt_tokens,
                    },
                    "modelVersion": "gemini-test-001",
                    "responseId": "resp_blocked",
                }
            )
        ]
    )


def error_body(
    code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return {"error": error}


def error(
    code: int,
    status: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Error:
    """An error response, e.g. `error(503, "UNAVAILABLE", "The model is overloaded.")`."""
    return Error(code, error_body(code, status, message, details), headers or {})


def error_event(code: int, status: str, message: str) -> bytes:
    """An error inside a stream that already said 200."""
    return data(error_body(code, status, message))


def api_key_invalid() -> Error:
    """What the Gemini API answers a wrong key with: a 400, not a 401."""
    return error(
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        ],
    )


def quota_exceeded(retry_delay: str = "37s", headers: dict[str, str] | None = None) -> Error:
    """A 429 whose `google.rpc.RetryInfo` says when to come back."""
    return error(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
        [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"quotaMetric": "generate_content_free_tier_requests"}],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        ],
        headers,
    )


def input_too_long(tokens: int = 1_048_577, limit: int = 1_048_576) -> Error:
    return error(
        400,
        "INVALID_ARGUMENT",
        f"The input token count ({tokens}) exceeds the maximum number of tokens allowed ({limit}).",
    )


EMBEDDING_DIMENSIONS = 3072
"""gemini-embedding-001's width."""
EMBED_BATCH_LIMIT = 100
"""The most requests the API takes in one batchEmbedContents."""


def embed_path(model: str, api_version: str = "v1beta") -> str:
    return f"/{api_version}/models/{model}:batchEmbedContents"


def embedding_values(text: str, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """The fake's vector for `text` as the API answers it: the first `dimensions` values of one
    full-width vector of length 1 (random but the same for the same text), so a shortened
    vector is not normalised, as Gemini's are not."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    full = np.random.default_rng(seed).standard_normal(EMBEDDING_DIMENSIONS)
    return [float(v) for v in (full / np.linalg.norm(full))[:dimensions]]


def embeddings_body(vectors: Sequence[Sequence[float]]) -> dict[str, Any]:
    return {"embeddings": [{"values": list(v)} for v in vectors]}


def embeddings_answer(request: Recorded) -> Json | Error:
    """What the Gemini API answers batchEmbedContents: `embedding_values` of every request's
    text, as wide as its `outputDimensionality` asks; more than 100 requests are refused."""
    body = request.body if isinstance(request.body, dict) else {}
    requests = body.get("requests", [])
    if len(requests) > EMBED_BATCH_LIMIT:
        return error(
            400,
            "INVALID_ARGUMENT",
            "* BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch\n",
        )
    vectors = [
        embedding_values(
            "".join(p.get("text", "") for p in r["content"]["parts"]),
            int(r.get("outputDimensionality") or EMBEDDING_DIMENSIONS),
        )
        for r in requests
    ]
    return Json(embeddings_body(vectors))
