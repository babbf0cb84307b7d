"""Engine construction and migrations. The caller owns every transaction (`Database.transaction`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


def _sqlite_pragmas(busy_timeout: float) -> Any:
    """SQLite has one writer at a time (decision 0019): a writer waits `busy_timeout` seconds for
    the lock (held for a whole CSV import), then fails with "database is locked" (a 503)."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={round(busy_timeout * 1000)}")
        cursor.close()

    return on_connect


def make_engine(
    url: str, *, pool_size: int = 5, sqlite_busy_timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS
) -> Engine:
    if url.startswith("sqlite"):
        connect_args = {"check_same_thread": False, "timeout": sqlite_busy_timeout}
        engine = sa.create_engine(url, connect_args=connect_args, hide_parameters=True)
        sa.event.listen(engine, "connect", _sqlite_pragmas(sqlite_busy_timeout))
        return engine
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=True,
        pool_recycle=1800,
        # Bound values are input rows: never let them reach an error message or a log line.
        hide_parameters=True,
    )


class Database:
    """A connection pool plus the one way to open a transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(
        cls, url: str, *, pool_size: int = 5, sqlite_busy_timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS
    ) -> Database:
        return cls(make_engine(url, pool_size=pool_size, sqlite_busy_timeout=sqlite_busy_timeout))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Bring the schema up to date. Idempotent: a current schema is left as it is."""
    command.upgrade(alembic_config(url), "head")
