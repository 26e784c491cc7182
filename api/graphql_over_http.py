"""GraphQL over HTTP media types (the GraphQL-over-HTTP specification): a client that accepts
`application/graphql-response+json` gets it, with a status that says whether the operation ran;
everyone else gets `application/json` as strawberry answers it (200 for every GraphQL response)."""

from typing import Any, overload

import orjson
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.websockets import WebSocket
from strawberry.fastapi import GraphQLRouter
from strawberry.http import GraphQLHTTPResponse
from strawberry.types.unset import UNSET

from api.context import ParleyContext
from api.errors import INTERNAL

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"

REQUEST_ERROR_STATUS = {"RATE_LIMITED": 429, INTERNAL: 500}
"""Refusals before execution that are not the document's fault; any other request error (the
document does not parse or validate, its variables do not coerce, it costs too much) is 400."""


def response_media_type(accept: str | None) -> str | None:
    """The media type to answer in, by the Accept header's q-values (the most specific range
    deciding, RFC 9110): graphql-response+json when the client names it and likes it at least as
    much as JSON; JSON when it accepts that, also through `*/*`, or sends no Accept (legacy
    clients); None when it accepts neither."""
    if accept is None or not accept.strip():
        return JSON
    # Per type: the specificity of its best-matching range (0 */*, 1 application/*, 2 the type
    # itself) and that range's q.
    best = {GRAPHQL_RESPONSE: (-1, 0.0), JSON: (-1, 0.0)}
    for item in accept.split(","):
        media_range, *params = (part.strip().lower() for part in item.split(";"))
        q = _quality(params)
        if q is None:
            continue
        for media_type, (specificity, _) in best.items():
            ranges = ("*/*", "application/*", media_type)
            if media_range in ranges and ranges.index(media_range) > specificity:
                best[media_type] = (ranges.index(media_range), q)
    (named, graphql_q), (_, json_q) = best[GRAPHQL_RESPONSE], best[JSON]
    if graphql_q > json_q or (graphql_q == json_q > 0 and named == 2):
        return GRAPHQL_RESPONSE
    return JSON if json_q > 0 else None


def _quality(params: list[str]) -> float | None:
    """A media range's q (1 without one); None when it is not a number from 0 to 1."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                q = float(value)
            except ValueError:
                return None
            return q if 0 <= q <= 1 else None
    return 1.0


def is_request_error(response: GraphQLHTTPResponse) -> bool:
    """No field ran: the document did not parse or validate, its variables did not coerce, or
    the operation was refused before execution. Field errors always carry a `path`."""
    errors = response.get("errors") or []
    return (
        response.get("data") is None
        and bool(errors)
        and not any(isinstance(error, dict) and "path" in error for error in errors)
    )


def request_error_status(response: GraphQLHTTPResponse) -> int:
    codes = [
        error.get("extensions", {}).get("code")
        for error in response.get("errors") or []
        if isinstance(error, dict)
    ]
    return max((REQUEST_ERROR_STATUS.get(code, 400) for code in codes), default=400)


class GraphQLOverHttpRouter(GraphQLRouter[ParleyContext, None]):
    """Strawberry's router, answering in the media type the client accepts.

    With graphql-response+json, a request error has no `data` entry and a 4xx/5xx status, so
    that proxies and clients can tell a refused request from a partial result (200, with field
    errors). application/json stays 200 for every GraphQL response: a client of that type cannot
    tell our 4xx from an intermediary's, so legacy clients keep today's answers."""

    @overload
    async def run(
        self, request: Request, context: ParleyContext = UNSET, root_value: None = UNSET
    ) -> Response: ...

    @overload
    async def run(
        self, request: WebSocket, context: ParleyContext = UNSET, root_value: None = UNSET
    ) -> WebSocket: ...

    async def run(
        self,
        request: Request | WebSocket,
        context: ParleyContext = UNSET,
        root_value: None = UNSET,
    ) -> Response | WebSocket:
        if isinstance(request, WebSocket):
            return await super().run(request, context, root_value)
        media_type = response_media_type(request.headers.get("accept"))
        request.state.graphql_media_type = media_type  # for get_sub_response: negotiated once
        if media_type is None and not self.should_render_graphql_ide(
            self.request_adapter_class(request)
        ):
            return PlainTextResponse(f"answers are {GRAPHQL_RESPONSE} or {JSON}", 406)
        try:
            return await super().run(request, context, root_value)
        except HTTPException as e:
            if media_type != GRAPHQL_RESPONSE:
                raise  # strawberry's plain-text 4xx, as application/json clients always had
            # Strawberry refuses only requests that are not well-formed GraphQL-over-HTTP here.
            body = {"errors": [{"message": e.reason, "extensions": {"code": "BAD_USER_INPUT"}}]}
            return self._graphql_response(body, e.status_code)

    def encode_json(self, data: object) -> str:
        """The same JSON as strawberry's `json.dumps`, by orjson: several times faster on a
        page of messages (UTF-8 as is, not \\u-escaped). Text, not bytes: WebSocket messages are
        encoded here too, and graphql-transport-ws clients refuse binary frames."""
        return orjson.dumps(data).decode()

    async def get_sub_response(self, request: Request) -> Response:
        """The response strawberry builds ours from (resolvers may set its status and headers)
        also carries the media type `run` negotiated for it."""
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = request.state.graphql_media_type
        return sub_response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        if sub_response.media_type != GRAPHQL_RESPONSE or isinstance(response_data, list):
            return super().create_response(response_data, sub_response)
        status = sub_response.status_code or 200
        body = response_data.copy()
        if is_request_error(body):
            del body["data"]  # the operation never ran: there is no result, not even null
            status = request_error_status(body)
        response = self._graphql_response(body, status)
        response.headers.raw.extend(sub_response.headers.raw)
        return response

    def _graphql_response(self, body: Any, status: int) -> Response:
        return Response(
            self.encode_json(body), status, media_type=f"{GRAPHQL_RESPONSE}; charset=utf-8"
        )
