"""The per-request (per-WebSocket-connection) GraphQL context: services and the caller."""

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError
from starlette.requests import Request
from strawberry.fastapi import BaseContext
from strawberry.types import Info

from api.services import Services
from commands.messages import Command
from domain.actor import Actor
from domain.errors import InvalidInput, NotAuthenticated
from domain.user import Role
from infra.identity.api_keys import looks_like_api_key
from infra.identity.tokens import InvalidToken

if TYPE_CHECKING:
    from api.api_key_verifier import ApiKeyVerifier

T = TypeVar("T")
C = TypeVar("C", bound=Command)


def bearer_token(header: object) -> str:
    if not isinstance(header, str) or not header.strip():
        raise NotAuthenticated("missing Authorization: Bearer token")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Authorization must be 'Bearer <token>'")
    return token.strip()


class ParleyContext(BaseContext):
    """The caller and the ports (`services`); queries see it as a `QueryContext`."""

    def __init__(self, services: Services, api_keys: "ApiKeyVerifier | None" = None) -> None:
        super().__init__()
        self.services = services
        self.api_keys = api_keys
        self.read_models = services.read_models
        self.search = services.search
        self.knowledge = services.knowledge
        self.run_blocking = services.run_blocking
        self.live_feed = services.live_feed
        self.model_status = services.model_status
        self.partial_replies = services.partial_replies
        self.subscription_checks = services.subscription_checks
        self.subscription_reads = services.subscription_reads
        self._actor: Actor | None = None
        self._api_key_error: NotAuthenticated | None = None

    def authorization_header(self) -> object:
        if isinstance(self.request, Request):
            return self.request.headers.get("authorization")
        params = self.connection_params if isinstance(self.connection_params, dict) else {}
        return params.get("Authorization") or params.get("authorization")

    def api_key_header(self) -> str | None:
        """`X-API-Key` (HTTP header, or the WebSocket's connection_init payload)."""
        if isinstance(self.request, Request):
            value: object = self.request.headers.get("x-api-key")
        else:
            params = self.connection_params if isinstance(self.connection_params, dict) else {}
            value = params.get("X-API-Key") or params.get("x-api-key")
        return value.strip() if isinstance(value, str) and value.strip() else None

    def presented_api_key(self) -> str | None:
        """A service account's key, from `X-API-Key` or `Authorization: Bearer pk_…`."""
        key = self.api_key_header()
        if key is not None:
            return key
        header = self.authorization_header()
        if isinstance(header, str):
            scheme, _, token = header.strip().partition(" ")
            if scheme.lower() == "bearer" and looks_like_api_key(token.strip()):
                return token.strip()
        return None

    async def authenticate(self) -> None:
        """Check an API key (that needs the event store) before each operation; actor() then
        answers from it. Access tokens need no I/O and are checked in actor() itself."""
        key = self.presented_api_key()
        if key is None:
            return
        if self.api_keys is None:
            self._actor, self._api_key_error = None, NotAuthenticated("API keys are not accepted")
            return
        try:
            self._actor = await self.services.run_blocking(self.api_keys.verify, key)
            self._api_key_error = None
        except NotAuthenticated as e:
            self._actor, self._api_key_error = None, e

    def actor(self) -> Actor:
        """The caller. Checked on every operation: a WebSocket outlives its token otherwise."""
        if self._api_key_error is not None:
            raise self._api_key_error
        if self._actor is None:
            if self.presented_api_key() is not None:
                raise NotAuthenticated("the API key was not checked")
            token = bearer_token(self.authorization_header())
            try:
                claims = self.services.tokens.verify(token)
            except InvalidToken as e:
                raise NotAuthenticated(str(e)) from None
            self._actor = Actor(
                user_id=claims.user_id,
                tenant_id=claims.tenant_id,
                role=Role(claims.role),
                expires_at=claims.expires_at,
            )
        if self._actor.expires_at is not None and self._actor.expires_at <= time.time():
            raise NotAuthenticated("token expired")
        return self._actor

    async def execute(self, build: Callable[[], Command]) -> Any:
        """Run a command for the caller: who they are is checked first (no I/O for an access
        token), then the input (`build`: a pydantic error becomes BAD_USER_INPUT), then the
        request's one thread hop, in which the handler authorises the caller against the event
        store, once."""
        actor = self.actor()
        return await self.services.run_blocking(self.services.bus.handle, command(build), actor)


def command(build: Callable[[], C]) -> C:
    """The command `build` makes; its first validation error as BAD_USER_INPUT."""
    try:
        return build()
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidInput(f"{where}: {first.get('msg', 'invalid')}") from None


async def run(info: Info[ParleyContext, None], fn: Callable[..., T], *args: Any) -> T:
    """Run blocking work (not a command) off the event loop."""
    result: T = await info.context.services.run_blocking(fn, *args)
    return result
