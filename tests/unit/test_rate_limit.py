"""Rate-limit decisions and the in-process limiter: pure values, a controlled clock, real threads."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

import pytest

from packmatch.api.ratelimit import client_address, is_exempt
from packmatch.services.ratelimit import InProcessRateLimiter, RateDecision, build_rate_limiter, decide
from packmatch.settings import Settings

WINDOW_START = 1_800_000_000.0


def test_requests_up_to_the_limit_are_allowed() -> None:
    assert decide(10, 10, WINDOW_START + 5) == RateDecision(
        allowed=True, limit=10, remaining=0, reset_at=int(WINDOW_START) + 60, retry_after=55
    )


def test_the_request_after_the_limit_is_refused_with_nothing_remaining() -> None:
    decision = decide(11, 10, WINDOW_START + 5)
    assert (decision.allowed, decision.remaining) == (False, 0)


@pytest.mark.parametrize(("offset", "retry_after"), [(0.0, 60), (30.0, 30), (59.5, 1), (59.999, 1)])
def test_retry_after_is_the_rest_of_the_window_and_at_least_one_second(
    offset: float, retry_after: int
) -> None:
    assert decide(1, 10, WINDOW_START + offset).retry_after == retry_after


def test_the_in_process_limiter_counts_per_identity() -> None:
    limiter = InProcessRateLimiter(2, clock=lambda: WINDOW_START)
    assert [limiter.hit("a").allowed for _ in range(3)] == [True, True, False]
    assert limiter.hit("b").allowed


def test_the_in_process_limiter_starts_again_in_a_new_window() -> None:
    now = [WINDOW_START]
    limiter = InProcessRateLimiter(1, clock=lambda: now[0])
    limiter.hit("a")
    now[0] += 60
    assert limiter.hit("a").remaining == 0
    assert limiter.hit("a").allowed is False


def test_the_in_process_limiter_admits_exactly_the_limit_across_threads() -> None:
    limiter = InProcessRateLimiter(500, clock=lambda: WINDOW_START)
    with ThreadPoolExecutor(8) as pool:
        decisions = list(pool.map(lambda _: limiter.hit("a"), range(800)))
    assert sum(d.allowed for d in decisions) == 500


PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)


def scope_from(peer: str, forwarded: str | None = None) -> dict[str, object]:
    headers = [] if forwarded is None else [(b"x-forwarded-for", forwarded.encode())]
    return {"type": "http", "headers": headers, "client": (peer, 1)}


def test_the_client_address_is_the_peer_by_default() -> None:
    assert client_address(scope_from("10.0.0.1", "203.0.113.9")) == "10.0.0.1"


def test_a_trusted_proxy_forwards_the_last_untrusted_hop() -> None:
    scope = scope_from("10.0.0.1", "198.51.100.7, 203.0.113.9, 10.0.0.2")
    assert client_address(scope, PROXIES) == "203.0.113.9"


def test_an_untrusted_peer_cannot_claim_an_address() -> None:
    assert client_address(scope_from("192.0.2.1", "203.0.113.9"), PROXIES) == "192.0.2.1"


def test_a_trusted_proxy_without_the_header_is_the_client() -> None:
    assert client_address(scope_from("10.0.0.1"), PROXIES) == "10.0.0.1"


def test_a_forwarded_hop_that_is_not_an_address_falls_back_to_the_peer() -> None:
    assert client_address(scope_from("10.0.0.1", "junk"), PROXIES) == "10.0.0.1"


@pytest.mark.parametrize(
    ("path", "exempt"),
    [("/healthz", True), ("/readyz", True), ("/metrics", True), ("/docs", True), ("/openapi.json", True),
     ("/docs/oauth2-redirect", True), ("/v1/matching/configs", False), ("/healthzz", False)],
)  # fmt: skip
def test_operations_endpoints_are_exempt(path: str, exempt: bool) -> None:
    assert is_exempt(path) is exempt


def test_a_limit_of_zero_builds_no_limiter() -> None:
    assert build_rate_limiter(Settings(rate_limit_per_minute=0)) is None


def test_a_non_redis_broker_gets_the_in_process_limiter() -> None:
    limiter = build_rate_limiter(Settings(broker_url="memory://", rate_limit_per_minute=5))
    assert isinstance(limiter, InProcessRateLimiter)
    assert limiter.limit == 5
