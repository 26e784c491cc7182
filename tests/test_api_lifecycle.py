"""Authority changes take effect at once; tokens expire on open sockets; restarts lose nothing."""

import asyncio
import json
import time
import uuid

import pytest
import websockets

from testbed.client import ApiClient, GraphQLFailed
from testbed.processes import Server

REGISTER = "mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId position } }"
CHANGE_ROLE = "mutation($i: ChangeUserRoleInput!) { changeUserRole(input: $i) { position } }"
START_CHAT = "mutation($i: StartChatInput!) { startChat(input: $i) { chatId position } }"
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId position } }"
CHAT = "query($id: ID!, $p: Int) { chat(id: $id, afterPosition: $p) { id title } }"


def codes(call) -> list[str]:
    with pytest.raises(GraphQLFailed) as failure:
        call()
    return failure.value.codes


def register(admin: ApiClient, role: str) -> tuple[dict, str]:
    email = f"{role.lower()}-{uuid.uuid4().hex[:6]}@example.com"
    user = admin.run(
        REGISTER,
        {"i": {"email": email, "password": "a-long-password-1", "displayName": role, "role": role}},
    )["registerUser"]
    return user, email


def test_a_demoted_admin_loses_admin_powers_before_their_token_expires(
    api: ApiClient, tenant: dict
) -> None:
    admin = api.login(tenant["slug"], tenant["email"], tenant["password"])
    deputy_user, deputy_email = register(admin, "TENANT_ADMIN")
    deputy = api.login(tenant["slug"], deputy_email, "a-long-password-1")
    register(deputy, "MEMBER")  # allowed while an admin

    demoted = admin.run(CHANGE_ROLE, {"i": {"userId": deputy_user["userId"], "role": "MEMBER"}})
    assert codes(lambda: register(deputy, "TENANT_ADMIN")) == ["FORBIDDEN"]
    me = deputy.run(
        "query($p: Int) { me(afterPosition: $p) { role } }",
        {"p": demoted["changeUserRole"]["position"]},
    )
    assert me["me"]["role"] == "MEMBER"


def test_a_demoted_auditor_no_longer_reads_other_peoples_chats(
    api: ApiClient, tenant: dict
) -> None:
    admin = api.login(tenant["slug"], tenant["email"], tenant["password"])
    chat = admin.run(START_CHAT, {"i": {"title": "Board minutes"}})["startChat"]
    auditor_user, auditor_email = register(admin, "AUDITOR")
    auditor = api.login(tenant["slug"], auditor_email, "a-long-password-1")
    assert auditor.run(CHAT, {"id": chat["chatId"], "p": chat["position"]})["chat"]["id"]

    demoted = admin.run(CHANGE_ROLE, {"i": {"userId": auditor_user["userId"], "role": "MEMBER"}})
    position = demoted["changeUserRole"]["position"]
    assert codes(lambda: auditor.run(CHAT, {"id": chat["chatId"], "p": position})) == ["NOT_FOUND"]


@pytest.fixture(scope="module")
def short_token_server(tmp_path_factory: pytest.TempPathFactory):
    server = Server(
        tmp_path_factory.mktemp("short-tokens"), env={"PARLEY_ACCESS_TOKEN_TTL_SECONDS": "3"}
    ).start()
    yield server
    server.stop()


async def test_an_open_websocket_stops_serving_an_expired_token(short_token_server: Server) -> None:
    tenant = await asyncio.to_thread(short_token_server.create_tenant)
    api = ApiClient(short_token_server.url)
    admin = await asyncio.to_thread(api.login, tenant["slug"], tenant["email"], tenant["password"])
    chat = (await asyncio.to_thread(admin.run, START_CHAT, {"i": {"title": "Ticking"}}))[
        "startChat"
    ]
    subscribe = {
        "query": "subscription($c: ID!, $p: Int) { chatEvents(chatId: $c, afterPosition: $p) "
        "{ __typename } }",
        "variables": {"c": chat["chatId"], "p": chat["position"]},
    }
    async with websockets.connect(api.ws_url(), subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(
            json.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {admin.token}"}}
            )
        )
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        started = time.monotonic()
        ended = json.loads(await asyncio.wait_for(ws.recv(), timeout=15))
        assert time.monotonic() - started < 10
        assert ended["type"] == "next" and ended["payload"]["errors"][0]["extensions"] == {
            "code": "UNAUTHENTICATED"
        }, ended
        assert json.loads(await ws.recv()) == {"id": "1", "type": "complete"}

        await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": subscribe}))
        again = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert again["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_a_reply_cut_short_by_a_restart_is_produced_again_in_full(tmp_path) -> None:
    server = Server(tmp_path / "slow", env={"PARLEY_ECHO_DELAY_MS": "40"}).start()
    words = " ".join(f"w{n}" for n in range(120))  # about five seconds of streaming
    try:
        tenant = server.create_tenant()
        admin = ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])
        chat = admin.run(START_CHAT, {"i": {"title": "Interrupted"}})["startChat"]
        admin.run(SEND, {"i": {"chatId": chat["chatId"], "content": words}})
        time.sleep(1.5)
    finally:
        server.stop()
    server.start()
    try:
        admin = ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])
        query = """query($id: ID!) { chat(id: $id) { messages { nodes {
                   role content finishReason } } } }"""
        deadline = time.monotonic() + 30
        while True:
            nodes = admin.run(query, {"id": chat["chatId"]})["chat"]["messages"]["nodes"]
            if len(nodes) == 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [m["role"] for m in nodes] == ["USER", "ASSISTANT"]
        assert nodes[1]["finishReason"] == "stop"
        assert nodes[1]["content"].endswith(words)
    finally:
        server.stop()


def test_platform_admin_creates_and_deactivates_tenants(server: Server, api: ApiClient) -> None:
    email = f"ops-{uuid.uuid4().hex[:6]}@example.com"
    done = server.cli(
        "platform-admins", "create", "--email", email, "--password", "ops-password-123"
    )
    assert done.returncode == 0, done.stderr
    ops = api.login("platform", email, "ops-password-123")
    assert ops.login_payload["user"]["role"] == "PLATFORM_ADMIN"

    slug = f"p-{uuid.uuid4().hex[:8]}"
    created = ops.run(
        """mutation($i: CreateTenantInput!) { createTenant(input: $i) { tenantId position } }""",
        {
            "i": {
                "name": "Made by ops",
                "slug": slug,
                "adminEmail": "boss@example.com",
                "adminPassword": "boss-password-123",
            }
        },
    )["createTenant"]
    boss = api.login(slug, "boss@example.com", "boss-password-123")
    chat = boss.run(START_CHAT, {"i": {"title": "Before"}})["startChat"]

    gone = ops.run(
        "mutation($i: DeactivateTenantInput!) { deactivateTenant(input: $i) { position } }",
        {"i": {"tenantId": created["tenantId"]}},
    )["deactivateTenant"]
    assert codes(lambda: boss.run(SEND, {"i": {"chatId": chat["chatId"], "content": "x"}})) == [
        "FORBIDDEN"
    ]
    assert codes(lambda: boss.run(CHAT, {"id": chat["chatId"], "p": gone["position"]})) == [
        "FORBIDDEN"
    ]
    assert codes(lambda: api.login(slug, "boss@example.com", "boss-password-123")) == [
        "UNAUTHENTICATED"
    ]


def test_tenant_admins_cannot_create_tenants_or_use_the_platform_slug(
    api: ApiClient, tenant: dict, server: Server
) -> None:
    admin = api.login(tenant["slug"], tenant["email"], tenant["password"])
    assert codes(
        lambda: admin.run(
            "mutation($i: CreateTenantInput!) { createTenant(input: $i) { tenantId } }",
            {
                "i": {
                    "name": "x",
                    "slug": f"x-{uuid.uuid4().hex[:6]}",
                    "adminEmail": "a@example.com",
                    "adminPassword": "a-long-password-1",
                }
            },
        )
    ) == ["FORBIDDEN"]
    done = server.cli(
        "tenants",
        "create",
        "--name",
        "P",
        "--slug",
        "platform",
        "--admin-email",
        "a@example.com",
        "--admin-password",
        "a-long-password-1",
    )
    assert done.returncode == 2 and "reserved" in done.stderr
