"""A CSV file of labelled rows for an evaluation (docs/api.md, Evaluations), read as reference data is.

The format and the rules are those of a reference data upload (`services/reference/csv_reader`,
`csv_import.scan_records`): UTF-8, a header row, problems named by line (up to 20), each cell read
as the JSON scalar it spells and typed a column at a time (`CsvLayout.values`), so the same values
read from the same file mean the same in reference data and in an evaluation. One column,
:data:`LABEL`, is the label: the id of the reference row the input row should match, blank for
none. Every other column is an input value (as any key of a JSON row's `values` is).

The file is within the request body limit (10 MiB), so it is simply read twice: for its problems,
row count and column types, then for its rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

from packmatch.errors import FieldProblem, ValidationFailed
from packmatch.quality.labels import LabelledRow
from packmatch.services.reference.csv_import import csv_location, ignore_problems, scan_records
from packmatch.services.reference.csv_reader import CsvRecords
from packmatch.services.reference.rules import MAX_ROW_ID_LENGTH

LABEL = "reference_row_id"
NO_LABEL = (
    f"the header has no '{LABEL}' column: name the column that holds each row's label "
    "(the reference row it should match, blank for none)"
)
NO_ROWS = "the file has a header but no rows; send at least one labelled row"
CSV_PROBLEMS = "The CSV file cannot be evaluated; each problem names its line."


@dataclass(frozen=True)
class LabelledCsv:
    rows: list[LabelledRow]
    lines: list[int]  # where each row starts in the file

    def locate(self, index: int, message: str) -> FieldProblem:
        """A problem with the label of row `index`, named by its line."""
        return csv_location(self.lines[index], f"{LABEL}: {message}")


def _check_label(n: int, cell: str) -> None:
    if len(cell) > MAX_ROW_ID_LENGTH:
        raise ValueError(f"{LABEL} is longer than {MAX_ROW_ID_LENGTH} characters")


def _refuse(line: int, message: str) -> ValidationFailed:
    """`line` 0: the file as a whole."""
    problem = csv_location(line, message)
    return ValidationFailed(f"The CSV file cannot be evaluated: {problem.message}.", details=[problem])


def read_labelled_csv(file: IO[bytes], max_rows: int) -> LabelledCsv:
    """The file's rows and their lines. Problems → ValidationFailed naming lines (or the file);
    more than `max_rows` rows → PayloadTooLarge."""
    layout = scan_records(file, max_rows, LABEL, _check_label, CSV_PROBLEMS)
    label = layout.id_index
    if label is None:
        raise _refuse(1, NO_LABEL)
    if not layout.row_count:
        raise _refuse(0, NO_ROWS)
    file.seek(0)
    rows, lines = [], []
    for line, cells in CsvRecords(file, ignore_problems):
        text = cells[label]
        rows.append(LabelledRow(values=layout.values(cells), reference_row_id=text if text.strip() else None))
        lines.append(line)
    return LabelledCsv(rows, lines)
