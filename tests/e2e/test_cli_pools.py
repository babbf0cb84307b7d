"""One-shot commands close their database pools: run in one process (a test, a script calling
`main`), they leave no PostgreSQL connection open behind them."""

from __future__ import annotations

import gc
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
            assert open_connections(database) == baseline, f"`packmatch {' '.join(argv)}` left a connection"
    finally:
        gc.enable()
    capsys.readouterr()
