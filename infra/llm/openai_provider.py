"""OpenAI-protocol providers: OpenAI, Azure OpenAI and OpenAI-compatible servers (vLLM, llama.cpp,
Ollama, TGI), all through the official `openai` SDK's Chat Completions streaming.

Behaviour the router relies on:

- The SDK never retries (`max_retries=0`): retries, back-off and fallback are the router's.
- Failures are typed `ProviderError`s (statuses as in `infra.llm.http_errors`): 401/403 →
  `ProviderAuthError`; 429 → `ProviderRateLimited` with the server's `retry-after-ms` /
  `Retry-After`, except that an exhausted quota or billing problem is a `ProviderAuthError`
  (waiting does not help); 408/504 and timeouts → `ProviderTimeout`; other 5xx and connection
  errors → `ProviderUnavailable`; code `context_length_exceeded` (or a 400 that says so in words,
  as compatible servers do) → `ContextTooLong`; code `content_filter` → `ContentFiltered`; other
  4xx → plain `ProviderError` (not retryable). An `{"error": …}` event inside the stream is mapped
  the same way, by the status its `code`/`type` stands for (`server_error` → unavailable).
- The reply is complete once a choice carries a `finish_reason`. A stream that is cut or ends
  before that raises `StreamCut` (a `ProviderUnavailable`; a timeout mid-stream stays a
  `ProviderTimeout`); deltas already yielded stay yielded (the router keeps the partial text).
  If the connection drops *after* the finish reason, only the usage chunk is lost: the reply
  completes with estimated usage.
- Finish reason `content_filter` with text already streamed completes with finish reason
  `content_filter` and the real usage (the partial reply is kept and billed); with no text at all
  it raises `ContentFiltered`.
- `cancel` is checked whenever a chunk arrives and after every yielded delta. When it is set the
  SDK stream is closed (which closes the HTTP connection, so the server stops generating) and the
  reply completes with finish reason `cancelled`. A silent upstream is not interrupted here: a
  cancel takes effect at the next chunk (the responder interrupts a silent one by cancelling
  the read).
- Usage comes from the final usage chunk (`stream_options.include_usage`). When there is none
  (cancelled, or a server that ignores the option), it is estimated: input ≈ prompt characters / 4,
  output = content chunks received (OpenAI, llama.cpp and vLLM send about one token per chunk).
"""

import json
import math
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import httpx2
import openai
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

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
    ProviderUnavailable,
    StreamCut,
)
from infra.llm.http_errors import connection_error, retry_after, status_error

MaxTokensParam = Literal["max_completion_tokens", "max_tokens"]

# Local servers (vLLM, llama.cpp, Ollama) accept any key unless started with one; a placeholder
# keeps the SDK from falling back to OPENAI_API_KEY and sending the real key to a third party.
NO_KEY = "no-key"

# How compatible servers word "the prompt does not fit" when they do not send OpenAI's code.
_CONTEXT_CODES = {"context_length_exceeded", "exceed_context_size_error"}
_CONTEXT_WORDS = re.compile(
    r"maximum context length|context (length|size|window)|too many tokens|prompt is too long", re.I
)
_QUOTA_CODES = {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active"}


class ChatCompletionsProvider:
    """Streams Chat Completions through a configured SDK client (see the module docstring)."""

    def __init__(
        self,
        name: str,
        client: openai.AsyncOpenAI,
        max_tokens_param: MaxTokensParam = "max_completion_tokens",
        include_usage: bool = True,
    ) -> None:
        self.name = name
        self._client = client
        self._max_tokens_param = max_tokens_param
        self._include_usage = include_usage

    def supports(self, model: str) -> bool:
        return True  # the router picks providers by the prefix of the model reference

    async def stream(
        self, turns: list[ChatTurn], params: GenerationParams, cancel: CancelToken
    ) -> AsyncGenerator[Delta | Completion, None]:
        if cancel.cancelled:  # nothing sent, nothing used
            yield Completion("cancelled", 0, 0, provider=self.name, model=params.model)
            return
        reply = _Reply(estimated_input=_estimate_tokens(turns))
        try:
            upstream = await self._client.chat.completions.create(
                model=params.model,
                messages=[_message(turn) for turn in turns],
                stream=True,
                stream_options={"include_usage": True} if self._include_usage else openai.omit,
                temperature=openai.omit if params.temperature is None else params.temperature,
                max_tokens=self._limit(params, "max_tokens"),
                max_completion_tokens=self._limit(params, "max_completion_tokens"),
            )
        except (openai.APIError, httpx2.TransportError) as e:
            raise typed_error(self.name, e) from e
        try:
            async for chunk in upstream:
                if cancel.cancelled:
                    break
                text = reply.add(chunk)
                if text:
                    yield Delta(text)
                    if cancel.cancelled:
                        break  # do not wait for the next chunk
        except (openai.APIConnectionError, httpx2.TransportError) as e:
            if reply.finish_reason is None:
                raise connection_error(self.name, e, reply.progress()) from e
            # The reply had finished; only the usage chunk was lost, so usage is estimated.
        except openai.APIError as e:
            raise typed_error(self.name, e) from e
        except json.JSONDecodeError as e:
            raise ProviderUnavailable(
                f"{self.name}: malformed event after {reply.chunks} chunks: {e}"
            ) from e
        finally:
            await upstream.close()  # after a cancel, this is what closes the upstream connection
        yield self._completion(reply, params, cancelled=cancel.cancelled)

    def _limit(self, params: GenerationParams, param: MaxTokensParam) -> int | openai.Omit:
        if params.max_tokens is None or param != self._max_tokens_param:
            return openai.omit
        return params.max_tokens

    def _completion(self, reply: "_Reply", params: GenerationParams, cancelled: bool) -> Completion:
        if reply.finish_reason is None and not cancelled:
            raise StreamCut(
                f"{self.name}: the stream ended before the reply was complete, "
                f"{reply.progress()} (no finish reason)"
            )
        if reply.finish_reason == "content_filter" and not reply.content_chunks:
            raise ContentFiltered(f"{self.name}: the reply was withheld by the content filter")
        if reply.finish_reason is None:
            finish = "cancelled"
        elif reply.finish_reason in ("length", "content_filter"):
            finish = reply.finish_reason
        else:
            finish = "stop"  # also tool_calls/function_call, which we never ask for
        input_tokens, output_tokens = reply.usage or (reply.estimated_input, reply.content_chunks)
        return Completion(
            finish_reason=finish,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            provider=self.name,
            model=reply.model or params.model,
            provider_response_id=reply.response_id,
        )


class OpenAIProvider(ChatCompletionsProvider):
    """OpenAI, or with `base_url` any OpenAI-compatible server under its own `name` (`vllm`,
    `ollama`, …); `params.model` is the server's own model name.

    `api_key=None` means OPENAI_API_KEY for OpenAI itself, and no key for a server at a
    `base_url` (our OpenAI key is never sent elsewhere). The token limit goes out as
    `max_completion_tokens` to OpenAI and as `max_tokens` to other servers unless
    `max_tokens_param` says otherwise. `timeout` is in seconds, per connection attempt and per
    read: the longest silence tolerated, the wait for the first token included.
    """

    def __init__(
        self,
        name: str = "openai",
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        timeout: float = 60.0,
        max_tokens_param: MaxTokensParam | None = None,
        include_usage: bool = True,
    ) -> None:
        if api_key is None and base_url is not None:
            api_key = NO_KEY
        client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            organization=organization,
            timeout=timeout,
            max_retries=0,
        )
        if max_tokens_param is None:
            max_tokens_param = "max_completion_tokens" if base_url is None else "max_tokens"
        super().__init__(name, client, max_tokens_param, include_usage)


class AzureOpenAIProvider(ChatCompletionsProvider):
    """Azure OpenAI: `params.model` is the deployment name (`/openai/deployments/<it>/…`).

    Authenticates with `api_key` (sent as `api-key`) or `azure_ad_token_provider` (an Entra ID
    bearer token per request); with neither, the SDK reads AZURE_OPENAI_API_KEY or
    AZURE_OPENAI_AD_TOKEN. `api_version` defaults to OPENAI_API_VERSION. API versions before
    2024-09-01 know neither `max_completion_tokens` nor `stream_options`: there, use
    `max_tokens_param="max_tokens"` and `include_usage=False`.
    """

    def __init__(
        self,
        name: str = "azure",
        *,
        azure_endpoint: str,
        api_version: str | None = None,
        api_key: str | None = None,
        azure_ad_token_provider: Callable[[], str | Awaitable[str]] | None = None,
        timeout: float = 60.0,
        max_tokens_param: MaxTokensParam = "max_completion_tokens",
        include_usage: bool = True,
    ) -> None:
        client = openai.AsyncAzureOpenAI(
            azure_endpoint=azure_endpoint,
            api_version=api_version,
            api_key=api_key,
            azure_ad_token_provider=azure_ad_token_provider,
            timeout=timeout,
            max_retries=0,
        )
        super().__init__(name, client, max_tokens_param, include_usage)


@dataclass
class _Reply:
    """What one stream has told us so far."""

    estimated_input: int
    response_id: str | None = None
    model: str | None = None
    chunks: int = 0
    content_chunks: int = 0
    finish_reason: str | None = None
    usage: tuple[int, int] | None = None

    def add(self, chunk: ChatCompletionChunk) -> str:
        """Take in one chunk; return its text for choice 0 ("" when none)."""
        self.chunks += 1
        # Azure's content-filter chunks have an empty id and model: keep the real ones.
        self.response_id = self.response_id or chunk.id or None
        self.model = self.model or chunk.model or None
        if chunk.usage is not None:
            self.usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
        text = ""
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            # Azure's filter annotations are choices without a delta.
            if choice.delta is not None and choice.delta.content:
                text += choice.delta.content
            if choice.finish_reason is not None:
                self.finish_reason = choice.finish_reason
        if text:
            self.content_chunks += 1
        return text

    def progress(self) -> str:
        """How far the stream came, for error messages."""
        return f"after {self.chunks} chunks ({self.content_chunks} with text)"


def _message(turn: ChatTurn) -> ChatCompletionMessageParam:
    if turn.role == "system":
        return {"role": "system", "content": turn.content}
    if turn.role == "user":
        return {"role": "user", "content": turn.content}
    if turn.role == "assistant":
        return {"role": "assistant", "content": turn.content}
    raise ValueError(f"unknown chat role {turn.role!r}")


def _estimate_tokens(turns: list[ChatTurn]) -> int:
    """About four characters per token (OpenAI's rule of thumb for English)."""
    return math.ceil(sum(len(turn.content) for turn in turns) / 4)


def typed_error(name: str, error: openai.APIError | httpx2.TransportError) -> ProviderError:
    """The typed error for an SDK error: an HTTP error response or an error event in the stream
    (a connection that fails before the stream starts, too)."""
    if isinstance(error, openai.APIConnectionError | httpx2.TransportError):
        return connection_error(name, error, None)
    body = error.body if isinstance(error.body, dict) else {}
    message = str(body.get("message") or error.message)
    code = (error.code or "").lower()
    kind = (error.type or "").lower()
    status = _status(error, code, kind)
    where = f"HTTP {status}" if isinstance(error, openai.APIStatusError) else "error event"
    text = f"{name}: {where}{f' {code or kind}' if code or kind else ''}: {message}"
    if code == "content_filter":
        return ContentFiltered(text)
    if code in _CONTEXT_CODES or kind in _CONTEXT_CODES:
        return ContextTooLong(text)
    if status == 400 and _CONTEXT_WORDS.search(message):
        return ContextTooLong(text)
    if code in _QUOTA_CODES or kind in _QUOTA_CODES:
        return ProviderAuthError(text)  # waiting does not help: the account needs attention
    headers = error.response.headers if isinstance(error, openai.APIStatusError) else None
    return status_error(status, text, retry_after(headers))


def _status(error: openai.APIError, code: str, kind: str) -> int:
    """The HTTP status, or for an error event inside a 200 stream the status it stands for."""
    if isinstance(error, openai.APIStatusError):
        return error.status_code
    if code.isdigit():  # vLLM and Azure put the status in `code`
        return int(code)
    if code == "rate_limit_exceeded" or kind in ("rate_limit_error", "requests", "tokens"):
        return 429
    if code == "invalid_api_key" or kind == "authentication_error":
        return 401
    if kind == "invalid_request_error":
        return 400
    return 500  # server_error, or nothing said: the server failed mid-reply
