"""Signed JWTs: short-lived access tokens and rotating refresh tokens, signed with Ed25519
(EdDSA) by the key ring in `infra/identity/signing_keys.py`; every token names its key in `kid`."""

import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

import jwt

from infra.lru import Lru

VERIFIED_TOKENS_CACHED = 10_000

if TYPE_CHECKING:  # type only: signing_keys needs none of this module
    from infra.identity.signing_keys import SigningKeys

ALGORITHM = "EdDSA"
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "iss", "aud", "sub", "tid", "role", "typ", "jti")
ACCESS = "access"
REFRESH = "refresh"


class InvalidToken(Exception):
    """The token is missing, malformed, expired, revoked, or not for us."""


@dataclass(frozen=True)
class Claims:
    user_id: UUID
    tenant_id: UUID
    role: str
    token_type: str
    expires_at: float
    token_id: str
    session_id: UUID | None
    """The sign-in (refresh token family) the token belongs to; None for tokens minted outside
    a sign-in (e.g. `parley demo`)."""


class TokenService:
    def __init__(
        self,
        keys: "SigningKeys",
        *,
        issuer: str,
        audience: str,
        access_ttl: int,
        refresh_ttl: int,
        leeway: int = 0,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self._leeway = leeway
        self._verified: Lru[str, tuple[str, Claims]] = Lru(VERIFIED_TOKENS_CACHED)

    def issue(
        self,
        *,
        user_id: UUID,
        tenant_id: UUID,
        role: str,
        token_type: str = ACCESS,
        session_id: UUID | None = None,
        token_id: str | None = None,
        expires_at: float | None = None,
    ) -> str:
        """A signed token. Refresh tokens come from a recorded sign-in (`RefreshTokens`): they
        need its session id, token id and expiry."""
        if token_type == REFRESH and (session_id is None or token_id is None or not expires_at):
            raise ValueError("a refresh token needs its session, token id and expiry")
        if token_type not in (ACCESS, REFRESH):
            raise ValueError(f"unknown token type {token_type!r}")
        now = int(time.time())
        payload = {
            "sub": str(user_id),
            "tid": str(tenant_id),
            "role": role,
            "typ": token_type,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "nbf": now,
            "exp": int(expires_at) if expires_at else now + self._access_ttl,
            "jti": token_id or uuid.uuid4().hex,
        }
        if session_id is not None:
            payload["sid"] = str(session_id)
        signer = self._keys.signer()
        return jwt.encode(
            payload, signer.private_key, algorithm=ALGORITHM, headers={"kid": signer.kid}
        )

    def verify(self, token: str, *, token_type: str = ACCESS) -> Claims:
        """The token's claims; raises InvalidToken.

        A token verified before is answered from a bounded cache keyed by the whole token (its
        signature included): a client sends the same token with every request for its lifetime,
        and an Ed25519 verification is the dearest part of one. The cache still refuses it once
        expired or once its signing key is retired."""
        known = self._verified.get(token)
        if known is not None:
            kid, claims = known
            if (
                claims.token_type == token_type
                and time.time() < claims.expires_at + self._leeway
                and self._keys.public_key(kid) is not None
            ):
                return claims
        claims, kid = self._verify(token, token_type)
        self._verified.put(token, (kid, claims))
        return claims

    def _verify(self, token: str, token_type: str) -> tuple[Claims, str]:
        try:
            header = jwt.get_unverified_header(token)
            # Checked before any key is chosen: only EdDSA, and only keys of our ring.
            if header.get("alg") != ALGORITHM:
                raise InvalidToken("token invalid")
            kid = header.get("kid")
            key = self._keys.public_key(kid) if isinstance(kid, str) else None
            if key is None or not isinstance(kid, str):
                raise InvalidToken("token signed by an unknown or retired key")
            payload = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],  # a fixed list: no "none", no algorithm confusion
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": list(REQUIRED_CLAIMS)},
            )
            if payload["typ"] != token_type:
                raise InvalidToken(
                    f"not {'an access' if token_type == ACCESS else 'a refresh'} token"
                )
            sid = payload.get("sid")
            claims = Claims(
                user_id=UUID(payload["sub"]),
                tenant_id=UUID(payload["tid"]),
                role=str(payload["role"]),
                token_type=payload["typ"],
                expires_at=float(payload["exp"]),
                token_id=str(payload["jti"]),
                session_id=UUID(sid) if sid is not None else None,
            )
            return claims, kid
        except jwt.ExpiredSignatureError as e:
            raise InvalidToken("token expired") from e
        except jwt.ImmatureSignatureError as e:
            raise InvalidToken("token not yet valid") from e
        except (jwt.InvalidTokenError, ValueError, KeyError, TypeError) as e:
            raise InvalidToken("token invalid") from e
