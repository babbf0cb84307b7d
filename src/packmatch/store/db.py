"""Engine construction and migrations. The caller owns every transaction (`Database.transaction`)."""

from __future__ import annotations

import select
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection, Engine

from packmatch import jsontext

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


# A pooled connection idle for longer than this is pinged (a round trip) before it is used again;
# one in use since is trusted unless its socket says otherwise (`_check_out`).
PING_AFTER_IDLE_SECONDS = 10.0


def _checked_in(_dbapi_connection: Any, record: Any) -> None:
    record.info["idle_since"] = time.monotonic()


def _check_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """What `pool_pre_ping` guards against, without its round trip on every checkout (a tenth of a
    worker's CPU went to transactions and pings, benchmarks/README.md). A server that closes a
    connection (restart, `pg_terminate_backend`, idle timeout) sends a notice and a FIN, so the
    socket of an idle connection turns readable: then, or after a long idle, ping; a connection
    that fails the ping is replaced (SQLAlchemy retries the checkout with a new one). A
    connection that breaks while in use fails its statement as before: a transient error, retried."""
    idle = time.monotonic() - record.info.get("idle_since", time.monotonic())
    if idle < PING_AFTER_IDLE_SECONDS and not _readable(dbapi_connection):
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        dbapi_connection.rollback()
    except Exception as exc:
        raise sa.exc.DisconnectionError(str(exc)) from exc


def _readable(dbapi_connection: Any) -> bool:
    try:
        ready, _, _ = select.select([dbapi_connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(ready)


# JSON columns (snapshots, input rows, results) read by orjson, with the values of the standard
# library's `json` (packmatch.jsontext). They are still written by `json.dumps`: its text (spaces
# after `,` and `:`, ASCII only) is what the CSV import writes itself (store/reference_data.py).
_JSON_CODEC: dict[str, Any] = {"json_deserializer": jsontext.loads}


def make_engine(
    url: str, *, pool_size: int = 5, sqlite_busy_timeout: float = SQLITE_BUSY_TIMEOUT_SECONDS
) -> Engine:
    if url.startswith("sqlite"):
        connect_args = {"check_same_thread": False, "timeout": sqlite_busy_timeout}
        engine = sa.create_engine(url, connect_args=connect_args, hide_parameters=True, **_JSON_CODEC)
        sa.event.listen(engine, "connect", _sqlite_pragmas(sqlite_busy_timeout))
        return engine
    engine = sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_recycle=1800,
        # Bound values are input rows: never let them reach an error message or a log line.
        hide_parameters=True,
        **_JSON_CODEC,
    )
    sa.event.listen(engine, "checkin", _checked_in)
    sa.event.listen(engine, "checkout", _check_out)
    return engine


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

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A transaction for reading, whose statements all see the database as of its first one:
        REPEATABLE READ on PostgreSQL; on SQLite an explicit BEGIN (the driver opens none before
        a SELECT, so each statement would see the latest commit)."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("BEGIN")
                yield conn

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """One pooled connection for a use case that commits itself (`conn.commit()`, possibly more
        than once); whatever it has not committed when the block ends is rolled back."""
        with self.engine.connect() as conn:
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
