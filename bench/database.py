"""A scratch PostgreSQL database per benchmark run: created on the server, migrated, dropped;
and `parley serve` on one."""

import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
from psycopg import sql

from api.runtime import migrate
from infra.postgres import PostgresTarget
from infra.services.postgres import PostgresService
from infra.settings import Settings
from tests.conftest import Server, target_url


def server_url(settings: Settings) -> str:
    """PARLEY_DATABASE_URL when set, else the server `parley services up` runs."""
    if settings.database_url:
        return settings.database_url
    return PostgresService(settings.services_dir, settings.services_postgres_port).url()


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


@contextmanager
def scratch_server(
    name: str, env: Mapping[str, str], *, keep: bool = False
) -> Iterator[tuple[Server, PostgresTarget]]:
    """A started `parley serve` with `env` on a new scratch database; on the way out it is
    stopped (its log's last lines printed if the benchmark failed) and the database and its data
    directory are removed, unless `keep`."""
    target = create_scratch_database(server_url(Settings()), "parley_bench")
    data_dir = Path(tempfile.mkdtemp(prefix=f"parley-bench-{name}-"))
    server = Server(data_dir, {**env, "PARLEY_DATABASE_URL": target_url(target)})
    try:
        server.start()
        print(f"parley serve at {server.url} on database {target.dbname}", file=sys.stderr)
        yield server, target
    except BaseException:
        if server.log.exists():
            tail = server.log.read_text(errors="replace").splitlines()[-20:]
            print("parley serve's log, last lines:\n  " + "\n  ".join(tail), file=sys.stderr)
        raise
    finally:
        server.stop()
        if keep:
            print(f"kept database {target.dbname} and {data_dir}", file=sys.stderr)
        else:
            drop_database(target)
            shutil.rmtree(data_dir, ignore_errors=True)
