"""The batch rules of a CSV import equal the per-cell and per-record rules they stand in for."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from packmatch.domain.models import Column, ColumnType
from packmatch.services.reference.csv_columns import RowEncoder, add_cells
from packmatch.services.reference.csv_import import CsvLayout
from packmatch.services.reference.csv_reader import CsvBatches, CsvRecords, IrregularCsv, cell_value
from packmatch.services.reference.rules import TypeEvidence

PROPERTIES = settings(max_examples=300, deadline=None)

# Cells that sit on the edges of the rules: numbers JSON does and does not write, booleans in
# any case, dates and near-dates, blanks of several kinds, text that needs JSON escapes.
EDGE_CELLS = [
    "", " ", "\t", "\u00a0", "\u2003 ", "0", "-0", "42", " 42 ", "-3.5", "3.50", "1e3", "1E-2", "007",
    "+1", "1,000", ".5", "5.", "NaN", "inf", "1e999", "9" * 400, "true", " TRUE ", "False", "tru",
    "2024-09-14", "2024-02-30", "2024-09-14T10:40:00Z", " 2024-09-14", "2024W011", "2024-W01-1",
    "2024-09-1", "20240914", "2024-09-14 ", "          x", "Kühne + Nagel", '12 "Main" St', "a\\b",
    "line\nbreak", "tab\there", "日本郵船", "\x1c", "%s", "{}",
]  # fmt: skip
# No NUL: neither reader lets one into a cell (it is reported), and the batch checks join on it.
CELL = st.one_of(st.sampled_from(EDGE_CELLS), st.text(st.characters(exclude_characters="\x00"), max_size=12))
COLUMN = st.lists(CELL, min_size=1, max_size=40)


def per_cell(cells: list[str]) -> TypeEvidence:
    evidence = TypeEvidence()
    for cell in cells:
        evidence.add(cell_value(cell))
    return evidence


def flags(evidence: TypeEvidence) -> tuple[bool, ...]:
    return evidence.seen, evidence.boolean, evidence.number, evidence.date, evidence.open


@PROPERTIES
@given(st.lists(COLUMN, min_size=1, max_size=4))
def test_batches_of_cells_give_the_evidence_of_each_cell(batches: list[list[str]]) -> None:
    evidence = TypeEvidence()
    for cells in batches:
        add_cells(evidence, cells)
    assert evidence.type == per_cell([cell for cells in batches for cell in cells]).type


@PROPERTIES
@given(COLUMN)
def test_a_batch_of_cells_leaves_the_evidence_each_cell_leaves(cells: list[str]) -> None:
    evidence = TypeEvidence()
    add_cells(evidence, cells)
    expected = per_cell(cells)
    if expected.open:  # a closed column may stop early: only `string` is left either way
        assert flags(evidence) == flags(expected)
    else:
        assert not evidence.open


@pytest.mark.parametrize(
    ("cells", "kind"),
    [
        (["1", " 2 ", "", "-3.25"], ColumnType.NUMBER),
        (["true", "FALSE", " "], ColumnType.BOOLEAN),
        (["2024-09-14", "2024-09-14T10:40:00Z", ""], ColumnType.DATE),
        (["1", "1e999"], ColumnType.STRING),
        (["2024-02-30"], ColumnType.STRING),
        (["", "  "], ColumnType.STRING),
    ],
)
def test_batch_types_of_typical_columns(cells: list[str], kind: ColumnType) -> None:
    evidence = TypeEvidence()
    add_cells(evidence, cells)
    assert evidence.type is kind


@PROPERTIES
@given(st.lists(st.lists(CELL, min_size=3, max_size=3), min_size=1, max_size=30))
def test_rows_are_encoded_as_json_dumps_writes_their_values(records: list[list[str]]) -> None:
    columns = tuple(
        Column(name=name, type=per_cell([r[index] for r in records]).type)
        for index, name in enumerate(["a", 'b "%s"', "ü"])
    )
    layout = CsvLayout(["a", 'b "%s"', "ü"], None, columns, len(records))
    encoder = RowEncoder([column.name for column in columns])
    value_columns = [list(cells) for cells in zip(*records, strict=True)]
    encoded = encoder.encode(value_columns, [column.type for column in columns], len(records))
    assert encoded == [json.dumps(layout.values(record)) for record in records]


def test_a_long_integer_cell_is_a_number_not_an_overflow() -> None:
    assert cell_value("9" * 400) == int("9" * 400)
    assert cell_value("9" * 400 + ".5") == "9" * 400 + ".5"  # as a float it is infinite: text


def test_rows_without_value_columns_are_empty_objects() -> None:
    assert RowEncoder([]).encode([], [], 2) == ["{}", "{}"]


# --- the batch reader against the exact reader ------------------------------------------------

PIECES = st.sampled_from(
    ["a", "1", ",", '"', "\n", "\r\n", "\r", " ", "é", "\x00", "\xff", "\ufeff", "x" * 50]
)


def exact(content: bytes) -> tuple[list[str], list[list[str]], list[tuple[int | None, str]]]:
    reports: list[tuple[int | None, str]] = []
    records = CsvRecords(io.BytesIO(content), lambda line, message: reports.append((line, message)))
    cells = [cells for _, cells in records]
    return records.header, cells, reports


def batched(content: bytes) -> tuple[list[str], list[list[str]]]:
    reader = CsvBatches(io.BytesIO(content))
    return reader.header, [cells for batch in reader for cells in batch]


def encoded(pieces: list[str]) -> bytes:
    text = "".join(pieces)
    return text.encode("utf-8").replace("\xff".encode(), b"\xff")  # a byte that is not UTF-8


@PROPERTIES
@given(st.lists(PIECES, max_size=60))
def test_the_batch_reader_reads_what_the_exact_reader_reads_without_a_problem(pieces: list[str]) -> None:
    content = encoded(pieces)
    header, records, reports = exact(content)
    try:
        fast = batched(content)
    except IrregularCsv:
        assert reports, "the batch reader gave up on a file the exact reader finds nothing wrong with"
        return
    assert not reports
    assert fast == (header, records)


def test_the_batch_reader_gives_up_at_a_line_longer_than_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("packmatch.services.reference.csv_reader.MAX_LINE_BYTES", 300)
    monkeypatch.setattr("packmatch.services.reference.csv_reader.BLOCK_BYTES", 100)
    content = b"id,note\n" + b"A,short\n" * 20 + b"B," + b"x" * 400 + b"\nC,ok\n"
    with pytest.raises(IrregularCsv):
        batched(content)
    _, _, reports = exact(content)
    assert reports == [(22, "longer than 300 bytes; reading stopped here")]


def test_the_batch_reader_keeps_records_that_span_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("packmatch.services.reference.csv_reader.BLOCK_BYTES", 16)
    content = b'id,note\nA,"one\ntwo, three"\nB,"four\n\nfive"\n' * 5
    assert batched(content) == exact(content)[:2]
