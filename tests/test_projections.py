"""Projections as operators need them: safe to kill, rebuildable under traffic, observable,
and loud about an event they cannot process."""

import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import ConnectionPool
from pydantic import SecretStr

from api.runtime import Runtime
from commands.messages import SendMessage, StartChat
from domain.actor import Actor
from domain.chat import ChatSession, MessageRole
from domain.tenant import Tenant
from domain.user import Role, User
from infra.eventstore.event_store import EventStore, open_event_store
from infra.eventstore.follower_positions import read_position
from infra.migrations import read_model_ddl
from infra.postgres import PostgresTarget, open_pool
from infra.read_model_schema import (
    PROJECTION_NAME,
    TENANT_TABLES,
)
from infra.settings import Settings
from projections.read_models import ReadModelProjection
from projections.rebuild import rebuild_read_models
from testbed.processes import PARLEY, ROOT, target_url
from tests.conftest import MASTER_KEY, data_keys, fresh_database

HASH = "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG"


def load_log(store: EventStore, *, tenants: int, chats: int, messages: int) -> list[Actor]:
    """A realistic log written straight through the aggregates (many per save, like a bulk load)."""
    owners: list[Actor] = []
    for t in range(tenants):
        tenant = Tenant.create(name=f"Tenant {t}", slug=f"load-{uuid.uuid4().hex[:10]}")
        user = User.register(
            tenant_id=tenant.id,
            email=f"u{t}@example.com",
            display_name=f"U{t}",
            role=Role.MEMBER,
            password_hash=HASH,
        )
        store.save_all(tenant, user, actor=None)
        owners.append(Actor(user.id, tenant.id, Role.MEMBER))
    sessions = []
    for c in range(chats):
        owner = owners[c % tenants]
        sessions.append(
            ChatSession.start(
                chat_id=uuid.uuid4(),
                tenant_id=owner.tenant_id,
                owner_id=owner.user_id,
                title=f"chat {c}",
                model="echo",
            )
        )
    for m in range(messages):
        chat = sessions[m % chats]
        user_turn = (m // chats) % 2 == 0
        chat.post_message(
            message_id=uuid.uuid4(),
            role=MessageRole.USER if user_turn else MessageRole.ASSISTANT,
            content=f"message {m} about topic {m % 7}",
            author_id=None if not user_turn else chat.owner_id,
            model="echo",
            input_tokens=0 if user_turn else 10 + m % 5,
            output_tokens=0 if user_turn else 20 + m % 3,
            latency_ms=None if user_turn else 100 + m % 50,
        )
        if m % 997 == 0:
            chat.rename(f"renamed {m}")
    # A few chats per save: one save of ~10,000 events can stall in psycopg's pipeline (the
    # server waits for the client while the client waits for the server; seen with
    # eventsourcing 9.5.6 on large inserts), which no command comes near.
    for start in range(0, chats, 5):
        store.save_all(*sessions[start : start + 5], actor=None)
    sessions[0].delete()
    store.save_all(sessions[0], actor=None)
    return owners


def snapshot(conn: psycopg.Connection, schema: str) -> dict[str, list[str]]:
    """Every row of every read model table, generated search columns aside, in a stable order."""
    tables = {}
    for table in TENANT_TABLES:
        rows = conn.execute(
            sql.SQL(
                "SELECT (to_jsonb(t) - 'search_tsv' - 'title_tsv')::text AS r"
                " FROM {}.{} t ORDER BY r"
            ).format(sql.Identifier(schema), sql.Identifier(table))
        ).fetchall()
        tables[table] = [r[0] for r in rows]
    return tables


def clean_rebuild(store: EventStore, pool: ConnectionPool, schema: str) -> None:
    with pool.connection() as conn, conn.transaction():
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        conn.execute(read_model_ddl(schema))
    clean = ReadModelProjection(store, pool, schema=schema, name=f"{schema}@test")
    while batch := store.read(clean.position(), 1000):
        clean.handle(batch)


@pytest.fixture
def database(postgres_url: str) -> Iterator[tuple[PostgresTarget, EventStore, ConnectionPool]]:
    target = fresh_database(postgres_url)
    store = open_event_store(
        target,
        create_tables=False,
        pool_size=4,
        keys=data_keys(target),
    )
    pool = open_pool(target.conninfo(), size=4, name="test")
    yield target, store, pool
    pool.close()
    store.close()


def projection_position(pool: ConnectionPool) -> int:
    with pool.connection() as conn:
        return read_position(conn, PROJECTION_NAME)


def test_killing_the_projection_worker_at_random_points_loses_and_duplicates_nothing(
    database: tuple[PostgresTarget, EventStore, ConnectionPool],
) -> None:
    target, store, pool = database
    load_log(store, tenants=5, chats=60, messages=12_000)
    head = store.head()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")},
        "PARLEY_MASTER_KEY": MASTER_KEY,
        "PARLEY_DATABASE_URL": target_url(target),
        "PARLEY_LOG_LEVEL": "WARNING",
    }
    rng = random.Random(20261126)
    kills = 0
    while kills < 6 and projection_position(pool) < head:
        worker = subprocess.Popen(
            [*PARLEY, "worker", "projections", "--metrics-port", "0"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        before = projection_position(pool)
        deadline = time.monotonic() + 60
        while projection_position(pool) == before and time.monotonic() < deadline:
            time.sleep(0.01)  # wait until this worker is really projecting
        time.sleep(rng.uniform(0.0, 0.25))
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        kills += 1
    assert kills >= 3, "the log was too short to kill the worker during catch-up"
    assert projection_position(pool) < head or kills == 6

    worker = subprocess.Popen(
        [*PARLEY, "worker", "projections", "--metrics-port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while projection_position(pool) < head:
            assert time.monotonic() < deadline, "the worker did not catch up"
            time.sleep(0.05)
    finally:
        worker.terminate()
        worker.wait(30)

    clean_rebuild(store, pool, "readmodels_clean")
    with pool.connection() as conn:
        live, clean = snapshot(conn, "readmodels"), snapshot(conn, "readmodels_clean")
        usage = conn.execute(
            "SELECT sum(user_messages), sum(assistant_messages), sum(input_tokens),"
            " sum(output_tokens), sum(latency_ms_sum) FROM readmodels.rm_usage"
        ).fetchone()
    assert live == clean
    assert usage is not None and usage[0] + usage[1] == 12_000
    assert len(live["rm_messages"]) == 12_000 - 12_000 // 60  # the deleted chat's are gone


def test_a_rebuild_under_traffic_swaps_in_an_identical_copy_and_readers_never_see_it_half_built(
    database: tuple[PostgresTarget, EventStore, ConnectionPool], tmp_path
) -> None:
    target, store, pool = database
    owners = load_log(store, tenants=2, chats=20, messages=6_000)
    settings = Settings(
        database_url=target_url(target),
        data_dir=tmp_path,
        follower_poll_seconds=0.2,
        master_key=SecretStr(MASTER_KEY),  # what the store that loaded the log wrapped with
    )
    runtime = Runtime(settings)
    runtime.start(workers={"projections"})
    stop = threading.Event()
    errors: list[BaseException] = []
    observed: list[int] = []
    try:
        owner = owners[1]
        # Traffic: a real user of tenant 1 keeps writing through the command layer.
        user = User.register(
            tenant_id=owner.tenant_id,
            email="writer@example.com",
            display_name="W",
            role=Role.MEMBER,
            password_hash=HASH,
        )
        store.save_all(user, actor=None)
        writer = Actor(user.id, owner.tenant_id, Role.MEMBER)
        chat = runtime.bus.handle(StartChat(title="during rebuild"), writer)

        def traffic() -> None:
            n = 0
            while not stop.is_set():
                runtime.bus.handle(SendMessage(chat_id=chat.id, content=f"t{n}"), writer)
                n += 1
                time.sleep(0.005)

        def reader() -> None:
            reader_login = replace(target, user="parley_reader").conninfo()
            with psycopg.connect(reader_login, autocommit=True) as conn:
                while not stop.is_set():
                    with conn.transaction():
                        conn.execute(
                            "SELECT set_config('parley.tenant_id', %s, true)",
                            (str(owner.tenant_id),),
                        )
                        row = conn.execute("SELECT count(*) FROM rm_messages").fetchone()
                    observed.append(int(row[0]) if row else -1)

        def guarded(fn):  # type: ignore[no-untyped-def]
            def run() -> None:
                try:
                    fn()
                except BaseException as e:  # surfaced below
                    errors.append(e)

            return run

        threads = [threading.Thread(target=guarded(f)) for f in (traffic, reader)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        before = runtime.store.head()
        rebuilt_at = rebuild_read_models(store, pool, progress=lambda done, total: None)
        assert rebuilt_at >= before
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(30)
        assert not errors, errors
        head = store.head()
        deadline = time.monotonic() + 30
        while projection_position(pool) < head:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        stop.set()
        runtime.stop()

    assert len(observed) > 10
    pairs = zip(observed, observed[1:], strict=False)
    assert all(b >= a for a, b in pairs), "a reader saw rows disappear"
    clean_rebuild(store, pool, "readmodels_clean")
    with pool.connection() as conn:
        assert snapshot(conn, "readmodels") == snapshot(conn, "readmodels_clean")
        schemas = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'readmodels%' ORDER BY 1"
        ).fetchall()
    assert [s[0] for s in schemas] == ["readmodels", "readmodels_clean"]


def test_a_poison_event_is_isolated_reported_and_skippable(
    database: tuple[PostgresTarget, EventStore, ConnectionPool], tmp_path
) -> None:
    target, store, pool = database
    owners = load_log(store, tenants=1, chats=2, messages=10)
    # A corrupt record, as a bad migration or a bug could leave: the topic is real, the state
    # cannot be decoded. It sits between good events.
    with pool.connection() as conn:
        conn.execute(
            """INSERT INTO parley_events (originator_id, originator_version, topic, state)
               VALUES (%s, 1, 'parley.ChatSession.MessagePosted', %s)""",
            (uuid.uuid4(), b"{not json"),
        )
        conn.commit()
    poison = store.head()
    chat = ChatSession.start(
        chat_id=uuid.uuid4(),
        tenant_id=owners[0].tenant_id,
        owner_id=owners[0].user_id,
        title="after the poison",
        model="echo",
    )
    store.save_all(chat, actor=None)

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")},
        "PARLEY_MASTER_KEY": MASTER_KEY,
        "PARLEY_DATABASE_URL": target_url(target),
        "PARLEY_LOG_LEVEL": "WARNING",
    }
    worker = subprocess.Popen(
        [*PARLEY, "worker", "projections", "--metrics-port", "0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with pool.connection() as conn:
                row = conn.execute(
                    "SELECT position, error_position, error_topic, error_attempts, error"
                    " FROM follower_positions WHERE name = %s",
                    (PROJECTION_NAME,),
                ).fetchone()
            if row and row[1] is not None and row[3] >= 2:
                break
            assert time.monotonic() < deadline, row
            time.sleep(0.1)
        assert row[0] == poison - 1  # every good event before it is projected
        assert row[1] == poison and row[2] == "parley.ChatSession.MessagePosted"

        status = subprocess.run(
            [*PARLEY, "projections", "status"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert status.returncode == 1
        assert "failing" in status.stdout and f"event {poison} (parley.ChatSession" in status.stdout

        wrong = subprocess.run(
            [*PARLEY, "projections", "skip", PROJECTION_NAME, str(poison - 1)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert wrong.returncode == 2
        skipped = subprocess.run(
            [*PARLEY, "projections", "skip", PROJECTION_NAME, str(poison)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert skipped.returncode == 0, skipped.stderr
        deadline = time.monotonic() + 30
        while projection_position(pool) < store.head():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        worker.terminate()
        _, stderr = worker.communicate(timeout=30)
    assert f"cannot process event {poison}" in stderr
    with pool.connection() as conn:
        titles = conn.execute("SELECT title FROM readmodels.rm_chats").fetchall()
        cleared = conn.execute(
            "SELECT error FROM follower_positions WHERE name = %s", (PROJECTION_NAME,)
        ).fetchone()
    assert ("after the poison",) in titles and cleared == (None,)
