"""One bounded LRU map for the process-local caches (parsed documents, verified tokens, OIDC
discovery and keys, model replies, data keys, API keys); an entry may also carry an expiry.

cachetools' `TLRUCache` does the work (least-recently-used eviction, a time-to-use per entry);
what it leaves to its users is a lock, since our caches are shared by request threads."""

import math
import threading
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

from cachetools import TLRUCache

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def _expiry(key: object, entry: tuple[float, object], now: float) -> float:
    return entry[0]


class Lru(Generic[K, V]):
    def __init__(self, max_entries: int) -> None:
        self._cache: TLRUCache[K, tuple[float, V]] = TLRUCache(
            maxsize=max_entries, ttu=_expiry, timer=time.monotonic
        )
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The value, or None when absent or expired."""
        with self._lock:
            entry = self._cache.get(key)
        return None if entry is None else entry[1]

    def put(self, key: K, value: V, ttl: float | None = None) -> None:
        """Keep `value` (for `ttl` seconds, or until evicted); the least recently used entries
        go beyond `max_entries`."""
        expires = math.inf if ttl is None else time.monotonic() + ttl
        with self._lock:
            self._cache[key] = (expires, value)
