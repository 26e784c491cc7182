"""The four real servers `parley services` runs, each proven by using it for real."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from elasticsearch import ConflictError, Elasticsearch, helpers
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from infra.services.base import LocalService, ServiceError, port_in_use, process_alive
from infra.services.redis import RedisService
from testbed.processes import PARLEY, ROOT, free_port


def test_postgres_service_writes_and_reads_a_row(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE probe (id uuid PRIMARY KEY, body text)")
        key = uuid.uuid4()
        conn.execute("INSERT INTO probe VALUES (%s, %s)", (key, "hello"))
        assert conn.execute("SELECT body FROM probe WHERE id = %s", (key,)).fetchone() == ("hello",)
        version = conn.execute("SHOW server_version").fetchone()
    assert version is not None and int(version[0].split(".")[0]) >= 15


def test_redis_service_sets_and_gets_a_key_without_persistence(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    key = f"probe:{uuid.uuid4()}"
    client.set(key, "value", ex=60)
    assert client.get(key) == b"value"
    assert client.config_get("save") == {"save": ""}
    assert client.config_get("appendonly") == {"appendonly": "no"}


def test_kafka_service_round_trips_a_record_with_an_idempotent_producer(
    kafka_bootstrap: str,
) -> None:
    topic = f"probe-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", enable_idempotence=True)
    producer.send(topic, key=b"k", value=b"hello kafka", headers=[("h", b"1")]).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"probe-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=30_000,
    )
    try:
        record = next(iter(consumer))
    finally:
        consumer.close()
    assert (record.key, record.value, record.headers) == (b"k", b"hello kafka", [("h", b"1")])


def test_elasticsearch_service_indexes_searches_and_deletes_by_id(elasticsearch_url: str) -> None:
    es = Elasticsearch(elasticsearch_url)
    index = f"probe-{uuid.uuid4().hex[:8]}"
    es.indices.create(
        index=index,
        settings={"number_of_shards": 1, "number_of_replicas": 0},
        mappings={
            "dynamic": "strict",
            "properties": {"tenant": {"type": "keyword"}, "text": {"type": "text"}},
        },
    )
    try:
        docs = [("a", "the quick brown fox"), ("b", "a lazy dog sleeps")]
        helpers.bulk(
            es,
            (
                {
                    "_index": index,
                    "_id": i,
                    "version": 5,
                    "version_type": "external",
                    "_source": {"tenant": "t1", "text": text},
                }
                for i, text in docs
            ),
            refresh=True,
        )
        with pytest.raises(ConflictError):  # an older version of a document is refused
            es.index(
                index=index,
                id="a",
                document={"tenant": "t1", "text": "stale"},
                version=4,
                version_type="external",
            )
        found = es.search(
            index=index, query={"match": {"text": "fox"}}, highlight={"fields": {"text": {}}}
        )
        hits = found["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["a"]
        assert hits[0]["highlight"]["text"] == ["the quick brown <em>fox</em>"]
        es.delete(index=index, id="a", refresh=True)
        assert es.count(index=index)["count"] == 1
    finally:
        es.indices.delete(index=index)


def test_services_status_shows_all_four_healthy_with_versions(
    postgres_url: str, redis_url: str, kafka_bootstrap: str, elasticsearch_url: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "services", "status"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:] if line}
    assert set(rows) == {"postgres", "redis", "kafka", "elasticsearch"}
    for name, row in rows.items():
        assert row[-1] == "healthy", row
        assert row[1][0].isdigit(), f"{name} has no version: {row}"
        assert row[2].startswith("127.0.0.1:")


def test_down_stops_only_what_up_started(tmp_path: Path) -> None:
    service = RedisService(tmp_path, free_port())
    status = service.up()
    assert status.healthy and status.pid is not None
    assert service.up().pid == status.pid  # idempotent: reuses the running server
    # A stranger on another port, started by someone else, must survive our `down`.
    stranger_port = free_port()
    stranger = subprocess.Popen(
        ["redis-server", "--port", str(stranger_port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        assert service.down() is True
        assert not process_alive(status.pid)
        assert service.status().healthy is False
        assert service.down() is False
        assert stranger.poll() is None
    finally:
        stranger.terminate()
        stranger.wait(10)


def test_up_refuses_a_port_someone_else_holds(tmp_path: Path) -> None:
    port = free_port()
    stranger = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while RedisService(tmp_path / "probe", port).check() is not None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(ServiceError, match=f"port {port} .* taken"):
            RedisService(tmp_path, port).up()
    finally:
        stranger.terminate()
        stranger.wait(10)


class _CrashingRedis(RedisService):
    """A real redis-server given a bad option: it exits during start."""

    def command(self):  # type: ignore[no-untyped-def]
        return [*super().command(), "--no-such-option", "x"]


def test_a_server_that_exits_during_start_reports_its_log(tmp_path: Path) -> None:
    with pytest.raises(ServiceError) as failure:
        _CrashingRedis(tmp_path, free_port()).up()
    message = str(failure.value)
    assert "exited during start" in message and "no-such-option" in message


def test_services_cli_prints_exports_for_parley(
    postgres_url: str, redis_url: str, kafka_bootstrap: str, elasticsearch_url: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "services", "env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    exports = dict(line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines())
    assert exports == {
        "PARLEY_DATABASE_URL": postgres_url,
        "PARLEY_REDIS_URL": redis_url,
        "PARLEY_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PARLEY_ELASTICSEARCH_URL": elasticsearch_url,
    }


def test_local_service_refuses_command_lines_it_could_not_recognise_later(
    tmp_path: Path,
) -> None:
    class Anonymous(LocalService):
        name = "anonymous"
        version = "0"
        address = "-"

        def env(self) -> dict[str, str]:
            return {}

        def prepare(self) -> None:
            pass

        def command(self):  # type: ignore[no-untyped-def]
            return ["sleep", "30"]  # nothing in it names our folder

        def check(self) -> str | None:
            return "never healthy"

    with pytest.raises(ServiceError, match="must mention"):
        Anonymous(tmp_path).up()


def test_a_database_url_is_used_not_started(postgres_url: str, tmp_path: Path) -> None:
    from infra.services.postgres import ExternalPostgres

    external = ExternalPostgres(tmp_path, postgres_url)
    status = external.up()
    assert status.healthy and status.pid is None and "external" in status.detail
    assert status.version.startswith("18")
    assert external.env() == {"PARLEY_DATABASE_URL": postgres_url}
    assert external.down() is False
    assert not (tmp_path / "postgres").exists()
    with pytest.raises(ServiceError, match="not reachable"):
        ExternalPostgres(tmp_path, f"postgresql://postgres@127.0.0.1:{free_port()}/x").up()


def services_cli(settings: dict[str, str], *args: str, exit_code: int = 0) -> dict[str, str]:
    """Run `parley services …` with these settings only (not the developer's own PARLEY_*);
    returns the lines it printed by their first word (a service's name)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    done = subprocess.run(
        [*PARLEY, "services", *args],
        cwd=ROOT,
        env={**env, **settings},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == exit_code, done.stdout + done.stderr
    rows = (line.split(None, 1) for line in done.stdout.splitlines() if line.strip())
    return {row[0]: row[1].strip() if len(row) > 1 else "" for row in rows}


@pytest.fixture
def own_services(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Settings of a services folder and a PostgreSQL port of our own (not the shared ones)."""
    settings = {
        "PARLEY_SERVICES_DIR": str(tmp_path / "services"),
        "PARLEY_SERVICES_POSTGRES_PORT": str(free_port()),
    }
    yield settings
    services_cli(settings, "down", "postgres")


def exports_of_up(settings: dict[str, str]) -> dict[str, str]:
    """`parley services up postgres`, then the shell of someone who did what it says: the
    settings plus the `export` lines it printed."""
    printed = services_cli(settings, "up", "postgres")
    assert printed["postgres"].endswith("healthy"), printed
    return {**settings, **dict([printed["export"].split("=", 1)])}


def test_down_stops_the_postgres_that_up_started_when_its_url_is_exported(
    own_services: dict[str, str],
) -> None:
    shell = exports_of_up(own_services)
    assert services_cli(shell, "down", "postgres") == {"postgres": "stopped"}
    assert not port_in_use(int(own_services["PARLEY_SERVICES_POSTGRES_PORT"]))


def test_status_shows_the_postgres_that_up_started_as_ours_when_its_url_is_exported(
    own_services: dict[str, str],
) -> None:
    shell = exports_of_up(own_services)
    row = services_cli(shell, "status", "postgres")["postgres"].split()
    assert row[-1] == "healthy" and row[-2].isdigit(), row  # a pid: ours, not "external"


def test_up_starts_the_postgres_its_exported_url_names_again_after_down(
    own_services: dict[str, str],
) -> None:
    shell = exports_of_up(own_services)
    services_cli(own_services, "down", "postgres")
    status = services_cli(shell, "status", "postgres", exit_code=1)
    assert status["postgres"].endswith("not running")
    assert services_cli(shell, "up", "postgres")["postgres"].endswith("healthy")


def test_down_leaves_an_external_postgres_running_and_says_so(
    own_services: dict[str, str], postgres_url: str
) -> None:
    shell = {**own_services, "PARLEY_DATABASE_URL": postgres_url}
    address = postgres_url.split("@", 1)[1].split("/", 1)[0]
    assert services_cli(shell, "down", "postgres") == {
        "postgres": f"external ({address}), not stopped"
    }
    with psycopg.connect(postgres_url, connect_timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
