"""The columns of a reference index: each a reference column's values parsed once, for one strategy.

- :class:`ExactColumn` (``exact``): hash maps from normalised text and from decimal value to rows.
- :class:`RangeColumn` (``numeric_range``, ``date_range``): the rows with a parseable number (or
  date, as a day number) sorted by it, so that ``searchsorted`` finds the rows within a tolerance.
- :class:`TextColumn` (``fuzzy``): the distinct normalised texts (what rapidfuzz scores) and each
  row's text code, so that a text shared by many rows is scored once.

Parsing uses the functions of :mod:`.normalise` that the strategies use, so a value means the same
here as in a full scan. Nothing here scores: see :mod:`.fields`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import chain
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from packmatch.engine.arrays import EMPTY_ROWS, Floats, Postings, Rows, dict_bytes, estimate_bytes
from packmatch.engine.bounds import TextFeatures
from packmatch.engine.normalise import normalise_text, parse_date, parse_decimal, parse_number

__all__ = [
    "Column",
    "ExactColumn",
    "RangeColumn",
    "TextColumn",
    "as_day",
    "as_number",
    "build_dates",
    "build_exact",
    "build_numbers",
    "build_texts",
]

Codepoints = npt.NDArray[np.uint32]
_T = TypeVar("_T")
_K = TypeVar("_K", bound=Hashable)
# Values of these exact types parse the same whenever they are equal, so parses can be shared
# (-0.0 == 0.0 reads the same too); each type has its own memo, since True == 1 == 1.0.
# (Not Decimal: Decimal("1.0") == Decimal("1.00") but their texts differ. Not bool: True == 1.)
_MEMO_TYPES = frozenset({str, int, float})
_NUMBER_TYPES = frozenset({int, float})


@dataclass(frozen=True, slots=True)
class ExactColumn:
    """Rows by normalised text, and rows whose value is a number by that number's value; the
    distinct texts (by code) and their codes sorted by length, for ``max_edits``."""

    text_codes: dict[str, int]
    text_rows: Postings
    number_codes: dict[Decimal, int]
    number_rows: Postings
    is_number: npt.NDArray[np.bool_]
    by_length: Rows
    sorted_texts: list[str]  # a list: rapidfuzz's cdist reads it faster than an object array
    sorted_lengths: Rows
    characters: dict[int, Codepoints]  # length → the code points of its texts, one column per text

    def of_length(self, length: int) -> tuple[int, Rows, Codepoints]:
        """Where the texts of ``length`` start in :attr:`sorted_texts`, their codes and their code
        points (position × text)."""
        start = int(np.searchsorted(self.sorted_lengths, length, side="left"))
        stop = int(np.searchsorted(self.sorted_lengths, length, side="right"))
        empty = np.empty((max(length, 0), 0), dtype=np.uint32)
        return start, self.by_length[start:stop], self.characters.get(length, empty)

    def rows_with_text(self, text: str) -> Rows:
        code = self.text_codes.get(text)
        return EMPTY_ROWS if code is None else self.text_rows.rows_of(code)

    def rows_with_number(self, number: Decimal) -> Rows:
        code = self.number_codes.get(number)
        return EMPTY_ROWS if code is None else self.number_rows.rows_of(code)

    @property
    def nbytes(self) -> int:
        arrays = self.text_rows.nbytes + self.number_rows.nbytes + self.is_number.nbytes
        arrays += self.by_length.nbytes + self.sorted_lengths.nbytes + 8 * len(self.sorted_texts)
        arrays += sum(matrix.nbytes for matrix in self.characters.values())
        return int(arrays) + dict_bytes(self.text_codes) + dict_bytes(self.number_codes)


@dataclass(frozen=True, slots=True)
class RangeColumn:
    """The rows with a value, sorted by it (ties in row order)."""

    order: Rows
    sorted_values: Floats

    def between(self, low: float, high: float) -> tuple[Rows, Floats]:
        """Rows whose value is in [low, high], and their values."""
        start = int(np.searchsorted(self.sorted_values, low, side="left"))
        stop = int(np.searchsorted(self.sorted_values, high, side="right"))
        return self.order[start:stop], self.sorted_values[start:stop]

    @property
    def nbytes(self) -> int:
        return int(self.order.nbytes + self.sorted_values.nbytes)


@dataclass(frozen=True, slots=True)
class TextColumn:
    """Distinct normalised texts, each row's text code (-1 when missing) and the rows of each text."""

    texts: npt.NDArray[np.object_]
    codes: Rows
    rows: Postings
    features: TextFeatures

    @property
    def nbytes(self) -> int:
        arrays = int(self.codes.nbytes) + self.rows.nbytes + self.features.nbytes
        return arrays + estimate_bytes(self.texts)


Column = ExactColumn | RangeColumn | TextColumn


def build_exact(values: Sequence[Any]) -> ExactColumn:
    text_codes: dict[str, int] = {}
    number_codes: dict[Decimal, int] = {}

    def codes(value: Any) -> tuple[int, int]:
        text = normalise_text(value)
        if text is None:
            return -1, -1
        number = parse_decimal(value)
        number_code = -1 if number is None else _code(number_codes, number)
        return _code(text_codes, text), number_code

    pairs = _per_row(values, codes)
    keys = np.fromiter(chain.from_iterable(pairs), dtype=np.int64, count=2 * len(pairs)).reshape(-1, 2)
    texts = list(text_codes)  # the texts share the dict's keys
    lengths = np.fromiter(map(len, text_codes), dtype=np.int64, count=len(text_codes))
    by_length = np.argsort(lengths, kind="stable").astype(np.int64)
    sorted_texts = [texts[code] for code in by_length.tolist()]
    sorted_lengths = lengths[by_length]
    return ExactColumn(
        text_codes=text_codes,
        text_rows=Postings.group(keys[:, 0], len(text_codes)),
        number_codes=number_codes,
        number_rows=Postings.group(keys[:, 1], len(number_codes)),
        is_number=keys[:, 1] >= 0,
        by_length=by_length,
        sorted_texts=sorted_texts,
        sorted_lengths=sorted_lengths,
        characters=_code_points(sorted_texts, sorted_lengths),
    )


def build_numbers(values: Sequence[Any]) -> RangeColumn:
    if set(map(type, values)) == {float}:  # JSON numbers: as_number is the value when finite
        numbers = np.array(values, dtype=np.float64)
        numbers[~np.isfinite(numbers)] = np.nan
        return _sorted(numbers)
    return _sorted(np.array(_per_row(values, lambda value: _or_nan(as_number(value))), dtype=np.float64))


def build_dates(values: Sequence[Any], formats: Sequence[str]) -> RangeColumn:
    days = _per_row(values, lambda value: _or_nan(as_day(value, formats)))
    return _sorted(np.array(days, dtype=np.float64))


def build_texts(values: Sequence[Any]) -> TextColumn:
    text_codes: dict[str, int] = {}

    def code(value: Any) -> int:
        text = normalise_text(value)
        return -1 if text is None else _code(text_codes, text)

    keys = np.array(_per_row(values, code), dtype=np.int64)
    texts = np.empty(len(text_codes), dtype=object)
    texts[:] = distinct = list(text_codes)
    rows = Postings.group(keys, len(text_codes))
    return TextColumn(texts=texts, codes=keys, rows=rows, features=TextFeatures.build(distinct))


def _code_points(texts: list[str], lengths: Rows) -> dict[int, Codepoints]:
    """Per length, the code points of the ``texts`` (sorted by length) of that length: position ×
    text, so that one position of every text is one contiguous row."""
    matrices: dict[int, Codepoints] = {}
    if not texts:
        return matrices
    starts = np.flatnonzero(np.diff(lengths, prepend=-1)).tolist()
    for start, stop in zip(starts, [*starts[1:], len(texts)], strict=True):
        length = int(lengths[start])
        points = np.frombuffer("".join(texts[start:stop]).encode("utf-32-le"), dtype=np.uint32)
        matrices[length] = np.ascontiguousarray(points.reshape(stop - start, length).T)
    return matrices


def as_number(value: Any) -> float | None:
    """What ``numeric_range`` compares: the number, when the value is present and parses."""
    if type(value) in _NUMBER_TYPES:  # a JSON number is never blank: skip the text check
        return parse_number(value)
    return parse_number(value) if normalise_text(value) is not None else None


def as_day(value: Any, formats: Sequence[str]) -> float | None:
    """What ``date_range`` compares: the date as a day number, when present and parseable."""
    if normalise_text(value) is None:
        return None
    parsed = parse_date(value, formats)
    return None if parsed is None else float(parsed.toordinal())


def _sorted(values: Floats) -> RangeColumn:
    present = np.flatnonzero(~np.isnan(values))
    order = present[np.argsort(values[present], kind="stable")].astype(np.int64)
    return RangeColumn(order=order, sorted_values=values[order])


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def _code(codes: dict[_K, int], key: _K) -> int:
    """``key``'s code: codes are given in order of first appearance."""
    return codes.setdefault(key, len(codes))


def _per_row(values: Sequence[Any], convert: Callable[[Any], _T]) -> list[_T]:
    """``convert`` of every value; equal values of the plain JSON types are converted once."""
    kinds = set(map(type, values))
    if len(kinds) == 1 and kinds <= _MEMO_TYPES:  # the common case, with the loops in C
        distinct = {value: convert(value) for value in dict.fromkeys(values)}
        return list(map(distinct.__getitem__, values))
    memos: dict[type, dict[Any, _T]] = {kind: {} for kind in _MEMO_TYPES}
    converted: list[_T] = []
    append = converted.append
    for value in values:
        memo = memos.get(type(value))
        if memo is None:
            append(convert(value))
        elif value in memo:
            append(memo[value])
        else:
            memo[value] = result = convert(value)
            append(result)
    return converted
