"""The deployed shape: an API-only process and a worker process on one database, live events
crossing from the worker to the API's subscribers through Redis, or through PostgreSQL
LISTEN/NOTIFY where there is no Redis."""

import asyncio

import httpx
from gql import Client, GraphQLRequest, gql
from gql.transport.websockets import WebsocketsTransport

from testbed.client import ApiClient
from testbed.processes import Server, Worker
from tests.test_api_end_to_end import live_subscribers, until_registered

CHAT_EVENTS = gql(
    """subscription($chatId: ID!, $after: Int) {
      chatEvents(chatId: $chatId, afterPosition: $after) {
        __typename
        ... on MessageAdded { message { id role content } }
        ... on ReplyDelta { messageId delta }
      }
    }"""
)


async def test_a_client_of_an_api_only_process_sees_replies_made_by_the_worker_process(
    stack_servers: tuple[Worker, Server],
) -> None:
    worker, api_only = stack_servers
    assert httpx.get(f"{api_only.url}/readyz").json()["followers"] == {}

    tenant = await asyncio.to_thread(api_only.create_tenant)
    client = ApiClient(api_only.url)
    credentials = (tenant["slug"], tenant["email"], tenant["password"])
    user = await asyncio.to_thread(client.login, *credentials)
    chat = (
        await asyncio.to_thread(
            user.run,
            'mutation { startChat(input: {title: "Across"}) { chatId position } }',
        )
    )["startChat"]

    events: list[dict] = []
    transport = WebsocketsTransport(
        url=client.ws_url(),
        init_payload={"Authorization": f"Bearer {user.token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    async with Client(transport=transport) as session:

        async def collect() -> None:
            request = GraphQLRequest(
                CHAT_EVENTS, variable_values={"chatId": chat["chatId"], "after": chat["position"]}
            )
            async for event in session.subscribe(request):
                events.append(event["chatEvents"])
                item = event["chatEvents"]
                if item["__typename"] == "MessageAdded" and item["message"]["role"] == "ASSISTANT":
                    return

        subscribers = await asyncio.to_thread(live_subscribers, api_only.url)
        listener = asyncio.create_task(collect())
        await until_registered(api_only.url, listener, subscribers)
        await asyncio.to_thread(
            user.run,
            'mutation($c: ID!) { sendMessage(input: {chatId: $c, content: "across"}) '
            "{ messageId } }",
            {"c": chat["chatId"]},
        )
        await asyncio.wait_for(listener, timeout=20)

    kinds = [e["__typename"] for e in events]
    assert kinds[0] == "MessageAdded" and events[0]["message"]["content"] == "across"
    deltas = [e["delta"] for e in events if e["__typename"] == "ReplyDelta"]
    assert deltas and "".join(deltas) == events[-1]["message"]["content"]
    assert events[-1]["message"]["content"].endswith("across")
    metrics = httpx.get(f"http://127.0.0.1:{worker.port}/metrics").text
    processed = [
        line
        for line in metrics.splitlines()
        if line.startswith('parley_follower_events_processed_total{follower="responder"}')
    ]
    assert processed and float(processed[0].split()[-1]) > 0
    # The API-only process runs no follower, and reports the deployment's from the database.
    ready = httpx.get(f"{api_only.url}/readyz").json()
    assert ready["followers"] == {}
    deployment = ready["deployment_followers"]
    assert {"read_models", "responder", "audit"} <= deployment.keys()
    assert deployment["read_models"]["position"] > 0
