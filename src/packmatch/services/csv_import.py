"""A CSV file of reference data, read twice: the first pass finds its problems (with their lines),
row count and column types; the second turns its records into batches for `store.write_rows`.

Both passes read a regular file with the batch reader (`CsvBatches`) and the column-wise rules of
`csv_columns`. At the first irregularity the first pass starts again with the exact reader
(`CsvRecords`), which names every problem's line, as it always did; a file that is irregular
without a problem to report (none is known) is then read exactly in the second pass too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import IO, Any, Protocol

from packmatch.domain.models import Column, ColumnType
from packmatch.errors import FieldProblem, PackmatchError, PayloadTooLarge
from packmatch.services.csv_columns import RowEncoder, add_cells
from packmatch.services.csv_reader import CsvBatches, CsvRecords, IrregularCsv, cell_value
from packmatch.services.reference_rules import MAX_ROW_ID_LENGTH, Problems, TypeEvidence, row_id

CSV_PROBLEMS = "The CSV file cannot be imported; each problem names its line."
EXACT_BATCH = 1000

# A batch for the store: the rows' ids and their values as JSON text (`store.RowBatch`).
RowBatch = tuple[Sequence[str], list[str]]


class ImportProgress(Protocol):
    """Told how an import gets on: a phase begins (`checking`, then `writing` with the row count
    as its total), and rows are done, a batch at a time."""

    def phase(self, name: str, total: int | None) -> None: ...

    def advance(self, rows: int) -> None: ...


class NoProgress:
    def phase(self, name: str, total: int | None) -> None:
        pass

    def advance(self, rows: int) -> None:
        pass


def csv_location(line: int, message: str) -> FieldProblem:
    return FieldProblem("file", f"line {line}: {message}" if line else message)


@dataclass(frozen=True)
class CsvLayout:
    """What the first pass learnt: the header, where the id is, the columns, the row count, and
    whether the batch reader read the file without meeting anything irregular."""

    header: list[str]
    id_index: int | None
    columns: tuple[Column, ...]
    row_count: int
    regular: bool = True

    def values(self, cells: Sequence[str]) -> dict[str, Any]:
        """A record's values: text as it is in string columns, else the scalar the text spells.
        The rule one record at a time; `csv_columns.RowEncoder` writes the same as JSON text."""
        texts = [text for index, text in enumerate(cells) if index != self.id_index]
        return {column.name: _stored(column, text) for column, text in zip(self.columns, texts, strict=True)}


def _stored(column: Column, text: str) -> Any:
    if column.type is ColumnType.STRING:
        return text if text.strip() else None
    return cell_value(text)


# --- the first pass ---------------------------------------------------------------------------


def scan_csv(file: IO[bytes], max_rows: int, progress: ImportProgress | None = None) -> CsvLayout:
    """Read the whole file once: its problems (raised, with line numbers), row count and types.
    More than `max_rows` records → PayloadTooLarge."""
    progress = progress or NoProgress()
    progress.phase("checking", None)
    try:
        return _scan_batches(file, max_rows, progress)
    except IrregularCsv:
        file.seek(0)
        return scan_records(file, max_rows)


def _too_many(max_rows: int) -> PayloadTooLarge:
    message = f"The file has more than {max_rows:,} rows."
    return PayloadTooLarge(message, details=[FieldProblem("file", message)])


def _scan_batches(file: IO[bytes], max_rows: int, progress: ImportProgress) -> CsvLayout:
    records = CsvBatches(file)
    id_index = records.header.index("id") if "id" in records.header else None
    evidence = [TypeEvidence() for _ in records.header]
    count = 0
    for batch in records:
        count += len(batch)
        if count > max_rows:
            raise _too_many(max_rows)
        for index, cells in enumerate(zip(*batch, strict=True)):
            if index == id_index:
                _check_ids(cells)
            else:
                add_cells(evidence[index], cells)
        progress.advance(len(batch))
    return _layout(records.header, id_index, evidence, count, regular=True)


def _check_ids(cells: Sequence[str]) -> None:
    """What `row_id` says of each own id, for a batch: a blank or too long one is irregular."""
    if not all(map(str.strip, cells)) or max(map(len, cells)) > MAX_ROW_ID_LENGTH:
        raise IrregularCsv


def _layout(
    header: list[str], id_index: int | None, evidence: list[TypeEvidence], count: int, *, regular: bool
) -> CsvLayout:
    columns = tuple(
        Column(name=name, type=column.type)
        for index, (name, column) in enumerate(zip(header, evidence, strict=True))
        if index != id_index
    )
    return CsvLayout(header, id_index, columns, count, regular)


def scan_records(file: IO[bytes], max_rows: int) -> CsvLayout:
    """The exact first pass, a record at a time: every problem with its line (up to 20)."""
    problems = Problems()
    records = CsvRecords(
        file, lambda line, message: problems.add(line or 0, csv_location(line or 0, message))
    )
    id_index = records.header.index("id") if "id" in records.header else None
    evidence = [TypeEvidence() for _ in records.header]
    count = 0
    for line, cells in records:
        count += 1
        if count > max_rows:
            raise _too_many(max_rows)
        _check_csv_id(problems, count, line, cells, id_index)
        for column, text in zip(evidence, cells, strict=True):
            if column.open:
                column.add(cell_value(text))
        if problems.full:
            break
    problems.raise_if_any(CSV_PROBLEMS)
    return _layout(records.header, id_index, evidence, count, regular=False)


def _check_csv_id(problems: Problems, n: int, line: int, cells: Sequence[str], id_index: int | None) -> None:
    if id_index is None:
        return
    try:
        row_id(n, cells[id_index])
    except ValueError as exc:
        problems.add(line, csv_location(line, str(exc)))


# --- the second pass --------------------------------------------------------------------------


def _ignore(line: int | None, message: str) -> None:
    pass


def _record_batches(file: IO[bytes], layout: CsvLayout) -> Iterator[list[list[str]]]:
    if not layout.regular:
        cells = (cells for _, cells in CsvRecords(file, _ignore))
        while batch := list(islice(cells, EXACT_BATCH)):
            yield batch
        return
    try:
        yield from CsvBatches(file)
    except IrregularCsv:
        raise PackmatchError("The CSV file changed while it was being imported.") from None


def row_batches(
    file: IO[bytes], layout: CsvLayout, progress: ImportProgress | None = None
) -> Iterator[RowBatch]:
    """The second pass (the first was clean): each batch's row ids and values as JSON text."""
    progress = progress or NoProgress()
    progress.phase("writing", layout.row_count)
    encoder = RowEncoder(layout.columns)
    done = 0
    for batch in _record_batches(file, layout):
        columns = list(zip(*batch, strict=True))
        if layout.id_index is None:
            ids: Sequence[str] = list(map("row_%d".__mod__, range(done + 1, done + len(batch) + 1)))
        else:
            ids = columns.pop(layout.id_index)
        yield ids, encoder.encode(columns, len(batch))
        done += len(batch)
        progress.advance(len(batch))


def id_lines(file: IO[bytes], layout: CsvLayout) -> Iterator[tuple[int, str]]:
    """Each record's line and own id, read exactly: to name the lines of duplicate ids."""
    if layout.id_index is None:
        return
    for line, cells in CsvRecords(file, _ignore):
        yield line, cells[layout.id_index]
