"""`python -m bench fanout`: many WebSocket subscribers on one API process.

A real `parley serve` (workers in process, echo replies) on a scratch database. N clients
(`--clients`, default 1000) each open a WebSocket (graphql-transport-ws) and subscribe to
`chatEvents` of a chat of their own; once the server reports every subscription live (its
`parley_live_subscribers` gauge), messages are sent at a fixed rate (`--rate`) to chats
chosen round-robin, over HTTP. For every message: the time from its `sendMessage`
acknowledgement to its `MessageAdded` reaching that chat's subscriber (delivery p50/p99/max) and
whether it arrived at all (drops). Server memory per connection = (RSS with every subscriber
connected − RSS before) / N. Writes bench/results/fanout-<time>.json.

All clients run in this process (one asyncio loop); the server and the clients share the
machine's cores.
"""

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench.report import machine_info, now_iso, package_versions, write_result
from bench.server import scratch_server
from testbed.client import ApiClient
from testbed.processes import Server

START = "mutation($i: StartChatInput!) { startChat(input: $i) { chatId position } }"
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId position } }"
EVENTS = """subscription($chatId: ID!, $after: Int) { chatEvents(chatId: $chatId,
    afterPosition: $after) { __typename ... on MessageAdded { message { id role } } } }"""


@dataclass
class Options:
    clients: int
    messages: int
    rate: float
    keep: bool
    recheck_seconds: float


def parse_options(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench fanout", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument(
        "--recheck-seconds",
        type=float,
        default=30.0,
        help="the server's PARLEY_SUBSCRIPTION_RECHECK_SECONDS (each subscription re-checks its "
        "caller this often)",
    )
    a = parser.parse_args(argv)
    return Options(a.clients, a.messages, a.rate, a.keep, a.recheck_seconds)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Subscribers:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.errors: list[str] = []
        self.sockets: list[ClientConnection] = []

    async def open(self, url: str, token: str, chat: str, after: int) -> None:
        ws = await connect(
            url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=60, max_queue=64
        )
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        ack = json.loads(await asyncio.wait_for(ws.recv(), 60))
        if ack.get("type") != "connection_ack":
            raise RuntimeError(f"not acknowledged: {ack}")
        payload = {"query": EVENTS, "variables": {"chatId": chat, "after": after}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        self.sockets.append(ws)
        asyncio.get_running_loop().create_task(self._read(ws))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                at = time.perf_counter()
                message = json.loads(raw)
                if message.get("type") == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif message.get("type") == "next":
                    payload = message["payload"]
                    if payload.get("errors"):
                        self.errors.append(str(payload["errors"])[:200])
                        continue
                    event = (payload.get("data") or {}).get("chatEvents") or {}
                    added = event.get("__typename") == "MessageAdded"
                    if added and event["message"]["role"] == "USER":
                        self.arrived.setdefault(event["message"]["id"], at)
                elif message.get("type") in ("error", "complete"):
                    self.errors.append(str(message)[:200])
        except Exception as e:  # a closed socket is a finding, not a crash of the run
            self.errors.append(f"{type(e).__name__}: {e}"[:200])


async def live_subscriptions(http: httpx.AsyncClient) -> int:
    for line in (await http.get("/metrics")).text.splitlines():
        if line.startswith("parley_live_subscribers "):
            return int(float(line.split()[1]))
    return 0


async def wait_for_subscriptions(url: str, wanted: int, timeout: float) -> int:
    """The server's live subscription count once it reaches `wanted` (or at `timeout`)."""
    deadline = time.perf_counter() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while (live := await live_subscriptions(http)) < wanted:
            if time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.5)
    return live


async def run(opts: Options, server: Server, token: str, chats: list[tuple[str, int]]) -> dict:
    assert server.proc is not None
    subscribers = Subscribers()
    before = rss_kib(server.proc.pid)
    url = server.url.replace("http://", "ws://") + "/graphql"
    began = time.perf_counter()
    for start in range(0, len(chats), 100):  # connect in waves of 100
        await asyncio.gather(
            *(subscribers.open(url, token, c, p) for c, p in chats[start : start + 100])
        )
        if start and start % 1000 == 0:
            print(f"{start} subscribers connected", file=sys.stderr)
    connected_in = time.perf_counter() - began
    # Sent is not subscribed: wait until the server holds every subscription live (its
    # parley_live_subscribers gauge), so that delivery is measured on a settled server.
    live = await wait_for_subscriptions(server.url, len(chats), timeout=600)
    subscribed_in = time.perf_counter() - began
    await asyncio.sleep(2.0)
    after = rss_kib(server.proc.pid)
    acked: dict[str, float] = {}
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=60, headers=auth) as http:

        async def send(n: int, chat: str) -> None:
            variables = {"i": {"chatId": chat, "content": f"fanout {n}"}}
            r = await http.post("/graphql", json={"query": SEND, "variables": variables})
            at = time.perf_counter()
            body = r.json()
            if body.get("errors"):
                subscribers.errors.append(str(body["errors"])[:200])
                return
            acked[body["data"]["sendMessage"]["messageId"]] = at

        tasks = []
        t0 = time.perf_counter()
        for n in range(opts.messages):
            await asyncio.sleep(max(0.0, t0 + n / opts.rate - time.perf_counter()))
            chat = chats[n % len(chats)][0]
            tasks.append(asyncio.create_task(send(n, chat)))
        await asyncio.gather(*tasks)
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and any(m not in subscribers.arrived for m in acked):
        await asyncio.sleep(0.1)
    lags = sorted(subscribers.arrived[m] - t for m, t in acked.items() if m in subscribers.arrived)
    for ws in subscribers.sockets:
        await ws.close()
    return {
        "clients": len(chats),
        "connected_seconds": round(connected_in, 1),
        "subscribed_seconds": round(subscribed_in, 1),
        "live_subscriptions": live,
        "messages_acknowledged": len(acked),
        "delivered": len(lags),
        "dropped": len(acked) - len(lags),
        "delivery_ms_p50": round(1000 * statistics.median(lags), 1) if lags else None,
        "delivery_ms_p99": round(1000 * lags[max(0, int(len(lags) * 0.99) - 1)], 1)
        if lags
        else None,
        "delivery_ms_max": round(1000 * lags[-1], 1) if lags else None,
        "server_rss_kib_before": before,
        "server_rss_kib_connected": after,
        "kib_per_connection": round((after - before) / max(1, len(chats)), 1),
        "errors": subscribers.errors[:20],
        "error_count": len(subscribers.errors),
    }


async def start_chats(server: Server, token: str, count: int) -> list[tuple[str, int]]:
    """`count` chats, 32 startChat requests in flight."""
    auth = {"Authorization": f"Bearer {token}"}
    chats: list[tuple[str, int]] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=60, headers=auth) as http:
        gate = asyncio.Semaphore(32)

        async def one(n: int) -> None:
            async with gate:
                body = (
                    await http.post(
                        "/graphql",
                        json={"query": START, "variables": {"i": {"title": f"fanout {n}"}}},
                    )
                ).json()
            made = body["data"]["startChat"]
            chats.append((made["chatId"], made["position"]))
            if len(chats) % 1000 == 0:
                print(f"{len(chats)} chats started", file=sys.stderr)

        await asyncio.gather(*(one(n) for n in range(count)))
    return chats


def main(argv: Sequence[str]) -> int:
    opts = parse_options(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 4 * opts.clients + 1000))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # inherited by the server too
    env = {
        "PARLEY_ECHO_DELAY_MS": "1",
        "PARLEY_USER_OPERATIONS_PER_MINUTE": "0",
        "PARLEY_TENANT_OPERATIONS_PER_MINUTE": "0",
        "PARLEY_WS_MAX_CONNECTIONS_PER_USER": str(opts.clients + 10),
        "PARLEY_SUBSCRIPTION_RECHECK_SECONDS": str(opts.recheck_seconds),
    }
    started_at, load_at_start = now_iso(), os.getloadavg()
    with scratch_server("fanout", env, keep=opts.keep) as (server, _):
        tenant = server.create_tenant()
        admin = ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])
        assert admin.token is not None
        chats = asyncio.run(start_chats(server, admin.token, opts.clients))
        # A fresh token: starting 10,000 chats takes minutes of a 15-minute token's life.
        admin = ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])
        assert admin.token is not None
        figures = asyncio.run(run(opts, server, admin.token, chats))
    shown = {k: v for k, v in figures.items() if k != "errors"}
    for key, value in shown.items():
        print(f"{key:<26}{value}")
    payload = {
        "benchmark": "fanout",
        "started_at": started_at,
        "finished_at": now_iso(),
        "settings": {
            **asdict(opts),
            "server": "parley serve, one process, workers in process, echo replies; every "
            "subscriber is the same user (per-user WebSocket cap raised to fit)",
            "clients": "one asyncio process (websockets), connected in waves of 100",
        },
        "machine": {
            **machine_info(),
            "load_average_at_start": [round(x, 2) for x in load_at_start],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "packages": package_versions("websockets", "uvicorn", "strawberry-graphql"),
        "figures": figures,
    }
    print(f"results: {write_result('fanout', payload)}")
    return 1 if figures.get("dropped") or figures.get("error_count") else 0
