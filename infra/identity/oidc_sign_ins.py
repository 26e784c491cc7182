"""OpenID Connect sign-ins in progress: the short-lived, single-use state kept between the
redirect to the issuer and its callback (`PendingSignIn`), and between the callback and the
client's code exchange (`FinishedSignIn`); in Redis when configured, in process otherwise. Keys
are digests of the one-time secrets, never the secrets themselves."""

import hashlib
import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from psycopg.types.json import Jsonb

from domain.errors import RateLimited

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

T = TypeVar("T")


def digest(secret: str) -> str:
    """How a one-time secret (state, code, browser binding) is kept: never as itself."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class PendingSignIn:
    """Between the redirect to the issuer and its callback; keyed by the digest of `state`."""

    tenant_slug: str
    issuer: str
    client_id: str
    callback_uri: str
    redirect_uri: str
    client_state: str | None
    code_verifier: str
    nonce: str
    browser: str
    """Digest of the cookie set on the browser that started the sign-in."""
    client_challenge: str | None
    """The client's own S256 challenge for the one-time code, if it sent one."""


@dataclass(frozen=True)
class FinishedSignIn:
    """Between the callback and the client's exchange; keyed by the digest of the one-time code."""

    tenant_slug: str
    tenant_id: str
    user_id: str
    role: str
    client_challenge: str | None


class SignInStore(Protocol):
    """Single-use entries that expire: each is taken at most once."""

    def put(self, key: str, value: dict[str, Any], ttl: float) -> None: ...

    def take(self, key: str) -> dict[str, Any] | None: ...


def put_entry(
    store: SignInStore, key: str, entry: PendingSignIn | FinishedSignIn, ttl: float
) -> None:
    store.put(f"{type(entry).__name__}:{digest(key)}", asdict(entry), ttl)


def take_entry(store: SignInStore, kind: type[T], key: str) -> T | None:
    if not key or len(key) > 200:
        return None
    value = store.take(f"{kind.__name__}:{digest(key)}")
    try:
        return kind(**value) if value is not None else None
    except TypeError:  # written by another version of Parley
        return None


class MemorySignInStore:
    """For a single process: bounded, so a flood of started sign-ins cannot exhaust memory."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self.max_entries:
                raise RateLimited("too many sign-ins in progress; retry in a moment")
            self._entries[key] = (now + ttl, value)

    def take(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.pop(key, None)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]


class RedisSignInStore:
    """Shared by every API process: the callback may reach another one than the start did."""

    PREFIX = "parley:oidc:"

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=2)

    def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        self._client.set(self.PREFIX + key, json.dumps(value), px=max(1, int(ttl * 1000)))

    def take(self, key: str) -> dict[str, Any] | None:
        raw = self._client.getdel(self.PREFIX + key)  # atomic: a replay finds nothing
        return json.loads(raw) if raw is not None else None  # type: ignore[arg-type]


class PostgresSignInStore:
    """Shared by every API process on the database, when there is no Redis."""

    def __init__(self, pool: "ConnectionPool") -> None:
        self._pool = pool

    def put(self, key: str, value: dict[str, Any], ttl: float) -> None:
        with self._pool.connection() as conn:
            conn.execute("DELETE FROM sign_ins_in_progress WHERE expires_at < now()")
            conn.execute(
                """INSERT INTO sign_ins_in_progress (key, value, expires_at)
                   VALUES (%s, %s, now() + make_interval(secs => %s))
                   ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                       expires_at = excluded.expires_at""",
                (key, Jsonb(value), ttl),
            )

    def take(self, key: str) -> dict[str, Any] | None:
        with self._pool.connection() as conn:
            row = conn.execute(  # atomic: a replay finds nothing
                "DELETE FROM sign_ins_in_progress WHERE key = %s AND expires_at >= now()"
                " RETURNING value",
                (key,),
            ).fetchone()
        return dict(row[0]) if row is not None else None
