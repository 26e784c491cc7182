"""Erasure for real: after `eraseUser`, the erased user's plaintext is nowhere — not in a dump of
the database, not in Elasticsearch, not on the Kafka topic — while another user's data is still
there and `parley audit verify` still passes. Plus the right of access (`parley gdpr export`),
retention, and rotating the master key. Everything runs against the real services."""

import base64
import json
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition

from infra.identity.master_key import new_master_key
from infra.services.postgres import _bin_dir
from testbed.client import ApiClient
from testbed.processes import PARLEY, ROOT, Server, target_url
from tests.conftest import fresh_database

REGISTER = """mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId position } }"""
START = "mutation($i: StartChatInput!) { startChat(input: $i) { chatId position } }"
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId position } }"
ERASE = "mutation($i: EraseUserInput!) { eraseUser(input: $i) { userId position } }"
SETTINGS = """mutation($i: UpdateTenantSettingsInput!) { updateTenantSettings(input: $i) {
    position } }"""
SEARCH = """query($q: String!, $after: Int) { searchMessages(query: $q, afterPosition: $after) {
    nodes { chatId chatTitle highlights } } }"""
UPLOAD = """mutation($i: UploadDocumentInput!) { uploadDocument(input: $i) { documentId } }"""
ATTACH = "mutation($i: AttachKnowledgeInput!) { attachKnowledge(input: $i) { position } }"
CHAT = """query($id: ID!, $after: Int) { chat(id: $id, afterPosition: $after) { title
    messages(first: 50) { nodes { role content } } } }"""


@dataclass
class World:
    server: Server
    database_url: str
    topic: str
    index: str
    elasticsearch: str
    kafka: str
    admin: ApiClient
    tenant_slug: str


@dataclass
class Person:
    user_id: str
    email: str
    display_name: str
    marker: str
    """A word only this person's chat title and messages contain."""
    chat_id: str
    client: ApiClient


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_url: str,
    redis_url: str,
    kafka_bootstrap: str,
    elasticsearch_url: str,
) -> Iterator[World]:
    database = fresh_database(postgres_url)
    run = uuid.uuid4().hex[:8]
    topic, index = f"gdpr-{run}.events", f"parley-gdpr-{run}"
    server = Server(
        Path(tmp_path_factory.mktemp("gdpr")),
        {
            "PARLEY_DATABASE_URL": target_url(database),
            "PARLEY_READER_DATABASE_URL": target_url(replace(database, user="parley_reader")),
            "PARLEY_REDIS_URL": redis_url,
            "PARLEY_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "PARLEY_KAFKA_TOPIC": topic,
            "PARLEY_KAFKA_CHECKPOINT_TOPIC": f"{topic}.checkpoints",
            "PARLEY_ELASTICSEARCH_URL": elasticsearch_url,
            "PARLEY_ELASTICSEARCH_INDEX": index,
            "PARLEY_MASTER_KEY": new_master_key(),
            "PARLEY_ECHO_DELAY_MS": "1",
            "PARLEY_FOLLOWER_POLL_SECONDS": "0.2",
        },
    ).start()
    tenant = server.create_tenant()
    admin = ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])
    yield World(
        server,
        target_url(database),
        topic,
        index,
        elasticsearch_url,
        kafka_bootstrap,
        admin,
        tenant["slug"],
    )
    server.stop()


def person(world: World, name: str) -> Person:
    """A member with a document, and a chat grounded in it, whose title, text and messages (and
    the echo replies, which quote the passages) carry a marker."""
    tag = secrets.token_hex(4)
    email, display = f"{name}.{tag}@people.example", f"{name.title()} Quux{tag}"
    marker = f"zebracorn{tag}"
    password = "person-password-1"
    user_id = world.admin.run(
        REGISTER, {"i": {"email": email, "password": password, "displayName": display}}
    )["registerUser"]["userId"]
    client = ApiClient(world.server.url).login(world.tenant_slug, email, password)
    chat = client.run(START, {"i": {"title": f"Diary {marker}"}})["startChat"]["chatId"]
    text = f"# Diary of {marker}\n\nOn Mondays {marker} walks the dog along the river."
    document = client.run(
        UPLOAD,
        {
            "i": {
                "filename": f"diary-{marker}.md",
                "contentBase64": base64.b64encode(text.encode()).decode(),
            }
        },
    )["uploadDocument"]["documentId"]
    client.run(ATTACH, {"i": {"chatId": chat, "documentIds": [document]}})
    for n in range(3):
        client.run(SEND, {"i": {"chatId": chat, "content": f"note {n}: {marker} at home"}})
    return Person(user_id, email, display, marker, chat, client)


def settle(world: World, replies: int, chat: Person) -> int:
    """The head once every follower (read models, search, ledger, relay) processed it and the
    chat has all its replies."""
    deadline = time.monotonic() + 60
    while True:
        nodes = chat.client.run(CHAT, {"id": chat.chat_id})["chat"]["messages"]["nodes"]
        if sum(m["role"] == "ASSISTANT" for m in nodes) >= replies:
            return world.server.settled_head(timeout=60)
        assert time.monotonic() < deadline, "replies did not arrive"
        time.sleep(0.1)


def database_dump(world: World) -> str:
    """Everything in the database as `pg_dump` writes it: events, read models, keys, audit."""
    done = subprocess.run(
        [str(_bin_dir() / "pg_dump"), "--dbname", world.database_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def search_index_text(world: World) -> str:
    """Every document of the chat search index and of the knowledge index (documents'
    passages, beside it), as JSON."""
    es = httpx.Client(base_url=world.elasticsearch, timeout=30)
    texts = []
    for index in (world.index, f"{world.index}-knowledge-*"):
        es.post(f"/{index}/_refresh")
        docs = es.post(
            f"/{index}/_search", json={"size": 10_000, "query": {"match_all": {}}}
        ).json()
        assert docs["hits"]["hits"], f"{index} is empty: nothing would be found anyway"
        texts.append(json.dumps(docs))
    return "\n".join(texts)


def kafka_text(world: World) -> str:
    """Every record of the topic (keys, values, headers), decoded leniently."""
    consumer = KafkaConsumer(
        bootstrap_servers=world.kafka, enable_auto_commit=False, consumer_timeout_ms=3000
    )
    try:
        partitions = [
            TopicPartition(world.topic, p) for p in consumer.partitions_for_topic(world.topic)
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        parts = []
        for record in consumer:
            parts.append((record.key or b"").decode(errors="replace"))
            parts.append(record.value.decode(errors="replace"))
            parts += [k + "=" + v.decode(errors="replace") for k, v in record.headers]
    finally:
        consumer.close()
    assert parts, "the topic is empty: nothing would be found anyway"
    return "\n".join(parts)


def traces(p: Person) -> list[str]:
    return [p.email, p.display_name, p.marker]


def test_an_erased_users_plaintext_is_nowhere_and_the_audit_chain_still_verifies(
    world: World,
) -> None:
    victim, bystander = person(world, "victim"), person(world, "bystander")
    settle(world, 3, victim)
    settle(world, 3, bystander)
    # Before: the read side holds both users' data (the searches below can find it) …
    dump, index = database_dump(world), search_index_text(world)
    for trace in traces(victim) + traces(bystander):
        assert trace in dump
    assert victim.marker in index and bystander.marker in index
    # … while the log, and so the topic, holds only ciphertext of it, erased or not.
    topic = kafka_text(world)
    assert victim.user_id in topic  # ids stay readable for analytics
    for trace in traces(victim) + traces(bystander):
        assert trace not in topic

    position = world.admin.run(ERASE, {"i": {"userId": victim.user_id}})["eraseUser"]["position"]
    settle(world, 3, bystander)

    dump, index, topic = database_dump(world), search_index_text(world), kafka_text(world)
    for trace in traces(victim):
        assert trace not in dump, f"{trace!r} is still in the database"
        assert trace not in index, f"{trace!r} is still in the search index"
        assert trace not in topic, f"{trace!r} is on the Kafka topic"
    for trace in traces(bystander):  # the control: nothing else was lost
        assert trace in dump and trace not in topic
    assert bystander.marker in index
    assert "parley.User.Erased" in topic

    # Queries show the placeholder; the erased user cannot sign in any more.
    hits = world.admin.run(SEARCH, {"q": victim.marker, "after": position})["searchMessages"]
    assert hits["nodes"] == []
    login = ApiClient(world.server.url).raw(
        """mutation($i: LoginInput!) { login(input: $i) { accessToken } }""",
        {
            "i": {
                "tenant": world.tenant_slug,
                "email": victim.email,
                "password": "person-password-1",
            }
        },
    )
    assert login["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    refresh = ApiClient(world.server.url).raw(
        "mutation($i: RefreshTokenInput!) { refreshToken(input: $i) { accessToken } }",
        {"i": {"refreshToken": victim.client.login_payload["refreshToken"]}},  # type: ignore[attr-defined]
    )
    assert refresh["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    stale = victim.client.raw(CHAT, {"id": victim.chat_id})  # their unexpired access token
    assert stale["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "UNAUTHENTICATED")

    verified = world.server.cli("audit", "verify", "--json")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"] is True


def test_the_right_of_access_exports_a_users_data_and_after_erasure_only_placeholders(
    world: World,
) -> None:
    subject = person(world, "subject")
    settle(world, 3, subject)
    done = world.server.cli("gdpr", "export", "--user", subject.user_id)
    assert done.returncode == 0, done.stderr
    export = json.loads(done.stdout)
    assert export["user"]["email"] == subject.email
    [chat] = export["chats"]
    assert chat["title"] == f"Diary {subject.marker}"
    assert sum(subject.marker in m["content"] for m in chat["messages"]) == 6  # both sides
    assert "password_hash" not in done.stdout and "argon2" not in done.stdout
    [document] = export["documents"]  # with its file
    assert document["title"] == f"diary-{subject.marker}.md" and document["status"] == "ready"
    assert subject.marker in base64.b64decode(document["content_base64"]).decode()

    refused = world.server.cli("gdpr", "erase", "--user", subject.user_id)
    assert refused.returncode == 2  # no --yes: nothing happens
    erased = world.server.cli("gdpr", "erase", "--user", subject.user_id, "--yes")
    assert erased.returncode == 0, erased.stderr
    after = world.server.cli("gdpr", "export", "--user", subject.user_id)
    assert after.returncode == 0, after.stderr
    assert subject.marker not in after.stdout and subject.email not in after.stdout
    assert json.loads(after.stdout)["user"]["erased"] is True
    assert json.loads(after.stdout)["documents"][0]["content_base64"] is None


def test_a_member_cannot_erase_and_an_admin_cannot_erase_another_tenants_user(
    world: World, tmp_path: Path
) -> None:
    member = person(world, "member")
    refused = member.client.raw(ERASE, {"i": {"userId": member.user_id}})
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    other = world.server.create_tenant()
    stranger = ApiClient(world.server.url).login(other["slug"], other["email"], other["password"])
    foreign = stranger.raw(ERASE, {"i": {"userId": member.user_id}})
    assert foreign["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    settle(world, 3, member)
    nodes = member.client.run(CHAT, {"id": member.chat_id})["chat"]["messages"]["nodes"]
    assert member.marker in nodes[0]["content"]  # untouched


def auditor(world: World) -> ApiClient:
    email = f"auditor-{secrets.token_hex(3)}@people.example"
    world.admin.run(
        REGISTER,
        {
            "i": {
                "email": email,
                "password": "auditor-password-1",
                "displayName": "Auditor",
                "role": "AUDITOR",
            }
        },
    )
    return ApiClient(world.server.url).login(world.tenant_slug, email, "auditor-password-1")


def test_retention_erases_idle_chats_and_auditors_see_it(world: World) -> None:
    owner = person(world, "keeper")
    position = world.admin.run(
        SETTINGS, {"i": {"defaultModel": "echo", "allowedModels": ["echo"], "retentionDays": 30}}
    )["updateTenantSettings"]["position"]
    settle(world, 3, owner)
    assert position
    soon = (datetime.now(UTC) + timedelta(days=29)).isoformat()
    kept = world.server.cli("gdpr", "retention", "--as-of", soon)
    assert kept.returncode == 0, kept.stderr
    assert owner.chat_id not in kept.stdout
    later = (datetime.now(UTC) + timedelta(days=31)).isoformat()
    preview = world.server.cli("gdpr", "retention", "--dry-run", "--as-of", later)
    assert owner.chat_id in preview.stdout and '"erased": false' in preview.stdout
    assert owner.client.run(CHAT, {"id": owner.chat_id})["chat"]["title"].startswith("Diary")
    done = world.server.cli("gdpr", "retention", "--as-of", later)
    assert done.returncode == 0, done.stderr
    [line] = [json.loads(x) for x in done.stdout.splitlines() if owner.chat_id in x]
    assert (line["retention_days"], line["erased"]) == (30, True)

    head = world.server.settled_head()
    gone = owner.client.raw(CHAT, {"id": owner.chat_id, "after": head})
    assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    log = auditor(world).run(
        """query($id: ID!) { auditLog(aggregateId: $id, first: 100) { nodes { eventType
            actorId } } }""",
        {"id": owner.chat_id},
    )["auditLog"]["nodes"]
    assert log[-1] == {"eventType": "parley.ChatSession.Expired", "actorId": None}
    assert owner.marker not in database_dump(world)
    world.admin.run(  # leave the tenant without retention for the other tests
        SETTINGS, {"i": {"defaultModel": "echo", "allowedModels": ["echo"]}}
    )


def test_rotating_the_master_key_rewraps_data_keys_and_the_old_key_can_go(world: World) -> None:
    """Last in this module: it restarts the server under a new master key."""
    subject = person(world, "rotated")
    settle(world, 3, subject)
    env = world.server.env
    old, new = env["PARLEY_MASTER_KEY"], new_master_key()

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        keys = {"PARLEY_MASTER_KEY": new, **extra}
        return subprocess.run(
            [*PARLEY, *args], cwd=ROOT, env={**env, **keys}, capture_output=True, text=True
        )

    refused = cli("keys", "status")  # the new key alone cannot open what the old one wrapped
    assert refused.returncode != 0 and "PARLEY_MASTER_KEY" in refused.stderr
    rotated = cli("keys", "rotate-master", PARLEY_MASTER_KEY_PREVIOUS=old)
    assert rotated.returncode == 0, rotated.stderr
    report = json.loads(rotated.stdout)
    assert report["data_keys_rewrapped"] > 0 and report["stale_left"] == 0

    world.server.stop()
    env["PARLEY_MASTER_KEY"] = new  # and the old one is gone
    world.server.start()
    nodes = subject.client.run(CHAT, {"id": subject.chat_id})["chat"]["messages"]["nodes"]
    assert subject.marker in nodes[0]["content"]
    subject.client.run(SEND, {"i": {"chatId": subject.chat_id, "content": "after rotation"}})
    settle(world, 4, subject)  # written under the re-wrapped chat key
    export = cli("gdpr", "export", "--user", subject.user_id)
    assert export.returncode == 0, export.stderr
    assert subject.email in export.stdout
    [chat] = json.loads(export.stdout)["chats"]
    asked, answered = (m["content"] for m in chat["messages"][-2:])
    assert asked == "after rotation" and answered.endswith("after rotation")
