"""OpenID Connect sign-in over HTTP: the authorization-code flow with PKCE, state and nonce.

1. `GET /auth/oidc/{tenant}/login?redirect_uri=…[&state=…][&code_challenge=…]` sends the browser
   to the tenant's issuer (and binds the sign-in to that browser with a cookie); asked with
   `Accept: application/json`, it answers `{"authorizationUrl"}` for the page to go to itself.
2. The issuer sends it back to `GET /auth/oidc/{tenant}/callback?code=…&state=…`: Parley
   exchanges the code, validates the ID token, finds (or provisions) the user, and redirects to
   `redirect_uri?code=<one-time code>[&state=…]`. Tokens never travel in a URL.
3. The client posts that code to `POST /auth/oidc/{tenant}/token` ({"code", "code_verifier"})
   and gets the same token pair as the `login` mutation, as JSON. Parley's own pages are
   refused there: they post it to `/auth/session/oidc` (api/browser_session.py), which keeps
   the refresh token in an HttpOnly cookie.

Errors answer JSON `{"error": {"code", "message"}}` with the codes of the GraphQL API."""

import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict

from api.auth import LoginPayload, token_pair
from api.services import Services
from commands.messages import SignInWithOidc
from domain.actor import Actor
from domain.errors import InvalidInput, NotAllowed, NotAuthenticated, ParleyError, RateLimited
from domain.user import Role
from infra.identity.oidc import Issuers, pkce_pair, s256
from infra.identity.oidc_sign_ins import (
    FinishedSignIn,
    PendingSignIn,
    digest,
    put_entry,
    take_entry,
)
from infra.metrics import OIDC_SIGN_INS
from infra.settings import Settings
from queries.tenant_settings import oidc_client

log = logging.getLogger(__name__)

COOKIE = "parley_oidc"
SCOPE = "openid email profile"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
STATUS = {
    "BAD_USER_INPUT": 400,
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "RATE_LIMITED": 429,
    "UNAVAILABLE": 502,
}


def user_body(pair: LoginPayload) -> dict[str, Any]:
    """The signed-in user as the HTTP sign-in answers show it (GraphQL's names and enum)."""
    return {
        "id": pair.user.id,
        "tenantId": pair.user.tenant_id,
        "email": pair.user.email,
        "displayName": pair.user.display_name,
        "role": pair.user.role.name,
        "active": pair.user.active,
    }


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str
    code_verifier: str | None = None


class SignInFlow:
    """The three steps, over the tenant's settings, its issuer and the in-progress store."""

    def __init__(self, services: Callable[[], Services], issuers: Issuers) -> None:
        self.services = services  # the process's ports, once it has started
        self.issuers = issuers

    async def start(
        self,
        request: Request,
        slug: str,
        redirect_uri: str,
        client_state: str | None,
        client_challenge: str | None,
    ) -> Response:
        rt = self.services()
        s = rt.settings
        if client_state is not None and len(client_state) > 500:
            raise InvalidInput("state must be at most 500 characters")
        if client_challenge is not None and not (
            len(client_challenge) == 43 and _is_base64url(client_challenge)
        ):
            raise InvalidInput("code_challenge must be an S256 challenge (43 base64url chars)")
        client = await rt.run_blocking(oidc_client, rt.aggregates, rt.master_key, slug)
        if redirect_uri not in client.config.redirect_uris:
            raise InvalidInput("redirect_uri is not one of the tenant's redirect URIs")
        if s.oidc_sign_ins_per_minute:
            verdict = await rt.run_blocking(
                rt.buckets.take,
                f"oidc-sign-in:{client.tenant_id}",
                s.oidc_sign_ins_per_minute,
                60.0,
                1,
            )
            if not verdict.allowed:
                raise RateLimited("too many sign-ins for this tenant; retry in a moment")
        discovery = await self.issuers.discover(client.config.issuer)
        state, nonce, browser = (secrets.token_urlsafe(32) for _ in range(3))
        verifier, challenge = pkce_pair()
        callback_uri = str(request.url_for("oidc_callback", tenant_slug=slug))
        pending = PendingSignIn(
            tenant_slug=slug,
            issuer=client.config.issuer,
            client_id=client.config.client_id,
            callback_uri=callback_uri,
            redirect_uri=redirect_uri,
            client_state=client_state,
            code_verifier=verifier,
            nonce=nonce,
            browser=digest(browser),
            client_challenge=client_challenge,
        )
        await rt.run_blocking(put_entry, rt.sign_ins, state, pending, s.oidc_state_ttl_seconds)
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client.config.client_id,
                "redirect_uri": callback_uri,
                "scope": SCOPE,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        endpoint = discovery.authorization_endpoint
        authorization_url = f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
        # A page that asks for JSON gets the address to go to instead of a redirect: it can show
        # a refusal (no OIDC, a redirect URI not listed, ...) itself instead of a raw JSON page.
        response: Response = (
            JSONResponse({"authorizationUrl": authorization_url}, headers=NO_STORE)
            if "application/json" in request.headers.get("accept", "")
            else RedirectResponse(authorization_url, 302, headers=NO_STORE)
        )
        response.set_cookie(
            COOKIE,
            browser,
            max_age=s.oidc_state_ttl_seconds,
            path=request.url_for("oidc_callback", tenant_slug=slug).path,
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="lax",  # sent on the issuer's top-level redirect back, not on sub-requests
        )
        return response

    async def finish(
        self, request: Request, slug: str, state: str, code: str, error: str
    ) -> Response:
        rt = self.services()
        s = rt.settings
        pending = await rt.run_blocking(take_entry, rt.sign_ins, PendingSignIn, state)
        if pending is None or pending.tenant_slug != slug:
            raise InvalidInput("unknown, expired or already used sign-in state")
        browser = request.cookies.get(COOKIE, "")
        if not hmac.compare_digest(digest(browser), pending.browser):
            raise InvalidInput("this sign-in was started in another browser")
        if error:
            shown = error if error.replace("_", "").isalpha() and len(error) < 50 else "error"
            raise NotAuthenticated(f"the issuer did not sign you in ({shown})")
        if not code:
            raise InvalidInput("the issuer sent no code")
        client = await rt.run_blocking(oidc_client, rt.aggregates, rt.master_key, slug)
        config = client.config
        if (config.issuer, config.client_id) != (pending.issuer, pending.client_id) or (
            pending.redirect_uri not in config.redirect_uris
        ):
            raise InvalidInput("the tenant's OIDC configuration changed during the sign-in")
        discovery = await self.issuers.discover(config.issuer)
        id_token = await self.issuers.exchange_code(
            discovery,
            code=code,
            redirect_uri=pending.callback_uri,
            code_verifier=pending.code_verifier,
            client_id=config.client_id,
            client_secret=client.client_secret,
        )
        identity = await self.issuers.verify_id_token(
            discovery, id_token, client_id=config.client_id, nonce=pending.nonce
        )
        auth = await rt.run_blocking(
            rt.bus.handle,
            SignInWithOidc(
                tenant_id=client.tenant_id, email=identity.email, display_name=identity.name
            ),
        )
        one_time = secrets.token_urlsafe(32)
        finished = FinishedSignIn(
            tenant_slug=slug,
            tenant_id=str(auth.user.tenant_id),
            user_id=str(auth.user.id),
            role=auth.user.role.value,
            client_challenge=pending.client_challenge,
        )
        await rt.run_blocking(put_entry, rt.sign_ins, one_time, finished, s.oidc_code_ttl_seconds)
        back = {"code": one_time}
        if pending.client_state is not None:
            back["state"] = pending.client_state
        target = pending.redirect_uri
        response = RedirectResponse(
            f"{target}{'&' if '?' in target else '?'}{urlencode(back)}", 303, headers=NO_STORE
        )
        response.delete_cookie(COOKIE, path=request.url.path)
        return response

    async def exchange(self, slug: str, body: TokenRequest) -> Response:
        pair = await exchange_code(self.services(), slug, body.code, body.code_verifier)
        return JSONResponse(
            {
                "accessToken": pair.access_token,
                "refreshToken": pair.refresh_token,
                "tokenType": pair.token_type,
                "expiresIn": pair.expires_in,
                "user": user_body(pair),
                "position": pair.position,
            },
            headers=NO_STORE,
        )


async def exchange_code(
    rt: Services, slug: str, code: str, code_verifier: str | None
) -> LoginPayload:
    """Step 3: the one-time code (and the PKCE verifier, if the client sent a challenge) for a
    new sign-in of the user the callback found. Also the browser's cookie session's way in
    (api/browser_session.py)."""
    finished = await rt.run_blocking(take_entry, rt.sign_ins, FinishedSignIn, code)
    if finished is None or finished.tenant_slug != slug:
        raise NotAuthenticated("unknown, expired or already used code")
    if finished.client_challenge is not None and not hmac.compare_digest(
        s256(code_verifier or ""), finished.client_challenge
    ):
        raise NotAuthenticated("code_verifier does not match the code_challenge")
    actor = Actor(UUID(finished.user_id), UUID(finished.tenant_id), Role(finished.role))
    user = await rt.run_blocking(rt.authentication.active_user, actor)
    position = await rt.run_blocking(rt.aggregates.head)
    # A thread: starting a sign-in may write (a refresh token family), like `login` does.
    pair: LoginPayload = await rt.run_blocking(token_pair, rt, user, position)
    return pair


def own_origin(request: Request) -> str:
    """Parley's own origin as this request reached it: its scheme and Host (behind a proxy,
    uvicorn's --forwarded-allow-ips decides whether X-Forwarded-Proto counts)."""
    return f"{request.url.scheme}://{request.url.netloc}"


def check_not_own_page(request: Request) -> None:
    """The token endpoint answers a refresh token in its body: a script running in a page of
    Parley's own origin (an injected one, say) could run the flow in a popup and carry the
    sign-in away. Parley's pages use the cookie session instead; native apps (no Origin) and
    the allowed CORS origins are unaffected."""
    if request.headers.get("origin") == own_origin(request):
        raise NotAllowed(
            "Parley's own pages exchange the code at POST /auth/session/oidc "
            "(the refresh token stays in an HttpOnly cookie), not here"
        )


def error_response(e: ParleyError) -> JSONResponse:
    """A refusal as `{"error": {"code", "message"}}` with the status its code calls for (and
    `retryAfterSeconds` / `Retry-After` when the client should wait)."""
    error: dict[str, object] = {"code": e.code, "message": e.message}
    headers = dict(NO_STORE)
    retry = e.extensions.get("retryAfterSeconds")
    if retry is not None:
        error["retryAfterSeconds"] = retry
        headers["Retry-After"] = str(retry)
    return JSONResponse({"error": error}, status_code=STATUS.get(e.code, 400), headers=headers)


def oidc_router(s: Settings, services: Callable[[], Services]) -> APIRouter:
    """The sign-in routes, with their issuer caches; sign-ins in progress are kept where the
    runtime keeps shared state (`Services.sign_ins`: Redis, PostgreSQL or in process)."""
    flow = SignInFlow(
        services,
        Issuers(cache_seconds=s.oidc_cache_seconds, timeout_seconds=s.oidc_http_timeout_seconds),
    )
    router = APIRouter(prefix="/auth/oidc", include_in_schema=False)

    @router.get("/{tenant_slug}/login")
    async def oidc_login(
        request: Request,
        tenant_slug: str,
        redirect_uri: str = "",
        state: str | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
    ) -> Response:
        async def step() -> Response:
            if code_challenge is not None and code_challenge_method != "S256":
                raise InvalidInput("code_challenge_method must be S256")
            return await flow.start(request, tenant_slug, redirect_uri, state, code_challenge)

        return await _answer("start", tenant_slug, step)

    @router.get("/{tenant_slug}/callback", name="oidc_callback")
    async def oidc_callback(
        request: Request, tenant_slug: str, state: str = "", code: str = "", error: str = ""
    ) -> Response:
        async def step() -> Response:
            return await flow.finish(request, tenant_slug, state, code, error)

        return await _answer("callback", tenant_slug, step)

    @router.post("/{tenant_slug}/token")
    async def oidc_token(request: Request, tenant_slug: str, body: TokenRequest) -> Response:
        async def step() -> Response:
            check_not_own_page(request)  # before the code is taken: it stays good for /session
            return await flow.exchange(tenant_slug, body)

        return await _answer("exchange", tenant_slug, step)

    return router


async def _answer(step_name: str, slug: str, step: Any) -> Response:
    """Run a step; a refusal becomes the JSON error shape (and is counted and logged)."""
    try:
        response: Response = await step()
    except ParleyError as e:
        OIDC_SIGN_INS.labels(step_name, e.code.lower()).inc()
        log.info("OIDC sign-in %s refused for tenant %r: %s", step_name, slug[:63], e.message)
        return error_response(e)
    OIDC_SIGN_INS.labels(step_name, "ok").inc()
    return response


def _is_base64url(value: str) -> bool:
    return all(c.isascii() and (c.isalnum() or c in "-_") for c in value)
