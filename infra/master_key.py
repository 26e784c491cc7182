"""Secrets at rest under the master key (`PARLEY_MASTER_KEY`): AES-256-GCM, the context bound in
as associated data, so a ciphertext moved to another tenant or provider does not decrypt.

A sealed value is `v1.<base64url(nonce ‖ ciphertext+tag)>`; only that is ever stored (in events,
hence on Kafka too). Fingerprints (SHA-256, 12 hex digits) and the last four characters are what
admins see."""

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from infra.tokens import load_or_create_secret

PREFIX = "v1."


class MasterKey:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the master key must be 32 bytes (base64 of 32 random bytes)")
        self._aead = AESGCM(key)

    @classmethod
    def from_setting(cls, value: str | None, data_dir: Path) -> "MasterKey":
        """PARLEY_MASTER_KEY (base64), or the embedded default's key generated in data_dir."""
        if value is None:
            value = load_or_create_secret(data_dir / "master-key", _new_key)
        return cls(base64.b64decode(value))

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode()

    def open(self, token: str, context: str) -> str:
        if not token.startswith(PREFIX):
            raise ValueError("not a sealed value")
        raw = base64.urlsafe_b64decode(token[len(PREFIX) :])
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()


def _new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]
