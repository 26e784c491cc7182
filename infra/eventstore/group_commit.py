"""Group commit: concurrent saves share one transaction (one table lock, one fsync).

`eventsourcing` takes the events table's exclusive lock and commits (fsync) once per `save()`, so
one save per command caps throughput at the disk's commit rate however many threads call it.
Here every caller hands its events to one committer thread and waits; while the committer is
busy with a transaction, new requests queue up and become the next batch (optionally it also
waits `window` seconds for more). A batch is bounded by `max_events`.

Each caller gets its own outcome:
- the batch commits: everyone gets their notification ids (durable: `synchronous_commit` stays
  on, and nobody is answered before the commit returned);
- the batch fails (an optimistic-concurrency conflict, an invariant in the database, an
  error): each request is saved again on its own, so only the guilty one gets the error;
- the process dies mid-transaction: the transaction never committed and nobody was answered.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from infra.metrics import GROUP_COMMIT_BATCH, GROUP_COMMIT_FALLBACKS

log = logging.getLogger(__name__)

Save = Callable[[Sequence[Any]], list[Any]]
"""Records events in one transaction; returns their recordings in the same order."""


@dataclass
class _Request:
    events: list[Any]
    done: "Future[list[Any]]" = field(default_factory=Future)


class GroupCommitter:
    """The event store's committer thread: a queue consumer on the write path.

    Not one of the background loops of `infra/loops/` (not a PeriodicTask): it works when a
    save arrives, not on a clock (a periodic wake-up would add up to its interval to every
    command); `close()` drains the queue, so no caller is left waiting; a failure belongs to the
    callers, each of whom gets it from their own `save`; and its backlog is the callers'
    latency, measured as `parley_command_duration_seconds` (batch sizes in
    `parley_group_commit_batch_saves`)."""

    def __init__(self, save: Save, *, max_events: int = 200, window: float = 0.0) -> None:
        self._save = save
        self._max_events = max_events
        self._window = window
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._held: _Request | None = None
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._closed = False
        self._thread.start()

    def save(self, events: list[Any]) -> list[Any]:
        """Record `events` (one caller's, all or nothing); returns their recordings."""
        if self._closed:
            raise RuntimeError("the group committer is closed")
        request = _Request(events)
        self._queue.put(request)
        return request.done.result()

    def close(self) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=30)

    # -- the committer thread ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._commit(batch)

    def _next_batch(self) -> list[_Request] | None:
        first = self._held or self._queue.get()
        self._held = None
        if first is None:
            return None
        batch, size = [first], len(first.events)
        deadline = time.monotonic() + self._window
        while size < self._max_events:
            try:
                timeout = deadline - time.monotonic()
                more = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                self._queue.put(None)  # close after this batch
                break
            if size + len(more.events) > self._max_events:
                self._held = more  # it starts the next batch
                break
            batch.append(more)
            size += len(more.events)
        return batch

    def _commit(self, batch: list[_Request]) -> None:
        GROUP_COMMIT_BATCH.observe(len(batch))
        if len(batch) == 1:
            self._alone(batch[0])
            return
        try:
            recordings = self._save([e for r in batch for e in r.events])
        except Exception as e:
            # Someone in the batch is at fault (or the database was): find out who, one by one.
            GROUP_COMMIT_FALLBACKS.inc()
            log.debug("a batch of %d saves failed (%s); saving each on its own", len(batch), e)
            for request in batch:
                self._alone(request)
            return
        offset = 0  # recordings come in the order of the events
        for request in batch:
            size = len(request.events)
            request.done.set_result(recordings[offset : offset + size])
            offset += size

    def _alone(self, request: _Request) -> None:
        try:
            request.done.set_result(self._save(request.events))
        except BaseException as e:
            request.done.set_exception(e)
