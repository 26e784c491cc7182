"""Catch-up rate of the projections: batched (one transaction / bulk request per batch) against
a baseline in the same run (the same events, one transaction / bulk request per event).

Loads a realistic log into a scratch database (tenants, users, chats, alternating user and
assistant messages with token counts), then replays it from position 0 into the Postgres read
models and, when `projections/search_index.py` exists, into Elasticsearch. See bench/README.md.
"""

import importlib.util
import logging
import math
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from uuid import UUID, uuid4

import psycopg
from elasticsearch import Elasticsearch
from elasticsearch import exceptions as es_errors
from eventsourcing.persistence import Notification
from psycopg import sql
from psycopg_pool import ConnectionPool

from api.progress import ProgressBar
from bench import options
from bench.database import event_store, postgres_info, run_id, scratch_database, vacuum
from bench.options import option
from bench.report import (
    Row,
    Run,
    machine_info,
    package_versions,
    print_problems,
    print_table,
    ratio,
    throughput,
)
from bench.services import elasticsearch_url
from domain.chat import ChatSession, MessageRole, reply_id_for
from domain.tenant import DEFAULT_MODEL, Tenant
from domain.user import Role, User
from infra.eventstore.event_store import EventStore
from infra.eventstore.follower_positions import read_position
from infra.identity.passwords import hash_password
from infra.migrations import read_model_ddl, security_ddl
from infra.postgres import PostgresTarget
from infra.read_model_schema import (
    PROJECTION_NAME,
    READ_SCHEMA,
)
from infra.settings import Settings
from projections.read_models import ReadModelProjection

log = logging.getLogger("bench.projections")

DESCRIPTION = "Projection catch-up rate: batched vs one transaction per event."

BASELINE_SCHEMA = "readmodels_bench_per_event"
BASELINE_NAME = "read_models_bench_per_event"
MODELS = (DEFAULT_MODEL, "small", "large")
CHATS_PER_USER = 5
# Each save gives every chat of its group one turn (a user message and the reply), so the log
# interleaves CHATS_PER_SAVE conversations the way concurrent traffic does.
CHATS_PER_SAVE = 200
OUTAGE_ATTEMPTS = 5
OUTAGE_WAIT_SECONDS = 300
VOCABULARY = """
the model answer question context token prompt request reply stream latency tenant user chat
message search index projection event log position batch commit transaction retry summary draft
report customer invoice order shipping refund policy contract meeting agenda deadline budget
forecast revenue quarter release feature bug fix deploy server database query schema migration
backup restore cluster node shard replica cache queue worker job please could you explain why
how what when where which example detail step first then finally because however therefore also
only more less better faster simple clear short
"""
WORDS = VOCABULARY.split()


@dataclass(frozen=True)
class Options:
    messages: int = options.messages(200_000, "messages to load")
    chats: int = options.chats()
    tenants: int = options.tenants()
    batch: int = options.batch()
    keep: bool = options.keep("the bench database")
    search: bool = option(True, "skip Elasticsearch", flag="--no-search")
    seed: int = options.seed()

    def __post_init__(self) -> None:
        options.check_log_shape(self.chats, self.tenants)

    @property
    def users_per_tenant(self) -> int:
        return max(1, math.ceil(self.chats / self.tenants / CHATS_PER_USER))

    @property
    def events(self) -> int:
        """Events the load writes: tenants (created, settings), users, chats, messages."""
        return 2 * self.tenants + self.tenants * self.users_per_tenant + self.chats + self.messages


@dataclass
class Expected:
    """What the loaded log must project to; every catch-up is checked against it."""

    tenants: int = 0
    users: int = 0
    chats: int = 0
    messages: int = 0
    user_messages: int = 0
    assistant_messages: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms_sum: int = 0


@dataclass(frozen=True)
class Loaded:
    events: int
    seconds: float
    expected: Expected

    def figures(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "messages": self.expected.messages,
            **throughput(self.events, self.seconds),
        }

    def row(self) -> Row:
        return Row("load", f"aggregates, {CHATS_PER_SAVE} chats/save", self.events, self.seconds)


@dataclass(frozen=True)
class CatchUp:
    """One replay of the whole log: wall time, and the part of it spent reading the log."""

    events: int
    seconds: float
    read_seconds: float
    commits: int
    interruptions: int = 0
    """Times the server went away mid-run (a shared server restarted) and the batch was retried."""
    outage_seconds: float = 0.0
    """Time spent waiting for it to come back: left out of `seconds`."""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def figures(self) -> dict[str, Any]:
        return {
            **throughput(self.events, self.seconds),
            "read_seconds": round(self.read_seconds, 3),
            "commits": self.commits,
            "interruptions": self.interruptions,
            "outage_seconds": round(self.outage_seconds, 3),
        }


# -- load ------------------------------------------------------------------------------------


class Conversation:
    """One chat's traffic: user questions and assistant replies with token counts."""

    def __init__(self, chat: ChatSession, author: UUID, messages: int, rng: random.Random):
        self.chat = chat
        self.author = author
        self.left = messages
        self.rng = rng
        self.context_tokens = 0

    def post_turn(self, expected: Expected) -> int:
        """Post a user message and, if the chat has room, its reply; return how many."""
        rng = self.rng
        question = " ".join(rng.choices(WORDS, k=rng.randint(4, 30))).capitalize() + "?"
        question_id = uuid4()
        self.chat.post_message(
            message_id=question_id,
            role=MessageRole.USER,
            content=question,
            author_id=self.author,
            model=self.chat.model,
        )
        self.context_tokens += _tokens(question)
        expected.user_messages += 1
        self.left -= 1
        if self.left == 0:
            return 1
        answer = " ".join(rng.choices(WORDS, k=rng.randint(15, 150))).capitalize() + "."
        output_tokens = _tokens(answer)
        input_tokens = min(self.context_tokens, 8_000)
        latency_ms = 150 + int(output_tokens * rng.uniform(8, 25))
        self.chat.post_message(
            message_id=reply_id_for(question_id),
            role=MessageRole.ASSISTANT,
            content=answer,
            author_id=None,
            model=self.chat.model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            finish_reason="stop",
            latency_ms=latency_ms,
            reply_to=question_id,
        )
        self.context_tokens += output_tokens
        expected.assistant_messages += 1
        expected.input_tokens += input_tokens
        expected.output_tokens += output_tokens
        expected.latency_ms_sum += latency_ms
        self.left -= 1
        return 2


def _tokens(text: str) -> int:
    return math.ceil(len(text.split()) * 1.3)


def load(store: EventStore, opts: Options) -> Loaded:
    """Write tenants, users, chats and messages through the aggregates, many per save."""
    rng = random.Random(opts.seed)
    expected = Expected()
    progress = ProgressBar("load")
    started = time.perf_counter()

    password_hash = hash_password("bench-password")  # once: argon2 is slow on purpose
    tenants: list[Tenant] = []
    users: dict[UUID, list[User]] = {}
    for t in range(opts.tenants):
        tenant = Tenant.create(name=f"Bench tenant {t}", slug=f"bench-{t}")
        tenant.change_settings(
            default_model=DEFAULT_MODEL, allowed_models=list(MODELS), retention_days=None
        )
        tenants.append(tenant)
        users[tenant.id] = [
            User.register(
                tenant_id=tenant.id,
                email=f"user{u}@bench-{t}.example",
                display_name=f"User {u}",
                role=Role.TENANT_ADMIN if u == 0 else Role.MEMBER,
                password_hash=password_hash,
            )
            for u in range(opts.users_per_tenant)
        ]
    everyone = [u for us in users.values() for u in us]
    store.save_all(*tenants, *everyone, actor=None)
    expected.tenants, expected.users = len(tenants), len(everyone)
    written = 2 * len(tenants) + len(everyone)

    per_chat, extra = divmod(opts.messages, opts.chats)
    for first in range(0, opts.chats, CHATS_PER_SAVE):
        group: list[Conversation] = []
        for c in range(first, min(first + CHATS_PER_SAVE, opts.chats)):
            tenant = tenants[c % opts.tenants]
            owner = rng.choice(users[tenant.id])
            chat = ChatSession.start(
                chat_id=uuid4(),
                tenant_id=tenant.id,
                owner_id=owner.id,
                title=" ".join(rng.choices(WORDS, k=rng.randint(2, 6))).capitalize(),
                model=tenant.resolve_model(rng.choice(MODELS)),
            )
            group.append(Conversation(chat, owner.id, per_chat + (c < extra), rng))
        expected.chats += len(group)
        written += len(group)
        while True:
            for conversation in group:
                if conversation.left > 0:
                    posted = conversation.post_turn(expected)
                    expected.messages += posted
                    written += posted
            pending = [g.chat for g in group if g.chat.pending_events]
            if not pending:
                break
            store.save_all(*pending, actor=None)
            progress.update(written, opts.events)
    return Loaded(events=store.head(), seconds=time.perf_counter() - started, expected=expected)


# -- catch-up --------------------------------------------------------------------------------

Handle = Callable[[Sequence[Notification]], None]


@dataclass
class LogReader:
    """The whole log from position 0, `batch` events at a time, with a progress bar: the batches
    are handed out as they are read, and the time spent reading is kept apart."""

    store: EventStore
    batch: int
    label: str
    position: int = 0
    """Where the batch being handled starts."""
    events: int = 0
    read_seconds: float = 0.0

    def __iter__(self) -> Iterator[Sequence[Notification]]:
        head = self.store.head()
        progress = ProgressBar(self.label)
        while True:
            before = time.perf_counter()
            notifications = self.store.read(self.position, self.batch)
            self.read_seconds += time.perf_counter() - before
            if not notifications:
                return
            self.events += len(notifications)
            yield notifications
            self.position = notifications[-1].id
            progress.update(self.position, head)


def catch_up(
    store: EventStore, handle: Handle, *, batch: int, per_event: bool, label: str
) -> CatchUp:
    """Replay the log from position 0 through `handle`, a batch (or one event) at a time.

    Both modes read the log in the same batches; reading is part of the wall time.
    """
    reader = LogReader(store, batch, label)
    commits = 0
    started = time.perf_counter()
    for notifications in reader:
        if per_event:
            for notification in notifications:
                handle([notification])
            commits += len(notifications)
        else:
            handle(notifications)
            commits += 1
    return CatchUp(reader.events, time.perf_counter() - started, reader.read_seconds, commits)


def read_only(store: EventStore, *, batch: int) -> CatchUp:
    """Read the whole log once without projecting: a warm-up for both modes alike, and the
    rate of reading alone, a ceiling no projection can beat."""
    return catch_up(store, lambda _: None, batch=batch, per_event=False, label="read log")


# -- Postgres read models --------------------------------------------------------------------


def create_baseline_schema(target: PostgresTarget) -> None:
    """A second generation of the read models, as a rebuild creates one."""
    with psycopg.connect(target.conninfo(), autocommit=True) as conn, conn.transaction():
        conn.execute(read_model_ddl(BASELINE_SCHEMA))
        for statement in security_ddl(BASELINE_SCHEMA):
            conn.execute(statement)


def read_model_totals(conn: psycopg.Connection[Any], schema: str, name: str) -> dict[str, int]:
    """Row counts and usage sums of one generation of the read models, and its position."""
    columns = {
        "tenants": "SELECT count(*) FROM {s}.rm_tenants",
        "users": "SELECT count(*) FROM {s}.rm_users",
        "chats": "SELECT count(*) FROM {s}.rm_chats",
        "chat_message_count_sum": "SELECT sum(message_count) FROM {s}.rm_chats",
        "messages": "SELECT count(*) FROM {s}.rm_messages",
        "usage_rows": "SELECT count(*) FROM {s}.rm_usage",
        "user_messages": "SELECT sum(user_messages) FROM {s}.rm_usage",
        "assistant_messages": "SELECT sum(assistant_messages) FROM {s}.rm_usage",
        "input_tokens": "SELECT sum(input_tokens) FROM {s}.rm_usage",
        "output_tokens": "SELECT sum(output_tokens) FROM {s}.rm_usage",
        "latency_ms_sum": "SELECT sum(latency_ms_sum) FROM {s}.rm_usage",
    }
    query = sql.SQL("SELECT ") + sql.SQL(", ").join(
        sql.SQL("coalesce(({}), 0)").format(sql.SQL(q).format(s=sql.Identifier(schema)))
        for q in columns.values()
    )
    row = conn.execute(query).fetchone()
    assert row is not None
    totals = {k: int(v) for k, v in zip(columns, row, strict=True)}
    totals["position"] = read_position(conn, name)
    return totals


def verify_read_models(target: PostgresTarget, expected: Expected, head: int) -> dict[str, Any]:
    """Both generations must equal each other and what the load wrote."""
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        batched = read_model_totals(conn, READ_SCHEMA, PROJECTION_NAME)
        per_event = read_model_totals(conn, BASELINE_SCHEMA, BASELINE_NAME)
    wanted = {**asdict(expected), "chat_message_count_sum": expected.messages, "position": head}
    problems = [
        f"{k}: batched has {v}, per event has {per_event[k]}"
        for k, v in batched.items()
        if v != per_event[k]
    ]
    problems += [
        f"{k}: the load wrote {v}, batched has {batched[k]}"
        for k, v in wanted.items()
        if batched[k] != v
    ]
    return {"batched": batched, "per_event": per_event, "expected": wanted, "problems": problems}


def bench_read_models(
    store: EventStore, pool: ConnectionPool, target: PostgresTarget, opts: Options
) -> tuple[CatchUp, CatchUp]:
    """Batched into the live schema, then one transaction per event into a second schema."""
    batched = catch_up(
        store,
        ReadModelProjection(store, pool).handle,
        batch=opts.batch,
        per_event=False,
        label="postgres batched",
    )
    create_baseline_schema(target)
    per_event = catch_up(
        store,
        ReadModelProjection(store, pool, schema=BASELINE_SCHEMA, name=BASELINE_NAME).handle,
        batch=opts.batch,
        per_event=True,
        label="postgres per event",
    )
    return batched, per_event


# -- Elasticsearch ---------------------------------------------------------------------------


class OutageTolerant:
    """A search projection's `handle` for a shared server that may be restarted mid-run (the
    test suite stops and starts it): wait until it is back and retry the batch, which the
    projection makes harmless, and account the wait apart from the measured time."""

    def __init__(self, handle: Handle, client: Elasticsearch, index: str) -> None:
        self._handle = handle
        self._client = client
        self._index = index
        self.interruptions = 0
        self.outage_seconds = 0.0

    def __call__(self, batch: Sequence[Notification]) -> None:
        for attempt in range(1, OUTAGE_ATTEMPTS + 1):
            try:
                self._handle(batch)
                return
            except Exception as e:
                if attempt == OUTAGE_ATTEMPTS or not _unavailable(e):
                    raise
                log.warning("Elasticsearch unavailable (%s); waiting to retry", type(e).__name__)
                started = time.perf_counter()
                self._wait_until_back()
                self.interruptions += 1
                self.outage_seconds += time.perf_counter() - started

    def measured(self, run: CatchUp) -> CatchUp:
        return replace(
            run,
            seconds=run.seconds - self.outage_seconds,
            interruptions=self.interruptions,
            outage_seconds=self.outage_seconds,
        )

    def _wait_until_back(self) -> None:
        deadline = time.monotonic() + OUTAGE_WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                health = self._client.cluster.health(
                    index=self._index, wait_for_status="yellow", timeout="10s"
                )
                if not health["timed_out"]:
                    return
            except (es_errors.TransportError, es_errors.ApiError):
                time.sleep(1)
        raise TimeoutError(f"Elasticsearch did not come back within {OUTAGE_WAIT_SECONDS}s")


def _unavailable(e: Exception) -> bool:
    """Failures that a server going away causes (refused connections, unavailable shards)."""
    from projections.search_index import SearchIndexingFailed

    if isinstance(e, es_errors.ApiError):
        return e.meta.status in (429, 503)
    return isinstance(e, es_errors.TransportError | SearchIndexingFailed)


def bench_search_index(
    store: EventStore, pool: ConnectionPool, client: Elasticsearch, opts: Options, run_id: str
) -> tuple[dict[str, CatchUp], dict[str, dict[str, int]]]:
    """Batched (one bulk request per batch) vs one bulk request per event, each into a test
    index of its own, deleted afterwards; return the runs and the documents each index holds."""
    from projections.search_index import SearchProjection, ensure_index, index_name

    aliases = {mode: f"parley-bench-{run_id}-{mode}" for mode in ("batched", "per-event")}
    runs: dict[str, CatchUp] = {}
    documents: dict[str, dict[str, int]] = {}
    try:
        for mode, alias in aliases.items():
            ensure_index(client, alias, 1)
            projection = SearchProjection(store, pool, client, alias, name=f"search-bench-{mode}")
            handle = OutageTolerant(projection.handle, client, alias)
            run = catch_up(
                store,
                handle,
                batch=opts.batch,
                per_event=mode == "per-event",
                label=f"elasticsearch {mode}",
            )
            runs[mode] = handle.measured(run)
            client.indices.refresh(index=alias)
            documents[mode] = {
                kind: int(client.count(index=alias, query={"term": {"kind": kind}})["count"])
                for kind in ("message", "chat_title")
            }
    finally:
        for alias in aliases.values():
            try:
                client.options(ignore_status=404).indices.delete(index=index_name(alias, 1))
            except es_errors.TransportError:
                print(f"could not delete the index {index_name(alias, 1)}", file=sys.stderr)
    return runs, documents


def verify_search_index(documents: dict[str, dict[str, int]], expected: Expected) -> list[str]:
    """Each index holds one document per message and one per chat."""
    wanted = {"message": expected.messages, "chat_title": expected.chats}
    return [
        f"elasticsearch {mode}: {got[kind]} {kind} documents, the load wrote {n}"
        for mode, got in documents.items()
        for kind, n in wanted.items()
        if got[kind] != n
    ]


def elasticsearch_version(client: Elasticsearch) -> str | None:
    """The server's version, or None when it does not answer (`GET /` is not served)."""
    try:
        nodes = client.nodes.info(node_id="_local", metric="_none")
    except (es_errors.TransportError, es_errors.ApiError):
        return None
    return str(next(iter(nodes["nodes"].values()))["version"])


# -- main ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """Everything one run measured and checked."""

    loaded: Loaded
    reading: CatchUp
    pg_batched: CatchUp
    pg_per_event: CatchUp
    verification: dict[str, Any]
    search_status: str = "skipped: --no-search"
    search_runs: dict[str, CatchUp] = field(default_factory=dict)
    search_documents: dict[str, dict[str, int]] = field(default_factory=dict)
    servers: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def measure(opts: Options, settings: Settings, target: PostgresTarget) -> Outcome:
    with event_store(target) as (store, pool):
        loaded = load(store, opts)
        vacuum(target, "parley_events")
        reading = read_only(store, batch=opts.batch)
        pg_batched, pg_per_event = bench_read_models(store, pool, target, opts)
        verification = verify_read_models(target, loaded.expected, store.head())
        outcome = Outcome(loaded, reading, pg_batched, pg_per_event, verification)
        outcome.problems += verification["problems"]
        outcome.servers["postgres"] = postgres_info(target)
        if opts.search:
            search_index(store, pool, opts, settings, target, outcome)
        return outcome


def search_index(
    store: EventStore,
    pool: ConnectionPool,
    opts: Options,
    settings: Settings,
    target: PostgresTarget,
    outcome: Outcome,
) -> None:
    """The Elasticsearch part, recorded in `outcome`; its failure keeps the figures so far."""
    if importlib.util.find_spec("projections.search_index") is None:
        outcome.search_status = "skipped: projections/search_index.py does not exist yet"
        return
    url = elasticsearch_url(settings)
    client = Elasticsearch(url, request_timeout=120)
    try:
        outcome.servers["elasticsearch"] = elasticsearch_version(client)
        if outcome.servers["elasticsearch"] is None:
            outcome.search_status = f"skipped: no Elasticsearch answers at {url}"
            outcome.problems.append(outcome.search_status)
            return
        try:
            runs, documents = bench_search_index(store, pool, client, opts, run_id(target))
        except Exception as e:
            log.exception("the Elasticsearch benchmark failed")
            outcome.search_status = f"failed: {type(e).__name__}: {e}"
            outcome.problems.append(outcome.search_status)
            return
        outcome.search_status = "measured"
        outcome.search_runs, outcome.search_documents = runs, documents
        outcome.problems += verify_search_index(documents, outcome.loaded.expected)
    finally:
        client.close()


def main(argv: Sequence[str]) -> int:
    opts = options.parse(Options, argv, "projections", DESCRIPTION)
    run = Run("projections")
    with scratch_database(keep=opts.keep) as target:
        outcome = measure(opts, Settings(), target)
    rows = table_rows(outcome, opts)
    print_report(outcome, rows, opts)
    run.record(
        {
            **asdict(opts),
            "users_per_tenant": opts.users_per_tenant,
            "chats_per_save": CHATS_PER_SAVE,
            "database": target.dbname,
        },
        machine=machine_info(),
        servers=outcome.servers,
        packages=package_versions("eventsourcing", "psycopg", "elasticsearch"),
        load=outcome.loaded.figures(),
        log_read=throughput(outcome.reading.events, outcome.reading.seconds),
        postgres_read_models={
            **_comparison(outcome.pg_batched, outcome.pg_per_event),
            "verification": outcome.verification,
        },
        elasticsearch={
            "status": outcome.search_status,
            **(
                _comparison(outcome.search_runs["batched"], outcome.search_runs["per-event"])
                if outcome.search_runs
                else {}
            ),
            "documents": outcome.search_documents,
        },
        table=[r.figures() for r in rows],
        problems=outcome.problems,
    )
    return 1 if outcome.problems else 0


def log_rows(loaded: Loaded, reading: CatchUp, batch: int, idle: str) -> list[Row]:
    """The first rows of a table: the load, and reading the whole log doing `idle`."""
    return [loaded.row(), Row("log read", f"{batch}/read, {idle}", reading.events, reading.seconds)]


def table_rows(outcome: Outcome, opts: Options) -> list[Row]:
    rows = [
        *log_rows(outcome.loaded, outcome.reading, opts.batch, "no projection"),
        *_pair("postgres read models", "tx", opts.batch, outcome.pg_batched, outcome.pg_per_event),
    ]
    if outcome.search_runs:
        runs = outcome.search_runs
        rows += _pair("elasticsearch", "bulk", opts.batch, runs["batched"], runs["per-event"])
    return rows


def print_report(outcome: Outcome, rows: list[Row], opts: Options) -> None:
    print()
    print_table(rows)
    print()
    print(
        "seconds: wall time of replaying the whole log from position 0, reading it in batches "
        f"of {opts.batch} (reading alone: {outcome.reading.seconds:.2f}s), decoding, applying "
        "and committing; per event reads the same batches and commits each event on its own."
    )
    if outcome.search_runs:
        print("elasticsearch: a commit is a bulk request acknowledged, then the position stored.")
        for mode, r in outcome.search_runs.items():
            if r.interruptions:
                print(
                    f"elasticsearch {mode}: the server went away {r.interruptions} time(s); "
                    f"{r.outage_seconds:.1f}s of waiting for it are left out."
                )
    else:
        print(f"elasticsearch: {outcome.search_status}")
    if not print_problems(outcome.problems):
        expected = outcome.loaded.expected
        print(
            "verified: every copy holds the rows, usage sums and documents the load wrote "
            f"({expected.messages:,} messages in {expected.chats:,} chats)."
        )


def _comparison(batched: CatchUp, per_event: CatchUp) -> dict[str, Any]:
    return {
        "batched": batched.figures(),
        "per_event": per_event.figures(),
        "ratio_batched_to_per_event": round(ratio(batched, per_event), 2),
    }


def _pair(benchmark: str, unit: str, batch: int, batched: CatchUp, per_event: CatchUp) -> list[Row]:
    return [
        Row(
            benchmark,
            f"batched ({batch}/{unit})",
            batched.events,
            batched.seconds,
            ratio(batched, per_event),
        ),
        Row(benchmark, f"per event (1/{unit})", per_event.events, per_event.seconds),
    ]
