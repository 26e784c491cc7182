"""How every command runs: each attempt in a unit of work of its own, retried on write
conflicts, writers to one aggregate taking turns, counted and timed (`parley_commands_total`,
`parley_command_duration_seconds`)."""

import random
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from commands.unit_of_work import UnitOfWork
from domain.errors import Conflict, InvalidInput, NotAllowed, NotAuthenticated, NotFound
from infra.eventstore.data_keys import SubjectErased
from infra.eventstore.event_store import EventStore
from infra.metrics import COMMAND_CONFLICTS, COMMAND_DURATION, COMMANDS

T = TypeVar("T")


class CommandRunner:
    """One per process, shared by the command handlers and sign-in (commands/authentication.py)."""

    def __init__(self, store: EventStore, max_attempts: int = 20) -> None:
        self.store = store
        self.max_attempts = max_attempts
        # Striped per-aggregate turns (see run); enough stripes that unrelated aggregates rarely
        # share one (with 256, a quarter of 64 concurrent commands waited on a stranger).
        self._locks = [threading.Lock() for _ in range(4096)]

    def run(
        self,
        name: str,
        attempt: Callable[[UnitOfWork], T],
        *,
        retry: bool = False,
        key: UUID | None = None,
    ) -> T:
        """Run `attempt`, retrying on optimistic-concurrency conflicts with jittered back-off.

        Writers to the same aggregate (`key`) in this process take turns, so they do not burn
        attempts on conflicts with each other; conflicts with other processes are still retried.
        Every attempt gets a new unit of work, so a retry starts with nobody named as its actor
        until the handler establishes the caller again.
        """
        started = time.perf_counter()
        outcome = "error"
        lock = self._locks[hash(key) % len(self._locks)] if key is not None else nullcontext()
        try:
            for n in range(1, self.max_attempts + 1):
                try:
                    with lock:
                        result = attempt(UnitOfWork(self.store))
                    outcome = "ok"
                    return result
                except IntegrityError:
                    if not retry or n == self.max_attempts:
                        outcome = "conflict"
                        raise Conflict("too much contention on this item; try again") from None
                    COMMAND_CONFLICTS.labels(name).inc()
                    time.sleep(random.uniform(0, min(0.5, 0.002 * 2**n)))
            raise AssertionError("unreachable")
        except (InvalidInput, NotAllowed, NotFound, NotAuthenticated, Conflict) as e:
            outcome = e.code.lower()
            raise
        except SubjectErased:
            outcome = "not_found"
            raise NotFound("not found: its data was erased") from None
        finally:
            COMMANDS.labels(name, outcome).inc()
            COMMAND_DURATION.labels(name).observe(time.perf_counter() - started)
