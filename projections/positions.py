"""Durable follower positions (the "high-water mark" of each projection or worker)."""

from psycopg import Connection

DDL = """
CREATE TABLE IF NOT EXISTS follower_positions (
    name text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""


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
