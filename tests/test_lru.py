"""The process-local caches' map: bounded by recency of use, entries optionally expiring."""

import time

from infra.lru import Lru


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: Lru[str, int] = Lru(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recently used
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_an_entry_with_a_time_to_live_is_gone_after_it() -> None:
    cache: Lru[str, int] = Lru(10)
    cache.put("short", 1, ttl=0.05)
    cache.put("kept", 2)
    assert cache.get("short") == 1
    time.sleep(0.1)  # past the entry's expiry: elapsed time only grows
    assert (cache.get("short"), cache.get("kept")) == (None, 2)


def test_putting_a_key_again_replaces_its_value_and_expiry() -> None:
    cache: Lru[str, int] = Lru(10)
    cache.put("k", 1, ttl=0.05)
    cache.put("k", 2)
    time.sleep(0.1)
    assert cache.get("k") == 2
