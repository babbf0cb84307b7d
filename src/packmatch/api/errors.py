"""The SPEC error envelope, and the translation of every error path into it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from packmatch.api.deps import get_principal
from packmatch.api.presenters import timestamp
from packmatch.api.rendering import JSONResponse
from packmatch.errors import FieldProblem, PackmatchError

STATUS_BY_CODE = {
    "validation_error": 400,
    "unauthorized": 401,
    "insufficient_scope": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "idempotency_key_in_use": 409,
    "precondition_failed": 412,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "idempotency_key_mismatch": 422,
    "rate_limited": 429,
    "internal_error": 500,
    "unavailable": 503,
}
CODE_BY_STATUS = {
    400: "validation_error",
    401: "unauthorized",
    403: "insufficient_scope",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
RETRYABLE = frozenset({"rate_limited", "unavailable", "idempotency_key_in_use", "internal_error"})


def error_fields(code: str, message: str, details: Sequence[FieldProblem] = ()) -> dict[str, Any]:
    """What an error says, without the request it answers: a batch item's error (`POST …/runs/batch`)."""
    status = STATUS_BY_CODE.get(code, 500)
    return {
        "statusCode": status,
        "code": code,
        "error": HTTPStatus(status).phrase,
        "message": message,
        "details": [{"field": d.field, "message": d.message} for d in details],
    }


def error_response(
    request: Request,
    code: str,
    message: str,
    details: Sequence[FieldProblem] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None) or "req_unknown"
    fields = error_fields(code, message, details)
    body = {
        **{k: v for k, v in fields.items() if k != "details"},
        "retryable": code in RETRYABLE,
        "request_id": request_id,
        "timestamp": timestamp(datetime.now(UTC)),
        "path": request.url.path,
        "details": fields["details"],
    }
    response_headers = {"X-Request-Id": request_id, **(headers or {})}
    return JSONResponse(body, status_code=fields["statusCode"], headers=response_headers)


def _field_path(loc: Sequence[Any]) -> str:
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def problem(err: dict[str, Any]) -> FieldProblem:
    if err.get("type") == "json_invalid":
        return FieldProblem("body", "The body is not valid JSON.")
    message = str(err.get("msg", "Invalid value."))
    return FieldProblem(_field_path(err.get("loc", ())), message)


async def on_packmatch_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PackmatchError)
    return error_response(request, exc.code, exc.message, exc.details)


async def _denied(request: Request) -> PackmatchError | None:
    """FastAPI parses the body before it resolves dependencies, so a body it cannot parse would be
    reported before the key is checked; check the key first, as for every other request."""
    try:
        await get_principal(request, request.app.state.services)
    except PackmatchError as denied:
        return denied
    return None


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    unparsed = any(e.get("type") == "json_invalid" for e in exc.errors())
    if unparsed and (denied := await _denied(request)) is not None:
        return error_response(request, denied.code, denied.message)
    problems = [problem(dict(e)) for e in exc.errors()]
    message = "; ".join(f"{p.field}: {p.message}" for p in problems[:3]) or "The request is invalid."
    return error_response(request, "validation_error", message, problems)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        return await _unparsed_body(request, str(exc.detail))
    code = CODE_BY_STATUS.get(exc.status_code, "internal_error")
    if exc.status_code == 404:
        message = f"No route matches {request.method} {request.url.path}."
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return error_response(request, code, message, headers=headers)


async def _unparsed_body(request: Request, detail: str) -> JSONResponse:
    """The framework's own 400: a body that is neither JSON nor form data (e.g. NUL bytes)."""
    if (denied := await _denied(request)) is not None:
        return error_response(request, denied.code, denied.message)
    message = f"{detail.rstrip('.')}."
    return error_response(request, "validation_error", message, [FieldProblem("body", message)])


def _allowed_methods(request: Request) -> str:
    """Every method routed at this path. Starlette's own `Allow` names only the methods of the first
    route whose path matches, and FastAPI has one route per method (GET, PUT and DELETE of one id)."""
    routes = request.app.routes
    return ", ".join(
        method
        for method in METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    )


def internal_error(request: Request) -> JSONResponse:
    structlog.get_logger("packmatch.api").exception("http.unhandled_error", path=request.url.path)
    return error_response(request, "internal_error", "An internal error occurred. It has been logged.")


DATABASE_BUSY = (
    "The database is busy with another write (SQLite takes one writer at a time, and an import holds "
    "it for the whole file). Retry shortly; for several concurrent users, run on PostgreSQL."
)


def unavailable(request: Request, *, database_busy: bool = False) -> JSONResponse:
    """A dependency (database, broker) is briefly unreachable, or SQLite's write lock is taken:
    503, retryable, no trace to the client."""
    event = "http.database_busy" if database_busy else "http.dependency_unavailable"
    structlog.get_logger("packmatch.api").warning(event, path=request.url.path)
    message = DATABASE_BUSY if database_busy else "A dependency is temporarily unavailable. Retry shortly."
    return error_response(request, "unavailable", message, headers={"Retry-After": "1"})
