"""`packmatch reference-data import FILE.csv --organization ORG [--name NAME]` as an operator runs it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from packmatch.cli import main
from packmatch.domain.ids import Kind, parse_id
from packmatch.services.accounts import Accounts
from packmatch.services.reference.datasets import ReferenceData
from packmatch.store.db import Database
from packmatch.store.pagination import PageRequest
from packmatch.store.tables import reference_datasets, reference_rows

pytestmark = pytest.mark.usefixtures("restore_logging")

BOOKINGS = (
    "id,reference,amount,departure\nBK-1,ABC1234567,4250.00,2024-09-10\nBK-2,XYZ7654321,1200,2024-09-01\n"
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    monkeypatch.setenv("PACKMATCH_DATABASE_URL", url)
    monkeypatch.delenv("PACKMATCH_LOG_FORMAT", raising=False)
    db = Database.from_url(url)
    yield db
    db.dispose()


@pytest.fixture
def acme(database: Database) -> Any:
    Accounts(database).create_key("acme", frozenset({"read"}))
    return Accounts(database).organization_id("acme")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["reference-data", "import", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, name: str, content: str) -> str:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return str(path)


def log_events(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def counts(database: Database) -> tuple[int, int]:
    with database.transaction() as conn:
        datasets = conn.execute(sa.select(sa.func.count()).select_from(reference_datasets)).scalar_one()
        rows = conn.execute(sa.select(sa.func.count()).select_from(reference_rows)).scalar_one()
    return datasets, rows


def test_import_prints_the_dataset_id_alone_and_stores_the_rows(
    database: Database, acme: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, write(tmp_path, "bookings.csv", BOOKINGS), "--organization", "acme")
    assert code == 0
    assert out.startswith("ref_")
    assert out == out.strip() + "\n"
    reference_data = ReferenceData(database)
    dataset = reference_data.get(acme, parse_id(Kind.REFERENCE_DATA, out.strip()))
    assert (dataset.name, dataset.source_type, dataset.row_count) == ("bookings", "csv", 2)
    rows = reference_data.rows(acme, dataset.id, PageRequest(limit=10, cursor=None, order="asc")).items
    assert [(row.id, row.values["amount"]) for row in rows] == [("BK-1", 4250.0), ("BK-2", 1200)]


def test_name_option_names_the_dataset(
    database: Database, acme: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "export.2024.csv", BOOKINGS)
    _, out, _ = run(capsys, path, "--organization", "acme", "--name", " Bookings Q3 ")
    _, default, _ = run(capsys, path, "--organization", "acme")
    datasets = ReferenceData(database)
    assert datasets.get(acme, parse_id(Kind.REFERENCE_DATA, out.strip())).name == "Bookings Q3"
    assert datasets.get(acme, parse_id(Kind.REFERENCE_DATA, default.strip())).name == "export.2024"


def test_progress_and_the_result_are_json_log_lines_on_stderr_without_values(
    database: Database, acme: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, write(tmp_path, "bookings.csv", BOOKINGS), "--organization", "acme")
    events = log_events(err)
    progress = [e for e in events if e["event"] == "reference_data.import_progress"]
    [imported] = [e for e in events if e["event"] == "reference_data.imported"]
    assert code == 0
    assert progress[-1]["rows"] == 2
    assert isinstance(progress[-1]["rows_per_s"], int)
    assert (imported["reference_data_id"], imported["rows"]) == (out.strip(), 2)
    assert "ABC1234567" not in err
    assert "ABC1234567" not in out


def test_a_bad_file_exits_1_naming_its_lines_and_leaves_nothing(
    database: Database, acme: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = BOOKINGS + "BK-3,broken\n" + "BK-1,DUP,1,2024-01-01\n"
    code, out, err = run(capsys, write(tmp_path, "bad.csv", content), "--organization", "acme")
    assert code == 1
    assert out == ""
    assert "  line 4: expected 4 fields, got 2\n" in err
    assert counts(database) == (0, 0)


def test_a_duplicate_id_exits_1_naming_its_line(
    database: Database, acme: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content = BOOKINGS + "BK-1,DUP,1,2024-01-01\n"
    code, out, err = run(capsys, write(tmp_path, "dup.csv", content), "--organization", "acme")
    assert (code, out) == (1, "")
    assert "  line 4: duplicate row id 'BK-1'\n" in err
    assert counts(database) == (0, 0)


def test_an_unknown_organization_is_refused_and_not_created(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, write(tmp_path, "b.csv", BOOKINGS), "--organization", "globex")
    assert (code, out) == (1, "")
    assert "no organization named 'globex'" in err
    assert "packmatch keys create --organization globex" in err
    assert Accounts(database).organization_id("globex") is None
    assert counts(database) == (0, 0)


def test_a_missing_file_exits_1(
    database: Database, acme: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, str(tmp_path / "nowhere.csv"), "--organization", "acme")
    assert (code, out) == (1, "")
    assert "cannot read" in err


def test_a_blank_name_is_refused(
    database: Database, acme: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, write(tmp_path, "b.csv", BOOKINGS), "--organization", "acme", "--name", " ")
    assert code == 1
    assert "--name" in err
