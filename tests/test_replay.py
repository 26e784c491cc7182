"""Point-in-time replay and the audit log: a chat as it was at any moment, the events behind it
with who acted and their audit-chain hash, on the CLI and through the API for auditors only."""

import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

import queries.replay
from api.runtime import Runtime
from commands.messages import (
    ArchiveChat,
    CreateTenant,
    DeleteChat,
    RecordReply,
    RenameChat,
    SendMessage,
    StartChat,
)
from domain.actor import Actor
from domain.errors import InvalidInput
from domain.user import Role
from infra.postgres import PostgresTarget
from infra.settings import Settings
from queries.replay import NoStateAt, audit_log, state_at, state_of, tenant_of_aggregate
from testbed.client import ApiClient, GraphQLFailed
from testbed.processes import PARLEY, ROOT, Server, target_url
from tests.conftest import MASTER_KEY, fresh_database, tamper

# -- the write side in this process, on a database of its own -------------------------------------


class Quiet:
    """The write side and the audit ledger, with no responder: only the test writes."""

    def __init__(self, runtime: Runtime, settings: Settings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.store = runtime.store
        self.bus = runtime.bus
        created = self.bus.handle(
            CreateTenant(
                name="Replay",
                slug=f"r-{uuid.uuid4().hex[:8]}",
                admin_email="owner@replay.example",
                admin_password="owner-password-123",
            )
        )
        self.owner = Actor(
            user_id=created.admin_user_id, tenant_id=created.tenant_id, role=Role.TENANT_ADMIN
        )


@pytest.fixture(scope="module")
def quiet(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Quiet]:
    target = fresh_database(postgres_url)
    settings = Settings(
        database_url=target_url(target),
        data_dir=tmp_path_factory.mktemp("replay"),
        follower_poll_seconds=0.2,
    )
    runtime = Runtime(settings)
    runtime.start(workers={"audit"})
    yield Quiet(runtime, settings)
    runtime.stop()
    admin = replace(target, dbname="postgres")
    with psycopg.connect(admin.conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.dbname}" WITH (FORCE)')


def chat_history(q: Quiet) -> tuple[uuid.UUID, list[tuple[dict[str, Any], datetime]]]:
    """A chat taken through start, a message and its reply, a rename and archiving; after each
    change, its state as the write side then loaded it, and the time."""
    history: list[tuple[dict[str, Any], datetime]] = []

    def record(chat_id: uuid.UUID) -> None:
        history.append((state_of(q.store.repository.get(chat_id)), datetime.now(UTC)))

    chat_id = q.bus.handle(StartChat(title="Draft"), q.owner).id
    record(chat_id)
    sent = q.bus.handle(SendMessage(chat_id=chat_id, content="hello"), q.owner)
    record(chat_id)
    q.bus.handle(
        RecordReply(
            chat_id=chat_id,
            reply_to=sent.message_id,
            content="[echo] hello",
            model="echo",
            input_tokens=1,
            output_tokens=2,
            finish_reason="stop",
            latency_ms=3,
        )
    )
    record(chat_id)
    q.bus.handle(RenameChat(chat_id=chat_id, title="Final"), q.owner)
    record(chat_id)
    q.bus.handle(ArchiveChat(chat_id=chat_id), q.owner)
    record(chat_id)
    return chat_id, history


def but_as_of(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "as_of"}


def test_state_at_each_time_and_version_equals_the_state_recorded_then(quiet: Quiet) -> None:
    chat_id, history = chat_history(quiet)
    for version, (recorded, at) in enumerate(history, start=1):
        assert recorded["version"] == version
        assert state_at(quiet.store, chat_id, version=version) == recorded
        replayed = state_at(quiet.store, chat_id, as_of=at)
        assert but_as_of(replayed) == but_as_of(recorded)
        assert replayed["as_of"] == at.isoformat()

    first, last = history[0][0], history[-1][0]
    assert (first["title"], first["status"], first["messages"]) == ("Draft", "active", [])
    assert (last["title"], last["status"]) == ("Final", "archived")
    assert [(m["role"], m["content"]) for m in last["messages"]] == [
        ("user", "hello"),
        ("assistant", "[echo] hello"),
    ]
    assert first["owner_id"] == str(quiet.owner.user_id)
    assert first["type"] == "parley.ChatSession"
    json.dumps(last)  # JSON-able as it is


def test_a_time_between_two_changes_gives_the_earlier_state(quiet: Quiet) -> None:
    chat_id, history = chat_history(quiet)
    third, fourth = history[2][0], history[3][0]
    between = (
        datetime.fromisoformat(third["modified_on"])
        + (
            datetime.fromisoformat(fourth["modified_on"])
            - datetime.fromisoformat(third["modified_on"])
        )
        / 2
    )
    assert but_as_of(state_at(quiet.store, chat_id, as_of=between)) == but_as_of(third)
    naive = between.astimezone(UTC).replace(tzinfo=None)  # taken as UTC
    assert state_at(quiet.store, chat_id, as_of=naive) == state_at(
        quiet.store, chat_id, as_of=between
    )


def test_replay_before_creation_or_of_an_unknown_id_is_a_clear_error(quiet: Quiet) -> None:
    chat_id, history = chat_history(quiet)
    created = datetime.fromisoformat(history[0][0]["created_on"])
    with pytest.raises(NoStateAt, match="did not exist yet") as early:
        state_at(quiet.store, chat_id, as_of=created - timedelta(seconds=1))
    assert early.value.code == "NOT_FOUND"
    with pytest.raises(NoStateAt, match="not found"):
        state_at(quiet.store, uuid.uuid4())
    with pytest.raises(NoStateAt, match="no version 6 .the last is 5"):
        state_at(quiet.store, chat_id, version=6)
    with pytest.raises(InvalidInput):
        state_at(quiet.store, chat_id, version=0)
    with pytest.raises(InvalidInput):
        state_at(quiet.store, chat_id, version=1, as_of=created)


def test_a_deleted_chat_can_still_be_replayed(quiet: Quiet) -> None:
    chat_id, history = chat_history(quiet)
    quiet.bus.handle(DeleteChat(chat_id=chat_id), quiet.owner)
    assert state_at(quiet.store, chat_id)["status"] == "deleted"
    assert state_at(quiet.store, chat_id, as_of=history[-1][1]) == {
        **history[-1][0],
        "as_of": history[-1][1].isoformat(),
    }


def test_replay_reports_progress_batch_by_batch(
    quiet: Quiet, monkeypatch: pytest.MonkeyPatch
) -> None:
    chat_id, _ = chat_history(quiet)
    monkeypatch.setattr(queries.replay, "REPLAY_BATCH", 2)
    calls: list[tuple[int, int]] = []
    state = state_at(quiet.store, chat_id, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    assert state["version"] == 5


def test_a_users_replayed_state_never_shows_the_password_hash(quiet: Quiet) -> None:
    state = state_at(quiet.store, quiet.owner.user_id)
    assert state["type"] == "parley.User"
    assert (state["email"], state["role"], state["active"]) == (
        "owner@replay.example",
        "tenant_admin",
        True,
    )
    assert "password_hash" not in state
    assert "argon2" not in json.dumps(state)


def parley(q: Quiet, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")},
        "PARLEY_DATABASE_URL": q.settings.database_url or "",
        "PARLEY_DATA_DIR": str(q.settings.data_dir),
        "PARLEY_LOG_LEVEL": "WARNING",
    }
    return subprocess.run(
        [*PARLEY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_parley_replay_prints_the_same_json(quiet: Quiet) -> None:
    chat_id, history = chat_history(quiet)
    at = history[3][1]
    by_time = parley(quiet, "replay", str(chat_id), "--as-of", at.isoformat())
    assert by_time.returncode == 0, by_time.stderr
    assert json.loads(by_time.stdout) == state_at(quiet.store, chat_id, as_of=at)
    by_version = parley(quiet, "replay", str(chat_id), "--version", "2")
    assert by_version.returncode == 0, by_version.stderr
    assert json.loads(by_version.stdout) == history[1][0]

    missing = parley(quiet, "replay", str(uuid.uuid4()))
    assert missing.returncode == 2
    assert "NOT_FOUND" in missing.stderr
    both = parley(quiet, "replay", str(chat_id), "--version", "1", "--as-of", at.isoformat())
    assert both.returncode != 0 and "not allowed with" in both.stderr


def chained(q: Quiet, aggregate_id: uuid.UUID, count: int) -> list[queries.replay.AuditEntry]:
    """The aggregate's audit log once the ledger (which follows the log) has chained it all."""
    deadline = time.monotonic() + 20
    while True:
        entries = audit_log(q.store, aggregate_id, first=500).entries
        if len(entries) == count and all(e.chain_hash for e in entries):
            return entries
        assert time.monotonic() < deadline, entries
        time.sleep(0.1)


def test_audit_log_names_who_acted_and_the_chain_hash_of_every_event(quiet: Quiet) -> None:
    chat_id, history = chat_history(quiet)
    entries = chained(quiet, chat_id, 5)
    owner = quiet.owner.user_id
    assert [(e.event_type, e.aggregate_version, e.actor_id) for e in entries] == [
        ("parley.ChatSession.Started", 1, owner),
        ("parley.ChatSession.MessagePosted", 2, owner),
        ("parley.ChatSession.MessagePosted", 3, None),  # the reply: the system acted
        ("parley.ChatSession.Renamed", 4, owner),
        ("parley.ChatSession.Archived", 5, owner),
    ]
    assert [e.occurred_at.isoformat() for e in entries] == [s["modified_on"] for s, _ in history]
    positions = [e.position for e in entries]
    assert positions == sorted(positions)
    with psycopg.connect(
        PostgresTarget.from_url(quiet.settings.database_url or "").conninfo()
    ) as c:
        rows = c.execute(
            "SELECT position, chain FROM audit_chain WHERE position = ANY(%s) ORDER BY position",
            (positions,),
        ).fetchall()
    assert [e.chain_hash for e in entries] == [bytes(chain).hex() for _, chain in rows]


def test_audit_log_filters_by_time_and_pages_in_log_order(quiet: Quiet) -> None:
    chat_id, _ = chat_history(quiet)
    entries = chained(quiet, chat_id, 5)
    window = audit_log(
        quiet.store, chat_id, from_=entries[1].occurred_at, to=entries[3].occurred_at
    )
    assert window.entries == entries[1:3] and not window.has_next_page

    pages, after = [], None
    while True:
        page = audit_log(quiet.store, chat_id, first=2, after_version=after)
        pages.append(page.entries)
        if not page.has_next_page:
            break
        after = page.entries[-1].aggregate_version
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [e for p in pages for e in p] == entries
    for first in (0, -1, 501):
        with pytest.raises(InvalidInput):
            audit_log(quiet.store, chat_id, first=first)


# -- the API: a real `parley serve` ---------------------------------------------------------------

REGISTER = "mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId position } }"
START_CHAT = "mutation($i: StartChatInput!) { startChat(input: $i) { chatId position } }"
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId position } }"
RENAME = "mutation($i: RenameChatInput!) { renameChat(input: $i) { position } }"
ARCHIVE = "mutation($i: ChatIdInput!) { archiveChat(input: $i) { position } }"
CHAT_AT = """query($id: ID!, $at: DateTime!) { chatAt(id: $id, asOf: $at) {
    id tenantId title status model ownerId version asOf createdAt updatedAt
    messages { id role content } } }"""
AUDIT_LOG = """query($id: ID!, $from: DateTime, $to: DateTime, $first: Int, $after: String) {
    auditLog(aggregateId: $id, from: $from, to: $to, first: $first, after: $after) {
      edges { cursor node { position eventType aggregateVersion actorId occurredAt chainHash } }
      nodes { position }
      pageInfo { hasNextPage endCursor } } }"""
PASSWORD = "a-long-password-1"


def errors(call: Any) -> list[dict[str, Any]]:
    with pytest.raises(GraphQLFailed) as failure:
        call()
    return failure.value.errors


def codes(call: Any) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in errors(call)]


def register(admin: ApiClient, api: ApiClient, tenant: dict, role: str) -> tuple[ApiClient, str]:
    email = f"{role.lower()}-{uuid.uuid4().hex[:6]}@example.com"
    user = admin.run(
        REGISTER, {"i": {"email": email, "password": PASSWORD, "displayName": role, "role": role}}
    )["registerUser"]
    return api.login(tenant["slug"], email, PASSWORD), user["userId"]


class Audited:
    """A tenant with a member's chat (started, answered, renamed, archived), the times just
    after each change, and an auditor."""

    def __init__(self, server: Server, api: ApiClient, tenant: dict) -> None:
        self.server = server
        self.admin = api.login(tenant["slug"], tenant["email"], tenant["password"])
        self.member, self.member_id = register(self.admin, api, tenant, "MEMBER")
        self.auditor, _ = register(self.admin, api, tenant, "AUDITOR")
        self.times: list[str] = []
        chat = self.member.run(START_CHAT, {"i": {"title": "Draft"}})["startChat"]
        self.chat_id = chat["chatId"]
        self.mark()
        self.member.run(SEND, {"i": {"chatId": self.chat_id, "content": "hello"}})
        self.mark()  # the reply is written by then: mark() waits for the responder
        self.member.run(RENAME, {"i": {"chatId": self.chat_id, "title": "Final"}})
        self.mark()
        self.member.run(ARCHIVE, {"i": {"chatId": self.chat_id}})
        self.mark()

    def mark(self) -> None:
        self.server.settled_head()
        self.times.append(datetime.now(UTC).isoformat())


@pytest.fixture(scope="module")
def audited(server: Server) -> Audited:
    """One audited chat for the module's API tests (they only read it)."""
    return Audited(server, ApiClient(server.url), server.create_tenant())


def snapshot_of(state: dict[str, Any]) -> dict[str, Any]:
    """What chatAt should answer for a replayed state (as `parley replay` prints it)."""
    return {
        "id": state["id"],
        "tenantId": state["tenant_id"],
        "title": state["title"],
        "status": state["status"].upper(),
        "model": state["model"],
        "ownerId": state["owner_id"],
        "version": state["version"],
        "asOf": state["as_of"],
        "createdAt": state["created_on"],
        "updatedAt": state["modified_on"],
        "messages": [
            {"id": m["id"], "role": m["role"].upper(), "content": m["content"]}
            for m in state["messages"]
        ],
    }


def test_chat_at_for_an_auditor_equals_the_replay(audited: Audited) -> None:
    snapshots = [
        audited.auditor.run(CHAT_AT, {"id": audited.chat_id, "at": at})["chatAt"]
        for at in audited.times
    ]
    for at, snapshot in zip(audited.times, snapshots, strict=True):
        replayed = audited.server.cli("replay", audited.chat_id, "--as-of", at)
        assert replayed.returncode == 0, replayed.stderr
        assert snapshot == snapshot_of(json.loads(replayed.stdout))
    assert [(s["version"], s["title"], s["status"]) for s in snapshots] == [
        (1, "Draft", "ACTIVE"),
        (3, "Draft", "ACTIVE"),
        (4, "Final", "ACTIVE"),
        (5, "Final", "ARCHIVED"),
    ]
    assert [m["role"] for m in snapshots[1]["messages"]] == ["USER", "ASSISTANT"]
    assert snapshots[0]["ownerId"] == audited.member_id


def test_chat_at_before_the_chat_started_is_not_found(audited: Audited) -> None:
    before = (datetime.fromisoformat(audited.times[0]) - timedelta(hours=1)).isoformat()
    assert codes(lambda: audited.auditor.run(CHAT_AT, {"id": audited.chat_id, "at": before})) == [
        "NOT_FOUND"
    ]


def test_audit_log_lists_each_event_with_its_actor_and_chain_hash(audited: Audited) -> None:
    log = audited.auditor.run(AUDIT_LOG, {"id": audited.chat_id})["auditLog"]
    nodes = [e["node"] for e in log["edges"]]
    assert [(n["eventType"], n["aggregateVersion"], n["actorId"]) for n in nodes] == [
        ("parley.ChatSession.Started", 1, audited.member_id),
        ("parley.ChatSession.MessagePosted", 2, audited.member_id),
        ("parley.ChatSession.MessagePosted", 3, None),  # the assistant's reply
        ("parley.ChatSession.Renamed", 4, audited.member_id),
        ("parley.ChatSession.Archived", 5, audited.member_id),
    ]
    # mark() waited for every follower, the audit ledger included: all are chained.
    assert all(re.fullmatch("[0-9a-f]{64}", n["chainHash"] or "") for n in nodes), nodes
    assert len({n["chainHash"] for n in nodes}) == 5
    positions = [n["position"] for n in nodes]
    assert positions == sorted(positions) and [n["position"] for n in log["nodes"]] == positions
    assert log["pageInfo"] == {"hasNextPage": False, "endCursor": log["edges"][-1]["cursor"]}

    window = audited.auditor.run(
        AUDIT_LOG, {"id": audited.chat_id, "from": nodes[1]["occurredAt"], "to": audited.times[1]}
    )["auditLog"]
    assert [e["node"] for e in window["edges"]] == nodes[1:3]


def test_audit_log_pages_with_cursors(audited: Audited) -> None:
    everything = audited.auditor.run(AUDIT_LOG, {"id": audited.chat_id})["auditLog"]["nodes"]
    pages, after = [], None
    while True:
        page = audited.auditor.run(AUDIT_LOG, {"id": audited.chat_id, "first": 2, "after": after})
        pages.append(page["auditLog"]["nodes"])
        info = page["auditLog"]["pageInfo"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [n for p in pages for n in p] == everything


def test_audit_queries_refuse_bad_input(audited: Audited) -> None:
    auditor, chat_id = audited.auditor, audited.chat_id
    for variables in (
        {"id": chat_id, "first": 501},
        {"id": chat_id, "first": -1},
        {"id": chat_id, "first": 0},
        {"id": chat_id, "after": "not-a-cursor"},
        {"id": chat_id, "from": audited.times[1], "to": audited.times[0]},
        {"id": "not-an-id"},
    ):
        assert codes(lambda v=variables: auditor.run(AUDIT_LOG, v)) == ["BAD_USER_INPUT"], variables
    assert codes(lambda: auditor.run(CHAT_AT, {"id": chat_id, "at": "yesterday"})) == [
        "BAD_USER_INPUT"
    ]


def test_members_and_tenant_admins_may_not_read_the_audit_trail(audited: Audited) -> None:
    at = audited.times[-1]
    for user in (audited.member, audited.admin):
        assert codes(lambda u=user: u.run(CHAT_AT, {"id": audited.chat_id, "at": at})) == [
            "FORBIDDEN"
        ]
        assert codes(lambda u=user: u.run(AUDIT_LOG, {"id": audited.chat_id})) == ["FORBIDDEN"]


def test_an_auditor_of_another_tenant_finds_nothing(
    audited: Audited, server: Server, api: ApiClient
) -> None:
    other = server.create_tenant()
    other_admin = api.login(other["slug"], other["email"], other["password"])
    outsider, _ = register(other_admin, api, other, "AUDITOR")
    at = audited.times[-1]
    answers = []
    for aggregate_id in (audited.chat_id, str(uuid.uuid4())):
        found = errors(lambda i=aggregate_id: outsider.run(CHAT_AT, {"id": i, "at": at}))
        found += errors(lambda i=aggregate_id: outsider.run(AUDIT_LOG, {"id": i}))
        assert [e["extensions"]["code"] for e in found] == ["NOT_FOUND", "NOT_FOUND"]
        answers.append([e["message"] for e in found])
    assert answers[0] == answers[1]  # an existing id of another tenant looks missing
    # Nor does the tenant's own auditor find an id that does not exist, or a chat in a user.
    assert codes(lambda: audited.auditor.run(AUDIT_LOG, {"id": str(uuid.uuid4())})) == ["NOT_FOUND"]
    user_as_chat = {"id": audited.member_id, "at": at}
    assert codes(lambda: audited.auditor.run(CHAT_AT, user_as_chat)) == ["NOT_FOUND"]
    assert audited.auditor.run(AUDIT_LOG, {"id": audited.member_id})["auditLog"]["nodes"]


def test_a_platform_admin_reads_any_tenants_audit_trail(
    audited: Audited, server: Server, api: ApiClient
) -> None:
    email = f"ops-{uuid.uuid4().hex[:6]}@example.com"
    done = server.cli("platform-admins", "create", "--email", email, "--password", PASSWORD)
    assert done.returncode == 0, done.stderr
    ops = api.login("platform", email, PASSWORD)
    at = audited.times[-1]
    assert ops.run(CHAT_AT, {"id": audited.chat_id, "at": at}) == audited.auditor.run(
        CHAT_AT, {"id": audited.chat_id, "at": at}
    )
    assert ops.run(AUDIT_LOG, {"id": audited.chat_id}) == audited.auditor.run(
        AUDIT_LOG, {"id": audited.chat_id}
    )


# -- history altered behind the append-only guard -------------------------------------------------

ALTERATIONS = {
    "bytes cut short": "state = substring(state from 1 for length(state) / 2)",
    # A fixed nonce in place of the random one: the AEAD tag no longer matches.
    "ciphertext changed": "state = convert_to(regexp_replace(convert_from(state, 'UTF8'),"
    " '(\"content\":\"enc:v1:[0-9a-f-]{36}:)[A-Za-z0-9_-]{16}', '\\1AAAAAAAAAAAAAAAA'), 'UTF8')",
}


@dataclass(frozen=True)
class Alteration:
    """A member's message whose stored event was overwritten, behind the trigger's back."""

    user_id: str
    chat_id: str
    position: int


@dataclass
class Altered:
    """A `parley serve` on a database of its own (this module alters its history), a tenant
    with an auditor, one member's chat per kind of alteration, and an auditor of another
    tenant."""

    server: Server
    auditor: ApiClient
    outsider: ApiClient
    by_kind: dict[str, Alteration]


@pytest.fixture(scope="module")
def altered(postgres_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Altered]:
    database = fresh_database(postgres_url)
    server = Server(
        tmp_path_factory.mktemp("altered"),
        {
            "PARLEY_DATABASE_URL": target_url(database),
            "PARLEY_READER_DATABASE_URL": target_url(replace(database, user="parley_reader")),
            "PARLEY_MASTER_KEY": MASTER_KEY,
            "PARLEY_ECHO_DELAY_MS": "1",
            "PARLEY_FOLLOWER_POLL_SECONDS": "0.2",
        },
    ).start()
    api = ApiClient(server.url)
    tenant = server.create_tenant()
    admin = api.login(tenant["slug"], tenant["email"], tenant["password"])
    auditor, _ = register(admin, api, tenant, "AUDITOR")
    other = server.create_tenant()
    outsider, _ = register(
        api.login(other["slug"], other["email"], other["password"]), api, other, "AUDITOR"
    )
    by_kind = {}
    for kind in ALTERATIONS:
        member, member_id = register(admin, api, tenant, "MEMBER")
        chat_id = member.run(START_CHAT, {"i": {"title": kind}})["startChat"]["chatId"]
        sent = member.run(SEND, {"i": {"chatId": chat_id, "content": "hello"}})["sendMessage"]
        by_kind[kind] = Alteration(member_id, chat_id, sent["position"])
    server.settled_head()  # chained by the audit ledger, replied to, projected
    for kind, alteration in by_kind.items():
        tamper(
            database,
            f"UPDATE parley_events SET {ALTERATIONS[kind]}"
            f" WHERE notification_id = {alteration.position}",
        )
    yield Altered(server, auditor, outsider, by_kind)
    server.stop()
    with psycopg.connect(replace(database, dbname="postgres").conninfo(), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{database.dbname}" WITH (FORCE)')


@pytest.fixture(params=list(ALTERATIONS))
def alteration(request: pytest.FixtureRequest, altered: Altered) -> Alteration:
    return altered.by_kind[request.param]


def names_the_altered_event(message: str, alteration: Alteration) -> bool:
    return (
        f"position {alteration.position}" in message
        and alteration.chat_id in message
        and "parley audit verify" in message
    )


def exits_naming_the_altered_event(
    done: subprocess.CompletedProcess[str], alteration: Alteration
) -> None:
    """A clear error and a non-zero exit status, not a traceback."""
    assert done.returncode == 2 and done.stdout == ""
    assert "error (HISTORY_TAMPERED): " in done.stderr
    assert names_the_altered_event(done.stderr, alteration), done.stderr
    assert "Traceback" not in done.stderr


def test_parley_replay_of_an_altered_event_names_it_instead_of_a_traceback(
    altered: Altered, alteration: Alteration
) -> None:
    done = altered.server.cli("replay", alteration.chat_id)
    exits_naming_the_altered_event(done, alteration)


def test_chat_at_over_an_altered_event_answers_history_tampered(
    altered: Altered, alteration: Alteration
) -> None:
    now = datetime.now(UTC).isoformat()
    [error] = errors(lambda: altered.auditor.run(CHAT_AT, {"id": alteration.chat_id, "at": now}))
    assert error["extensions"] == {
        "code": "HISTORY_TAMPERED",
        "position": alteration.position,
        "aggregateId": alteration.chat_id,
        "aggregateVersion": 2,
    }
    assert names_the_altered_event(error["message"], alteration), error


def test_an_altered_event_met_by_a_read_is_counted_and_logged_for_operators(
    altered: Altered,
) -> None:
    alteration = next(iter(altered.by_kind.values()))
    before = tampered_reads(altered.server)
    now = datetime.now(UTC).isoformat()
    errors(lambda: altered.auditor.run(CHAT_AT, {"id": alteration.chat_id, "at": now}))
    assert tampered_reads(altered.server) > before
    logged = altered.server.log.read_text(errors="replace")
    assert f"history altered: the stored event at position {alteration.position} " in logged


def tampered_reads(server: Server) -> float:
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    found = re.search(r"^parley_history_tampered_total (\S+)$", metrics, re.M)
    assert found, "parley_history_tampered_total is not exported"
    return float(found.group(1))


def test_audit_log_over_an_altered_event_answers_history_tampered(
    altered: Altered, alteration: Alteration
) -> None:
    [error] = errors(lambda: altered.auditor.run(AUDIT_LOG, {"id": alteration.chat_id}))
    assert error["extensions"]["code"] == "HISTORY_TAMPERED"
    assert error["extensions"]["position"] == alteration.position
    assert names_the_altered_event(error["message"], alteration), error


def test_an_auditor_of_another_tenant_finds_nothing_in_altered_history(
    altered: Altered, alteration: Alteration
) -> None:
    now = datetime.now(UTC).isoformat()
    outsider, chat_id = altered.outsider, alteration.chat_id
    assert codes(lambda: outsider.run(CHAT_AT, {"id": chat_id, "at": now})) == ["NOT_FOUND"]
    assert codes(lambda: outsider.run(AUDIT_LOG, {"id": chat_id})) == ["NOT_FOUND"]


def test_parley_gdpr_export_over_an_altered_event_names_it_instead_of_a_traceback(
    altered: Altered, alteration: Alteration
) -> None:
    done = altered.server.cli("gdpr", "export", "--user", alteration.user_id)
    exits_naming_the_altered_event(done, alteration)


def test_parley_audit_verify_still_names_every_altered_event(altered: Altered) -> None:
    done = altered.server.cli("audit", "verify", "--json")
    assert done.returncode == 1, done.stderr
    findings = {(f["kind"], f["position"]) for f in json.loads(done.stdout)["findings"]}
    assert findings == {("modified", a.position) for a in altered.by_kind.values()}


def test_parley_audit_export_exports_altered_events_as_stored_for_verify_to_name(
    altered: Altered, tmp_path: Path
) -> None:
    """Export decodes nothing: the bundle is the evidence, its verification names the events."""
    bundle = tmp_path / "altered.zip"
    done = altered.server.cli("audit", "export", "--out", str(bundle))
    assert done.returncode == 0, done.stderr
    verified = altered.server.cli("audit", "verify", "--bundle", str(bundle), "--json")
    assert verified.returncode == 1, verified.stderr
    findings = {(f["kind"], f["position"]) for f in json.loads(verified.stdout)["findings"]}
    assert findings == {("modified", a.position) for a in altered.by_kind.values()}


def test_the_tenant_of_an_aggregate_whose_first_event_was_altered_is_still_known(
    quiet: Quiet,
) -> None:
    """Every auditor query checks the tenant first: other tenants' auditors must find nothing,
    and its own auditors must reach the replay that names the altered event."""
    chat_id, _ = chat_history(quiet)
    started = chained(quiet, chat_id, 5)[0]
    tamper(
        PostgresTarget.from_url(quiet.settings.database_url or ""),
        f"UPDATE parley_events SET {ALTERATIONS['bytes cut short']}"
        f" WHERE notification_id = {started.position}",
    )
    assert tenant_of_aggregate(quiet.store, chat_id) == quiet.owner.tenant_id
