"""OpenID Connect for sign-in: issuers' discovery documents and signing keys (cached), the
authorization-code exchange and ID token validation. The state of sign-ins in progress is
`oidc_sign_ins`.

joserfc imports the issuers' keys and verifies signatures, authlib's `CodeIDToken` checks the
claims. Only what tenants' issuers say over TLS is trusted (http only on loopback addresses, see
`check_web_url`); redirects are never followed, answers are bounded in size."""

import json
import logging
import secrets
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jws, jwt
from joserfc.errors import BadSignatureError, ClaimError, ExpiredTokenError, JoseError
from joserfc.jwk import JWKRegistry, Key, RSAKey

from domain.errors import InvalidInput, NotAuthenticated, ParleyError
from domain.oidc import check_web_url
from infra.lru import Lru

log = logging.getLogger(__name__)

ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA"})
"""ID token signatures Parley accepts: asymmetric only (never `none`, never HS*)."""
LEEWAY_SECONDS = 60
"""Clock skew tolerated between Parley and an issuer."""
MAX_DOCUMENT_BYTES = 256 * 1024
MIN_RSA_BITS = 2048
ERROR_CODE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz_")
CLAIM_ERRORS = {
    "iss": "the ID token is from another issuer",
    "aud": "the ID token is for another client",
    "azp": "the ID token was issued to another party (azp)",
    "nonce": "the ID token's nonce does not match this sign-in",
}


class IssuerUnavailable(ParleyError):
    """The issuer did not answer, or answered something that is not OpenID Connect."""

    code = "UNAVAILABLE"


class InvalidIdToken(NotAuthenticated):
    """The ID token does not prove who signed in (signature, issuer, audience, time, nonce)."""


@dataclass(frozen=True)
class Discovery:
    """The parts of an issuer's `/.well-known/openid-configuration` that Parley uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_auth_methods: tuple[str, ...]


@dataclass(frozen=True)
class Identity:
    """Who the issuer vouched for."""

    subject: str
    email: str
    name: str | None


def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)


def s256(verifier: str) -> str:
    return str(create_s256_code_challenge(verifier))


class Issuers:
    """The OpenID Connect issuers tenants trust: discovery, code exchange, ID token checks."""

    def __init__(
        self,
        *,
        cache_seconds: float,
        timeout_seconds: float,
        max_issuers: int = 256,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._cache_seconds = cache_seconds
        self._discovery: Lru[str, Discovery] = Lru(max_issuers)
        self._keys: Lru[str, list[Key]] = Lru(max_issuers)
        self._timeout = timeout_seconds
        self._transport = transport

    async def discover(self, issuer: str) -> Discovery:
        cached = self._discovery.get(issuer)
        if cached is not None:
            return cached
        doc = await self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        discovery = _parse_discovery(doc, issuer)
        self._discovery.put(issuer, discovery, ttl=self._cache_seconds)
        return discovery

    async def exchange_code(
        self,
        discovery: Discovery,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        client_id: str,
        client_secret: str | None,
    ) -> str:
        """The ID token for an authorization code, from the issuer's token endpoint."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers = {"Accept": "application/json"}
        auth, methods = None, discovery.token_auth_methods
        if client_secret is None:
            form["client_id"] = client_id
        elif "client_secret_basic" in methods or "client_secret_post" not in methods:
            # RFC 6749 §2.3.1: both form-encoded before Basic's base64.
            auth = httpx.BasicAuth(quote_plus(client_id), quote_plus(client_secret))
        else:
            form |= {"client_id": client_id, "client_secret": client_secret}
        try:
            async with self._client(auth) as client:
                r = await client.post(discovery.token_endpoint, data=form, headers=headers)
        except httpx.HTTPError as e:
            raise _unavailable(discovery.issuer, f"token endpoint: {type(e).__name__}") from None
        body = _json_object(r.content)
        if 400 <= r.status_code < 500:
            error = str(body.get("error", "")) if body else ""
            shown = error if error and set(error) <= ERROR_CODE_CHARS and len(error) < 50 else ""
            raise NotAuthenticated(f"the issuer refused the sign-in ({shown or r.status_code})")
        if r.status_code != 200 or body is None:
            raise _unavailable(discovery.issuer, f"token endpoint answered {r.status_code}")
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise _unavailable(discovery.issuer, "the token endpoint sent no ID token")
        return id_token

    async def verify_id_token(
        self, discovery: Discovery, id_token: str, *, client_id: str, nonce: str
    ) -> Identity:
        """Check the ID token against the issuer's published keys; refetch them once when it
        names a key they do not have (the issuer rotated its keys)."""
        try:
            header = jws.extract_compact(id_token.encode()).headers()
        except (JoseError, ValueError):
            raise InvalidIdToken("the ID token is not a JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise InvalidIdToken(f"ID tokens signed with {alg!r} are not accepted")
        key = _pick(await self._signing_keys(discovery), kid, alg)
        if key is None:
            key = _pick(await self._signing_keys(discovery, refresh=True), kid, alg)
        if key is None:
            raise InvalidIdToken("the ID token is signed with a key the issuer does not publish")
        return validate_id_token(
            id_token, key, alg, issuer=discovery.issuer, client_id=client_id, nonce=nonce
        )

    async def _signing_keys(self, discovery: Discovery, *, refresh: bool = False) -> list[Key]:
        cached = None if refresh else self._keys.get(discovery.jwks_uri)
        if cached is not None:
            return cached
        keys = _parse_jwks(await self._get_json(discovery.jwks_uri))
        self._keys.put(discovery.jwks_uri, keys, ttl=self._cache_seconds)
        return keys

    def _client(self, auth: httpx.Auth | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            auth=auth, timeout=self._timeout, follow_redirects=False, transport=self._transport
        )

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with (
                self._client() as client,
                client.stream("GET", url, headers={"Accept": "application/json"}) as r,
            ):
                if r.status_code != 200:
                    raise _unavailable(url, f"answered {r.status_code}")
                content = b""
                async for chunk in r.aiter_bytes():
                    content += chunk
                    if len(content) > MAX_DOCUMENT_BYTES:
                        raise _unavailable(url, "answered more than 256 KiB")
        except httpx.HTTPError as e:
            raise _unavailable(url, type(e).__name__) from None
        body = _json_object(content)
        if body is None:
            raise _unavailable(url, "answered something that is not a JSON object")
        return body


def validate_id_token(
    id_token: str,
    key: Key,
    alg: str,
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    max_age_seconds: float = 3600,
) -> Identity:
    """OpenID Connect Core §3.1.3.7: the signature (joserfc), iss, aud, azp, exp, nbf, iat and
    nonce (authlib); then Parley's own rules: not too old, a verified e-mail address."""
    # Unknown header parameters are allowed, as the JWS specification allows them (not `crit`).
    registry = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
    try:
        token = jwt.decode(id_token, key, registry=registry)
        claims = CodeIDToken(
            token.claims,
            token.header,
            options={
                "iss": {"essential": True, "value": issuer},
                "aud": {"essential": True, "value": client_id},
                "nonce": {"essential": True, "value": nonce},
                "azp": {"value": client_id},  # when present; authlib requires it for several aud
            },
            params={"client_id": client_id},
        )
        claims.validate(leeway=LEEWAY_SECONDS)
    except BadSignatureError:
        raise InvalidIdToken("the ID token's signature does not verify") from None
    except ExpiredTokenError:
        raise InvalidIdToken("the ID token has expired") from None
    except ClaimError as e:
        why = CLAIM_ERRORS.get(e.claim, f"the ID token is invalid ({e.description})")
        raise InvalidIdToken(why) from None
    except JoseError as e:
        raise InvalidIdToken(f"the ID token is invalid ({e.error})") from None
    if claims["iat"] < time.time() - max_age_seconds - LEEWAY_SECONDS:
        raise InvalidIdToken("the ID token was issued too long ago")
    email = claims.get("email")
    if not isinstance(email, str) or not email:
        raise InvalidIdToken("the ID token has no e-mail address")
    # Some issuers (Cognito) send the boolean as a string.
    if claims.get("email_verified") not in (True, "true"):
        raise InvalidIdToken("the issuer has not verified the e-mail address")
    name = claims.get("name")
    return Identity(
        subject=claims["sub"], email=email, name=name if isinstance(name, str) else None
    )


def _parse_discovery(doc: dict[str, Any], issuer: str) -> Discovery:
    if doc.get("issuer") != issuer:
        # OpenID Connect Discovery §4.3: otherwise another issuer could be impersonated.
        raise _unavailable(issuer, "the discovery document names another issuer")
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = doc.get(name)
        try:
            endpoints[name] = check_web_url(value, field=name) if isinstance(value, str) else ""
        except InvalidInput:
            endpoints[name] = ""
        if not endpoints[name]:
            raise _unavailable(issuer, f"the discovery document has no usable {name}")
    challenges = doc.get("code_challenge_methods_supported")
    if isinstance(challenges, list) and "S256" not in challenges:
        raise _unavailable(issuer, "the issuer does not support PKCE with S256")
    methods = doc.get("token_endpoint_auth_methods_supported")
    return Discovery(
        issuer=issuer,
        token_auth_methods=tuple(m for m in methods if isinstance(m, str))
        if isinstance(methods, list)
        else (),
        **endpoints,
    )


def _parse_jwks(doc: dict[str, Any]) -> list[Key]:
    """The keys of a JWK set that joserfc can import; `_fits` decides what each is good for."""
    keys: list[Key] = []
    raw = doc.get("keys")
    for entry in raw if isinstance(raw, list) else []:
        with suppress(JoseError, ValueError, TypeError):
            keys.append(JWKRegistry.import_key(entry))
    return keys


def _fits(key: Key, alg: str) -> bool:
    """Whether joserfc would verify `alg` with the key (use, type, curve, own `alg`); RSA ≥ 2048."""
    if isinstance(key, RSAKey) and key.public_key.key_size < MIN_RSA_BITS:
        return False
    with suppress(JoseError):
        jws.JWSRegistry.algorithms[alg].check_key(key)
        return True
    return False


def _pick(keys: list[Key], kid: object, alg: str) -> Key | None:
    """The key the token names, used only with an algorithm that key is for."""
    fitting = [key for key in keys if _fits(key, alg)]
    if kid is not None:
        return next((key for key in fitting if key.kid == kid), None)
    return fitting[0] if len(fitting) == 1 else None


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(content)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _unavailable(where: str, why: str) -> IssuerUnavailable:
    log.warning("OIDC issuer problem at %s: %s", where, why)
    return IssuerUnavailable("the sign-in issuer is unavailable or misconfigured")


# The sign-in flow (api/oidc_sign_in.py) imports the state of sign-ins in progress from here too.
