"""Group commit on the write path: concurrent saves share transactions, yet each caller succeeds
or fails on its own, and nothing acknowledged is ever lost (real PostgreSQL, fsync on)."""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from domain.chat import ChatSession, MessageRole
from infra.eventstore.event_store import EventStore, IntegrityError, open_event_store
from infra.metrics import GROUP_COMMIT_BATCH, GROUP_COMMIT_FALLBACKS
from infra.postgres import PostgresTarget
from testbed.processes import ROOT, target_url
from tests.conftest import MASTER_KEY, data_keys, fresh_database

TENANT, OWNER = uuid.uuid4(), uuid.uuid4()


@pytest.fixture(scope="module")
def target(postgres_url: str) -> PostgresTarget:
    return fresh_database(postgres_url)


def grouped_store(
    target: PostgresTarget, window_ms: float = 0.0, aggregate_cache: int = 0
) -> EventStore:
    return open_event_store(
        target,
        create_tables=False,
        pool_size=4,
        keys=data_keys(target),
        group_commit=True,
        group_commit_window_ms=window_ms,
        aggregate_cache=aggregate_cache,
    )


@pytest.fixture
def store(target: PostgresTarget) -> Iterator[EventStore]:
    s = grouped_store(target)
    yield s
    s.close()


def new_chat(store: EventStore, title: str = "t") -> UUID:
    chat = ChatSession.start(
        chat_id=uuid.uuid4(), tenant_id=TENANT, owner_id=OWNER, title=title, model="echo"
    )
    store.save_all(chat, actor=None)
    return chat.id


def post(store: EventStore, chat_id: UUID, text: str, key: str | None = None) -> int:
    chat = store.repository.get(chat_id)
    chat.post_message(
        message_id=uuid.uuid4(),
        role=MessageRole.USER,
        content=text,
        author_id=OWNER,
        client_mutation_id=key,
    )
    return store.save_all(chat, actor=None)


def batches() -> tuple[float, float]:
    """(batches committed, saves in them) so far, from the committer's histogram."""
    samples = {s.name: s.value for s in GROUP_COMMIT_BATCH.collect()[0].samples}
    return samples["parley_group_commit_batch_saves_count"], samples[
        "parley_group_commit_batch_saves_sum"
    ]


def fallbacks() -> float:
    return GROUP_COMMIT_FALLBACKS._value.get()


def test_concurrent_writers_to_different_aggregates_share_transactions(
    target: PostgresTarget,
) -> None:
    # A 20 ms window: with none (the default) a batch is whatever queued during the previous
    # commit, which on a loaded 2-core CI machine was at times under two saves (flaky).
    store = grouped_store(target, window_ms=20)
    try:
        chats = [new_chat(store) for _ in range(32)]
        before_batches, before_saves = batches()

        def writer(chat_id: UUID) -> list[int]:  # one writer per chat: no conflicts here
            return [post(store, chat_id, f"m{n}") for n in range(20)]

        with ThreadPoolExecutor(32) as pool:
            positions = [p for ps in pool.map(writer, chats) for p in ps]
        after_batches, after_saves = batches()
        assert after_saves - before_saves == 640
        assert after_batches - before_batches < 640 / 2  # on average several saves per commit
        assert len(set(positions)) == 640  # each caller got its own event's position
        for chat_id in chats:
            events = list(store.events.get(chat_id))
            assert [e.originator_version for e in events] == list(range(1, 22))
            assert len(store.repository.get(chat_id).messages) == 20
    finally:
        store.close()


def test_a_conflict_inside_a_batch_fails_only_its_own_save(target: PostgresTarget) -> None:
    store = grouped_store(target, window_ms=300)  # everyone below lands in one batch
    try:
        contested, bystanders = new_chat(store), [new_chat(store) for _ in range(4)]
        # Two writers hold the same version of one chat: only one of them may win.
        copies = [store.repository.get(contested) for _ in range(2)]
        for n, copy in enumerate(copies):
            copy.post_message(
                message_id=uuid.uuid4(), role=MessageRole.USER, content=f"c{n}", author_id=OWNER
            )
        others = [store.repository.get(c) for c in bystanders]
        for chat in others:
            chat.post_message(
                message_id=uuid.uuid4(), role=MessageRole.USER, content="ok", author_id=OWNER
            )
        before = fallbacks()
        start = threading.Barrier(6)

        def save(aggregate: ChatSession) -> str:
            start.wait()
            try:
                store.save_all(aggregate, actor=None)
                return "saved"
            except IntegrityError:
                return "conflict"

        with ThreadPoolExecutor(6) as pool:
            outcomes = list(pool.map(save, [*copies, *others]))
    finally:
        store.close()
    assert sorted(outcomes[:2]) == ["conflict", "saved"]
    assert outcomes[2:] == ["saved"] * 4
    assert fallbacks() == before + 1
    reader = grouped_store(target)
    try:
        assert [m.content for m in reader.repository.get(contested).messages] in (["c0"], ["c1"])
        for chat_id in bystanders:
            assert [m.content for m in reader.repository.get(chat_id).messages] == ["ok"]
    finally:
        reader.close()


def test_two_writers_of_one_aggregate_with_one_idempotency_key_store_one_message(
    target: PostgresTarget,
) -> None:
    """Two processes (stores) retrying one client request inside batches: one message."""
    first, second = grouped_store(target, window_ms=50), grouped_store(target, window_ms=50)
    try:
        chat = new_chat(first)
        key = str(uuid.uuid4())

        def send(n: int) -> str:
            store = first if n % 2 else second
            for _ in range(50):
                try:
                    post(store, chat, "once", key)
                    return "stored"
                except IntegrityError:
                    continue  # a version conflict: reload and try again, as commands do
                except Exception as e:  # the key is taken: the domain refuses a second use
                    if "clientMutationId" in str(e):
                        return "duplicate"
                    raise
            raise AssertionError("no progress")

        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(send, range(8)))
        assert sorted(outcomes) == ["duplicate"] * 7 + ["stored"]
        messages = first.repository.get(chat).messages
        assert [m.content for m in messages] == ["once"]
    finally:
        first.close()
        second.close()


WRITER = """
import sys, threading, uuid
from domain.chat import ChatSession, MessageRole
from infra.eventstore.event_store import open_event_store
from infra.eventstore.data_keys import DataKeys
from infra.identity.master_key import MasterKey
from infra.postgres import PostgresTarget

target = PostgresTarget.from_url(sys.argv[1])
keys = DataKeys.standalone(target.conninfo(), MasterKey.from_setting(sys.argv[2], None))
store = open_event_store(target, create_tables=False, pool_size=4, keys=keys, group_commit=True)
lock = threading.Lock()

def write(worker):
    chat = ChatSession.start(chat_id=uuid.uuid4(), tenant_id=uuid.uuid4(), owner_id=uuid.uuid4(),
                             title="w", model="echo")
    store.save_all(chat, actor=None)
    n = 0
    while True:
        n += 1
        message = uuid.uuid4()
        chat.post_message(message_id=message, role=MessageRole.USER, content=f"{n}",
                          author_id=chat.owner_id)
        store.save_all(chat, actor=None)
        with lock:  # acknowledged: durable from here on
            print(chat.id, message, flush=True)

for w in range(16):
    threading.Thread(target=write, args=(w,), daemon=True).start()
threading.Event().wait()
"""


def test_a_process_killed_mid_batch_loses_only_unacknowledged_saves(
    target: PostgresTarget, tmp_path: Path
) -> None:
    acks = tmp_path / "acks.txt"
    with acks.open("w") as out:
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, target_url(target), MASTER_KEY],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + 60
        while acks.stat().st_size < 40_000:  # a few hundred acknowledged saves
            assert writer.poll() is None, writer.stderr.read() if writer.stderr else ""
            assert time.monotonic() < deadline, "the writer made no progress"
            time.sleep(0.05)
        writer.send_signal(signal.SIGKILL)  # in the middle of whatever batch is in flight
        writer.wait()
    # Only whole lines: the kill may tear the acknowledgement being written (its save was
    # durable, but the test never saw it acknowledged).
    lines = acks.read_text().splitlines(keepends=True)
    acknowledged = [line.split() for line in lines if line.endswith("\n") and line.strip()]
    assert len(acknowledged) > 200
    reader = grouped_store(target)
    try:
        by_chat: dict[str, set[str]] = {}
        for chat_id, message_id in acknowledged:
            by_chat.setdefault(chat_id, set()).add(message_id)
        for chat_id, messages in by_chat.items():
            stored = {str(m.id) for m in reader.repository.get(UUID(chat_id)).messages}
            assert messages <= stored, f"acknowledged saves of chat {chat_id} were lost"
    finally:
        reader.close()


def test_load_reads_what_another_process_wrote_since_it_cached_each_aggregate(
    target: PostgresTarget,
) -> None:
    """`EventStore.load` fast-forwards every cached aggregate in one query: nothing another
    writer recorded since is missed, and read-only loads share the cached object."""
    ours, theirs = (grouped_store(target, aggregate_cache=100) for _ in range(2))
    try:
        chats = [new_chat(ours, f"chat {n}") for n in range(3)]
        first = ours.load(*((c, True) for c in chats))  # now cached, version 1 each
        assert [c.title for c in first] == ["chat 0", "chat 1", "chat 2"]

        post(theirs, chats[0], "one")
        post(theirs, chats[0], "two")
        post(theirs, chats[2], "three")
        missing = uuid.uuid4()
        loaded = ours.load((chats[0], True), (chats[1], False), (chats[2], False), (missing, True))

        assert [m.content for m in loaded[0].messages] == ["one", "two"]
        assert loaded[0] is first[0]  # read-only: the cached object itself, fast-forwarded
        assert loaded[1] is not first[1] and loaded[1].version == 1  # writable: a copy
        assert [m.content for m in loaded[2].messages] == ["three"]
        assert loaded[3] is None
        # The copy is changed and saved by us; the next load sees the saved version.
        loaded[2].rename("renamed")
        ours.save_all(loaded[2], actor=None)
        (again,) = ours.load((chats[2], True))
        assert again.title == "renamed" and again.version == 3
    finally:
        ours.close()
        theirs.close()


def test_a_database_without_the_insert_function_is_refused_with_a_hint(
    postgres_url: str,
) -> None:
    bare = fresh_database(postgres_url)  # migrated: it has the function, until we drop it
    with psycopg.connect(bare.conninfo(), autocommit=True) as conn:
        conn.execute("DROP FUNCTION parley_insert_events")
    with pytest.raises(RuntimeError, match="parley migrate"):
        open_event_store(
            bare, create_tables=False, pool_size=1, keys=data_keys(bare), group_commit=True
        )
