"""SPEC §2 rate limits with the in-process limiter: headers, 429, per-key budgets, exemptions, 0 = off.

The limiter is given a clock the test controls, so no test depends on where in the minute it runs.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from packmatch.api.app import create_app
from packmatch.bootstrap import Runtime
from packmatch.services.ratelimit import InProcessRateLimiter, RateLimiter
from packmatch.settings import Settings
from packmatch.store.tables import reference_datasets
from tests.e2e.conftest import Api, error_body

LIMIT = 5
ADDRESS_LIMIT = 3
WINDOW_START = 1_800_000_000  # a multiple of 60
REFERENCE_DATA = "/v1/matching/reference-data"
BOOKINGS = {"name": "bookings", "rows": [{"id": "BK-1", "reference": "ABC1234567"}]}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(WINDOW_START + 30.0)


@pytest.fixture
def limited(make_runtime: Callable[..., Runtime], sqlite_url: str, clock: Clock) -> Iterator[Api]:
    """The API with a budget of LIMIT requests per minute per key and ADDRESS_LIMIT per address for
    requests without a valid key (no worker: no runs here)."""
    runtime = make_runtime(database_url=sqlite_url, rate_limit_per_minute=LIMIT)
    app = create_app(
        runtime.services,
        runtime.settings,
        rate_limiter=InProcessRateLimiter(LIMIT, clock),
        address_limiter=InProcessRateLimiter(ADDRESS_LIMIT, clock),
    )
    client = TestClient(app, raise_server_exceptions=False)
    yield Api(client, runtime, runtime.services.accounts.create_key("acme", frozenset({"read", "write"})))
    client.close()


def spend(api: Api, requests: int) -> None:
    for _ in range(requests):
        assert api.get(REFERENCE_DATA).status_code == 200


def test_a_response_carries_limit_remaining_and_reset(limited: Api) -> None:
    response = limited.get(REFERENCE_DATA)
    assert response.headers["X-RateLimit-Limit"] == str(LIMIT)
    assert response.headers["X-RateLimit-Remaining"] == str(LIMIT - 1)
    assert response.headers["X-RateLimit-Reset"] == str(WINDOW_START + 60)


def test_remaining_counts_down(limited: Api) -> None:
    remaining = [limited.get(REFERENCE_DATA).headers["X-RateLimit-Remaining"] for _ in range(LIMIT)]
    assert remaining == [str(n) for n in range(LIMIT - 1, -1, -1)]


def test_a_request_over_the_limit_is_429_in_the_envelope(limited: Api) -> None:
    spend(limited, LIMIT)
    response = limited.get(REFERENCE_DATA)
    body = error_body(response, 429, "rate_limited")
    assert body["retryable"] is True
    assert body["error"] == "Too Many Requests"
    assert response.headers["X-Request-Id"] == body["request_id"]


def test_a_429_says_when_to_retry(limited: Api) -> None:
    spend(limited, LIMIT)
    response = limited.get(REFERENCE_DATA)
    assert response.headers["Retry-After"] == "30"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert response.headers["X-RateLimit-Reset"] == str(WINDOW_START + 60)


def test_retry_after_is_at_least_one_second(limited: Api, clock: Clock) -> None:
    clock.now = WINDOW_START + 59.9
    spend(limited, LIMIT)
    assert limited.get(REFERENCE_DATA).headers["Retry-After"] == "1"


def test_a_limited_request_does_not_reach_the_route(limited: Api) -> None:
    spend(limited, LIMIT)
    error_body(limited.post(REFERENCE_DATA, json=BOOKINGS), 429, "rate_limited")
    with limited.runtime.services.db.transaction() as conn:
        assert conn.execute(reference_datasets.select()).first() is None


def test_each_api_key_has_its_own_budget(limited: Api) -> None:
    spend(limited, LIMIT)
    other = limited.other_organization()
    response = other.get(REFERENCE_DATA)
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == str(LIMIT - 1)


def test_two_keys_of_one_organization_have_separate_budgets(limited: Api) -> None:
    spend(limited, LIMIT)
    assert limited.other_organization("acme").get(REFERENCE_DATA).status_code == 200


def test_requests_without_a_key_are_counted_per_client_address(limited: Api) -> None:
    # The key's first request is looked up on the address's budget; from then on it has its own.
    assert limited.get(REFERENCE_DATA).status_code == 200
    for _ in range(ADDRESS_LIMIT - 1):
        response = limited.client.get(REFERENCE_DATA)
        error_body(response, 401, "unauthorized")
        assert response.headers["X-RateLimit-Limit"] == str(ADDRESS_LIMIT)
    over = limited.client.get(REFERENCE_DATA)
    body = error_body(over, 429, "rate_limited")
    assert "without a valid API key" in body["message"]
    assert over.headers["Retry-After"] == "30"
    assert limited.get(REFERENCE_DATA).status_code == 200


def random_key() -> str:
    return "pmk_" + secrets.token_urlsafe(32)


def test_each_junk_key_shares_the_address_budget(limited: Api) -> None:
    statuses = [
        limited.client.get(REFERENCE_DATA, headers={"Authorization": f"Bearer {random_key()}"}).status_code
        for _ in range(ADDRESS_LIMIT + 2)
    ]
    assert statuses == [401] * ADDRESS_LIMIT + [429, 429]


@pytest.mark.parametrize("token", ["junk", "pmk_short", "pmk_" + "x" * 43 + "!"])
def test_a_malformed_key_spends_the_address_budget(limited: Api, token: str) -> None:
    response = limited.client.get(REFERENCE_DATA, headers={"Authorization": f"Bearer {token}"})
    error_body(response, 401, "unauthorized")
    assert response.headers["X-RateLimit-Remaining"] == str(ADDRESS_LIMIT - 1)


def test_a_key_not_seen_lately_waits_for_its_address_budget(limited: Api) -> None:
    """The documented price of bounded lookups (decision 0009): a key's first request is counted
    against its address's budget, so it waits while that address is flooded."""
    for _ in range(ADDRESS_LIMIT):
        limited.client.get(REFERENCE_DATA, headers={"Authorization": f"Bearer {random_key()}"})
    error_body(limited.get(REFERENCE_DATA), 429, "rate_limited")


def test_a_valid_key_keeps_its_own_budget_while_its_address_is_flooded(limited: Api) -> None:
    assert limited.get(REFERENCE_DATA).status_code == 200  # seen: its budget is known now
    for _ in range(ADDRESS_LIMIT + 1):
        limited.client.get(REFERENCE_DATA, headers={"Authorization": f"Bearer {random_key()}"})
    response = limited.get(REFERENCE_DATA)
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit"] == str(LIMIT)


def test_a_revoked_key_is_refused_at_once_and_then_spends_the_address_budget(limited: Api) -> None:
    assert limited.get(REFERENCE_DATA).status_code == 200
    ((_, record),) = limited.runtime.services.accounts.list_keys("acme")
    limited.runtime.services.accounts.revoke(record.id)
    error_body(limited.get(REFERENCE_DATA), 401, "unauthorized")
    assert limited.get(REFERENCE_DATA).headers["X-RateLimit-Limit"] == str(ADDRESS_LIMIT)


def test_a_trusted_proxy_sets_the_client_address(
    make_runtime: Callable[..., Runtime], sqlite_url: str, clock: Clock
) -> None:
    runtime = make_runtime(database_url=sqlite_url, trusted_proxies="127.0.0.0/8")
    app = create_app(
        runtime.services, runtime.settings, address_limiter=InProcessRateLimiter(ADDRESS_LIMIT, clock)
    )
    with TestClient(app, client=("127.0.0.1", 5000)) as client:
        first = [client.get(REFERENCE_DATA, headers={"X-Forwarded-For": "203.0.113.1"}) for _ in range(4)]
        second = client.get(REFERENCE_DATA, headers={"X-Forwarded-For": "203.0.113.2"})
    assert [r.status_code for r in first] == [401, 401, 401, 429]
    assert second.status_code == 401


def test_error_responses_count_and_carry_the_headers(limited: Api) -> None:
    response = limited.get(f"{REFERENCE_DATA}/ref_not-a-uuid")
    assert response.status_code == 400
    assert response.headers["X-RateLimit-Remaining"] == str(LIMIT - 1)


def test_the_budget_is_back_in_the_next_window(limited: Api, clock: Clock) -> None:
    spend(limited, LIMIT)
    clock.now = WINDOW_START + 60
    response = limited.get(REFERENCE_DATA)
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Remaining"] == str(LIMIT - 1)
    assert response.headers["X-RateLimit-Reset"] == str(WINDOW_START + 120)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"])
def test_operations_endpoints_are_exempt(limited: Api, path: str) -> None:
    for _ in range(LIMIT + 2):
        response = limited.client.get(path)
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response.headers
    assert limited.get(REFERENCE_DATA).headers["X-RateLimit-Remaining"] == str(LIMIT - 1)


def test_an_idempotent_replay_counts_and_carries_the_headers(limited: Api) -> None:
    headers = {"Idempotency-Key": "k"}
    limited.post(REFERENCE_DATA, json=BOOKINGS, headers=headers)
    replay = limited.post(REFERENCE_DATA, json=BOOKINGS, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.headers["X-RateLimit-Remaining"] == str(LIMIT - 2)


def test_the_settings_limit_applies_by_default(
    make_runtime: Callable[..., Runtime], sqlite_url: str, start_api: Callable[[Runtime], Api]
) -> None:
    api = start_api(make_runtime(database_url=sqlite_url, rate_limit_per_minute=7))
    assert api.get(REFERENCE_DATA).headers["X-RateLimit-Limit"] == "7"


def test_zero_disables_limiting_and_the_headers(api: Api) -> None:
    assert api.runtime.settings.rate_limit_per_minute == 0
    for _ in range(20):
        response = api.get(REFERENCE_DATA)
        assert response.status_code == 200
        assert not [name for name in response.headers if name.lower().startswith("x-ratelimit")]


FLOOD = 2_000


def key_lookups(runtime: Runtime) -> list[str]:
    """The SQL statements that read the API keys table, as the database sees them."""
    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "api_keys" in statement:
            seen.append(statement)

    sa.event.listen(runtime.services.db.engine, "before_cursor_execute", count)
    return seen


def flood(runtime: Runtime, address_limiter: RateLimiter) -> None:
    """FLOOD requests with fresh random keys from one address: 401 within the documented
    per-address budget, 429 with `Retry-After` after it, and one key lookup per admitted request."""
    budget = Settings().rate_limit_per_address_per_minute
    app = create_app(runtime.services, runtime.settings, address_limiter=address_limiter)
    lookups = key_lookups(runtime)
    with TestClient(app, raise_server_exceptions=False) as client:
        responses = [
            client.get(REFERENCE_DATA, headers={"Authorization": f"Bearer {random_key()}"})
            for _ in range(FLOOD)
        ]
    statuses = [r.status_code for r in responses]
    assert statuses == [401] * budget + [429] * (FLOOD - budget)
    assert {r.headers["X-RateLimit-Limit"] for r in responses} == {str(budget)}
    assert all(int(r.headers["Retry-After"]) >= 1 for r in responses[budget:])
    assert len(lookups) <= budget


def test_a_flood_of_random_keys_from_one_address_is_limited(
    make_runtime: Callable[..., Runtime], sqlite_url: str, clock: Clock
) -> None:
    runtime = make_runtime(database_url=sqlite_url)
    flood(runtime, InProcessRateLimiter(Settings().rate_limit_per_address_per_minute, clock))
