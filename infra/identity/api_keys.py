"""Service accounts' API keys: `pk_<key id>_<secret>`, of which only the secret's SHA-256 is kept.

The key id starts with the tenant id (hex), so a key names the one tenant whose keys are looked
up to check it; the secret is 256 random bits, so an unsalted SHA-256 is enough to store it
(nothing to brute-force, unlike a password)."""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from uuid import UUID

PREFIX = "pk_"
_KEY = re.compile(
    r"^pk_(?P<tenant>[0-9a-f]{32})(?P<rest>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$"
)


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    token: str
    """The whole key, for the caller once; never stored."""
    secret_sha256: str
    last4: str


@dataclass(frozen=True)
class PresentedKey:
    tenant_id: UUID
    key_id: str
    secret: str


def issue_api_key(tenant_id: UUID) -> IssuedKey:
    key_id = tenant_id.hex + secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)  # 43 characters, 256 bits
    token = f"{PREFIX}{key_id}_{secret}"
    return IssuedKey(key_id, token, secret_digest(secret), token[-4:])


def looks_like_api_key(credential: str) -> bool:
    return credential.startswith(PREFIX)


def parse_api_key(credential: str) -> PresentedKey | None:
    """The parts of a well-formed key (None: not one of ours)."""
    match = _KEY.match(credential)
    if match is None:
        return None
    return PresentedKey(UUID(hex=match["tenant"]), match["tenant"] + match["rest"], match["secret"])


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def secret_matches(secret: str, stored_sha256: str) -> bool:
    """Constant-time: how much of a guess was right must not show in the response time."""
    return hmac.compare_digest(secret_digest(secret), stored_sha256)
