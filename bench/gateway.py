"""The model gateway's latency as a subscribed GraphQL client sees it: time to first token and
total time of a reply at 1, 10 and 100 concurrent chats, next to a baseline in the same run: the
bare `openai` SDK calling the same local OpenAI-protocol server.

Starts a local server that streams a fixed reply (testbed/llm_fakes, in a process of its own) and a
real `parley serve` (workers in process, a scratch database) whose OpenAI provider points at it.
Each client starts a chat, subscribes to its `chatEvents` over WebSocket, sends one message over
HTTP and times the first `ReplyDelta` and the assistant's `MessageAdded`; the baseline times the
first content chunk and the end of the same stream through the SDK. See bench/README.md.
"""

import asyncio
import json
import logging
import math
import multiprocessing
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import openai
from websockets.asyncio.client import ClientConnection

from bench import options
from bench.database import postgres_info
from bench.options import at_least, at_least_one, concurrency_steps, option
from bench.report import Percentiles, Run, package_versions, print_columns, print_problems
from bench.server import (
    SEND_MESSAGE,
    START_CHAT,
    access_token,
    graphql,
    live_subscribers,
    new_tenant,
    scratch_server,
    subscribe,
)
from infra.settings import Settings
from testbed.processes import ROOT, Server

log = logging.getLogger("bench.gateway")

DESCRIPTION = (
    "Time to first token and total time of a reply through Parley (a subscribed GraphQL client) "
    "vs the bare openai SDK, against a local OpenAI-protocol server."
)

MODEL = "openai/gpt-4o-mini"
UPSTREAM_MODEL = "gpt-4o-mini"
SETTINGS = """mutation($i: UpdateTenantSettingsInput!) { updateTenantSettings(input: $i) {
    position } }"""
CHAT_EVENTS = """subscription($chatId: ID!, $after: Int) {
  chatEvents(chatId: $chatId, afterPosition: $after) {
    __typename
    ... on ReplyDelta { delta }
    ... on MessageAdded { message { role content provider finishReason timeToFirstTokenMs
                                    latencyMs } }
  }
}"""


@dataclass(frozen=True)
class Options:
    concurrency: tuple[int, ...] = option(
        (1, 10, 100), "concurrent chats per step, comma-separated", concurrency_steps
    )
    rounds: int = option(5, "measured rounds per step (at least)", at_least_one)
    min_samples: int = option(
        100, "more rounds at small steps until each path has this many replies", at_least_one
    )
    warmup_rounds: int = option(1, "unrecorded rounds before each step", at_least(0, int))
    chunks: int = option(40, "content chunks of the fixed reply", at_least_one)
    first_token_ms: float = option(
        50.0, "upstream delay before the first chunk", at_least(0, float)
    )
    chunk_delay_ms: float = option(5.0, "upstream delay between chunks", at_least(0, float))
    responder_concurrency: int = option(
        Settings.model_fields["responder_concurrency"].default,
        "PARLEY_RESPONDER_CONCURRENCY of the server: replies generated at once "
        "(default: the server's default)",
        at_least_one,
    )
    timeout: float = option(120.0, "seconds a round may take before it fails")
    keep: bool = options.keep("the database and the server's data directory")

    def rounds_at(self, chats: int) -> int:
        """Measured rounds at `chats` chats: `rounds`, more if that makes too few samples."""
        return max(self.rounds, math.ceil(self.min_samples / chats))

    def pieces(self) -> list[str]:
        """The fixed reply, one content chunk per piece."""
        return [f" word{n}" for n in range(self.chunks)]


# -- figures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One reply, in seconds from the moment its message was sent."""

    ttft: float
    """To the first piece of text: a `ReplyDelta` / the SDK's first content chunk."""
    total: float
    """To the whole reply: the assistant's `MessageAdded` / the end of the SDK's stream."""
    ack: float | None = None
    """Parley: to the `sendMessage` response."""
    provider_ttft: float | None = None
    """Parley: `timeToFirstTokenMs` as the server recorded it (provider call to first token)."""
    reply: float | None = None
    """Parley: `latencyMs` as the server recorded it (picking up the message to the last token)."""


@dataclass(frozen=True)
class CpuTimes:
    """CPU seconds used so far by the parts of the benchmark, and by the whole machine."""

    client: float
    server: float
    upstream: float
    machine_busy: float
    at: float

    @classmethod
    def now(cls, server_pid: int, upstream_pid: int) -> "CpuTimes":
        return cls(
            time.process_time(),
            _process_cpu(server_pid),
            _process_cpu(upstream_pid),
            _machine_busy(),
            time.perf_counter(),
        )


def _process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) from /proc; 0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> float:
    """CPU seconds every core spent on anything but idling, since boot."""
    try:
        cpu = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(t) for t in cpu]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuUse:
    """CPU used during the measured rounds of one path, summed over them."""

    PARTS = ("client", "server", "upstream", "machine")
    wall: float = 0.0
    client: float = 0.0
    server: float = 0.0
    upstream: float = 0.0
    machine: float = 0.0

    def add(self, before: CpuTimes, after: CpuTimes) -> None:
        self.wall += after.at - before.at
        self.client += after.client - before.client
        self.server += after.server - before.server
        self.upstream += after.upstream - before.upstream
        self.machine += after.machine_busy - before.machine_busy

    def cores(self) -> dict[str, float]:
        """Average cores busy: CPU seconds per second of wall time."""
        if self.wall <= 0:
            return {}
        return {p: round(getattr(self, p) / self.wall, 2) for p in self.PARTS}

    def figures(self, replies: int) -> dict[str, Any]:
        return {
            "wall_seconds": round(self.wall, 3),
            "cpu_seconds": {p: round(getattr(self, p), 3) for p in self.PARTS},
            "cores_busy": self.cores(),
            "cpu_ms_per_reply": {
                p: round(getattr(self, p) / replies * 1000, 2) if replies else None
                for p in self.PARTS
            },
        }


@dataclass
class Step:
    """Everything measured at one level of concurrency."""

    chats: int
    rounds: int
    parley: list[Sample] = field(default_factory=list)
    baseline: list[Sample] = field(default_factory=list)
    parley_cpu: CpuUse = field(default_factory=CpuUse)
    baseline_cpu: CpuUse = field(default_factory=CpuUse)
    rounds_done: int = 0

    def added(self) -> dict[str, float]:
        """Parley minus the baseline, in milliseconds."""
        out = {}
        for name in ("ttft", "total"):
            mine = Percentiles.of([getattr(s, name) for s in self.parley])
            base = Percentiles.of([getattr(s, name) for s in self.baseline])
            out[f"{name}_p50"] = round(mine.p50 - base.p50, 2)
            out[f"{name}_p99"] = round(mine.p99 - base.p99, 2)
        return out

    def figures(self) -> dict[str, Any]:
        def of(samples: list[Sample], name: str) -> dict[str, Any]:
            values = [v for s in samples if (v := getattr(s, name)) is not None]
            return Percentiles.of(values).figures()

        return {
            "concurrent_chats": self.chats,
            "rounds": self.rounds_done,
            "parley": {
                "ttft_ms": of(self.parley, "ttft"),
                "total_ms": of(self.parley, "total"),
                "send_message_response_ms": of(self.parley, "ack"),
                "server_recorded_provider_ttft_ms": of(self.parley, "provider_ttft"),
                "server_recorded_reply_latency_ms": of(self.parley, "reply"),
                **self.parley_cpu.figures(len(self.parley)),
            },
            "baseline": {
                "ttft_ms": of(self.baseline, "ttft"),
                "total_ms": of(self.baseline, "total"),
                **self.baseline_cpu.figures(len(self.baseline)),
            },
            "added_ms": self.added(),
        }


# -- the upstream: a local OpenAI-protocol server, in a process of its own ---------------------


def serve_upstream(pieces: list[str], first_delay: float, delay: float, ready: Connection) -> None:
    """Serve the fixed reply to every request until terminated (the upstream process)."""
    from testbed.llm_fakes import openai as oai
    from testbed.llm_fakes import server

    # Up to 100 clients connect at once; the default listen backlog (5) would drop their SYNs
    # and add the kernel's one-second retransmit to some of them.
    server._QuietServer.request_queue_size = 1024
    reply = oai.chat_stream(pieces, first_delay=first_delay, delay=delay)
    fake = server.FakeProviderServer(default=lambda _request: reply).start()
    ready.send(fake.url)
    threading.Event().wait()


class Upstream:
    """The upstream process: the load generator and the server do not pay for its threads in
    their own interpreters (the GIL)."""

    def __init__(self, opts: Options) -> None:
        context = multiprocessing.get_context("spawn")
        mine, theirs = context.Pipe()
        self._process = context.Process(
            target=serve_upstream,
            args=(opts.pieces(), opts.first_token_ms / 1000, opts.chunk_delay_ms / 1000, theirs),
            name="bench-gateway-upstream",
            daemon=True,
        )
        self._process.start()
        if not mine.poll(30):
            self.stop()
            raise SystemExit("the local OpenAI-protocol server did not start")
        self.url: str = mine.recv()
        self.pid = self._process.pid or 0

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(10)


# -- Parley: one client -------------------------------------------------------------------------


@dataclass
class Subscriber:
    """One client's `chatEvents` subscription, on a WebSocket of its own."""

    ws: ClientConnection
    chat_id: str
    first_delta_at: float | None = None
    done_at: float | None = None
    deltas: list[str] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    error: str | None = None
    reader: "asyncio.Task[None] | None" = None

    @classmethod
    async def open(cls, server: Server, token: str, chat: dict[str, Any]) -> "Subscriber":
        # afterPosition: the server waits until the chat is in its read models before it checks
        # that the caller may see it.
        variables = {"chatId": chat["chatId"], "after": chat["position"]}
        ws = await subscribe(server, token, CHAT_EVENTS, variables, timeout=30)
        sub = cls(ws, chat["chatId"])
        sub.reader = asyncio.create_task(sub._read())
        return sub

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                at = time.perf_counter()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                elif kind == "next":
                    payload = message["payload"]
                    if payload.get("errors"):
                        self.error = f"subscription error: {payload['errors']}"
                        return
                    event = payload["data"]["chatEvents"]
                    if event["__typename"] == "ReplyDelta":
                        if self.first_delta_at is None:
                            self.first_delta_at = at
                        self.deltas.append(event["delta"])
                    elif (
                        event["__typename"] == "MessageAdded"
                        and event["message"]["role"] == "ASSISTANT"
                    ):
                        self.done_at, self.reply = at, event["message"]
                        return
                else:
                    self.error = f"the subscription ended: {message}"
                    return
            self.error = "the WebSocket closed before the reply"
        except Exception as e:  # reported as a problem of the round, not raised into the loop
            self.error = f"{type(e).__name__}: {e}"

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        try:
            await self.ws.send(json.dumps({"id": "1", "type": "complete"}))
            await self.ws.close()
        except Exception:
            pass  # already closed


@dataclass
class Gateway:
    """The running `parley serve` and what the clients need to talk to it."""

    server: Server
    http: httpx.AsyncClient
    token: str
    expected: str
    """The fixed reply."""
    upstream_pid: int

    def cpu_now(self) -> CpuTimes:
        return CpuTimes.now(self.server.proc.pid if self.server.proc else 0, self.upstream_pid)

    async def wait_for_subscribers(self, count: int, timeout: float) -> None:
        """Until the server has registered exactly `count` subscriptions (all of this round)."""
        deadline = time.monotonic() + timeout
        while (seen := await live_subscribers(self.http)) != count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{seen} subscriptions registered, expected {count}")
            await asyncio.sleep(0.02)

    async def settle(self, timeout: float) -> None:
        """Until every follower is at the log head and no reply is in flight: each round starts
        with an idle server, and the baseline does not share the machine with Parley's work."""
        await asyncio.to_thread(self.server.settled_head, timeout)


async def parley_round(
    gw: Gateway, chats: int, label: str, timeout: float, cpu: CpuUse | None
) -> list[Sample]:
    """`chats` clients at once: start a chat, subscribe, then (timed) send and await the reply."""
    started = await asyncio.gather(
        *(
            graphql(gw.http, gw.token, START_CHAT, {"i": {"title": f"{label}-{n}"}})
            for n in range(chats)
        )
    )
    await gw.wait_for_subscribers(0, timeout)  # the last round's are gone
    subscribers: list[Subscriber] = []
    try:
        for opened in await asyncio.gather(
            *(Subscriber.open(gw.server, gw.token, s["startChat"]) for s in started),
            return_exceptions=True,
        ):
            if isinstance(opened, BaseException):
                raise opened
            subscribers.append(opened)
        await gw.wait_for_subscribers(chats, timeout)
        await gw.settle(timeout)
        before = gw.cpu_now()
        samples = await asyncio.wait_for(
            asyncio.gather(
                *(converse(gw, sub, f"{label}-{n}") for n, sub in enumerate(subscribers))
            ),
            timeout,
        )
        if cpu is not None:
            cpu.add(before, gw.cpu_now())
        return samples
    finally:
        await asyncio.gather(*(sub.close() for sub in subscribers))


async def converse(gw: Gateway, sub: Subscriber, label: str) -> Sample:
    sent_at = time.perf_counter()
    content = f"Question {label}: how far is the moon?"
    await graphql(
        gw.http, gw.token, SEND_MESSAGE, {"i": {"chatId": sub.chat_id, "content": content}}
    )
    acked_at = time.perf_counter()
    assert sub.reader is not None
    await sub.reader
    if sub.error is not None:
        raise RuntimeError(f"chat {sub.chat_id}: {sub.error}")
    assert sub.reply is not None and sub.done_at is not None
    text = "".join(sub.deltas)
    if sub.first_delta_at is None or text != gw.expected or sub.reply["content"] != gw.expected:
        raise RuntimeError(
            f"chat {sub.chat_id}: wrong reply (deltas {text[:60]!r}, message "
            f"{sub.reply['content'][:60]!r}, provider {sub.reply['provider']})"
        )
    provider_ttft, latency = sub.reply["timeToFirstTokenMs"], sub.reply["latencyMs"]
    return Sample(
        ttft=sub.first_delta_at - sent_at,
        total=sub.done_at - sent_at,
        ack=acked_at - sent_at,
        provider_ttft=None if provider_ttft is None else provider_ttft / 1000,
        reply=None if latency is None else latency / 1000,
    )


# -- the baseline: the bare openai SDK ----------------------------------------------------------


def baseline_round(client: openai.OpenAI, chats: int, label: str, expected: str) -> list[Sample]:
    """`chats` threads, released together, each streaming one reply through a shared client
    (as Parley's responder threads share one)."""
    gate = threading.Barrier(chats)

    def one(n: int) -> Sample:
        content = f"Question {label}-{n}: how far is the moon?"
        gate.wait(timeout=60)
        sent_at = time.perf_counter()
        first_at: float | None = None
        parts: list[str] = []
        stream = client.chat.completions.create(
            model=UPSTREAM_MODEL,
            messages=[{"role": "user", "content": content}],
            stream=True,
            stream_options={"include_usage": True},
            max_completion_tokens=1024,
        )
        with stream:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    if first_at is None:
                        first_at = time.perf_counter()
                    parts.append(chunk.choices[0].delta.content)
        done_at = time.perf_counter()
        if first_at is None or "".join(parts) != expected:
            raise RuntimeError(f"baseline: wrong reply {''.join(parts)[:60]!r}")
        return Sample(ttft=first_at - sent_at, total=done_at - sent_at)

    with ThreadPoolExecutor(max_workers=chats, thread_name_prefix="baseline") as pool:
        return list(pool.map(one, range(chats)))


# -- main -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    steps: list[Step] = field(default_factory=list)
    servers: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def parley_env(opts: Options, upstream: Upstream) -> dict[str, str]:
    """`parley serve` as deployed on one machine: the workers (read models, responder, audit
    ledger) in process, live events in process (no Redis), Postgres search, no Kafka."""
    return {
        "OPENAI_API_KEY": "sk-bench-" + secrets.token_hex(16),  # the fake checks nothing
        "OPENAI_BASE_URL": f"{upstream.url}/v1",
        "PARLEY_RESPONDER_CONCURRENCY": str(opts.responder_concurrency),
    }


def create_tenant(server: Server) -> dict[str, Any]:
    """A new tenant (CLI) whose chats use the OpenAI model."""
    tenant, admin = new_tenant(server)
    # No fallback models: a failing provider must show up as a wrong reply, not as echo.
    admin.run(SETTINGS, {"i": {"defaultModel": MODEL, "allowedModels": [MODEL]}})
    return tenant


async def measure(opts: Options, server: Server, upstream: Upstream, outcome: Outcome) -> None:
    tenant = await asyncio.to_thread(create_tenant, server)
    widest = max(opts.concurrency)
    # Idle connections expire well before uvicorn closes them (after 5 s): otherwise a send may
    # race the server's close and fail with a ReadError.
    limits = httpx.Limits(
        max_connections=widest + 10, max_keepalive_connections=widest + 10, keepalive_expiry=2.0
    )
    baseline_client = openai.OpenAI(
        api_key="sk-bench-" + secrets.token_hex(16),
        base_url=f"{upstream.url}/v1",
        timeout=60.0,
        max_retries=0,  # as Parley's provider: a failure is a failure
    )
    with baseline_client:
        async with httpx.AsyncClient(
            base_url=server.url, limits=limits, timeout=opts.timeout
        ) as http:
            await measure_steps(opts, server, upstream, tenant, http, baseline_client, outcome)


async def measure_steps(
    opts: Options,
    server: Server,
    upstream: Upstream,
    tenant: dict[str, Any],
    http: httpx.AsyncClient,
    baseline_client: openai.OpenAI,
    outcome: Outcome,
) -> None:
    """Each step of concurrency: warm-up rounds, then measured rounds, Parley and baseline in
    turn."""
    expected = "".join(opts.pieces())
    for chats in opts.concurrency:
        # A fresh access token per step: a long step must not outlive it.
        token = await asyncio.to_thread(access_token, server, tenant)
        gw = Gateway(server, http, token, expected, upstream.pid)
        step = Step(chats, opts.rounds_at(chats))
        outcome.steps.append(step)
        total_rounds = opts.warmup_rounds + step.rounds
        for n in range(total_rounds):
            label = f"c{chats}-r{n}"
            warm = n < opts.warmup_rounds
            parley = await parley_round(
                gw, chats, label, opts.timeout, None if warm else step.parley_cpu
            )
            await gw.settle(opts.timeout)
            before = gw.cpu_now()
            baseline = await asyncio.to_thread(
                baseline_round, baseline_client, chats, label, expected
            )
            if not warm:
                step.baseline_cpu.add(before, gw.cpu_now())
                step.parley += parley
                step.baseline += baseline
                step.rounds_done += 1
            progress(step, n, total_rounds, warm, parley, baseline)


def progress(
    step: Step, n: int, total: int, warm: bool, parley: list[Sample], baseline: list[Sample]
) -> None:
    def p50(samples: list[Sample], name: str) -> float:
        return Percentiles.of([getattr(s, name) for s in samples]).p50

    print(
        f"{step.chats} chats, round {n + 1}/{total}{' (warm-up)' if warm else ''}: "
        f"parley ttft p50 {p50(parley, 'ttft'):.1f} ms total {p50(parley, 'total'):.1f} ms; "
        f"sdk ttft p50 {p50(baseline, 'ttft'):.1f} ms total {p50(baseline, 'total'):.1f} ms",
        file=sys.stderr,
    )


def measure_all(opts: Options, outcome: Outcome) -> None:
    upstream = Upstream(opts)
    print(f"upstream (fixed reply) at {upstream.url}", file=sys.stderr)
    try:
        with scratch_server("gateway", parley_env(opts, upstream), keep=opts.keep) as (
            server,
            target,
        ):
            outcome.servers["postgres"] = {"database": target.dbname, **postgres_info(target)}
            asyncio.run(measure(opts, server, upstream, outcome))
    except Exception as e:
        log.exception("the measurement stopped")
        outcome.problems.append(f"{type(e).__name__}: {e!r}")
    finally:
        upstream.stop()


def main(argv: Sequence[str]) -> int:
    opts = options.parse(Options, argv, "gateway", DESCRIPTION)
    code = code_version()
    if code.get("changed_outside_bench"):
        print(
            f"measuring uncommitted changes to {len(code['changed_outside_bench'])} files "
            f"on top of {code['commit']} (listed in the JSON)",
            file=sys.stderr,
        )
    run = Run("gateway")
    outcome = Outcome()
    measure_all(opts, outcome)
    print_report(outcome, opts)
    print(run.load_line())
    run.record(
        {
            **asdict(opts),
            "rounds_by_concurrency": {c: opts.rounds_at(c) for c in opts.concurrency},
            "reply_chars": len("".join(opts.pieces())),
            "model": MODEL,
            "server": "parley serve: one uvicorn process, workers in process, no Redis, Kafka "
            "or Elasticsearch; the scratch database on the PostgreSQL below",
            "upstream": "testbed/llm_fakes FakeProviderServer (threads) in a process of its own, "
            "127.0.0.1",
            "load_generator": "one asyncio process (httpx + websockets), one WebSocket per chat, "
            "all chats of one user; the baseline's threads run in it between Parley rounds",
        },
        code=code,
        servers=outcome.servers,
        packages=package_versions(
            "openai",
            "httpx",
            "websockets",
            "uvicorn",
            "strawberry-graphql",
            "fastapi",
            "psycopg",
            "eventsourcing",
        ),
        steps=[s.figures() for s in outcome.steps],
        problems=outcome.problems,
    )
    return 1 if outcome.problems else 0


def print_report(outcome: Outcome, opts: Options) -> None:
    header = ("chats", "path", "replies", "ttft p50", "p99", "max", "total p50", "p99", "max")
    cells: list[tuple[str, ...]] = []
    for step in outcome.steps:
        for path, samples in (("parley (GraphQL)", step.parley), ("openai SDK", step.baseline)):
            ttft = Percentiles.of([s.ttft for s in samples])
            total = Percentiles.of([s.total for s in samples])
            cells.append(
                (
                    str(step.chats),
                    path,
                    str(ttft.samples),
                    *(f"{v:,.1f}" for v in (ttft.p50, ttft.p99, ttft.max)),
                    *(f"{v:,.1f}" for v in (total.p50, total.p99, total.max)),
                )
            )
        added = step.added()
        cells.append(
            (
                str(step.chats),
                "added by parley",
                "",
                f"{added['ttft_p50']:+,.1f}",
                f"{added['ttft_p99']:+,.1f}",
                "",
                f"{added['total_p50']:+,.1f}",
                f"{added['total_p99']:+,.1f}",
                "",
            )
        )
    print()
    print_columns(header, cells, left=(1,))
    print()
    print(
        f"milliseconds from sending the message to the first piece of text (ttft) and to the "
        f"whole reply (total); upstream: {opts.chunks} chunks, first after "
        f"{opts.first_token_ms:g} ms, then one every {opts.chunk_delay_ms:g} ms. Parley: "
        f"sendMessage over HTTP, first ReplyDelta / assistant MessageAdded on chatEvents; "
        f"PARLEY_RESPONDER_CONCURRENCY={opts.responder_concurrency} (replies generated at once)."
    )
    for step in outcome.steps:
        ack = Percentiles.of([s.ack for s in step.parley if s.ack is not None])
        provider = Percentiles.of(
            [s.provider_ttft for s in step.parley if s.provider_ttft is not None]
        )
        mine, base = step.parley_cpu.cores(), step.baseline_cpu.cores()
        per_reply = step.parley_cpu.server / len(step.parley) * 1000 if step.parley else math.nan
        print(
            f"{step.chats} chats: sendMessage answered p50 {ack.p50:.1f} / p99 {ack.p99:.1f} ms; "
            f"provider ttft inside parley p50 {provider.p50:.1f} / p99 {provider.p99:.1f} ms; "
            f"server CPU {per_reply:.0f} ms per reply; cores busy during parley rounds: "
            f"{_cores(mine)}; during the baseline: {_cores(base)}"
        )
    print_problems(outcome.problems)


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


def _cores(cores: dict[str, float]) -> str:
    if not cores:
        return "-"
    return (
        f"client {cores['client']:.2f}, server {cores['server']:.2f}, upstream "
        f"{cores['upstream']:.2f}, machine {cores['machine']:.2f}"
    )
