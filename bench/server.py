"""`parley serve` on a scratch database, for the benchmarks that measure a running server, and
how their clients reach it: a tenant and its signed-in admin, the GraphQL documents they send,
a request over HTTP, a `chatEvents` subscription over WebSocket, the server's count of live
subscriptions; and the code the server runs (the commit and what changed since). (Its own module:
it brings in the server harness, which the in-process benchmarks do not need.)"""

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench.database import scratch_database
from infra.postgres import PostgresTarget
from testbed.client import ApiClient
from testbed.processes import ROOT, Server, target_url

START_CHAT = "mutation($i: StartChatInput!) { startChat(input: $i) { chatId position } }"
SEND_MESSAGE = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId position } }"
PROTOCOL = "graphql-transport-ws"


@contextmanager
def scratch_server(
    name: str, env: Mapping[str, str], *, keep: bool = False, args: tuple[str, ...] = ()
) -> Iterator[tuple[Server, PostgresTarget]]:
    """A started `parley serve [args]` with `env` on a new scratch database; on the way out it is
    stopped (its log's last lines printed if the benchmark failed) and the database and its data
    directory are removed, unless `keep`."""
    with scratch_database(keep=keep) as target:
        data_dir = Path(tempfile.mkdtemp(prefix=f"parley-bench-{name}-"))
        server = Server(data_dir, {**env, "PARLEY_DATABASE_URL": target_url(target)}, args)
        try:
            server.start()
            print(f"parley serve at {server.url} on database {target.dbname}", file=sys.stderr)
            yield server, target
        except BaseException:
            if server.log.exists():
                tail = server.log.read_text(errors="replace").splitlines()[-20:]
                print("parley serve's log, last lines:\n  " + "\n  ".join(tail), file=sys.stderr)
            raise
        finally:
            server.stop()
            if keep:
                print(f"kept {data_dir}", file=sys.stderr)
            else:
                shutil.rmtree(data_dir, ignore_errors=True)


def code_version() -> dict[str, Any]:
    """The commit measured and the files changed since, benchmarks aside: the server runs the
    working tree, so work in progress there is measured too."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],  # never takes the index lock of a shared tree
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout if done.returncode == 0 else ""

    try:
        commit = git("rev-parse", "HEAD").strip()
        status = git("status", "--porcelain", "--untracked-files=all").splitlines()
    except (OSError, subprocess.SubprocessError):
        return {"commit": None}
    changed = [line[3:] for line in status if not line[3:].startswith("bench/")]
    return {"commit": commit or None, "changed_outside_bench": changed}


# -- the API ------------------------------------------------------------------------------------


def new_tenant(server: Server) -> tuple[dict[str, Any], ApiClient]:
    """A new tenant (`parley tenants create`) and its admin, signed in over GraphQL."""
    tenant = server.create_tenant()
    return tenant, sign_in(server, tenant)


def sign_in(server: Server, tenant: Mapping[str, Any]) -> ApiClient:
    """The tenant's admin, signed in over GraphQL: a client with a fresh access token."""
    return ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])


def access_token(server: Server, tenant: Mapping[str, Any]) -> str:
    """A fresh access token (JWT) of the tenant's admin."""
    token = sign_in(server, tenant).token
    assert token is not None
    return token


def bearer(token: str | None) -> dict[str, str]:
    """The HTTP headers that carry an access token."""
    return {"Authorization": f"Bearer {token}"}


async def graphql(
    http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """POST one operation to the server's /graphql; its data, or RuntimeError on errors."""
    response = await http.post(
        "/graphql", json={"query": query, "variables": variables}, headers=bearer(token)
    )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return dict(body["data"])


async def subscribe(
    server: Server,
    token: str,
    query: str,
    variables: dict[str, Any],
    *,
    timeout: float,
    **connect_options: Any,
) -> ClientConnection:
    """A WebSocket (graphql-transport-ws) authenticated with `token` in `connection_init`, on
    which `query` is subscribed as operation "1"; `timeout` seconds to connect and to be
    acknowledged."""
    ws = await connect(
        ApiClient(server.url).ws_url(),
        subprotocols=[Subprotocol(PROTOCOL)],
        open_timeout=timeout,
        **connect_options,
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": bearer(token)}))
    ack = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    if ack.get("type") != "connection_ack":
        await ws.close()
        raise RuntimeError(f"the WebSocket was not acknowledged: {ack}")
    payload = {"query": query, "variables": variables}
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
    return ws


async def live_subscribers(http: httpx.AsyncClient) -> int:
    """The subscriptions the server holds live (its `parley_live_subscribers` gauge), -1 when
    its metrics do not show the gauge."""
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith("parley_live_subscribers "):
            return int(float(line.split()[1]))
    return -1
