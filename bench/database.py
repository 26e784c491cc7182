"""A scratch PostgreSQL database per benchmark run (created on the server, migrated, dropped), the
event store on it, and what the benchmarks ask the server; for the benchmarks that replay a log
(`projections`, `relay`): a realistic log generated into it through the aggregates, and reading
that log back from position 0 in batches."""

import math
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID, uuid4

import psycopg
from eventsourcing.persistence import Notification
from psycopg import sql
from psycopg_pool import ConnectionPool

from api.progress import ProgressBar
from bench.report import CatchUp, Row, throughput
from bench.services import postgres_url
from domain.chat import ChatSession, MessageRole, reply_id_for
from domain.model_settings import DEFAULT_MODEL
from domain.tenant import Tenant
from domain.user import Role, User
from infra.eventstore.data_keys import DataKeys
from infra.eventstore.event_store import EventStore, open_event_store
from infra.identity.passwords import hash_password
from infra.migrations import migrate
from infra.postgres import PostgresTarget, open_pool
from infra.settings import Settings

PREFIX = "parley_bench"
MODELS = (DEFAULT_MODEL, "small", "large")
CHATS_PER_USER = 5
# Each save gives every chat of its group one turn (a user message and the reply), so the log
# interleaves CHATS_PER_SAVE conversations the way concurrent traffic does.
CHATS_PER_SAVE = 200
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


@contextmanager
def scratch_database(*, keep: bool = False) -> Iterator[PostgresTarget]:
    """A new, migrated database `parley_bench_<random>` on the benchmarks' PostgreSQL server,
    dropped on the way out unless `keep`."""
    target = create_scratch_database(postgres_url(Settings()), PREFIX)
    print(f"bench database {target.dbname} on {target.host}:{target.port}", file=sys.stderr)
    try:
        yield target
    finally:
        if keep:
            print(f"kept database {target.dbname}", file=sys.stderr)
        else:
            drop_database(target)


def create_scratch_database(url: str, prefix: str) -> PostgresTarget:
    """A new, migrated database `<prefix>_<random>` on the server that `url` points at."""
    server = PostgresTarget.from_url(url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(server.conninfo(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as e:
        raise SystemExit(
            f"cannot reach PostgreSQL at {server.host}:{server.port} ({e}).\n"
            "Start the local services with `.venv/bin/parley services up postgres` "
            "or point PARLEY_DATABASE_URL at a server."
        ) from None
    target = replace(server, dbname=name)
    migrate(target)
    return target


def drop_database(target: PostgresTarget, maintenance_db: str = "postgres") -> None:
    with psycopg.connect(target.conninfo(dbname=maintenance_db), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(target.dbname))
        )


def run_id(target: PostgresTarget) -> str:
    """The scratch database's random part: names the run's other throw-away things (indexes,
    topics)."""
    return target.dbname.rsplit("_", 1)[-1]


@contextmanager
def event_store(target: PostgresTarget) -> Iterator[tuple[EventStore, ConnectionPool]]:
    """The event store on the database and a pool of connections for the projections, closed
    on the way out."""
    store = open_event_store(
        target,
        create_tables=False,
        pool_size=2,
        keys=DataKeys.standalone(target.conninfo()),
    )
    pool = open_pool(target.conninfo(), size=2, name="bench")
    try:
        yield store, pool
    finally:
        pool.close()
        store.close()


def vacuum(target: PostgresTarget, table: str) -> None:
    """Untimed: the next stage should not race autovacuum or a checkpoint of the last one."""
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
        conn.execute("CHECKPOINT")


POSTGRES_SETTINGS = ("server_version", "fsync", "synchronous_commit", "shared_buffers")


def postgres_info(
    target: PostgresTarget, names: tuple[str, ...] = POSTGRES_SETTINGS
) -> dict[str, str]:
    """The server's version and the settings that decide what a commit costs."""
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n, current_setting(n) FROM unnest(%s::text[]) AS n", (list(names),)
        ).fetchall()
    return dict(rows)


# -- the generated log ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LogShape:
    """What the loader writes: tenants, their users, chats spread over them, messages spread over
    the chats (the `--messages`, `--chats`, `--tenants` and `--seed` of a benchmark)."""

    messages: int
    chats: int
    tenants: int
    seed: int

    @property
    def users_per_tenant(self) -> int:
        return max(1, math.ceil(self.chats / self.tenants / CHATS_PER_USER))

    @property
    def events(self) -> int:
        """Events the load writes: tenants (created, settings), users, chats, messages."""
        return 2 * self.tenants + self.tenants * self.users_per_tenant + self.chats + self.messages

    def settings(self) -> dict[str, int]:
        """What the run's JSON records of the log besides the options."""
        return {
            "messages": self.messages,
            "users_per_tenant": self.users_per_tenant,
            "chats_per_save": CHATS_PER_SAVE,
        }


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


def load(store: EventStore, shape: LogShape) -> Loaded:
    """Write tenants, users, chats and messages through the aggregates, many per save."""
    rng = random.Random(shape.seed)
    expected = Expected()
    progress = ProgressBar("load")
    started = time.perf_counter()

    password_hash = hash_password("bench-password")  # once: argon2 is slow on purpose
    tenants: list[Tenant] = []
    users: dict[UUID, list[User]] = {}
    for t in range(shape.tenants):
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
            for u in range(shape.users_per_tenant)
        ]
    everyone = [u for us in users.values() for u in us]
    store.save_all(*tenants, *everyone, actor=None)
    expected.tenants, expected.users = len(tenants), len(everyone)
    written = 2 * len(tenants) + len(everyone)

    per_chat, extra = divmod(shape.messages, shape.chats)
    for first in range(0, shape.chats, CHATS_PER_SAVE):
        group: list[Conversation] = []
        for c in range(first, min(first + CHATS_PER_SAVE, shape.chats)):
            tenant = tenants[c % shape.tenants]
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
            progress.update(written, shape.events)
    return Loaded(events=store.head(), seconds=time.perf_counter() - started, expected=expected)


def load_and_read(
    store: EventStore, target: PostgresTarget, shape: LogShape, *, batch: int
) -> tuple[Loaded, CatchUp]:
    """Load the log, let the database settle, then read the whole log once (`read_only`)."""
    loaded = load(store, shape)
    vacuum(target, "parley_events")
    return loaded, read_only(store, batch=batch)


# -- reading the log back -------------------------------------------------------------------------

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
