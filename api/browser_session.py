"""Browser sessions: the refresh token lives in an HttpOnly cookie that the page's scripts cannot
read, the access token only in the page's memory. A stolen page (XSS) can use the session while
it is open but cannot carry the refresh token away.

- `POST /auth/session` {tenant, email, password}, `POST /auth/session/oidc` {tenant, code,
  codeVerifier}: a new sign-in, as `login` and the OIDC code exchange make it; the sign-in whose
  refresh cookie it replaces ends.
- `POST /auth/session/refresh`: the cookie's refresh token rotated, as `refreshToken` does.
- `POST /auth/session/password` {currentPassword, newPassword}: as `changePassword`.
- `POST /auth/session/logout`: as `logout`, and both cookies cleared.

Each answers `{accessToken, expiresIn, user, position}` (logout: `{}`) and sets `parley_refresh`
(HttpOnly, Path=/auth/session) and `parley_csrf` (readable, Path=/), both Secure and
SameSite=Strict. The requests the cookie authorises carry `X-CSRF-Token` equal to the
`parley_csrf` cookie (double submit), and any `Origin` must be Parley's own or an allowed CORS
origin. Refusals answer `{"error": {"code", "message"}}` like the OIDC routes. The sign-in logic
is the GraphQL mutations' own (api/auth.py); docs/auth.md, "Browser sessions", says why and what
to check."""

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.auth import (
    LoginPayload,
    end_sign_in,
    password_changed_sign_in,
    password_sign_in,
    rotated_sign_in,
)
from api.context import ParleyContext
from api.oidc_sign_in import NO_STORE, error_response, exchange_code, own_origin, user_body
from api.operation_limits import take_operation
from api.services import Services
from domain.errors import InvalidInput, NotAllowed, NotAuthenticated, ParleyError
from infra.identity.tokens import REFRESH, InvalidToken
from infra.settings import Settings

PATH = "/auth/session"
REFRESH_COOKIE = "parley_refresh"
CSRF_COOKIE = "parley_csrf"
CSRF_HEADER = "X-CSRF-Token"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PasswordSignIn(_Body):
    tenant: str
    email: str
    password: str


class OidcSignIn(_Body):
    tenant: str
    code: str
    code_verifier: str | None = Field(default=None, alias="codeVerifier")


class PasswordChange(_Body):
    current_password: str = Field(alias="currentPassword")
    new_password: str = Field(alias="newPassword")


B = TypeVar("B", bound=_Body)


class CsrfRefused(NotAllowed):
    """The request lacks the proof that Parley's own page sent it."""


def session_router(settings: Settings, services: Callable[[], Services]) -> APIRouter:
    """The browser-session routes over the process's ports (once it has started)."""
    router = APIRouter(prefix=PATH, include_in_schema=False)
    trusted_origins = frozenset(settings.cors_allowed_origins)

    def context(request: Request) -> ParleyContext:
        ctx = ParleyContext(services())
        ctx.request = request  # the caller's address, Authorization header and budget
        return ctx

    async def answer(
        request: Request,
        step: Callable[[ParleyContext], Awaitable[Response]],
        *,
        csrf: bool,
    ) -> Response:
        """Run a step after the checks every route shares: the Origin, the caller's operation
        budget (the one GraphQL operations spend) and, for `csrf`, the double-submit token."""
        try:
            check_origin(request, trusted_origins)
            ctx = context(request)
            await take_operation(ctx)
            if csrf:
                check_csrf(request)
            return await step(ctx)
        except ParleyError as e:
            return error_response(e)

    @router.post("")
    async def session_sign_in(request: Request) -> Response:
        async def step(ctx: ParleyContext) -> Response:
            body = await read_body(request, PasswordSignIn)
            pair = await password_sign_in(ctx, body.tenant, body.email, body.password)
            await end_replaced_sign_in(ctx.services, request)
            return signed_in(ctx.services, pair)

        return await answer(request, step, csrf=False)

    @router.post("/oidc")
    async def session_oidc(request: Request) -> Response:
        # No CSRF token: the one-time code (and its PKCE verifier) is the proof.
        async def step(ctx: ParleyContext) -> Response:
            body = await read_body(request, OidcSignIn)
            pair = await exchange_code(ctx.services, body.tenant, body.code, body.code_verifier)
            await end_replaced_sign_in(ctx.services, request)
            return signed_in(ctx.services, pair)

        return await answer(request, step, csrf=False)

    @router.post("/refresh")
    async def session_refresh(request: Request) -> Response:
        token = request.cookies.get(REFRESH_COOKIE)
        if not token:  # nothing to protect: a page asking whether it is signed in
            return signed_out(error_response(NotAuthenticated("no browser session: sign in")))

        async def step(ctx: ParleyContext) -> Response:
            try:
                pair = await rotated_sign_in(ctx.services, token)
            except NotAuthenticated as e:  # used, revoked, expired: the cookie is worthless
                return signed_out(error_response(e))
            return signed_in(ctx.services, pair, request.cookies[CSRF_COOKIE])

        return await answer(request, step, csrf=True)

    @router.post("/logout")
    async def session_logout(request: Request) -> Response:
        token = request.cookies.get(REFRESH_COOKIE)
        if not token:
            return signed_out(JSONResponse({}, headers=NO_STORE))

        async def step(ctx: ParleyContext) -> Response:
            await end_cookie_sign_in(ctx.services, token)
            return signed_out(JSONResponse({}, headers=NO_STORE))

        return await answer(request, step, csrf=True)

    @router.post("/password")
    async def session_password(request: Request) -> Response:
        async def step(ctx: ParleyContext) -> Response:
            body = await read_body(request, PasswordChange)
            pair = await password_changed_sign_in(ctx, body.current_password, body.new_password)
            return signed_in(ctx.services, pair, request.cookies[CSRF_COOKIE])

        return await answer(request, step, csrf=True)

    return router


def check_origin(request: Request, trusted: frozenset[str]) -> None:
    """Browsers send `Origin` on every POST: it must be Parley's own (the scheme and Host this
    request arrived with) or an allowed CORS origin. Clients that send none are not browsers."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    if origin != own_origin(request) and origin not in trusted:
        raise CsrfRefused(f"requests from the origin {origin[:100]!r} are not accepted")


def check_csrf(request: Request) -> None:
    """Double submit: only a page of Parley's own origin can read `parley_csrf` and echo it."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not header:
        raise CsrfRefused(f"missing {CSRF_HEADER} header or {CSRF_COOKIE} cookie")
    if not hmac.compare_digest(cookie.encode(), header.encode()):
        raise CsrfRefused(f"the {CSRF_HEADER} header does not match the {CSRF_COOKIE} cookie")


async def read_body(request: Request, model: type[B]) -> B:
    """The JSON body as `model`; anything else is BAD_USER_INPUT. JSON only: an HTML form from
    another site cannot send it without a CORS preflight."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise InvalidInput("the body must be application/json")
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "body"
        raise InvalidInput(f"{where}: {first.get('msg', 'invalid')}") from None


async def end_cookie_sign_in(services: Services, token: str) -> None:
    """The sign-in of a refresh cookie ends; one already over (used up, revoked, expired, not a
    token at all) is over all the same."""
    with suppress(NotAuthenticated):
        await end_sign_in(services, token)


async def end_replaced_sign_in(services: Services, request: Request) -> None:
    """A new sign-in overwrites the browser's refresh cookie: the sign-in the cookie held ends
    now rather than staying valid for 30 days, held by nobody."""
    token = request.cookies.get(REFRESH_COOKIE)
    if token:
        await end_cookie_sign_in(services, token)


def signed_in(services: Services, pair: LoginPayload, csrf: str | None = None) -> Response:
    """The body the page needs (never the refresh token) and the two cookies: `csrf` is the
    token the page already holds (a new one when None: a new sign-in starts)."""
    response = JSONResponse(
        {
            "accessToken": pair.access_token,
            "expiresIn": pair.expires_in,
            "user": user_body(pair),
            "position": pair.position,
        },
        headers=NO_STORE,
    )
    try:
        expires_at = services.tokens.verify(pair.refresh_token, token_type=REFRESH).expires_at
    except InvalidToken:  # just issued by this process: cannot happen
        expires_at = time.time() + services.settings.refresh_token_ttl_seconds
    # The cookies end with the sign-in's last refresh token (never past its 30 days).
    max_age = max(1, int(expires_at - time.time()))
    response.set_cookie(
        REFRESH_COOKIE,
        pair.refresh_token,
        max_age=max_age,
        path=PATH,
        secure=True,
        httponly=True,
        samesite="strict",
    )
    response.set_cookie(
        CSRF_COOKIE,
        csrf or secrets.token_urlsafe(32),
        max_age=max_age,
        path="/",
        secure=True,
        samesite="strict",
    )
    return response


def signed_out(response: Response) -> Response:
    """`response`, clearing both cookies (same names, paths and attributes as set)."""
    response.delete_cookie(REFRESH_COOKIE, path=PATH, secure=True, httponly=True, samesite="strict")
    response.delete_cookie(CSRF_COOKIE, path="/", secure=True, samesite="strict")
    return response
