"""Structured logging: configured once, JSON lines on stdout, stdlib loggers routed through structlog.

Event names are an interface (SPEC §7). Nothing here ever logs a secret or an input value: callers
bind ids and counts only, and `_drop_secrets` removes known-sensitive keys as a last line of defence.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from packmatch.domain.ids import Kind, format_id
from packmatch.jsontext import dumps_log_line

_SENSITIVE_KEYS = frozenset({"authorization", "api_key", "key", "secret", "values", "password", "token"})


def _drop_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for name in list(event_dict):
        if name.lower() in _SENSITIVE_KEYS:
            event_dict[name] = "[redacted]"
    return event_dict


# The id keys of log lines and the public kind each names (SPEC §7: the ids the API shows). A
# caller may pass a UUID or its text; an id already public is left alone. `organization_id` has no
# public form (the API never shows one) and stays a bare UUID.
PUBLIC_ID_KEYS: dict[str, Kind] = {
    "run_id": Kind.PACKAGE_RUN,
    "package_run_id": Kind.PACKAGE_RUN,
    "package_config_id": Kind.PACKAGE_CONFIG,
    "matching_run_id": Kind.MATCHING_RUN,
    "matching_config_id": Kind.MATCHING_CONFIG,
    "reference_data_id": Kind.REFERENCE_DATA,
    "webhook_id": Kind.WEBHOOK,
    "delivery_id": Kind.WEBHOOK_DELIVERY,
    "result_id": Kind.MATCH_RESULT,
    "review_id": Kind.REVIEW,
    "evaluation_id": Kind.EVALUATION,
    "api_key_id": Kind.API_KEY,
    "request_id": Kind.REQUEST,
    "original_request_id": Kind.REQUEST,
}
_BARE_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def public_id(kind: Kind, value: Any) -> Any:
    """`value` (a UUID, or its text) in the form the API shows; anything else unchanged."""
    if isinstance(value, uuid.UUID):
        return format_id(kind, value)
    if isinstance(value, str) and _BARE_UUID.fullmatch(value):
        return format_id(kind, uuid.UUID(value))
    return value


def _public_ids(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for name, kind in PUBLIC_ID_KEYS.items():
        if name in event_dict:
            event_dict[name] = public_id(kind, event_dict[name])
    return event_dict


class _FlushingStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Flush after every line so that `tail -f` and log shippers see it at once."""

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        self.flush()


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _drop_secrets,
        _public_ids,
    ]


def configure_logging(fmt: str = "auto", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Route structlog and stdlib records (dramatiq, uvicorn, sqlalchemy) through one formatter.

    Long-running processes log to stdout (SPEC §7); one-shot commands whose stdout is their
    answer (`keys create`, `demo`) pass `sys.stderr`.
    """
    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    # Plain tracebacks on the console: rich ones print local variables, which may hold input values.
    # JSON lines are written by orjson, with the text `json.dumps` gives them (packmatch.jsontext).
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=dumps_log_line)
        if use_json
        else structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)
    )
    shared = _shared_processors()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = _FlushingStreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access", "sqlalchemy.engine", "pika", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "dramatiq"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
