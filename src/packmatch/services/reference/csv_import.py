"""A CSV file of reference data as batches of rows for `store.write_rows`, and its problems.

The rules are those of two passes: the first finds the file's problems (with their lines), row
count and column types; the second turns its records into row ids and JSON text with those types.
A regular file (the usual case) is read once (`OnePass`): each batch is checked, adds to the
column types, and is written with the types known so far. That is what two passes write unless a
column's type changes after values were written under another one (a number column that later
holds text); then the rows are written again from the file with the final types (`row_batches`).

At the first irregularity (anything the exact reader reports) the file is read again with the
exact reader (`scan_records`), which names every problem's line, as it always did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import IO, Any, Protocol

from packmatch.domain.models import Column, ColumnType
from packmatch.errors import FieldProblem, PackmatchError, PayloadTooLarge
from packmatch.services.reference.csv_columns import Encoding, RowEncoder, add_cells, encoding
from packmatch.services.reference.csv_reader import CsvBatches, CsvRecords, IrregularCsv, cell_value
from packmatch.services.reference.rules import MAX_ROW_ID_LENGTH, Problems, TypeEvidence, row_id
from packmatch.store.reference_data import RowBatch

CSV_PROBLEMS = "The CSV file cannot be imported; each problem names its line."
EXACT_BATCH = 1000
ID_COLUMN = "id"

# Checks one record's cell of the key column (the `id`): (row number from 1, cell) → ValueError
# with a message for the client when the cell will not do.
KeyCheck = Callable[[int, str], object]


class ImportProgress(Protocol):
    """Told how an import gets on, a batch at a time: a phase begins (`importing`; after a
    surprise `checking` or `writing`) over a file of `size` bytes; `rows` records of it are done
    and it has been read up to byte `position`."""

    def phase(self, name: str, size: int) -> None: ...

    def advance(self, rows: int, position: int) -> None: ...


class NoProgress:
    def phase(self, name: str, size: int) -> None:
        pass

    def advance(self, rows: int, position: int) -> None:
        pass


def file_size(file: IO[bytes]) -> int:
    size = file.seek(0, 2)
    file.seek(0)
    return size


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
    progress.phase("checking", file_size(file))
    try:
        reading = OnePass(file, max_rows, progress)
        for _ in reading.batches():
            pass
    except IrregularCsv:
        file.seek(0)
        return scan_records(file, max_rows)
    return reading.layout()


def _too_many(max_rows: int) -> PayloadTooLarge:
    message = f"The file has more than {max_rows:,} rows."
    return PayloadTooLarge(message, details=[FieldProblem("file", message)])


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


def scan_records(
    file: IO[bytes],
    max_rows: int,
    key: str = ID_COLUMN,
    check_key: KeyCheck = row_id,
    problems_message: str = CSV_PROBLEMS,
) -> CsvLayout:
    """The exact first pass, a record at a time: every problem with its line (up to 20), raised
    with `problems_message`.

    `key` names the column that is not a value (the row ids; an evaluation's labels), whose cells
    `check_key` checks; the layout's `id_index` is where it is, None when the header lacks it."""
    problems = Problems()
    records = CsvRecords(
        file, lambda line, message: problems.add(line or 0, csv_location(line or 0, message))
    )
    id_index = records.header.index(key) if key in records.header else None
    evidence = [TypeEvidence() for _ in records.header]
    count = 0
    for line, cells in records:
        count += 1
        if count > max_rows:
            raise _too_many(max_rows)
        _check_key(problems, count, line, cells, id_index, check_key)
        for column, text in zip(evidence, cells, strict=True):
            if column.open:
                column.add(cell_value(text))
        if problems.full:
            break
    problems.raise_if_any(problems_message)
    return _layout(records.header, id_index, evidence, count, regular=False)


def _check_key(
    problems: Problems, n: int, line: int, cells: Sequence[str], id_index: int | None, check_key: KeyCheck
) -> None:
    if id_index is None:
        return
    try:
        check_key(n, cells[id_index])
    except ValueError as exc:
        problems.add(line, csv_location(line, str(exc)))


# --- the second pass --------------------------------------------------------------------------


def ignore_problems(line: int | None, message: str) -> None:
    """For a pass over a file the first pass found sound: it has no problems left to report."""


def _record_batches(file: IO[bytes], layout: CsvLayout) -> Iterator[list[list[str]]]:
    if not layout.regular:
        cells = (cells for _, cells in CsvRecords(file, ignore_problems))
        while batch := list(islice(cells, EXACT_BATCH)):
            yield batch
        return
    try:
        yield from CsvBatches(file)
    except IrregularCsv:
        raise PackmatchError("The CSV file changed while it was being imported.") from None


def _numbered(done: int, count: int) -> list[str]:
    """`row_<n>` for the `count` rows after the first `done`."""
    return list(map("row_%d".__mod__, range(done + 1, done + count + 1)))


def _own_ids(layout: CsvLayout, columns: list[Sequence[str]], done: int) -> Sequence[str]:
    """Takes the id column out of `columns` (the batch's cells, a column each), or numbers rows."""
    if layout.id_index is None:
        return _numbered(done, len(columns[0]))
    return columns.pop(layout.id_index)


def row_batches(
    file: IO[bytes], layout: CsvLayout, progress: ImportProgress | None = None
) -> Iterator[RowBatch]:
    """The second pass (the first was clean): each batch's row ids and values as JSON text."""
    progress = progress or NoProgress()
    progress.phase("writing", file_size(file))
    encoder = RowEncoder([column.name for column in layout.columns])
    types = [column.type for column in layout.columns]
    done = 0
    for batch in _record_batches(file, layout):
        columns: list[Sequence[str]] = list(zip(*batch, strict=True))
        ids = _own_ids(layout, columns, done)
        yield ids, encoder.encode(columns, types, len(batch))
        done += len(batch)
        progress.advance(done, file.tell())


# --- both passes at once ----------------------------------------------------------------------


class TypesChanged(Exception):
    """Rows were written with a column type that turned out wrong: write them again with `layout`."""

    def __init__(self, layout: CsvLayout) -> None:
        super().__init__("a column's type changed after rows were written")
        self.layout = layout


class OnePass:
    """A regular file read once: `batches()` checks each batch, adds it to the column types and
    writes it with the types known so far; then `layout()` is the first pass's answer, and
    `rewrite_needed()` says if a batch was written with an encoding the final types do not have.

    Raises IrregularCsv (read it again, exactly) and PayloadTooLarge as the first pass would."""

    def __init__(self, file: IO[bytes], max_rows: int, progress: ImportProgress) -> None:
        self._file = file
        self._max_rows = max_rows
        self._progress = progress
        self._records = CsvBatches(file)
        header = self._records.header
        self._id_index = header.index(ID_COLUMN) if ID_COLUMN in header else None
        self._values = [index for index in range(len(header)) if index != self._id_index]
        self._evidence = [TypeEvidence() for _ in header]
        self._written: list[set[Encoding]] = [set() for _ in header]
        self._count = 0

    def batches(self) -> Iterator[RowBatch]:
        encoder = RowEncoder([self._records.header[index] for index in self._values])
        for batch in self._records:
            self._count += len(batch)
            if self._count > self._max_rows:
                raise _too_many(self._max_rows)
            columns: list[Sequence[str]] = list(zip(*batch, strict=True))
            if self._id_index is None:
                ids: Sequence[str] = _numbered(self._count - len(batch), len(batch))
            else:
                ids = columns[self._id_index]
                _check_ids(ids)
            types = [self._add(index, columns[index]) for index in self._values]
            yield ids, encoder.encode([columns[index] for index in self._values], types, len(batch))
            self._progress.advance(self._count, self._file.tell())

    def _add(self, index: int, cells: Sequence[str]) -> ColumnType:
        """The column's type so far, these cells included; notes how its present values are written."""
        evidence = self._evidence[index]
        add_cells(evidence, cells)
        if evidence.seen:  # else every value so far is null, whatever the type
            self._written[index].add(encoding(evidence.type))
        return evidence.type

    def layout(self) -> CsvLayout:
        return _layout(self._records.header, self._id_index, self._evidence, self._count, regular=True)

    def rewrite_needed(self) -> bool:
        final = {index: encoding(self._evidence[index].type) for index in self._values}
        return any(self._written[index] - {final[index]} for index in self._values)


def id_lines(file: IO[bytes], layout: CsvLayout) -> Iterator[tuple[int, str]]:
    """Each record's line and own id, read exactly: to name the lines of duplicate ids."""
    if layout.id_index is None:
        return
    for line, cells in CsvRecords(file, ignore_problems):
        yield line, cells[layout.id_index]
