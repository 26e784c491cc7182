"""The per-request (per-WebSocket-connection) GraphQL context: services and the caller."""

import time
from typing import TYPE_CHECKING

from starlette.requests import Request
from strawberry.fastapi import BaseContext

from domain.actor import Actor
from domain.errors import NotAuthenticated
from domain.user import Role
from infra.tokens import InvalidToken

if TYPE_CHECKING:
    from api.runtime import Runtime


def bearer_token(header: object) -> str:
    if not isinstance(header, str) or not header.strip():
        raise NotAuthenticated("missing Authorization: Bearer token")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Authorization must be 'Bearer <token>'")
    return token.strip()


class ParleyContext(BaseContext):
    def __init__(self, runtime: "Runtime") -> None:
        super().__init__()
        self.runtime = runtime
        self.read_models = runtime.read_models
        self.search = runtime.search
        self.live_feed = runtime.live_feed
        self.handlers = runtime.handlers
        self.model_status = runtime.model_status
        self.partial_replies = runtime.partial_replies
        self._actor: Actor | None = None

    def authorization_header(self) -> object:
        if isinstance(self.request, Request):
            return self.request.headers.get("authorization")
        params = self.connection_params if isinstance(self.connection_params, dict) else {}
        return params.get("Authorization") or params.get("authorization")

    def actor(self) -> Actor:
        """The caller. Checked on every operation: a WebSocket outlives its token otherwise."""
        if self._actor is None:
            token = bearer_token(self.authorization_header())
            try:
                claims = self.runtime.tokens.verify(token)
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
