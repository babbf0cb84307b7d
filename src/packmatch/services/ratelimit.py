"""Per-client request budgets (SPEC §2): a port, the decision as a value, and two adapters.

Algorithm: a fixed 60-second window per identity. Each request increments the identity's counter
for the current window (`floor(now / 60)`); the request is allowed while the counter is at most
the limit, and the window resets at its end. A fixed window can let through up to twice the limit
across a window boundary; in exchange it needs one counter per identity and one atomic round trip.

- `InProcessRateLimiter`: a dict guarded by a lock; each API process counts alone.
- `RedisRateLimiter`: `MULTI; INCR key; EXPIRE key 120; EXEC` on a key that names the window, so
  every API process on the same Redis shares one budget. When Redis cannot be reached the limiter
  fails open: the request is allowed (a Redis outage must not become an API outage) and
  `ratelimit.unavailable` is logged once per window.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from packmatch.logging import get_logger
from packmatch.settings import Settings

WINDOW_SECONDS = 60
REDIS_PREFIX = "packmatch:ratelimit:"
REDIS_URL_SCHEMES = ("redis://", "rediss://", "unix://")

EpochClock = Callable[[], float]


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: int  # epoch seconds at which the current window ends
    retry_after: int  # whole seconds until then, at least 1


def window_of(now: float) -> int:
    return int(now // WINDOW_SECONDS)


def decide(count: int, limit: int, now: float) -> RateDecision:
    """The decision for the `count`-th request of the window that contains `now`."""
    reset_at = (window_of(now) + 1) * WINDOW_SECONDS
    return RateDecision(
        allowed=count <= limit,
        limit=limit,
        remaining=max(0, limit - count),
        reset_at=reset_at,
        retry_after=max(1, math.ceil(reset_at - now)),
    )


class RateLimiter(Protocol):
    """Counts one request of `identity` and says whether it is within the budget."""

    limit: int

    def hit(self, identity: str) -> RateDecision: ...

    def close(self) -> None: ...


class InProcessRateLimiter:
    """Counts in this process only (the embedded stack, tests, or a broker other than Redis)."""

    def __init__(self, limit: int, clock: EpochClock = time.time) -> None:
        self.limit = limit
        self.clock = clock
        self._lock = threading.Lock()
        self._window = -1
        self._counts: dict[str, int] = {}

    def hit(self, identity: str) -> RateDecision:
        now = self.clock()
        with self._lock:
            if window_of(now) != self._window:
                # A new window: every identity starts again, and the old counters are dropped.
                self._window, self._counts = window_of(now), {}
            count = self._counts[identity] = self._counts.get(identity, 0) + 1
        return decide(count, self.limit, now)

    def close(self) -> None:
        return None


class RedisRateLimiter:
    """One budget shared by every API process on the same Redis; fails open when Redis is down."""

    def __init__(
        self,
        client: redis.Redis,
        limit: int,
        clock: EpochClock = time.time,
        pause_after_failure: float = 1.0,
    ) -> None:
        self.client = client
        self.limit = limit
        self.clock = clock
        self.pause_after_failure = pause_after_failure
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._reported_window = -1

    def hit(self, identity: str) -> RateDecision:
        now = self.clock()
        if now < self._paused_until:
            return decide(0, self.limit, now)
        key = f"{REDIS_PREFIX}{identity}:{window_of(now)}"
        try:
            count = self._increment(key)
        except redis.RedisError as exc:
            self._unavailable(now, exc)
            return decide(0, self.limit, now)
        return decide(count, self.limit, now)

    def _increment(self, key: str) -> int:
        pipe = self.client.pipeline(transaction=True)
        pipe.incr(key)
        # The key names its window, so re-setting the expiry on every hit is harmless; two windows
        # of lifetime keep it alive for the whole window even when the clocks of API hosts differ.
        pipe.expire(key, 2 * WINDOW_SECONDS)
        count, _ = pipe.execute()
        return int(count)

    def _unavailable(self, now: float, exc: Exception) -> None:
        """Skip Redis for a moment (a black-holed host would otherwise cost a timeout per
        request) and log once per window, not once per request."""
        with self._lock:
            self._paused_until = now + self.pause_after_failure
            first_in_window = self._reported_window != window_of(now)
            self._reported_window = window_of(now)
        if first_in_window:
            # A fresh logger each time: this runs at most once a minute.
            get_logger(__name__).warning(
                "ratelimit.unavailable", error=type(exc).__name__, detail=str(exc)[:200], fail_open=True
            )

    def close(self) -> None:
        self.client.close()


def redis_client(url: str) -> redis.Redis:
    """Short timeouts and no client-side retries: the limiter would rather fail open than wait."""
    return redis.Redis.from_url(
        url, socket_connect_timeout=0.25, socket_timeout=0.25, retry=Retry(NoBackoff(), 0)
    )


def build_rate_limiter(settings: Settings) -> RateLimiter | None:
    """The per-key limiter: `None` when limiting is disabled (`PACKMATCH_RATE_LIMIT_PER_MINUTE=0`);
    Redis when the broker is Redis (shared by every API process); otherwise a per-process counter."""
    return _limiter(settings, settings.rate_limit_per_minute)


def build_address_limiter(settings: Settings) -> RateLimiter | None:
    """The per-address limiter for requests without a valid key (decision 0009), built alike."""
    return _limiter(settings, settings.rate_limit_per_address_per_minute)


def _limiter(settings: Settings, limit: int) -> RateLimiter | None:
    if limit == 0:
        return None
    if settings.broker_url.startswith(REDIS_URL_SCHEMES):
        return RedisRateLimiter(redis_client(settings.broker_url), limit)
    return InProcessRateLimiter(limit)
