"""The FastAPI application: routers, the error envelope on every path, request ids and access logs."""

from __future__ import annotations

import time
import uuid

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from packmatch import __version__
from packmatch.api import errors, openapi
from packmatch.api.idempotency import IdempotencyMiddleware
from packmatch.api.ratelimit import RateLimitMiddleware
from packmatch.api.review_page import router as review_page
from packmatch.api.routes import (
    matching_configs,
    matching_runs,
    ops,
    package_configs,
    reference_data,
    reviews,
    run_batches,
    runs,
    webhooks,
)
from packmatch.domain.ids import Kind, format_id
from packmatch.errors import PackmatchError
from packmatch.metrics import PrometheusMetrics, metrics_registry
from packmatch.services.container import Services
from packmatch.services.idempotency import Idempotency
from packmatch.services.ratelimit import RateLimiter, build_address_limiter, build_rate_limiter
from packmatch.settings import Settings
from packmatch.transient import database_busy, is_transient

log = structlog.get_logger("packmatch.api")

DESCRIPTION = """\
packmatch scores document packages against reference data and gives each package one verdict.
Authenticate with `Authorization: Bearer <key>`; every error has the same JSON envelope.
"""


# CSV uploads of reference data are streamed and may exceed the 10 MiB body limit (SPEC §2).
STREAMED_UPLOADS = frozenset({("POST", "/v1/matching/reference-data")})


def _streamed_upload(request: Request) -> bool:
    is_multipart = request.headers.get("content-type", "").startswith("multipart/form-data")
    return is_multipart and (request.method, request.url.path) in STREAMED_UPLOADS


def _body_limit(request: Request) -> int:
    """The most bytes a request's body may have: the CSV upload cap, or the body limit."""
    if _streamed_upload(request):
        return reference_data.MAX_CSV_BYTES
    limit: int = request.app.state.settings.max_body_bytes
    return limit


class RequestContextMiddleware:
    """The outermost layer of every request: its id (bound to the logs, on the response), the
    413 for a declared body over the limit, 500/503 for what nothing else caught, the access log
    line and the HTTP metrics.

    A pure ASGI middleware: Starlette's `BaseHTTPMiddleware` (`@app.middleware("http")`) runs each
    request in a task group with memory streams between it and the app, a measurable share of
    the API's CPU per request (benchmarks/README.md)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = format_id(Kind.REQUEST, uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started, status = time.perf_counter(), [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        try:
            await self._serve(scope, receive, send_with_id)
        finally:
            self._done(Request(scope), status[0], time.perf_counter() - started)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        max_body = request.app.state.settings.max_body_bytes
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_body and not _streamed_upload(request):
            message = f"The request body exceeds {max_body} bytes."
            await errors.error_response(request, "payload_too_large", message)(scope, receive, send)
            return
        started = [False]

        async def send_tracked(message: Message) -> None:
            started[0] = started[0] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception as exc:
            if started[0]:
                raise
            failed = (
                errors.unavailable(request, database_busy=database_busy(exc))
                if is_transient(exc)
                else errors.internal_error(request)
            )
            await failed(scope, receive, send)

    @staticmethod
    def _done(request: Request, status: int, seconds: float) -> None:
        request.app.state.metrics.http_request(request.method, _route(request), status, seconds)
        log.info(
            "http.request",
            method=request.method,
            path=request.url.path,
            status=status,
            duration_ms=round(seconds * 1000, 1),
            organization_id=getattr(request.state, "organization_id", None),
        )
        structlog.contextvars.clear_contextvars()


def _route(request: Request) -> str:
    """The matched route's template (`/v1/matching/packages/runs/{run_id}`): ids stay out of labels."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _add_middleware(
    app: FastAPI, services: Services, limiter: RateLimiter | None, address_limiter: RateLimiter | None
) -> None:
    """Added innermost first. A request passes: request context (request id, 413, access log) →
    rate limiter → idempotency → routes; so 429s and idempotent replays get the envelope, the
    `X-Request-Id` and a log line, and replays count against the budget."""
    app.add_middleware(
        IdempotencyMiddleware, services=services, idempotency=Idempotency(services.db), body_limit=_body_limit
    )
    if limiter is not None or address_limiter is not None:
        app.add_middleware(
            RateLimitMiddleware,
            accounts=services.accounts,
            limiter=limiter,
            address_limiter=address_limiter,
            trusted_proxies=app.state.settings.trusted_proxies,
        )
    app.add_middleware(RequestContextMiddleware)


def create_app(
    services: Services,
    settings: Settings,
    *,
    rate_limiter: RateLimiter | None = None,
    metrics: PrometheusMetrics | None = None,
    address_limiter: RateLimiter | None = None,
) -> FastAPI:
    """`rate_limiter` (per key) and `address_limiter` (per client address, for requests without a
    valid key) default to the ones the settings call for (none when the limit is 0, Redis when the
    broker is Redis, else in-process). `metrics` are what `/metrics` shows (the runtime's,
    `Runtime.api_metrics()`); by default the app counts only its own HTTP requests."""
    app = FastAPI(title="packmatch", version=__version__, description=DESCRIPTION)
    app.state.services = services
    app.state.settings = settings
    app.state.metrics = metrics or PrometheusMetrics(metrics_registry())
    app.add_exception_handler(PackmatchError, errors.on_packmatch_error)
    app.add_exception_handler(RequestValidationError, errors.on_validation_error)
    app.add_exception_handler(StarletteHTTPException, errors.on_http_error)
    _add_middleware(
        app,
        services,
        rate_limiter or build_rate_limiter(settings),
        address_limiter or build_address_limiter(settings),
    )
    routers = (
        reference_data,
        matching_configs,
        package_configs,
        run_batches,
        reviews,
        runs,
        matching_runs,
        webhooks,
        ops,
    )
    for module in routers:
        app.include_router(module.router)
    app.include_router(review_page)
    openapi.install(app)
    return app
