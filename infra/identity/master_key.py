"""Secrets at rest under the master key (`PARLEY_MASTER_KEY`): AES-256-GCM, the context bound in
as associated data, so a ciphertext moved to another tenant, provider or data subject does not
decrypt.

A sealed value is `v2.<key id>.<base64url(nonce ‖ ciphertext+tag)>`, the key id being the master
key's fingerprint; values sealed before key ids (`v1.<…>`) are opened by trying every key. Only
sealed values are ever stored. Rotation: the new key goes in `PARLEY_MASTER_KEY`, the old ones
in `PARLEY_MASTER_KEY_PREVIOUS` (comma-separated) until `parley keys rotate-master` has re-sealed
everything under the new one (docs/security.md). Fingerprints (SHA-256, 12 hex digits) and the
last four characters are what admins see of tenants' provider keys."""

import base64
import hashlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from infra.identity.secret_files import load_or_create_secret

PREFIX_V1 = "v1."
PREFIX = "v2."


class MasterKey:
    """The current master key (seals) and any previous ones (still open what they sealed)."""

    def __init__(self, key: bytes, previous: Sequence[bytes] = ()) -> None:
        for k in (key, *previous):
            if len(k) != 32:
                raise ValueError("a master key must be 32 bytes (base64 of 32 random bytes)")
        self.key_id = key_id_of(key)
        self._aead = AESGCM(key)
        self._ring = {key_id_of(k): AESGCM(k) for k in (*previous, key)}

    @classmethod
    def from_setting(
        cls, value: str | None, data_dir: Path, previous: str | None = None
    ) -> "MasterKey":
        """PARLEY_MASTER_KEY (base64), or the embedded default's key generated in data_dir;
        `previous`: PARLEY_MASTER_KEY_PREVIOUS, comma-separated base64 keys."""
        if value is None:
            value = load_or_create_secret(data_dir / "master-key", new_master_key)
        old = [base64.b64decode(v) for v in (previous or "").split(",") if v.strip()]
        return cls(base64.b64decode(value), old)

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._ring)

    def seal_bytes(self, plaintext: bytes, context: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode())
        return f"{PREFIX}{self.key_id}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open_bytes(self, token: str, context: str) -> bytes:
        if token.startswith(PREFIX):
            kid, _, body = token[len(PREFIX) :].partition(".")
            aead = self._ring.get(kid)
            if aead is None:
                raise ValueError(f"sealed under master key {kid}, which is not configured")
            candidates = [aead]
        elif token.startswith(PREFIX_V1):
            body, candidates = token[len(PREFIX_V1) :], list(self._ring.values())
        else:
            raise ValueError("not a sealed value")
        raw = base64.urlsafe_b64decode(body)
        for aead in candidates:
            try:
                return aead.decrypt(raw[:12], raw[12:], context.encode())
            except InvalidTag:
                continue
        raise ValueError("the sealed value does not open with any configured master key")

    def seal(self, plaintext: str, context: str) -> str:
        return self.seal_bytes(plaintext.encode(), context)

    def open(self, token: str, context: str) -> str:
        return self.open_bytes(token, context).decode()

    def reseal(self, token: str, context: str) -> str:
        """The same secret sealed under the current key (master key rotation)."""
        return self.seal_bytes(self.open_bytes(token, context), context)

    def is_current(self, token: str) -> bool:
        """Sealed under the current key (nothing to re-seal at rotation)."""
        return token.startswith(f"{PREFIX}{self.key_id}.")


def key_id_of(key: bytes) -> str:
    return hashlib.sha256(b"parley-master-key\x00" + key).hexdigest()[:16]


def new_master_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:12]
