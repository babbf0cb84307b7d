"""Reference datasets: import from JSON rows or a CSV file, inspect, page through rows, delete.

Both imports apply the same rules, row by row, so that a CSV file of millions of rows streams
through in constant memory:

- row ids (`row_id`, `store.RowWriter`): a row's own `id` (a non-blank string or an integer, at
  most 200 characters) or else `row_<n>`, unique within the dataset;
- column types (`TypeEvidence`): the narrowest of boolean, number and date (ISO 8601) that every
  present value fits, else string. A CSV cell counts as the JSON scalar it spells
  (`csv_reader.cell_value`) and is stored as such, so the same data sent as JSON or as CSV gets the
  same columns, the same stored values and the same matches.

A CSV file is read twice: first to find its problems, row count and column types, then to convert
and insert its rows. All rows are inserted in one transaction, so a half-imported dataset is never
visible, and a problem found while inserting (a duplicate id) rolls everything back.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import IO, Any, Literal

from packmatch.domain.models import Column, ColumnType, ReferenceDataset, ReferenceRow
from packmatch.errors import Conflict, FieldProblem, NotFound, PayloadTooLarge, ValidationFailed
from packmatch.services.csv_reader import CsvRecords, cell_value
from packmatch.services.ports import Clock, utcnow
from packmatch.store import reference_data as store
from packmatch.store.db import Database
from packmatch.store.pagination import Page, PageRequest

NOT_FOUND = "No reference data with this ID exists for your organization."
MAX_ROWS = 5_000_000
MAX_PROBLEMS = 20
MAX_ROW_ID_LENGTH = 200

# Where a row problem is: (row index or line number, message) → a field problem.
Locate = Callable[[int, str], FieldProblem]
# One row on its way in: (where, its own id or None, its values without the id).
IncomingRow = tuple[int, Any, dict[str, Any]]


# --- the shared rules -------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_iso_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) < 10:
        return False
    try:
        date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


class TypeEvidence:
    """What one column's values so far still allow it to be; fed one value at a time."""

    __slots__ = ("boolean", "date", "number", "seen")

    def __init__(self) -> None:
        self.seen = False
        self.boolean = self.number = self.date = True

    @property
    def open(self) -> bool:
        """False once the column can only be `string`: further values change nothing."""
        return self.boolean or self.number or self.date

    def add(self, value: Any) -> None:
        if value is None or value == "":
            return
        self.seen = True
        self.boolean = self.boolean and isinstance(value, bool)
        self.number = self.number and _is_number(value)
        self.date = self.date and _is_iso_date(value)

    @property
    def type(self) -> ColumnType:
        if not self.seen:
            return ColumnType.STRING
        if self.boolean:
            return ColumnType.BOOLEAN
        if self.number:
            return ColumnType.NUMBER
        return ColumnType.DATE if self.date else ColumnType.STRING


def infer_type(values: Iterable[Any]) -> ColumnType:
    """The narrowest type that every present value fits; `string` when they disagree."""
    evidence = TypeEvidence()
    for value in values:
        evidence.add(value)
    return evidence.type


def infer_columns(rows: Iterable[Mapping[str, Any]]) -> tuple[Column, ...]:
    """The union of the rows' keys (first-seen order, `id` excluded) with their inferred types."""
    columns: dict[str, TypeEvidence] = {}
    for row in rows:
        for name, value in row.items():
            if name != "id":
                columns.setdefault(name, TypeEvidence()).add(value)
    return tuple(Column(name=name, type=evidence.type) for name, evidence in columns.items())


def row_id(n: int, raw: Any) -> str:
    """The id of the `n`th row (1-based): its own `raw` id, checked, or `row_<n>` if it has none.

    Raises ValueError with a message for the client when `raw` is not a usable id."""
    if raw is None:
        return f"row_{n}"
    if isinstance(raw, bool) or not isinstance(raw, str | int) or (isinstance(raw, str) and not raw.strip()):
        raise ValueError("row id must be a non-blank string or an integer")
    text = str(raw)
    if len(text) > MAX_ROW_ID_LENGTH:
        raise ValueError(f"row id is longer than {MAX_ROW_ID_LENGTH} characters")
    return text


class Problems:
    """Field problems, up to MAX_PROBLEMS, listed in the order of where they are (row or line)."""

    def __init__(self) -> None:
        self._found: list[tuple[int, FieldProblem]] = []

    @property
    def full(self) -> bool:
        return len(self._found) >= MAX_PROBLEMS

    def add(self, where: int, problem: FieldProblem) -> None:
        if not self.full:
            self._found.append((where, problem))

    def raise_if_any(self, message: str) -> None:
        if not self._found:
            return
        if self.full:
            message += f" Only the first {MAX_PROBLEMS} problems are listed."
        details = [problem for _, problem in sorted(self._found, key=lambda found: found[0])]
        raise ValidationFailed(message, details=details)


def _json_location(index: int, message: str) -> FieldProblem:
    return FieldProblem(f"rows[{index}].id", message)


def _csv_location(line: int, message: str) -> FieldProblem:
    return FieldProblem("file", f"line {line}: {message}" if line else message)


# --- CSV: the first pass finds problems and types, the second converts --------------------------


@dataclass(frozen=True)
class CsvLayout:
    """What the first pass learnt: the header, where the id is, the columns and the row count."""

    header: list[str]
    id_index: int | None
    columns: tuple[Column, ...]
    row_count: int

    def values(self, cells: Sequence[str]) -> dict[str, Any]:
        """A record's values: text as it is in string columns, else the scalar the text spells."""
        texts = [text for index, text in enumerate(cells) if index != self.id_index]
        return {column.name: _stored(column, text) for column, text in zip(self.columns, texts, strict=True)}


def _stored(column: Column, text: str) -> Any:
    if column.type is ColumnType.STRING:
        return text if text.strip() else None
    return cell_value(text)


def scan_csv(file: IO[bytes]) -> CsvLayout:
    """Read the whole file once: its problems (raised, with line numbers), row count and types."""
    problems = Problems()
    records = CsvRecords(
        file, lambda line, message: problems.add(line or 0, _csv_location(line or 0, message))
    )
    id_index = records.header.index("id") if "id" in records.header else None
    evidence = [TypeEvidence() for _ in records.header]
    count = 0
    for line, cells in records:
        count += 1
        if count > MAX_ROWS:
            message = f"The file has more than {MAX_ROWS:,} rows."
            raise PayloadTooLarge(message, details=[FieldProblem("file", message)])
        _check_csv_id(problems, count, line, cells, id_index)
        for column, text in zip(evidence, cells, strict=True):
            if column.open:
                column.add(cell_value(text))
        if problems.full:
            break
    problems.raise_if_any("The CSV file cannot be imported; each problem names its line.")
    columns = tuple(
        Column(name=name, type=column.type)
        for index, (name, column) in enumerate(zip(records.header, evidence, strict=True))
        if index != id_index
    )
    return CsvLayout(records.header, id_index, columns, count)


def _check_csv_id(problems: Problems, n: int, line: int, cells: Sequence[str], id_index: int | None) -> None:
    if id_index is None:
        return
    try:
        row_id(n, cells[id_index])
    except ValueError as exc:
        problems.add(line, _csv_location(line, str(exc)))


def csv_rows(file: IO[bytes], layout: CsvLayout) -> Iterator[IncomingRow]:
    """The second pass: each record converted, with its line and own id (the first pass was clean)."""
    for line, cells in CsvRecords(file, lambda line, message: None):
        own_id = None if layout.id_index is None else cells[layout.id_index]
        yield line, own_id, layout.values(cells)


# --- the service ------------------------------------------------------------------------------


class ReferenceData:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def create(
        self, organization_id: uuid.UUID, name: str, rows: Sequence[Mapping[str, Any]]
    ) -> ReferenceDataset:
        dataset = self._new(organization_id, name, "json", len(rows), infer_columns(rows))
        incoming = (
            (index, row.get("id"), {k: v for k, v in row.items() if k != "id"})
            for index, row in enumerate(rows)
        )
        self._import(dataset, incoming, _json_location, "Reference data rows are invalid.")
        return dataset

    def create_from_csv(self, organization_id: uuid.UUID, name: str, file: IO[bytes]) -> ReferenceDataset:
        """Import a CSV file (binary, seekable: it is read twice). See the module docstring."""
        layout = scan_csv(file)
        file.seek(0)
        dataset = self._new(organization_id, name, "csv", layout.row_count, layout.columns)
        message = "The CSV file cannot be imported; each problem names its line."
        self._import(dataset, csv_rows(file, layout), _csv_location, message)
        return dataset

    def _new(
        self,
        organization_id: uuid.UUID,
        name: str,
        source_type: Literal["json", "csv"],
        row_count: int,
        columns: tuple[Column, ...],
    ) -> ReferenceDataset:
        now = self.clock()
        return ReferenceDataset(
            id=uuid.uuid4(),
            organization_id=organization_id,
            name=name,
            source_type=source_type,
            row_count=row_count,
            columns=columns,
            created_at=now,
            updated_at=now,
        )

    def _import(
        self, dataset: ReferenceDataset, rows: Iterable[IncomingRow], locate: Locate, message: str
    ) -> None:
        """Insert the dataset and its rows in one transaction; any row problem rolls it all back."""
        problems = Problems()

        def duplicate(where: int, taken: str) -> None:
            problems.add(where, locate(where, f"duplicate row id '{taken}'"))

        with self.db.transaction() as conn:
            store.insert_dataset(conn, dataset)
            writer = store.RowWriter(conn, dataset.id, duplicate)
            for n, (where, own_id, values) in enumerate(rows, start=1):
                try:
                    identifier = row_id(n, own_id)
                except ValueError as exc:
                    problems.add(where, locate(where, str(exc)))
                else:
                    writer.add(where, ReferenceRow(identifier, values))
                if problems.full:
                    break
            writer.flush()
            problems.raise_if_any(message)

    def get(self, organization_id: uuid.UUID, dataset_id: uuid.UUID) -> ReferenceDataset:
        with self.db.transaction() as conn:
            dataset = store.get_dataset(conn, organization_id, dataset_id)
        if dataset is None:
            raise NotFound(NOT_FOUND)
        return dataset

    def list(self, organization_id: uuid.UUID, request: PageRequest) -> Page[ReferenceDataset]:
        with self.db.transaction() as conn:
            return store.list_datasets(conn, organization_id, request)

    def rows(
        self, organization_id: uuid.UUID, dataset_id: uuid.UUID, request: PageRequest
    ) -> Page[ReferenceRow]:
        with self.db.transaction() as conn:
            dataset = store.get_dataset(conn, organization_id, dataset_id)
            if dataset is None:
                raise NotFound(NOT_FOUND)
            return store.page_rows(conn, dataset, request)

    def delete(self, organization_id: uuid.UUID, dataset_id: uuid.UUID) -> None:
        with self.db.transaction() as conn:
            if store.get_dataset(conn, organization_id, dataset_id) is None:
                raise NotFound(NOT_FOUND)
            if store.dataset_in_use(conn, dataset_id):
                raise Conflict(store.DATASET_IN_USE)
            in_flight = store.runs_in_flight_using(conn, organization_id, dataset_id)
            if in_flight:
                runs = "run is" if in_flight == 1 else "runs are"
                raise Conflict(
                    f"{in_flight} package {runs} still running against this reference data; "
                    "delete it when they have finished."
                )
            store.delete_dataset(conn, organization_id, dataset_id)
