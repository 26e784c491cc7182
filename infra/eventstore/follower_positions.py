"""Durable follower positions (each follower's "high-water mark") and their failure reports.

The one module that writes `follower_positions`: followers, rebuilds, the audit ledger and the
migration go through the functions below (each runs in the caller's connection, so inside the
caller's transaction when there is one). The reader role's `SELECT` on the table is granted with
that role's other grants, and the table itself created, in `infra/migrations.py`.
"""

import time
from dataclasses import dataclass
from datetime import datetime

from psycopg import Connection
from psycopg_pool import ConnectionPool


@dataclass(frozen=True)
class FollowerRecord:
    name: str
    position: int
    updated_at: datetime
    error: str | None
    error_position: int | None
    error_topic: str | None
    error_attempts: int | None
    error_since: datetime | None


def read_position(conn: Connection, name: str) -> int:
    row = conn.execute(
        "SELECT position FROM follower_positions WHERE name = %s", (name,)
    ).fetchone()
    return int(row[0]) if row else 0


def store_position(conn: Connection, name: str, position: int) -> None:
    """Upsert; never moves backwards, so a stale writer cannot rewind a follower."""
    conn.execute(
        """
        INSERT INTO follower_positions (name, position) VALUES (%s, %s)
        ON CONFLICT (name) DO UPDATE
        SET position = GREATEST(follower_positions.position, EXCLUDED.position), updated_at = now()
        """,
        (name, position),
    )


def _ensure_row(conn: Connection, name: str) -> None:
    conn.execute(
        "INSERT INTO follower_positions (name, position) VALUES (%s, 0)"
        " ON CONFLICT (name) DO NOTHING",
        (name,),
    )


def lock_position(conn: Connection, name: str) -> int:
    """The position, row-locked until the transaction ends (the row is created at 0 when
    missing): one writer of the follower at a time, the others wait."""
    _ensure_row(conn, name)
    row = conn.execute(
        "SELECT position FROM follower_positions WHERE name = %s FOR UPDATE", (name,)
    ).fetchone()
    return int(row[0]) if row else 0


def move_position(conn: Connection, name: str, position: int) -> None:
    """Set the position, backwards too, and clear any failure report: a rebuild swapping its
    copy in, an operator skipping an event. Not for followers: `store_position` is."""
    conn.execute(
        """INSERT INTO follower_positions (name, position) VALUES (%s, %s)
           ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now(),
               error = NULL, error_position = NULL, error_topic = NULL,
               error_attempts = NULL, error_since = NULL""",
        (name, position),
    )


def delete_position(conn: Connection, name: str) -> None:
    """Forget a follower: it starts again from position 0 (a rebuild's copy, old read models)."""
    conn.execute("DELETE FROM follower_positions WHERE name = %s", (name,))


def record_failure(
    conn: Connection,
    name: str,
    *,
    position: int | None,
    topic: str | None,
    error: str,
    attempts: int,
) -> None:
    """What an operator needs to see: which event keeps failing, how, since when."""
    _ensure_row(conn, name)
    conn.execute(
        """
        UPDATE follower_positions SET error = %s, error_position = %s, error_topic = %s,
            error_attempts = %s, error_since = COALESCE(error_since, now())
        WHERE name = %s
        """,
        (error[:2000], position, topic, attempts, name),
    )


def clear_failure(conn: Connection, name: str) -> None:
    conn.execute(
        """
        UPDATE follower_positions SET error = NULL, error_position = NULL, error_topic = NULL,
            error_attempts = NULL, error_since = NULL
        WHERE name = %s AND error IS NOT NULL
        """,
        (name,),
    )


def all_followers(conn: Connection) -> list[FollowerRecord]:
    rows = conn.execute(
        """SELECT name, position, updated_at, error, error_position, error_topic,
                  error_attempts, error_since
           FROM follower_positions ORDER BY name"""
    ).fetchall()
    return [FollowerRecord(*row) for row in rows]


class NotTheFailingEvent(ValueError):
    pass


def skip_failed_event(conn: Connection, name: str, position: int) -> None:
    """Operator's escape hatch: move a follower past the one event it keeps failing on.

    Only that event: `position` must be the failure the follower reported."""
    row = conn.execute(
        "SELECT error_position FROM follower_positions WHERE name = %s FOR UPDATE", (name,)
    ).fetchone()
    if row is None or row[0] != position:
        raise NotTheFailingEvent(
            f"{name} has no reported failure at position {position} "
            f"(reported: {row[0] if row else 'none'})"
        )
    move_position(conn, name, position)


def wait_for_position(pool: ConnectionPool, name: str, position: int, timeout: float) -> bool:
    """Whether follower `name` reaches `position` within `timeout` seconds (polled; for a
    follower in another process)."""
    deadline = time.monotonic() + timeout
    while True:
        with pool.connection() as conn:
            if read_position(conn, name) >= position:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.01)
