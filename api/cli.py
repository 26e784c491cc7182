"""`parley`: run the server, migrate, and administer tenants from the command line."""

import argparse
import json
import logging
import secrets
import sys
import time
from collections.abc import Sequence

from api.cli_audit import add_audit_commands
from api.cli_auth import add_auth_commands
from api.cli_gdpr import add_gdpr_commands
from api.cli_replay import add_replay_command
from api.cli_runtime import cli_runtime
from infra.settings import Settings

EXAMPLE_QUERY = """\
curl -s http://{host}:{port}/graphql -H 'Content-Type: application/json' \\
  -H 'Authorization: Bearer {token}' \\
  -d '{{"query": "mutation {{ startChat(input: {{title: \\"Hello\\"}}) {{ chatId }} }}"}}'"""


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    host = args.host or settings.host
    port = args.port or settings.port
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        # The sans-I/O protocol keeps timers instead of four asyncio tasks per connection
        # (~64 vs ~70 KiB per connection at 2,000 subscribers, docs/performance.md).
        ws="websockets-sansio",
        ws_max_size=settings.ws_max_message_bytes,
        ws_per_message_deflate=settings.ws_compression,
        server_header=False,  # no server name or version to fingerprint
    )
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    """Run the followers (read-model projection, responder) without the HTTP API."""
    import signal
    import threading

    from prometheus_client import start_http_server

    from api.runtime import Runtime

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if settings.redis_url is None:
        logging.getLogger("parley.worker").warning(
            "PARLEY_REDIS_URL is unset: live events (deltas, new messages) from this worker "
            "reach no API process; durable data is unaffected"
        )
    runtime = Runtime(settings)
    runtime.start(workers=True if args.kind == "all" else {args.kind})
    if args.metrics_port:
        start_http_server(args.metrics_port, addr=args.metrics_host)
    logging.getLogger("parley.worker").info(
        "workers running: %s", ", ".join(runtime.follower_status())
    )
    try:
        stop.wait()
    finally:
        runtime.stop()
    return 0


def cmd_projections(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from api.progress import ProgressBar
    from projections.rebuild import rebuild_read_models
    from projections.status import follower_statuses

    with cli_runtime(settings) as runtime:
        if args.action == "status":
            with runtime.writer_pool.connection() as conn:
                statuses = follower_statuses(runtime.store, conn)
            if args.json:
                print(json.dumps([asdict(s) for s in statuses], indent=2))
                return 0
            print(
                f"{'PROJECTION':<22} {'POSITION':>10} {'HEAD':>10} {'LAG':>8} {'LAG_S':>9}  STATE"
            )
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


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from infra.migrations import migrate
    from infra.postgres import EmbeddedPostgres, PostgresTarget

    if settings.database_url is None:
        embedded = EmbeddedPostgres(settings.data_dir)
        try:
            migrate(embedded.start())
        finally:
            embedded.stop()
    else:
        reader = settings.reader_database_url
        reader_target = PostgresTarget.from_url(reader) if reader else None
        password = reader_target.password if reader_target else None
        if reader_target is not None and reader_target.user != "parley_reader":
            password = None  # an operator-managed login: leave it alone
        migrate(PostgresTarget.from_url(settings.database_url), reader_password=password)
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


def cmd_tenants_create(args: argparse.Namespace, settings: Settings) -> int:
    from commands.messages import CreateTenant

    with cli_runtime(settings) as runtime:
        result = runtime.handlers.create_tenant(
            CreateTenant(
                name=args.name,
                slug=args.slug,
                admin_email=args.admin_email,
                admin_password=args.admin_password,
                admin_display_name=args.admin_name,
            )
        )
    print(
        json.dumps(
            {
                "tenant_id": str(result.tenant_id),
                "admin_user_id": str(result.admin_user_id),
                "slug": args.slug,
                "position": result.position,
            }
        )
    )
    return 0


def cmd_platform_admin_create(args: argparse.Namespace, settings: Settings) -> int:
    from commands.messages import CreatePlatformAdmin

    with cli_runtime(settings) as runtime:
        result = runtime.handlers.create_platform_admin(
            CreatePlatformAdmin(email=args.email, password=args.password, display_name=args.name)
        )
    print(
        json.dumps({"user_id": str(result.id), "tenant": "platform", "position": result.position})
    )
    return 0


DEMO_MODELS = (
    ("OPENAI_API_KEY", "openai/gpt-4o-mini"),
    ("ANTHROPIC_API_KEY", "anthropic/claude-haiku-4-5"),
    ("GEMINI_API_KEY", "google/gemini-2.5-flash"),
    ("GOOGLE_API_KEY", "google/gemini-2.5-flash"),
)


def demo_model() -> str:
    """A real model when a provider's key is in the environment; echo otherwise."""
    import os

    return next((model for key, model in DEMO_MODELS if os.environ.get(key)), "echo")


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from commands.messages import ChangeTenantSettings, CreateTenant
    from domain.actor import Actor
    from domain.tenant import Tenant, tenant_id_for_slug
    from domain.user import User, user_id_for

    email = "demo@parley.example"
    with cli_runtime(settings) as runtime:
        tenant_id = tenant_id_for_slug("demo")
        password = None
        if runtime.store.get_or_none(tenant_id) is None:
            password = secrets.token_urlsafe(12)
            runtime.handlers.create_tenant(
                CreateTenant(
                    name="Demo",
                    slug="demo",
                    admin_email=email,
                    admin_password=password,
                    admin_display_name="Demo Admin",
                )
            )
        user = runtime.store.get_or_none(user_id_for(tenant_id, email))
        tenant = runtime.store.get_or_none(tenant_id)
        if not isinstance(user, User) or not isinstance(tenant, Tenant):
            print(f"tenant 'demo' exists without its user {email}", file=sys.stderr)
            return 1
        token = runtime.tokens.issue(
            user_id=user.id, tenant_id=tenant_id, role=user.role.value, token_type="access"
        )
        model = args.model or demo_model()
        if tenant.default_model != model:
            runtime.handlers.change_tenant_settings(
                ChangeTenantSettings(
                    default_model=model,
                    allowed_models=list(dict.fromkeys([model, "echo"])),
                    fallback_models=[] if model == "echo" else ["echo"],
                ),
                Actor(user.id, tenant_id, user.role),
            )
    print(f"Demo tenant: slug 'demo', user {email}, model {model}")
    if model == "echo":
        print(
            "(echo repeats your words, it is not AI: set OPENAI_API_KEY, ANTHROPIC_API_KEY or "
            "GEMINI_API_KEY and run `parley demo` again for a real model)"
        )
    if password:
        print("Password (shown once):", password)
    print(f"Access token (valid {settings.access_token_ttl_seconds} s):\n{token}\n")
    print(f"Start `parley serve`, open http://{settings.host}:{settings.port}/graphql, or try:")
    print(EXAMPLE_QUERY.format(host=settings.host, port=settings.port, token=token))
    return 0


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

    serve = sub.add_parser("serve", help="run the API with its in-process workers")
    serve.add_argument("--host", help="bind address (default 127.0.0.1, PARLEY_HOST)")
    serve.add_argument("--port", type=int, help="port (default 8000, PARLEY_PORT)")
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
        help="run benchmarks (write, projections, relay, gateway); none named: list them",
        description="Runs `python -m bench NAME` for each NAME from the source tree, against "
        "the services `parley services up` runs (or PARLEY_DATABASE_URL …). Options after -- "
        "go to every benchmark, e.g. `parley bench write -- --callers 1,64`.",
    )
    bench.add_argument("words", nargs=argparse.REMAINDER, metavar="NAME … [-- OPTIONS]")
    bench.set_defaults(func=cmd_bench)

    tenants = sub.add_parser("tenants", help="manage tenants").add_subparsers(
        dest="tenants_command", required=True, metavar="ACTION"
    )
    create = tenants.add_parser("create", help="create a tenant and its first admin (prints JSON)")
    create.add_argument("--name", required=True)
    create.add_argument("--slug", required=True, help="unique sign-in handle, e.g. acme")
    create.add_argument("--admin-email", required=True)
    create.add_argument("--admin-password", required=True, help="at least 12 characters")
    create.add_argument("--admin-name", default="Administrator", help="admin display name")
    create.set_defaults(func=cmd_tenants_create)

    admins = sub.add_parser(
        "platform-admins", help="manage platform admins (cross-tenant administration)"
    ).add_subparsers(dest="admins_command", required=True, metavar="ACTION")
    padmin = admins.add_parser(
        "create", help="create a platform admin in the reserved 'platform' tenant (prints JSON)"
    )
    padmin.add_argument("--email", required=True)
    padmin.add_argument("--password", required=True, help="at least 12 characters")
    padmin.add_argument("--name", default="Platform Admin", help="display name")
    padmin.set_defaults(func=cmd_platform_admin_create)

    projections = sub.add_parser(
        "projections", help="inspect and rebuild the projections (read models, search index)"
    )
    projection_actions = projections.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = projection_actions.add_parser(
        "status", help="position, log head, lag (events, seconds), state and failures"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_projections)
    rebuild = projection_actions.add_parser(
        "rebuild",
        help="rebuild from position 0 beside the live copy, then swap atomically",
    )
    rebuild.add_argument(
        "name",
        help="read_models, or search (the Elasticsearch index; Postgres search is part "
        "of read_models)",
    )
    rebuild.set_defaults(func=cmd_projections)
    skip = projection_actions.add_parser(
        "skip",
        help="move a projection past the one event it keeps failing on (as `status` reports "
        "it); the event stays in the log, the projection just ignores it",
    )
    skip.add_argument("name")
    skip.add_argument("position", type=int, help="the failing event's position")
    skip.set_defaults(func=cmd_projections)

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

    demo = sub.add_parser(
        "demo", help="create a demo tenant and user; print a ready token and an example query"
    )
    demo.add_argument(
        "--model",
        help="the demo tenant's model, e.g. openai/gpt-4o (default: a real model when "
        "OPENAI_API_KEY, ANTHROPIC_API_KEY or GEMINI_API_KEY is set, else echo)",
    )
    demo.set_defaults(func=cmd_demo)
    events = sub.add_parser("events", help="the event contract for Kafka consumers")
    event_actions = events.add_subparsers(dest="action", required=True, metavar="ACTION")
    schemas = event_actions.add_parser(
        "schemas", help="(re)generate the JSON Schemas and AsyncAPI document of every event"
    )
    schemas.add_argument("--out", default="docs/events", help="directory (default docs/events)")
    schemas.set_defaults(func=cmd_events_schemas)

    add_audit_commands(sub)
    add_auth_commands(sub)
    add_gdpr_commands(sub)
    add_replay_command(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Client libraries narrate every connection at INFO; their warnings still show.
    for chatty in ("kafka", "elastic_transport", "httpx"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    from domain.errors import ParleyError

    try:
        return int(args.func(args, settings))
    except ParleyError as e:
        print(f"error ({e.code}): {e.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
