"""The keys that sign access and refresh tokens: Ed25519, shared by every API process through
PostgreSQL, the private halves sealed under the master key.

One key signs at a time (the newest). `rotate` makes a new key the signer; each former signer
keeps verifying until every token it may have signed has expired (`retire_after`), and is then
retired: it leaves the JWKS, stops verifying and its sealed private half is erased. Processes
re-read the keys every `cache_seconds`, and at once (at most once a second) on an unknown key id.
"""

import base64
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from psycopg import Connection
from psycopg_pool import ConnectionPool

from infra.identity.master_key import MasterKey

log = logging.getLogger(__name__)

_LOCK = 0x50415554  # "PAUT": one process creates or rotates keys at a time
_UNKNOWN_KID_RELOAD_SECONDS = 1.0
"""An unknown `kid` re-reads the keys at most this often: forged ids cannot flood the database."""


@dataclass(frozen=True)
class PublicKey:
    kid: str
    key: Ed25519PublicKey
    raw: bytes
    retire_after: float | None
    """Unix time after which it verifies nothing (None: the signer, or not superseded yet)."""

    def usable(self, now: float) -> bool:
        return self.retire_after is None or now < self.retire_after

    def jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64url(self.raw),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }


@dataclass(frozen=True)
class Signer:
    kid: str
    private_key: Ed25519PrivateKey


@dataclass(frozen=True)
class KeyState:
    kid: str
    created_at: datetime
    superseded_at: datetime | None
    retire_after: datetime | None
    retired_at: datetime | None

    @property
    def state(self) -> str:
        if self.retired_at is not None:
            return "retired"
        return "signing" if self.superseded_at is None else "verifying"


class SigningKeys:
    """The key ring as this process sees it: the signer and every key that still verifies."""

    def __init__(
        self,
        pool: ConnectionPool,
        master_key: MasterKey,
        *,
        max_token_seconds: float,
        cache_seconds: float,
    ) -> None:
        self._pool = pool
        self._master_key = master_key
        self.retire_delay = max_token_seconds + cache_seconds
        """From a key's last signature to its retirement: the longest token it can have signed,
        plus the time other processes may go on signing with it before they re-read the ring."""
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._signer: Signer | None = None
        self._public: dict[str, PublicKey] = {}
        self._loaded_at = float("-inf")

    def ensure(self) -> None:
        """Create the first key if there is none (first start), then load the ring."""
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
                if conn.execute("SELECT 1 FROM auth_signing_keys LIMIT 1").fetchone() is None:
                    kid = _insert_key(conn, self._master_key)
                    log.warning("created the first token signing key %s", kid)
        except psycopg.errors.UndefinedTable:
            raise RuntimeError("no table of token signing keys: run `parley migrate`") from None
        self.reload()

    def rotate(self, *, retire_previous: bool = False) -> tuple[str, list[str]]:
        """A new signer; the former ones retire once their tokens expired, or at once with
        `retire_previous` (a suspected compromise: every token they signed stops working).
        Returns the new key id and the ids retired now."""
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
            conn.execute(
                "UPDATE auth_signing_keys SET superseded_at = now(),"
                " retire_after = now() + make_interval(secs => %s)"
                " WHERE superseded_at IS NULL",
                (0 if retire_previous else self.retire_delay,),
            )
            if retire_previous:
                conn.execute(
                    "UPDATE auth_signing_keys SET retire_after = now()"
                    " WHERE retired_at IS NULL AND superseded_at IS NOT NULL"
                )
            kid = _insert_key(conn, self._master_key)
            retired = _retire_expired(conn)
        log.warning("token signing key %s is now the signer; retired: %s", kid, retired or "none")
        self.reload()
        return kid, retired

    def states(self) -> list[KeyState]:
        """Every key ever made, newest first, for operators."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT kid, created_at, superseded_at, retire_after, retired_at"
                " FROM auth_signing_keys ORDER BY created_at DESC"
            ).fetchall()
        return [KeyState(*row) for row in rows]

    def reload(self) -> None:
        """Re-read the ring (and retire keys past their time: any process may)."""
        with self._pool.connection() as conn, conn.transaction():
            retired = _retire_expired(conn)
            rows = conn.execute(
                "SELECT kid, public_key, sealed_private_key, superseded_at IS NULL,"
                " extract(epoch FROM retire_after)"
                " FROM auth_signing_keys WHERE retired_at IS NULL"
            ).fetchall()
        if retired:
            log.warning("retired token signing keys %s: their tokens have all expired", retired)
        public: dict[str, PublicKey] = {}
        signer: Signer | None = None
        for kid, raw, sealed, is_signer, retire_after in rows:
            raw = bytes(raw)
            public[kid] = PublicKey(
                kid=kid,
                key=Ed25519PublicKey.from_public_bytes(raw),
                raw=raw,
                retire_after=None if retire_after is None else float(retire_after),
            )
            if is_signer:
                private = base64.b64decode(self._master_key.open(sealed, _context(kid)))
                signer = Signer(kid, Ed25519PrivateKey.from_private_bytes(private))
        if signer is None:
            raise RuntimeError("no token signing key: the ring was not created (ensure())")
        with self._lock:
            self._public, self._signer = public, signer
            self._loaded_at = time.monotonic()

    def signer(self) -> Signer:
        self._refresh_if_stale()
        assert self._signer is not None
        return self._signer

    def public_key(self, kid: str) -> PublicKey | None:
        """The key that verifies tokens with this id, if it still may."""
        self._refresh_if_stale()
        key = self._public.get(kid)
        if key is None and time.monotonic() - self._loaded_at >= _UNKNOWN_KID_RELOAD_SECONDS:
            self._reload_keeping_cache()  # a key another process made since we last looked?
            key = self._public.get(kid)
        if key is None or not key.usable(time.time()):
            return None
        return key

    def jwks(self) -> dict[str, Any]:
        """Every key that may still have valid tokens out, as a JWK Set (public halves only)."""
        self._refresh_if_stale()
        now = time.time()
        keys = sorted(self._public.values(), key=lambda k: k.kid)
        return {"keys": [k.jwk() for k in keys if k.usable(now)]}

    def _refresh_if_stale(self) -> None:
        if time.monotonic() - self._loaded_at >= self._cache_seconds:
            self._reload_keeping_cache()

    def _reload_keeping_cache(self) -> None:
        try:
            self.reload()
        except psycopg.Error:
            if self._signer is None:
                raise
            # The database is away: keep the ring we have (retirement times still apply).
            log.warning("could not re-read the token signing keys; using the cached ring")
            self._loaded_at = time.monotonic()


def reseal_private_keys(conn: Connection[Any], master_key: MasterKey) -> int:
    """Re-seal the live private keys not sealed under the current master key yet (master key
    rotation); returns how many."""
    rows = conn.execute(
        "SELECT kid, sealed_private_key FROM auth_signing_keys"
        " WHERE sealed_private_key IS NOT NULL FOR UPDATE"
    ).fetchall()
    stale = [(kid, sealed) for kid, sealed in rows if not master_key.is_current(sealed)]
    for kid, sealed in stale:
        conn.execute(
            "UPDATE auth_signing_keys SET sealed_private_key = %s WHERE kid = %s",
            (master_key.reseal(sealed, _context(kid)), kid),
        )
    return len(stale)


def _insert_key(conn: Connection[Any], master_key: MasterKey) -> str:
    private = Ed25519PrivateKey.generate()
    raw_public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    raw_private = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    kid = thumbprint(raw_public)
    conn.execute(
        "INSERT INTO auth_signing_keys (kid, public_key, sealed_private_key) VALUES (%s, %s, %s)",
        (kid, raw_public, master_key.seal(base64.b64encode(raw_private).decode(), _context(kid))),
    )
    return kid


def _retire_expired(conn: Connection[Any]) -> list[str]:
    """Retire superseded keys past their time; their private halves are erased."""
    rows = conn.execute(
        "UPDATE auth_signing_keys SET retired_at = now(), sealed_private_key = NULL"
        " WHERE retired_at IS NULL AND retire_after <= now() RETURNING kid"
    ).fetchall()
    return [r[0] for r in rows]


def thumbprint(raw_public: bytes) -> str:
    """The key id: the RFC 7638 JWK thumbprint (SHA-256) of the public key."""
    canonical = json.dumps(
        {"crv": "Ed25519", "kty": "OKP", "x": _b64url(raw_public)},
        separators=(",", ":"),
        sort_keys=True,
    )
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def _context(kid: str) -> str:
    """Sealed private keys are bound to their id: a ciphertext moved to another row fails."""
    return f"token-signing-key:{kid}"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
