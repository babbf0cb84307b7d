"""Row-position arrays and the grouping of rows by a key, shared by the index's modules."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["EMPTY_ROWS", "Bools", "Floats", "Postings", "Rows", "dict_bytes", "estimate_bytes"]

Rows = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

EMPTY_ROWS: Rows = np.empty(0, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Postings:
    """Rows grouped by an integer key: key ``k`` holds ``order[offsets[k]:offsets[k + 1]]``, ascending."""

    order: Rows
    offsets: Rows

    @classmethod
    def group(cls, keys: Rows, key_count: int, values: Rows | None = None) -> Postings:
        """Group ``values`` (default: row positions) by ``keys`` (one per value, -1 for none)."""
        order = np.argsort(keys, kind="stable")[int(np.count_nonzero(keys < 0)) :]
        offsets = np.zeros(key_count + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys[keys >= 0], minlength=key_count), out=offsets[1:])
        grouped = order if values is None else values[order]
        return cls(grouped.astype(np.int64), offsets)

    def rows_of(self, key: int) -> Rows:
        return self.order[self.offsets[key] : self.offsets[key + 1]]

    def rows_of_many(self, keys: Rows) -> Rows:
        """The rows of every key in ``keys``, concatenated."""
        starts = self.offsets[keys]
        counts = self.offsets[keys + 1] - starts
        firsts = np.cumsum(counts) - counts
        owner = np.repeat(np.arange(len(keys)), counts)
        at: Rows = starts[owner] + np.arange(int(counts.sum())) - firsts[owner]
        return self.order[at]

    @property
    def nbytes(self) -> int:
        return int(self.order.nbytes + self.offsets.nbytes)


def estimate_bytes(items: Sequence[Any] | npt.NDArray[np.object_]) -> int:
    """An estimate of a list's memory: its pointers and (from a sample) its objects."""
    if not len(items):
        return 64
    step = max(1, len(items) // 1000)
    sample = items[::step]
    return 8 * len(items) + len(items) * sum(map(_sizeof, sample)) // len(sample)


def dict_bytes(table: dict[Any, int]) -> int:
    """An estimate of a hash map's memory: its table, its keys and its (int) values."""
    return _sizeof(table) + estimate_bytes(list(table)) + 28 * len(table)


def _sizeof(item: object) -> int:
    return sys.getsizeof(item)
