"""CSV import on SQLite and PostgreSQL (COPY): the same datasets, rows and stored text as the JSON
path, problems by line, and nothing visible after a rejected file."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from packmatch.domain.models import ReferenceDataset
from packmatch.errors import PayloadTooLarge, ValidationFailed
from packmatch.services.reference import csv_import
from packmatch.services.reference import datasets as service
from packmatch.services.reference.csv_import import scan_records
from packmatch.services.reference.csv_reader import CsvRecords, IrregularCsv
from packmatch.services.reference.datasets import ReferenceData
from packmatch.store import accounts
from packmatch.store.db import Database
from packmatch.store.tables import reference_datasets, reference_rows


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    db = Database.from_url(url)
    yield db
    db.dispose()


@pytest.fixture
def organization(database: Database) -> uuid.UUID:
    with database.transaction() as conn:
        return accounts.get_or_create_organization(conn, "acme", datetime.now(UTC))


@pytest.fixture
def imports(database: Database) -> ReferenceData:
    return ReferenceData(database)


def csv_file(header: str, lines: list[str]) -> io.BytesIO:
    return io.BytesIO((header + "\n" + "".join(line + "\n" for line in lines)).encode())


Stored = list[tuple[int, str, str]]


def stored(database: Database, dataset_id: uuid.UUID) -> Stored:
    """Each row's position, id and JSON text exactly as the database holds it (psycopg parses a
    json column itself, so PostgreSQL casts it to text; SQLite's column is text already)."""
    as_text = sa.cast if database.dialect == "postgresql" else sa.type_coerce
    query = (
        sa.select(reference_rows.c.position, reference_rows.c.row_id, as_text(reference_rows.c.data, sa.Text))
        .where(reference_rows.c.dataset_id == dataset_id)
        .order_by(reference_rows.c.position)
    )
    with database.transaction() as conn:
        return [(position, row_id, data) for position, row_id, data in conn.execute(query)]


def table_counts(database: Database) -> tuple[int, int]:
    with database.transaction() as conn:
        datasets = conn.execute(sa.select(sa.func.count()).select_from(reference_datasets)).scalar_one()
        rows = conn.execute(sa.select(sa.func.count()).select_from(reference_rows)).scalar_one()
    return datasets, rows


def as_json_rows(content: bytes) -> list[dict[str, Any]]:
    """The file's records as the JSON path receives them, by the per-record rule."""
    layout = scan_records(io.BytesIO(content), service.MAX_ROWS)
    rows = []
    for _, cells in CsvRecords(io.BytesIO(content), lambda line, message: None):
        own = {} if layout.id_index is None else {"id": cells[layout.id_index]}
        rows.append({**own, **layout.values(cells)})
    return rows


def both_ways(
    imports: ReferenceData, organization: uuid.UUID, database: Database, header: str, lines: list[str]
) -> tuple[ReferenceDataset, Stored, Stored]:
    """The file imported as CSV and its records as JSON rows: the CSV dataset and both's rows."""
    content = csv_file(header, lines).getvalue()
    from_csv = imports.create_from_csv(organization, "csv", io.BytesIO(content))
    from_json = imports.create(organization, "json", as_json_rows(content))
    assert from_csv.columns == from_json.columns
    assert from_csv.row_count == from_json.row_count
    return from_csv, stored(database, from_csv.id), stored(database, from_json.id)


def messages(error: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [detail.message for detail in error.value.details]


# --- the same as the JSON path ----------------------------------------------------------------

MIXED_HEADER = "id,name,amount,count,active,since,note"
MIXED = [
    'A-1,Kühne + Nagel,4250.00,3,true,2024-09-10,"12 ""Main"" St\nSpringfield"',
    "A-2,日本郵船,-0.5,-4,FALSE,2024-09-01T10:40:00Z,",
    "A\\3, MSC ,1e3,0, True ,2024-02-29,back\\slash",
    "A-4,,  ,,,,tab\there",
    "A-5,Hapag-Lloyd,7,12345678901234567890,false,2024-12-31,%s {} \u00a0",
]


def test_csv_import_stores_what_the_json_path_stores_for_the_same_rows(
    imports: ReferenceData, organization: uuid.UUID, database: Database
) -> None:
    dataset, from_csv, from_json = both_ways(imports, organization, database, MIXED_HEADER, MIXED)
    assert [(c.name, c.type.value) for c in dataset.columns] == [
        ("name", "string"), ("amount", "number"), ("count", "number"), ("active", "boolean"),
        ("since", "date"), ("note", "string"),
    ]  # fmt: skip
    assert from_csv == from_json
    read_back = imports.get(organization, dataset.id)
    assert (read_back.row_count, read_back.columns, read_back.source_type) == (5, dataset.columns, "csv")


def test_generated_row_ids_and_positions_over_many_batches(
    imports: ReferenceData, organization: uuid.UUID, database: Database
) -> None:
    lines = [f"REF{n:07d},{n}.25,{'yes' if n == 24_000 else n % 2 == 0}" for n in range(25_000)]
    dataset, from_csv, from_json = both_ways(imports, organization, database, "reference,amount,flag", lines)
    assert [(p, i) for p, i, _ in from_csv[:2]] == [(0, "row_1"), (1, "row_2")]
    assert from_csv[-1][:2] == (24_999, "row_25000")
    assert from_csv == from_json
    assert [c.type.value for c in dataset.columns] == ["string", "number", "string"]


def test_a_number_column_that_turns_to_text_late_is_written_as_text(
    imports: ReferenceData, organization: uuid.UUID, database: Database
) -> None:
    lines = [f"K-{n},{'n/a' if n == 20_000 else n}" for n in range(20_001)]
    dataset, from_csv, from_json = both_ways(imports, organization, database, "id,limit", lines)
    assert [c.type.value for c in dataset.columns] == ["string"]
    assert (from_csv[0][2], from_csv[-1][2]) == ('{"limit": "0"}', '{"limit": "n/a"}')
    assert from_csv == from_json
    assert table_counts(database) == (2, 2 * 20_001)


def test_the_exact_readers_store_the_same_rows_as_the_batch_readers(
    imports: ReferenceData, organization: uuid.UUID, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the batch reader gives up on a file the exact reader finds clean, both passes are exact."""
    lines = [*MIXED, *[f"B-{n},x{n},{n}.5,{n},true,2024-01-01,y" for n in range(3000)]]
    batch = both_ways(imports, organization, database, MIXED_HEADER, lines)

    def gives_up(file: object) -> None:
        raise IrregularCsv

    monkeypatch.setattr(csv_import, "CsvBatches", gives_up)
    exact = both_ways(imports, organization, database, MIXED_HEADER, lines)
    assert exact[1] == batch[1] == batch[2]
    assert exact[0].columns == batch[0].columns


# --- rejected files leave nothing -------------------------------------------------------------


def test_duplicate_ids_are_named_by_line_and_nothing_is_left(
    imports: ReferenceData, organization: uuid.UUID, database: Database
) -> None:
    lines = [f"ID-{n},{n}" for n in range(1, 30_001)] + ["ID-7,0", "ID-29999,1", "ID-7,2"]
    with pytest.raises(ValidationFailed) as error:
        imports.create_from_csv(organization, "dups", csv_file("id,amount", lines))
    assert messages(error) == [
        "line 30002: duplicate row id 'ID-7'",
        "line 30003: duplicate row id 'ID-29999'",
        "line 30004: duplicate row id 'ID-7'",
    ]
    assert table_counts(database) == (0, 0)


def test_at_most_20_duplicates_are_listed(imports: ReferenceData, organization: uuid.UUID) -> None:
    lines = [f"ID-{n % 50},{n}" for n in range(100)]
    with pytest.raises(ValidationFailed) as error:
        imports.create_from_csv(organization, "dups", csv_file("id,amount", lines))
    assert messages(error) == [f"line {line}: duplicate row id 'ID-{line - 52}'" for line in range(52, 72)]
    assert "Only the first 20 problems are listed." in error.value.message


def test_a_bad_line_after_a_duplicate_is_reported_instead(
    imports: ReferenceData, organization: uuid.UUID, database: Database
) -> None:
    lines = ["A,1", "A,2", *[f"B-{n},{n}" for n in range(20_000)], "C"]
    with pytest.raises(ValidationFailed) as error:
        imports.create_from_csv(organization, "dups", csv_file("id,amount", lines))
    assert messages(error) == ["line 20004: expected 2 fields, got 1"]
    assert table_counts(database) == (0, 0)


def test_bad_lines_far_into_the_file_are_named_and_nothing_is_left(
    imports: ReferenceData, organization: uuid.UUID, database: Database
) -> None:
    lines = [f"{n},x" for n in range(40_000)]
    lines[30_000] = "30000"
    lines[35_000] = " ,y"
    with pytest.raises(ValidationFailed) as error:
        imports.create_from_csv(organization, "bad", csv_file("id,note", lines))
    assert messages(error) == [
        "line 30002: expected 2 fields, got 1",
        "line 35002: row id must be a non-blank string or an integer",
    ]
    assert table_counts(database) == (0, 0)


def test_ids_with_tabs_backslashes_and_line_breaks_are_kept(
    imports: ReferenceData, organization: uuid.UUID, database: Database
) -> None:
    lines = ['"a\tb",1', "c\\N,2", '"d\ne",3', "\\.,4"]
    dataset = imports.create_from_csv(organization, "odd ids", csv_file("id,n", lines))
    assert [row_id for _, row_id, _ in stored(database, dataset.id)] == ["a\tb", "c\\N", "d\ne", "\\."]


# --- the row cap ------------------------------------------------------------------------------


@pytest.mark.parametrize("tail", ["", "\nbroken"], ids=["regular", "irregular"])
def test_more_rows_than_the_cap_is_payload_too_large_and_leaves_nothing(
    imports: ReferenceData,
    organization: uuid.UUID,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    tail: str,
) -> None:
    monkeypatch.setattr(service, "MAX_ROWS", 2500)
    content = csv_file("id,amount", [f"{n},{n}" for n in range(2501)]).getvalue() + tail.encode()
    with pytest.raises(PayloadTooLarge, match="more than 2,500 rows"):
        imports.create_from_csv(organization, "big", io.BytesIO(content))
    assert table_counts(database) == (0, 0)


def test_exactly_the_cap_is_imported(
    imports: ReferenceData, organization: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "MAX_ROWS", 2500)
    content = csv_file("id,amount", [f"{n},{n}" for n in range(2500)])
    assert imports.create_from_csv(organization, "cap", content).row_count == 2500


# --- progress ---------------------------------------------------------------------------------


@dataclass
class RecordedProgress:
    phases: list[tuple[str, int]] = field(default_factory=list)
    advances: list[tuple[int, int]] = field(default_factory=list)

    def phase(self, name: str, size: int) -> None:
        self.phases.append((name, size))

    def advance(self, rows: int, position: int) -> None:
        self.advances.append((rows, position))


def test_progress_counts_rows_and_bytes_of_the_one_pass(
    imports: ReferenceData, organization: uuid.UUID
) -> None:
    content = csv_file("id,note", [f"{n},{'x' * 100}" for n in range(20_000)])
    progress = RecordedProgress()
    imports.create_from_csv(organization, "p", content, progress)
    size = len(content.getvalue())
    assert progress.phases == [("importing", size)]
    assert len(progress.advances) > 2
    assert progress.advances[-1] == (20_000, size)
    assert progress.advances == sorted(progress.advances)
