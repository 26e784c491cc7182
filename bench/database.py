"""A scratch PostgreSQL database per benchmark run (created on the server, migrated, dropped), the
event store on it, and what the benchmarks ask the server."""

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from bench.services import postgres_url
from infra.eventstore.data_keys import DataKeys
from infra.eventstore.event_store import EventStore, open_event_store
from infra.migrations import migrate
from infra.postgres import PostgresTarget, open_pool
from infra.settings import Settings

PREFIX = "parley_bench"


@contextmanager
def scratch_database(*, keep: bool = False) -> Iterator[PostgresTarget]:
    """A new, migrated database `parley_bench_<random>` on the benchmarks' PostgreSQL server,
    dropped on the way out unless `keep`."""
    target = create_scratch_database(postgres_url(Settings()), PREFIX)
    print(f"bench database {target.dbname} on {target.host}:{target.port}", file=sys.stderr)
    try:
        yield target
    finally:
        if keep:
            print(f"kept database {target.dbname}", file=sys.stderr)
        else:
            drop_database(target)


def create_scratch_database(url: str, prefix: str) -> PostgresTarget:
    """A new, migrated database `<prefix>_<random>` on the server that `url` points at."""
    server = PostgresTarget.from_url(url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(server.conninfo(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as e:
        raise SystemExit(
            f"cannot reach PostgreSQL at {server.host}:{server.port} ({e}).\n"
            "Start the local services with `.venv/bin/parley services up postgres` "
            "or point PARLEY_DATABASE_URL at a server."
        ) from None
    target = replace(server, dbname=name)
    migrate(target)
    return target


def drop_database(target: PostgresTarget, maintenance_db: str = "postgres") -> None:
    with psycopg.connect(target.conninfo(dbname=maintenance_db), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target.dbname))
        )


def run_id(target: PostgresTarget) -> str:
    """The scratch database's random part: names the run's other throw-away things (indexes,
    topics)."""
    return target.dbname.rsplit("_", 1)[-1]


@contextmanager
def event_store(target: PostgresTarget) -> Iterator[tuple[EventStore, ConnectionPool]]:
    """The event store on the database and a pool of connections for the projections, closed
    on the way out."""
    store = open_event_store(
        target,
        create_tables=False,
        pool_size=2,
        keys=DataKeys.standalone(target.conninfo()),
    )
    pool = open_pool(target.conninfo(), size=2, name="bench")
    try:
        yield store, pool
    finally:
        pool.close()
        store.close()


def vacuum(target: PostgresTarget, table: str) -> None:
    """Untimed: the next stage should not race autovacuum or a checkpoint of the last one."""
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
        conn.execute("CHECKPOINT")


POSTGRES_SETTINGS = ("server_version", "fsync", "synchronous_commit", "shared_buffers")


def postgres_info(
    target: PostgresTarget, names: tuple[str, ...] = POSTGRES_SETTINGS
) -> dict[str, str]:
    """The server's version and the settings that decide what a commit costs."""
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n, current_setting(n) FROM unnest(%s::text[]) AS n", (list(names),)
        ).fetchall()
    return dict(rows)
