"""CSV cells a column at a time: type evidence and the stored JSON text, thousands of cells a call.

`add_cells` concludes what `TypeEvidence.add(cell_value(cell))` would for each cell, and
`RowEncoder` writes what `json.dumps` writes for each row's values (`CsvLayout.values`), which is
what SQLAlchemy stores in the JSON column, so a CSV import stores byte for byte the same text as the
JSON path. Per cell those rules cost microseconds in Python; here a batch goes through C instead
(one atomic-group regex over the joined cells, `map` over built-in conversions), and a batch the
fast checks cannot decide falls back to the per-cell rules. tests/unit/test_csv_columns.py checks
both against the per-cell rules on generated cells.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii

from packmatch.domain.models import ColumnType
from packmatch.services.reference.csv_reader import cell_value
from packmatch.services.reference.rules import TypeEvidence, is_iso_date

# Cells are joined with NUL, which no cell holds (both readers report a NUL byte as a problem).
_SEP = "\x00"
# A JSON number without an exponent and with at most 300 integer digits: always finite as a
# float and short enough for int(), so it needs none of `cell_value`'s after-checks.
_SAFE_NUMBER = r"-?(?:0|[1-9][0-9]{0,299})(?:\.[0-9]+)?"
# ASCII letters only: a subset of what `.lower() in ("true", "false")` accepts is enough.
_BOOLEAN = r"[Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]"


def _every_cell(value: str) -> re.Pattern[str]:
    """Joined cells, each blank or `value` with spaces around (`\\s` is `str.strip`'s whitespace).
    Atomic groups: a failing cell fails at once instead of backtracking through the batch."""
    cell = rf"(?>\s*(?:{value})?\s*)"
    return re.compile(rf"(?:{cell}{_SEP})*+{cell}")


_ALL_BLANK = _every_cell("(?!)")
_ALL_BOOLEANS = _every_cell(_BOOLEAN)
_ALL_NUMBERS = _every_cell(_SAFE_NUMBER)


def _all_dates(cells: Sequence[str]) -> bool:
    """True if every cell is blank or starts with an ISO date; False if undecided here. Checked
    once per distinct 10-character prefix. A JSON number or boolean never starts with a date."""
    for prefix in {cell[:10] for cell in cells}:
        blank = not prefix.strip()
        if len(prefix) < 10 and not blank:
            return False
        if len(prefix) == 10 and (blank or not is_iso_date(prefix)):
            return False
    return True


def add_cells(evidence: TypeEvidence, cells: Sequence[str]) -> None:
    """Feed one column's cells of a batch to `evidence`, as `evidence.add(cell_value(c))` would."""
    if not evidence.open:
        return
    joined = _SEP.join(cells)
    if _ALL_BLANK.fullmatch(joined):
        return
    if evidence.boolean and _ALL_BOOLEANS.fullmatch(joined):
        evidence.only(ColumnType.BOOLEAN)
    elif evidence.number and _ALL_NUMBERS.fullmatch(joined):
        evidence.only(ColumnType.NUMBER)
    elif evidence.date and _all_dates(cells):
        evidence.only(ColumnType.DATE)
    else:
        for cell in cells:
            evidence.add(cell_value(cell))
            if not evidence.open:
                return


# --- JSON text, as json.dumps writes it -------------------------------------------------------


def _texts(cells: Sequence[str]) -> list[str]:
    """String and date columns store the text as it is, or null when blank."""
    encoded: list[str] = list(map(encode_basestring_ascii, cells))
    if all(map(str.strip, cells)):
        return encoded
    return [text if cell.strip() else "null" for cell, text in zip(cells, encoded, strict=True)]


def _number(text: str) -> str:
    if not text:
        return "null"
    return repr(float(text)) if "." in text or "e" in text or "E" in text else repr(int(text))


def _numbers(cells: Sequence[str]) -> list[str]:
    """Every present cell is a JSON number here (the first pass said so): an int unless it has a
    fraction or an exponent, as `cell_value` reads it; written as `repr`, as json.dumps does."""
    texts = list(map(str.strip, cells))
    if all(texts):
        joined = "".join(texts)
        if "e" not in joined and "E" not in joined:
            dots = joined.count(".")
            if dots == 0:
                return list(map(repr, map(int, texts)))
            if dots == len(texts):  # a number has at most one dot, so every cell has one
                return list(map(repr, map(float, texts)))
    return list(map(_number, texts))


_BOOLEAN_JSON = {"true": "true", "false": "false", "": "null"}


def _booleans(cells: Sequence[str]) -> list[str]:
    return list(map(_BOOLEAN_JSON.__getitem__, map(str.lower, map(str.strip, cells))))


_ENCODERS: dict[ColumnType, Callable[[Sequence[str]], list[str]]] = {
    ColumnType.STRING: _texts,
    ColumnType.DATE: _texts,
    ColumnType.NUMBER: _numbers,
    ColumnType.BOOLEAN: _booleans,
}

Encoding = Callable[[Sequence[str]], list[str]]


def encoding(column_type: ColumnType) -> Encoding:
    """How a column of this type writes its present values; string and date write the same."""
    return _ENCODERS[column_type]


class RowEncoder:
    """Each record's values as JSON text: `{"name": value, …}` in column order."""

    def __init__(self, names: Sequence[str]) -> None:
        self._count = len(names)
        quoted = (encode_basestring_ascii(name).replace("%", "%%") for name in names)
        self._template = "{" + ", ".join(f"{name}: %s" for name in quoted) + "}"

    def encode(
        self, value_columns: Sequence[Sequence[str]], types: Sequence[ColumnType], count: int
    ) -> list[str]:
        """`value_columns`: the cells of each value column (not the id), `count` records long,
        written as columns of these `types` write them."""
        if not self._count:
            return ["{}"] * count
        encoded = [encoding(kind)(cells) for kind, cells in zip(types, value_columns, strict=True)]
        return list(map(self._template.__mod__, zip(*encoded, strict=True)))
