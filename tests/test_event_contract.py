"""The event contract for consumers (docs/events/): the committed schemas are the ones the domain's
event classes define; every record the relay writes for a real flow validates against the
envelope schema and its event type's schema; and the example analytics consumer counts messages
per tenant per hour from the topic, each once, resuming from its group's committed offsets."""

import json
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from eventsourcing.domain import Aggregate, event
from jsonschema import Draft202012Validator, FormatChecker
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from api.runtime import Runtime
from commands.messages import (
    ArchiveChat,
    AttachKnowledge,
    ChangeTenantSettings,
    ChangeUserRole,
    ConfigureOidc,
    CreateApiKey,
    CreatePlatformAdmin,
    CreateTenant,
    DeactivateTenant,
    DeactivateUser,
    DeleteChat,
    DeleteDocument,
    EraseUser,
    ExpireChat,
    ExpireDocument,
    RegisterUser,
    RemoveOidc,
    RemoveProviderKey,
    RenameChat,
    RenameTenant,
    ReprocessDocument,
    RevokeApiKey,
    SendMessage,
    SetProviderKey,
    StartChat,
    UploadDocument,
)
from domain.actor import Actor
from domain.tenant import tenant_id_for_slug
from domain.user import Role, User
from infra.eventstore.event_contract import contract, stale_files
from infra.eventstore.event_schemas import (
    ContractError,
    breaking_changes,
    event_schema,
    event_types,
    events_of,
)
from infra.eventstore.record_schemas import (
    ENVELOPE_FILE,
    RECORD_HEADERS,
    SCHEMA_DIR,
    checkpoint_schema,
)
from infra.identity.passwords import hash_password
from infra.postgres import PostgresTarget
from infra.settings import Settings
from testbed.processes import MODELS, ROOT, target_url
from tests.conftest import fresh_database

DOCS = ROOT / "docs" / "events"
EXAMPLE = ROOT / "docs" / "examples" / "analytics_consumer.py"
REGENERATE = (
    "regenerate with `parley events schemas`, review the diff "
    "(docs/events/README.md, Versions) and commit it"
)
PASSWORD = "correct horse battery"
MESSAGE_POSTED = "parley.ChatSession.MessagePosted"
RESENT = 2
"""MessagePosted records the flow fixture publishes a second time, as a relay crash would."""
ROW = re.compile(r"^([0-9a-f-]{36})\s+(\d{4}-\d\d-\d\dT\d\d:00Z)\s+(\d+)$", re.MULTILINE)
SETTLE_TIMEOUT = 60.0


# -- the committed contract --------------------------------------------------------------------


def test_committed_contract_is_the_one_the_domain_events_define() -> None:
    generated = contract(DOCS)
    out_of_date = [
        str(path.relative_to(ROOT))
        for path, text in generated.items()
        if not path.exists() or path.read_text(encoding="utf-8") != text
    ]
    stale = [str(path.relative_to(ROOT)) for path in stale_files(DOCS)]
    assert not out_of_date and not stale, (
        f"docs/events does not match the domain's events (out of date: {out_of_date}; "
        f"describing no event: {stale}): {REGENERATE}"
    )


def test_personal_data_fields_are_marked() -> None:
    marked = {
        (e.name, field)
        for e in event_types()
        for field, schema in event_schema(e)["properties"].items()
        if schema.get("x-personal-data")
    }
    assert marked == {
        ("parley.User.Registered", "email"),
        ("parley.User.Registered", "display_name"),
        ("parley.User.Registered", "password_hash"),
        ("parley.User.PasswordChanged", "password_hash"),
        ("parley.ChatSession.Started", "title"),
        ("parley.ChatSession.Renamed", "title"),
        ("parley.ChatSession.MessagePosted", "content"),
        ("parley.Document.Uploaded", "title"),
        ("parley.Document.Uploaded", "content_sha256"),
    }


class Probe(Aggregate):
    """Stands in for an event class before and after a change a developer might make."""

    @event("Pinged", topic="test.contract.Probe.Pinged")
    def ping(self, count: int, note_id: uuid.UUID | None) -> None:
        pass


class ProbeWithOptionalField(Aggregate):
    @event("Pinged", topic="test.contract.ProbeWithOptionalField.Pinged")
    def ping(self, count: int, note_id: uuid.UUID | None, retries: int = 0) -> None:
        pass


class ProbeWithRequiredField(Aggregate):
    @event("Pinged", topic="test.contract.ProbeWithRequiredField.Pinged")
    def ping(self, count: int, note_id: uuid.UUID | None, retries: int) -> None:
        pass


class ProbeWithChangedType(Aggregate):
    @event("Pinged", topic="test.contract.ProbeWithChangedType.Pinged")
    def ping(self, count: int | None, note_id: uuid.UUID | None) -> None:
        pass


class ProbeWithRemovedField(Aggregate):
    @event("Pinged", topic="test.contract.ProbeWithRemovedField.Pinged")
    def ping(self, count: int) -> None:
        pass


def probe_schema(aggregate: type[Aggregate]) -> dict[str, Any]:
    (event_type,) = events_of(aggregate)
    return event_schema(event_type)


def test_a_new_field_with_a_default_stays_within_the_version() -> None:
    old, new = probe_schema(Probe), probe_schema(ProbeWithOptionalField)
    assert "retries" in new["properties"] and "retries" not in new["required"]
    assert breaking_changes(old, new) == []


@pytest.mark.parametrize(
    ("changed", "problem"),
    [
        (ProbeWithRequiredField, "field retries is new and required"),
        (ProbeWithChangedType, "field count changed its type"),
        (ProbeWithRemovedField, "field note_id was removed"),
    ],
)
def test_any_other_change_needs_a_new_version(changed: type[Aggregate], problem: str) -> None:
    assert breaking_changes(probe_schema(Probe), probe_schema(changed)) == [problem]


def test_regenerating_refuses_an_incompatible_change_to_a_published_version(
    tmp_path: Path,
) -> None:
    published = json.loads((DOCS / SCHEMA_DIR / f"{MESSAGE_POSTED}.v1.json").read_text())
    published["properties"]["sentiment"] = {"type": "string"}
    published["required"].append("sentiment")
    (tmp_path / SCHEMA_DIR).mkdir()
    (tmp_path / SCHEMA_DIR / f"{MESSAGE_POSTED}.v1.json").write_text(json.dumps(published))
    with pytest.raises(ContractError, match="raise class_version of ChatSession.MessagePosted"):
        contract(tmp_path)


def test_a_schema_file_that_describes_no_event_is_reported(tmp_path: Path) -> None:
    (tmp_path / SCHEMA_DIR).mkdir()
    (tmp_path / SCHEMA_DIR / "parley.User.Event.v1.json").write_text("{}")
    assert stale_files(tmp_path) == [tmp_path / SCHEMA_DIR / "parley.User.Event.v1.json"]


def test_every_asyncapi_message_references_committed_schema_files() -> None:
    document = yaml.safe_load((DOCS / "asyncapi.yaml").read_text())
    assert document["asyncapi"] == "3.0.0"
    referenced = set()
    for name, message in document["components"]["messages"].items():
        if name == "auditCheckpoint":
            continue
        for part in message["payload"]["schema"]["allOf"]:
            ref = part.get("$ref") or part["properties"]["payload"]["$ref"]
            assert (DOCS / ref).is_file(), f"{name} references missing {ref}"
            referenced.add(ref)
    committed = {f"{SCHEMA_DIR}/{p.name}" for p in (DOCS / SCHEMA_DIR).glob("*.json")}
    assert referenced == committed


# -- real records ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict[str, bytes]


@dataclass(frozen=True)
class Flow:
    """A finished flow through the relay: its topics, what they hold and what was counted."""

    bootstrap: str
    topic: str
    records: list[Record]
    checkpoints: list[Record]
    messages: Counter[tuple[str, str]]
    """MessagePosted events per (tenant id, UTC hour), from the event store."""


def hour_of(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:00Z")


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Record]:
    """Every record on the topic, up to its end offsets when called."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        while not (numbers := consumer.partitions_for_topic(topic)):
            assert time.monotonic() < deadline, f"topic {topic} does not exist"
            consumer.poll(timeout_ms=100)
        partitions = [TopicPartition(topic, p) for p in sorted(numbers)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[Record] = []
        while any(consumer.position(p) < ends[p] for p in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in consumer.poll(timeout_ms=500).values():
                records += [
                    Record(r.partition, r.offset, r.key, r.value, dict(r.headers)) for r in batch
                ]
        return records
    finally:
        consumer.close()


def settle(runtime: Runtime) -> None:
    """Wait until every follower, the relay included, has processed the whole log."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        head = runtime.store.head()
        status = runtime.follower_status()
        if (
            all(f["position"] == head for f in status.values())
            and status["responder"]["replies_in_flight"] == 0
            and runtime.store.head() == head
        ):
            return
        assert time.monotonic() < deadline, f"followers did not settle at {head}: {status}"
        time.sleep(0.05)


def run_flow(runtime: Runtime) -> None:
    """Every kind of event at least once: two tenants, users, chats, messages and replies."""
    h = runtime.bus
    platform = h.handle(CreatePlatformAdmin(email="root@platform.example", password=PASSWORD))
    root = Actor(platform.id, tenant_id_for_slug("platform"), Role.PLATFORM_ADMIN)
    admins = []
    for name in ("acme", "globex"):
        slug = f"{name}-{uuid.uuid4().hex[:8]}"
        created = h.handle(
            CreateTenant(
                name=name.title(),
                slug=slug,
                admin_email=f"admin@{slug}.example",
                admin_password=PASSWORD,
            )
        )
        admins.append(Actor(created.admin_user_id, created.tenant_id, Role.TENANT_ADMIN))
    acme, globex = admins
    h.handle(RenameTenant(name="Acme Corporation"), acme)
    h.handle(
        ChangeTenantSettings(default_model="echo", allowed_models=["echo"], retention_days=30),
        acme,
    )
    h.handle(SetProviderKey(provider="openai", api_key="sk-contract-test-key"), acme)
    h.handle(RemoveProviderKey(provider="openai"), acme)
    h.handle(
        ConfigureOidc(
            issuer="https://login.acme.example/realms/acme",
            client_id="parley",
            client_secret="contract-test-secret",
            allowed_domains=["acme.example"],
            auto_provision_role=Role.MEMBER,
            redirect_uris=["https://chat.acme.example/signed-in"],
        ),
        acme,
    )
    h.handle(RemoveOidc(), acme)
    issued = h.handle(CreateApiKey(name="warehouse", role=Role.AUDITOR), acme)
    h.handle(RevokeApiKey(key_id=issued.key.key_id), acme)
    member_id = h.handle(
        RegisterUser(email="ann@acme.example", password=PASSWORD, display_name="Ann"), acme
    ).id
    member = Actor(member_id, acme.tenant_id, Role.MEMBER)
    leaver = h.handle(
        RegisterUser(email="bob@acme.example", password=PASSWORD, display_name="Bob"), acme
    ).id
    h.handle(ChangeUserRole(user_id=leaver, role=Role.AUDITOR), acme)
    h.handle(DeactivateUser(user_id=leaver), acme)
    h.handle(EraseUser(user_id=leaver), acme)
    # What `authenticate` does when the hashing parameters change (no command triggers it).
    ann = runtime.store.get_or_none(member_id)
    assert isinstance(ann, User)
    ann.change_password_hash(hash_password(PASSWORD))
    runtime.store.save_all(ann, actor=member_id)

    kept = h.handle(StartChat(title="Quarterly numbers"), member).id
    handbook = h.handle(
        UploadDocument(
            filename="handbook.md",
            data=b"# Handbook\n\nThe office opens at nine. Numbers are due each quarter.",
        ),
        member,
    ).id
    blank = h.handle(UploadDocument(filename="blank.txt", data=b"  \n  "), member).id
    dated = h.handle(UploadDocument(filename="old.txt", data=b"Old rules."), member).id
    settle(runtime)  # processed (the blank one failed) before the chat is grounded in it
    h.handle(AttachKnowledge(chat_id=kept, document_ids=[handbook]), member)
    for text in ("hello", "how are you?", "bye"):
        h.handle(SendMessage(chat_id=kept, content=text), member)
    h.handle(RenameChat(chat_id=kept, title="Q3 numbers"), member)
    h.handle(ArchiveChat(chat_id=kept), member)
    dropped = h.handle(StartChat(title="Scratch"), member).id
    h.handle(SendMessage(chat_id=dropped, content="never mind"), member)
    other = h.handle(StartChat(title="Globex plans"), globex).id
    for text in ("one", "two"):
        h.handle(SendMessage(chat_id=other, content=text), globex)
    idle = h.handle(StartChat(title="Old notes"), member).id
    settle(runtime)  # every reply written before the chat and the tenant go
    h.handle(DeleteChat(chat_id=dropped), member)
    h.handle(ReprocessDocument(document_id=handbook), member)
    h.handle(DeleteDocument(document_id=blank), member)
    h.handle(  # what retention does
        ExpireDocument(
            document_id=dated, retention_days=30, last_activity=datetime(2026, 1, 2, tzinfo=UTC)
        )
    )
    h.handle(  # what retention does
        ExpireChat(chat_id=idle, retention_days=30, last_activity=datetime(2026, 1, 2, tzinfo=UTC))
    )
    h.handle(DeactivateTenant(tenant_id=globex.tenant_id), root)
    settle(runtime)


def resend(bootstrap: str, topic: str, records: list[Record]) -> None:
    """Publish records again, unchanged and to their partitions, as the relay does after a crash
    between the broker's acknowledgement and storing its position."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for r in records:
            producer.send(
                topic,
                key=r.key,
                value=r.value,
                headers=list(r.headers.items()),
                partition=r.partition,
            )
        producer.flush(timeout=30)
    finally:
        producer.close()


@pytest.fixture(scope="module")
def flow(
    postgres_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Flow]:
    target = fresh_database(postgres_url)
    topic = f"contract-test-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        database_url=target_url(target),
        data_dir=tmp_path_factory.mktemp("contract"),
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic=topic,
        kafka_checkpoint_topic=f"{topic}-cp",
        kafka_partitions=3,
        audit_checkpoint_events=5,
        follower_poll_seconds=0.2,
        echo_delay_ms=1,
        embedding_model_dir=MODELS,
    )
    runtime = Runtime(settings)
    runtime.start(workers=True)
    try:
        run_flow(runtime)
        messages: Counter[tuple[str, str]] = Counter()
        for notification in runtime.store.read(0, 10_000):
            if notification.topic == MESSAGE_POSTED:
                e = runtime.store.decode(notification)
                messages[(str(e.tenant_id), hour_of(e.timestamp))] += 1
    finally:
        runtime.stop()
    relayed = read_topic(kafka_bootstrap, topic)
    resend(kafka_bootstrap, topic, [r for r in relayed if _type(r) == MESSAGE_POSTED][:RESENT])
    yield Flow(
        kafka_bootstrap,
        topic,
        read_topic(kafka_bootstrap, topic),
        read_topic(kafka_bootstrap, f"{topic}-cp"),
        messages,
    )
    _drop(target)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.delete_topics([topic, f"{topic}-cp"])
    finally:
        admin.close()


def _type(record: Record) -> str:
    return str(json.loads(record.value)["type"])


def _drop(target: PostgresTarget) -> None:
    with psycopg.connect(replace(target, dbname="postgres").conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.dbname}" WITH (FORCE)')


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def committed_schema(name: str) -> dict[str, Any]:
    path = DOCS / SCHEMA_DIR / name
    assert path.is_file(), f"no schema {path.relative_to(ROOT)}: {REGENERATE}"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def problems_of(record: Record) -> list[str]:
    """Everything in one record that the published contract does not describe."""
    envelope_schema = committed_schema(ENVELOPE_FILE)
    value = json.loads(record.value.decode("utf-8"))
    problems = [e.message for e in validator(envelope_schema).iter_errors(value)]
    if problems:
        return problems
    payload = value["payload"]
    schema = committed_schema(f"{value['type']}.v{value['schema_version']}.json")
    problems += [f"payload: {e.message}" for e in validator(schema).iter_errors(payload)]
    # The schemas let consumers ignore fields added later; today's records have no such field.
    problems += [f"undocumented field {f}" for f in set(value) - set(envelope_schema["properties"])]
    problems += [
        f"undocumented payload field {f}" for f in set(payload) - set(schema["properties"])
    ]
    if "actor_id" not in payload:
        problems.append("no actor_id (every event recorded today names its actor)")
    if payload.get("class_version", 1) != value["schema_version"]:
        problems.append("schema_version is not the payload's class_version")
    if payload["timestamp"]["_data_"] != value["occurred_at"]:
        problems.append("occurred_at is not the payload's timestamp")
    if record.key.decode() != value["aggregate_id"]:
        problems.append("the key is not the aggregate id")
    headers = {name: raw.decode("utf-8") for name, raw in record.headers.items()}
    if set(headers) != set(RECORD_HEADERS):
        problems.append(f"headers {sorted(headers)} are not the documented {list(RECORD_HEADERS)}")
    for name in ("event_id", "schema_version", "aggregate_id", "aggregate_version", "position"):
        if headers.get(name) != str(value[name]):
            problems.append(f"header {name} differs from the envelope")
    if headers.get("event_type") != value["type"] or headers.get("tenant_id") != str(
        value["tenant_id"] or ""
    ):
        problems.append("header event_type or tenant_id differs from the envelope")
    if not re.fullmatch(r"[0-9a-f]{64}", headers.get("chain_hash", "")):
        problems.append("chain_hash is not a hex SHA-256")
    return problems


def test_every_relayed_record_matches_the_envelope_and_its_event_schema(flow: Flow) -> None:
    failures = {
        f"{r.partition}:{r.offset} {_type(r)}": problems
        for r in flow.records
        if (problems := problems_of(r))
    }
    assert not failures, json.dumps(failures, indent=2)


def test_the_flow_produced_every_event_type_of_the_contract(flow: Flow) -> None:
    # So the test above has validated every schema against a real record.
    assert {_type(r) for r in flow.records} == {e.name for e in event_types()}


def test_every_checkpoint_record_matches_its_schema(flow: Flow) -> None:
    assert flow.checkpoints, "no audit checkpoint reached Kafka"
    check = validator(checkpoint_schema())
    for record in flow.checkpoints:
        value = json.loads(record.value)
        assert not [e.message for e in check.iter_errors(value)]
        assert record.key.decode() == str(value["seq"])
        assert record.headers == {
            "seq": str(value["seq"]).encode(),
            "key_id": value["key_id"].encode(),
        }


# -- the example consumer ----------------------------------------------------------------------


@dataclass(frozen=True)
class ConsumerRun:
    counts: Counter[tuple[str, str]]
    stdout: str
    stderr: str


def run_example(flow: Flow, group: str, cwd: Path) -> ConsumerRun:
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--bootstrap",
            flow.bootstrap,
            "--topic",
            flow.topic,
            "--group",
            group,
            "--from-beginning",
            "--max-idle",
            "3",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    counts: Counter[tuple[str, str]] = Counter()
    for tenant, hour, count in ROW.findall(done.stdout):
        counts[(tenant, hour)] += int(count)
    return ConsumerRun(counts, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def first_run(flow: Flow, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ConsumerRun]:
    group = f"contract-test-{uuid.uuid4().hex[:8]}"
    return group, run_example(flow, group, tmp_path_factory.mktemp("consumer"))


def test_example_consumer_counts_each_message_once_per_tenant_and_hour(
    flow: Flow, first_run: tuple[str, ConsumerRun]
) -> None:
    _, run = first_run
    assert run.counts == flow.messages, run.stdout
    assert sum(flow.messages.values()) == 2 * 6  # six user messages, six replies
    assert f"{RESENT} duplicates dropped" in run.stderr


def test_example_consumer_goes_on_from_its_groups_committed_offsets(
    flow: Flow, first_run: tuple[str, ConsumerRun], tmp_path: Path
) -> None:
    group, _ = first_run
    again = run_example(flow, group, tmp_path)
    assert again.counts == Counter()
    assert again.stdout.strip() == "no new messages"
