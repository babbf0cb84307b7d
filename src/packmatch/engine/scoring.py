"""Row confidence, candidate search and slot outcome (SPEC §4).

- :func:`score_row`: one input row against one reference row (rules in :mod:`.plan`).
- :class:`Matcher` returns up to :data:`MAX_CANDIDATES` reference rows with confidence > 0, best
  first, equal confidences in reference-row order — exactly what a full scan of every reference row
  (:class:`.brute.FullScanMatcher`) returns, found through a :class:`.index.ReferenceIndex` by
  :class:`.search.Search`.
- :func:`needs_full_scan`: when the full scan matches instead (too many groups of ``missing:
  ignore`` rows: the index searches one group of rows per blank pattern).
- :func:`slot_outcome`: what a slot's row matches add up to.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from packmatch.domain.models import (
    Evidence,
    FieldMapping,
    InputRow,
    MatchingConfig,
    ReferenceRow,
    RowMatch,
    SlotStatus,
)
from packmatch.engine.arrays import Bools, Rows
from packmatch.engine.brute import FullScanMatcher
from packmatch.engine.index import ReferenceIndex
from packmatch.engine.normalise import normalise_text
from packmatch.engine.plan import MAX_CANDIDATES, Plan, candidate, make_plan, row_match
from packmatch.engine.search import Search

__all__ = ["MAX_CANDIDATES", "Matcher", "SlotOutcome", "score_row", "slot_outcome"]


def score_row(
    mappings: Sequence[FieldMapping], values: Mapping[str, Any], reference: ReferenceRow
) -> tuple[float, dict[str, Evidence]]:
    """Confidence of one input row's ``values`` against one reference row, with evidence."""
    scored = candidate(make_plan(mappings), values, reference)
    return scored.confidence, scored.evidence


MAX_PATTERNS = 64  # groups of rows (blank patterns of the ignored fields) searched one by one, at most


def needs_full_scan(patterns: Rows) -> bool:
    """Whether the full scan matches instead of the index: every option has its bounds in the
    indexed search, but ``missing: ignore`` searches one group of rows per distinct blank pattern
    (``patterns``: one per row, see :class:`Matcher`), and more than :data:`MAX_PATTERNS` groups
    would cost more than they save."""
    return len(np.unique(patterns)) > MAX_PATTERNS


class Matcher:
    """Finds the best reference rows for input rows under one matching config.

    ``reference`` is a prebuilt index (shared, e.g. from a per-process cache) or the rows
    themselves, which are then indexed for this config first. A matcher serves one thread at a
    time; threads share the index, each with its own (cheap) matcher.

    ``missing: ignore`` gives each pair its own denominator: the weights of the fields whose value
    is missing on neither side. A field missing in the input row drops out for every row; a field
    blank in a reference row drops out for that row only. So the rows are searched in groups, one
    per *pattern* (which ignored fields, present in the input, are blank in the row): within a
    group every row has the same counted fields, whose plan (the others removed) scores each row
    exactly as the full plan with the fields left out does (a left-out field scores 0 anyway). The
    best five of the groups' best five, by (−confidence, row position), are the full scan's.
    """

    def __init__(self, config: MatchingConfig, reference: ReferenceIndex | Sequence[ReferenceRow]) -> None:
        self._plan = make_plan(config.field_mappings)
        self._threshold = config.threshold
        if not isinstance(reference, ReferenceIndex):
            reference = ReferenceIndex.build(reference, config.field_mappings)
        self._index = reference
        self._ignored = [i for i, field in enumerate(self._plan.fields) if field.ignore_missing]
        self._patterns = _blank_patterns(self._plan, self._ignored, reference)
        # The search over every field, built now: it checks that the index has every column.
        self._searches = {tuple(range(len(self._plan.fields))): Search(self._plan, reference)}
        self._groups: dict[int, list[tuple[tuple[int, ...], Bools | None]]] = {}
        self._full_scan: FullScanMatcher | None = None
        if needs_full_scan(self._patterns):
            rows = [reference.row(p) for p in range(len(reference))]
            self._full_scan = FullScanMatcher(config, rows)

    def match(self, row: InputRow, excluded: Collection[str] = ()) -> RowMatch:
        """``excluded``: reference row ids that must not be candidates (rejected by a reviewer)."""
        if self._full_scan is not None:
            return self._full_scan.match(row, excluded)
        skip = self._positions(excluded) if excluded else None
        positions: list[int] = []
        for kept, allowed in self._groups_for(row.values):
            positions += self._search(kept).top(row.values, skip, allowed)
        scored = [(candidate(self._plan, row.values, self._index.row(p)), p) for p in positions]
        scored.sort(key=lambda pair: (-pair[0].confidence, pair[1]))
        return row_match(tuple(c for c, _ in scored[:MAX_CANDIDATES]), self._threshold)

    def _groups_for(self, values: Mapping[str, Any]) -> list[tuple[tuple[int, ...], Bools | None]]:
        """(the fields counted, the rows) of each group of rows for an input row's values."""
        present = 0
        for bit, slot in enumerate(self._ignored):
            if normalise_text(values.get(self._plan.fields[slot].source)) is not None:
                present |= 1 << bit
        if present not in self._groups:
            effective = self._patterns & present
            patterns = np.unique(effective).tolist()
            groups = []
            for pattern in patterns:
                out = {s for b, s in enumerate(self._ignored) if not present >> b & 1 or pattern >> b & 1}
                kept = tuple(i for i in range(len(self._plan.fields)) if i not in out)
                if kept:
                    groups.append((kept, None if len(patterns) == 1 else effective == pattern))
            self._groups[present] = groups
        return self._groups[present]

    def _search(self, kept: tuple[int, ...]) -> Search:
        if kept not in self._searches:
            fields = tuple(self._plan.fields[i] for i in kept)
            plan = Plan(fields, math.fsum(field.weight for field in fields))
            self._searches[kept] = Search(plan, self._index)
        return self._searches[kept]

    def _positions(self, ids: Collection[str]) -> Rows:
        """Positions of these row ids (unknown ids ignored): `list.index` per id, as exclusions are
        few and rare, so that the index keeps no id → position map for them."""
        found = []
        for row_id in set(ids):
            try:
                found.append(self._index.ids.index(row_id))
            except ValueError:
                continue
        return np.array(sorted(found), dtype=np.int64)


def _blank_patterns(plan: Plan, ignored: list[int], index: ReferenceIndex) -> Rows:
    """Per row, a bit per ignored field (in ``ignored`` order): set when the row's value is blank."""
    patterns = np.zeros(len(index), dtype=np.int64)
    blank: dict[str, Bools] = {}
    for bit, slot in enumerate(ignored):
        target = plan.fields[slot].target
        if target not in blank:
            column = index.values[target]
            blank[target] = np.fromiter(
                (normalise_text(v) is None for v in column), dtype=np.bool_, count=len(column)
            )
        patterns[blank[target]] |= 1 << bit
    return patterns


@dataclass(frozen=True, slots=True)
class SlotOutcome:
    """What a slot's matched rows add up to (SPEC §4): matched if any row matched."""

    status: SlotStatus
    confidence: float


def slot_outcome(matches: Sequence[RowMatch]) -> SlotOutcome:
    """MATCHED if any row matched, else UNMATCHED; confidence = the best row confidence (or 0)."""
    matched = any(match.matched for match in matches)
    confidence = max((match.confidence for match in matches), default=0.0)
    return SlotOutcome(SlotStatus.MATCHED if matched else SlotStatus.UNMATCHED, confidence)
