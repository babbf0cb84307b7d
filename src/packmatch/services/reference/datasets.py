"""Reference datasets: import from JSON rows or a CSV file, inspect, page through rows, delete.

Both imports apply the same rules (`reference_rules`): row ids, column types, and at most 20
problems. A CSV cell counts as the JSON scalar it spells (`csv_reader.cell_value`) and is stored as
such, so the same data sent as JSON or as CSV gets the same columns, the same stored values and the
same matches.

A CSV file is read twice (`csv_import`): first to find its problems, row count and column types,
then to convert and write its rows, in batches and in bulk (`store.write_rows`: COPY on
PostgreSQL), in constant memory whatever its size. The dataset and all its rows are written in
one transaction, so a half-imported dataset is never visible. A duplicate id makes the unique index
fail the write, which rolls everything back; the ids are then read once more to name the lines of
the duplicates (docs/decisions/0005-bulk-csv-import.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import IO, Any, Literal, NoReturn

from packmatch.domain.models import Column, ReferenceDataset, ReferenceRow
from packmatch.domain.values import nested_problems
from packmatch.errors import Conflict, FieldProblem, NotFound, PackmatchError, ValidationFailed
from packmatch.services.ports import Clock, utcnow
from packmatch.services.reference.csv_import import (
    CSV_PROBLEMS,
    CsvLayout,
    ImportProgress,
    NoProgress,
    OnePass,
    TypesChanged,
    csv_location,
    file_size,
    id_lines,
    row_batches,
    scan_csv,
    scan_records,
)
from packmatch.services.reference.csv_reader import IrregularCsv
from packmatch.services.reference.rules import MAX_PROBLEMS, Problems, infer_columns, row_id
from packmatch.store import reference_data as store
from packmatch.store.db import Database
from packmatch.store.pagination import Page, PageRequest

NOT_FOUND = "No reference data with this ID exists for your organization."
MAX_ROWS = 5_000_000
MAX_NAME = 200

# Where a row problem is: (row index or line number, message) → a field problem.
Locate = Callable[[int, str], FieldProblem]
# One row on its way in: (where, its own id or None, its values without the id).
IncomingRow = tuple[int, Any, dict[str, Any]]


def default_name(filename: str | None) -> str:
    """A dataset's name from its file's: without directories (`/` or `\\`) or the last extension."""
    return PurePosixPath((filename or "").replace("\\", "/")).stem.strip()[:MAX_NAME]


def _shaped(dataset: ReferenceDataset, layout: CsvLayout) -> ReferenceDataset:
    return dataset.model_copy(update={"row_count": layout.row_count, "columns": layout.columns})


def _json_location(index: int, message: str) -> FieldProblem:
    return FieldProblem(f"rows[{index}].id", message)


def _refuse_nested(rows: Sequence[Mapping[str, Any]]) -> None:
    """A row's values are scalars (`domain.values`): each nested one is named `rows[i].field`."""
    problems = nested_problems(((f"rows[{i}]", row) for i, row in enumerate(rows)), MAX_PROBLEMS)
    if problems:
        raise ValidationFailed(f"Reference data rows are invalid: {problems[0].message}", details=problems)


class ReferenceData:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def create(
        self, organization_id: uuid.UUID, name: str, rows: Sequence[Mapping[str, Any]]
    ) -> ReferenceDataset:
        _refuse_nested(rows)
        dataset = self._new(organization_id, name, "json", len(rows), infer_columns(rows))
        incoming = (
            (index, row.get("id"), {k: v for k, v in row.items() if k != "id"})
            for index, row in enumerate(rows)
        )
        self._import(dataset, incoming, _json_location, "Reference data rows are invalid.")
        return dataset

    def create_from_csv(
        self,
        organization_id: uuid.UUID,
        name: str,
        file: IO[bytes],
        progress: ImportProgress | None = None,
    ) -> ReferenceDataset:
        """Import a CSV file (binary, seekable: it may be read more than once). See the module
        docstring; most files are read once, the others twice or three times."""
        progress = progress or NoProgress()
        dataset = self._new(organization_id, name, "csv", 0, ())
        try:
            try:
                return self._write_once(dataset, file, progress)
            except IrregularCsv:
                file.seek(0)
                layout = scan_records(file, MAX_ROWS)  # raises the problems, with their lines
            except TypesChanged as changed:
                layout = changed.layout
            file.seek(0)
            return self._write(dataset, file, layout, progress)
        except store.RowIdTaken:
            file.seek(0)
            layout = scan_csv(file, MAX_ROWS, progress)  # the problems of the whole file come first
            file.seek(0)
            self._raise_duplicates(file, layout)

    def _write_once(
        self, dataset: ReferenceDataset, file: IO[bytes], progress: ImportProgress
    ) -> ReferenceDataset:
        progress.phase("importing", file_size(file))
        with self.db.transaction() as conn:
            store.insert_dataset(conn, dataset)
            reading = OnePass(file, MAX_ROWS, progress)
            store.write_rows(conn, dataset.id, reading.batches())
            if reading.rewrite_needed():
                raise TypesChanged(reading.layout())
            written = _shaped(dataset, reading.layout())
            store.set_dataset_shape(conn, written)
        return written

    def _write(
        self, dataset: ReferenceDataset, file: IO[bytes], layout: CsvLayout, progress: ImportProgress
    ) -> ReferenceDataset:
        written = _shaped(dataset, layout)
        with self.db.transaction() as conn:
            store.insert_dataset(conn, written)
            store.write_rows(conn, dataset.id, row_batches(file, layout, progress))
        return written

    def _raise_duplicates(self, file: IO[bytes], layout: CsvLayout) -> NoReturn:
        with self.db.transaction() as conn:
            found = store.first_duplicate_ids(conn, id_lines(file, layout), MAX_PROBLEMS)
        problems = Problems()
        for line, taken in found:
            problems.add(line, csv_location(line, f"duplicate row id '{taken}'"))
        problems.raise_if_any(CSV_PROBLEMS)
        raise PackmatchError("The database reported a duplicate row id that the file does not have.")

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
