"""The periodic task every time-driven loop runs on (infra/loops/periodic_task.py)."""

import threading
import time
from collections.abc import Callable

from prometheus_client import REGISTRY

from infra.loops.periodic_task import PeriodicTask


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def sample(metric: str, task: str) -> float | None:
    return REGISTRY.get_sample_value(metric, {"task": task})


def test_a_failing_run_is_counted_and_tried_again_at_the_next_interval() -> None:
    runs: list[int] = []

    def run_once() -> None:
        runs.append(len(runs))
        if len(runs) <= 2:
            raise RuntimeError("not yet")

    task = PeriodicTask("test-retries", 0.01, run_once, first_delay=0)
    task.start()
    try:
        wait_until(lambda: len(runs) >= 3 and task.last_error is None)
    finally:
        task.stop()
    assert sample("parley_periodic_task_errors_total", "test-retries") == 2
    assert task.failures == 0


def test_the_last_success_stays_behind_while_runs_fail() -> None:
    before = time.time()
    task = PeriodicTask("test-behind", 0.01, lambda: 1 / 0, first_delay=0)
    task.start()
    try:
        time.sleep(0.2)
        last = sample("parley_periodic_task_last_success_timestamp_seconds", "test-behind")
        assert last is not None and before <= last <= before + 0.1  # its start: never a success
        assert task.seconds_since_success() >= 0.2
        assert task.last_error is not None and "ZeroDivisionError" in task.last_error
    finally:
        task.stop()
    assert sample("parley_periodic_task_last_success_timestamp_seconds", "test-behind") is None


def test_stop_interrupts_the_wait_and_a_long_run_can_watch_the_signal() -> None:
    stop = threading.Event()
    started = threading.Event()

    def long_run() -> None:
        started.set()
        stop.wait(30)  # a sweep checking the signal between its steps

    task = PeriodicTask("test-stop", 3600, long_run, stop=stop, first_delay=0)
    task.start()
    started.wait(5)
    began = time.monotonic()
    task.stop()
    assert time.monotonic() - began < 1


def test_a_task_waits_its_first_delay_before_the_first_run() -> None:
    runs: list[float] = []
    task = PeriodicTask("test-delay", 3600, lambda: runs.append(1), first_delay=3600)
    task.start()
    time.sleep(0.1)
    task.stop()
    assert runs == []
