"""Row confidence, candidate search and slot outcome (SPEC §4).

- :func:`score_row`: one input row against one reference row (rules in :mod:`.plan`).
- :class:`Matcher` returns up to :data:`MAX_CANDIDATES` reference rows with confidence > 0, best
  first, equal confidences in reference-row order — exactly what a full scan of every reference row
  (:class:`.brute.FullScanMatcher`) returns, found through a :class:`.index.ReferenceIndex` by
  :class:`.search.Search`.
- :func:`needs_full_scan`: the options matched by the full scan for now (no pruning bounds yet).
- :func:`slot_outcome`: what a slot's row matches add up to.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from packmatch.domain.models import (
    DateRangeOptions,
    Evidence,
    ExactOptions,
    FieldMapping,
    InputRow,
    MatchingConfig,
    ReferenceRow,
    RowMatch,
    SlotStatus,
)
from packmatch.engine.arrays import Rows
from packmatch.engine.brute import FullScanMatcher
from packmatch.engine.index import ReferenceIndex
from packmatch.engine.plan import MAX_CANDIDATES, Plan, candidate, make_plan, row_match
from packmatch.engine.search import Search

__all__ = ["MAX_CANDIDATES", "Matcher", "SlotOutcome", "score_row", "slot_outcome"]


def score_row(
    mappings: Sequence[FieldMapping], values: Mapping[str, Any], reference: ReferenceRow
) -> tuple[float, dict[str, Evidence]]:
    """Confidence of one input row's ``values`` against one reference row, with evidence."""
    scored = candidate(make_plan(mappings), values, reference)
    return scored.confidence, scored.evidence


def needs_full_scan(plan: Plan) -> bool:
    """Options the indexed search has no pruning bounds for yet (``missing: ignore``,
    ``max_edits``, ``allow_day_month_swap``): matched by the full scan, exact but slower."""
    for field in plan.fields:
        options = field.options
        if field.ignore_missing:
            return True
        if isinstance(options, ExactOptions) and options.max_edits:
            return True
        if isinstance(options, DateRangeOptions) and options.allow_day_month_swap:
            return True
    return False


class Matcher:
    """Finds the best reference rows for input rows under one matching config.

    ``reference`` is a prebuilt index (shared, e.g. from a per-process cache) or the rows
    themselves, which are then indexed for this config first. A matcher serves one thread at a
    time; threads share the index, each with its own (cheap) matcher.
    """

    def __init__(self, config: MatchingConfig, reference: ReferenceIndex | Sequence[ReferenceRow]) -> None:
        self._plan = make_plan(config.field_mappings)
        self._threshold = config.threshold
        if not isinstance(reference, ReferenceIndex):
            reference = ReferenceIndex.build(reference, config.field_mappings)
        self._index = reference
        self._search = Search(self._plan, reference)
        self._full_scan: FullScanMatcher | None = None
        if needs_full_scan(self._plan):
            rows = [reference.row(p) for p in range(len(reference))]
            self._full_scan = FullScanMatcher(config, rows)

    def match(self, row: InputRow, excluded: Collection[str] = ()) -> RowMatch:
        """``excluded``: reference row ids that must not be candidates (rejected by a reviewer)."""
        if self._full_scan is not None:
            return self._full_scan.match(row, excluded)
        positions = self._search.top(row.values, self._positions(excluded) if excluded else None)
        candidates = tuple(candidate(self._plan, row.values, self._index.row(p)) for p in positions)
        return row_match(candidates, self._threshold)

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
