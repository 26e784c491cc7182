"""`python -m bench api`: the GraphQL API over HTTP with JWT auth, as deployed (uvicorn).

A real `parley serve` on a scratch database; a load generator in this process (asyncio + httpx,
keep-alive connections, one access token per simulated user) runs each scenario for a fixed
time at a fixed number of concurrent requests:

- `sendMessage`: each in-flight request writes to a chat of its own (the echo model answers
  every message in the same process, as deployed);
- `messages(first: 50)`: a chat with 60 messages, read page by page;
- `chats(first: 20)`: the caller's chats.

On a 2-core machine server and load generator cannot have a core each and PostgreSQL needs one
too: the server process is pinned to CPU 0 and this process to CPU 1 (`sched_setaffinity`),
PostgreSQL floats. Prints requests/s and p50/p99 latency per scenario and writes
bench/results/api-<time>.json.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from bench.report import machine_info, now_iso, package_versions, write_result
from bench.server import scratch_server
from testbed.client import ApiClient
from testbed.processes import Server

SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId position } }"
START = "mutation($i: StartChatInput!) { startChat(input: $i) { chatId position } }"
MESSAGES = """query($id: ID!) { chat(id: $id) { messages(first: 50) { nodes { id role content }
    pageInfo { hasNextPage } } } }"""
CHATS = "{ chats(first: 20) { nodes { id title } } }"


@dataclass
class Options:
    concurrency: int
    seconds: float
    keep: bool


def parse_options(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bench api", description=__doc__)
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--seconds", type=float, default=15.0, help="per scenario")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    a = parser.parse_args(argv)
    return Options(a.concurrency, a.seconds, a.keep)


@dataclass
class Scenario:
    name: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


async def drive(
    http: httpx.AsyncClient, name: str, bodies: list[dict[str, Any]], opts: Options
) -> Scenario:
    """`opts.concurrency` workers, worker n posting `bodies[n]` (a callable's result) again and
    again for `opts.seconds`."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + opts.seconds

    async def worker(n: int) -> None:
        nonlocal errors
        body = bodies[n % len(bodies)]
        while time.perf_counter() < stop:
            t = time.perf_counter()
            r = await http.post("/graphql", json=body["json"], headers=body["headers"])
            latencies.append(time.perf_counter() - t)
            if r.status_code != 200 or r.json().get("errors"):
                errors += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(opts.concurrency)))
    seconds = time.perf_counter() - began
    ordered = sorted(latencies)
    return Scenario(
        name,
        len(ordered),
        errors,
        seconds,
        round(1000 * statistics.median(ordered), 2),
        round(1000 * ordered[max(0, int(len(ordered) * 0.99) - 1)], 2),
    )


def prepare(server: Server, opts: Options) -> dict[str, list[dict[str, Any]]]:
    tenant = server.create_tenant()
    admin = ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])
    auth = {"Authorization": f"Bearer {admin.token}"}
    chats = [
        admin.run(START, {"i": {"title": f"api {n}"}})["startChat"]["chatId"]
        for n in range(opts.concurrency)
    ]
    long_chat = chats[0]
    for n in range(30):  # 30 messages and their 30 replies
        admin.run(SEND, {"i": {"chatId": long_chat, "content": f"filler {n}"}})
    return {
        "sendMessage": [
            {
                "json": {"query": SEND, "variables": {"i": {"chatId": c, "content": "hi"}}},
                "headers": auth,
            }
            for c in chats
        ],
        "messages(first: 50)": [
            {"json": {"query": MESSAGES, "variables": {"id": long_chat}}, "headers": auth}
        ],
        "chats(first: 20)": [{"json": {"query": CHATS}, "headers": auth}],
    }


async def measure(server: Server, scenarios: dict[str, list[dict[str, Any]]], opts: Options):  # type: ignore[no-untyped-def]
    limits = httpx.Limits(
        max_connections=opts.concurrency, max_keepalive_connections=opts.concurrency
    )
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=60) as http:
        results: list[Scenario] = []
        for name, bodies in scenarios.items():
            await drive(http, f"{name} (warm-up)", bodies, Options(opts.concurrency, 2.0, False))
            result = await drive(http, name, bodies, opts)
            print(f"{name}: {result.rps:,.0f} requests/s", file=sys.stderr)
            results.append(result)
        return results


def main(argv: Sequence[str]) -> int:
    opts = parse_options(argv)
    env = {
        "PARLEY_ECHO_DELAY_MS": "0",
        # The benchmark is one user: the per-user and per-tenant limits would measure themselves.
        "PARLEY_USER_OPERATIONS_PER_MINUTE": "0",
        "PARLEY_TENANT_OPERATIONS_PER_MINUTE": "0",
    }
    started_at, load_at_start = now_iso(), os.getloadavg()
    pinned = False
    with scratch_server("api", env, keep=opts.keep) as (server, _):
        if server.proc is not None and (os.cpu_count() or 1) >= 2:
            os.sched_setaffinity(server.proc.pid, {0})
            os.sched_setaffinity(0, {1})
            pinned = True
        scenarios = prepare(server, opts)
        results = asyncio.run(measure(server, scenarios, opts))
    print(f"{'scenario':<22}{'requests':>10}{'errors':>8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for r in results:
        print(
            f"{r.name:<22}{r.requests:>10,}{r.errors:>8}{r.rps:>10,.0f}{r.p50_ms:>10}{r.p99_ms:>10}"
        )
    load_at_end = os.getloadavg()
    payload = {
        "benchmark": "api",
        "started_at": started_at,
        "finished_at": now_iso(),
        "settings": {
            **asdict(opts),
            "pinned": "server on CPU 0, load generator on CPU 1" if pinned else "not pinned",
            "server": "parley serve (one uvicorn process, workers in process, echo replies)",
            "auth": "an EdDSA access token per request (Authorization: Bearer)",
        },
        "machine": {
            **machine_info(),
            "load_average_at_start": [round(x, 2) for x in load_at_start],
            "load_average_at_end": [round(x, 2) for x in load_at_end],
        },
        "packages": package_versions("uvicorn", "strawberry-graphql", "fastapi", "httpx"),
        "scenarios": [{**asdict(r), "requests_per_second": round(r.rps, 1)} for r in results],
    }
    print(f"results: {write_result('api', payload)}")
    return 1 if any(r.errors for r in results) else 0
