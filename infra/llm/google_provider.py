"""Gemini through Google's Gemini API (`generativelanguage.googleapis.com`), streamed with the
official `google-genai` SDK's asynchronous client (`client.aio`, on an `httpx.AsyncClient`)."""

import contextlib
import re
from collections.abc import AsyncGenerator
from contextvars import ContextVar
from typing import Any, cast

import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from infra.llm.base import (
    CancelToken,
    ChatTurn,
    Completion,
    ContextTooLong,
    Delta,
    GenerationParams,
    ProviderAuthError,
    ProviderError,
    ProviderUnavailable,
    StreamCut,
)
from infra.llm.http_errors import connection_error, retry_after, status_error, transport_cause
from infra.llm.turns import split_system

_FILTERED = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "MODEL_ARMOR",
}
"""Finish reasons that mean a filter stopped the reply."""

_TOKEN_LIMIT = re.compile(
    r"token count.*exceeds|exceeds the maximum number of tokens|context (length|window)", re.I
)
"""How the API words a 400 for a conversation that does not fit the model's context window."""

_RETRY_DELAY = re.compile(r"^(\d+(?:\.\d+)?)s$")

SDK_ERRORS = (genai_errors.APIError, genai_errors.UnknownApiResponseError, httpx2.TransportError)
"""What a `google-genai` call raises for a failed request: `typed_error` maps each."""

_OPENED: ContextVar[list[httpx2.Response] | None] = ContextVar("google_opened", default=None)
"""The HTTP responses of the reply streaming in this task (see `_remember_response`)."""


async def _remember_response(response: httpx2.Response) -> None:
    """The async client's response hook. The SDK's async stream closes its HTTP response only
    when its generators are garbage-collected, a few loop turns after we close ours; a stopped
    reply closes the responses it opened itself, so the provider stops at once."""
    opened = _OPENED.get()
    if opened is not None:
        opened.append(response)


class GoogleProvider:
    """Streams replies from Gemini models; `params.model` is the Gemini model name."""

    def __init__(
        self,
        *,
        api_key: str,
        name: str = "google",
        base_url: str | None = None,
        timeout: float = 60.0,
        api_version: str = "v1beta",
    ) -> None:
        self.name = name
        self._client = genai.Client(
            api_key=api_key,
            vertexai=False,  # never switched to Vertex AI by GOOGLE_GENAI_USE_VERTEXAI
            http_options=types.HttpOptions(
                base_url=base_url,
                # Pinned (the SDK's default and GOOGLE_GENAI_API_VERSION would move it).
                api_version=api_version,
                timeout=round(timeout * 1000),  # milliseconds
                # One attempt: the router retries with back-off and falls back to other
                # deployments; SDK retries underneath would multiply its attempts.
                retry_options=types.HttpRetryOptions(attempts=1),
                async_client_args={"event_hooks": {"response": [_remember_response]}},
            ),
        )

    def supports(self, model: str) -> bool:
        return True

    async def stream(
        self, turns: list[ChatTurn], params: GenerationParams, cancel: CancelToken
    ) -> AsyncGenerator[Delta | Completion, None]:
        shaped = split_system(turns)
        contents: list[types.ContentUnionDict] = [
            types.Content(
                role="model" if t.role == "assistant" else "user",
                parts=[types.Part(text=t.content)],
            )
            for t in shaped.turns
        ]
        config = types.GenerateContentConfig(
            system_instruction=shaped.system,
            max_output_tokens=params.max_tokens,
            temperature=params.temperature,
            # Automatic continuation re-sends the request when a stream breaks early: a retry
            # the router must decide on (and count) itself.
            automatic_continuation=False,
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        )
        input_tokens = output_tokens = 0
        model, response_id, finish = params.model, None, None
        stopped = False  # we broke off the reply because of `cancel`
        if cancel.cancelled:
            yield self._completion("cancelled", 0, 0, model, None)
            return
        # An async generator (annotated as an AsyncIterator): the request goes out on the first
        # `anext`.
        chunks = cast(
            AsyncGenerator[types.GenerateContentResponse, None],
            await self._client.aio.models.generate_content_stream(
                model=params.model, contents=contents, config=config
            ),
        )
        received = 0  # chunks: until the first, a failure is the request's, not a cut stream
        opened: list[httpx2.Response] = []
        remembering = _OPENED.set(opened)
        try:
            async for chunk in chunks:
                received += 1
                if cancel.cancelled:
                    stopped = finish is None  # a finished reply stays finished
                    break
                if (usage := chunk.usage_metadata) is not None:  # running totals
                    input_tokens = usage.prompt_token_count or 0
                    # Thinking is billed as output, as it is in Anthropic's output_tokens.
                    output_tokens = (usage.candidates_token_count or 0) + (
                        usage.thoughts_token_count or 0
                    )
                model = chunk.model_version or model
                response_id = chunk.response_id or response_id
                if chunk.prompt_feedback is not None and chunk.prompt_feedback.block_reason:
                    finish = "content_filter"  # the prompt itself was blocked: no candidates
                if not chunk.candidates:
                    continue
                candidate = chunk.candidates[0]
                for part in (candidate.content.parts if candidate.content else None) or []:
                    if part.text and not part.thought:
                        yield Delta(part.text)
                if candidate.finish_reason is not None:
                    finish = _finish(str(candidate.finish_reason.value))
                if cancel.cancelled and finish is None:  # don't wait for another chunk
                    stopped = True
                    break
        except SDK_ERRORS as e:
            raise typed_error(self.name, e, f"after {received} chunks" if received else None) from e
        finally:
            # Closing the SDK's generator chain closes the HTTP response, and with it the
            # connection when the body was not read to the end.
            await chunks.aclose()
            for response in opened:
                await response.aclose()
            with contextlib.suppress(ValueError):  # finished in another task (garbage-collected)
                _OPENED.reset(remembering)
        if stopped:
            yield self._completion("cancelled", input_tokens, output_tokens, model, response_id)
            return
        if finish is None:
            raise StreamCut(
                f"{self.name}: the stream ended before the reply was complete, after {received} "
                "chunks (no finish reason)"
            )
        yield self._completion(finish, input_tokens, output_tokens, model, response_id)

    def _completion(
        self, finish: str, input_tokens: int, output_tokens: int, model: str, rid: str | None
    ) -> Completion:
        return Completion(finish, input_tokens, output_tokens, self.name, model, rid)


def typed_error(name: str, error: Exception, cut_after: str | None = None) -> ProviderError:
    """The typed error for one of `SDK_ERRORS`; `cut_after` says how far a stream had come
    (None: the request itself failed)."""
    if transport_cause(error) is not None:
        return connection_error(name, error, cut_after)
    if isinstance(error, genai_errors.UnknownApiResponseError):
        return ProviderUnavailable(f"{name}: unreadable response ({error})")
    if not isinstance(error, genai_errors.APIError):
        return ProviderError(f"{name}: {error}")
    code = error.code if isinstance(error.code, int) else 500
    text = error.message or ""
    message = f"{name}: HTTP {code} {error.status or ''}: {text}"
    details = _details(error.details)
    # An unknown key is a 400 INVALID_ARGUMENT from the Gemini API, not a 401.
    if code == 400 and any(d.get("reason") == "API_KEY_INVALID" for d in details):
        return ProviderAuthError(message)
    if code == 400 and _TOKEN_LIMIT.search(text):
        return ContextTooLong(message)
    wait = retry_after(getattr(error.response, "headers", None))
    return status_error(code, message, wait if wait is not None else _retry_delay(details))


def _finish(reason: str) -> str:
    if reason == "STOP":
        return "stop"
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "error"  # OTHER, LANGUAGE, MALFORMED_RESPONSE, …: the reply did not end normally


def _details(body: Any) -> list[dict[str, Any]]:
    """The `error.details` entries of a Google error body (google.rpc.Status)."""
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "37s"`), which is how the
    Gemini API says when to come back after a 429."""
    for detail in details:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            match = _RETRY_DELAY.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None
