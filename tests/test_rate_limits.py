"""Token buckets, in process, on a real Redis and on a real PostgreSQL (the same contract)."""

import uuid
from collections.abc import Iterator

import pytest
from psycopg_pool import ConnectionPool

from infra.rate_limits import (
    Buckets,
    LeasedBuckets,
    MemoryBuckets,
    PostgresBuckets,
    RedisBuckets,
    Verdict,
)


@pytest.fixture(params=["memory", "redis", "postgres"])
def buckets(request: pytest.FixtureRequest, redis_url: str) -> Iterator[Buckets]:
    if request.param == "postgres":
        pool: ConnectionPool = request.getfixturevalue("pg_pool")
        yield PostgresBuckets(pool)
    else:
        yield MemoryBuckets() if request.param == "memory" else RedisBuckets(redis_url)


def test_a_bucket_allows_its_capacity_then_says_when_to_retry(buckets: Buckets) -> None:
    key = f"test:{uuid.uuid4()}"
    assert all(buckets.take(key, 5, 60, 1).allowed for _ in range(5))
    refused = buckets.take(key, 5, 60, 1)
    assert not refused.allowed and 0 < refused.retry_after <= 12.5


def test_a_debit_may_overdraw_and_delays_the_next_take(buckets: Buckets) -> None:
    key = f"test:{uuid.uuid4()}"
    assert buckets.take(key, 1000, 60, 100).allowed
    buckets.debit(key, 1000, 60, 5000)  # the reply used far more than estimated
    refused = buckets.take(key, 1000, 60, 10)
    assert not refused.allowed and refused.retry_after > 60


def test_buckets_are_independent(buckets: Buckets) -> None:
    a, b = f"test:{uuid.uuid4()}", f"test:{uuid.uuid4()}"
    assert buckets.take(a, 1, 60, 1).allowed
    assert not buckets.take(a, 1, 60, 1).allowed
    assert buckets.take(b, 1, 60, 1).allowed


def test_a_peek_answers_like_a_take_without_taking(buckets: Buckets) -> None:
    key = f"test:{uuid.uuid4()}"
    assert all(buckets.peek(key, 2, 60, 1).allowed for _ in range(5))
    buckets.debit(key, 2, 60, 1)
    buckets.debit(key, 2, 60, 1)
    refused = buckets.peek(key, 2, 60, 1)
    assert not refused.allowed and 0 < refused.retry_after <= 30
    assert not buckets.take(key, 2, 60, 1).allowed


class Counted:
    """A shared bucket that counts the takes reaching it."""

    def __init__(self, shared: Buckets) -> None:
        self.shared = shared
        self.takes = 0

    def take(self, key: str, capacity: int, period: float, cost: float) -> Verdict:
        self.takes += 1
        return self.shared.take(key, capacity, period, cost)

    def debit(self, key: str, capacity: int, period: float, cost: float) -> None:
        self.shared.debit(key, capacity, period, cost)

    def peek(self, key: str, capacity: int, period: float, cost: float) -> Verdict:
        return self.shared.peek(key, capacity, period, cost)


def test_a_leased_bucket_reaches_the_shared_one_once_per_lease_and_never_exceeds_it(
    buckets: Buckets,
) -> None:
    key = f"test:{uuid.uuid4()}"
    shared = Counted(buckets)
    first, second = LeasedBuckets(shared, fraction=0.1), LeasedBuckets(shared, fraction=0.1)
    # Two processes spend one bucket of 100 (leases of 10): 100 operations pass, not one more.
    allowed = [(first if n % 2 else second).take(key, 100, 60, 1).allowed for n in range(100)]
    assert all(allowed) and shared.takes == 10  # ten leases, not a hundred takes
    assert not any(leased.take(key, 100, 60, 1).allowed for leased in (first, second))


def test_a_bucket_too_small_to_lease_is_taken_exactly(buckets: Buckets) -> None:
    key = f"test:{uuid.uuid4()}"
    leased = LeasedBuckets(buckets, fraction=0.02)
    assert sum(leased.take(key, 40, 60, 1).allowed for _ in range(45)) == 40


def test_the_redis_reply_cache_round_trips_and_expires(redis_url: str) -> None:
    import time

    from infra.llm.base import ChatTurn, GenerationParams
    from infra.llm.cache import CachedReply, RedisCache, cache_key

    cache = RedisCache(redis_url)
    tenant = uuid.uuid4()
    key = cache_key(tenant, "openai/m", [ChatTurn("user", "hi")], GenerationParams("m", 100))
    other = cache_key(uuid.uuid4(), "openai/m", [ChatTurn("user", "hi")], GenerationParams("m"))
    reply = CachedReply("hello", "openai", "m-2026", 3, 1)
    assert cache.get(key) is None
    cache.put(key, reply, 1)
    assert cache.get(key) == reply and cache.get(other) is None
    time.sleep(1.2)
    assert cache.get(key) is None
