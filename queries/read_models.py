"""Small query functions over the read models, always inside a tenant-scoped transaction.

The pool connects as (or `SET ROLE`s to) `parley_reader`, which has no BYPASSRLS: even a query that
forgot its tenant filter sees only the rows of the tenant set for its transaction.
"""

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date
from typing import Any
from uuid import UUID

from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow, dict_row, tuple_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from domain.errors import ReadModelsBusy, ReadModelTimeout
from infra.metrics import READER_POOL_EXHAUSTED
from infra.read_model_schema import (
    PROJECTION_NAME,
    READ_SCHEMA,
    READER_ROLE,
    TENANT_DIRECTORY,
    TENANT_SETTING,
)

Row = dict[str, Any]

_USER = """SELECT u.user_id, u.tenant_id, u.email, u.display_name, u.role, u.active,
                  u.created_at, t.active AS tenant_active
           FROM rm_users u JOIN rm_tenants t ON t.tenant_id = u.tenant_id
           WHERE u.user_id = %s"""
_CHAT = "SELECT * FROM rm_chats WHERE tenant_id = %s AND chat_id = %s"
_USERS = _USER.replace("u.user_id = %s", "u.user_id = ANY(%s)")
_CHATS = "SELECT * FROM rm_chats WHERE tenant_id = %s AND chat_id = ANY(%s)"

MESSAGE_PAGE_COLUMNS = (
    "message_id",
    "chat_id",
    "role",
    "content",
    "model",
    "created_at",
    "seq",
    "reply_to",
    "input_tokens",
    "output_tokens",
    "finish_reason",
    "latency_ms",
    "provider",
    "attempts",
    "fallbacks",
    "time_to_first_token_ms",
    "cost_nanos",
    "cached",
    "citations",
)
"""What a page of messages reads of `rm_messages`, in this order (`ReadModels.message_page`)."""

# Plain text, composed once: psycopg would render a `sql.Composed` again at every execution.
# Ids as text: PostgreSQL formats them in C; psycopg would build a Python UUID of each, which
# the page then turns back into text.
_MESSAGE_PAGE = """SELECT {columns} FROM rm_messages
   WHERE tenant_id = %(t)s AND chat_id = %(c)s AND (%(a)s::bigint IS NULL OR seq > %(a)s)
   ORDER BY seq LIMIT %(n)s""".format(
    columns=", ".join(
        f"{c}::text" if c in ("message_id", "chat_id", "reply_to") else c
        for c in MESSAGE_PAGE_COLUMNS
    )
)

IDLE_BEFORE_CHECK = 2.0
"""A pooled connection idle for longer is pinged before it is handed out (one that sat through a
database restart is replaced, not given to a query); a busy pool's connections are not (a ping is
a round trip per query, which a loop serving thousands of sockets pays in whole iterations)."""


async def open_reader_pool(
    conninfo: str, *, size: int, set_role: bool = False
) -> AsyncConnectionPool[AsyncConnection[DictRow]]:
    """A pool for the query side. Prefer logging in as `parley_reader`; `set_role` is the
    fallback for deployments that give Parley a single database login."""
    returned_at: dict[int, float] = {}

    async def configure(conn: AsyncConnection[DictRow]) -> None:
        if set_role:
            await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(READER_ROLE)))
        # Names resolve in the live generation at every query: a rebuild's schema swap is
        # picked up by the next query, never half-way through one.
        await conn.execute(
            sql.SQL("SET search_path TO {}, public").format(sql.Identifier(READ_SCHEMA))
        )
        await conn.commit()
        # Every transaction of the query side begins READ ONLY (one statement fewer each).
        await conn.set_read_only(True)

    async def check(conn: AsyncConnection[DictRow]) -> None:
        if time.monotonic() - returned_at.pop(id(conn), 0.0) > IDLE_BEFORE_CHECK:
            await AsyncConnectionPool.check_connection(conn)

    async def reset(conn: AsyncConnection[DictRow]) -> None:
        returned_at[id(conn)] = time.monotonic()

    pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
        conninfo,
        min_size=1,
        max_size=size,
        configure=configure,
        check=check,  # survive a database restart
        reset=reset,
        kwargs={"row_factory": dict_row},
        open=False,
        name="reader",
    )
    await pool.open(wait=True, timeout=30)
    return pool


class ReadModels:
    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConnection[DictRow]],
        *,
        wait_timeout: float,
        checkout_timeout: float = 10.0,
    ) -> None:
        self._pool = pool
        self._wait_timeout = wait_timeout
        self._checkout_timeout = checkout_timeout
        self._reached = 0
        """The highest position the read models were seen at (they never go back; a rebuild
        swaps in a generation that is caught up)."""

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[DictRow]]:
        """A pooled connection; a pool that stays exhausted answers `ReadModelsBusy`."""
        try:
            conn = await self._pool.getconn(timeout=self._checkout_timeout)
        except PoolTimeout:
            READER_POOL_EXHAUSTED.inc()
            raise ReadModelsBusy(
                "every read connection is busy; retry shortly", retry_after=1
            ) from None
        try:
            yield conn
        finally:
            await self._pool.putconn(conn)

    @asynccontextmanager
    async def tenant(self, tenant_id: UUID) -> AsyncIterator[AsyncConnection[DictRow]]:
        """A read-only transaction (the pool's connections begin them READ ONLY) that can see
        only `tenant_id`'s rows.

        Pipelined: the transaction's preamble travels with the first query (one round trip, not
        three)."""
        async with self._connection() as conn, conn.pipeline(), conn.transaction():
            await conn.execute("SELECT set_config(%s, %s, true)", (TENANT_SETTING, str(tenant_id)))
            yield conn

    async def position(self) -> int:
        async with self._connection() as conn:
            cur = await conn.execute(
                "SELECT position FROM follower_positions WHERE name = %s", (PROJECTION_NAME,)
            )
            row = await cur.fetchone()
            return int(row["position"]) if row else 0

    async def wait_for(self, position: int | None) -> None:
        """Read-your-writes: wait (bounded) until the read models include `position`."""
        if not position or position <= self._reached:
            return
        deadline = time.monotonic() + self._wait_timeout
        delay = 0.002
        while (reached := await self.position()) < position:
            if time.monotonic() >= deadline:
                raise ReadModelTimeout(
                    f"read models have not reached position {position} yet; retry shortly"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        self._reached = max(self._reached, reached)

    async def user(self, tenant_id: UUID, user_id: UUID) -> Row | None:
        async with self.tenant(tenant_id) as conn:
            cur = await conn.execute(_USER, (user_id,))
            return await cur.fetchone()

    async def user_and_chat(
        self, tenant_id: UUID, user_id: UUID, chat_id: UUID
    ) -> tuple[Row | None, Row | None]:
        """`user` and `chat` in one transaction: both queries travel in one round trip."""
        async with self.tenant(tenant_id) as conn:
            user = await conn.execute(_USER, (user_id,))
            chat = await conn.execute(_CHAT, (tenant_id, chat_id))
            return await user.fetchone(), await chat.fetchone()

    async def users_and_chats(
        self, tenant_id: UUID, user_ids: Sequence[UUID], chat_ids: Sequence[UUID]
    ) -> tuple[dict[UUID, Row], dict[UUID, Row]]:
        """Many users and chats of one tenant by id, in one round trip."""
        async with self.tenant(tenant_id) as conn:
            users = await conn.execute(_USERS, (list(user_ids),))
            chats = await conn.execute(_CHATS, (tenant_id, list(chat_ids)))
            return (
                {r["user_id"]: r for r in await users.fetchall()},
                {r["chat_id"]: r for r in await chats.fetchall()},
            )

    async def user_chat_and_page(
        self, tenant_id: UUID, user_id: UUID, chat_id: UUID, *, first: int, after_seq: int | None
    ) -> tuple[Row | None, Row | None, list[tuple[Any, ...]]]:
        """`user_and_chat` and the chat's `message_page`, in one transaction (one round trip).
        The caller must not show the page before it has checked the user and the chat."""
        async with (
            self.tenant(tenant_id) as conn,
            conn.cursor(row_factory=tuple_row) as page,
        ):
            user = await conn.execute(_USER, (user_id,))
            chat = await conn.execute(_CHAT, (tenant_id, chat_id))
            await page.execute(
                _MESSAGE_PAGE, {"t": tenant_id, "c": chat_id, "a": after_seq, "n": first}
            )
            return await user.fetchone(), await chat.fetchone(), await page.fetchall()

    async def tenant_row(self, tenant_id: UUID) -> Row | None:
        async with self.tenant(tenant_id) as conn:
            cur = await conn.execute("SELECT * FROM rm_tenants WHERE tenant_id = %s", (tenant_id,))
            return await cur.fetchone()

    async def users(
        self, tenant_id: UUID, *, first: int, after: tuple[str, UUID] | None
    ) -> list[Row]:
        """The tenant's users (inactive ones too) by e-mail, then id (erased users share one
        placeholder address), after the (e-mail, id) of `after`."""
        email, user_id = after if after is not None else (None, None)
        async with self.tenant(tenant_id) as conn:
            cur = await conn.execute(
                """SELECT user_id, tenant_id, email, display_name, role, active, created_at
                   FROM rm_users
                   WHERE tenant_id = %(t)s
                     AND (%(e)s::text IS NULL OR (email, user_id) > (%(e)s, %(u)s::uuid))
                   ORDER BY email, user_id LIMIT %(n)s""",
                {"t": tenant_id, "e": email, "u": user_id, "n": first},
            )
            return await cur.fetchall()

    async def tenant_directory(self, *, first: int, after_slug: str | None) -> list[Row]:
        """Every tenant, by slug: the one read across tenants (`TENANT_DIRECTORY`). The caller
        must have decided that its caller may see them (domain/policy.py)."""
        async with self._connection() as conn, conn.transaction():
            cur = await conn.execute(
                sql.SQL("SELECT * FROM public.{}(%s, %s)").format(sql.Identifier(TENANT_DIRECTORY)),
                (after_slug, first),
            )
            return await cur.fetchall()

    async def chats(
        self, tenant_id: UUID, owner_id: UUID | None, *, first: int, before_seq: int | None
    ) -> list[Row]:
        """Newest first. `owner_id=None` lists every chat of the tenant (auditors)."""
        async with self.tenant(tenant_id) as conn:
            cur = await conn.execute(
                """SELECT * FROM rm_chats
                   WHERE tenant_id = %(t)s
                     AND (%(o)s::uuid IS NULL OR owner_id = %(o)s)
                     AND (%(b)s::bigint IS NULL OR seq < %(b)s)
                   ORDER BY seq DESC LIMIT %(n)s""",
                {"t": tenant_id, "o": owner_id, "b": before_seq, "n": first},
            )
            return await cur.fetchall()

    async def documents(
        self,
        tenant_id: UUID,
        owner_id: UUID | None,
        *,
        collection: str | None,
        first: int,
        before_seq: int | None,
    ) -> list[Row]:
        """Newest first: the tenant's collection and `owner_id`'s own documents (None: every
        owner's, for auditors); `collection` keeps one of the two."""
        async with self.tenant(tenant_id) as conn:
            cur = await conn.execute(
                """SELECT * FROM rm_documents
                   WHERE tenant_id = %(t)s
                     AND (owner_id IS NULL OR %(o)s::uuid IS NULL OR owner_id = %(o)s)
                     AND (%(c)s::text IS NULL OR collection = %(c)s)
                     AND (%(b)s::bigint IS NULL OR seq < %(b)s)
                   ORDER BY seq DESC LIMIT %(n)s""",
                {"t": tenant_id, "o": owner_id, "c": collection, "b": before_seq, "n": first},
            )
            return await cur.fetchall()

    async def documents_by_id(self, tenant_id: UUID, document_ids: Sequence[UUID]) -> list[Row]:
        async with self.tenant(tenant_id) as conn:
            cur = await conn.execute(
                "SELECT * FROM rm_documents WHERE tenant_id = %s AND document_id = ANY(%s)",
                (tenant_id, list(document_ids)),
            )
            return await cur.fetchall()

    async def chat(self, tenant_id: UUID, chat_id: UUID) -> Row | None:
        async with self.tenant(tenant_id) as conn:
            cur = await conn.execute(_CHAT, (tenant_id, chat_id))
            return await cur.fetchone()

    async def messages(
        self, tenant_id: UUID, chat_id: UUID, *, first: int, after_seq: int | None
    ) -> list[Row]:
        """Oldest first, as a conversation reads."""
        async with self.tenant(tenant_id) as conn:
            cur = await conn.execute(
                """SELECT * FROM rm_messages
                   WHERE tenant_id = %(t)s AND chat_id = %(c)s
                     AND (%(a)s::bigint IS NULL OR seq > %(a)s)
                   ORDER BY seq LIMIT %(n)s""",
                {"t": tenant_id, "c": chat_id, "a": after_seq, "n": first},
            )
            return await cur.fetchall()

    async def message_page(
        self, tenant_id: UUID, chat_id: UUID, *, first: int, after_seq: int | None
    ) -> list[tuple[Any, ...]]:
        """`messages` for a GraphQL page: the `MESSAGE_PAGE_COLUMNS` as tuples, ids as text."""
        async with (
            self.tenant(tenant_id) as conn,
            conn.cursor(row_factory=tuple_row) as cur,
        ):
            await cur.execute(
                _MESSAGE_PAGE, {"t": tenant_id, "c": chat_id, "a": after_seq, "n": first}
            )
            return await cur.fetchall()

    async def message(self, tenant_id: UUID, message_id: UUID) -> Row | None:
        async with self.tenant(tenant_id) as conn:
            cur = await conn.execute(
                "SELECT * FROM rm_messages WHERE tenant_id = %s AND message_id = %s",
                (tenant_id, message_id),
            )
            return await cur.fetchone()

    async def usage(
        self,
        tenant_id: UUID,
        *,
        start: date,
        end: date,
        group_by: Sequence[str],
        user_id: UUID | None = None,
    ) -> list[Row]:
        """Usage sums between two days (inclusive), grouped by any of day, user_id, model."""
        columns = [c for c in ("day", "user_id", "model") if c in group_by]
        select = [sql.Identifier(c) for c in columns]
        query = sql.SQL(
            """SELECT {select} sum(user_messages)::bigint AS user_messages,
                      sum(assistant_messages)::bigint AS assistant_messages,
                      sum(input_tokens)::bigint AS input_tokens,
                      sum(output_tokens)::bigint AS output_tokens,
                      sum(latency_ms_sum)::bigint AS latency_ms_sum,
                      sum(cost_nanos)::bigint AS cost_nanos
               FROM rm_usage
               WHERE tenant_id = %(t)s AND day BETWEEN %(start)s AND %(end)s
                 AND (%(u)s::uuid IS NULL OR user_id = %(u)s)
               {group} {order}"""
        ).format(
            select=sql.SQL("").join(sql.SQL("{}, ").format(c) for c in select),
            group=sql.SQL("GROUP BY {}").format(sql.SQL(", ").join(select))
            if select
            else sql.SQL(""),
            order=sql.SQL("ORDER BY {}").format(sql.SQL(", ").join(select))
            if select
            else sql.SQL(""),
        )
        async with self.tenant(tenant_id) as conn:
            cur = await conn.execute(
                query, {"t": tenant_id, "start": start, "end": end, "u": user_id}
            )
            return await cur.fetchall()
