"""The text of replies still being generated, so a client that (re)subscribes mid-reply gets
what was produced so far before the rest (resumable streams).

The responder appends every delta it publishes and clears a reply once it is recorded; the deltas
of all replies that go out together are appended in one call (one round trip). Redis
when configured (the responder may run in another process than the subscriber's API server),
PostgreSQL (the unlogged `partial_replies` table) when processes share state without Redis, in
process otherwise. Entries expire after an hour in case a responder dies mid-reply."""

import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

TTL_SECONDS = 3600

Piece = tuple[UUID, UUID, str]
"""(chat id, reply id, text to append)."""


def merged(pieces: Sequence[Piece]) -> dict[tuple[UUID, UUID], str]:
    """The text to append per reply, in order (a reply may appear more than once)."""
    texts: dict[tuple[UUID, UUID], list[str]] = {}
    for chat_id, reply_id, text in pieces:
        texts.setdefault((chat_id, reply_id), []).append(text)
    return {key: "".join(parts) for key, parts in texts.items()}


class ReplyBuffer(Protocol):
    def append_many(self, pieces: Sequence[Piece]) -> None:
        """Append each piece's text to its reply's, in order."""
        ...

    def finish(self, chat_id: UUID, reply_id: UUID) -> None: ...

    def snapshot(self, chat_id: UUID) -> dict[UUID, str]:
        """Every reply in progress in the chat: its text so far."""
        ...


class MemoryReplyBuffer:
    def __init__(self) -> None:
        self._replies: dict[UUID, dict[UUID, list[str]]] = defaultdict(dict)
        self._lock = threading.Lock()

    def append_many(self, pieces: Sequence[Piece]) -> None:
        with self._lock:
            for chat_id, reply_id, text in pieces:
                self._replies[chat_id].setdefault(reply_id, []).append(text)

    def finish(self, chat_id: UUID, reply_id: UUID) -> None:
        with self._lock:
            replies = self._replies.get(chat_id, {})
            replies.pop(reply_id, None)
            if not replies:
                self._replies.pop(chat_id, None)

    def snapshot(self, chat_id: UUID) -> dict[UUID, str]:
        with self._lock:
            return {r: "".join(parts) for r, parts in self._replies.get(chat_id, {}).items()}


class RedisReplyBuffer:
    PREFIX = "parley:partial:"

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=2)

    def _keys(self, chat_id: UUID, reply_id: UUID) -> tuple[str, str]:
        return f"{self.PREFIX}{chat_id}", f"{self.PREFIX}{chat_id}:{reply_id}"

    def append_many(self, pieces: Sequence[Piece]) -> None:
        pipe = self._client.pipeline(transaction=True)
        for (chat_id, reply_id), text in merged(pieces).items():
            index, key = self._keys(chat_id, reply_id)
            pipe.append(key, text.encode())
            pipe.expire(key, TTL_SECONDS)
            pipe.sadd(index, str(reply_id))
            pipe.expire(index, TTL_SECONDS)
        pipe.execute()

    def finish(self, chat_id: UUID, reply_id: UUID) -> None:
        index, key = self._keys(chat_id, reply_id)
        pipe = self._client.pipeline(transaction=True)
        pipe.srem(index, str(reply_id))
        pipe.delete(key)
        pipe.execute()

    def snapshot(self, chat_id: UUID) -> dict[UUID, str]:
        index = f"{self.PREFIX}{chat_id}"
        ids = [UUID(r.decode()) for r in self._client.smembers(index)]  # type: ignore[union-attr]
        if not ids:
            return {}
        texts = self._client.mget([self._keys(chat_id, r)[1] for r in ids])
        return {r: t.decode() for r, t in zip(ids, texts, strict=True) if t}  # type: ignore[union-attr]


class PostgresReplyBuffer:
    def __init__(self, pool: "ConnectionPool") -> None:
        self._pool = pool

    def append_many(self, pieces: Sequence[Piece]) -> None:
        # One statement for the batch; merged first, as one INSERT … ON CONFLICT may not touch
        # a row twice.
        texts = merged(pieces)
        if not texts:
            return
        chats, replies = zip(*texts, strict=True)
        with self._pool.connection() as conn:
            conn.execute(
                """INSERT INTO partial_replies (chat_id, reply_id, text)
                   SELECT * FROM unnest(%s::uuid[], %s::uuid[], %s::text[])
                   ON CONFLICT (chat_id, reply_id) DO UPDATE
                   SET text = partial_replies.text || excluded.text, updated_at = now()""",
                (list(chats), list(replies), list(texts.values())),
            )

    def finish(self, chat_id: UUID, reply_id: UUID) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "DELETE FROM partial_replies WHERE chat_id = %s AND reply_id = %s",
                (chat_id, reply_id),
            )

    def snapshot(self, chat_id: UUID) -> dict[UUID, str]:
        with self._pool.connection() as conn:
            rows = conn.execute(
                """SELECT reply_id, text FROM partial_replies
                   WHERE chat_id = %s AND updated_at > now() - make_interval(secs => %s)""",
                (chat_id, TTL_SECONDS),
            ).fetchall()
        return {row[0]: row[1] for row in rows}
