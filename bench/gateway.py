"""The model gateway's latency as a subscribed GraphQL client sees it: time to first token and
total time of a reply at 1, 10 and 100 concurrent chats, next to a baseline in the same run: the
bare `openai` SDK calling the same local OpenAI-protocol server.

Starts a local server that streams a fixed reply (testbed/llm_fakes, in a process of its own) and a
real `parley serve` (workers in process, a scratch database) whose OpenAI provider points at it.
Each client starts a chat, subscribes to its `chatEvents` over WebSocket, sends one message over
HTTP and times the first `ReplyDelta` and the assistant's `MessageAdded`; the baseline times the
first content chunk and the end of the same stream through the SDK. See bench/README.md.
"""

import argparse
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
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from bench.projections import postgres_info
from bench.report import machine_info, now_iso, package_versions, write_result
from bench.server import scratch_server
from infra.settings import Settings
from testbed.client import ApiClient
from testbed.processes import ROOT, Server

log = logging.getLogger("bench.gateway")

MODEL = "openai/gpt-4o-mini"
UPSTREAM_MODEL = "gpt-4o-mini"
SETTINGS = """mutation($i: UpdateTenantSettingsInput!) { updateTenantSettings(input: $i) {
    position } }"""
START = "mutation($i: StartChatInput!) { startChat(input: $i) { chatId position } }"
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId position } }"
CHAT_EVENTS = """subscription($chatId: ID!, $after: Int) {
  chatEvents(chatId: $chatId, afterPosition: $after) {
    __typename
    ... on ReplyDelta { delta }
    ... on MessageAdded { message { role content provider finishReason timeToFirstTokenMs
                                    latencyMs } }
  }
}"""
PROTOCOL = "graphql-transport-ws"


@dataclass(frozen=True)
class Options:
    concurrency: tuple[int, ...]
    rounds: int
    min_samples: int
    warmup_rounds: int
    chunks: int
    first_token_ms: float
    chunk_delay_ms: float
    responder_concurrency: int
    timeout: float
    keep: bool

    def rounds_at(self, chats: int) -> int:
        """Measured rounds at `chats` chats: `rounds`, more if that makes too few samples."""
        return max(self.rounds, math.ceil(self.min_samples / chats))

    def pieces(self) -> list[str]:
        """The fixed reply, one content chunk per piece."""
        return [f" word{n}" for n in range(self.chunks)]


def parse_options(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench gateway",
        description="Time to first token and total time of a reply through Parley (a subscribed "
        "GraphQL client) vs the bare openai SDK, against a local OpenAI-protocol server.",
    )
    parser.add_argument(
        "--concurrency", default="1,10,100", help="concurrent chats per step, comma-separated"
    )
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per step (at least)")
    parser.add_argument(
        "--min-samples",
        type=int,
        default=100,
        help="more rounds at small steps until each path has this many replies",
    )
    parser.add_argument(
        "--warmup-rounds", type=int, default=1, help="unrecorded rounds before each step"
    )
    parser.add_argument("--chunks", type=int, default=40, help="content chunks of the fixed reply")
    parser.add_argument(
        "--first-token-ms", type=float, default=50.0, help="upstream delay before the first chunk"
    )
    parser.add_argument(
        "--chunk-delay-ms", type=float, default=5.0, help="upstream delay between chunks"
    )
    parser.add_argument(
        "--responder-concurrency",
        type=int,
        default=Settings.model_fields["responder_concurrency"].default,
        help="PARLEY_RESPONDER_CONCURRENCY of the server: replies generated at once "
        "(default: the server's default)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds a round may take before it fails"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the database and the server's data directory"
    )
    args = parser.parse_args(argv)
    try:
        concurrency = tuple(int(c) for c in args.concurrency.split(",") if c.strip())
    except ValueError:
        parser.error("--concurrency takes numbers separated by commas, e.g. 1,10,100")
    if not concurrency or min(concurrency) < 1:
        parser.error("--concurrency needs at least one step, each of at least 1 chat")
    if min(args.rounds, args.min_samples, args.chunks, args.responder_concurrency) < 1:
        parser.error(
            "--rounds, --min-samples, --chunks and --responder-concurrency must be at least 1"
        )
    if args.warmup_rounds < 0 or args.first_token_ms < 0 or args.chunk_delay_ms < 0:
        parser.error("--warmup-rounds, --first-token-ms and --chunk-delay-ms cannot be negative")
    return Options(
        concurrency=concurrency,
        rounds=args.rounds,
        min_samples=args.min_samples,
        warmup_rounds=args.warmup_rounds,
        chunks=args.chunks,
        first_token_ms=args.first_token_ms,
        chunk_delay_ms=args.chunk_delay_ms,
        responder_concurrency=args.responder_concurrency,
        timeout=args.timeout,
        keep=args.keep,
    )


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
class Percentiles:
    """Nearest-rank percentiles, in milliseconds."""

    samples: int
    p50: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> "Percentiles":
        ordered = sorted(seconds)
        if not ordered:
            return cls(0, math.nan, math.nan, math.nan, math.nan)

        def rank(percent: float) -> float:
            return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)] * 1000

        return cls(
            len(ordered), rank(50), rank(99), ordered[-1] * 1000, sum(ordered) / len(ordered) * 1000
        )

    def figures(self) -> dict[str, Any]:
        return {k: v if k == "samples" else round(v, 2) for k, v in asdict(self).items()}


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
    async def open(cls, ws_url: str, token: str, chat: dict[str, Any]) -> "Subscriber":
        ws = await connect(ws_url, subprotocols=[Subprotocol(PROTOCOL)], open_timeout=30)
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        ack = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if ack.get("type") != "connection_ack":
            await ws.close()
            raise RuntimeError(f"the WebSocket was not acknowledged: {ack}")
        # afterPosition: the server waits until the chat is in its read models before it checks
        # that the caller may see it.
        variables = {"chatId": chat["chatId"], "after": chat["position"]}
        payload = {"query": CHAT_EVENTS, "variables": variables}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
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


async def graphql(
    http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    response = await http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return dict(body["data"])


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

    @property
    def ws_url(self) -> str:
        return self.server.url.replace("http://", "ws://") + "/graphql"

    async def live_subscribers(self) -> int:
        metrics = (await self.http.get("/metrics")).text
        for line in metrics.splitlines():
            if line.startswith("parley_live_subscribers "):
                return int(float(line.split()[1]))
        return -1

    async def wait_for_subscribers(self, count: int, timeout: float) -> None:
        """Until the server has registered exactly `count` subscriptions (all of this round)."""
        deadline = time.monotonic() + timeout
        while (seen := await self.live_subscribers()) != count:
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
        *(graphql(gw.http, gw.token, START, {"i": {"title": f"{label}-{n}"}}) for n in range(chats))
    )
    await gw.wait_for_subscribers(0, timeout)  # the last round's are gone
    subscribers: list[Subscriber] = []
    try:
        for opened in await asyncio.gather(
            *(Subscriber.open(gw.ws_url, gw.token, s["startChat"]) for s in started),
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
    await graphql(gw.http, gw.token, SEND, {"i": {"chatId": sub.chat_id, "content": content}})
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
    tenant = server.create_tenant()
    admin = ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])
    # No fallback models: a failing provider must show up as a wrong reply, not as echo.
    admin.run(SETTINGS, {"i": {"defaultModel": MODEL, "allowedModels": [MODEL]}})
    return tenant


def access_token(server: Server, tenant: dict[str, Any]) -> str:
    """The tenant admin's JWT, from a GraphQL sign-in."""
    admin = ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])
    assert admin.token is not None
    return admin.token


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


def run(opts: Options, outcome: Outcome) -> None:
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
    opts = parse_options(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    code = code_version()
    if code.get("changed_outside_bench"):
        print(
            f"measuring uncommitted changes to {len(code['changed_outside_bench'])} files "
            f"on top of {code['commit']} (listed in the JSON)",
            file=sys.stderr,
        )
    started_at, load_at_start = now_iso(), os.getloadavg()
    outcome = Outcome()
    run(opts, outcome)
    load_at_end = os.getloadavg()
    print_report(outcome, opts)
    print(
        f"load average (1/5/15 min): {_loads(load_at_start)} at the start, {_loads(load_at_end)} "
        f"at the end, on {os.cpu_count()} CPUs; whatever else runs slows every figure."
    )
    result = {
        "benchmark": "gateway",
        "started_at": started_at,
        "finished_at": now_iso(),
        "settings": {
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
        "machine": {
            **machine_info(),
            "load_average_at_start": [round(x, 2) for x in load_at_start],
            "load_average_at_end": [round(x, 2) for x in load_at_end],
        },
        "code": code,
        "servers": outcome.servers,
        "packages": package_versions(
            "openai",
            "httpx",
            "websockets",
            "uvicorn",
            "strawberry-graphql",
            "fastapi",
            "psycopg",
            "eventsourcing",
        ),
        "steps": [s.figures() for s in outcome.steps],
        "problems": outcome.problems,
    }
    print(f"results: {write_result('gateway', result)}")
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
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]

    def line(values: tuple[str, ...]) -> str:
        return "  ".join(
            v.ljust(w) if i == 1 else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        )

    print()
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print(line(c))
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
    if outcome.problems:
        print("PROBLEMS:\n  " + "\n  ".join(outcome.problems))


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


def _loads(averages: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in averages)
