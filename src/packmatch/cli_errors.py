"""What the command line says when a command fails: one line, no traceback, no input values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Render = Callable[[Any], str]


def explain_settings(exc: ValueError) -> str:
    """A setting that does not parse (pydantic's ValidationError), named without its value."""
    errors: list[dict[str, Any]] = getattr(exc, "errors", list)()
    if not errors:
        return f"invalid settings: {exc}"
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    loc = first.get("loc", ())
    if not loc:  # a check across settings (a model validator): its message names them
        return f"invalid settings: {message}{more}"
    name = "PACKMATCH_" + "_".join(str(part) for part in loc).upper()
    return f"invalid setting {name}: {message}{more}"


def explain(exc: BaseException) -> str:
    """The one line for an exception that reached the command line's edge."""
    for kind, render in _RENDERERS:
        if isinstance(exc, kind):
            return render(exc)
    return f"unexpected error ({type(exc).__name__}); PACKMATCH_LOG_LEVEL=DEBUG logs its detail"


def _packmatch(exc: Any) -> str:
    details = "; ".join(f"{d.field}: {d.message}" if d.field else d.message for d in exc.details[:5])
    return f"{exc.message} ({details})" if details else str(exc.message)


def _os(exc: Any) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    return f"cannot use{where}: {exc.strerror or exc}"


def _database(exc: Any) -> str:
    # The driver's first line names the host and the failure; SQLAlchemy's own text may hold SQL
    # parameters (input values), so it is not shown.
    orig = getattr(exc, "orig", None)
    reason = str(orig).strip().splitlines()[0] if orig is not None and str(orig).strip() else ""
    return f"database error ({type(orig or exc).__name__}): {reason or 'see PACKMATCH_DATABASE_URL'}"


def _database_url(_: Any) -> str:
    return "PACKMATCH_DATABASE_URL is not a database URL (e.g. postgresql+psycopg://user@host/db)"


def _broker(exc: Any) -> str:
    return f"cannot reach the broker (PACKMATCH_BROKER_URL): {str(exc).splitlines()[0] if str(exc) else ''}"


def _api(exc: Any) -> str:
    # A command that talks to the API through packmatch.client (`demo`): the envelope's code,
    # message and fields, and the request id to find its log lines.
    shown = [(d.get("field"), d.get("message")) for d in exc.details[:5]]
    details = "; ".join(f"{field}: {message}" if field else str(message) for field, message in shown)
    request = f" [request {exc.request_id}]" if exc.request_id else ""
    said = f"{exc.message} ({details})" if details else exc.message
    return f"the API answered {exc.status_code} {exc.code}: {said}{request}"


def _client(exc: Any) -> str:
    return f"{type(exc).__name__}: {exc}"


def _renderers() -> list[tuple[type[BaseException], Render]]:
    import redis
    import sqlalchemy.exc

    from packmatch.client import errors as client_errors
    from packmatch.errors import PackmatchError

    return [
        (PackmatchError, _packmatch),
        (client_errors.ApiError, _api),
        (client_errors.PackmatchError, _client),
        (sqlalchemy.exc.ArgumentError, _database_url),
        (sqlalchemy.exc.DBAPIError, _database),
        (redis.exceptions.ConnectionError, _broker),
        (OSError, _os),
    ]


_RENDERERS = _renderers()
