"""The runtime the CLI's commands share: the event store and the read side, no followers (those
run in `parley serve` or `parley worker`), stopped when the command is done."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from infra.settings import Settings

if TYPE_CHECKING:
    from api.runtime import Runtime


@contextmanager
def cli_runtime(settings: Settings) -> Iterator["Runtime"]:
    # Imported here: `parley --help` and the commands that need no runtime start faster.
    from api.runtime import Runtime

    runtime = Runtime(settings)
    runtime.start(workers=False)
    try:
        yield runtime
    finally:
        runtime.stop()
