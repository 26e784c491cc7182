"""The command line of a benchmark (`python -m bench NAME [options]`).

Each benchmark declares its options once, as the fields of a frozen dataclass made with
`option` (name, default, help, how the text is read); `parse` builds the parser from them and
returns the dataclass, whose `asdict` is the `settings` of the run's JSON record. A dataclass
checks what crosses options in `__post_init__` (a ValueError there is a usage error). The options
several benchmarks share are made here too.
"""

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, TypeVar, cast

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T")
N = TypeVar("N", int, float)
D = TypeVar("D", bound="DataclassInstance")


@dataclass(frozen=True)
class _Option:
    help: str
    parse: Callable[[str], Any] | None
    flag: str | None


def option(
    default: T, help: str, parse: Callable[[str], Any] | None = None, *, flag: str | None = None
) -> T:
    """A field that is also the option `--<name with dashes>` (or `flag`). `parse` reads its
    text (by default: the default's type); a bool is a switch that turns its default over."""
    return cast(T, field(default=default, metadata={"option": _Option(help, parse, flag)}))


def parse(options: type[D], argv: Sequence[str], benchmark: str, description: str | None) -> D:
    """The options of `python -m bench <benchmark>`, read from `argv`."""
    parser = argparse.ArgumentParser(prog=f"python -m bench {benchmark}", description=description)
    for f in fields(options):
        spec = f.metadata.get("option")
        if spec is None:
            continue
        flag = spec.flag or "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            switch = "store_false" if f.default else "store_true"
            parser.add_argument(flag, dest=f.name, action=switch, help=spec.help)
        else:
            read = spec.parse or type(f.default)
            parser.add_argument(flag, dest=f.name, type=read, default=f.default, help=spec.help)
    try:
        return options(**vars(parser.parse_args(argv)))
    except ValueError as e:
        parser.error(str(e))


# -- reading numbers ----------------------------------------------------------------------------


def at_least(minimum: int, number: Callable[[str], N]) -> Callable[[str], N]:
    """Reads a number (`int`, `float`) no smaller than `minimum`."""

    def read(text: str) -> N:
        try:
            value = number(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {text}")
        return value

    return read


at_least_one = at_least(1, int)
"""Reads a count: a whole number of at least 1."""


def concurrency_steps(text: str) -> tuple[int, ...]:
    """Reads steps of concurrency separated by commas, e.g. `1,10,100`."""
    steps = tuple(at_least_one(c) for c in text.split(",") if c.strip())
    if not steps:
        raise argparse.ArgumentTypeError("no steps: numbers separated by commas, e.g. 1,10,100")
    return steps


# -- the options several benchmarks share ---------------------------------------------------------


def keep(what: str = "the scratch database") -> bool:
    """`--keep`: leave what the run made (its database, ...) in place afterwards."""
    return option(False, f"keep {what} afterwards")


def messages(default: int, help: str = "messages to send") -> int:
    return option(default, help, at_least_one)


def rate(default: float) -> float:
    """`--rate`: how many messages are sent a second."""
    return option(default, "messages per second")


def chats() -> int:
    """The generated log (bench/database.py's loader): the chats its messages spread over."""
    return option(1_000, "chats the messages spread over", at_least_one)


def tenants() -> int:
    """The generated log: the tenants its chats spread over (every tenant gets a chat)."""
    return option(10, "tenants the chats spread over (at most --chats)", at_least_one)


def batch() -> int:
    """Events read from the log and handled at a time, as the `LogFollower` hands them over."""
    return option(500, "events read and handled per batch", at_least_one)


def seed() -> int:
    """The seed of the generated log's content."""
    return option(1, "seed for the generated content")


def check_log_shape(chats: int, tenants: int) -> None:
    if chats < tenants:
        raise ValueError("--chats must be at least --tenants (every tenant gets a chat)")
