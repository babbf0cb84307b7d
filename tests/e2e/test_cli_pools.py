"""One-shot commands close their database pools: run in one process (a test, a script calling
`main`), they leave no PostgreSQL connection open behind them."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from packmatch.cli import main

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("restore_logging")]


@pytest.fixture
def database(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    monkeypatch.setenv("PACKMATCH_DATABASE_URL", postgres_url)
    monitor = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    yield monitor
    monitor.dispose()


def open_connections(monitor: sa.Engine) -> int:
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    with monitor.connect() as conn:
        return int(conn.execute(sa.text(query)).scalar_one())


def settled_connections(monitor: sa.Engine, expected: int, seconds: float = 5.0) -> int:
    """The open connections once they reach `expected`, or after `seconds`: a server process
    leaves pg_stat_activity a moment after its client closed the connection (on a loaded machine,
    after the next query), so one look can still see a connection that was closed."""
    deadline = time.monotonic() + seconds
    while (count := open_connections(monitor)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return count


def test_one_shot_commands_leave_no_connection_open(
    database: sa.Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "bookings.csv"
    csv.write_text("id,reference\nBK-1,ABC1234567\n")
    archive = tmp_path / "runs.jsonl"
    commands = [
        ["keys", "create", "--organization", "acme"],
        ["keys", "list"],
        ["keys", "revoke", "00000000-0000-4000-8000-000000000000"],
        ["reference-data", "import", str(csv), "--organization", "acme"],
        ["prune", "--older-than", "90d"],
        ["export", "runs", "-o", str(archive)],
        ["import", "runs", str(archive)],
        ["organizations", "delete", "acme", "--force"],
    ]
    baseline = open_connections(database)
    gc.disable()  # a leaked pool must not be closed behind the test's back by the collector
    try:
        for argv in commands:
            main(argv)
            assert settled_connections(database, baseline) == baseline, (
                f"`packmatch {' '.join(argv)}` left a connection"
            )
    finally:
        gc.enable()
    capsys.readouterr()
