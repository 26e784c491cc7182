"""`python -m bench api`: the GraphQL API over HTTP with JWT auth, as deployed (uvicorn), next to
a peer and a limit serving the same work over the same rows, in the same run.

Three servers on loopback, on one scratch database of the benchmarks' PostgreSQL server:

- **parley**: a real `parley serve --single-process` (the followers in it), or `--serve-workers N`
  API processes and a worker process), echo replies, an EdDSA access token on every request;
- **peer**: a plain strawberry + FastAPI app written the way a team would, no auth
  (bench/peers.py): the same GraphQL documents, read from Parley's read model, `sendMessage`
  inserting one message row into a table shaped like it;
- **limit**: a bare FastAPI app: the same 50 rows as JSON, the insert of one row.

The peer and the limit run under uvicorn with as many processes as Parley has API processes.
Each scenario runs against each server in turn, with the same connections, threads and time:

- `messages page of 50`: `chat { messages(first: 50) }` of a chat with 60 messages;
- `insert one message`: `sendMessage` (Parley: through the command layer and the event store,
  durably, each connection's requests spread over chats of their own; the echo reply and the
  projections follow) / one INSERT;
- `chats(first: 20)`: the caller's chats (Parley only).

The load generator is `wrk` (`--load-generator httpx`: the asyncio/httpx one in this process).
One process alone is pinned to CPU 0 and the load generator to CPU 1 (`sched_setaffinity`),
PostgreSQL floats. Prints req/s, p50/p99, Parley's ratio to the peer and the limit, and the CPU
seconds each process used, and writes bench/results/api-<time>.json.
"""

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import psycopg

from bench import options, wrk
from bench.cpu import added, cpu_by_process, postmaster_pid
from bench.database import postgres_info
from bench.options import at_least_one, option
from bench.peers import LIMIT_TABLE, PEER_TABLE, POOL_SIZE, create_tables, peer_servers
from bench.report import Percentiles, Run, package_versions, print_columns, print_problems
from bench.server import (
    SEND_MESSAGE,
    START_CHAT,
    access_token,
    bearer,
    code_version,
    new_tenant,
    scratch_server,
)
from bench.wrk import LoadResult, Requests
from testbed.processes import Server, target_url

MESSAGES = """query($id: ID!) { chat(id: $id) { messages(first: 50) { nodes { id role content }
    pageInfo { hasNextPage } } } }"""
CHATS = "{ chats(first: 20) { nodes { id title } } }"
JSON = {"Content-Type": "application/json"}
PAGE, INSERT, CHATS_PAGE = "messages page of 50", "insert one message", "chats(first: 20)"
SERVERS = ("parley", "peer", "limit")


def load_generator(text: str) -> str:
    if text not in ("wrk", "httpx"):
        raise ValueError(f"--load-generator is wrk or httpx, not {text!r}")
    return text


@dataclass(frozen=True)
class Options:
    concurrency: int = option(32, "connections, each with one request in flight", at_least_one)
    seconds: float = option(15.0, "per scenario and server")
    warmup_seconds: float = option(3.0, "unrecorded, before each measured run")
    threads: int = option(2, "wrk's threads", at_least_one)
    load_generator: str = option("wrk", "wrk, or httpx (asyncio, in this process)", load_generator)
    keep: bool = options.keep("the scratch database and the servers' data directory")
    serve_workers: int = option(
        0,
        "API processes of `parley serve --workers N` (and its worker process; 0: `parley serve "
        "--single-process`, the followers inside); the peer and the limit run as many uvicorn "
        "processes (at least one)",
    )
    no_pin: bool = option(False, "do not pin a one-process server to CPU 0, the load to CPU 1")


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    pid: int
    processes: str


@dataclass
class Measured:
    scenario: str
    server: str
    load: LoadResult
    cpu_seconds: dict[str, float | None]
    settle_seconds: float | None = None
    """Parley: how long its followers (projections, echo replies, audit ledger) took after the
    run to reach the log head (their CPU then is not in `cpu_seconds`)."""
    settled_cpu_seconds: dict[str, float | None] | None = None
    """Parley: CPU seconds of the run and the settling after it together."""


@dataclass
class Scenario:
    name: str
    requests: dict[str, Callable[[], Requests]]
    """By server: what to send (called before each run: Parley's signs in afresh)."""


@dataclass
class Results:
    measured: list[Measured] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def of(self, scenario: str, server: str) -> Measured | None:
        return next(
            (m for m in self.measured if m.scenario == scenario and m.server == server), None
        )

    def ratio(self, scenario: str, server: str) -> float | None:
        """Parley's requests/s over `server`'s in `scenario`."""
        parley, other = self.of(scenario, "parley"), self.of(scenario, server)
        if parley is None or other is None or not other.load.rps:
            return None
        return parley.load.rps / other.load.rps


# -- the scenarios ------------------------------------------------------------------------------


def prepare(server: Server, opts: Options) -> tuple[list[Scenario], str]:
    """A tenant with `opts.concurrency` chats, the first with 60 messages; the scenarios; the
    long chat's id."""
    tenant, admin = new_tenant(server)
    chats = [
        admin.run(START_CHAT, {"i": {"title": f"api {n}"}})["startChat"]["chatId"]
        for n in range(opts.concurrency)
    ]
    long_chat = chats[0]
    for n in range(30):  # 30 messages and their 30 replies
        admin.run(SEND_MESSAGE, {"i": {"chatId": long_chat, "content": f"filler {n}"}})
    server.settled_head(120)

    def graphql(query: str, variables: list[dict[str, Any]], auth: bool) -> Callable[[], Requests]:
        def requests() -> Requests:
            headers = {**JSON, **(bearer(access_token(server, tenant)) if auth else {})}
            bodies = tuple(json.dumps({"query": query, "variables": v}) for v in variables)
            return Requests("POST", "/graphql", bodies, headers)

        return requests

    sends = [{"i": {"chatId": c, "content": "hi"}} for c in chats]
    path = f"/chats/{long_chat}/messages"
    scenarios = [
        Scenario(
            PAGE,
            {
                "parley": graphql(MESSAGES, [{"id": long_chat}], True),
                "peer": graphql(MESSAGES, [{"id": long_chat}], False),
                "limit": lambda: Requests("GET", f"{path}?first=50", ("",), {}),
            },
        ),
        Scenario(
            INSERT,
            {
                "parley": graphql(SEND_MESSAGE, sends, True),
                "peer": graphql(SEND_MESSAGE, sends, False),
                "limit": lambda: Requests(
                    "POST",
                    path,
                    tuple(json.dumps({"content": "hi"}) for _ in chats),
                    JSON,
                ),
            },
        ),
        Scenario(CHATS_PAGE, {"parley": graphql(CHATS, [{}], True)}),
    ]
    return scenarios, long_chat


def same_rows(targets: dict[str, Target], scenarios: list[Scenario]) -> list[str]:
    """Problems, if the servers' pages differ or an insert fails: each answers once first."""
    pages: dict[str, Any] = {}
    problems = []
    with httpx.Client(timeout=30) as http:
        for scenario in scenarios:
            for name, requests in scenario.requests.items():
                r = requests()
                answer = http.request(
                    r.method,
                    targets[name].url + r.path,
                    content=r.bodies[0] or None,
                    headers=dict(r.headers),
                )
                if answer.status_code != 200 or "errors" in answer.json():
                    problems.append(f"{name}, {scenario.name}: {answer.status_code} {answer.text}")
                elif scenario.name == PAGE:
                    body = answer.json()
                    page = body["data"]["chat"]["messages"] if "data" in body else body
                    has_next = page.get("pageInfo", {}).get("hasNextPage", page.get("hasNextPage"))
                    rows = [(n["role"].lower(), n["content"]) for n in page["nodes"]]
                    pages[name] = (rows, has_next)
    first = pages.get("parley")
    for name, (rows, has_next) in pages.items():
        if len(rows) != 50 or not has_next:
            problems.append(f"{name}'s page holds {len(rows)} rows, has next page: {has_next}")
        elif first is not None and rows != first[0]:
            row = next(i for i, (a, b) in enumerate(zip(rows, first[0], strict=True)) if a != b)
            problems.append(
                f"{name}'s page differs from Parley's at row {row}: {rows[row]} != {first[0][row]}"
            )
    return problems


# -- measuring ----------------------------------------------------------------------------------


async def drive_httpx(url: str, requests: Requests, connections: int, seconds: float) -> LoadResult:
    """`connections` workers, worker n sending `requests.bodies[n]` (in turn) again and again."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as http:
        stop = time.perf_counter() + seconds

        async def worker(n: int) -> None:
            nonlocal errors
            body = requests.bodies[n % len(requests.bodies)] or None
            while time.perf_counter() < stop:
                t = time.perf_counter()
                r = await http.request(
                    requests.method, requests.path, content=body, headers=dict(requests.headers)
                )
                latencies.append(time.perf_counter() - t)
                if r.status_code != 200 or b'"errors"' in r.content:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(connections)))
        elapsed = time.perf_counter() - began
    p = Percentiles.of(latencies)
    return LoadResult(len(latencies), elapsed, errors, p.p50, p.p99, p.max, p.mean)


def load(
    target: Target, requests: Requests, seconds: float, opts: Options, pinned: bool
) -> LoadResult:
    if opts.load_generator == "httpx":
        return asyncio.run(drive_httpx(target.url, requests, opts.concurrency, seconds))
    return wrk.run(
        target.url,
        requests,
        connections=opts.concurrency,
        threads=opts.threads,
        seconds=seconds,
        cpus=(1,) if pinned else (),
    )


def settle(server: Server) -> float | None:
    """Seconds until Parley's followers reach the log head (None: could not tell)."""
    began = time.perf_counter()
    try:
        server.settled_head(300)
    except (KeyError, AssertionError, httpx.HTTPError) as e:
        print(f"parley did not report settled followers: {e!r}", file=sys.stderr)
        return None
    return time.perf_counter() - began


def measure(
    targets: dict[str, Target],
    scenarios: list[Scenario],
    server: Server,
    postgres: int | None,
    opts: Options,
    pinned: bool,
) -> Results:
    results = Results()
    for scenario in scenarios:
        for name, requests in scenario.requests.items():
            target = targets[name]
            load(target, requests(), opts.warmup_seconds, opts, pinned)
            if name == "parley":
                settle(server)
            sending = requests()
            trees = {"server": target.pid, "postgres": postgres}
            with cpu_by_process(trees) as cpu:
                figures = load(target, sending, opts.seconds, opts, pinned)
            measured = Measured(scenario.name, name, figures, cpu)
            if name == "parley":
                with cpu_by_process(trees) as settling:
                    measured.settle_seconds = settle(server)
                measured.settled_cpu_seconds = added(cpu, settling)
            print(
                f"{scenario.name}, {name}: {figures.rps:,.0f} requests/s, p99 "
                f"{figures.p99_ms:,.1f} ms, {figures.errors} errors",
                file=sys.stderr,
            )
            if figures.errors:
                results.problems.append(f"{name}, {scenario.name}: {figures.errors} errors")
            results.measured.append(measured)
    return results


# -- the report ---------------------------------------------------------------------------------


def generator_cpu(m: Measured, opts: Options) -> float | None:
    """The load generator's CPU seconds: wrk, a child waited for; httpx, this process."""
    key = "benchmark process" if opts.load_generator == "httpx" else "ended children"
    return m.cpu_seconds.get(key)


def cpu_ratio(results: Results, scenario: str, server: str) -> float | None:
    """`server`'s CPU per request over Parley's in `scenario` (above 1: Parley costs less)."""
    parley, other = results.of(scenario, "parley"), results.of(scenario, server)
    if parley is None or other is None:
        return None
    ours, theirs = server_ms_per_request(parley), server_ms_per_request(other)
    return theirs / ours if ours and theirs else None


def server_ms_per_request(m: Measured) -> float | None:
    """The server's CPU milliseconds per request answered (Parley's: the settling after the run
    included): what a request costs, whatever else the machine was doing."""
    server = (m.settled_cpu_seconds or m.cpu_seconds).get("server")
    return round(1000 * server / m.load.requests, 2) if server and m.load.requests else None


def print_report(results: Results, opts: Options) -> None:
    def seconds(value: float | None) -> str:
        return f"{value:.1f}" if value is not None else "-"

    rows = []
    for m in results.measured:
        ratio = results.ratio(m.scenario, m.server) if m.server != "parley" else None
        cpu = m.cpu_seconds
        rows.append(
            (
                m.scenario,
                m.server,
                f"{m.load.requests:,}",
                str(m.load.errors),
                f"{m.load.rps:,.0f}",
                f"{m.load.p50_ms:,.1f}",
                f"{m.load.p99_ms:,.1f}",
                f"{ratio:.2f}x" if ratio is not None else "",
                seconds(cpu.get("server")),
                seconds(server_ms_per_request(m)),
                seconds(generator_cpu(m, opts)),
                seconds(cpu.get("postgres")),
                seconds(cpu.get("machine")),
                seconds(m.settle_seconds),
            )
        )
    print_columns(
        (
            "scenario",
            "server",
            "requests",
            "errors",
            "req/s",
            "p50 ms",
            "p99 ms",
            "parley/this",
            "CPU s: server",
            "ms/req",
            opts.load_generator,
            "postgres",
            "machine",
            "settle s",
        ),
        rows,
        left=(0, 1),
    )
    print(
        f"\nCPU seconds during each {opts.seconds:g} s run: the server's processes (children "
        "included; ms/req: per request answered, Parley's with its settling after the run), "
        f"the load generator ({opts.load_generator}), "
        "all of PostgreSQL's processes, the whole machine. settle s: Parley's followers catching "
        "up after the run (not in its CPU figure)."
    )
    print_targets(target_figures(results))


def target_figures(results: Results) -> list[dict[str, Any]]:
    """Issue 16's targets for this benchmark: the figure, what was measured, the target, met."""
    goals = []
    for scenario in (PAGE, INSERT):
        parley = results.of(scenario, "parley")
        to_peer, to_limit = results.ratio(scenario, "peer"), results.ratio(scenario, "limit")
        if parley is None or to_peer is None or to_limit is None:
            continue
        at_least = ">=", None
        figures = [
            ("parley / limit", to_limit, (">=", 0.5) if scenario == PAGE else at_least),
            ("parley / peer", to_peer, (">=", 1.0) if scenario == INSERT else at_least),
            ("req/s", parley.load.rps, (">=", 1000) if scenario == INSERT else at_least),
            ("p99 ms", parley.load.p99_ms, ("<", 50)),
        ]
        # Requests/s follow whatever else the machine runs; CPU per request much less so.
        for other in ("peer", "limit"):
            cost = cpu_ratio(results, scenario, other)
            if cost is not None:
                figures.append((f"{other} / parley server CPU per request", cost, at_least))
        for figure, measured, (op, bound) in figures:
            met = None if bound is None else measured >= bound if op == ">=" else measured < bound
            goals.append(
                {
                    "scenario": scenario,
                    "figure": figure,
                    "measured": round(measured, 3),
                    "target": f"{op} {bound:g}" if bound is not None else None,
                    "met": met,
                }
            )
    return goals


def print_targets(goals: list[dict[str, Any]]) -> None:
    for goal in goals:
        verdict = f"target {goal['target']}: {'met' if goal['met'] else 'MISSED'}"
        print(
            f"{goal['scenario']}, parley {goal['figure']}: {goal['measured']:,}"
            + (f" ({verdict})" if goal["target"] else "")
        )


def main(argv: Sequence[str]) -> int:
    opts = options.parse(Options, argv, "api", __doc__)
    if opts.load_generator == "wrk":
        wrk.wrk_path()  # before anything is started: how to install it, when it is missing
    env = {
        "PARLEY_ECHO_DELAY_MS": "0",
        # The benchmark is one user: the per-user and per-tenant limits would measure themselves.
        "PARLEY_USER_OPERATIONS_PER_MINUTE": "0",
        "PARLEY_TENANT_OPERATIONS_PER_MINUTE": "0",
    }
    run = Run("api")
    # `parley serve` runs one API process per core and a worker process unless told otherwise.
    args = ("--workers", str(opts.serve_workers)) if opts.serve_workers else ("--single-process",)
    processes = max(1, opts.serve_workers)
    # Pinning one process pins none of its children: a multi-process server floats.
    pin = (os.cpu_count() or 1) >= 2 and not opts.no_pin and not opts.serve_workers
    parley_processes = (
        f"parley serve --workers {opts.serve_workers}: {opts.serve_workers} API processes and a "
        "worker process (followers, echo replies)"
        if opts.serve_workers
        else "parley serve --single-process: one uvicorn process, followers and echo replies in it"
    )
    peers_processes = (
        f"uvicorn --workers {processes}: "
        + ("one process" if processes == 1 else f"{processes} processes and their supervisor")
        + f", a pool of up to {POOL_SIZE} connections each"
    )
    print(
        f"parley: {parley_processes}; peer and limit: {peers_processes} (as many processes as "
        "Parley's API processes)"
        + ("; each pinned to CPU 0, the load generator to CPU 1" if pin else "; nothing pinned"),
        file=sys.stderr,
    )
    with scratch_server("api", env, keep=opts.keep, args=args) as (server, target):
        url = target_url(target)
        create_tables(target.conninfo())
        postgres_settings = postgres_info(target)
        with psycopg.connect(target.conninfo()) as conn:
            backend = conn.execute("SELECT pg_backend_pid()").fetchone()
        postgres = postmaster_pid(int(backend[0])) if backend else None
        scenarios, _ = prepare(server, opts)
        with peer_servers(url, processes, keep=opts.keep) as (peer, limit):
            assert server.proc is not None
            targets = {
                "parley": Target("parley", server.url, server.proc.pid, parley_processes),
                "peer": Target("peer", peer.url, peer.pid, peers_processes),
                "limit": Target("limit", limit.url, limit.pid, peers_processes),
            }
            if pin:
                for t in targets.values():
                    os.sched_setaffinity(t.pid, {0})
                os.sched_setaffinity(0, {1})
            problems = same_rows(targets, scenarios)
            results = measure(targets, scenarios, server, postgres, opts, pin)
            results.problems[:0] = problems
    print_report(results, opts)
    print(run.load_line())
    run.record(
        {
            **asdict(opts),
            "pinned": "each server on CPU 0, the load generator on CPU 1" if pin else "not pinned",
            "auth": "parley: an EdDSA access token per request (Authorization: Bearer); "
            "peer and limit: none",
        },
        packages=package_versions(
            "uvicorn", "strawberry-graphql", "fastapi", "psycopg", "psycopg-pool", "httpx"
        ),
        load_generator=wrk.version() if opts.load_generator == "wrk" else "httpx, in process",
        code=code_version(),
        servers={
            "postgres": postgres_settings,
            "parley": parley_processes,
            "peer": f"bench/peers.py peer_app (strawberry + FastAPI, no auth), {peers_processes}; "
            f"inserts into {PEER_TABLE}",
            "limit": f"bench/peers.py limit_app (bare FastAPI), {peers_processes}; "
            f"inserts into {LIMIT_TABLE}",
        },
        scenarios=[
            {
                "scenario": m.scenario,
                "server": m.server,
                **asdict(m.load),
                "requests_per_second": round(m.load.rps, 1),
                "parley_ratio": results.ratio(m.scenario, m.server)
                if m.server != "parley"
                else None,
                "cpu_seconds": {**m.cpu_seconds, "load generator": generator_cpu(m, opts)},
                "cpu_seconds_with_settling": m.settled_cpu_seconds,
                "server_cpu_ms_per_request": server_ms_per_request(m),
                "settle_seconds": m.settle_seconds,
            }
            for m in results.measured
        ],
        targets=target_figures(results),
        problems=results.problems,
    )
    return 1 if print_problems(results.problems) else 0
