"""Progress bars for long jobs (rebuilds, replays, exports, verification), drawn by tqdm on
stderr: done/total, rate and ETA. The jobs report absolute positions (`update(done, total)`, the
`progress` callbacks of `state_at`, `export_user`, `rebuild_read_models`, …), so the bar is
moved to each reported position; the total may grow while a job runs (the log's head moves)."""

import sys
from typing import TextIO

from tqdm import tqdm


class ProgressBar:
    def __init__(self, label: str, stream: TextIO = sys.stderr, unit: str = "events") -> None:
        self._label, self._stream, self._unit = label, stream, unit
        self._bar: tqdm | None = None  # drawn from the first update, when the total is known
        self._closed = False

    def update(self, done: int, total: int) -> None:
        if self._closed:
            return
        if self._bar is None:
            self._bar = self._open(total)
        if self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._bar.n)
        if done >= total:
            self._bar.close()
            self._closed = True

    def _open(self, total: int) -> tqdm:
        tty = self._stream.isatty()
        return tqdm(
            desc=self._label,
            total=total,
            unit=f" {self._unit}",
            # A log file or journal gets one line every few seconds instead of a redrawn bar.
            file=self._stream if tty else _Lines(self._stream),
            mininterval=0.2 if tty else 5.0,
            dynamic_ncols=tty,
            ncols=None if tty else 100,
            ascii=not tty,
        )


class _Lines:
    """A stream for tqdm that turns its carriage-return redraws into lines."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self._stream.write(line + "\n")

    def flush(self) -> None:
        self._stream.flush()
