"""Rate limiting at the HTTP edge (SPEC §2): `X-RateLimit-*` on every limited response, 429 beyond.

A pure ASGI middleware, placed inside the request-context middleware (so a 429 carries the error
envelope, `X-Request-Id` and an access-log line) and outside idempotency (so replays count too).
The operations endpoints are exempt: probes and scrapers must never be throttled.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from packmatch.api import errors
from packmatch.services.accounts import hash_key
from packmatch.services.ratelimit import RateDecision, RateLimiter

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"})


def is_exempt(path: str) -> bool:
    return path in EXEMPT_PATHS or path.startswith("/docs/")


def bearer_token(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def identity(scope: Scope) -> str:
    """The API key (its SHA-256, never the key itself) when one is sent, else the client address."""
    token = bearer_token(Headers(scope=scope))
    if token is not None:
        return f"key:{hash_key(token)}"
    client = scope.get("client")
    return f"ip:{client[0] if client else 'unknown'}"


def rate_headers(decision: RateDecision) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_at),
    }


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        decision = await run_in_threadpool(self.limiter.hit, identity(scope))
        headers = rate_headers(decision)
        if not decision.allowed:
            response = errors.error_response(
                Request(scope),
                "rate_limited",
                f"Too many requests: the limit is {decision.limit} per minute. "
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
