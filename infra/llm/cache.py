"""The exact-match response cache: a reply reused for an identical request, per tenant.

The key is a SHA-256 over the tenant, the model reference, every message sent (system prompt
included) and the generation parameters, so nothing is shared across tenants and any difference
in the conversation misses. Redis when configured (shared by every process, expiring by TTL),
otherwise a bounded in-process LRU."""

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Protocol
from uuid import UUID

from infra.llm.base import ChatTurn, GenerationParams
from infra.lru import Lru

log = logging.getLogger(__name__)

KEY_PREFIX = "parley:reply-cache:"


@dataclass(frozen=True)
class CachedReply:
    content: str
    provider: str
    model: str
    input_tokens: int
    output_tokens: int


def cache_key(
    tenant_id: UUID, model_ref: str, turns: list[ChatTurn], params: GenerationParams
) -> str:
    body = json.dumps(
        {
            "tenant": str(tenant_id),
            "model": model_ref,
            "messages": [[t.role, t.content] for t in turns],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


class ResponseCache(Protocol):
    def get(self, key: str) -> CachedReply | None: ...

    def put(self, key: str, reply: CachedReply, ttl_seconds: int) -> None: ...


class MemoryCache:
    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: Lru[str, CachedReply] = Lru(max_entries)

    def get(self, key: str) -> CachedReply | None:
        return self._entries.get(key)

    def put(self, key: str, reply: CachedReply, ttl_seconds: int) -> None:
        self._entries.put(key, reply, ttl=ttl_seconds)


class RedisCache:
    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=2)

    def get(self, key: str) -> CachedReply | None:
        try:
            raw = self._client.get(KEY_PREFIX + key)
        except Exception:  # the cache is an optimisation: Redis down means a miss
            return None
        return CachedReply(**json.loads(raw)) if raw else None

    def put(self, key: str, reply: CachedReply, ttl_seconds: int) -> None:
        try:
            self._client.set(KEY_PREFIX + key, json.dumps(asdict(reply)), ex=ttl_seconds)
        except Exception:  # a reply not cached is only a later miss
            log.warning("could not cache a reply in Redis", exc_info=True)
