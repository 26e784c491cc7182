"""The audit ledger: a follower that chains every event and seals the chain with signed checkpoints.

Exactly-once like the read models: the chain rows, any checkpoint and the ledger's position
commit in one transaction, under a row lock on the ledger's position (so a second ledger process,
or the periodic sealing, waits instead of forking the chain). After commit it NOTIFYs
`parley_audit`, which wakes the Kafka relay (it publishes only chained events, with their hash).

Tables (append-only: triggers refuse UPDATE, DELETE and TRUNCATE, like on the events table):
- `audit_chain`: position, event identity, tenant, topic, leaf hash, chain hash.
- `audit_checkpoints`: one signed checkpoint per sealed range.
- `audit_keys`: every public key that ever signed a checkpoint (rotation keeps the old ones).
"""

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Notification
from psycopg import Connection
from psycopg_pool import ConnectionPool

from infra.audit.chain import GENESIS, Checkpoint, SigningKey, chain_hash, leaf_hash, merkle_root
from infra.audit.store import (
    LEDGER_NAME,
    NOTIFY_CHANNEL,
    insert_checkpoint,
    last_checkpoint,
    register_key,
    tenant_in_state,
)
from infra.eventstore.event_store import EventStore
from infra.eventstore.follower_positions import lock_position, read_position, store_position
from infra.metrics import AUDIT_CHECKPOINTS

log = logging.getLogger(__name__)


class AuditLedger:
    """Follows the log (a LogFollower's handler) and seals the chain every N events; partial
    ranges are sealed after T seconds by `seal_when_due` (a PeriodicTask's `run_once`)."""

    name = LEDGER_NAME

    def __init__(
        self,
        store: EventStore,
        pool: ConnectionPool,
        key: SigningKey,
        *,
        checkpoint_events: int = 1000,
        checkpoint_seconds: float = 60.0,
    ) -> None:
        self._store = store
        self._pool = pool
        self._key = key
        self.checkpoint_events = checkpoint_events
        self.checkpoint_seconds = checkpoint_seconds
        with pool.connection() as conn:
            register_key(conn, key)

    def position(self) -> int:
        with self._pool.connection() as conn:
            return read_position(conn, self.name)

    # -- chaining --------------------------------------------------------------------------------

    def handle(self, batch: Sequence[Notification]) -> None:
        with self._pool.connection() as conn, conn.transaction():
            position = lock_position(conn, self.name)
            fresh = [n for n in batch if n.id > position]
            if not fresh:
                return  # another ledger process got here first
            if fresh[0].id != batch[0].id and batch[0].id <= position:
                log.info("ledger position moved to %d under us; continuing after it", position)
            previous = self._chain_head(conn, position)
            rows = []
            for n in fresh:
                leaf = leaf_hash(n.id, n.originator_id, n.originator_version, n.topic, n.state)
                previous = chain_hash(previous, leaf)
                tenant = tenant_in_state(n.state)
                rows.append(
                    (n.id, n.originator_id, n.originator_version, tenant, n.topic, leaf, previous)
                )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO audit_chain (position, originator_id, originator_version,"
                    " tenant_id, topic, leaf, chain) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    rows,
                )
            store_position(conn, self.name, fresh[-1].id)
            while self._seal(conn, full_only=True):
                pass
            conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")

    @staticmethod
    def _chain_head(conn: Connection[Any], position: int) -> bytes:
        """The chain hash at our position (a row beyond it was not written by a ledger)."""
        row = conn.execute(
            "SELECT chain FROM audit_chain WHERE position <= %s ORDER BY position DESC LIMIT 1",
            (position,),
        ).fetchone()
        return bytes(row[0]) if row else GENESIS

    # -- sealing ---------------------------------------------------------------------------------

    def seal_now(self) -> Checkpoint | None:
        """Seal every chained event not in a checkpoint yet (None when there is none)."""
        with self._pool.connection() as conn, conn.transaction():
            lock_position(conn, self.name)
            return self._seal(conn, full_only=False)

    def _seal(self, conn: Connection[Any], *, full_only: bool) -> Checkpoint | None:
        last = last_checkpoint(conn)
        after = last.to_position if last else 0
        if full_only:  # count first: most batches do not complete a checkpoint
            row = conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM audit_chain WHERE position > %s LIMIT %s) s",
                (after, self.checkpoint_events),
            ).fetchone()
            if row is None or row[0] < self.checkpoint_events:
                return None
        rows = conn.execute(
            "SELECT position, leaf, chain FROM audit_chain WHERE position > %s"
            " ORDER BY position LIMIT %s",
            (after, self.checkpoint_events),
        ).fetchall()
        if not rows:
            return None
        unsigned = Checkpoint(
            seq=(last.seq if last else 0) + 1,
            from_position=after,
            to_position=rows[-1][0],
            count=len(rows),
            merkle_root=merkle_root([bytes(r[1]) for r in rows]),
            chain_hash=bytes(rows[-1][2]),
            previous=last.digest() if last else GENESIS,
            created_at=datetime.now(UTC),
            key_id=self._key.key_id,
        )
        checkpoint = self._key.sign(unsigned)
        insert_checkpoint(conn, checkpoint)
        AUDIT_CHECKPOINTS.inc()
        log.info(
            "audit checkpoint %d sealed positions %d..%d (%d events)",
            checkpoint.seq,
            checkpoint.from_position + 1,
            checkpoint.to_position,
            checkpoint.count,
        )
        return checkpoint

    @property
    def seal_interval(self) -> float:
        """How often `seal_when_due` should run: a partial range waits at most a quarter of
        `checkpoint_seconds` (0.5 to 5 s) beyond its due time."""
        return max(0.5, min(5.0, self.checkpoint_seconds / 4))

    def seal_when_due(self) -> None:
        """Seal the partial range once its oldest event is `checkpoint_seconds` old."""
        with self._pool.connection() as conn, conn.transaction():
            lock_position(conn, self.name)
            last = last_checkpoint(conn)
            row = conn.execute(
                "SELECT min(recorded_at) < now() - make_interval(secs => %s)"
                " FROM audit_chain WHERE position > %s",
                (self.checkpoint_seconds, last.to_position if last else 0),
            ).fetchone()
            if row and row[0]:
                self._seal(conn, full_only=False)
