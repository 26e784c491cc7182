"""What `bench api` measures Parley against, over the same rows in the same PostgreSQL database:

- the **peer**: a plain strawberry + FastAPI app written the way a team would (no auth, no event
  store): `chat(id) { messages(first) { nodes { id role content } pageInfo { hasNextPage } } }`
  reads Parley's read model (`readmodels.rm_messages`), `sendMessage` inserts one message row
  into a scratch table shaped like it (`bench_peer_messages`); the same GraphQL documents as
  Parley's;
- the **limit**: a bare FastAPI app, `GET /chats/{id}/messages?first=50` (the same rows as JSON)
  and `POST /chats/{id}/messages` (one row into `bench_limit_messages`).

Both are served by uvicorn (`--factory`, `--workers N`, its defaults otherwise: uvloop and
httptools, as Parley's server) in a process of their own, with a psycopg async pool of up
to `POOL_SIZE` connections per process; the database is PARLEY_DATABASE_URL.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from enum import Enum
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import psycopg
import strawberry
from fastapi import FastAPI, Request, Response
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from strawberry.fastapi import GraphQLRouter

from testbed.processes import ROOT, free_port

POOL_SIZE = 20  # Parley's read pool (PARLEY_READ_POOL_SIZE) has 20 connections too
PEER_TABLE = "bench_peer_messages"
LIMIT_TABLE = "bench_limit_messages"

PAGE = """SELECT message_id, role, content FROM readmodels.rm_messages
          WHERE chat_id = %s ORDER BY seq LIMIT %s"""
INSERT = """INSERT INTO {table} (message_id, tenant_id, chat_id, seq, role, content, author_id,
                                 created_at)
            SELECT %(id)s, tenant_id, chat_id, nextval({sequence}), 'user', %(content)s,
                   owner_id, now()
            FROM readmodels.rm_chats WHERE chat_id = %(chat)s
            RETURNING seq"""


def create_tables(conninfo: str) -> None:
    """The scratch tables the peer and the limit insert into: rm_messages' columns, defaults,
    generated search column and indexes, and a sequence for `seq`."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for table in (PEER_TABLE, LIMIT_TABLE):
            conn.execute(
                sql.SQL("CREATE TABLE {} (LIKE readmodels.rm_messages INCLUDING ALL)").format(
                    sql.Identifier(table)
                )
            )
            conn.execute(sql.SQL("CREATE SEQUENCE {}").format(sql.Identifier(f"{table}_seq")))


def insert_message(table: str) -> sql.Composed:
    return sql.SQL(INSERT).format(table=sql.Identifier(table), sequence=sql.Literal(f"{table}_seq"))


def open_pool() -> AsyncConnectionPool:
    return AsyncConnectionPool(
        os.environ["PARLEY_DATABASE_URL"], min_size=4, max_size=POOL_SIZE, open=False
    )


def served(pool: AsyncConnectionPool) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True)
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


# -- the peer: strawberry + FastAPI -------------------------------------------------------------


@strawberry.enum
class MessageRole(Enum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


@strawberry.type
class Message:
    id: strawberry.ID
    role: MessageRole
    content: str


@strawberry.type
class PageInfo:
    has_next_page: bool


@strawberry.type
class MessageConnection:
    nodes: list[Message]
    page_info: PageInfo


@strawberry.type
class Chat:
    id: strawberry.ID
    title: str

    @strawberry.field
    async def messages(self, info: strawberry.Info, first: int = 20) -> MessageConnection:
        async with info.context["pool"].connection() as conn:
            cur = await conn.execute(PAGE, (self.id, first + 1))
            rows = await cur.fetchall()
        return MessageConnection(
            nodes=[
                Message(id=strawberry.ID(str(r[0])), role=MessageRole(r[1]), content=r[2])
                for r in rows[:first]
            ],
            page_info=PageInfo(has_next_page=len(rows) > first),
        )


@strawberry.type
class Query:
    @strawberry.field
    async def chat(self, info: strawberry.Info, id: strawberry.ID) -> Chat | None:
        async with info.context["pool"].connection() as conn:
            cur = await conn.execute(
                "SELECT chat_id, title FROM readmodels.rm_chats WHERE chat_id = %s", (id,)
            )
            row = await cur.fetchone()
        return Chat(id=strawberry.ID(str(row[0])), title=row[1]) if row else None


@strawberry.input
class SendMessageInput:
    chat_id: strawberry.ID
    content: str


@strawberry.type
class SendMessagePayload:
    message_id: strawberry.ID
    position: int


class ChatNotFound(Exception):
    pass


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def send_message(
        self, info: strawberry.Info, input: SendMessageInput
    ) -> SendMessagePayload:
        message_id = uuid4()
        async with info.context["pool"].connection() as conn:
            cur = await conn.execute(
                insert_message(PEER_TABLE),
                {"id": message_id, "content": input.content, "chat": input.chat_id},
            )
            row = await cur.fetchone()
        if row is None:
            raise ChatNotFound(f"no chat {input.chat_id}")
        return SendMessagePayload(message_id=strawberry.ID(str(message_id)), position=row[0])


def peer_app() -> FastAPI:
    """The peer (uvicorn's `--factory`)."""
    pool = open_pool()

    async def context() -> dict[str, AsyncConnectionPool]:
        return {"pool": pool}

    app = served(pool)
    schema = strawberry.Schema(query=Query, mutation=Mutation)
    app.include_router(GraphQLRouter(schema, context_getter=context), prefix="/graphql")
    return app


# -- the limit: bare FastAPI --------------------------------------------------------------------


def limit_app() -> FastAPI:
    """The limit (uvicorn's `--factory`): no GraphQL, no validation model, JSON by hand."""
    pool = open_pool()
    app = served(pool)
    insert = insert_message(LIMIT_TABLE)

    @app.get("/chats/{chat_id}/messages")
    async def messages(chat_id: UUID, first: int = 50) -> Response:
        async with pool.connection() as conn:
            cur = await conn.execute(PAGE, (chat_id, first + 1))
            rows = await cur.fetchall()
        page = {
            "nodes": [{"id": str(r[0]), "role": r[1], "content": r[2]} for r in rows[:first]],
            "hasNextPage": len(rows) > first,
        }
        return Response(json.dumps(page), media_type="application/json")

    @app.post("/chats/{chat_id}/messages")
    async def send_message(chat_id: UUID, request: Request) -> Response:
        message_id = uuid4()
        content = json.loads(await request.body())["content"]
        async with pool.connection() as conn:
            cur = await conn.execute(
                insert, {"id": message_id, "content": content, "chat": chat_id}
            )
            row = await cur.fetchone()
        if row is None:
            return Response(status_code=404)
        body = {"messageId": str(message_id), "position": row[0]}
        return Response(json.dumps(body), media_type="application/json")

    return app


# -- serving them -------------------------------------------------------------------------------


class AppServer:
    """`uvicorn bench.peers:<factory> --factory --workers N` on a free loopback port, logging to
    `log_dir`."""

    def __init__(self, factory: str, database_url: str, workers: int, log_dir: Path) -> None:
        self.factory = factory
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"{factory}-{self.port}.log"
        self.env = {**os.environ, "PARLEY_DATABASE_URL": database_url}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "AppServer":
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            f"bench.peers:{self.factory}",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--log-level",
            "warning",
            "--no-server-header",
        ]
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.factory} exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.factory} did not become ready:\n{self.log.read_text()[-3000:]}")

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def stop(self) -> None:
        """uvicorn stops gracefully on SIGTERM (its workers too); killed after 30 s."""
        proc, self.proc = self.proc, None
        if proc is not None:
            proc.terminate()
            with suppress(subprocess.TimeoutExpired):
                proc.wait(30)
            proc.kill()  # nothing, once it has ended
            proc.wait()


@contextmanager
def peer_servers(
    database_url: str, workers: int, *, keep: bool = False
) -> Iterator[tuple[AppServer, AppServer]]:
    """The peer and the limit, started (uvicorn --workers `workers`); stopped on the way out,
    and their logs removed unless `keep`."""
    logs = Path(tempfile.mkdtemp(prefix="parley-bench-peers-"))
    started: list[AppServer] = []
    try:
        for factory in ("peer_app", "limit_app"):
            started.append(AppServer(factory, database_url, workers, logs))
            started[-1].start()
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()
        if keep:
            print(f"kept the peer's and the limit's logs in {logs}", file=sys.stderr)
        else:
            shutil.rmtree(logs, ignore_errors=True)
