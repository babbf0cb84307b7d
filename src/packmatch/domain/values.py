"""What a value is (SPEC §3): a JSON scalar — string, number, boolean or null.

Reference data rows and input documents map field names to values; a nested object or array is not
a value (it would be typed "string" and compared as its Python text), so it is refused, by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from packmatch.errors import FieldProblem

SCALAR_TYPES = (str, int, float, bool, type(None))
NOT_A_VALUE = "must be a string, number, boolean or null, not {kind}"


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "an object"
    return "an array" if isinstance(value, list | tuple) else f"a {type(value).__name__}"


def nested_fields(values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field name, what it holds) for each field of `values` that is not a scalar."""
    for name, value in values.items():
        if not isinstance(value, SCALAR_TYPES):
            yield name, _kind(value)


def nested_problems(rows: Iterable[tuple[str, Mapping[str, Any]]], limit: int) -> list[FieldProblem]:
    """Up to `limit` problems, one per nested value, each at `<row path>.<field>`."""
    found: list[FieldProblem] = []
    for path, values in rows:
        for name, kind in nested_fields(values):
            found.append(FieldProblem(f"{path}.{name}", f"{path}.{name} {NOT_A_VALUE.format(kind=kind)}."))
            if len(found) >= limit:
                return found
    return found
