"""Rate limiting at the HTTP edge (SPEC §2): `X-RateLimit-*` on every limited response, 429 beyond.

A pure ASGI middleware, placed inside the request-context middleware (so a 429 carries the error
envelope, `X-Request-Id` and an access-log line) and outside idempotency (so replays count too).
The operations endpoints are exempt: probes and scrapers must never be throttled.

Two budgets (decision 0009): a valid key spends its own; a request with no key, a malformed one or
one that is not (or no longer) valid spends its client address's, a smaller one. A key not seen
lately is looked up only while its address's budget lasts, so junk keys cannot buy database
lookups (or fresh budgets) without limit.
"""

from __future__ import annotations

import ipaddress

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from packmatch.api import errors
from packmatch.services.accounts import Accounts, hash_key
from packmatch.services.ratelimit import RateDecision, RateLimiter
from packmatch.settings import Network

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"})


def is_exempt(path: str) -> bool:
    return path in EXEMPT_PATHS or path.startswith("/docs/")


def bearer_token(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(scope: Scope, trusted: tuple[Network, ...] = ()) -> str:
    """The TCP peer's address; when the peer is a trusted proxy, the last `X-Forwarded-For` hop
    that is not one (each proxy appends the address it saw, so only the hops the trusted proxies
    added can be believed)."""
    client = scope.get("client")
    peer = str(client[0]) if client else "unknown"
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    forwarded = ",".join(Headers(scope=scope).getlist("x-forwarded-for"))
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop if _is_address(hop) else peer
    return hops[0] if hops else peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def rate_headers(decision: RateDecision) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_at),
    }


class RateLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        accounts: Accounts,
        limiter: RateLimiter | None,
        address_limiter: RateLimiter | None = None,
        trusted_proxies: tuple[Network, ...] = (),
    ) -> None:
        self.app = app
        self.accounts = accounts
        self.limiter = limiter
        self.address_limiter = address_limiter
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        found = await run_in_threadpool(self.decide, scope)
        if found is None:
            await self.app(scope, receive, send)
            return
        decision, budget = found
        headers = rate_headers(decision)
        if not decision.allowed:
            response = errors.error_response(
                Request(scope),
                "rate_limited",
                f"Too many requests{budget}: the limit is {decision.limit} per minute. "
                f"Retry after {decision.retry_after} seconds.",
                headers={**headers, "Retry-After": str(decision.retry_after)},
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def decide(self, scope: Scope) -> tuple[RateDecision, str] | None:
        """Count the request against its budget: the decision and what the budget is, or None
        when that budget is not limited."""
        token = bearer_token(Headers(scope=scope))
        status = self.accounts.key_status(token)
        if status is True and token is not None:
            return self._per_key(token)
        by_address = self._per_address(scope)
        affordable = by_address is None or by_address[0].allowed
        if status is None and token is not None and affordable and self.accounts.is_valid(token):
            return self._per_key(token)
        return by_address

    def _per_key(self, token: str) -> tuple[RateDecision, str] | None:
        if self.limiter is None:
            return None
        return self.limiter.hit(f"key:{hash_key(token)}"), ""

    def _per_address(self, scope: Scope) -> tuple[RateDecision, str] | None:
        if self.address_limiter is None:
            return None
        address = client_address(scope, self.trusted_proxies)
        return self.address_limiter.hit(f"addr:{address}"), " without a valid API key from this address"
