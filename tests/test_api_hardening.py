"""API hardening through a real `parley serve` with small limits: operation cost and size
limits, WebSocket caps (released on disconnect), body and message sizes, CORS and WebSocket
Origin allow-lists, security headers, masked internal errors and operation rate limits."""

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import websockets

from infra.postgres import PostgresTarget
from testbed.client import ApiClient, GraphQLFailed
from testbed.processes import Server, target_url
from tests.conftest import own_database

APP = "https://app.example"
LIMITS = {
    "PARLEY_GRAPHQL_MAX_COST": "2000",
    "PARLEY_GRAPHQL_MAX_DEPTH": "5",
    "PARLEY_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION": "2",
    "PARLEY_WS_MAX_CONNECTIONS_PER_USER": "2",
    "PARLEY_HTTP_MAX_BODY_BYTES": str(64 * 1024),
    "PARLEY_WS_MAX_MESSAGE_BYTES": str(16 * 1024),
    "PARLEY_CORS_ALLOWED_ORIGINS": json.dumps([APP]),
    "PARLEY_USER_OPERATIONS_PER_MINUTE": "40",
    "PARLEY_TENANT_OPERATIONS_PER_MINUTE": "60",
    "PARLEY_ANONYMOUS_OPERATIONS_PER_MINUTE": "5",
}
START_CHAT = "mutation($t: String!) { startChat(input: {title: $t}) { chatId position } }"
# afterPosition: the chat was just started; without it a subscription arriving before the read
# models include the chat is refused NOT_FOUND (read-your-writes is the client's to ask for).
EVENTS = """subscription($c: ID!, $p: Int) {
  chatEvents(chatId: $c, afterPosition: $p) { __typename } }"""
PROTOCOL = ["graphql-transport-ws"]


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[PostgresTarget]:
    with own_database(postgres_url) as target:
        yield target


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database: PostgresTarget) -> Iterator[Server]:
    # One API process: the WebSocket caps hold per API process (docs/security-hardening.md),
    # and these tests count what one process allows.
    srv = Server(
        tmp_path_factory.mktemp("hardening"),
        {**LIMITS, "PARLEY_DATABASE_URL": target_url(database)},
        args=("--workers", "1"),
    ).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def user(server: Server) -> ApiClient:
    """A tenant admin for the tests that spend few operations (the rate limit tests have
    their own)."""
    tenant = server.create_tenant()
    return ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])


def codes(call: Any) -> list[str | None]:
    with pytest.raises(GraphQLFailed) as failure:
        call()
    return failure.value.codes


# -- operation limits ---------------------------------------------------------------------------


def test_a_query_whose_nested_lists_cost_too_much_is_query_too_complex(user: ApiClient) -> None:
    heavy = "{ chats(first: 50) { nodes { messages(first: 50) { nodes { id content } } } } }"
    assert codes(lambda: user.run(heavy)) == ["QUERY_TOO_COMPLEX"]
    user.run("{ chats(first: 5) { nodes { messages(first: 5) { nodes { id content } } } } }")


def test_the_cost_counts_first_given_as_a_variable(user: ApiClient) -> None:
    query = "query($n: Int!) { chats(first: $n) { nodes { messages { nodes { id } } } } }"
    assert codes(lambda: user.run(query, {"n": 100})) == ["QUERY_TOO_COMPLEX"]
    user.run(query, {"n": 2})


def test_too_deep_too_many_aliases_and_too_long_documents_are_query_too_complex(
    user: ApiClient,
) -> None:
    deep = "{ chats(first: 1) { edges { node { messages(first: 1) { edges { node { id } } } } } } }"
    aliases = "{ " + "".join(f"x{n}: me {{ id }} " for n in range(20)) + "}"
    long = "{ " + "me { id } " * 1100 + "}"
    for document in (deep, aliases, long):
        assert codes(lambda d=document: user.run(d)) == ["QUERY_TOO_COMPLEX"], document[:40]
    user.run("{ " + "".join(f"x{n}: me {{ id }} " for n in range(5)) + "}")


# -- WebSocket caps -----------------------------------------------------------------------------


async def connect(api: ApiClient, **payload: Any) -> Any:
    ws = await websockets.connect(api.ws_url(), subprotocols=PROTOCOL)
    await ws.send(
        json.dumps(
            {
                "type": "connection_init",
                "payload": payload or {"Authorization": f"Bearer {api.token}"},
            }
        )
    )
    return ws


async def acked(ws: Any) -> bool:
    try:
        return json.loads(await asyncio.wait_for(ws.recv(), 5))["type"] == "connection_ack"
    except websockets.ConnectionClosed:
        return False


async def two_connections_accepted(user: ApiClient) -> bool:
    """Whether two connections of the user's are accepted at once (both then left), trying for
    up to 10 s: the server gives a slot back once it has seen the socket end, a moment later."""
    deadline = time.monotonic() + 10
    while True:
        again = [await connect(user), await connect(user)]
        accepted = [await acked(ws) for ws in again]
        for ws in again:
            await ws.close()
        if accepted == [True, True] or time.monotonic() > deadline:
            return accepted == [True, True]
        await asyncio.sleep(0.05)


async def test_websocket_compression_is_not_negotiated_by_default(user: ApiClient) -> None:
    """The client offers permessage-deflate; the server declines (PARLEY_WS_COMPRESSION): its
    zlib state would cost ~110 KiB per connection."""
    ws = await connect(user)
    try:
        assert await acked(ws)
        assert "permessage-deflate" in ws.request.headers.get("Sec-WebSocket-Extensions", "")
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
    finally:
        await ws.close()


async def test_a_user_holds_at_most_the_allowed_websockets_and_gets_them_back_on_disconnect(
    user: ApiClient,
) -> None:
    first, second = await connect(user), await connect(user)
    assert await acked(first) and await acked(second)
    third = await connect(user)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(third.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
    await first.close()
    second.transport.abort()  # gone without a closing handshake
    for _ in range(3):  # no slot leaks: connect and leave, again and again
        assert await two_connections_accepted(user)


async def test_a_connection_runs_at_most_the_allowed_subscriptions(user: ApiClient) -> None:
    chat = user.run(START_CHAT, {"t": "subs"})["startChat"]
    ws = await connect(user)
    assert await acked(ws)
    for n in ("1", "2", "3"):
        subscribe = {"query": EVENTS, "variables": {"c": chat["chatId"], "p": chat["position"]}}
        await ws.send(json.dumps({"id": n, "type": "subscribe", "payload": subscribe}))
    refused = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert refused["id"] == "3" and refused["type"] == "error"
    assert refused["payload"][0]["extensions"]["code"] == "TOO_MANY_SUBSCRIPTIONS"
    await ws.send(json.dumps({"id": "1", "type": "complete"}))
    await asyncio.sleep(0.3)
    payload = {"query": EVENTS, "variables": {"c": chat["chatId"], "p": chat["position"]}}
    await ws.send(json.dumps({"id": "4", "type": "subscribe", "payload": payload}))
    with pytest.raises(TimeoutError):  # accepted: no error arrives
        await asyncio.wait_for(ws.recv(), 1)
    await ws.close()


async def test_an_oversized_websocket_message_closes_the_connection_with_1009(
    user: ApiClient,
) -> None:
    ws = await connect(user)
    assert await acked(ws)
    await ws.send(json.dumps({"type": "ping", "payload": {"pad": "x" * 20_000}}))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_a_websocket_from_a_disallowed_origin_is_refused_at_the_handshake(
    user: ApiClient,
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(
            user.ws_url(), subprotocols=PROTOCOL, origin="https://evil.example"
        )
    assert refused.value.response.status_code == 403
    ws = await websockets.connect(user.ws_url(), subprotocols=PROTOCOL, origin=APP)
    await ws.close()


# -- HTTP ---------------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_413_with_a_json_error(server: Server) -> None:
    big = {"query": "{ me { id } }", "variables": {"pad": "x" * 70_000}}
    r = httpx.post(f"{server.url}/graphql", json=big)
    assert r.status_code == 413
    assert r.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


def test_a_chunked_body_is_refused_while_it_streams_in(server: Server) -> None:
    """No Content-Length: the server answers 413 before the client has even finished."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"x" * 8192
        for _ in range(10):  # 80 KiB, and never the terminating chunk
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413")


def test_every_response_carries_the_security_headers_and_no_server_header(
    server: Server, user: ApiClient
) -> None:
    responses = [
        httpx.post(f"{server.url}/graphql", json={"query": "{ me { id } }"}),
        httpx.get(f"{server.url}/healthz"),
        httpx.get(f"{server.url}/no-such-page"),
    ]
    for r in responses:
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-frame-options"] == "DENY"
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert "server" not in r.headers
        assert "strict-transport-security" not in r.headers  # plain HTTP
    assert responses[0].headers["cache-control"] == "no-store"


def test_hsts_is_sent_when_the_request_came_over_tls(server: Server) -> None:
    """Behind a TLS-terminating proxy (trusted: loopback) that says so."""
    r = httpx.get(f"{server.url}/healthz", headers={"X-Forwarded-Proto": "https"})
    assert r.headers["strict-transport-security"].startswith("max-age=31536000")


def test_cors_allows_only_the_configured_origin_preflight_included(server: Server) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    ok = httpx.options(f"{server.url}/graphql", headers={"Origin": APP, **preflight})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == APP
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    evil = httpx.options(
        f"{server.url}/graphql", headers={"Origin": "https://evil.example", **preflight}
    )
    assert "access-control-allow-origin" not in evil.headers
    simple = httpx.post(
        f"{server.url}/graphql", json={"query": "{ __typename }"}, headers={"Origin": APP}
    )
    assert simple.headers["access-control-allow-origin"] == APP


# -- errors -------------------------------------------------------------------------------------


def test_an_internal_error_is_masked_with_an_error_id_that_is_in_the_server_log(
    server: Server, user: ApiClient, database: PostgresTarget
) -> None:
    """A botched grant (the read role lost a table) fails inside the usage query."""
    grant = "{} SELECT ON readmodels.rm_usage {} parley_reader"
    with psycopg.connect(database.conninfo(), autocommit=True) as conn:
        conn.execute(grant.format("REVOKE", "FROM"))
        try:
            body = user.raw('{ usage(from: "2026-01-01", to: "2026-01-31") { inputTokens } }')
        finally:
            conn.execute(grant.format("GRANT", "TO"))
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    error_id = error["extensions"]["errorId"]
    assert error["message"] == f"Internal server error (error id {error_id})."
    text = json.dumps(body)
    for leak in ("Traceback", "psycopg", "permission", "rm_usage", "SELECT", ".py", "/work"):
        assert leak not in text, leak
    log = server.log.read_text()
    assert error_id in log and "Traceback" in log.split(error_id, 1)[1][:20_000]


# -- rate limits (last: they spend budgets) -----------------------------------------------------


def test_a_user_gets_rate_limited_with_a_retry_hint(server: Server) -> None:
    tenant = server.create_tenant()
    user = ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])
    answers = [user.raw("{ me { id } }") for _ in range(45)]
    limited = [a["errors"][0] for a in answers if a.get("errors")]
    assert limited and all(e["extensions"]["code"] == "RATE_LIMITED" for e in limited)
    assert limited[0]["extensions"]["retryAfterSeconds"] >= 1
    assert "retry in" in limited[0]["message"]


def signed_in(server: Server, tenant: dict, address: str) -> ApiClient:
    """A sign-in from an address of its own: sign-ins are anonymous operations, and this
    server allows 5 a minute per address (the module's other sign-ins come from loopback)."""
    body = ApiClient(server.url).run(
        "mutation($i: LoginInput!) { login(input: $i) { accessToken } }",
        {"i": {"tenant": tenant["slug"], "email": tenant["email"], "password": tenant["password"]}},
        **{"X-Forwarded-For": address},
    )
    return ApiClient(server.url, body["login"]["accessToken"])


def test_the_tenant_limit_binds_its_users_together(server: Server) -> None:
    tenant = server.create_tenant()
    admin = signed_in(server, tenant, "198.51.100.21")
    again = signed_in(server, tenant, "198.51.100.22")
    # One person, two tokens: same user budget (40); the tenant's (60) binds across users,
    # shown here by the user budget running out first at 40.
    for _ in range(35):
        admin.raw("{ me { id } }")
    assert codes(lambda: [again.run("{ me { id } }") for _ in range(10)]) == ["RATE_LIMITED"]


def test_unauthenticated_callers_are_limited_per_client_address(server: Server) -> None:
    anonymous = ApiClient(server.url)
    address = {"X-Forwarded-For": "203.0.113.7"}
    answers = [anonymous.raw("{ __typename }", **address) for _ in range(8)]
    assert any(
        a.get("errors") and a["errors"][0]["extensions"]["code"] == "RATE_LIMITED" for a in answers
    )
    elsewhere = anonymous.raw("{ __typename }", **{"X-Forwarded-For": "203.0.113.8"})
    assert elsewhere == {"data": {"__typename": "Query"}}


def test_a_rate_limited_request_is_429_without_data_in_graphql_response_json(
    server: Server,
) -> None:
    """Refused before it ran: a request error, so no `data` and a status that says why
    (application/json clients still get 200)."""
    headers = {"X-Forwarded-For": "203.0.113.9", "Accept": "application/graphql-response+json"}
    answers = [
        httpx.post(f"{server.url}/graphql", json={"query": "{ __typename }"}, headers=headers)
        for _ in range(8)
    ]
    assert answers[0].status_code == 200 and answers[0].json() == {"data": {"__typename": "Query"}}
    limited = answers[-1]
    assert limited.status_code == 429
    assert limited.headers["content-type"].startswith("application/graphql-response+json")
    body = limited.json()
    assert "data" not in body and body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
