"""The runtime the CLI's commands share: the event store and the read side, no followers (those
run in `parley serve` or `parley worker`), stopped when the command is done.

A command that acts on a deployment registers with `on_runtime`: `parley` opens the one runtime
for it and hands it over (`func(args, runtime)`). Commands that need none (serve, services,
offline verification) take the settings instead (`func(args, settings)`)."""

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from infra.settings import Settings

if TYPE_CHECKING:
    from api.runtime import Runtime

RuntimeCommand = Callable[[argparse.Namespace, "Runtime"], int]


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


def on_runtime(parser: argparse.ArgumentParser, func: RuntimeCommand) -> None:
    """`func` runs with the CLI's runtime, opened by `parley` before and stopped after."""
    parser.set_defaults(func=func, on_runtime=True)


def run_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run the parsed command, inside the shared runtime when it asked for one."""
    if getattr(args, "on_runtime", False):
        with cli_runtime(settings) as runtime:
            return int(args.func(args, runtime))
    return int(args.func(args, settings))
