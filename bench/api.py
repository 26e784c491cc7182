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

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from bench import options
from bench.options import at_least_one, option
from bench.report import Lags, Run, package_versions, print_columns
from bench.server import SEND_MESSAGE, START_CHAT, bearer, new_tenant, scratch_server
from testbed.processes import Server

MESSAGES = """query($id: ID!) { chat(id: $id) { messages(first: 50) { nodes { id role content }
    pageInfo { hasNextPage } } } }"""
CHATS = "{ chats(first: 20) { nodes { id title } } }"


@dataclass(frozen=True)
class Options:
    concurrency: int = option(32, "requests in flight", at_least_one)
    seconds: float = option(15.0, "per scenario")
    keep: bool = options.keep("the scratch database and the server's data directory")
    serve_workers: int = option(
        0, "API processes of `parley serve --workers N` (0: one process with the followers)"
    )
    no_pin: bool = option(False, "do not pin the server to CPU 0 and this process to CPU 1")


@dataclass
class Scenario:
    name: str
    requests: int
    errors: int
    seconds: float
    p50_ms: float | None
    p99_ms: float | None

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
    latency = Lags.of(latencies, 2)
    return Scenario(name, len(latencies), errors, seconds, latency.p50, latency.p99)


def prepare(server: Server, opts: Options) -> dict[str, list[dict[str, Any]]]:
    _, admin = new_tenant(server)
    auth = bearer(admin.token)
    chats = [
        admin.run(START_CHAT, {"i": {"title": f"api {n}"}})["startChat"]["chatId"]
        for n in range(opts.concurrency)
    ]
    long_chat = chats[0]
    for n in range(30):  # 30 messages and their 30 replies
        admin.run(SEND_MESSAGE, {"i": {"chatId": long_chat, "content": f"filler {n}"}})
    return {
        "sendMessage": [
            {
                "json": {"query": SEND_MESSAGE, "variables": {"i": {"chatId": c, "content": "hi"}}},
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
    opts = options.parse(Options, argv, "api", __doc__)
    env = {
        "PARLEY_ECHO_DELAY_MS": "0",
        # The benchmark is one user: the per-user and per-tenant limits would measure themselves.
        "PARLEY_USER_OPERATIONS_PER_MINUTE": "0",
        "PARLEY_TENANT_OPERATIONS_PER_MINUTE": "0",
    }
    run = Run("api")
    pinned = False
    args = ("--workers", str(opts.serve_workers)) if opts.serve_workers else ()
    with scratch_server("api", env, keep=opts.keep, args=args) as (server, _):
        # Pinning one process pins none of its children: a multi-process server floats.
        if server.proc is not None and (os.cpu_count() or 1) >= 2 and not opts.no_pin and not args:
            os.sched_setaffinity(server.proc.pid, {0})
            os.sched_setaffinity(0, {1})
            pinned = True
        scenarios = prepare(server, opts)
        results = asyncio.run(measure(server, scenarios, opts))
    print_columns(
        ("scenario", "requests", "errors", "req/s", "p50 ms", "p99 ms"),
        [
            (
                r.name,
                f"{r.requests:,}",
                str(r.errors),
                f"{r.rps:,.0f}",
                str(r.p50_ms),
                str(r.p99_ms),
            )
            for r in results
        ],
    )
    run.record(
        {
            **asdict(opts),
            "pinned": "server on CPU 0, load generator on CPU 1" if pinned else "not pinned",
            "server": f"parley serve --workers {opts.serve_workers} (API processes and a worker "
            "process, echo replies)"
            if opts.serve_workers
            else "parley serve (one uvicorn process, workers in process, echo replies)",
            "auth": "an EdDSA access token per request (Authorization: Bearer)",
        },
        packages=package_versions("uvicorn", "strawberry-graphql", "fastapi", "httpx"),
        scenarios=[{**asdict(r), "requests_per_second": round(r.rps, 1)} for r in results],
    )
    return 1 if any(r.errors for r in results) else 0
