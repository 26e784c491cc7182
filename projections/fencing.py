"""Projections whose position commits with their writes, fenced against rebuilds.

A projection's follower and a rebuild's final swap both write the projection's position in
`follower_positions`, each under the projection's advisory lock. Before writing a batch, the
follower checks that the stored position is still the one it last wrote: if a rebuild moved it
(swapped in a new generation), the batch is dropped and the follower continues from there.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from psycopg import Connection
from psycopg_pool import ConnectionPool

from infra.eventstore.follower_positions import read_position

log = logging.getLogger(__name__)


def projection_lock(conn: Connection, name: str) -> None:
    """Serialise writers of one projection (its follower, a rebuild's final swap)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"projection:{name}",))


class FencedProjection:
    """Subclasses set `name`, `_pool` and `_position = None` (the position not read yet)."""

    name: str
    _pool: ConnectionPool
    _position: int | None

    def position(self) -> int:
        if self._position is None:
            with self._pool.connection() as conn:
                self._position = read_position(conn, self.name)
        return self._position

    @contextmanager
    def fenced(self) -> Iterator[Connection | None]:
        """A transaction holding the projection's lock, or None (after taking up the stored
        position) when someone else moved the projection since this process last wrote it."""
        with self._pool.connection() as conn, conn.transaction():
            projection_lock(conn, self.name)
            stored = read_position(conn, self.name)
            if stored != self.position():
                log.info("%s moved from %d to %d; re-reading", self.name, self._position, stored)
                self._position = stored
                yield None
            else:
                yield conn
