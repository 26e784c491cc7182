"""Data keys: one AES-256 key per data subject, wrapped by the master key, destroyable.

Every aggregate that holds personal data has its own data key, with the aggregate's id as key
id: a user's profile is under the user's key, a chat's title and messages under the chat's key
(owned by the chat's owner), so erasing a user destroys their key and their chats' keys, and
retention destroys one chat's key. Destroying a key deletes its wrapped bytes; the events keep
their ciphertext, which nothing can decrypt any more (crypto-shredding).

Keys live in `data_keys` (never in the log, never on Kafka). Unwrapped keys are cached per
process with a bound and a time to live: an erasure in another process takes effect here within
`ttl` seconds (a local erasure at once).
"""

import base64
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg_pool import ConnectionPool

from infra.identity.master_key import MasterKey
from infra.lru import Lru

log = logging.getLogger(__name__)


class SubjectErased(Exception):
    """The data subject's key was destroyed: nothing personal can be written for it again."""


@dataclass(frozen=True)
class Subject:
    key_id: UUID
    tenant_id: UUID
    owner_id: UUID | None
    kind: str


_DESTROYED = b""


class DataKeys:
    def __init__(
        self,
        pool: ConnectionPool,
        master_key: MasterKey,
        *,
        cache_size: int = 10_000,
        ttl: float = 60.0,
        owns_pool: bool = False,
    ) -> None:
        self._pool = pool
        self._owns_pool = owns_pool
        self._master = master_key
        self._ttl = ttl
        self._cache: Lru[UUID, bytes] = Lru(cache_size)

    @classmethod
    def standalone(cls, conninfo: str, master_key: MasterKey | None = None) -> "DataKeys":
        """Keys with a pool of their own (tools, tests); a random master key unless given."""
        from infra.postgres import open_pool

        master = master_key or MasterKey(os.urandom(32))
        return cls(open_pool(conninfo, size=2, name="data-keys"), master, owns_pool=True)

    def close(self) -> None:
        if self._owns_pool:
            self._pool.close()

    def connection(self) -> Any:
        """A connection of the keys' pool (one transaction for several key operations)."""
        return self._pool.connection()

    # -- reading and creating --------------------------------------------------------------

    def get(self, key_id: UUID) -> bytes | None:
        """The subject's key; None once destroyed (or never created)."""
        cached = self._cached(key_id)
        if cached is not None:
            return cached or None
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT wrapped FROM data_keys WHERE key_id = %s", (key_id,)
            ).fetchone()
        if row is None:
            return None  # not remembered: it may be created in a moment
        key = self._unwrap(key_id, row[0])
        self._remember(key_id, key or _DESTROYED)
        return key

    def destroyed(self, key_id: UUID) -> bool:
        """True once the subject's key was destroyed (False too when it never had one)."""
        if self._cached(key_id) == _DESTROYED:
            return True
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT destroyed_at IS NOT NULL FROM data_keys WHERE key_id = %s", (key_id,)
            ).fetchone()
        return bool(row and row[0])

    def destroyed_among(self, key_ids: Iterable[UUID]) -> set[UUID]:
        """Those of `key_ids` whose key was destroyed (one query for the ones not known)."""
        wanted = set(key_ids)
        known = {k for k in wanted if self._cached(k) == _DESTROYED}
        unknown = [k for k in wanted - known if self._cached(k) is None]
        if unknown:
            with self._pool.connection() as conn:
                rows = conn.execute(
                    """SELECT key_id FROM data_keys
                       WHERE key_id = ANY(%s) AND destroyed_at IS NOT NULL""",
                    (unknown,),
                ).fetchall()
            for (key_id,) in rows:
                self._remember(key_id, _DESTROYED)
                known.add(key_id)
        return known

    def for_writing(self, subject: Subject) -> bytes:
        """The subject's key, created on first use. Raises SubjectErased once destroyed."""
        key = self.get(subject.key_id)
        if key is not None:
            return key
        fresh = os.urandom(32)
        with self._pool.connection() as conn:
            conn.execute(
                """INSERT INTO data_keys (key_id, tenant_id, owner_id, kind, wrapped,
                       master_key_id)
                   VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (key_id) DO NOTHING""",
                (
                    subject.key_id,
                    subject.tenant_id,
                    subject.owner_id,
                    subject.kind,
                    self._wrap(subject.key_id, fresh),
                    self._master.key_id,
                ),
            )
            row = conn.execute(
                "SELECT wrapped FROM data_keys WHERE key_id = %s", (subject.key_id,)
            ).fetchone()
        assert row is not None
        key = self._unwrap(subject.key_id, row[0])  # another writer may have won the race
        self._remember(subject.key_id, key or _DESTROYED)
        if key is None:
            raise SubjectErased(f"the data of {subject.kind} {subject.key_id} was erased")
        return key

    # -- erasure ---------------------------------------------------------------------------

    def keys_of_user(self, conn: Connection, tenant_id: UUID, user_id: UUID) -> list[UUID]:
        """The user's own key and the keys of subjects they own (their chats)."""
        rows = conn.execute(
            """SELECT key_id FROM data_keys
               WHERE tenant_id = %s AND (key_id = %s OR owner_id = %s)""",
            (tenant_id, user_id, user_id),
        ).fetchall()
        return [r[0] for r in rows]

    def destroy(self, key_ids: list[UUID], reason: str, conn: Connection | None = None) -> int:
        """Delete the wrapped keys for good; returns how many were still alive."""
        if not key_ids:
            return 0
        if conn is None:
            with self._pool.connection() as own:
                return self.destroy(key_ids, reason, own)
        destroyed = conn.execute(
            """UPDATE data_keys SET wrapped = NULL, destroyed_at = now(), destroyed_reason = %s
               WHERE key_id = ANY(%s) AND destroyed_at IS NULL""",
            (reason, key_ids),
        ).rowcount
        for key_id in key_ids:
            self._remember(key_id, _DESTROYED)
        log.info("destroyed %d data keys (%s)", destroyed, reason)
        return destroyed

    def destroyed_at(self, key_id: UUID) -> datetime | None:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT destroyed_at FROM data_keys WHERE key_id = %s", (key_id,)
            ).fetchone()
        return row[0] if row else None

    def check_master(self) -> None:
        """Refuse to start when live keys are wrapped by a master key we do not have (a process
        started with another PARLEY_MASTER_KEY would fail on every read otherwise)."""
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT DISTINCT master_key_id FROM data_keys WHERE wrapped IS NOT NULL"
            ).fetchall()
        missing = {r[0] for r in rows} - self._master.key_ids
        if missing:
            raise RuntimeError(
                f"data keys are wrapped by master key(s) {', '.join(sorted(missing))}, which "
                f"this process does not have (its key is {self._master.key_id}): every process "
                "of a deployment needs the same PARLEY_MASTER_KEY (and, during a rotation, "
                "PARLEY_MASTER_KEY_PREVIOUS)"
            )

    # -- master key rotation ---------------------------------------------------------------

    def stale(self, batch: int = 500) -> Iterator[list[tuple[UUID, str]]]:
        """Live keys wrapped by a master key other than the current one, in batches."""
        after = UUID(int=0)
        while True:
            with self._pool.connection() as conn:
                rows = conn.execute(
                    """SELECT key_id, wrapped FROM data_keys
                       WHERE key_id > %s AND wrapped IS NOT NULL
                         AND master_key_id IS DISTINCT FROM %s
                       ORDER BY key_id LIMIT %s""",
                    (after, self._master.key_id, batch),
                ).fetchall()
            if not rows:
                return
            yield [(r[0], r[1]) for r in rows]
            after = rows[-1][0]

    def rewrap(self, rows: list[tuple[UUID, str]]) -> int:
        """Wrap these keys under the current master key (the keys themselves do not change,
        so no event is re-encrypted)."""
        with self._pool.connection() as conn:
            for key_id, wrapped in rows:
                key = self._unwrap(key_id, wrapped)
                assert key is not None
                conn.execute(
                    """UPDATE data_keys SET wrapped = %s, master_key_id = %s
                       WHERE key_id = %s AND wrapped = %s""",
                    (self._wrap(key_id, key), self._master.key_id, key_id, wrapped),
                )
        return len(rows)

    def count(self) -> dict[str, int]:
        with self._pool.connection() as conn:
            row = conn.execute(
                """SELECT count(*) FILTER (WHERE destroyed_at IS NULL),
                          count(*) FILTER (WHERE destroyed_at IS NOT NULL),
                          count(*) FILTER (WHERE destroyed_at IS NULL
                                           AND master_key_id IS DISTINCT FROM %s)
                   FROM data_keys""",
                (self._master.key_id,),
            ).fetchone()
        assert row is not None
        return {"live": row[0], "destroyed": row[1], "stale": row[2]}

    # -- internals -------------------------------------------------------------------------

    def _wrap(self, key_id: UUID, key: bytes) -> str:
        return self._master.seal_bytes(base64.b64encode(key), _context(key_id))

    def _unwrap(self, key_id: UUID, wrapped: str | None) -> bytes | None:
        if wrapped is None:
            return None
        return base64.b64decode(self._master.open_bytes(wrapped, _context(key_id)))

    def _cached(self, key_id: UUID) -> bytes | None:
        return self._cache.get(key_id)

    def _remember(self, key_id: UUID, key: bytes) -> None:
        self._cache.put(key_id, key, ttl=self._ttl)


def _context(key_id: UUID) -> str:
    return f"data-key:{key_id}"
