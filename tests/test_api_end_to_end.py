"""The walking skeleton end to end: a real `parley serve`, a real GraphQL client over HTTP and
WebSocket, PostgreSQL started by Parley itself."""

import asyncio
import time
import uuid

import httpx
import pytest
from gql import Client, GraphQLRequest, gql
from gql.transport.websockets import WebsocketsTransport

from testbed.client import ApiClient
from testbed.processes import Server

START_CHAT = "mutation($i: StartChatInput!) { startChat(input: $i) { chatId position } }"
SEND = """mutation($i: SendMessageInput!) { sendMessage(input: $i) {
    messageId chatId position duplicate message { id role content createdAt } } }"""
CHAT_EVENTS = gql(
    """subscription($chatId: ID!, $after: Int) {
      chatEvents(chatId: $chatId, afterPosition: $after) {
        __typename
        ... on MessageAdded { message { id role content model } }
        ... on ReplyDelta { messageId delta }
      }
    }"""
)
MESSAGES = """query($id: ID!, $after: Int) { chat(id: $id, afterPosition: $after) {
    id title messageCount messages(first: 200) { nodes { id role content } } } }"""


def ws_transport(api: ApiClient, token: str | None) -> WebsocketsTransport:
    return WebsocketsTransport(
        url=api.ws_url(),
        init_payload={"Authorization": f"Bearer {token}"} if token else {},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )


def sign_in(api: ApiClient, tenant: dict) -> ApiClient:
    return api.login(tenant["slug"], tenant["email"], tenant["password"])


def start_chat(user: ApiClient, title: str = "First chat") -> dict:
    return user.run(START_CHAT, {"i": {"title": title}})["startChat"]


def live_subscribers(url: str) -> float:
    """The server's open chatEvents subscriptions (its parley_live_subscribers gauge)."""
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith("parley_live_subscribers "):
            return float(line.split()[1])
    raise AssertionError("the server reports no parley_live_subscribers")


async def until_registered(url: str, listener: asyncio.Task, more_than: float) -> None:
    """Return once the server holds more than `more_than` live subscriptions: `listener`'s is
    registered, so it gets the live deltas of a reply started from now on."""
    deadline = time.monotonic() + 20
    while await asyncio.to_thread(live_subscribers, url) <= more_than:
        if listener.done():
            listener.result()  # raises what ended it
            raise AssertionError("the subscription ended before it was registered")
        assert time.monotonic() < deadline, "the subscription was not registered within 20 s"
        await asyncio.sleep(0.02)


async def test_client_signs_in_chats_and_watches_the_reply_arrive_live(
    api: ApiClient, tenant: dict
) -> None:
    admin = sign_in(api, tenant)
    chat = start_chat(admin)
    events: list[dict] = []

    async with Client(transport=ws_transport(api, admin.token)) as session:

        async def collect() -> None:
            request = GraphQLRequest(
                CHAT_EVENTS, variable_values={"chatId": chat["chatId"], "after": chat["position"]}
            )
            async for event in session.subscribe(request):
                events.append(event["chatEvents"])
                if (
                    event["chatEvents"]["__typename"] == "MessageAdded"
                    and event["chatEvents"]["message"]["role"] == "ASSISTANT"
                ):
                    return

        subscribers = await asyncio.to_thread(live_subscribers, api.url)
        listener = asyncio.create_task(collect())
        await until_registered(api.url, listener, subscribers)
        sent = (
            await asyncio.to_thread(
                admin.run, SEND, {"i": {"chatId": chat["chatId"], "content": "hello live world"}}
            )
        )["sendMessage"]
        await asyncio.wait_for(listener, timeout=20)

    kinds = [e["__typename"] for e in events]
    assert kinds[0] == "MessageAdded"
    assert events[0]["message"] == {
        "id": sent["messageId"],
        "role": "USER",
        "content": "hello live world",
        "model": "echo",
    }
    deltas = [e for e in events if e["__typename"] == "ReplyDelta"]
    reply = events[-1]["message"]
    assert len(deltas) >= 3, kinds
    assert {d["messageId"] for d in deltas} == {reply["id"]}
    assert "".join(d["delta"] for d in deltas) == reply["content"]
    assert reply["content"].endswith("hello live world")
    assert "not AI" in reply["content"]

    listing = admin.run(
        "query($p: Int) { chats(first: 10, afterPosition: $p) { edges { node { id title } } } }",
        {"p": sent["position"]},
    )
    assert [e["node"]["id"] for e in listing["chats"]["edges"]] == [chat["chatId"]]
    messages = admin.run(MESSAGES, {"id": chat["chatId"], "after": sent["position"]})
    roles = [m["role"] for m in messages["chat"]["messages"]["nodes"]]
    assert roles == ["USER", "ASSISTANT"]


async def test_websocket_without_a_valid_token_is_closed_with_4403(api: ApiClient) -> None:
    import json

    import websockets

    for payload in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic x"}):
        async with websockets.connect(api.ws_url(), subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), timeout=10)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


def test_twenty_concurrent_messages_to_one_chat_all_get_replies(
    api: ApiClient, tenant: dict
) -> None:
    admin = sign_in(api, tenant)
    chat = start_chat(admin)

    def send(n: int) -> dict:
        return admin.run(SEND, {"i": {"chatId": chat["chatId"], "content": f"message {n}"}})

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(20) as pool:
        results = [r["sendMessage"] for r in pool.map(send, range(20))]
    assert len({r["messageId"] for r in results}) == 20

    nodes = wait_for_messages(admin, chat["chatId"], 40, max(r["position"] for r in results))
    users = sorted(m["content"] for m in nodes if m["role"] == "USER")
    assert users == sorted(f"message {n}" for n in range(20))
    replies = [m for m in nodes if m["role"] == "ASSISTANT"]
    assert sorted(r["content"].split("] ", 1)[1] for r in replies) == users


def wait_for_messages(
    user: ApiClient, chat_id: str, count: int, after: int, timeout: float = 30
) -> list:
    """The chat's `count` messages, once there are (`after`: the position of a write of ours,
    so that the read models hold the chat at all)."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = user.run(MESSAGES, {"id": chat_id, "after": after})["chat"]["messages"]["nodes"]
        if len(nodes) >= count or time.monotonic() > deadline:
            assert len(nodes) == count, nodes
            return nodes
        time.sleep(0.2)


def test_repeated_client_mutation_id_stores_one_message(api: ApiClient, tenant: dict) -> None:
    admin = sign_in(api, tenant)
    chat = start_chat(admin)
    key = str(uuid.uuid4())
    request = {"i": {"chatId": chat["chatId"], "content": "only once", "clientMutationId": key}}
    first = admin.run(SEND, request)["sendMessage"]
    second = admin.run(SEND, request)["sendMessage"]
    assert first["duplicate"] is False and second["duplicate"] is True
    assert second["messageId"] == first["messageId"]
    assert second["message"]["content"] == "only once"
    nodes = wait_for_messages(admin, chat["chatId"], 2, first["position"])
    assert [m["role"] for m in nodes] == ["USER", "ASSISTANT"]


def test_parley_keeps_everything_across_a_restart(tmp_path) -> None:
    server = Server(tmp_path / "restart").start()
    try:
        tenant = server.create_tenant()
        api = ApiClient(server.url)
        admin = sign_in(api, tenant)
        chat = start_chat(admin, "Survives restarts")
        sent = admin.run(SEND, {"i": {"chatId": chat["chatId"], "content": "remember me"}})
        wait_for_messages(admin, chat["chatId"], 2, sent["sendMessage"]["position"])
    finally:
        server.stop()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.url}/healthz", timeout=1)

    server.start()
    try:
        api = ApiClient(server.url)
        admin = sign_in(api, tenant)
        assert admin.run("{ me { email role } }")["me"] == {
            "email": tenant["email"],
            "role": "TENANT_ADMIN",
        }
        nodes = wait_for_messages(admin, chat["chatId"], 2, sent["sendMessage"]["position"])
        assert [m["content"] for m in nodes][0] == "remember me"
        title = admin.run(MESSAGES, {"id": chat["chatId"]})["chat"]["title"]
        assert title == "Survives restarts"
    finally:
        server.stop()


def test_refresh_token_gives_a_working_pair_and_access_tokens_cannot_refresh(
    api: ApiClient, tenant: dict
) -> None:
    from testbed.client import GraphQLFailed

    admin = sign_in(api, tenant)
    refresh = "mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { accessToken } }"
    fresh = admin.run(refresh, {"t": admin.login_payload["refreshToken"]})
    assert admin.as_user(fresh["refreshToken"]["accessToken"]).run("{ me { email } }")
    with pytest.raises(GraphQLFailed) as failure:
        admin.run(refresh, {"t": admin.token})
    assert failure.value.codes == ["UNAUTHENTICATED"]


def test_health_readiness_and_metrics_endpoints(api: ApiClient, tenant: dict) -> None:
    sign_in(api, tenant).run("{ me { id } }")
    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{api.url}/readyz").json()
    # An API process of the deployed topology: the worker's followers, from the database.
    assert ready["followers"] == {}
    assert {"read_models", "responder"} <= set(ready["deployment_followers"])
    assert ready["status"] == "ok"
    metrics = httpx.get(f"{api.url}/metrics").text
    assert 'parley_graphql_operations_total{operation_name="me",operation_type="query"' in metrics
    assert "parley_follower_lag_events" in metrics  # the worker's, through the shared directory
