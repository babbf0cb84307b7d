"""The Redis rate limiter: one budget for every API process, and failing open when Redis is down."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
import redis
import structlog
from fastapi.testclient import TestClient

from packmatch.api.app import create_app
from packmatch.bootstrap import Runtime
from packmatch.services.ratelimit import REDIS_PREFIX, RedisRateLimiter, build_rate_limiter, redis_client
from packmatch.settings import Settings
from tests.e2e.test_api_rate_limit import flood

LIMIT = 4
WINDOW_START = 1_800_000_000
REFERENCE_DATA = "/v1/matching/reference-data"


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(WINDOW_START + 10.0)


@pytest.fixture
def make_limiter() -> Iterator[Callable[[str, Clock], RedisRateLimiter]]:
    limiters: list[RedisRateLimiter] = []

    def make(url: str, clock: Clock) -> RedisRateLimiter:
        limiter = RedisRateLimiter(redis_client(url), LIMIT, clock)
        limiters.append(limiter)
        return limiter

    yield make
    for limiter in limiters:
        limiter.close()


@pytest.fixture
def closed_port_url() -> str:
    """A Redis URL on a port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.mark.redis
def test_two_app_instances_share_one_budget(
    make_runtime: Callable[..., Runtime],
    sqlite_url: str,
    redis_url: str,
    make_limiter: Callable[[str, Clock], RedisRateLimiter],
    clock: Clock,
) -> None:
    runtime = make_runtime(database_url=sqlite_url, rate_limit_per_minute=LIMIT)
    key = runtime.services.accounts.create_key("acme", frozenset({"read"}))
    headers = {"Authorization": f"Bearer {key}"}
    apps = [
        create_app(runtime.services, runtime.settings, rate_limiter=make_limiter(redis_url, clock))
        for _ in "ab"
    ]
    with TestClient(apps[0]) as first, TestClient(apps[1]) as second:
        responses = [client.get(REFERENCE_DATA, headers=headers) for client in (first, second, first, second)]
        over = second.get(REFERENCE_DATA, headers=headers)
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["3", "2", "1", "0"]
    assert over.status_code == 429
    assert over.json()["code"] == "rate_limited"


@pytest.mark.redis
def test_counters_expire_after_two_windows(
    redis_url: str, make_limiter: Callable[[str, Clock], RedisRateLimiter], clock: Clock
) -> None:
    make_limiter(redis_url, clock).hit("key:abc")
    client = redis.Redis.from_url(redis_url)
    try:
        assert 0 < int(client.ttl(f"{REDIS_PREFIX}key:abc:{WINDOW_START // 60}")) <= 120
    finally:
        client.close()


@pytest.mark.redis
def test_a_new_window_starts_a_new_count(
    redis_url: str, make_limiter: Callable[[str, Clock], RedisRateLimiter], clock: Clock
) -> None:
    limiter = make_limiter(redis_url, clock)
    for _ in range(LIMIT + 1):
        limiter.hit("key:abc")
    clock.now += 60
    decision = limiter.hit("key:abc")
    assert (decision.allowed, decision.remaining) == (True, LIMIT - 1)


@pytest.mark.redis
def test_a_redis_broker_gets_the_redis_limiter(redis_url: str) -> None:
    limiter = build_rate_limiter(Settings(broker_url=redis_url, rate_limit_per_minute=10))
    try:
        assert isinstance(limiter, RedisRateLimiter)
        assert limiter.hit("key:abc").remaining == 9
    finally:
        assert limiter is not None
        limiter.close()


def test_the_limiter_fails_open_when_redis_is_unreachable(
    closed_port_url: str, make_limiter: Callable[[str, Clock], RedisRateLimiter], clock: Clock
) -> None:
    limiter = make_limiter(closed_port_url, clock)
    decisions = [limiter.hit("key:abc") for _ in range(LIMIT + 2)]
    assert all(d.allowed for d in decisions)
    assert decisions[-1].remaining == LIMIT


def test_unavailable_redis_is_logged_once_per_window(
    closed_port_url: str, make_limiter: Callable[[str, Clock], RedisRateLimiter], clock: Clock
) -> None:
    limiter = make_limiter(closed_port_url, clock)
    with structlog.testing.capture_logs() as logs:
        for step in range(3):
            clock.now += 2 * step  # past the pause after a failure: Redis is tried each time
            limiter.hit("key:abc")
        clock.now += 60
        limiter.hit("key:abc")
    events = [entry for entry in logs if entry["event"] == "ratelimit.unavailable"]
    assert len(events) == 2
    assert events[0]["log_level"] == "warning"


def test_the_api_keeps_answering_when_redis_is_down(
    make_runtime: Callable[..., Runtime],
    sqlite_url: str,
    closed_port_url: str,
    make_limiter: Callable[[str, Clock], RedisRateLimiter],
    clock: Clock,
) -> None:
    runtime = make_runtime(database_url=sqlite_url, rate_limit_per_minute=LIMIT)
    key = runtime.services.accounts.create_key("acme", frozenset({"read"}))
    app = create_app(runtime.services, runtime.settings, rate_limiter=make_limiter(closed_port_url, clock))
    with TestClient(app) as client:
        responses = [
            client.get(REFERENCE_DATA, headers={"Authorization": f"Bearer {key}"}) for _ in range(LIMIT + 2)
        ]
    assert {r.status_code for r in responses} == {200}
    assert responses[-1].headers["X-RateLimit-Limit"] == str(LIMIT)


@pytest.mark.redis
def test_a_flood_of_random_keys_from_one_address_is_limited_in_redis(
    make_runtime: Callable[..., Runtime], sqlite_url: str, redis_url: str, clock: Clock
) -> None:
    runtime = make_runtime(database_url=sqlite_url)
    limiter = RedisRateLimiter(redis_client(redis_url), Settings().rate_limit_per_address_per_minute, clock)
    try:
        flood(runtime, limiter)
    finally:
        limiter.close()
