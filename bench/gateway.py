"""The model gateway's latency as a subscribed GraphQL client sees it: time to first token and
total time of a reply at 100 and 1,000 concurrent chats (by default), next to a baseline in the
same run: the bare `openai` SDK's asynchronous client calling the same local OpenAI-protocol
server.

Starts a local server that streams a fixed reply of 200 tokens at 50 tokens a second (by default;
testbed/llm_fakes' paced server, in a process of its own) and a real `parley serve` (workers in
process, a scratch database) whose OpenAI provider points at it. Each client starts a chat,
subscribes to its `chatEvents` over WebSocket, sends one message over HTTP and times the first
`ReplyDelta` and the assistant's `MessageAdded`; the baseline times the first content chunk and
the end of the same stream through the SDK. See bench/README.md.

This module owns the options, the run (the steps, Parley and baseline rounds in turn, the server
and the upstream around them) and its table and printout; the parts are bench/gateway_upstream.py
(the upstream), bench/gateway_clients.py (the load generator) and bench/gateway_figures.py.
"""

import asyncio
import logging
import math
import resource
import secrets
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx
import openai

from bench import options
from bench.database import postgres_info
from bench.gateway_clients import Gateway, baseline_round, parley_round
from bench.gateway_figures import Sample, Step
from bench.gateway_upstream import Upstream
from bench.options import at_least, at_least_one, concurrency_steps, option
from bench.report import (
    Percentiles,
    Run,
    RunOutcome,
    package_versions,
    print_columns,
    print_problems,
)
from bench.server import access_token, code_version, new_tenant, scratch_server
from infra.settings import Settings
from testbed.processes import Server

log = logging.getLogger("bench.gateway")

DESCRIPTION = (
    "Time to first token and total time of a reply through Parley (a subscribed GraphQL client) "
    "vs the bare openai SDK, against a local OpenAI-protocol server."
)

MODEL = "openai/gpt-4o-mini"
SETTINGS = """mutation($i: UpdateTenantSettingsInput!) { updateTenantSettings(input: $i) {
    position } }"""


@dataclass(frozen=True)
class Options:
    concurrency: tuple[int, ...] = option(
        (100, 1000), "concurrent chats per step, comma-separated", concurrency_steps
    )
    rounds: int = option(3, "measured rounds per step (at least)", at_least_one)
    min_samples: int = option(
        100, "more rounds at small steps until each path has this many replies", at_least_one
    )
    warmup_rounds: int = option(1, "unrecorded rounds before each step", at_least(0, int))
    tokens: int = option(200, "tokens (content chunks) of the fixed reply", at_least_one)
    first_token_ms: float = option(
        50.0, "upstream delay before the first token", at_least(0, float)
    )
    tokens_per_second: float = option(
        50.0, "the upstream's pace after the first token", at_least(1, float)
    )
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
        """The fixed reply, one content chunk (token) per piece."""
        return [f" word{n}" for n in range(self.tokens)]

    @property
    def token_delay_ms(self) -> float:
        return 1000 / self.tokens_per_second


# -- main -----------------------------------------------------------------------------------


@dataclass
class Outcome(RunOutcome):
    steps: list[Step] = field(default_factory=list)


def parley_env(opts: Options, upstream: Upstream) -> dict[str, str]:
    """`parley serve` as deployed on one machine: the workers (read models, responder, audit
    ledger) in process, live events in process (no Redis), Postgres search, no Kafka."""
    return {
        "OPENAI_API_KEY": "sk-bench-" + secrets.token_hex(16),  # the fake checks nothing
        "OPENAI_BASE_URL": f"{upstream.url}/v1",
        "PARLEY_RESPONDER_CONCURRENCY": str(opts.responder_concurrency),
        # Every chat is one user's, each on a WebSocket of its own: more than the per-user
        # guard (200 per API process) lets one user open.
        "PARLEY_WS_MAX_CONNECTIONS_PER_USER": str(max(opts.concurrency) + 10),
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
    baseline_client = openai.AsyncOpenAI(
        api_key="sk-bench-" + secrets.token_hex(16),
        base_url=f"{upstream.url}/v1",
        timeout=opts.timeout,
        max_retries=0,  # as Parley's provider: a failure is a failure
        http_client=openai.DefaultAsyncHttpxClient(limits=limits),
    )
    async with (
        baseline_client,
        httpx.AsyncClient(base_url=server.url, limits=limits, timeout=opts.timeout) as http,
    ):
        await measure_steps(opts, server, upstream, tenant, http, baseline_client, outcome)


async def measure_steps(
    opts: Options,
    server: Server,
    upstream: Upstream,
    tenant: dict[str, Any],
    http: httpx.AsyncClient,
    baseline_client: openai.AsyncOpenAI,
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
            baseline = await baseline_round(baseline_client, chats, label, expected)
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
    raise_open_files_limit()  # inherited by the server and the upstream, started below
    upstream = Upstream(opts.pieces(), opts.first_token_ms, opts.token_delay_ms)
    print(f"upstream (fixed reply) at {upstream.url}", file=sys.stderr)
    try:
        with scratch_server("gateway", parley_env(opts, upstream), keep=opts.keep) as (
            server,
            target,
        ):
            outcome.servers["postgres"] = {"database": target.dbname, **postgres_info(target)}
            run_loop(measure(opts, server, upstream, outcome))
    except Exception as e:
        log.exception("the measurement stopped")
        outcome.problems.append(f"{type(e).__name__}: {e!r}")
    finally:
        upstream.stop()


def raise_open_files_limit() -> None:
    """A thousand chats hold a WebSocket and an HTTP connection each in the load generator and in
    the server, and the server an upstream connection per reply: more than the usual soft limit
    of 1,024 descriptors. Raise it to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = 65_536 if hard == resource.RLIM_INFINITY else hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """The load generator's event loop: uvloop when installed (its I/O costs the clients less
    CPU, which the server needs on this machine), asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


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
            "upstream": "testbed/llm_fakes PacedReplyServer (asyncio, uvloop) in a process of its "
            "own, 127.0.0.1",
            "load_generator": "one asyncio process (uvloop; httpx + websockets), one WebSocket per "
            "chat, all chats of one user; the baseline's AsyncOpenAI tasks run in it between "
            "Parley rounds",
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
    return outcome.exit_code


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
        f"whole reply (total); upstream: {opts.tokens} tokens, first after "
        f"{opts.first_token_ms:g} ms, then {opts.tokens_per_second:g} per second. Parley: "
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


def _cores(cores: dict[str, float]) -> str:
    if not cores:
        return "-"
    return (
        f"client {cores['client']:.2f}, server {cores['server']:.2f}, upstream "
        f"{cores['upstream']:.2f}, machine {cores['machine']:.2f}"
    )
