"""Shared fixtures. Tests talk to real servers: PostgreSQL, Redis, Kafka and Elasticsearch as
`parley services up` runs them (started here if they are not running; a service that cannot be
started fails the tests that need it, nothing is skipped), and, for the API, real `parley serve`
processes (the embedded default, or the full stack)."""

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg_pool import ConnectionPool

from api.runtime import Runtime
from infra.eventstore.data_keys import DataKeys
from infra.identity.master_key import MasterKey, new_master_key
from infra.knowledge.embeddings import LocalMiniLM
from infra.knowledge.local_model import ModelFiles, ensure_model
from infra.migrations import migrate
from infra.postgres import PostgresTarget, open_pool
from infra.services.base import ServiceError
from infra.services.registry import build_services
from infra.settings import Settings
from queries.read_models import ReadModels
from testbed.client import ApiClient
from testbed.processes import MODELS, Server, Worker, target_url

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


@contextmanager
def own_database(server_url: str) -> Iterator[PostgresTarget]:
    """A fresh database (fresh_database) for a module's server, dropped when it is done."""
    target = fresh_database(server_url)
    try:
        yield target
    finally:
        with psycopg.connect(
            replace(target, dbname="postgres").conninfo(), autocommit=True
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{target.dbname}" WITH (FORCE)')


@pytest.fixture(scope="session")
def model_files() -> ModelFiles:
    """The local embedding model's files (downloaded into PARLEY_SERVICES_DIR/models once)."""
    settings = Settings()
    return ensure_model(
        settings.services_dir.resolve() / "models", settings.embedding_model_repository
    )


@pytest.fixture(scope="session")
def minilm(model_files: ModelFiles) -> LocalMiniLM:
    return LocalMiniLM(model_files, threads=1)


@pytest.fixture(scope="session")
def pg_target(postgres_url: str) -> Iterator[PostgresTarget]:
    """A migrated database of its own for the in-process tests."""
    with own_database(postgres_url) as target:
        yield target


@pytest.fixture(scope="session")
def pg_pool(pg_target: PostgresTarget) -> Iterator[ConnectionPool]:
    """A small pool on the in-process tests' database (for adapters that share state there)."""
    with open_pool(pg_target.conninfo(), size=4, name="tests") as pool:
        yield pool


def tamper(target: PostgresTarget, *statements: str) -> None:
    """Run SQL as a superuser with triggers off (what it takes to get past append-only)."""
    with psycopg.connect(target.conninfo(), autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        for statement in statements:
            conn.execute(statement)


@pytest.fixture(scope="session")
def settings(pg_target: PostgresTarget, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    reader = replace(pg_target, user="parley_reader", password="")
    return Settings(
        database_url=target_url(pg_target),
        reader_database_url=target_url(reader),
        data_dir=tmp_path_factory.mktemp("data"),
        # The local embedding model, fetched once per checkout (not into each data dir).
        embedding_model_dir=MODELS,
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


@pytest.fixture(scope="session", params=["redis", "postgres"])
def stack_servers(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    redis_url: str,
) -> Iterator[tuple[Worker, Server]]:
    """The full stack as deployed: a `parley worker` process and an API-only server sharing
    one PostgreSQL database, and Redis or not (live events, replies in progress and rate limits
    cross processes through Redis, or through PostgreSQL without it)."""

    database = fresh_database(postgres_url)
    env = {
        "PARLEY_DATABASE_URL": target_url(database),
        "PARLEY_READER_DATABASE_URL": target_url(replace(database, user="parley_reader")),
        "PARLEY_MASTER_KEY": MASTER_KEY,  # processes of one deployment share it
    }
    if request.param == "redis":
        env["PARLEY_REDIS_URL"] = redis_url
    worker = Worker(tmp_path_factory.mktemp("stack-worker"), env).start()
    api_only = Server(
        tmp_path_factory.mktemp("stack-api"), {**env, "PARLEY_RUN_WORKERS": "false"}
    ).start()
    yield worker, api_only
    api_only.stop()
    worker.stop()
