"""A reference dataset indexed for the field mappings of a matching config; built once, then read-only.

The index keeps each row's id and the raw values of the columns the mappings read (for evidence),
and one column structure (:mod:`.columns`) per (target column, kind of strategy): the parsing is
done once here instead of once per input row. Configs whose mappings read the same columns the same
way share an index: :func:`signature` is what they have in common. Immutable after :meth:`build`,
so any number of threads may search it at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packmatch.domain.models import DateRangeOptions, FieldMapping, ReferenceRow, Strategy, StrategyOptions
from packmatch.engine.arrays import estimate_bytes
from packmatch.engine.columns import Column, build_dates, build_exact, build_numbers, build_texts

__all__ = ["ColumnKey", "ReferenceIndex", "column_key", "signature"]

# (target column, kind of column, date formats): what a column structure depends on.
ColumnKey = tuple[str, str, tuple[str, ...]]

_KINDS = {
    Strategy.EXACT: "exact",
    Strategy.FUZZY: "text",
    Strategy.NUMERIC_RANGE: "number",
    Strategy.DATE_RANGE: "date",
}


def column_key(target: str, strategy: Strategy, options: StrategyOptions) -> ColumnKey:
    formats = options.formats if isinstance(options, DateRangeOptions) else ()
    return (target, _KINDS[strategy], tuple(formats))


def signature(mappings: Sequence[FieldMapping]) -> tuple[ColumnKey, ...]:
    """The columns an index for ``mappings`` holds: equal signatures, interchangeable indexes."""
    keys = {column_key(m.target, m.strategy, m.parsed_options()) for m in mappings}
    return tuple(sorted(keys))


@dataclass(frozen=True, slots=True, eq=False)
class ReferenceIndex:
    ids: list[str]
    values: dict[str, list[Any]]
    columns: dict[ColumnKey, Column]
    nbytes: int

    @classmethod
    def build(cls, rows: Sequence[ReferenceRow], mappings: Sequence[FieldMapping]) -> ReferenceIndex:
        keys = signature(mappings)
        values = {
            target: [row.values.get(target) for row in rows] for target in sorted({key[0] for key in keys})
        }
        columns = {key: _build_column(key, values[key[0]]) for key in keys}
        ids = [row.id for row in rows]
        size = estimate_bytes(ids) + sum(estimate_bytes(column) for column in values.values())
        return cls(ids, values, columns, size + sum(column.nbytes for column in columns.values()))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def signature(self) -> tuple[ColumnKey, ...]:
        return tuple(sorted(self.columns))

    def column(self, target: str, strategy: Strategy, options: StrategyOptions) -> Column:
        key = column_key(target, strategy, options)
        if key not in self.columns:
            raise KeyError(f"this reference index has no column {key}: it was built for other mappings")
        return self.columns[key]

    def row(self, position: int) -> ReferenceRow:
        """Row ``position`` with the values of the indexed columns (all that matching reads)."""
        return ReferenceRow(self.ids[position], {t: column[position] for t, column in self.values.items()})


def _build_column(key: ColumnKey, values: Sequence[Any]) -> Column:
    _, kind, formats = key
    if kind == "exact":
        return build_exact(values)
    if kind == "number":
        return build_numbers(values)
    if kind == "date":
        return build_dates(values, formats)
    return build_texts(values)
