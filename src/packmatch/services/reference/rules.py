"""The rules every reference data import follows, JSON rows and CSV files alike.

- column types (`TypeEvidence`): the narrowest of boolean, number and date (ISO 8601) that every
  present value of a column fits, else string;
- row ids (`row_id`): a row's own `id` (a non-blank string or an integer, at most 200 characters)
  or else `row_<n>`, unique within the dataset;
- problems (`Problems`): up to MAX_PROBLEMS, listed in the order of where they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from packmatch.domain.models import Column, ColumnType
from packmatch.errors import FieldProblem, ValidationFailed

MAX_PROBLEMS = 20
MAX_ROW_ID_LENGTH = 200


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_iso_date(value: Any) -> bool:
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
        self.date = self.date and is_iso_date(value)

    def only(self, kind: ColumnType) -> None:
        """Record present values that were all of one kind (what `add` would conclude from them)."""
        self.seen = True
        self.boolean = self.boolean and kind is ColumnType.BOOLEAN
        self.number = self.number and kind is ColumnType.NUMBER
        self.date = self.date and kind is ColumnType.DATE

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
