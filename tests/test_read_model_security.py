"""Row-level security on the read models, proven with queries that deliberately forget the tenant.

Two tenants each get a user, a chat and a message through the real command handlers; once the
projection has caught up we query the rm_* tables as `parley_reader` with no WHERE clause at all.
"""

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from uuid import UUID

import psycopg
import pytest
from psycopg import errors, sql

from api.runtime import Runtime
from commands.messages import CreateTenant, SendMessage, StartChat, UploadDocument
from domain.actor import Actor
from domain.errors import ReadModelsBusy
from domain.user import Role
from infra.postgres import PostgresTarget
from infra.read_model_schema import (
    PROJECTION_NAME,
    READER_ROLE,
    TENANT_SETTING,
    TENANT_TABLES,
)
from queries import read_models as read_models_module
from queries.read_models import ReadModels, open_reader_pool

READ_MODEL_TABLES = (
    "rm_messages",
    "rm_chats",
    "rm_users",
    "rm_tenants",
    "rm_usage",
    "rm_documents",
)
CATCH_UP_TIMEOUT = 10.0


@dataclass(frozen=True)
class TenantData:
    slug: str
    tenant_id: UUID
    admin_id: UUID
    chat_id: UUID
    message_id: UUID


def seed_tenant(runtime: Runtime) -> tuple[TenantData, int]:
    slug = f"rls-{uuid.uuid4().hex[:12]}"
    created = runtime.bus.handle(
        CreateTenant(
            name=slug, slug=slug, admin_email=f"admin@{slug}.example", admin_password="p" * 16
        )
    )
    admin = Actor(created.admin_user_id, created.tenant_id, Role.TENANT_ADMIN)
    chat = runtime.bus.handle(StartChat(title=f"Secret plans of {slug}"), admin)
    sent = runtime.bus.handle(
        SendMessage(chat_id=chat.id, content=f"confidential to {slug}"), admin
    )
    uploaded = runtime.bus.handle(
        UploadDocument(filename=f"{slug}.txt", data=f"The plans of {slug}.".encode()), admin
    )
    data = TenantData(slug, created.tenant_id, created.admin_user_id, chat.id, sent.message_id)
    return data, max(sent.position, uploaded.position)


def projection_position(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT position FROM follower_positions WHERE name = %s", (PROJECTION_NAME,)
    ).fetchone()
    return int(row[0]) if row else 0


def wait_for_projection(target: PostgresTarget, position: int) -> None:
    """Bounded poll until the read-model projection has committed `position`."""
    deadline = time.monotonic() + CATCH_UP_TIMEOUT
    with psycopg.connect(target.conninfo(), autocommit=True) as conn:
        while projection_position(conn) < position:
            if time.monotonic() >= deadline:
                pytest.fail(f"read models did not reach {position} in {CATCH_UP_TIMEOUT}s")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def two_tenants(runtime: Runtime, pg_target: PostgresTarget) -> tuple[TenantData, TenantData]:
    a, _ = seed_tenant(runtime)
    b, position = seed_tenant(runtime)
    wait_for_projection(pg_target, position)
    return a, b


@pytest.fixture
def reader(pg_target: PostgresTarget) -> Iterator[psycopg.Connection]:
    """A connection logged in as the reader role, as the query side's pool is."""
    with psycopg.connect(reader_login(pg_target), autocommit=True) as conn:
        yield conn


def reader_login(target: PostgresTarget) -> str:
    return replace(target, user=READER_ROLE, password="").conninfo()


@pytest.fixture
def owner(pg_target: PostgresTarget) -> Iterator[psycopg.Connection]:
    """The schema owner's connection: row-level security does not apply to it."""
    with psycopg.connect(pg_target.conninfo(), autocommit=True) as conn:
        conn.execute("SET search_path TO readmodels, public")
        yield conn


def unfiltered_tenant_ids(conn: psycopg.Connection, table: str, tenant: UUID | str | None) -> list:
    """`SELECT tenant_id FROM <table>` with no WHERE clause, in a transaction scoped to `tenant`."""
    with conn.transaction():
        if tenant is not None:
            conn.execute("SELECT set_config(%s, %s, true)", (TENANT_SETTING, str(tenant)))
        rows = conn.execute(sql.SQL("SELECT tenant_id FROM {}").format(sql.Identifier(table)))
        return [r[0] for r in rows.fetchall()]


def test_every_read_model_table_is_protected() -> None:
    assert set(TENANT_TABLES) == set(READ_MODEL_TABLES)


def test_reader_role_is_not_a_superuser_and_cannot_bypass_row_level_security(
    reader: psycopg.Connection,
) -> None:
    role = reader.execute(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert reader.execute("SELECT current_user").fetchone() == (READER_ROLE,)
    assert role == (False, False)


@pytest.mark.parametrize("table", READ_MODEL_TABLES)
def test_the_database_holds_rows_of_both_tenants(
    owner: psycopg.Connection, two_tenants: tuple[TenantData, TenantData], table: str
) -> None:
    a, b = two_tenants
    present = set(unfiltered_tenant_ids(owner, table, None))
    assert {a.tenant_id, b.tenant_id} <= present


@pytest.mark.parametrize("table", READ_MODEL_TABLES)
def test_unfiltered_query_as_reader_returns_only_the_tenant_set_for_the_transaction(
    reader: psycopg.Connection, two_tenants: tuple[TenantData, TenantData], table: str
) -> None:
    a, b = two_tenants

    seen_by_a = unfiltered_tenant_ids(reader, table, a.tenant_id)
    seen_by_b = unfiltered_tenant_ids(reader, table, b.tenant_id)

    assert seen_by_a and set(seen_by_a) == {a.tenant_id}
    assert seen_by_b and set(seen_by_b) == {b.tenant_id}


def test_second_tenant_cannot_read_first_tenants_chat_or_message_even_by_id(
    reader: psycopg.Connection, two_tenants: tuple[TenantData, TenantData]
) -> None:
    a, b = two_tenants
    with reader.transaction():
        reader.execute("SELECT set_config(%s, %s, true)", (TENANT_SETTING, str(b.tenant_id)))
        chat = reader.execute("SELECT * FROM rm_chats WHERE chat_id = %s", (a.chat_id,))
        assert chat.fetchall() == []
        message = reader.execute("SELECT * FROM rm_messages WHERE message_id = %s", (a.message_id,))
        assert message.fetchall() == []
        user = reader.execute("SELECT * FROM rm_users WHERE user_id = %s", (a.admin_id,))
        assert user.fetchall() == []


@pytest.mark.parametrize("table", READ_MODEL_TABLES)
def test_reader_without_a_tenant_sees_no_rows(
    reader: psycopg.Connection, two_tenants: tuple[TenantData, TenantData], table: str
) -> None:
    assert unfiltered_tenant_ids(reader, table, None) == []
    assert unfiltered_tenant_ids(reader, table, "") == []


def test_tenant_setting_does_not_outlive_its_transaction(
    reader: psycopg.Connection, two_tenants: tuple[TenantData, TenantData]
) -> None:
    a, _ = two_tenants
    assert unfiltered_tenant_ids(reader, "rm_chats", a.tenant_id)
    assert unfiltered_tenant_ids(reader, "rm_chats", None) == []


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param(
            "INSERT INTO rm_chats (chat_id, tenant_id, owner_id, title, model, status, seq,"
            " created_at, updated_at) VALUES (gen_random_uuid(), %(t)s, gen_random_uuid(),"
            " 'forged', 'echo', 'active', 0, now(), now())",
            id="insert-chat",
        ),
        pytest.param(
            "INSERT INTO rm_messages (message_id, tenant_id, chat_id, seq, role, content,"
            " created_at) VALUES (gen_random_uuid(), %(t)s, %(c)s, 0, 'user', 'forged', now())",
            id="insert-message",
        ),
        pytest.param("UPDATE rm_chats SET title = 'hijacked'", id="update-chats"),
        pytest.param("UPDATE rm_users SET role = 'platform_admin'", id="update-users"),
        pytest.param("UPDATE rm_tenants SET active = false", id="update-tenants"),
        pytest.param("DELETE FROM rm_messages", id="delete-messages"),
        pytest.param("DELETE FROM rm_chats", id="delete-chats"),
        pytest.param("UPDATE follower_positions SET position = 0", id="rewind-projection"),
    ],
)
def test_reader_role_cannot_write_to_the_read_models(
    reader: psycopg.Connection,
    owner: psycopg.Connection,
    two_tenants: tuple[TenantData, TenantData],
    statement: str,
) -> None:
    a, _ = two_tenants

    with pytest.raises(errors.InsufficientPrivilege), reader.transaction():
        reader.execute("SELECT set_config(%s, %s, true)", (TENANT_SETTING, str(a.tenant_id)))
        reader.execute(statement, {"t": a.tenant_id, "c": a.chat_id})

    chats = owner.execute(
        "SELECT title FROM rm_chats WHERE tenant_id = %s", (a.tenant_id,)
    ).fetchall()
    assert chats == [(f"Secret plans of {a.slug}",)]
    message = owner.execute(
        "SELECT content FROM rm_messages WHERE message_id = %s", (a.message_id,)
    ).fetchone()
    assert message == (f"confidential to {a.slug}",)
    tenant = owner.execute(
        "SELECT active FROM rm_tenants WHERE tenant_id = %s", (a.tenant_id,)
    ).fetchone()
    assert tenant == (True,)
    admin = owner.execute("SELECT role FROM rm_users WHERE user_id = %s", (a.admin_id,)).fetchone()
    assert admin == ("tenant_admin",)
    assert projection_position(owner) > 0


def test_reader_role_cannot_read_the_event_log(reader: psycopg.Connection) -> None:
    with pytest.raises(errors.InsufficientPrivilege), reader.transaction():
        reader.execute("SELECT count(*) FROM parley_events")


# -- the query side's own API ---------------------------------------------------------------------


@asynccontextmanager
async def reading(target: PostgresTarget, size: int, **options: float) -> AsyncIterator[ReadModels]:
    """The query side over a pool of its own that logs in as the reader, closed afterwards."""
    pool = await open_reader_pool(reader_login(target), size=size)
    try:
        yield ReadModels(pool, wait_timeout=CATCH_UP_TIMEOUT, **options)
    finally:
        await pool.close()


async def test_read_models_hide_first_tenants_rows_from_second_tenant(
    pg_target: PostgresTarget, two_tenants: tuple[TenantData, TenantData]
) -> None:
    a, b = two_tenants
    async with reading(pg_target, size=2) as reads:
        assert await reads.chat(b.tenant_id, a.chat_id) is None
        assert await reads.messages(b.tenant_id, a.chat_id, first=100, after_seq=None) == []
        assert await reads.message(b.tenant_id, a.message_id) is None
        assert await reads.user(b.tenant_id, a.admin_id) is None
        assert await reads.tenant_row(b.tenant_id) is not None
        b_chats = await reads.chats(b.tenant_id, None, first=100, before_seq=None)
        assert [c["chat_id"] for c in b_chats] == [b.chat_id]

        own = await reads.chat(a.tenant_id, a.chat_id)
        assert own is not None and own["tenant_id"] == a.tenant_id
        messages = await reads.messages(a.tenant_id, a.chat_id, first=100, after_seq=None)
        assert a.message_id in {m["message_id"] for m in messages}
        assert {m["tenant_id"] for m in messages} == {a.tenant_id}


async def test_read_models_transaction_is_read_only_and_scoped_to_one_tenant(
    pg_target: PostgresTarget, two_tenants: tuple[TenantData, TenantData]
) -> None:
    a, b = two_tenants
    async with reading(pg_target, size=2) as reads:
        async with reads.tenant(b.tenant_id) as conn:
            cur = await conn.execute("SELECT tenant_id FROM rm_chats")  # no tenant filter
            assert {r["tenant_id"] for r in await cur.fetchall()} == {b.tenant_id}
        with pytest.raises(errors.ReadOnlySqlTransaction):
            async with reads.tenant(a.tenant_id) as conn:
                await conn.execute("UPDATE rm_chats SET title = 'x' WHERE false")


async def test_user_and_chat_read_together_stay_in_one_tenant(
    pg_target: PostgresTarget, two_tenants: tuple[TenantData, TenantData]
) -> None:
    a, b = two_tenants
    async with reading(pg_target, size=1) as reads:
        assert await reads.user_and_chat(b.tenant_id, a.admin_id, a.chat_id) == (None, None)
        user, chat = await reads.user_and_chat(a.tenant_id, a.admin_id, a.chat_id)
        assert user is not None and user["user_id"] == a.admin_id and user["tenant_active"]
        assert chat is not None and chat["chat_id"] == a.chat_id


async def test_an_exhausted_read_pool_answers_unavailable_then_recovers(
    pg_target: PostgresTarget, two_tenants: tuple[TenantData, TenantData]
) -> None:
    a, _ = two_tenants
    async with reading(pg_target, size=1, checkout_timeout=0.2) as reads:
        async with reads.tenant(a.tenant_id):  # holds the only connection
            with pytest.raises(ReadModelsBusy) as refused:
                await reads.chat(a.tenant_id, a.chat_id)
        assert refused.value.code == "UNAVAILABLE"
        assert refused.value.extensions["retryAfterSeconds"] >= 1
        assert await reads.chat(a.tenant_id, a.chat_id) is not None


async def test_a_read_connection_killed_while_idle_is_replaced_not_handed_out(
    pg_target: PostgresTarget,
    two_tenants: tuple[TenantData, TenantData],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database restart kills idle pooled connections; the next query must not fail on one."""
    a, _ = two_tenants
    monkeypatch.setattr(read_models_module, "IDLE_BEFORE_CHECK", 0.0)
    async with reading(pg_target, size=1) as reads:
        async with reads.tenant(a.tenant_id) as conn:
            pid = conn.info.backend_pid
        with psycopg.connect(pg_target.conninfo(), autocommit=True) as owner:
            owner.execute("SELECT pg_terminate_backend(%s)", (pid,))
        assert await reads.chat(a.tenant_id, a.chat_id) is not None


async def test_query_pool_logs_in_as_the_reader_and_cannot_reset_its_role(read_models) -> None:
    async with read_models.tenant(uuid.uuid4()) as conn:
        cur = await conn.execute("SELECT session_user AS s, current_user AS c")
        row = await cur.fetchone()
        assert row == {"s": "parley_reader", "c": "parley_reader"}
        await conn.execute("RESET ROLE")
        cur = await conn.execute("SELECT current_user AS c, count(*) AS n FROM rm_chats")
        assert await cur.fetchone() == {"c": "parley_reader", "n": 0}


async def test_single_login_deployments_fall_back_to_set_role_and_stay_isolated(
    pg_target: PostgresTarget, two_tenants: tuple[TenantData, TenantData]
) -> None:
    a, b = two_tenants
    pool = await open_reader_pool(pg_target.conninfo(), size=1, set_role=True)
    try:
        reads = ReadModels(pool, wait_timeout=CATCH_UP_TIMEOUT)
        async with reads.tenant(b.tenant_id) as conn:
            cur = await conn.execute("SELECT current_user AS c")
            assert await cur.fetchone() == {"c": READER_ROLE}
            cur = await conn.execute("SELECT DISTINCT tenant_id FROM rm_messages")
            assert [r["tenant_id"] for r in await cur.fetchall()] == [b.tenant_id]
    finally:
        await pool.close()


def test_migrate_sets_the_reader_password_when_one_is_configured(pg_target: PostgresTarget) -> None:
    from infra.migrations import migrate

    migrate(pg_target, reader_password="reader-secret-for-test")
    with psycopg.connect(pg_target.conninfo(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT rolpassword IS NOT NULL, rolcanlogin, rolbypassrls FROM pg_authid"
            " WHERE rolname = 'parley_reader'"
        ).fetchone()
    assert row == (True, True, False)
