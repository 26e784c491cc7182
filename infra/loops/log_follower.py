"""Following the event log: batches in log order from a durable position, woken by NOTIFY.

Every follower (read models, search index, audit ledger, Kafka relay, responder) is the same
loop: read a bounded batch after its position, hand it to a handler that stores the new position
(in the same transaction as its effects, or after them), and sleep until Postgres NOTIFYs a
commit or the poll interval passes (a lost NOTIFY must not stall us).
"""

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import Notification
from psycopg import sql

from infra.eventstore.event_store import EVENTS_TABLE, EventStore
from infra.eventstore.follower_positions import clear_failure, record_failure
from infra.metrics import (
    FOLLOWER_BATCH_DURATION,
    FOLLOWER_ERRORS,
    FOLLOWER_EVENTS,
    FOLLOWER_LAG_EVENTS,
    FOLLOWER_LAG_SECONDS,
    FOLLOWER_POSITION,
)

log = logging.getLogger(__name__)

BatchHandler = Callable[[Sequence[Notification]], None]


class LogFollower:
    """Runs `handle(batch)` for every batch of notifications after `position()`, in a thread."""

    def __init__(
        self,
        *,
        name: str,
        store: EventStore,
        conninfo: str,
        position: Callable[[], int],
        handle: BatchHandler,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
        upto: Callable[[], int] | None = None,
        channel: str = EVENTS_TABLE,
        outages: tuple[type[Exception], ...] = (),
    ) -> None:
        """`upto`: never hand over events past this position (a follower that must stay behind
        another, like the relay behind the audit ledger); `channel`: the NOTIFY channel that
        wakes us (the events table's by default); `outages`: errors that mean a dependency is
        down (e.g. Kafka), not that an event is poison: the batch is retried whole, and no event
        is named (or offered to `projections skip`)."""
        self.name = name
        self._store = store
        self._conninfo = conninfo
        self._position = position
        self._handle = handle
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._max_backoff = max_backoff_seconds
        self._upto = upto
        self._channel = channel
        self._outages = outages
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.last_error: str | None = None
        self.failure_position: int | None = None
        """The event that keeps failing (None when healthy or not isolated yet)."""
        self.failure_attempts = 0
        self._isolating_until: int | None = None
        self._attempted: Sequence[Notification] = ()

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._run, name=f"follower-{self.name}", daemon=True),
            threading.Thread(target=self._listen, name=f"listen-{self.name}", daemon=True),
        ]
        for t in self._threads:
            t.start()
        log.info("follower %s started", self.name)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=10)
        log.info("follower %s stopped", self.name)

    def position(self) -> int:
        return self._position()

    def _run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            self._wake.clear()
            try:
                caught_up = self._step()
            except Exception as e:  # a failing batch is retried with back-off, never dropped
                self._failed(e)
                self._report_lag()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            backoff = 0.1
            if caught_up:
                self._wake.wait(self._poll_seconds)

    def _step(self) -> bool:
        position = self._position()
        # After a failure, go one event at a time until past it: that names the poison event.
        limit = 1 if self._isolating_until is not None else self._batch_size
        batch = self._store.read(position, limit)
        if self._upto is not None and batch:
            ceiling = self._upto()
            if batch[-1].id > ceiling:
                batch = [n for n in batch if n.id <= ceiling]
                limit = len(batch) + 1  # caught up with what we may see: wait for a wake-up
        self._attempted = batch
        if batch:
            started = time.perf_counter()
            self._handle(batch)
            FOLLOWER_BATCH_DURATION.labels(self.name).observe(time.perf_counter() - started)
            FOLLOWER_EVENTS.labels(self.name).inc(len(batch))
            position = self._position()
            self._recovered(position)
        self._report_lag(position)
        return len(batch) < limit

    def _report_lag(self, position: int | None = None) -> None:
        """Position and lag gauges, kept current while batches fail too (alerts must fire)."""
        try:
            position = self._position() if position is None else position
            head = self._store.head()
        except Exception:  # the database is what is failing: keep the last figures
            return
        FOLLOWER_POSITION.labels(self.name).set(position)
        FOLLOWER_LAG_EVENTS.labels(self.name).set(max(0, head - position))
        FOLLOWER_LAG_SECONDS.labels(self.name).set(self._lag_seconds(position, head))

    def _lag_seconds(self, position: int, head: int) -> float:
        """Age of the oldest event not processed yet (0 when caught up)."""
        if head <= position:
            return 0.0
        try:
            pending = self._store.read(position, 1)
            occurred = self._store.decode(pending[0]).timestamp if pending else None
        except Exception:  # an undecodable event is the handler's failure to report, not ours
            return 0.0
        return max(0.0, time.time() - occurred.timestamp()) if occurred else 0.0

    def _failed(self, error: Exception) -> None:
        FOLLOWER_ERRORS.labels(self.name).inc()
        batch = self._attempted
        self.last_error = f"{type(error).__name__}: {error}"
        if isinstance(error, self._outages):
            self.failure_attempts += 1
            self.failure_position = None
            log.warning(
                "follower %s waits for a dependency (attempt %d, batch after position %s): %s",
                self.name,
                self.failure_attempts,
                batch[0].id - 1 if batch else "-",
                self.last_error,
            )
            self._report(
                lambda conn: record_failure(
                    conn,
                    self.name,
                    position=None,
                    topic=None,
                    error=self.last_error or "",
                    attempts=self.failure_attempts,
                )
            )
            return
        if len(batch) > 1:
            log.warning(
                "follower %s failed a batch of %d after position %d (%s); isolating the event",
                self.name,
                len(batch),
                batch[0].id - 1,
                self.last_error,
            )
            self._isolating_until = batch[-1].id
            return
        poison = batch[0] if batch else None
        self.failure_attempts += 1
        self.failure_position = poison.id if poison else None
        log.error(
            "follower %s cannot process event %s (%s, aggregate %s), attempt %d: %s",
            self.name,
            self.failure_position,
            poison.topic if poison else "-",
            poison.originator_id if poison else "-",
            self.failure_attempts,
            self.last_error,
            exc_info=error,
        )
        self._report(
            lambda conn: record_failure(
                conn,
                self.name,
                position=self.failure_position,
                topic=poison.topic if poison else None,
                error=self.last_error or "",
                attempts=self.failure_attempts,
            )
        )

    def _recovered(self, position: int) -> None:
        if self._isolating_until is not None and position >= self._isolating_until:
            self._isolating_until = None
        if self.last_error is not None:
            log.info("follower %s recovered at position %d", self.name, position)
            self.last_error = None
            self.failure_position = None
            self.failure_attempts = 0
            self._report(lambda conn: clear_failure(conn, self.name))

    def _report(self, write: Callable[[psycopg.Connection[Any]], None]) -> None:
        try:
            with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=5) as conn:
                write(conn)
        except psycopg.Error:
            log.warning("follower %s could not record its state (database unreachable?)", self.name)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.25, stop_after=1):
                            self._wake.set()
            except psycopg.Error:
                log.warning("follower %s lost its LISTEN connection; polling meanwhile", self.name)
                self._stop.wait(1.0)


class Progress:
    """A follower's position that other threads can wait on (in-process read-your-writes)."""

    def __init__(self, position: int = 0) -> None:
        self._position = position
        self._changed = threading.Condition()

    def advance(self, position: int) -> None:
        with self._changed:
            if position > self._position:
                self._position = position
                self._changed.notify_all()

    def reached(self, position: int, timeout: float) -> bool:
        """Wait until the position is at least `position`; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._position >= position, timeout=timeout)
