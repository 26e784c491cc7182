"""A progress bar for long jobs (rebuilds, replays, exports): rate and ETA, on stderr."""

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.label = label
        self.stream = stream
        self.width = width
        self.started = time.monotonic()
        self._first: int | None = None
        self._last_draw = 0.0
        self._tty = stream.isatty()

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        if self._first is None:
            self._first = done
        finished = done >= total
        if not finished and now - self._last_draw < (0.2 if self._tty else 5.0):
            return
        self._last_draw = now
        elapsed = max(now - self.started, 1e-9)
        rate = (done - self._first) / elapsed
        fraction = done / total if total else 1.0
        eta = (total - done) / rate if rate > 0 else float("inf")
        filled = int(self.width * fraction)
        line = (
            f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {fraction:6.1%} "
            f"{done:,}/{total:,} events {rate:,.0f}/s "
            f"ETA {'-' if eta == float('inf') else f'{eta:,.0f}s'}"
        )
        self.stream.write(("\r" + line) if self._tty else (line + "\n"))
        if finished and self._tty:
            self.stream.write("\n")
        self.stream.flush()
