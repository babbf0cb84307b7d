"""The FastAPI application: routers, the error envelope on every path, request ids and access logs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from packmatch import __version__
from packmatch.api import errors, openapi
from packmatch.api.idempotency import IdempotencyMiddleware
from packmatch.api.ratelimit import RateLimitMiddleware
from packmatch.api.routes import (
    matching_configs,
    matching_runs,
    ops,
    package_configs,
    reference_data,
    run_batches,
    runs,
    webhooks,
)
from packmatch.domain.ids import Kind, format_id
from packmatch.errors import PackmatchError
from packmatch.metrics import PrometheusMetrics, metrics_registry
from packmatch.services.container import Services
from packmatch.services.idempotency import Idempotency
from packmatch.services.ratelimit import RateLimiter, build_rate_limiter
from packmatch.settings import Settings
from packmatch.transient import is_transient

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


async def _request_context(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    request_id = format_id(Kind.REQUEST, uuid.uuid4())
    request.state.request_id = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    max_body = request.app.state.settings.max_body_bytes
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_body and not _streamed_upload(request):
        response: Response = errors.error_response(
            request, "payload_too_large", f"The request body exceeds {max_body} bytes."
        )
    else:
        try:
            response = await call_next(request)
        except Exception as exc:
            response = errors.unavailable(request) if is_transient(exc) else errors.internal_error(request)
    response.headers["X-Request-Id"] = request_id
    seconds = time.perf_counter() - started
    request.app.state.metrics.http_request(request.method, _route(request), response.status_code, seconds)
    log.info(
        "http.request",
        method=request.method,
        path=request.url.path,
        status=response.status_code,
        duration_ms=round(seconds * 1000, 1),
        organization_id=getattr(request.state, "organization_id", None),
    )
    structlog.contextvars.clear_contextvars()
    return response


def _route(request: Request) -> str:
    """The matched route's template (`/v1/matching/packages/runs/{run_id}`): ids stay out of labels."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def _add_middleware(app: FastAPI, services: Services, limiter: RateLimiter | None) -> None:
    """Added innermost first. A request passes: request context (request id, 413, access log) →
    rate limiter → idempotency → routes; so 429s and idempotent replays get the envelope, the
    `X-Request-Id` and a log line, and replays count against the budget."""
    app.add_middleware(
        IdempotencyMiddleware, services=services, idempotency=Idempotency(services.db), body_limit=_body_limit
    )
    if limiter is not None:
        app.add_middleware(RateLimitMiddleware, limiter=limiter)
    app.middleware("http")(_request_context)


def create_app(
    services: Services,
    settings: Settings,
    *,
    rate_limiter: RateLimiter | None = None,
    metrics: PrometheusMetrics | None = None,
) -> FastAPI:
    """`rate_limiter` defaults to the one the settings call for (none when the limit is 0, Redis
    when the broker is Redis, else in-process). `metrics` are what `/metrics` shows (the runtime's,
    `Runtime.api_metrics()`); by default the app counts only its own HTTP requests."""
    app = FastAPI(title="packmatch", version=__version__, description=DESCRIPTION)
    app.state.services = services
    app.state.settings = settings
    app.state.metrics = metrics or PrometheusMetrics(metrics_registry())
    app.add_exception_handler(PackmatchError, errors.on_packmatch_error)
    app.add_exception_handler(RequestValidationError, errors.on_validation_error)
    app.add_exception_handler(StarletteHTTPException, errors.on_http_error)
    _add_middleware(app, services, rate_limiter or build_rate_limiter(settings))
    routers = (
        reference_data,
        matching_configs,
        package_configs,
        run_batches,
        runs,
        matching_runs,
        webhooks,
        ops,
    )
    for module in routers:
        app.include_router(module.router)
    openapi.install(app)
    return app
