"""A scratch PostgreSQL database per benchmark run: created on the server, migrated, dropped."""

import uuid
from dataclasses import replace

import psycopg
from psycopg import sql

from api.runtime import migrate
from infra.postgres import PostgresTarget
from infra.services.postgres import PostgresService
from infra.settings import Settings


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
