"""Token buckets for request and token rate limits: Redis (atomic, shared by every process) when
configured; PostgreSQL (the `parley_bucket` function, atomic under a row lock, shared by every
process on the database) when processes share state without Redis; in process otherwise.

A bucket holds up to `capacity` units and refills at `capacity / period` per second. Taking
`cost` units succeeds only when that many are there; `debit` always takes (the bucket may go
negative: a reply that used more tokens than estimated delays the next requests); `peek` says
whether `take` would succeed without taking (buckets that count failures: sign-ins)."""

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

TAKE, DEBIT, PEEK = 0, 1, 2

_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local mode = tonumber(ARGV[5])
local state = redis.call('HMGET', KEYS[1], 'level', 'at')
local level = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
level = math.min(capacity, level + (now - at) * rate)
local ok = 0
if mode == 1 or level >= cost then
  ok = 1
  if mode ~= 2 then
    level = level - cost
  end
end
redis.call('HSET', KEYS[1], 'level', level, 'at', now)
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 60)
return {ok, tostring(level)}
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: float
    """Seconds until `cost` units are there again (0 when allowed)."""


class Buckets(Protocol):
    def take(self, key: str, capacity: int, period: float, cost: float) -> Verdict: ...

    def debit(self, key: str, capacity: int, period: float, cost: float) -> None: ...

    def peek(self, key: str, capacity: int, period: float, cost: float) -> Verdict: ...


def _retry_after(level: float, cost: float, rate: float) -> float:
    return max(0.0, (cost - level) / rate) if rate > 0 else float("inf")


class _Bucketing:
    """take, debit and peek, each one `_apply` with its mode."""

    def _apply(self, key: str, capacity: int, period: float, cost: float, mode: int) -> Verdict:
        raise NotImplementedError

    def take(self, key: str, capacity: int, period: float, cost: float) -> Verdict:
        return self._apply(key, capacity, period, cost, TAKE)

    def debit(self, key: str, capacity: int, period: float, cost: float) -> None:
        self._apply(key, capacity, period, cost, DEBIT)

    def peek(self, key: str, capacity: int, period: float, cost: float) -> Verdict:
        return self._apply(key, capacity, period, cost, PEEK)


class MemoryBuckets(_Bucketing):
    def __init__(self) -> None:
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _apply(self, key: str, capacity: int, period: float, cost: float, mode: int) -> Verdict:
        rate = capacity / period
        now = time.monotonic()
        with self._lock:
            level, at = self._state.get(key, (float(capacity), now))
            level = min(float(capacity), level + (now - at) * rate)
            allowed = mode == DEBIT or level >= cost
            if allowed and mode != PEEK:
                level -= cost
            self._state[key] = (level, now)
        return Verdict(allowed, 0.0 if allowed else _retry_after(level, cost, rate))


class RedisBuckets(_Bucketing):
    PREFIX = "parley:bucket:"

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=2)
        self._script = self._client.register_script(_TAKE)

    def _apply(self, key: str, capacity: int, period: float, cost: float, mode: int) -> Verdict:
        rate = capacity / period
        ok, level = self._script(
            keys=[self.PREFIX + key], args=[capacity, rate, cost, time.time(), mode]
        )
        allowed = bool(int(ok))
        return Verdict(allowed, 0.0 if allowed else _retry_after(float(level), cost, rate))


class PostgresBuckets(_Bucketing):
    """One round trip per take, on a small pool of the command side's database."""

    def __init__(self, pool: "ConnectionPool") -> None:
        self._pool = pool

    def _apply(self, key: str, capacity: int, period: float, cost: float, mode: int) -> Verdict:
        rate = capacity / period
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT allowed, remaining FROM parley_bucket(%s, %s, %s, %s, %s)",
                (key, float(capacity), rate, float(cost), mode),
            ).fetchone()
        assert row is not None
        allowed, level = bool(row[0]), float(row[1])
        return Verdict(allowed, 0.0 if allowed else _retry_after(level, cost, rate))


class LeasedBuckets:
    """A shared bucket spent in leases: `take` debits the shared bucket several units at a time
    (a fraction of its capacity) and spends them in this process, so a burst of one caller's
    operations queues on the shared bucket (one locked row in PostgreSQL) once per lease instead
    of once per operation. Leased units are spent within `hold` seconds or dropped: the shared
    limit is never exceeded, at worst reached a little early. For coarse limits (operations per
    minute); a bucket too small for a lease of two units is taken unit by unit, exactly."""

    def __init__(self, shared: Buckets, *, fraction: float = 0.02, hold: float = 1.0) -> None:
        self._shared = shared
        self._fraction = fraction
        self._hold = hold
        self._lock = threading.Lock()
        self._leases: dict[str, tuple[float, float]] = {}
        """Per key: units leased and not yet spent, and until when they may be."""

    def take(self, key: str, capacity: int, period: float, cost: float) -> Verdict:
        now = time.monotonic()
        with self._lock:
            units, until = self._leases.get(key, (0.0, 0.0))
            if until > now and units >= cost:
                self._leases[key] = (units - cost, until)
                return Verdict(True, 0.0)
        size = max(cost, math.floor(capacity * self._fraction))
        if size > cost and self._shared.take(key, capacity, period, size).allowed:
            with self._lock:
                if len(self._leases) > 10_000:  # callers come and go: forget spent leases
                    self._leases = {k: v for k, v in self._leases.items() if v[1] > now}
                self._leases[key] = (size - cost, now + self._hold)
            return Verdict(True, 0.0)
        return self._shared.take(key, capacity, period, cost)

    def debit(self, key: str, capacity: int, period: float, cost: float) -> None:
        self._shared.debit(key, capacity, period, cost)

    def peek(self, key: str, capacity: int, period: float, cost: float) -> Verdict:
        return self._shared.peek(key, capacity, period, cost)
