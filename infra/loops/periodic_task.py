"""Periodic tasks: a bounded unit of work run every `interval` seconds in a named daemon thread.

The loops that are due by time rather than by a new event (the log followers beside them are
woken by commits). A failing run is logged, counted and tried again at the next interval, never
given up; `parley_periodic_task_last_success_timestamp_seconds` shows a task that keeps failing
(or hangs) long before anyone reads the log (a timestamp, not an age: it is right when every
process of a deployment reports into one `/metrics`).
"""

import logging
import os
import threading
import time
from collections.abc import Callable
from contextlib import suppress

from infra.metrics import PERIODIC_TASK_ERRORS, PERIODIC_TASK_LAST_SUCCESS

log = logging.getLogger(__name__)


class PeriodicTask:
    """Runs `run_once()` every `interval` seconds (the first time after `first_delay`) until
    `stop()`."""

    def __init__(
        self,
        name: str,
        interval: float,
        run_once: Callable[[], object],
        *,
        stop: threading.Event | None = None,
        first_delay: float | None = None,
        outages: tuple[type[Exception], ...] = (),
    ) -> None:
        """`stop`: the stop signal, for a `run_once` that checks it between steps of a long run
        (one is made when not given); `outages`: errors that mean a dependency is down (e.g.
        Kafka), logged as a warning without a traceback."""
        self.name = name
        self.interval = interval
        self._run_once = run_once
        self._stop = stop if stop is not None else threading.Event()
        self._first_delay = interval if first_delay is None else first_delay
        self._outages = outages
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._last_success = time.monotonic()
        self.last_error: str | None = None
        self.failures = 0
        """Failed runs in a row."""

    def start(self) -> None:
        self._succeeded()
        self._thread.start()
        log.info("periodic task %s started (every %g s)", self.name, self.interval)

    def stop(self, timeout: float = 10.0) -> None:
        """Signal the stop and wait (bounded) for a run in progress to end."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        # It no longer runs: its success would only grow old. (With several processes writing
        # into one metrics directory, the value goes when the process is marked dead.)
        if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
            with suppress(KeyError):
                PERIODIC_TASK_LAST_SUCCESS.remove(self.name)
        if self._thread.is_alive():
            log.warning(
                "periodic task %s still running after %g s; left behind", self.name, timeout
            )
        else:
            log.info("periodic task %s stopped", self.name)

    def seconds_since_success(self) -> float:
        """Since the last run that succeeded (since the start, before the first one)."""
        return time.monotonic() - self._last_success

    def _run(self) -> None:
        delay = self._first_delay
        while not self._stop.wait(delay):
            delay = self.interval
            try:
                self._run_once()
            except Exception as e:  # tried again at the next interval, never given up
                self._failed(e)
                continue
            self._succeeded()
            if self.last_error is not None:
                log.info(
                    "periodic task %s recovered after %d failed runs", self.name, self.failures
                )
                self.last_error, self.failures = None, 0

    def _succeeded(self) -> None:
        self._last_success = time.monotonic()
        PERIODIC_TASK_LAST_SUCCESS.labels(self.name).set(time.time())

    def _failed(self, error: Exception) -> None:
        PERIODIC_TASK_ERRORS.labels(self.name).inc()
        self.failures += 1
        self.last_error = f"{type(error).__name__}: {error}"
        if isinstance(error, self._outages):
            log.warning(
                "periodic task %s waits for a dependency (attempt %d): %s",
                self.name,
                self.failures,
                self.last_error,
            )
        else:
            log.error(
                "periodic task %s failed (attempt %d); trying again in %g s",
                self.name,
                self.failures,
                self.interval,
                exc_info=error,
            )
