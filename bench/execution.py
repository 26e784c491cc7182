"""`python -m bench.execution`: the in-process cost of one GraphQL read, compiled vs graphql-core.

The documents of `bench api` (`messages(first: 50)` and `chats(first: 20)`) run against Parley's
schema with the read models' rows in memory (no database, no HTTP), so the figure is the Python
a request costs in strawberry and graphql-core (parse and validation cached, as in the server),
resolvers, row-to-object mapping and the JSON encoding of the response: once with list fields
completed by compiled plans (`api/compiled_execution.py`, as served) and once by graphql-core
alone. Prints CPU µs per request (best of several rounds), steady enough to compare commits on
a busy machine.
"""

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from api.schema import ParleySchema, build_schema
from bench import options
from bench.api import CHATS, MESSAGES
from bench.options import at_least_one, option
from bench.report import print_columns
from domain.actor import Actor
from domain.user import Role
from queries.read_models import MESSAGE_PAGE_COLUMNS


@dataclass(frozen=True)
class Options:
    requests: int = option(2000, "requests per document and execution", at_least_one)
    rounds: int = option(5, "best of this many rounds", at_least_one)


class MemoryReadModels:
    """The read models' answers to the documents, from rows built once."""

    def __init__(self, tenant_id: UUID, user_id: UUID, chat_id: UUID) -> None:
        now = datetime(2026, 12, 1, tzinfo=UTC)
        self.user_row = {
            "user_id": user_id,
            "tenant_id": tenant_id,
            "email": "a@example.com",
            "display_name": "A",
            "role": "tenant_admin",
            "active": True,
            "created_at": now,
            "tenant_active": True,
        }
        self.chat_rows = [
            {
                "chat_id": chat_id if n == 0 else uuid.uuid4(),
                "tenant_id": tenant_id,
                "owner_id": user_id,
                "title": f"chat {n}",
                "model": "echo",
                "status": "active",
                "message_count": 60,
                "seq": 1000 - n,
                "created_at": now,
                "updated_at": now,
                "last_message_at": now,
            }
            for n in range(21)
        ]
        self.message_rows = [
            {
                "message_id": uuid.uuid4(),
                "tenant_id": tenant_id,
                "chat_id": chat_id,
                "seq": 10 + n,
                "role": "user" if n % 2 == 0 else "assistant",
                "content": f"filler {n // 2}" if n % 2 == 0 else f"echo: filler {n // 2}",
                "model": None if n % 2 == 0 else "echo",
                "author_id": user_id if n % 2 == 0 else None,
                "reply_to": None,
                "input_tokens": 0,
                "output_tokens": 0,
                "finish_reason": None if n % 2 == 0 else "stop",
                "latency_ms": None,
                "created_at": now + timedelta(seconds=n),
                "provider": None,
                "attempts": None,
                "fallbacks": None,
                "time_to_first_token_ms": None,
                "cost_nanos": None,
                "cached": None,
            }
            for n in range(60)
        ]

        self.message_page_rows = [
            tuple(
                str(v) if isinstance(v, UUID) else v for v in (r[c] for c in MESSAGE_PAGE_COLUMNS)
            )
            for r in self.message_rows
        ]

    async def wait_for(self, position: int | None) -> None:
        return None

    async def user(self, tenant_id: UUID, user_id: UUID) -> dict[str, Any]:
        return self.user_row

    async def user_and_chat(
        self, tenant_id: UUID, user_id: UUID, chat_id: UUID
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        chat = next((c for c in self.chat_rows if c["chat_id"] == chat_id), None)
        return self.user_row, chat

    async def user_chat_and_page(
        self, tenant_id: UUID, user_id: UUID, chat_id: UUID, *, first: int, after_seq: int | None
    ) -> tuple[dict[str, Any], dict[str, Any] | None, list[tuple[Any, ...]]]:
        user, chat = await self.user_and_chat(tenant_id, user_id, chat_id)
        page = await self.message_page(tenant_id, chat_id, first=first, after_seq=after_seq)
        return user, chat, page

    async def chats(
        self, tenant_id: UUID, owner_id: UUID | None, *, first: int, before_seq: int | None
    ) -> list[dict[str, Any]]:
        return self.chat_rows[:first]

    async def messages(
        self, tenant_id: UUID, chat_id: UUID, *, first: int, after_seq: int | None
    ) -> list[dict[str, Any]]:
        return [r for r in self.message_rows if after_seq is None or r["seq"] > after_seq][:first]

    async def message_page(
        self, tenant_id: UUID, chat_id: UUID, *, first: int, after_seq: int | None
    ) -> list[tuple[Any, ...]]:
        seq = MESSAGE_PAGE_COLUMNS.index("seq")
        rows = self.message_page_rows
        return [r for r in rows if after_seq is None or r[seq] > after_seq][:first]


class MemoryContext:
    """What the query resolvers of these documents use of a request's context."""

    def __init__(self, actor: Actor, read_models: MemoryReadModels) -> None:
        self._actor = actor
        self.read_models = read_models

    def actor(self) -> Actor:
        return self._actor


async def per_request(
    schema: ParleySchema, query: str, variables: dict[str, Any], context: MemoryContext, n: int
) -> float:
    """CPU µs per request (this process's CPU time, so that other load on the machine counts
    little): execute and encode the response as the HTTP router does."""
    started = time.process_time()
    for _ in range(n):
        result = await schema.execute(query, variables, context)
        if result.errors:
            raise RuntimeError(result.errors)
        json.dumps({"data": result.data})
    return (time.process_time() - started) / n * 1e6


async def measure(opts: Options) -> list[tuple[str, ...]]:
    tenant_id, user_id, chat_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    context = MemoryContext(
        Actor(user_id, tenant_id, Role.TENANT_ADMIN), MemoryReadModels(tenant_id, user_id, chat_id)
    )
    schemas = {"compiled": build_schema(), "graphql-core": build_schema(compiled_lists=False)}
    documents = {
        "messages(first: 50)": (MESSAGES, {"id": str(chat_id)}),
        "chats(first: 20)": (CHATS, {}),
    }
    rows = []
    for name, (query, variables) in documents.items():
        figures = {}
        for label, schema in schemas.items():
            a = await schema.execute(query, variables, context)
            if a.errors:
                raise RuntimeError(a.errors)
            rounds = [
                await per_request(schema, query, variables, context, opts.requests)
                for _ in range(opts.rounds)
            ]
            figures[label] = min(rounds)
        compiled, plain = figures["compiled"], figures["graphql-core"]
        rows.append((name, f"{compiled:,.0f}", f"{plain:,.0f}", f"{plain / compiled:.2f}x"))
    return rows


def main(argv: Sequence[str]) -> int:
    opts = options.parse(Options, argv, "execution", __doc__)  # python -m bench.execution
    rows = asyncio.run(measure(opts))
    header = ("document", "compiled CPU µs/request", "graphql-core CPU µs/request", "ratio")
    print_columns(header, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
