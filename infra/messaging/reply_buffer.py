"""The text of replies still being generated, so a client that (re)subscribes mid-reply gets
what was produced so far before the rest (resumable streams).

The responder appends every delta it publishes and clears a reply once it is recorded. Redis
when configured (the responder may run in another process than the subscriber's API server),
PostgreSQL (the unlogged `partial_replies` table) when processes share state without Redis, in
process otherwise. Entries expire after an hour in case a responder dies mid-reply."""

import threading
from collections import defaultdict
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

TTL_SECONDS = 3600


class ReplyBuffer(Protocol):
    def append(self, chat_id: UUID, reply_id: UUID, text: str) -> None: ...

    def finish(self, chat_id: UUID, reply_id: UUID) -> None: ...

    def snapshot(self, chat_id: UUID) -> dict[UUID, str]:
        """Every reply in progress in the chat: its text so far."""
        ...


class MemoryReplyBuffer:
    def __init__(self) -> None:
        self._replies: dict[UUID, dict[UUID, list[str]]] = defaultdict(dict)
        self._lock = threading.Lock()

    def append(self, chat_id: UUID, reply_id: UUID, text: str) -> None:
        with self._lock:
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

    def append(self, chat_id: UUID, reply_id: UUID, text: str) -> None:
        index, key = self._keys(chat_id, reply_id)
        pipe = self._client.pipeline(transaction=True)
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

    def append(self, chat_id: UUID, reply_id: UUID, text: str) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                """INSERT INTO partial_replies (chat_id, reply_id, text) VALUES (%s, %s, %s)
                   ON CONFLICT (chat_id, reply_id) DO UPDATE
                   SET text = partial_replies.text || excluded.text, updated_at = now()""",
                (chat_id, reply_id, text),
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
