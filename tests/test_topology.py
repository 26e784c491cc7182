"""`parley serve --workers N`: API processes and a worker process on one port. A message sent to
one API process reaches a subscriber of another, with its reply streamed from the worker
process, in the embedded default (through PostgreSQL) and with Redis; a worker process that
dies is restarted, and says so."""

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from gql import Client, GraphQLRequest
from gql.transport.websockets import WebsocketsTransport

from infra.postgres import server_processes
from testbed.client import ApiClient
from testbed.processes import Server, children_of
from tests.test_api_full_stack import CHAT_EVENTS

INSTANCE = "x-parley-instance"
SEND = (
    "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, content: $t}) { position } }"
)


@pytest.fixture(params=["embedded", "redis"])
def processes(request: pytest.FixtureRequest, tmp_path: Path, redis_url: str):  # type: ignore[no-untyped-def]
    env = {"PARLEY_REDIS_URL": redis_url} if request.param == "redis" else {}
    server = Server(tmp_path / "serve", env, args=("--workers", "2")).start()
    yield server
    server.stop()


async def subscription_on_one_process(url: str, token: str):  # type: ignore[no-untyped-def]
    """A WebSocket, and the API process it landed on."""
    transport = WebsocketsTransport(
        url=url.replace("http", "ws", 1) + "/graphql",
        init_payload={"Authorization": f"Bearer {token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    client = Client(transport=transport)
    session = await client.connect_async()
    return client, session, transport.response_headers[INSTANCE]


async def test_a_message_sent_to_one_api_process_reaches_a_subscriber_of_another(
    processes: Server,
) -> None:
    server = processes
    tenant = await asyncio.to_thread(server.create_tenant)
    user = await asyncio.to_thread(
        ApiClient(server.url).login, tenant["slug"], tenant["email"], tenant["password"]
    )
    assert user.token is not None
    chat = (
        await asyncio.to_thread(
            user.run, 'mutation { startChat(input: {title: "Across"}) { chatId position } }'
        )
    )["startChat"]

    client, session, subscribed_on = await subscription_on_one_process(server.url, user.token)
    events: list[dict] = []
    try:

        async def collect() -> None:
            request = GraphQLRequest(
                CHAT_EVENTS, variable_values={"chatId": chat["chatId"], "after": chat["position"]}
            )
            async for event in session.subscribe(request):
                item = event["chatEvents"]
                events.append(item)
                if item["__typename"] == "MessageAdded" and item["message"]["role"] == "ASSISTANT":
                    return

        listener = asyncio.create_task(collect())
        await asyncio.sleep(0.5)  # the subscription is registered on its process
        sent_on = await asyncio.to_thread(
            send_elsewhere_retrying, server.url, user.token, subscribed_on, chat["chatId"]
        )
        await asyncio.wait_for(listener, timeout=30)
    finally:
        await client.close_async()

    assert sent_on != subscribed_on
    kinds = [e["__typename"] for e in events]
    assert kinds[0] == "MessageAdded" and events[0]["message"]["content"] == "across processes"
    deltas = [e["delta"] for e in events if e["__typename"] == "ReplyDelta"]
    assert deltas and "".join(deltas) == events[-1]["message"]["content"]


def send_elsewhere_retrying(url: str, token: str, avoid: str, chat_id: str) -> str:
    """Pick an API process other than `avoid` with a harmless request first (readiness), then
    send there: connections are spread by the kernel, so try until one lands elsewhere."""
    for _ in range(200):
        with httpx.Client(timeout=10) as http:
            probe = http.get(f"{url}/readyz")
            if probe.headers[INSTANCE] == avoid:
                continue
            r = http.post(  # the same connection: the same process
                f"{url}/graphql",
                json={"query": SEND, "variables": {"c": chat_id, "t": "across processes"}},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.headers[INSTANCE] == probe.headers[INSTANCE]
            assert "errors" not in r.json(), r.json()
            return r.headers[INSTANCE]
    raise AssertionError("every connection landed on the subscriber's process")


def worker_children(pid: int) -> list[int]:
    """The `parley worker` processes whose parent is `pid`."""
    return children_of(pid, b"\0worker\0")


def test_a_worker_process_that_dies_is_restarted_and_says_so(tmp_path: Path) -> None:
    server = Server(tmp_path / "serve", args=("--workers", "1")).start()
    try:
        assert server.proc is not None
        # The one API process counts into the shared metrics like several would.
        tenant = server.create_tenant()
        ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'parley_graphql_operations_total{operation_name="login"' in metrics
        (first,) = worker_children(server.proc.pid)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while [first] == worker_children(server.proc.pid) or not worker_children(server.proc.pid):
            assert time.monotonic() < deadline, server.log.read_text()[-2000:]
            time.sleep(0.2)
    finally:
        server.stop()
    assert f"worker process {first} exited with code -9; restarting it" in server.log.read_text()
    # The killed worker never said it was done with the embedded PostgreSQL: it stops anyway.
    deadline = time.monotonic() + 15
    while server_processes((server.data_dir / "pgdata").resolve()):
        assert time.monotonic() < deadline, "PostgreSQL outlived parley serve"
        time.sleep(0.1)
