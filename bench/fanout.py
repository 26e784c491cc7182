"""`python -m bench fanout`: many WebSocket subscribers on one API process.

A real `parley serve --workers 1` (one API process, the one measured, and the worker process
with the followers beside it; echo replies) on a scratch database. N clients
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

import asyncio
import json
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection

from bench import options
from bench.options import at_least_one, option
from bench.report import Lags, Run, package_versions
from bench.server import (
    SEND_MESSAGE,
    START_CHAT,
    access_token,
    bearer,
    graphql,
    live_subscribers,
    scratch_server,
    subscribe,
)
from testbed.processes import Server, children_of

EVENTS = """subscription($chatId: ID!, $after: Int) { chatEvents(chatId: $chatId,
    afterPosition: $after) { __typename ... on MessageAdded { message { id role } } } }"""


@dataclass(frozen=True)
class Options:
    clients: int = option(1000, "WebSocket subscribers", at_least_one)
    messages: int = options.messages(500)
    rate: float = options.rate(50.0)
    keep: bool = options.keep("the scratch database and the server's data directory")
    recheck_seconds: float = option(
        30.0,
        "the server's PARLEY_SUBSCRIPTION_RECHECK_SECONDS (each subscription re-checks its "
        "caller this often)",
    )


def api_process(server: Server) -> int:
    """The one API process of `parley serve --workers 1` (a child of the supervisor)."""
    assert server.proc is not None
    (pid,) = children_of(server.proc.pid, b"--multiprocessing-fork")
    return pid


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

    async def open(self, server: Server, token: str, chat: str, after: int) -> None:
        variables = {"chatId": chat, "after": after}
        ws = await subscribe(server, token, EVENTS, variables, timeout=60, max_queue=64)
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


async def wait_for_subscriptions(url: str, wanted: int, timeout: float) -> int:
    """The server's live subscription count once it reaches `wanted` (or at `timeout`)."""
    deadline = time.perf_counter() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while (live := await live_subscribers(http)) < wanted:
            if time.perf_counter() > deadline:
                break
            await asyncio.sleep(0.5)
    return live


async def measure(opts: Options, server: Server, token: str, chats: list[tuple[str, int]]) -> dict:
    assert server.proc is not None
    subscribers = Subscribers()
    api = api_process(server)
    before = rss_kib(api)
    began = time.perf_counter()
    for start in range(0, len(chats), 100):  # connect in waves of 100
        await asyncio.gather(
            *(subscribers.open(server, token, c, p) for c, p in chats[start : start + 100])
        )
        if start and start % 1000 == 0:
            print(f"{start} subscribers connected", file=sys.stderr)
    connected_in = time.perf_counter() - began
    # Sent is not subscribed: wait until the server holds every subscription live (its
    # parley_live_subscribers gauge), so that delivery is measured on a settled server.
    live = await wait_for_subscriptions(server.url, len(chats), timeout=600)
    subscribed_in = time.perf_counter() - began
    await asyncio.sleep(2.0)
    after = rss_kib(api)
    acked: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=server.url, timeout=60, headers=bearer(token)) as http:

        async def send(n: int, chat: str) -> None:
            variables = {"i": {"chatId": chat, "content": f"fanout {n}"}}
            r = await http.post("/graphql", json={"query": SEND_MESSAGE, "variables": variables})
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
    lags = [subscribers.arrived[m] - t for m, t in acked.items() if m in subscribers.arrived]
    delivery = Lags.of(lags, 1)
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
        "delivery_ms_p50": delivery.p50,
        "delivery_ms_p99": delivery.p99,
        "delivery_ms_max": delivery.max,
        "server_rss_kib_before": before,
        "server_rss_kib_connected": after,
        "kib_per_connection": round((after - before) / max(1, len(chats)), 1),
        "errors": subscribers.errors[:20],
        "error_count": len(subscribers.errors),
    }


async def start_chats(server: Server, token: str, count: int) -> list[tuple[str, int]]:
    """`count` chats, 32 startChat requests in flight."""
    chats: list[tuple[str, int]] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        gate = asyncio.Semaphore(32)

        async def one(n: int) -> None:
            async with gate:
                data = await graphql(http, token, START_CHAT, {"i": {"title": f"fanout {n}"}})
            made = data["startChat"]
            chats.append((made["chatId"], made["position"]))
            if len(chats) % 1000 == 0:
                print(f"{len(chats)} chats started", file=sys.stderr)

        await asyncio.gather(*(one(n) for n in range(count)))
    return chats


def main(argv: Sequence[str]) -> int:
    opts = options.parse(Options, argv, "fanout", __doc__)
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
    run = Run("fanout")
    # One API process holds every subscriber (its RSS is measured); the followers run in the
    # worker process.
    args = ("--workers", "1")
    with scratch_server("fanout", env, keep=opts.keep, args=args) as (server, _):
        tenant = server.create_tenant()
        chats = asyncio.run(start_chats(server, access_token(server, tenant), opts.clients))
        # A fresh token: starting 10,000 chats takes minutes of a 15-minute token's life.
        figures = asyncio.run(measure(opts, server, access_token(server, tenant), chats))
    shown = {k: v for k, v in figures.items() if k != "errors"}
    for key, value in shown.items():
        print(f"{key:<26}{value}")
    run.record(
        {
            **asdict(opts),
            "server": "parley serve --workers 1: one API process (measured) and the worker "
            "process, echo replies; every subscriber is the same user (per-user WebSocket cap "
            "raised to fit)",
            "clients": "one asyncio process (websockets), connected in waves of 100",
        },
        packages=package_versions("websockets", "uvicorn", "strawberry-graphql"),
        figures=figures,
    )
    return 1 if figures.get("dropped") or figures.get("error_count") else 0
