"""Service accounts: tenant admins issue role-scoped API keys (the secret shown once, only its
SHA-256 stored), callers authenticate with them, and a revoked key is refused at once by every
API process. Two real `parley serve` processes share one database."""

import asyncio
import base64
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import replace

import httpx
import psycopg
import pytest
import websockets

from infra.postgres import PostgresTarget
from testbed.client import ApiClient, GraphQLFailed
from testbed.processes import Server, target_url
from tests.conftest import own_database

CREATE = """mutation($i: CreateApiKeyInput!) { createApiKey(input: $i) {
    secret position key { keyId name role prefix last4 serviceAccountId createdAt revoked } } }"""
REVOKE = "mutation($k: ID!) { revokeApiKey(input: {keyId: $k}) { keyId position } }"
LIST = "{ apiKeys { keyId name role prefix last4 createdAt revokedAt revoked } }"
START_CHAT = "mutation($t: String!) { startChat(input: {title: $t}) { chatId position } }"
CHATS = "query($p: Int) { chats(first: 50, afterPosition: $p) { nodes { id title ownerId } } }"
CHAT = "query($id: ID!) { chat(id: $id) { id title } }"


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[PostgresTarget]:
    with own_database(postgres_url) as target:
        yield target


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, database: PostgresTarget
) -> Iterator[tuple[Server, Server]]:
    """Two API processes on one database: the first runs the followers."""
    env = {
        "PARLEY_DATABASE_URL": target_url(database),
        "PARLEY_READER_DATABASE_URL": target_url(replace(database, user="parley_reader")),
        "PARLEY_JWT_SECRET": secrets.token_urlsafe(48),
        "PARLEY_MASTER_KEY": base64.b64encode(os.urandom(32)).decode(),
        "PARLEY_API_KEY_RECHECK_SECONDS": "0.5",
    }
    first = Server(tmp_path_factory.mktemp("keys-a"), env).start()
    second = Server(
        tmp_path_factory.mktemp("keys-b"), {**env, "PARLEY_RUN_WORKERS": "false"}
    ).start()
    yield first, second
    second.stop()
    first.stop()


@pytest.fixture(scope="module")
def server(servers: tuple[Server, Server]) -> Server:
    return servers[0]


@pytest.fixture(scope="module")
def admin(server: Server) -> ApiClient:
    """One tenant's admin for the module (creating a tenant takes seconds)."""
    tenant = server.create_tenant()
    client = ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])
    client.tenant = tenant  # type: ignore[attr-defined]
    return client


def issue(admin: ApiClient, role: str = "MEMBER", name: str = "analytics export") -> dict:
    return admin.run(CREATE, {"i": {"name": name, "role": role}})["createApiKey"]


def codes_of(call) -> list[str | None]:  # type: ignore[no-untyped-def]
    with pytest.raises(GraphQLFailed) as failure:
        call()
    return failure.value.codes


def test_a_created_key_is_shown_once_and_listed_only_by_prefix_and_last_four(
    admin: ApiClient,
) -> None:
    created = issue(admin)
    secret, key = created["secret"], created["key"]
    assert secret.startswith(f"pk_{key['keyId']}_") and len(secret.split("_", 2)[2]) == 43
    assert key["prefix"] == f"pk_{key['keyId']}" and key["last4"] == secret[-4:]
    assert key["role"] == "MEMBER" and key["revoked"] is False
    listed = admin.run(LIST)["apiKeys"]
    assert key["keyId"] in [k["keyId"] for k in listed]
    assert secret not in json.dumps(listed) and secret.split("_", 2)[2][:-4] not in json.dumps(
        listed
    )


def test_only_the_secrets_sha256_is_stored_in_the_log(
    admin: ApiClient, database: PostgresTarget
) -> None:
    import hashlib

    secret = issue(admin)["secret"]
    raw = secret.split("_", 2)[2]
    with psycopg.connect(database.conninfo()) as conn:
        rows = conn.execute(
            "SELECT state FROM parley_events WHERE topic = 'parley.Tenant.ApiKeyCreated'"
        ).fetchall()
    stored = b"".join(bytes(r[0]) for r in rows)
    assert raw.encode() not in stored
    assert hashlib.sha256(raw.encode()).hexdigest().encode() in stored


def test_a_key_authenticates_as_bearer_or_x_api_key_and_acts_as_its_service_account(
    admin: ApiClient, server: Server
) -> None:
    created = issue(admin)
    by_bearer = ApiClient(server.url, created["secret"])
    chat = by_bearer.run(START_CHAT, {"t": "from the integration"})["startChat"]
    by_header = ApiClient(server.url)
    chats = by_header.run(CHATS, {"p": chat["position"]}, **{"X-API-Key": created["secret"]})
    assert [c["id"] for c in chats["chats"]["nodes"]] == [chat["chatId"]]
    assert chats["chats"]["nodes"][0]["ownerId"] == created["key"]["serviceAccountId"]


def test_an_auditor_key_reads_every_chat_of_its_tenant_but_writes_nothing(
    admin: ApiClient, server: Server
) -> None:
    mine = admin.run(START_CHAT, {"t": "admin's chat"})["startChat"]
    auditor = ApiClient(server.url, issue(admin, "AUDITOR")["secret"])
    seen = auditor.run(CHATS, {"p": mine["position"]})["chats"]["nodes"]
    assert mine["chatId"] in [c["id"] for c in seen]
    assert codes_of(lambda: auditor.run(START_CHAT, {"t": "no"})) == ["FORBIDDEN"]


def test_keys_are_role_scoped_and_never_platform_admin(admin: ApiClient, server: Server) -> None:
    member = ApiClient(server.url, issue(admin, "MEMBER")["secret"])
    assert codes_of(lambda: member.run(LIST)) == ["FORBIDDEN"]
    assert codes_of(lambda: issue(admin, "PLATFORM_ADMIN")) == ["BAD_USER_INPUT"]


def test_a_tenant_admin_key_administers_but_cannot_mint_or_revoke_keys(
    admin: ApiClient, server: Server
) -> None:
    other = issue(admin)
    key_admin = ApiClient(server.url, issue(admin, "TENANT_ADMIN")["secret"])
    assert other["key"]["keyId"] in [k["keyId"] for k in key_admin.run(LIST)["apiKeys"]]
    assert codes_of(lambda: issue(key_admin)) == ["FORBIDDEN"]
    assert codes_of(lambda: key_admin.run(REVOKE, {"k": other["key"]["keyId"]})) == ["FORBIDDEN"]


def test_a_wrong_secret_and_an_unknown_key_get_the_same_answer(
    admin: ApiClient, server: Server
) -> None:
    secret = issue(admin)["secret"]
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    unknown = secret[: len("pk_") + 32] + "0" * 12 + secret[len("pk_") + 44 :]
    answers = []
    for key in (tampered, unknown, "pk_nonsense"):
        body = ApiClient(server.url, key).raw(CHATS)
        answers.append((body["errors"][0]["extensions"]["code"], body["errors"][0]["message"]))
    assert answers == [("UNAUTHENTICATED", "invalid API key")] * 3


def test_a_revoked_key_is_refused_at_once_by_every_api_process(
    admin: ApiClient, servers: tuple[Server, Server]
) -> None:
    first, second = servers
    created = issue(admin)
    on_second = ApiClient(second.url, created["secret"])
    on_second.run(CHATS)  # cached by the second process
    ApiClient(first.url, created["secret"]).run(CHATS)
    admin.run(REVOKE, {"k": created["key"]["keyId"]})
    for url in (first.url, second.url):
        assert codes_of(lambda url=url: ApiClient(url, created["secret"]).run(CHATS)) == [
            "UNAUTHENTICATED"
        ]
    listed = {k["keyId"]: k for k in admin.run(LIST)["apiKeys"]}
    assert listed[created["key"]["keyId"]]["revoked"] is True


def test_creation_and_revocation_are_in_the_audit_trail_by_the_admin(
    admin: ApiClient, server: Server
) -> None:
    created = issue(admin)
    revoked = admin.run(REVOKE, {"k": created["key"]["keyId"]})["revokeApiKey"]
    tenant_id = admin.login_payload["user"]["tenantId"]  # type: ignore[attr-defined]
    auditor = ApiClient(server.url, issue(admin, "AUDITOR")["secret"])
    entries = auditor.run(
        """query($a: ID!) { auditLog(aggregateId: $a, first: 500) {
             nodes { eventType actorId position } } }""",
        {"a": tenant_id},
    )["auditLog"]["nodes"]
    assert max(e["position"] for e in entries) > revoked["position"]
    admin_id = admin.login_payload["user"]["id"]  # type: ignore[attr-defined]
    types = {(e["eventType"], e["actorId"]) for e in entries}
    assert ("parley.Tenant.ApiKeyCreated", admin_id) in types
    assert ("parley.Tenant.ApiKeyRevoked", admin_id) in types


def test_a_key_of_one_tenant_never_reads_another_tenant(admin: ApiClient, server: Server) -> None:
    theirs = ApiClient(server.url)
    other = server.create_tenant()
    theirs = theirs.login(other["slug"], other["email"], other["password"])
    their_chat = theirs.run(START_CHAT, {"t": "tenant B's secret"})["startChat"]
    auditor_a = issue(admin, "AUDITOR")["secret"]
    key_a = ApiClient(server.url, auditor_a)
    seen = key_a.run(CHATS, {"p": their_chat["position"]})["chats"]["nodes"]
    assert their_chat["chatId"] not in [c["id"] for c in seen]
    assert codes_of(lambda: key_a.run(CHAT, {"id": their_chat["chatId"]})) == ["NOT_FOUND"]
    # Tenant A's secret under a key id naming tenant B is no key at all.
    b_tenant_hex = theirs.login_payload["user"]["tenantId"].replace("-", "")  # type: ignore[attr-defined]
    forged = f"pk_{b_tenant_hex}{auditor_a[3 + 32 : 3 + 44]}_{auditor_a.split('_', 2)[2]}"
    assert codes_of(lambda: ApiClient(server.url, forged).run(CHATS)) == ["UNAUTHENTICATED"]


async def test_a_websocket_authenticated_by_a_revoked_key_is_closed(
    admin: ApiClient, server: Server
) -> None:
    created = issue(admin)
    chat = ApiClient(server.url, created["secret"]).run(START_CHAT, {"t": "live"})["startChat"]
    async with websockets.connect(
        ApiClient(server.url).ws_url(), subprotocols=["graphql-transport-ws"]
    ) as ws:
        init = {"type": "connection_init", "payload": {"X-API-Key": created["secret"]}}
        await ws.send(json.dumps(init))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {
                        "query": "subscription($c: ID!, $p: Int) { chatEvents(chatId: $c, "
                        "afterPosition: $p) { __typename } }",
                        "variables": {"c": chat["chatId"], "p": chat["position"]},
                    },
                }
            )
        )
        await asyncio.sleep(0.2)
        await asyncio.to_thread(admin.run, REVOKE, {"k": created["key"]["keyId"]})
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


def test_revoking_an_unknown_key_is_not_found(admin: ApiClient) -> None:
    assert codes_of(lambda: admin.run(REVOKE, {"k": "0" * 44})) == ["NOT_FOUND"]


def test_an_api_key_request_over_plain_http_gets_no_cookie_or_secret_back(
    admin: ApiClient, server: Server
) -> None:
    secret = issue(admin)["secret"]
    r = httpx.post(
        f"{server.url}/graphql",
        json={"query": "{ chats { nodes { id } } }"},
        headers={"X-API-Key": secret},
    )
    assert "set-cookie" not in r.headers and secret not in r.text
