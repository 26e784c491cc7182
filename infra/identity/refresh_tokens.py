"""Rotating refresh tokens with reuse detection, in PostgreSQL.

A sign-in starts a *family*; each refresh marks the presented token used and adds its successor
to the family. A token presented a second time means two parties hold it (one of them stole
it): the whole family is revoked, with one exception. A token presented again within
`reuse_grace_seconds` of its use while its successor is still unused is a client that never got
the answer (a reload or a dropped connection mid-refresh): it gets a new successor and the unused
one stops working, so one live token remains and a thief who raced the client is still caught at
the client's next refresh. Only SHA-256 hashes of token ids are stored (the ids are 128
random bits, so a fast hash is enough). A family lives at most `ttl_seconds` from its sign-in:
refreshing does not extend it, so a user signs in again at least that often."""

import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from psycopg import Connection
from psycopg_pool import ConnectionPool

from infra.identity.tokens import InvalidToken

log = logging.getLogger(__name__)

_PURGE_BATCH = 100
"""Families past their expiry deleted per sign-in: the table stays bounded without a sweeper."""


@dataclass(frozen=True)
class RefreshGrant:
    """A refresh token to sign: its family, id (never stored) and expiry (Unix time)."""

    session_id: UUID
    token_id: str
    expires_at: float


class RefreshTokens:
    def __init__(
        self, pool: ConnectionPool, *, ttl_seconds: int, reuse_grace_seconds: int = 0
    ) -> None:
        self._pool = pool
        self._ttl = ttl_seconds
        self._grace = reuse_grace_seconds

    def start(self, *, tenant_id: UUID, user_id: UUID) -> RefreshGrant:
        """A new family for a sign-in, with its first token."""
        family_id, token_id = uuid4(), secrets.token_hex(16)
        with self._pool.connection() as conn, conn.transaction():
            conn.execute(
                "DELETE FROM auth_refresh_families WHERE family_id IN (SELECT family_id"
                " FROM auth_refresh_families WHERE expires_at < now() LIMIT %s)",
                (_PURGE_BATCH,),
            )
            row = conn.execute(
                "INSERT INTO auth_refresh_families (family_id, tenant_id, user_id, expires_at)"
                " VALUES (%s, %s, %s, now() + make_interval(secs => %s))"
                " RETURNING extract(epoch FROM expires_at)",
                (family_id, tenant_id, user_id, self._ttl),
            ).fetchone()
            assert row is not None
            _insert(conn, family_id, token_id)
        return RefreshGrant(family_id, token_id, float(row[0]))

    def rotate(self, *, token_id: str, session_id: UUID | None, user_id: UUID) -> RefreshGrant:
        """Use a refresh token once: its successor, or InvalidToken. A token used before
        revokes its family (and fails)."""
        reused = retried = False
        with self._pool.connection() as conn, conn.transaction():
            # The family row is locked: a revocation (logout) waits for this rotation, so it
            # also catches the successor inserted here.
            row = conn.execute(
                "SELECT f.family_id, f.user_id, f.revoked_at IS NOT NULL, t.used_at IS NOT NULL,"
                " f.expires_at <= now(), extract(epoch FROM f.expires_at),"
                " t.used_at > now() - make_interval(secs => %s)"
                " AND s.token_hash IS NOT NULL AND s.used_at IS NULL"
                " FROM auth_refresh_tokens t JOIN auth_refresh_families f USING (family_id)"
                " LEFT JOIN auth_refresh_tokens s ON s.token_hash = t.successor_hash"
                " WHERE t.token_hash = %s FOR UPDATE OF f",
                (self._grace, _hash(token_id)),
            ).fetchone()
            if row is None or row[0] != session_id or row[1] != user_id:
                raise InvalidToken("unknown refresh token")
            family_id, _, revoked, used, expired, expires_at, answer_lost = row
            if revoked:
                raise InvalidToken("refresh token revoked")
            if expired:
                raise InvalidToken("token expired")
            if used and not answer_lost:
                _revoke(conn, "family_id = %s", family_id, "refresh token reused")
                reused = True
            else:
                successor = secrets.token_hex(16)
                if used:  # retried within the grace: the successor it never received stops
                    conn.execute(
                        "UPDATE auth_refresh_tokens SET used_at = now() WHERE token_hash ="
                        " (SELECT successor_hash FROM auth_refresh_tokens WHERE token_hash = %s)",
                        (_hash(token_id),),
                    )
                    retried = True
                _insert(conn, family_id, successor)
                conn.execute(
                    "UPDATE auth_refresh_tokens SET used_at = coalesce(used_at, now()),"
                    " successor_hash = %s WHERE token_hash = %s",
                    (_hash(successor), _hash(token_id)),
                )
        if retried:
            log.info(
                "refresh token of session %s presented again within %d s, its successor unused:"
                " replaced (an answer the client did not get)",
                family_id,
                self._grace,
            )
        if reused:
            log.warning(
                "refresh token reused in session %s of user %s: session revoked", family_id, user_id
            )
            raise InvalidToken("refresh token already used: this sign-in is revoked")
        return RefreshGrant(family_id, successor, float(expires_at))

    def revoke_session(self, session_id: UUID, user_id: UUID, reason: str) -> int:
        """Sign out one sign-in (logout). Returns how many families were revoked (0 or 1)."""
        with self._pool.connection() as conn, conn.transaction():
            return _revoke(conn, "family_id = %s AND user_id = %s", (session_id, user_id), reason)

    def revoke_user(self, user_id: UUID, reason: str) -> int:
        """Sign out every sign-in of a user (logout everywhere, new password, deactivation)."""
        with self._pool.connection() as conn, conn.transaction():
            return _revoke(conn, "user_id = %s", user_id, reason)

    def revoke_tenant(self, tenant_id: UUID, reason: str) -> int:
        with self._pool.connection() as conn, conn.transaction():
            return _revoke(conn, "tenant_id = %s", tenant_id, reason)


def _insert(conn: Connection[Any], family_id: UUID, token_id: str) -> None:
    conn.execute(
        "INSERT INTO auth_refresh_tokens (token_hash, family_id) VALUES (%s, %s)",
        (_hash(token_id), family_id),
    )


def _revoke(conn: Connection[Any], where: str, params: Any, reason: str) -> int:
    values = params if isinstance(params, tuple) else (params,)
    cursor = conn.execute(
        "UPDATE auth_refresh_families SET revoked_at = now(), revoked_reason = %s"
        f" WHERE {where} AND revoked_at IS NULL AND expires_at > now()",
        (reason, *values),
    )
    return cursor.rowcount


def _hash(token_id: str) -> bytes:
    return hashlib.sha256(token_id.encode()).digest()
