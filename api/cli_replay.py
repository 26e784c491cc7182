"""`parley replay AGGREGATE_ID [--as-of TIME | --version N]`: an aggregate's past state as JSON."""

import argparse
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from api.cli_runtime import on_runtime

if TYPE_CHECKING:
    from api.runtime import Runtime


def iso_time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {value!r} (e.g. 2026-11-26T13:00:00Z)"
        ) from None


def cmd_replay(args: argparse.Namespace, runtime: "Runtime") -> int:
    from api.progress import ProgressBar
    from queries.replay import state_at

    bar = ProgressBar(f"replay {args.aggregate_id}")
    state = state_at(
        runtime.store,
        args.aggregate_id,
        as_of=args.as_of,
        version=args.version,
        progress=bar.update,
    )
    print(json.dumps(state, indent=2, ensure_ascii=False))
    return 0


def add_replay_command(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Register `parley replay` on the CLI's sub-command parsers."""
    replay = subparsers.add_parser(
        "replay",
        help="print an aggregate's state at a past time or version (JSON), rebuilt from its events",
        description="Rebuild an aggregate (chat, user, tenant) from the event log up to a version, "
        "or up to its last event at or before a time, and print its state as JSON. Without "
        "--as-of or --version: its latest state. Times without a zone are UTC.",
    )
    replay.add_argument("aggregate_id", type=UUID, metavar="AGGREGATE_ID")
    when = replay.add_mutually_exclusive_group()
    when.add_argument("--as-of", type=iso_time, metavar="ISO_TIME", help="e.g. 2026-11-26T13:00Z")
    when.add_argument(
        "--version", type=int, metavar="N", help="the aggregate version (1 = created)"
    )
    on_runtime(replay, cmd_replay)
