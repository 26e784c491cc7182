"""`parley projections status|rebuild|skip`: the state of every follower, blue/green rebuilds of
the read models and the search index, and moving a follower past an event it cannot handle."""

import argparse
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

from api.cli_runtime import on_runtime

if TYPE_CHECKING:
    from api.runtime import Runtime


def cmd_projections(args: argparse.Namespace, runtime: "Runtime") -> int:
    from dataclasses import asdict

    from api.progress import ProgressBar
    from projections.rebuild import rebuild_read_models
    from projections.status import follower_statuses

    settings = runtime.settings

    if args.action == "status":
        with runtime.writer_pool.connection() as conn:
            statuses = follower_statuses(runtime.store, conn)
        if args.json:
            print(json.dumps([asdict(s) for s in statuses], indent=2))
            return 0
        print(f"{'PROJECTION':<22} {'POSITION':>10} {'HEAD':>10} {'LAG':>8} {'LAG_S':>9}  STATE")
        for s in statuses:
            print(
                f"{s.name:<22} {s.position:>10} {s.head:>10} {s.lag_events:>8} "
                f"{s.lag_seconds:>9.1f}  {s.state}"
            )
            if s.failure:
                print(f"{'':<22} {s.failure}")
        return 1 if any(s.failure for s in statuses) else 0
    if args.action == "skip":
        from infra.eventstore.follower_positions import NotTheFailingEvent, skip_failed_event

        if args.name == "audit":
            print(
                "error: the audit ledger cannot skip an event: the chain must hold every"
                " event, or verification reports it as inserted forever. Fix the cause.",
                file=sys.stderr,
            )
            return 2
        try:
            with runtime.writer_pool.connection() as conn, conn.transaction():
                skip_failed_event(conn, args.name, args.position)
        except NotTheFailingEvent as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        logging.getLogger("parley.projections").warning(
            "operator skipped event %d of %s", args.position, args.name
        )
        print(f"{args.name} skips event {args.position}; it resumes after it")
        return 0
    bar = ProgressBar(f"rebuild {args.name}")
    if args.name == "read_models":
        position = rebuild_read_models(runtime.store, runtime.writer_pool, progress=bar.update)
    elif args.name == "search" and settings.elasticsearch_url:
        from elasticsearch import Elasticsearch

        from projections.rebuild import rebuild_search

        with Elasticsearch(settings.elasticsearch_url, request_timeout=60) as client:
            position = rebuild_search(
                runtime.store,
                runtime.writer_pool,
                client,
                settings.elasticsearch_index,
                shards=settings.elasticsearch_shards,
                replicas=settings.elasticsearch_replicas,
                progress=bar.update,
            )
    else:
        known = "read_models, search (with PARLEY_ELASTICSEARCH_URL)"
        print(f"error: cannot rebuild {args.name!r}; known: {known}", file=sys.stderr)
        return 2
    print(f"rebuilt {args.name}: the new generation serves from position {position}")
    return 0


def add_projection_commands(subparsers: "argparse._SubParsersAction[Any]") -> None:
    """Register `parley projections …`."""
    projections = subparsers.add_parser(
        "projections", help="inspect and rebuild the projections (read models, search index)"
    )
    projection_actions = projections.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = projection_actions.add_parser(
        "status", help="position, log head, lag (events, seconds), state and failures"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    on_runtime(status, cmd_projections)
    rebuild = projection_actions.add_parser(
        "rebuild",
        help="rebuild from position 0 beside the live copy, then swap atomically",
    )
    rebuild.add_argument(
        "name",
        help="read_models, or search (the Elasticsearch index; Postgres search is part "
        "of read_models)",
    )
    on_runtime(rebuild, cmd_projections)
    skip = projection_actions.add_parser(
        "skip",
        help="move a projection past the one event it keeps failing on (as `status` reports "
        "it); the event stays in the log, the projection just ignores it",
    )
    skip.add_argument("name")
    skip.add_argument("position", type=int, help="the failing event's position")
    on_runtime(skip, cmd_projections)
