"""A user of one tenant can never read, change or subscribe to another tenant's chats."""

import asyncio
import json

import pytest
import websockets

from testbed.client import ApiClient, GraphQLFailed
from testbed.processes import Server

START_CHAT = "mutation($i: StartChatInput!) { startChat(input: $i) { chatId position } }"
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId position } }"


@pytest.fixture
def two_tenants(server: Server, api: ApiClient) -> tuple[ApiClient, ApiClient, dict]:
    a, b = server.create_tenant(), server.create_tenant()
    alice = api.login(a["slug"], a["email"], a["password"])
    bob = api.login(b["slug"], b["email"], b["password"])
    chat = alice.run(START_CHAT, {"i": {"title": "Alice's secret"}})["startChat"]
    sent = alice.run(SEND, {"i": {"chatId": chat["chatId"], "content": "confidential"}})
    return alice, bob, {**chat, "position": sent["sendMessage"]["position"]}


def codes(call) -> list[str]:
    with pytest.raises(GraphQLFailed) as failure:
        call()
    return failure.value.codes


def test_second_tenant_cannot_read_first_tenants_chat(two_tenants) -> None:
    alice, bob, chat = two_tenants
    query = "query($id: ID!, $p: Int) { chat(id: $id, afterPosition: $p) { id title } }"
    assert alice.run(query, {"id": chat["chatId"], "p": chat["position"]})["chat"]["title"]
    assert codes(lambda: bob.run(query, {"id": chat["chatId"], "p": chat["position"]})) == [
        "NOT_FOUND"
    ]
    listing = bob.run(
        "query($p: Int) { chats(afterPosition: $p) { edges { node { id } } } }",
        {"p": chat["position"]},
    )
    assert listing["chats"]["edges"] == []


def test_second_tenant_cannot_change_first_tenants_chat(server: Server, two_tenants) -> None:
    alice, bob, chat = two_tenants
    head = server.settled_head()
    attempts = [
        (SEND, {"i": {"chatId": chat["chatId"], "content": "intrusion"}}),
        (
            "mutation($i: RenameChatInput!) { renameChat(input: $i) { position } }",
            {"i": {"chatId": chat["chatId"], "title": "pwned"}},
        ),
        (
            "mutation($i: ChatIdInput!) { deleteChat(input: $i) { position } }",
            {"i": {"chatId": chat["chatId"]}},
        ),
        (
            "mutation($i: ChatIdInput!) { archiveChat(input: $i) { position } }",
            {"i": {"chatId": chat["chatId"]}},
        ),
    ]
    for mutation, variables in attempts:
        assert codes(lambda m=mutation, v=variables: bob.run(m, v)) == ["NOT_FOUND"]
    assert server.settled_head() == head
    title = alice.run("query($id: ID!) { chat(id: $id) { title } }", {"id": chat["chatId"]})
    assert title["chat"]["title"] == "Alice's secret"


def test_tenant_admin_cannot_register_users_in_another_tenant(server: Server, two_tenants) -> None:
    alice, bob, _ = two_tenants
    other_tenant = alice.login_payload["user"]["tenantId"]
    assert codes(
        lambda: bob.run(
            "mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId } }",
            {
                "i": {
                    "email": "spy@example.com",
                    "password": "spy-password-123",
                    "displayName": "Spy",
                    "tenantId": other_tenant,
                }
            },
        )
    ) == ["FORBIDDEN"]


async def test_second_tenant_cannot_subscribe_to_first_tenants_chat(
    api: ApiClient, two_tenants
) -> None:
    alice, bob, chat = two_tenants
    async with websockets.connect(api.ws_url(), subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(
            json.dumps(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {bob.token}"}}
            )
        )
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
        reply = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        ending = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
    # graphql-transport-ws reports resolver errors as a `next` carrying errors, then `complete`.
    assert reply["type"] == "next" and reply["payload"]["data"] is None, reply
    assert [e["extensions"]["code"] for e in reply["payload"]["errors"]] == ["NOT_FOUND"]
    assert ending == {"id": "1", "type": "complete"}


def test_forged_tenant_claim_without_the_key_is_rejected(two_tenants) -> None:
    import jwt

    alice, bob, chat = two_tenants
    claims = jwt.decode(bob.token, options={"verify_signature": False})
    claims["tid"] = alice.login_payload["user"]["tenantId"]
    forged = jwt.encode(claims, "guessed-secret-guessed-secret-guessed!", algorithm="HS256")
    assert codes(
        lambda: bob.as_user(forged).run(
            "query($id: ID!) { chat(id: $id) { id } }", {"id": chat["chatId"]}
        )
    ) == ["UNAUTHENTICATED"]
