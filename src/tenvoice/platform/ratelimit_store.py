"""Where rate-limit counters live: this process's memory, or a Redis every process shares.

Both count in fixed windows, the semantics of the `limits` library's `FixedWindowRateLimiter`: a
budget's window opens with its first hit and holds the whole budget until it expires, so a
client may spend all of it at once ("burst to the same") and at worst twice over a window's
edge. A moving window would be exact, but on Redis it keeps one entry per hit (a sorted list
of up to the budget, per caller) where a fixed window keeps one integer; the edge's burst is
the price, and it is bounded.
"""

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from limits.aio.storage import RedisStorage
from limits.aio.storage.redis.redispy import RedispyBridge
from prometheus_client import Counter
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from limits import RateLimitItem
from tenvoice.platform.outage import Outage

log = logging.getLogger("tenvoice.ratelimit")

BACKEND_ERRORS = Counter(
    "tenvoice_rate_limit_backend_errors_total",
    "Rate-limit checks that failed because the shared counter store (Redis) did not answer; "
    "the request was let through",
)
# A rate limiter must never be what makes a request slow: Redis on the same network answers
# in well under a millisecond, so a quarter second means it is not answering at all.
_SOCKET_TIMEOUT_SECONDS = 0.25
# After a failure Redis is left alone for a while (doubling, jittered, at most this long) so
# that requests during an outage do not each wait out a timeout.
_MAX_SKIP_SECONDS = 5.0
_SWEEP_SECONDS = 1.0
# The outage is reported once when it starts; a Redis that comes and goes is reported again
# only after this long.
_WARN_EVERY_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Count:
    used: int  # hits in the current window, this one included
    reset: float  # seconds until the window ends


Hit = tuple[RateLimitItem, str]  # a budget and the storage key of one caller's counter


class Counters(Protocol):
    async def hit(self, budgets: Sequence[Hit]) -> list[Count] | None:
        """Spend one from each budget; None when the store cannot say (let the request by)."""

    async def close(self) -> None: ...


class MemoryCounters:
    """This process alone: the embedded default, where one process serves everything.

    The fixed window of `limits`' memory storage, without that storage: it starts a task that
    walks every counter on each hit, which under many client addresses costs more than the
    request it limits. Here expired counters are dropped at most once a second.
    """

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}  # key -> (hits, monotonic end)
        self._next_sweep = 0.0

    async def hit(self, budgets: Sequence[Hit]) -> list[Count]:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._windows = {k: w for k, w in self._windows.items() if w[1] > now}
            self._next_sweep = now + _SWEEP_SECONDS
        counts = []
        for item, key in budgets:
            used, ends = self._windows.get(key, (0, 0.0))
            if ends <= now:
                used, ends = 0, now + item.get_expiry()
            self._windows[key] = (used + 1, ends)
            counts.append(Count(used + 1, ends - now))
        return counts

    async def close(self) -> None:
        self._windows.clear()


class RedisCounters:
    """Every process's counters in one Redis, in one command per request.

    `limits` spends a budget in one call and reads its window in another, per budget: four
    round trips for a credential and its tenant, and it has no batch API. So one script
    spends every budget of the request and reads their windows, on the storage's own key
    format and with the semantics of its `incr_expire` script (a window opens with its first
    hit). One command rather than a pipeline of four: the pipeline's bookkeeping in the
    client cost more CPU than the rest of a small request's rate limiting. It is sent whole
    with EVAL, not by its digest: one round trip even for a Redis that has just restarted and
    forgotten its scripts, and the script is a few lines. (On a Redis Cluster the keys of one
    request would have to share a hash slot; tenvoice expects one Redis.)
    """

    def __init__(self, url: str, key_prefix: str) -> None:
        options: dict[str, Any] = {
            "socket_timeout": _SOCKET_TIMEOUT_SECONDS,
            "socket_connect_timeout": _SOCKET_TIMEOUT_SECONDS,
            # redis-py retries a failed command three times by default; the back-off below
            # is the only retry that fits a request waiting on the answer.
            "retry": Retry(NoBackoff(), 0),
        }
        self._storage = RedisStorage(
            f"async+{url}", implementation="redispy", key_prefix=key_prefix, **options
        )
        self._bridge = cast(RedispyBridge, self._storage.bridge)
        self._client = cast(Redis, self._bridge.get_connection())
        self._outage = Outage(_throttled(log), "Redis (shared rate limits)", cap=_MAX_SKIP_SECONDS)
        self._skip_until = 0.0

    async def hit(self, budgets: Sequence[Hit]) -> list[Count] | None:
        if time.monotonic() < self._skip_until:
            return None
        keys = [self._bridge.prefixed_key(key) for _, key in budgets]
        windows = [item.get_expiry() for item, _ in budgets]
        try:
            replies = await self._client.eval(_SPEND, len(keys), *keys, *windows)
        except (RedisError, OSError) as exc:
            BACKEND_ERRORS.inc()
            wait = self._outage.failed(type(exc).__name__, "requests are not rate limited")
            self._skip_until = time.monotonic() + wait
            return None
        self._outage.recovered()
        used, lives = replies[0::2], replies[1::2]
        return [Count(int(n), int(ms) / 1000) for n, ms in zip(used, lives, strict=True)]

    async def close(self) -> None:
        await self._client.aclose()


# KEYS: the request's counters; ARGV: each one's window in seconds. Returns, per counter, its
# hits in the window (this one included) and the window's remaining life in milliseconds. A
# counter without a life (a new one, or one that somehow lost it) gets its window: a counter
# that never expired would refuse its caller for good.
_SPEND = """
local replies = {}
for i, key in ipairs(KEYS) do
    local used = redis.call('INCR', key)
    local life = redis.call('PTTL', key)
    if life < 0 then
        redis.call('EXPIRE', key, ARGV[i])
        life = ARGV[i] * 1000
    end
    replies[2 * i - 1] = used
    replies[2 * i] = life
end
return replies
"""


def open_counters(redis_url: str | None, key_prefix: str) -> Counters:
    return RedisCounters(redis_url, key_prefix) if redis_url else MemoryCounters()


def whole_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


class _AtMostEvery(logging.Filter):
    """Drops warnings that follow the last one within `seconds` (a flapping Redis would
    otherwise start, and report, an outage every few seconds)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self._seconds = seconds
        self._last = -math.inf

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        now = time.monotonic()
        if now - self._last < self._seconds:
            return False
        self._last = now
        return True


def _throttled(parent: logging.Logger) -> logging.Logger:
    # Its own logger object (not one from logging.getLogger, which are shared by name) so
    # that each store's throttle stands alone; it still propagates to `parent`'s handlers.
    backend = logging.Logger(f"{parent.name}.backend")
    backend.parent = parent
    backend.addFilter(_AtMostEvery(_WARN_EVERY_SECONDS))
    return backend
