"""Shared fixtures. Tests talk to real servers: PostgreSQL, Redis, Kafka and Elasticsearch as
`parley services up` runs them (started here if they are not running; a service that cannot be
started fails the tests that need it, nothing is skipped), and, for the API, real `parley serve`
processes (the embedded default, or the full stack)."""

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
from infra.data_keys import DataKeys
from infra.master_key import MasterKey, new_master_key
from infra.postgres import PostgresTarget
from infra.services.base import ServiceError
from infra.services.registry import build_services
from infra.settings import Settings
from queries.read_models import ReadModels
from tests.client import ApiClient

ROOT = Path(__file__).resolve().parent.parent
PARLEY = [sys.executable, "-m", "api.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_started: dict[str, dict[str, str]] = {}


def service_env(name: str) -> dict[str, str]:
    """Bring one local service up (or reuse it) and return the settings that point at it."""
    if name not in _started:
        service = build_services(Settings())[name]
        try:
            service.up()
        except ServiceError as e:
            pytest.fail(f"{name} is required and could not be started: {e}", pytrace=False)
        _started[name] = service.env()
    return _started[name]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    return service_env("postgres")["PARLEY_DATABASE_URL"]


@pytest.fixture(scope="session")
def redis_url() -> str:
    return service_env("redis")["PARLEY_REDIS_URL"]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    return service_env("kafka")["PARLEY_KAFKA_BOOTSTRAP_SERVERS"]


@pytest.fixture(scope="session")
def elasticsearch_url() -> str:
    return service_env("elasticsearch")["PARLEY_ELASTICSEARCH_URL"]


MASTER_KEY = new_master_key()
"""The master key of this test run, for stores the tests open themselves and the processes that
read what those stores wrote (PARLEY_MASTER_KEY)."""


def data_keys(target: PostgresTarget) -> DataKeys:
    """Data keys for a store a test opens on `target`, under the run's MASTER_KEY."""
    return DataKeys.standalone(target.conninfo(), MasterKey.from_setting(MASTER_KEY, Path()))


def fresh_database(server_url: str) -> PostgresTarget:
    """A new, migrated database on the server, so test runs never see each other's data."""
    server = PostgresTarget.from_url(server_url)
    name = f"parley_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    target = replace(server, dbname=name)
    migrate(target)
    return target


@pytest.fixture(scope="session")
def pg_target(postgres_url: str) -> Iterator[PostgresTarget]:
    """A migrated database of its own for the in-process tests."""
    target = fresh_database(postgres_url)
    yield target
    with psycopg.connect(replace(target, dbname="postgres").conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.dbname}" WITH (FORCE)')


def tamper(target: PostgresTarget, *statements: str) -> None:
    """Run SQL as a superuser with triggers off (what it takes to get past append-only)."""
    with psycopg.connect(target.conninfo(), autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            conn.execute(statement)


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
        # Never a relay, even with PARLEY_KAFKA_BOOTSTRAP_SERVERS exported: it would run for the
        # whole session beside the relays tests/test_relay.py starts, sharing their lag gauge
        # (labelled only "relay") and producer thread name, and publish to the shared topic.
        kafka_bootstrap_servers=None,
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
        # Only what we pass: a developer's exported PARLEY_* must not change the mode under test.
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")},
            "PARLEY_DATA_DIR": str(data_dir),
            "PARLEY_ECHO_DELAY_MS": "5",
            "PARLEY_LOG_LEVEL": "WARNING",
            **(env or {}),
        }
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


class Worker:
    """A real `parley worker` process (followers only), ready once its metrics answer."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.server = Server(data_dir, env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Worker":
        log = self.server.log.with_name(f"worker-{self.port}.log")
        self.server.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [*PARLEY, "worker", "--metrics-port", str(self.port)],
            cwd=ROOT,
            env=self.server.env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"parley worker exited:\n{log.read_text()[-3000:]}")
            try:
                metrics = httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=1).text
                if 'parley_follower_position{follower="responder"}' in metrics:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"parley worker did not start:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture(scope="session")
def stack_servers(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str
) -> Iterator[tuple[Worker, Server]]:
    """The full stack as deployed: a `parley worker` process and an API-only server sharing
    one PostgreSQL database and Redis (live events cross processes through Redis)."""

    database = fresh_database(postgres_url)
    env = {
        "PARLEY_DATABASE_URL": target_url(database),
        "PARLEY_READER_DATABASE_URL": target_url(replace(database, user="parley_reader")),
        "PARLEY_REDIS_URL": redis_url,
        "PARLEY_MASTER_KEY": MASTER_KEY,  # processes of one deployment share it
    }
    worker = Worker(tmp_path_factory.mktemp("stack-worker"), env).start()
    api_only = Server(
        tmp_path_factory.mktemp("stack-api"), {**env, "PARLEY_RUN_WORKERS": "false"}
    ).start()
    yield worker, api_only
    api_only.stop()
    worker.stop()
