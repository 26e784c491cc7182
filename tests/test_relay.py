"""The Kafka relay against real brokers: every event on the topic once in normal operation, in
per-aggregate order, with its audit headers; no command failing and no event lost while Kafka is
down; and nothing lost or reordered when the relay is killed at random points. Consumers
deduplicate by `event_id` (a crash may resend a batch); after that the topic equals the log."""

import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType
from prometheus_client import REGISTRY

from api.runtime import Runtime
from commands.messages import CreateTenant, SendMessage, StartChat
from domain.actor import Actor
from domain.user import Role
from infra.audit.chain import event_id, generate_signing_key
from infra.audit.store import LEDGER_NAME
from infra.eventstore.event_store import open_event_store
from infra.eventstore.follower_positions import read_position
from infra.messaging.kafka_relay import RELAY_NAME, decode_record
from infra.postgres import PostgresTarget, open_pool
from infra.services.kafka import KafkaService
from infra.services.registry import build_services
from infra.settings import Settings
from projections.audit_ledger import AuditLedger
from testbed.processes import PARLEY, ROOT, free_port, target_url
from tests.conftest import MASTER_KEY, data_keys, fresh_database
from tests.test_projections import load_log

PARTITIONS = 4
"""Not the default (6): proves the relay creates the topic with the configured count."""
HEADERS = {
    "event_id",
    "event_type",
    "schema_version",
    "tenant_id",
    "aggregate_id",
    "aggregate_version",
    "position",
    "occurred_at",
    "chain_hash",
}


@dataclass(frozen=True)
class Stored:
    """One row of the event log, with its audit chain hash."""

    position: int
    aggregate_id: UUID
    version: int
    topic: str
    state: bytes
    tenant_id: UUID | None
    chain: bytes


@dataclass(frozen=True)
class Relayed:
    """One record read back from the event topic."""

    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict[str, str]

    @property
    def event_id(self) -> str:
        return self.headers["event_id"]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting until {what}")
        time.sleep(0.05)


def stored_log(target: PostgresTarget) -> list[Stored]:
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state,"
            " c.tenant_id, c.chain FROM parley_events e"
            " LEFT JOIN audit_chain c ON c.position = e.notification_id"
            " ORDER BY e.notification_id"
        ).fetchall()
    return [
        Stored(int(p), a, int(v), t, bytes(s), tenant, bytes(chain) if chain else b"")
        for p, a, v, t, s, tenant, chain in rows
    ]


def position_of(target: PostgresTarget, name: str) -> int:
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        return read_position(conn, name)


def head_of(target: PostgresTarget) -> int:
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        row = conn.execute("SELECT coalesce(max(notification_id), 0) FROM parley_events").fetchone()
    return int(row[0]) if row else 0


def read_topic(bootstrap: str, topic: str, timeout: float = 30) -> list[Relayed]:
    """Every record of the topic, from the beginning up to the end offsets seen at the start."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        end = consumer.end_offsets(assigned)
        records: list[Relayed] = []
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in assigned):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(
                    Relayed(
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        {name: value.decode() for name, value in r.headers},
                    )
                    for r in batch
                )
    finally:
        consumer.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def deduplicated(records: list[Relayed]) -> list[Relayed]:
    """What a consumer keeps: the first record of each event_id. A duplicate must be an exact
    resend (same key, value and headers), never a different event under the same id."""
    first: dict[str, Relayed] = {}
    for record in records:
        seen = first.setdefault(record.event_id, record)
        if seen is not record:
            assert (seen.key, seen.value, seen.headers) == (
                record.key,
                record.value,
                record.headers,
            ), f"event {record.event_id} was published twice with different content"
    return list(first.values())


def assert_topic_is_the_log(records: list[Relayed], log: list[Stored]) -> None:
    """Deduplicated by event_id, the topic holds exactly the log: every event, nothing else, each
    aggregate in one partition with its versions in log order, each record matching its row."""
    kept = deduplicated(records)
    by_id = {str(event_id(s.aggregate_id, s.version)): s for s in log}
    relayed_ids = [r.event_id for r in kept]
    missing = sorted(by_id[i].position for i in set(by_id) - set(relayed_ids))
    assert not missing, f"{len(missing)} events never reached the topic, first {missing[:10]}"
    assert set(relayed_ids) == set(by_id), "the topic holds events that are not in the log"
    assert len(kept) == len(log)

    partitions: dict[UUID, set[int]] = defaultdict(set)
    relayed_versions: dict[UUID, list[int]] = defaultdict(list)
    for record in kept:  # (partition, offset) order
        stored = by_id[record.event_id]
        envelope, payload = decode_record(record.value)
        assert record.key == str(stored.aggregate_id).encode()
        assert record.headers["position"] == str(stored.position)
        assert record.headers["aggregate_id"] == str(stored.aggregate_id)
        assert record.headers["aggregate_version"] == str(stored.version)
        assert record.headers["event_type"] == stored.topic
        assert record.headers["chain_hash"] == stored.chain.hex() and stored.chain
        assert envelope["position"] == stored.position and payload == stored.state
        partitions[stored.aggregate_id].add(record.partition)
        relayed_versions[stored.aggregate_id].append(stored.version)
    logged_versions: dict[UUID, list[int]] = defaultdict(list)
    for s in log:
        logged_versions[s.aggregate_id].append(s.version)
    split = {a: p for a, p in partitions.items() if len(p) > 1}
    assert not split, f"aggregates spread over several partitions: {list(split.items())[:3]}"
    disordered = [a for a in logged_versions if relayed_versions[a] != logged_versions[a]]
    assert not disordered, (
        f"{len(disordered)} aggregates out of order, e.g. {disordered[0]}: "
        f"{relayed_versions[disordered[0]][:20]} vs {logged_versions[disordered[0]][:20]}"
    )


def drop_database(target: PostgresTarget) -> None:
    with psycopg.connect(replace(target, dbname="postgres").conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.dbname}" WITH (FORCE)')


@pytest.fixture
def database(postgres_url: str) -> Iterator[PostgresTarget]:
    target = fresh_database(postgres_url)
    yield target
    drop_database(target)


def relay_settings(
    target: PostgresTarget,
    data_dir: Path,
    bootstrap: str,
    topic: str,
    kafka_timeout_seconds: float = 30.0,
) -> Settings:
    return Settings(
        database_url=target_url(target),
        data_dir=data_dir,
        kafka_bootstrap_servers=bootstrap,
        kafka_topic=topic,
        kafka_checkpoint_topic=f"{topic}.checkpoints",
        kafka_partitions=PARTITIONS,
        kafka_timeout_seconds=kafka_timeout_seconds,
        follower_poll_seconds=0.2,
    )


def new_topic() -> str:
    return f"parley.test-events.{uuid.uuid4().hex[:10]}"


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    """A fresh event topic name on the shared broker; the relay creates it, we delete it."""
    name = new_topic()
    yield name
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        created = [t for t in (name, f"{name}.checkpoints") if t in set(admin.list_topics())]
        if created:
            admin.delete_topics(created)
    finally:
        admin.close()


def tenant_with_admin(runtime: Runtime) -> Actor:
    slug = f"relay-{uuid.uuid4().hex[:10]}"
    created = runtime.bus.handle(
        CreateTenant(
            name=slug.upper(),
            slug=slug,
            admin_email=f"admin@{slug}.example",
            admin_password="admin-password-123",
        )
    )
    return Actor(created.admin_user_id, created.tenant_id, Role.TENANT_ADMIN)


def test_every_event_reaches_the_topic_once_in_aggregate_order_with_its_audit_headers(
    kafka_bootstrap: str, topic: str, database: PostgresTarget, tmp_path: Path
) -> None:
    runtime = Runtime(relay_settings(database, tmp_path, kafka_bootstrap, topic))
    runtime.start(workers={"audit", "relay"})
    try:
        for _ in range(2):
            actor = tenant_with_admin(runtime)
            chats = [runtime.bus.handle(StartChat(title=f"chat {c}"), actor).id for c in range(3)]
            for n in range(30):
                chat = chats[n % len(chats)]
                runtime.bus.handle(SendMessage(chat_id=chat, content=f"m{n}"), actor)
        head = runtime.store.head()
        wait_for(lambda: position_of(database, RELAY_NAME) == head, 30, "the relay caught up")
        decoded = {n.id: runtime.store.decode(n) for n in runtime.store.read(0, head + 1)}
    finally:
        runtime.stop()

    log = stored_log(database)
    records = read_topic(kafka_bootstrap, topic)
    assert log[-1].position == head and set(decoded) == {s.position for s in log}
    assert len(records) == len(log), "normal operation publishes every event exactly once"
    assert len({r.event_id for r in records}) == len(records)
    assert_topic_is_the_log(records, log)
    by_position = {s.position: s for s in log}
    for record in records:
        stored = by_position[int(record.headers["position"])]
        event = decoded[stored.position]
        assert HEADERS.issubset(record.headers), record.headers
        assert record.headers["event_id"] == str(event_id(stored.aggregate_id, stored.version))
        assert record.headers["tenant_id"] == (str(stored.tenant_id) if stored.tenant_id else "")
        assert record.headers["schema_version"] == str(getattr(type(event), "class_version", 1))
        assert datetime.fromisoformat(record.headers["occurred_at"]) == event.timestamp
    positions = defaultdict(list)
    for record in records:
        positions[record.partition].append(int(record.headers["position"]))
    assert all(p == sorted(p) for p in positions.values()), "a partition is not in log order"
    assert len(positions) > 1, "keys should spread over the partitions"

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = admin.describe_topics([topic])
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all"
        )["topic"][topic]
    finally:
        admin.close()
    assert len(described[0]["partitions"]) == PARTITIONS
    assert configs["retention.ms"]["value"] == "-1"
    assert configs["cleanup.policy"]["value"] == "delete"


def sample(metric: str) -> float:
    """The relay's value of a follower metric in this process (0 before it is first set)."""
    return REGISTRY.get_sample_value(metric, {"follower": RELAY_NAME}) or 0.0


def lag_in_database(target: PostgresTarget) -> int:
    """The relay's lag as `parley projections status` reports it (head minus stored position)."""
    return head_of(target) - position_of(target, RELAY_NAME)


@dataclass(frozen=True)
class Outage:
    """What happened while a dedicated broker was stopped under traffic, and after it returned."""

    command_errors: list[BaseException]
    commands_while_down: int
    relay_error_while_down: str | None
    failed_attempts_while_down: float
    seconds_down: float
    lag_at_first_error: int
    lag_when_back: int
    lag_metric_before: float
    lag_metric_when_back: float
    client_threads_after: list[str]
    """Names of the Kafka client threads this relay started that still run once it caught up."""
    records: list[Relayed] = field(repr=False)
    log: list[Stored] = field(repr=False)


@pytest.fixture(scope="module")
def outage(
    kafka_bootstrap: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Outage]:
    """Three writers keep running commands while the relay's broker is stopped for a few
    seconds and started again; then the relay catches up."""
    # The lag gauge is labelled with the follower's name only, so another relay in this process
    # would overwrite what we read (and it would look caught up): ours must be the only one.
    others = [t.name for t in threading.enumerate() if t.name == f"follower-{RELAY_NAME}"]
    assert not others, "another relay runs in this test process; its metrics would mix with ours"
    # Client threads are counted by name: only those started from here on are this relay's.
    threads_before = set(threading.enumerate())
    tmp_path = tmp_path_factory.mktemp("outage")
    # A broker of our own, so the one other tests share is never stopped: same version, and
    # the jars the shared one already fetched.
    shared = build_services(Settings())["kafka"]
    assert isinstance(shared, KafkaService)
    broker = KafkaService(tmp_path, shared.version, free_port(), free_port())
    broker.libs = shared.libs
    database = fresh_database(postgres_url)
    topic = new_topic()
    runtime = Runtime(
        relay_settings(database, tmp_path, broker.address, topic, kafka_timeout_seconds=3)
    )
    stop = threading.Event()
    errors: list[BaseException] = []
    done: list[float] = []

    def traffic(actor: Actor) -> None:
        try:
            while not stop.is_set():
                # Short chats: loading an aggregate replays all its events.
                chat = runtime.bus.handle(StartChat(title="outage"), actor).id
                for n in range(20):
                    if stop.wait(0.05):
                        break
                    runtime.bus.handle(SendMessage(chat_id=chat, content=f"{n}"), actor)
                    done.append(time.monotonic())
        except BaseException as e:  # asserted by the tests
            errors.append(e)

    def relay_error() -> str | None:
        error: str | None = runtime.follower_status()[RELAY_NAME]["error"]
        return error

    writers: list[threading.Thread] = []
    try:
        broker.up()
        runtime.start(workers={"audit", "relay"})
        actor = tenant_with_admin(runtime)
        writers = [threading.Thread(target=traffic, args=(actor,)) for _ in range(3)]
        for writer in writers:
            writer.start()
        wait_for(lambda: len(done) >= 30, 30, "the writers got going")
        early = runtime.store.head()
        wait_for(lambda: position_of(database, RELAY_NAME) >= early, 30, "the relay relayed")

        lag_metric_before = sample("parley_follower_lag_events")
        attempts_before = sample("parley_follower_errors_total")
        broker.down()
        down_at = time.monotonic()
        wait_for(lambda: relay_error() is not None, 20, "the relay reported the outage")
        relay_error_while_down = relay_error()
        lag_at_first_error = lag_in_database(database)
        # At least 8 s, whatever the broker's restart takes: enough for two attempts of 3 s.
        wait_for(lambda: time.monotonic() - down_at >= 8, 15, "Kafka was down for 8 s")
        broker.up()  # returns once the broker answers again
        back_at = time.monotonic()
        # The gauge first: a batch relayed in between then lowers the lag we compare it with,
        # never the gauge alone.
        lag_metric_when_back = sample("parley_follower_lag_events")
        lag_when_back = lag_in_database(database)
        failed_attempts = sample("parley_follower_errors_total") - attempts_before

        wait_for(lambda: relay_error() is None, 45, "the relay recovered")
        stop.set()
        for writer in writers:
            writer.join(30)
        head = runtime.store.head()
        wait_for(lambda: position_of(database, RELAY_NAME) == head, 30, "the relay caught up")
        yield Outage(
            command_errors=errors,
            commands_while_down=sum(1 for t in done if down_at <= t <= back_at),
            relay_error_while_down=relay_error_while_down,
            failed_attempts_while_down=failed_attempts,
            seconds_down=back_at - down_at,
            lag_at_first_error=lag_at_first_error,
            lag_when_back=lag_when_back,
            lag_metric_before=lag_metric_before,
            lag_metric_when_back=lag_metric_when_back,
            client_threads_after=sorted(
                t.name
                for t in set(threading.enumerate()) - threads_before
                if "parley-relay" in t.name  # the relay's client ids
            ),
            records=read_topic(broker.address, topic),
            log=stored_log(database),
        )
    finally:
        stop.set()
        for writer in writers:
            writer.join(30)
        runtime.stop()
        broker.down()
        drop_database(database)


def test_commands_keep_succeeding_while_kafka_is_down(outage: Outage) -> None:
    assert outage.command_errors == []
    assert outage.commands_while_down >= 100, outage


def test_the_relay_reports_kafka_being_down_and_falls_behind(outage: Outage) -> None:
    assert outage.relay_error_while_down is not None
    assert "Kafka" in outage.relay_error_while_down
    assert outage.lag_when_back > outage.lag_at_first_error > 0


def test_the_lag_metric_shows_the_backlog_while_kafka_is_down(outage: Outage) -> None:
    """Alerts watch parley_follower_lag_events: during an outage it must follow the backlog
    (within a few seconds), not keep the value from before."""
    assert outage.lag_metric_when_back >= outage.lag_when_back / 2, (
        f"parley_follower_lag_events{{follower=relay}} was {outage.lag_metric_when_back} after "
        f"{outage.seconds_down:.1f}s of outage (before it: {outage.lag_metric_before}) while the "
        f"relay was {outage.lag_when_back} events behind"
    )


def test_the_relay_retries_kafka_within_its_timeout(outage: Outage) -> None:
    """PARLEY_KAFKA_TIMEOUT_SECONDS=3: a down broker fails an attempt within about 3 s, and the
    follower retries after a back-off of well under a second."""
    assert outage.seconds_down >= 8, outage.seconds_down
    assert outage.failed_attempts_while_down >= 2, (
        f"{outage.failed_attempts_while_down:.0f} failed attempt(s) in "
        f"{outage.seconds_down:.1f}s of outage with a 3 s Kafka timeout"
    )


def test_an_outage_leaves_only_the_current_kafka_producer_running(outage: Outage) -> None:
    """Every Kafka client the relay opened during the outage is closed, the producers it replaced
    and the admin clients that could not connect: only the current producer's network thread
    is left."""
    assert outage.client_threads_after == ["parley-relay-network-thread"], outage


def test_after_kafka_returns_the_deduplicated_topic_equals_the_log(outage: Outage) -> None:
    assert_topic_is_the_log(outage.records, outage.log)


def test_killing_the_relay_at_random_points_leaves_the_deduplicated_topic_equal_to_the_log(
    kafka_bootstrap: str, topic: str, database: PostgresTarget, tmp_path: Path
) -> None:
    store = open_event_store(
        database,
        create_tables=False,
        pool_size=2,
        keys=data_keys(database),
    )
    pool = open_pool(database.conninfo(), size=2, name="test")
    try:
        load_log(store, tenants=3, chats=60, messages=10_000)
        ledger = AuditLedger(store, pool, generate_signing_key(tmp_path / "signing-key.pem"))
        while batch := store.read(ledger.position(), 1000):
            ledger.handle(batch)
        head = store.head()
    finally:
        pool.close()
        store.close()
    assert position_of(database, LEDGER_NAME) == head

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")},
        "PARLEY_MASTER_KEY": MASTER_KEY,
        "PARLEY_DATABASE_URL": target_url(database),
        "PARLEY_DATA_DIR": str(tmp_path),
        "PARLEY_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PARLEY_KAFKA_TOPIC": topic,
        "PARLEY_KAFKA_CHECKPOINT_TOPIC": f"{topic}.checkpoints",
        "PARLEY_KAFKA_PARTITIONS": str(PARTITIONS),
        "PARLEY_LOG_LEVEL": "WARNING",
    }

    output = (tmp_path / "relay-workers.log").open("ab")

    def relay_worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [*PARLEY, "worker", "relay", "--metrics-port", "0"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )

    def kill_while_relaying(delay: float) -> int:
        """Start a relay worker, SIGKILL it `delay` s after its first batch; its position then."""
        before = position_of(database, RELAY_NAME)
        worker = relay_worker()
        try:
            wait_for(lambda: position_of(database, RELAY_NAME) > before, 60, "a batch relayed")
            time.sleep(delay)
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
        return position_of(database, RELAY_NAME)

    rng = random.Random(20261127)
    killed_at: list[int] = []
    try:
        while len(killed_at) < 5 and position_of(database, RELAY_NAME) < head:
            killed_at.append(kill_while_relaying(rng.uniform(0.0, 0.3)))
        assert len([p for p in killed_at if p < head]) >= 4, (
            f"the relay was not killed during catch-up often enough: {killed_at} of {head}"
        )
        worker = relay_worker()
        try:
            wait_for(lambda: position_of(database, RELAY_NAME) == head, 60, "the relay caught up")
        finally:
            worker.terminate()
            worker.wait(30)
    finally:
        output.close()
    assert_topic_is_the_log(read_topic(kafka_bootstrap, topic), stored_log(database))
