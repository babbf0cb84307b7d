"""Which failures are transient (worth retrying, or answering 503): shared by both edges."""

from __future__ import annotations

import redis.exceptions
import sqlalchemy.exc
from dramatiq.errors import BrokerConnectionError

from packmatch.errors import TransientError

_TRANSIENT: tuple[type[BaseException], ...] = (
    TransientError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.DisconnectionError,
    sqlalchemy.exc.TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    BrokerConnectionError,
    ConnectionError,
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _TRANSIENT)


def database_busy(exc: BaseException) -> bool:
    """SQLite's one write lock was held by another transaction (an import) past the busy timeout."""
    if not isinstance(exc, sqlalchemy.exc.OperationalError):
        return False
    return "database is locked" in str(exc.orig) or "database table is locked" in str(exc.orig)
