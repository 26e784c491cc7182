"""Claude through Anthropic's Messages API, streamed with the official SDK."""

from collections.abc import AsyncGenerator

import anthropic
import httpx2
from anthropic.types import (
    MessageParam,
    RawContentBlockDeltaEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    TextDelta,
)

from infra.llm.base import (
    CancelToken,
    ChatTurn,
    Completion,
    ContextTooLong,
    Delta,
    GenerationParams,
    ProviderError,
    StreamCut,
)
from infra.llm.http_errors import connection_error, retry_after, status_error
from infra.llm.turns import split_system

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}
"""Anthropic stop reasons → ours; any other (tool_use, pause_turn: we send no tools) is "stop"."""

_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
"""The HTTP status each error type is sent with. An `error` event inside a stream arrives on a
200 response, so its type is all there is to go by."""

_CONTEXT_TOO_LONG = ("prompt is too long", "exceed context limit")
"""How the API words a 400 for a conversation that does not fit the model's context window."""


class AnthropicProvider:
    """Streams replies from Claude models; `params.model` is Anthropic's model name."""

    def __init__(
        self,
        *,
        api_key: str,
        name: str = "anthropic",
        base_url: str | None = None,
        timeout: float = 60.0,
        default_max_tokens: int = 1024,
    ) -> None:
        self.name = name
        self._default_max_tokens = default_max_tokens
        # The router retries with back-off and falls back to other deployments; an SDK retry
        # underneath would multiply its attempts and hide failures from its circuit breaker.
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )

    def supports(self, model: str) -> bool:
        return True

    async def stream(
        self, turns: list[ChatTurn], params: GenerationParams, cancel: CancelToken
    ) -> AsyncGenerator[Delta | Completion, None]:
        shaped = split_system(turns)
        messages = [_message(t) for t in shaped.turns]
        input_tokens = output_tokens = 0
        model, response_id, stop_reason = params.model, None, None
        stopped = False  # we broke off the reply because of `cancel`
        if cancel.cancelled:
            yield self._completion("cancelled", 0, 0, model, None)
            return
        try:
            events = await self._client.messages.create(
                model=params.model,
                max_tokens=params.max_tokens or self._default_max_tokens,
                messages=messages,
                system=shaped.system if shaped.system is not None else anthropic.omit,
                # No temperature: the Messages API version this SDK speaks has no sampling knobs.
                stream=True,
            )
        except (anthropic.APIError, httpx2.TransportError) as e:
            raise self._error(e, None) from e
        deltas = 0
        async with events:  # closes the response (and its connection) however we leave
            try:
                async for event in events:
                    if cancel.cancelled:
                        stopped = stop_reason is None  # a finished reply stays finished
                        break
                    if isinstance(event, RawMessageStartEvent):
                        usage = event.message.usage
                        input_tokens, output_tokens = usage.input_tokens, usage.output_tokens
                        model, response_id = event.message.model, event.message.id
                    elif isinstance(event, RawContentBlockDeltaEvent):
                        if isinstance(event.delta, TextDelta) and event.delta.text:
                            deltas += 1
                            yield Delta(event.delta.text)
                            if cancel.cancelled:  # don't wait for another event to notice
                                stopped = True
                                break
                    elif isinstance(event, RawMessageDeltaEvent):
                        stop_reason = event.delta.stop_reason or stop_reason
                        output_tokens = event.usage.output_tokens
                        if event.usage.input_tokens is not None:
                            input_tokens = event.usage.input_tokens
            except (anthropic.APIError, httpx2.TransportError) as e:
                raise self._error(e, f"after {deltas} text deltas") from e
        if stopped:
            yield self._completion("cancelled", input_tokens, output_tokens, model, response_id)
            return
        if stop_reason is None:
            raise StreamCut(
                f"{self.name}: the stream ended before the reply was complete, after {deltas} "
                "text deltas (no stop reason)"
            )
        yield self._completion(
            _FINISH.get(stop_reason, "stop"), input_tokens, output_tokens, model, response_id
        )

    def _completion(
        self, finish: str, input_tokens: int, output_tokens: int, model: str, rid: str | None
    ) -> Completion:
        return Completion(finish, input_tokens, output_tokens, self.name, model, rid)

    def _error(self, error: Exception, cut_after: str | None) -> ProviderError:
        if isinstance(error, anthropic.APIConnectionError | httpx2.TransportError):
            return connection_error(self.name, error, cut_after)
        if not isinstance(error, anthropic.APIStatusError):
            return ProviderError(f"{self.name}: {error}")
        kind, text = _error_body(error.body)
        detail = f"{kind}: {text}" if kind else text or str(error)
        if error.status_code >= 400:
            status, where = error.status_code, f"HTTP {error.status_code}"
        else:
            status, where = _TYPE_STATUS.get(kind or "", 500), "error event in the stream"
        message = f"{self.name}: {where}: {detail}"
        if status == 400 and any(s in text.lower() for s in _CONTEXT_TOO_LONG):
            return ContextTooLong(message)
        headers = error.response.headers if error.status_code >= 400 else None
        return status_error(status, message, retry_after(headers))


def _message(turn: ChatTurn) -> MessageParam:
    if turn.role == "assistant":
        return {"role": "assistant", "content": turn.content}
    return {"role": "user", "content": turn.content}


def _error_body(body: object) -> tuple[str | None, str]:
    """(`error.type`, `error.message`) from an Anthropic error body."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, ""
    kind, text = error.get("type"), error.get("message")
    return (kind if isinstance(kind, str) else None), (text if isinstance(text, str) else "")
