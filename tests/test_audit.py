"""Tamper evidence, proven by tampering: each test alters a *copy* of a real history (database,
Kafka topic or exported bundle) the way an attacker with write access would, and runs the real
`parley audit verify`, which must fail and name the first altered position."""

import base64
import json
import os
import subprocess
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from commands.bus import MessageBus
from commands.messages import CreateTenant, RenameChat, SendMessage, StartChat
from domain.actor import Actor
from domain.user import Role
from infra.audit.chain import generate_signing_key, leaf_hash
from infra.audit.store import LEDGER_NAME
from infra.eventstore.event_store import open_event_store
from infra.eventstore.follower_positions import read_position
from infra.messaging.kafka_relay import KafkaRelay, RelaySettings
from infra.postgres import PostgresTarget, open_pool
from projections.audit_ledger import AuditLedger
from testbed.processes import PARLEY, ROOT, target_url
from tests.conftest import MASTER_KEY, data_keys, fresh_database, tamper

CHECKPOINT_EVENTS = 5
USER_ROLE = b'"role":"user"'
"""Plain in every stored user message (its content is ciphertext): what the tamper tests alter."""


@dataclass(frozen=True)
class History:
    """A finished, sealed and relayed history in a database that nothing holds open."""

    target: PostgresTarget
    data_dir: Path
    public_key: Path
    topic: str
    checkpoint_topic: str
    tenants: dict[str, uuid.UUID]
    messages: dict[str, int]
    """Message content → its event's position."""
    kafka: str


def _drain(ledger: AuditLedger, relay: KafkaRelay | None, store: Any) -> None:
    while batch := store.read(ledger.position(), 500):
        ledger.handle(batch)
    if relay is not None:
        while batch := store.read(relay.position(), 500):
            relay.handle(batch)


@pytest.fixture(scope="module")
def history(
    postgres_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[History]:
    target = fresh_database(postgres_url)
    data_dir = tmp_path_factory.mktemp("audit")
    key = generate_signing_key(data_dir / "audit-signing-key.pem")
    topic = f"audit-test-{uuid.uuid4().hex[:8]}"
    store = open_event_store(
        target,
        create_tables=False,
        pool_size=2,
        keys=data_keys(target),
    )
    pool = open_pool(target.conninfo(), size=2, name="audit-test")
    bus = MessageBus(store)
    ledger = AuditLedger(store, pool, key, checkpoint_events=CHECKPOINT_EVENTS)
    relay = KafkaRelay(
        store,
        pool,
        RelaySettings(kafka_bootstrap, topic=topic, checkpoint_topic=f"{topic}-cp", partitions=3),
    )
    tenants, messages = {}, {}
    try:
        for slug in ("acme", "globex"):
            slug = f"{slug}-{uuid.uuid4().hex[:6]}"
            created = bus.handle(
                CreateTenant(
                    name=slug, slug=slug, admin_email="a@x.io", admin_password="password-12345"
                )
            )
            tenants[slug.split("-")[0]] = created.tenant_id
            admin = Actor(created.admin_user_id, created.tenant_id, Role.TENANT_ADMIN)
            for c in range(2):
                chat = bus.handle(StartChat(title=f"{slug} chat {c}"), admin).id
                for m in range(4):
                    content = f"hello {slug} {c} {m}"
                    messages[content] = bus.handle(
                        SendMessage(chat_id=chat, content=content), admin
                    ).position
                bus.handle(RenameChat(chat_id=chat, title=f"renamed {c}"), admin)
            _drain(ledger, relay, store)
        ledger.seal_now()
        relay.publish_checkpoints()
    finally:
        relay.stop()
        pool.close()
        store.close()
    yield History(
        target,
        data_dir,
        data_dir / "audit-signing-key.pub.pem",
        topic,
        f"{topic}-cp",
        tenants,
        messages,
        kafka_bootstrap,
    )
    _drop(target)


def _drop(target: PostgresTarget) -> None:
    with psycopg.connect(replace(target, dbname="postgres").conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.dbname}" WITH (FORCE)')


@pytest.fixture
def copy(history: History) -> Iterator[PostgresTarget]:
    """A byte-for-byte copy of the history's database, to tamper with."""
    name = f"tampered_{uuid.uuid4().hex[:8]}"
    admin = replace(history.target, dbname="postgres")
    with psycopg.connect(admin.conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{history.target.dbname}"')
    target = replace(history.target, dbname=name)
    yield target
    _drop(target)


def verify(history: History, target: PostgresTarget | None, *args: str) -> tuple[int, dict]:
    env = {
        **os.environ,
        "PARLEY_DATA_DIR": str(history.data_dir),
        "PARLEY_KAFKA_BOOTSTRAP_SERVERS": history.kafka,
        "PARLEY_KAFKA_CHECKPOINT_TOPIC": history.checkpoint_topic,
        "PARLEY_KAFKA_TOPIC": history.topic,
        # Signed times must not depend on the reader's time zone.
        "PGTZ": "Asia/Kolkata",
        "PARLEY_MASTER_KEY": MASTER_KEY,
        # An address where nothing listens: proves a bundle needs no database.
        "PARLEY_DATABASE_URL": target_url(target)
        if target
        else "postgresql://nobody@127.0.0.1:9/none",
    }
    done = subprocess.run(
        [*PARLEY, "audit", "verify", "--json", "--public-key", str(history.public_key), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def first_problem(report: dict) -> tuple[str, int]:
    first = report["first_problem"]
    return first["kind"], first["position"]


# -- the database ------------------------------------------------------------------------------


def test_untouched_history_verifies(history: History) -> None:
    code, report = verify(history, history.target)
    assert code == 0, report
    assert report["events_checked"] == report["chained_to"] > 25
    assert report["checkpoints_checked"] >= report["chained_to"] // CHECKPOINT_EVENTS
    assert report["unsealed"] == 0 and report["findings"] == []


def test_every_update_delete_and_truncate_of_the_log_is_refused(history: History) -> None:
    with psycopg.connect(history.target.conninfo(), autocommit=True) as conn:
        for statement in (
            "UPDATE parley_events SET topic = topic",
            "DELETE FROM parley_events WHERE notification_id = 1",
            "TRUNCATE parley_events",
            "UPDATE audit_chain SET leaf = leaf",
            "DELETE FROM audit_checkpoints",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)


def test_a_modified_event_is_named(history: History, copy: PostgresTarget) -> None:
    position = history.messages[next(iter(history.messages))]
    tamper(
        copy,
        "UPDATE parley_events SET state = convert_to(replace(convert_from(state, 'UTF8'),"
        ' \'"role":"user"\', \'"role":"assistant"\'), \'UTF8\')'
        f" WHERE notification_id = {position}",
    )
    code, report = verify(history, copy)
    assert code == 1
    assert first_problem(report) == ("modified", position)
    assert len(report["findings"]) == 1


def test_a_deleted_event_is_named(history: History, copy: PostgresTarget) -> None:
    position = list(history.messages.values())[3]
    tamper(copy, f"DELETE FROM parley_events WHERE notification_id = {position}")
    code, report = verify(history, copy)
    assert code == 1
    assert first_problem(report) == ("deleted", position)


def test_a_deleted_event_hidden_by_renumbering_is_named(
    history: History, copy: PostgresTarget
) -> None:
    position = list(history.messages.values())[2]
    tamper(
        copy,
        f"DELETE FROM parley_events WHERE notification_id = {position}",
        "UPDATE parley_events SET notification_id = notification_id + 1000000"
        f" WHERE notification_id > {position}",
        "UPDATE parley_events SET notification_id = notification_id - 1000001"
        " WHERE notification_id > 1000000",
    )
    code, report = verify(history, copy)
    assert code == 1
    assert first_problem(report) == ("deleted", position)


def test_an_inserted_event_is_named(history: History, copy: PostgresTarget) -> None:
    position = list(history.messages.values())[5]
    # Make room at `position` (shift everything after it up by one), then forge an event there.
    tamper(
        copy,
        "UPDATE parley_events SET notification_id = notification_id + 1000000"
        f" WHERE notification_id >= {position}",
        "UPDATE parley_events SET notification_id = notification_id - 999999"
        " WHERE notification_id > 1000000",
        "INSERT INTO parley_events (notification_id, originator_id, originator_version, topic,"
        f" state) SELECT {position}, gen_random_uuid(), 1, topic, state FROM parley_events"
        f" WHERE notification_id = {position + 1}",
    )
    code, report = verify(history, copy)
    assert code == 1
    assert first_problem(report) == ("inserted", position)


def test_an_inserted_event_in_a_gap_is_named(history: History, copy: PostgresTarget) -> None:
    position = list(history.messages.values())[5]
    tamper(
        copy,
        f"DELETE FROM parley_events WHERE notification_id = {position}",
        "INSERT INTO parley_events (notification_id, originator_id, originator_version, topic,"
        f" state) SELECT {position}, gen_random_uuid(), 1, topic, state FROM parley_events"
        f" WHERE notification_id = {position + 1}",
    )
    code, report = verify(history, copy)
    assert code == 1
    kind, where = first_problem(report)
    assert where == position and kind in ("inserted", "modified")


def test_reordered_events_are_named(history: History, copy: PostgresTarget) -> None:
    a, b = sorted(list(history.messages.values())[6:8])
    tamper(
        copy,
        f"UPDATE parley_events SET notification_id = -1 WHERE notification_id = {a}",
        f"UPDATE parley_events SET notification_id = {a} WHERE notification_id = {b}",
        f"UPDATE parley_events SET notification_id = {b} WHERE notification_id = -1",
    )
    code, report = verify(history, copy)
    assert code == 1
    assert first_problem(report) == ("reordered", a)
    assert {(f["kind"], f["position"]) for f in report["findings"]} == {
        ("reordered", a),
        ("reordered", b),
    }


def test_a_forged_checkpoint_signature_is_named(history: History, copy: PostgresTarget) -> None:
    with psycopg.connect(copy.conninfo()) as conn:
        row = conn.execute(
            "SELECT seq, to_position, signature FROM audit_checkpoints ORDER BY seq LIMIT 1"
            " OFFSET 2"
        ).fetchone()
    assert row is not None
    seq, to_position, signature = row
    forged = bytes([signature[0] ^ 1]) + bytes(signature[1:])
    tamper(copy, f"UPDATE audit_checkpoints SET signature = '\\x{forged.hex()}' WHERE seq = {seq}")
    code, report = verify(history, copy)
    assert code == 1
    kind, where = first_problem(report)
    assert (kind, where) == ("signature", to_position)
    assert f"checkpoint {seq}" in report["first_problem"]["detail"]


def test_a_rewritten_chain_resigned_with_another_key_is_refused(
    history: History, copy: PostgresTarget, tmp_path: Path
) -> None:
    """The attacker alters an event, recomputes the whole chain and re-signs every checkpoint
    with a key of their own (registered in the database, too). Only the pinned key catches it."""
    position = list(history.messages.values())[1]
    tamper(
        copy,
        "UPDATE parley_events SET state = convert_to(replace(convert_from(state, 'UTF8'),"
        ' \'"role":"user"\', \'"role":"system"\'), \'UTF8\')'
        f" WHERE notification_id = {position}",
    )
    forger = generate_signing_key(tmp_path / "forger.pem")
    _rewrite_chain(copy, forger)
    code, report = verify(history, copy)
    assert code == 1
    assert {f["kind"] for f in report["findings"]} == {"signature"}
    assert "unknown key" in report["first_problem"]["detail"]


def _rewrite_chain(target: PostgresTarget, key: Any) -> None:
    from infra.audit.chain import GENESIS, chain_hash

    with psycopg.connect(target.conninfo(), autocommit=True) as conn, conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        rows = conn.execute(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM parley_events ORDER BY notification_id"
        ).fetchall()
        chain = GENESIS
        for position, oid, version, topic, state in rows:
            leaf = leaf_hash(position, oid, version, topic, bytes(state))
            chain = chain_hash(chain, leaf)
            conn.execute(
                "UPDATE audit_chain SET leaf = %s, chain = %s WHERE position = %s",
                (leaf, chain, position),
            )
        conn.execute("DELETE FROM audit_checkpoints")
        conn.execute("DELETE FROM follower_positions WHERE name = %s", (LEDGER_NAME,))
    pool = open_pool(target.conninfo(), size=1, name="forger")
    store = open_event_store(
        target,
        create_tables=False,
        pool_size=1,
        keys=data_keys(target),
    )
    try:
        ledger = AuditLedger(store, pool, key, checkpoint_events=CHECKPOINT_EVENTS)
        with pool.connection() as conn:
            conn.execute("SET session_replication_role = replica")
            conn.execute("DELETE FROM audit_chain")
            conn.commit()
            conn.execute("SET session_replication_role = DEFAULT")
        _drain(ledger, None, store)
        ledger.seal_now()
    finally:
        store.close()
        pool.close()


def test_verify_scoped_to_a_tenant_ignores_the_other_tenants_tampering(
    history: History, copy: PostgresTarget
) -> None:
    globex = [p for content, p in history.messages.items() if "globex" in content][0]
    tamper(copy, f"DELETE FROM parley_events WHERE notification_id = {globex}")
    code, report = verify(history, copy, "--tenant", str(history.tenants["acme"]))
    assert code == 0, report
    code, report = verify(history, copy, "--tenant", str(history.tenants["globex"]))
    assert code == 1 and first_problem(report) == ("deleted", globex)


# -- Kafka -------------------------------------------------------------------------------------


def _records(history: History) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=history.kafka, enable_auto_commit=False)
    try:
        parts = [
            TopicPartition(history.topic, p) for p in consumer.partitions_for_topic(history.topic)
        ]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        records: list[Any] = []
        while sum(end.values()) > len(records):
            for batch in consumer.poll(timeout_ms=5000).values():
                records.extend(batch)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def _copy_topic(history: History, records: list[Any]) -> str:
    name = f"{history.topic}-copy-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=history.kafka)
    admin.create_topics([NewTopic(name=name, num_partitions=1, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=history.kafka, acks="all", enable_idempotence=True)
    for r in records:  # one partition: the copy keeps exactly the order given
        producer.send(name, key=r.key, value=r.value, headers=r.headers, partition=0)
    producer.flush(30)
    producer.close()
    return name


def test_kafka_topic_verifies_and_resends_are_harmless(history: History) -> None:
    records = _records(history)
    assert len(records) == history_size(history)
    code, report = verify(history, history.target, "--source", "kafka")
    assert code == 0, report
    resent = _copy_topic(history, records + records[:7])  # a relay crash resent a batch
    code, report = verify(history, history.target, "--source", "kafka", "--topic", resent)
    assert code == 0, report


def history_size(history: History) -> int:
    with psycopg.connect(history.target.conninfo()) as conn:
        return read_position(conn, LEDGER_NAME)


def _position(record: Any) -> int:
    return int(json.loads(record.value)["position"])


def test_kafka_tampering_is_named(history: History) -> None:
    records = _records(history)
    by_position = sorted(records, key=_position)
    victim = by_position[10]
    modified = [
        r._replace(value=r.value.replace(USER_ROLE, b'"role":"assistant"')) if r is victim else r
        for r in by_position
    ]
    code, report = verify(
        history, history.target, "--source", "kafka", "--topic", _copy_topic(history, modified)
    )
    assert code == 1 and first_problem(report) == ("modified", _position(victim))

    deleted = [r for r in by_position if r is not victim]
    code, report = verify(
        history, history.target, "--source", "kafka", "--topic", _copy_topic(history, deleted)
    )
    assert code == 1 and first_problem(report) == ("deleted", _position(victim))

    # Two consecutive events of one chat swapped: the aggregate's order is broken.
    i = next(
        i
        for i in range(len(by_position) - 1)
        if by_position[i].key == by_position[i + 1].key and _position(by_position[i]) > 12
    )
    swapped = list(by_position)
    swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    code, report = verify(
        history, history.target, "--source", "kafka", "--topic", _copy_topic(history, swapped)
    )
    assert code == 1 and first_problem(report) == ("reordered", _position(by_position[i]))


# -- bundles -----------------------------------------------------------------------------------


def export(history: History, out: Path, *args: str) -> dict:
    done = subprocess.run(
        [*PARLEY, "audit", "export", "--out", str(out), *args],
        cwd=ROOT,
        env={
            **os.environ,
            "PARLEY_DATA_DIR": str(history.data_dir),
            "PARLEY_MASTER_KEY": MASTER_KEY,
            "PARLEY_DATABASE_URL": target_url(history.target),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _rewrite_bundle(source: Path, out: Path, name: str, edit: Any) -> Path:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            dst.writestr(item, edit(data) if item == name else data)
    return out


def test_an_exported_tenant_bundle_verifies_offline_and_a_tampered_one_does_not(
    history: History, tmp_path: Path
) -> None:
    acme = history.tenants["acme"]
    bundle = tmp_path / "acme.zip"
    summary = export(history, bundle, "--tenant", str(acme))
    assert summary["events"] > 10
    with zipfile.ZipFile(bundle) as z:
        assert {"README.md", "manifest.json", "events.jsonl", "chain.jsonl"} <= set(z.namelist())
        events = [json.loads(line) for line in z.read("events.jsonl").decode().splitlines()]
    assert {e["tenant_id"] for e in events} == {str(acme)}  # nothing of globex's leaks
    assert all(b"globex" not in base64.b64decode(e["state_base64"]) for e in events)

    code, report = verify(history, None, "--bundle", str(bundle))
    assert code == 0, report
    assert report["events_checked"] == summary["events"]

    target = next(e for e in events if USER_ROLE in base64.b64decode(e["state_base64"]))

    def modify(data: bytes) -> bytes:
        rows = [json.loads(line) for line in data.decode().splitlines()]
        for row in rows:
            if row["position"] == target["position"]:
                state = base64.b64decode(row["state_base64"]).replace(USER_ROLE, b'"role":"x"')
                row["state_base64"] = base64.b64encode(state).decode()
        return "".join(json.dumps(r) + "\n" for r in rows).encode()

    tampered = _rewrite_bundle(bundle, tmp_path / "tampered.zip", "events.jsonl", modify)
    code, report = verify(history, None, "--bundle", str(tampered))
    assert code == 1 and first_problem(report) == ("modified", target["position"])

    def drop(data: bytes) -> bytes:
        lines = data.decode().splitlines(keepends=True)
        return "".join(x for x in lines if json.loads(x)["position"] != target["position"]).encode()

    dropped = _rewrite_bundle(bundle, tmp_path / "dropped.zip", "events.jsonl", drop)
    code, report = verify(history, None, "--bundle", str(dropped))
    assert code == 1 and first_problem(report) == ("deleted", target["position"])


def test_a_platform_bundle_with_a_forged_checkpoint_fails(history: History, tmp_path: Path) -> None:
    bundle = tmp_path / "all.zip"
    export(history, bundle, "--from", "1")

    def forge(data: bytes) -> bytes:
        rows = [json.loads(line) for line in data.decode().splitlines()]
        rows[1]["count"] += 1
        return "".join(json.dumps(r) + "\n" for r in rows).encode()

    code, report = verify(history, None, "--bundle", str(bundle))
    assert code == 0, report
    forged = _rewrite_bundle(bundle, tmp_path / "forged.zip", "checkpoints.jsonl", forge)
    code, report = verify(history, None, "--bundle", str(forged))
    assert code == 1 and first_problem(report)[0] == "signature"


def test_kcat_shows_readable_records(history: History) -> None:
    """What an analytics engineer sees with `kcat -C -t parley.events.v1`: text, not bytes."""
    done = subprocess.run(
        ["kcat", "-C", "-b", history.kafka, "-t", history.topic, "-e", "-q", "-f", "%k\t%h\t%s\n"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert len(lines) == history_size(history)
    for line in lines:
        key, headers, value = line.split("\t")
        record = json.loads(value)
        assert key == record["aggregate_id"]
        assert f"event_type={record['type']}" in headers
        assert f"position={record['position']}" in headers
        assert "chain_hash=" in headers
        assert record["payload"]["tenant_id"]["_data_"] == uuid.UUID(record["tenant_id"]).hex
    # Analytics fields are plain; personal ones are ciphertext, on the topic as in the log.
    assert any('"role":"user"' in line for line in lines)
    assert any('"content":"enc:v1:' in line for line in lines)
    assert not any("hello acme" in line for line in lines)


def test_a_truncated_tail_is_caught_against_kafka(history: History, copy: PostgresTarget) -> None:
    """Events, chain rows and checkpoints after some point all removed: consistent in itself,
    but the checkpoints already on Kafka remember it."""
    with psycopg.connect(copy.conninfo()) as conn:
        row = conn.execute(
            "SELECT from_position FROM audit_checkpoints ORDER BY seq DESC LIMIT 1 OFFSET 1"
        ).fetchone()
    assert row is not None
    cut = int(row[0])
    tamper(
        copy,
        f"DELETE FROM parley_events WHERE notification_id > {cut}",
        f"DELETE FROM audit_chain WHERE position > {cut}",
        f"DELETE FROM audit_checkpoints WHERE to_position > {cut}",
        f"UPDATE follower_positions SET position = {cut} WHERE name IN ('audit', 'relay')",
    )
    code, report = verify(history, copy)
    assert code == 0, report  # the database alone cannot tell
    code, report = verify(history, copy, "--source", "kafka")
    assert code == 1 and first_problem(report) == ("deleted", cut + 1)


def test_the_embedded_server_serves_its_key_and_its_history_verifies(server: Any) -> None:
    """The zero-setup default: `parley serve` chains and signs from the first event, publishes
    the key it generated, and `parley audit verify` with that key passes."""
    from infra.audit.chain import key_id_of, load_public_key

    server.create_tenant()
    head = server.settled_head()
    published = httpx.get(f"{server.url}/audit/public-key", timeout=10).json()
    assert published["algorithm"] == "Ed25519"
    local = (server.data_dir / "audit-signing-key.pub.pem").read_text()
    [key] = [k for k in published["keys"] if k["public_key_pem"] == local]
    assert key["key_id"] == key_id_of(load_public_key(local))

    sealed = server.cli("audit", "seal")
    assert sealed.returncode == 0, sealed.stderr
    status = json.loads(server.cli("audit", "status").stdout)
    assert status["chained_to"] >= head and status["sealed_to"] >= head
    key_file = server.data_dir / "published.pub.pem"
    key_file.write_text(key["public_key_pem"])
    verified = server.cli("audit", "verify", "--public-key", str(key_file))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OK: history verifies" in verified.stdout


def test_cutting_off_the_newest_events_and_their_chain_is_named(
    history: History, copy: PostgresTarget
) -> None:
    """The checkpoints remain (and they are what an attacker cannot forge)."""
    with psycopg.connect(copy.conninfo()) as conn:
        row = conn.execute(
            "SELECT from_position FROM audit_checkpoints ORDER BY seq DESC LIMIT 1 OFFSET 1"
        ).fetchone()
    assert row is not None
    cut = int(row[0])
    tamper(
        copy,
        f"DELETE FROM parley_events WHERE notification_id > {cut}",
        f"DELETE FROM audit_chain WHERE position > {cut}",
        f"UPDATE follower_positions SET position = {cut} WHERE name = 'audit'",
    )
    code, report = verify(history, copy)
    assert code == 1 and first_problem(report) == ("deleted", cut + 1)
    tamper(copy, "DELETE FROM parley_events", "DELETE FROM audit_chain")
    code, report = verify(history, copy)
    assert code == 1 and first_problem(report) == ("deleted", 1)


def test_a_bundle_is_worthless_without_its_signatures(history: History, tmp_path: Path) -> None:
    bundle = tmp_path / "all.zip"
    export(history, bundle, "--from", "10")
    code, report = verify(history, None, "--bundle", str(bundle))
    assert code == 0, report
    with zipfile.ZipFile(bundle) as z:
        manifest = json.loads(z.read("manifest.json"))
    assert manifest["from_position"] > 1  # starts after a checkpoint: anchored by it

    stripped = _rewrite_bundle(
        bundle, tmp_path / "stripped.zip", "checkpoints.jsonl", lambda _: b""
    )
    code, report = verify(history, None, "--bundle", str(stripped))
    assert code == 1 and first_problem(report)[0] == "checkpoint"

    def rebase(data: bytes) -> bytes:
        body = json.loads(data)
        body["previous_chain"] = "11" * 32
        return json.dumps(body).encode()

    rebased = _rewrite_bundle(bundle, tmp_path / "rebased.zip", "manifest.json", rebase)
    code, report = verify(history, None, "--bundle", str(rebased))
    assert code == 1 and first_problem(report)[0] in ("checkpoint", "chain")


def test_kafka_records_with_an_altered_envelope_or_beyond_the_chain_are_named(
    history: History,
) -> None:
    records = sorted(_records(history), key=_position)
    victim = records[4]
    envelope = json.loads(victim.value)
    forged_id = victim.value.replace(envelope["event_id"].encode(), str(uuid.uuid4()).encode())
    altered = [r._replace(value=forged_id) if r is victim else r for r in records]
    code, report = verify(
        history, history.target, "--source", "kafka", "--topic", _copy_topic(history, altered)
    )
    assert code == 1 and first_problem(report) == ("modified", _position(victim))

    last = records[-1]
    beyond = last.value.replace(
        f'"position":{_position(last)},'.encode(), f'"position":{_position(last) + 50},'.encode()
    )
    appended = [*records, last._replace(value=beyond)]
    code, report = verify(
        history, history.target, "--source", "kafka", "--topic", _copy_topic(history, appended)
    )
    assert code == 1 and first_problem(report) == ("inserted", _position(last) + 50)


def test_a_platform_admins_tenant_creation_names_them_as_the_actor(postgres_url: str) -> None:
    from commands.messages import CreatePlatformAdmin

    target = fresh_database(postgres_url)
    store = open_event_store(
        target,
        create_tables=False,
        pool_size=1,
        keys=data_keys(target),
    )
    try:
        bus = MessageBus(store)
        admin = bus.handle(CreatePlatformAdmin(email="root@x.io", password="password-12345"))
        platform = store.get_or_none(admin.id)
        assert platform is not None
        actor = Actor(admin.id, platform.tenant_id, Role.PLATFORM_ADMIN)
        created = bus.handle(
            CreateTenant(
                name="T",
                slug=f"t-{uuid.uuid4().hex[:6]}",
                admin_email="a@x.io",
                admin_password="password-12345",
            ),
            actor,
        )
        events = store.read(created.position - 2, 10)
        stamped = {n.topic: json.loads(n.state)["actor_id"] for n in events}
        assert stamped["parley.Tenant.Created"]["_data_"] == admin.id.hex
        assert stamped["parley.User.Registered"]["_data_"] == admin.id.hex
    finally:
        store.close()
        _drop(target)
