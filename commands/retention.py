"""Retention: chats and documents idle for longer than their tenant's `retentionDays` are erased.

A chat's age is its last activity (its newest message, else its start): a conversation still in
use is never cut in the middle. Erasing destroys the chat's data key and records
`ChatSession.Expired` (actor: Parley itself), which auditors see in the log; the read side drops
the chat as if it had been deleted. A document's age is its last upload or processing; erasing
it destroys its key (its bytes are noise from then on) and records `Document.Expired`, and the
knowledge projection removes its passages and bytes.

One sweep runs at a time across every process (a Postgres advisory lock); each chat is its own
command, so a sweep interrupted half-way loses nothing and the next one finishes the job. A
worker sweeps every `PARLEY_RETENTION_INTERVAL_SECONDS` (a PeriodicTask, wired in the composition
root), the first time within `FIRST_SWEEP_WITHIN` seconds of its start.
"""

import logging
import threading
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from psycopg_pool import ConnectionPool

from commands.bus import MessageBus
from commands.messages import ExpireChat, ExpireDocument
from domain.errors import NotFound
from infra.metrics import CHATS_EXPIRED

log = logging.getLogger(__name__)

SWEEP_LOCK = 0x7061726C6579_0005  # "parley" + 5: one retention sweep at a time
FIRST_SWEEP_WITHIN = 30.0
"""Seconds after a worker's start by which it runs its first sweep (or its interval, if shorter)."""


@dataclass(frozen=True)
class DueChat:
    chat_id: UUID
    tenant_id: UUID
    retention_days: int
    last_activity: datetime


@dataclass(frozen=True)
class DueDocument:
    document_id: UUID
    tenant_id: UUID
    retention_days: int
    last_activity: datetime


Due = DueChat | DueDocument


def due_documents(pool: ConnectionPool, now: datetime, limit: int = 10_000) -> list[DueDocument]:
    """Documents of tenants with a retention period not uploaded or processed within it."""
    with pool.connection() as conn:
        rows = conn.execute(
            """SELECT d.document_id, d.tenant_id, t.retention_days, d.updated_at
               FROM readmodels.rm_documents d
               JOIN readmodels.rm_tenants t USING (tenant_id)
               WHERE t.retention_days IS NOT NULL
                 AND d.updated_at < %s - make_interval(days => t.retention_days)
               ORDER BY d.updated_at
               LIMIT %s""",
            (now, limit),
        ).fetchall()
    return [DueDocument(*row) for row in rows]


def due_chats(pool: ConnectionPool, now: datetime, limit: int = 10_000) -> list[DueChat]:
    """Chats of tenants with a retention period whose last activity is older than it."""
    with pool.connection() as conn:
        rows = conn.execute(
            """SELECT c.chat_id, c.tenant_id, t.retention_days,
                      coalesce(c.last_message_at, c.created_at) AS last_activity
               FROM readmodels.rm_chats c
               JOIN readmodels.rm_tenants t USING (tenant_id)
               WHERE t.retention_days IS NOT NULL
                 AND coalesce(c.last_message_at, c.created_at)
                     < %s - make_interval(days => t.retention_days)
               ORDER BY last_activity
               LIMIT %s""",
            (now, limit),
        ).fetchall()
    return [DueChat(*row) for row in rows]


def sweep(
    bus: MessageBus,
    pool: ConnectionPool,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    stop: threading.Event | None = None,
) -> list[Due]:
    """Erase every chat and document past its tenant's retention; returns them (all due ones
    on a dry run).
    Returns [] without doing anything when another process is sweeping; once `stop` is set, it
    ends after the chat in hand and returns the ones it erased."""
    now = now or datetime.now(UTC)
    with pool.connection() as conn:
        locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (SWEEP_LOCK,)).fetchone()
        if not (locked and locked[0]):
            log.info("another process is running the retention sweep")
            return []
        try:
            due: list[Due] = [*due_chats(pool, now), *due_documents(pool, now)]
            if dry_run:
                return due
            erased: list[Due] = []
            for item in due:
                if stop is not None and stop.is_set():
                    break  # the next sweep finishes the job
                with suppress(NotFound):  # deleted since the read model listed it
                    if isinstance(item, DueChat):
                        bus.handle(
                            ExpireChat(
                                chat_id=item.chat_id,
                                retention_days=item.retention_days,
                                last_activity=item.last_activity,
                            )
                        )
                        CHATS_EXPIRED.inc()
                    else:
                        bus.handle(
                            ExpireDocument(
                                document_id=item.document_id,
                                retention_days=item.retention_days,
                                last_activity=item.last_activity,
                            )
                        )
                erased.append(item)
                if progress is not None:
                    progress(len(erased), len(due))
            if erased:
                log.info(
                    "retention: erased %d chats and documents idle beyond their tenant's period",
                    len(erased),
                )
            return erased
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SWEEP_LOCK,))
