"""Transport guards around the API (ASGI middleware) and the GraphQL WebSocket protocol handler:
security headers, request body and WebSocket message sizes, and WebSocket connection and
subscription caps. Limits come from settings
(docs/security-hardening.md)."""

import asyncio
import json
import logging
from collections import Counter
from contextlib import suppress

from graphql import GraphQLError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    SubscribeMessage,
)

from api.context import ParleyContext
from domain.errors import NotAuthenticated
from infra.settings import Settings

log = logging.getLogger(__name__)

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""Responses are data, never documents to render: nothing may load, run or frame them."""
WEB_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
"""Parley's HTML pages (the web client, GraphiQL: api/web_client.py): scripts only from files
Parley serves, never inline, never another origin. `connect-src 'self'` covers the same origin's
ws:/wss: too (CSP Level 3). Inline styles stay allowed: the client's components set them."""

TOO_MANY_CONNECTIONS = 4429
"""Close code when a user already holds ws_max_connections_per_user WebSockets."""
MESSAGE_TOO_BIG = 1009
API_KEY_REVOKED = 4403


class SecurityHeaders:
    """The same protective headers on every HTTP response; no `Server` header from the app."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.hsts = (
            f"max-age={settings.hsts_max_age_seconds}; includeSubDomains"
            if settings.hsts_max_age_seconds > 0
            else None
        )
        self.hsts_always = settings.hsts_always

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"server"]
                names = {k.lower() for k, _ in headers}
                html = any(
                    k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers
                )
                extra = {
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",
                    b"x-frame-options": b"DENY",
                    b"content-security-policy": (WEB_CSP if html else API_CSP).encode(),
                    b"cache-control": b"no-store",
                }
                if self.hsts and (https or self.hsts_always):
                    extra[b"strict-transport-security"] = self.hsts.encode()
                headers += [(k, v) for k, v in extra.items() if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class _BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse HTTP bodies above `max_bytes` with 413, by Content-Length up front or while the
    body streams in (chunked uploads have no length): never read a whole oversized body."""

    def __init__(self, app: ASGIApp, max_bytes: int, paths: dict[str, int] | None = None) -> None:
        """`paths`: routes with a limit of their own (uploads)."""
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope.get("path", ""), self.max_bytes)
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(send, limit)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        body = json.dumps(
            {
                "errors": [
                    {
                        "message": f"the request body is larger than {limit} bytes",
                        "extensions": {"code": "PAYLOAD_TOO_LARGE"},
                    }
                ]
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class WebSocketMessageLimit:
    """No WebSocket message may exceed `max_bytes`: the socket is closed with 1009. (The
    Origin allow-list is strawberry's own, given to the GraphQL router.)"""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return

        async def bounded_receive() -> Message:
            message = await receive()
            if message["type"] == "websocket.receive":
                text, data = message.get("text"), message.get("bytes")
                size = len(text.encode()) if text is not None else len(data or b"")
                if size > self.max_bytes:
                    await send({"type": "websocket.close", "code": MESSAGE_TOO_BIG})
                    return {"type": "websocket.disconnect", "code": MESSAGE_TOO_BIG}
            return message

        await self.app(scope, bounded_receive, send)


class WebSocketSlots:
    """Open WebSocket connections per user (or API key) in this process."""

    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self._open: Counter[str] = Counter()

    def acquire(self, who: str) -> bool:
        if self._open[who] >= self.per_user:
            return False
        self._open[who] += 1
        return True

    def release(self, who: str) -> None:
        self._open[who] -= 1
        if self._open[who] <= 0:
            del self._open[who]

    def held(self, who: str | None = None) -> int:
        return self._open[who] if who is not None else sum(self._open.values())


class GuardedTransportWS(BaseGraphQLTransportWSHandler[ParleyContext, None]):
    """graphql-transport-ws with Parley's caps: connections per user (a slot taken at
    connection_init, given back when the socket ends, however it ends), operations per
    connection (refused with TOO_MANY_SUBSCRIPTIONS), and API keys re-checked while open."""

    _slot: str | None = None
    _recheck: "asyncio.Task[None] | None" = None

    @property
    def _guard(self) -> "TransportLimits":
        guard = getattr(self.view, "limits", None)
        assert isinstance(guard, TransportLimits)
        return guard

    async def handle(self) -> None:
        try:
            await super().handle()
        finally:
            if self._recheck is not None:
                self._recheck.cancel()
                with suppress(asyncio.CancelledError):
                    await self._recheck
            if self._slot is not None:
                self._guard.slots.release(self._slot)
                self._slot = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = message.get("payload", {})
        if self.connection_init_received or not isinstance(payload, dict):
            await super().handle_connection_init(message)  # refuses both
            return
        self.context.connection_params = payload
        await self.context.authenticate()
        try:
            actor = self.context.actor()
        except NotAuthenticated:
            await super().handle_connection_init(message)  # on_ws_connect refuses it: 4403
            return
        who = str(actor.user_id)
        if not self._guard.slots.acquire(who):
            await self.websocket.close(
                code=TOO_MANY_CONNECTIONS,
                reason=f"at most {self._guard.slots.per_user} WebSocket connections per user",
            )
            return
        self._slot = who
        await super().handle_connection_init(message)
        if actor.api_key_id is not None:
            self._recheck = asyncio.create_task(self._recheck_api_key())

    async def _recheck_api_key(self) -> None:
        """A revoked key's open subscriptions end within api_key_recheck_seconds."""
        while True:
            await asyncio.sleep(self._guard.settings.api_key_recheck_seconds)
            await self.context.authenticate()
            try:
                self.context.actor()
            except NotAuthenticated as e:
                await self.websocket.close(code=API_KEY_REVOKED, reason=e.message[:120])
                return

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        limit = self._guard.settings.ws_max_subscriptions_per_connection
        if (
            self.connection_acknowledged
            and message.get("id") not in self.operations
            and len(self.operations) >= limit
        ):
            error = GraphQLError(
                f"at most {limit} operations at once on one connection",
                extensions={"code": "TOO_MANY_SUBSCRIPTIONS"},
            )
            await self.send_message(
                ErrorMessage(id=message["id"], type="error", payload=[error.formatted])
            )
            return
        await super().handle_subscribe(message)


class TransportLimits:
    """What the GraphQL router's WebSocket handlers share: settings and the connection slots."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.slots = WebSocketSlots(settings.ws_max_connections_per_user)
