"""Anthropic's Messages API as `FakeProviderServer` plays it: a streamed message as the API sends
it (named events, `ping` included) and error bodies `{"type": "error", "error": {...}}`.

Point `Anthropic(base_url=server.url)` at the server: the SDK posts to `/v1/messages`.
"""

from typing import Any

from testbed.llm_fakes.server import Error, Stream, sse

TEXT_STARTS_AT = 3
"""Events before the first text delta (message_start, content_block_start, ping): a stream cut
after `TEXT_STARTS_AT + n` events has delivered n text deltas."""


def message_events(
    texts: list[str],
    *,
    model: str = "claude-test",
    message_id: str = "msg_fake01",
    input_tokens: int = 21,
    output_tokens: int | None = None,
    stop_reason: str = "end_turn",
) -> list[bytes]:
    """One assistant message streamed as `texts`, then its stop reason and usage."""
    return [
        sse(
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": input_tokens,
                        "cache_creation_input_tokens": 0,
                        "cache_read_input_tokens": 0,
                        "output_tokens": 1,
                    },
                },
            },
            event="message_start",
        ),
        sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            event="content_block_start",
        ),
        sse({"type": "ping"}, event="ping"),
        *(
            sse(
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                },
                event="content_block_delta",
            )
            for text in texts
        ),
        sse({"type": "content_block_stop", "index": 0}, event="content_block_stop"),
        sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": len(texts) if output_tokens is None else output_tokens},
            },
            event="message_delta",
        ),
        sse({"type": "message_stop"}, event="message_stop"),
    ]


def reply(texts: list[str], **stream: Any) -> Stream:
    """`message_events(texts)` as a `Stream`; keyword arguments go to `Stream` (delays, cuts)."""
    return Stream(message_events(texts), **stream)


def error_body(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}


def error(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> Error:
    """An error response as the API sends it: `error(529, "overloaded_error", "Overloaded")`."""
    return Error(status, error_body(kind, message), {"request-id": "req_fake", **(headers or {})})


def error_event(kind: str, message: str) -> bytes:
    """An `event: error` in the middle of a stream (the response already said 200)."""
    return sse(error_body(kind, message), event="error")


def prompt_too_long(tokens: int = 210_000, limit: int = 200_000) -> Error:
    return error(
        400, "invalid_request_error", f"prompt is too long: {tokens} tokens > {limit} maximum"
    )
