"""Shared fixtures: real services when present, isolated state per test.

A test that needs PostgreSQL or Redis skips with a visible reason when the service is absent on a
developer laptop, and fails when `CI=true` (as dramatiq's own `check_redis` does).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import pytest
import redis
import sqlalchemy as sa

from packmatch.bootstrap import Runtime, build_runtime
from packmatch.settings import Settings
from packmatch.store.db import migrate
from packmatch.store.tables import metadata
from tests.webhook_receiver import Receiver, receiving

POSTGRES_URL = os.environ.get(
    "PACKMATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PACKMATCH_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
AMQP_URL = os.environ.get("PACKMATCH_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def service_missing(name: str, error: Exception) -> None:
    reason = f"{name} is not reachable ({type(error).__name__}: {error})"
    if IN_CI:
        pytest.fail(f"{reason}; CI=true requires it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """A fresh, migrated database for this test session on the PostgreSQL server."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        service_missing("PostgreSQL", exc)
    name = f"packmatch_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def truncate_all(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {names} CASCADE"))
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_server_url: str) -> str:
    """The session database, emptied before the test (worker threads use their own connections)."""
    truncate_all(postgres_server_url)
    return postgres_server_url


@pytest.fixture
def redis_url() -> str:
    """A dedicated Redis database number, flushed before the test."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        service_missing("Redis", exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, made once; each test gets a copy (migrating costs more than copying)."""
    path = tmp_path_factory.mktemp("template") / "packmatch.db"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def amqp_url() -> str:
    """The RabbitMQ server; tests isolate themselves with a queue name of their own."""
    try:
        connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    except pika.exceptions.AMQPError as exc:
        service_missing("RabbitMQ", exc)
    connection.close()
    return AMQP_URL


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "packmatch.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def fast_settings(**overrides: object) -> Settings:
    """Settings for tests: short backoffs so that retries complete within a test."""
    values: dict[str, object] = {
        "database_url": "sqlite://",
        "broker_url": "memory://",
        "log_format": "json",
        "slot_min_backoff_ms": 10,
        "slot_max_backoff_ms": 50,
        "slot_max_retries": 2,
        "worker_threads": 2,
        "rate_limit_per_minute": 0,
        "rate_limit_per_address_per_minute": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_runtime() -> Iterator[Callable[..., Runtime]]:
    runtimes: list[Runtime] = []

    def build(**overrides: object) -> Runtime:
        runtime = build_runtime(fast_settings(**overrides))
        runtimes.append(runtime)
        return runtime

    yield build
    for runtime in runtimes:
        runtime.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real local HTTP receiver for webhook deliveries (tests/webhook_receiver.py)."""
    with receiving() as started:
        yield started
