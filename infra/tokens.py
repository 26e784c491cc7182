"""Signed JWTs: short-lived access tokens and longer-lived refresh tokens."""

import os
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import jwt

ALGORITHM = "HS256"


class InvalidToken(Exception):
    """The token is missing, malformed, expired, or not for us."""


@dataclass(frozen=True)
class Claims:
    user_id: UUID
    tenant_id: UUID
    role: str
    token_type: str
    expires_at: float


class TokenService:
    def __init__(
        self, secret: str, *, issuer: str, audience: str, access_ttl: int, refresh_ttl: int
    ) -> None:
        if len(secret) < 32:
            raise ValueError("the JWT secret must be at least 32 characters")
        self._secret = secret
        self._issuer = issuer
        self._audience = audience
        self._access_ttl = access_ttl
        self._refresh_ttl = refresh_ttl

    def issue(self, *, user_id: UUID, tenant_id: UUID, role: str, token_type: str) -> str:
        now = int(time.time())
        ttl = self._access_ttl if token_type == "access" else self._refresh_ttl
        payload = {
            "sub": str(user_id),
            "tid": str(tenant_id),
            "role": role,
            "typ": token_type,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self._secret, algorithm=ALGORITHM)

    def verify(self, token: str, *, token_type: str = "access") -> Claims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],  # a fixed list: no "none", no algorithm confusion
                audience=self._audience,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "sub", "tid", "role", "typ"]},
            )
            if payload["typ"] != token_type:
                raise InvalidToken(f"not an {token_type} token")
            return Claims(
                user_id=UUID(payload["sub"]),
                tenant_id=UUID(payload["tid"]),
                role=str(payload["role"]),
                token_type=payload["typ"],
                expires_at=float(payload["exp"]),
            )
        except jwt.ExpiredSignatureError as e:
            raise InvalidToken("token expired") from e
        except (jwt.InvalidTokenError, ValueError, KeyError) as e:
            raise InvalidToken("token invalid") from e


def load_or_create_secret(
    path: Path, generate: Callable[[], str] = lambda: secrets.token_urlsafe(48)
) -> str:
    """An embedded default's secret: generated once, kept owner-readable only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            secret = path.read_text().strip()
            if secret:
                return secret
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty") from None
    secret = generate()
    with os.fdopen(fd, "w") as f:
        f.write(secret)
    return secret
