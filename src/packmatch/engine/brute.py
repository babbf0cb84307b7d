"""The full scan: every reference row scored in Python, the top candidates kept.

SPEC §4 read literally, kept as the reference the indexed search (:mod:`.search`) must equal and
as the baseline the benchmarks measure it against. Too slow for big datasets: use
:class:`packmatch.engine.scoring.Matcher` to match.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from packmatch.domain.models import InputRow, MatchingConfig, ReferenceRow, RowMatch
from packmatch.engine.plan import MAX_CANDIDATES, candidate, confidence, field_scores, make_plan, row_match
from packmatch.engine.strategies import FieldScore

__all__ = ["FullScanMatcher"]


class _Hit(NamedTuple):
    confidence: float
    position: int
    reference: ReferenceRow
    scores: tuple[FieldScore, ...]


class FullScanMatcher:
    """Scores ``reference_rows`` (kept, not copied) one by one for every input row."""

    def __init__(self, config: MatchingConfig, reference_rows: Sequence[ReferenceRow]) -> None:
        self._plan = make_plan(config.field_mappings)
        self._threshold = config.threshold
        self._rows = reference_rows

    def match(self, row: InputRow, excluded: Collection[str] = ()) -> RowMatch:
        """``excluded``: reference row ids that must not be candidates (rejected by a reviewer)."""
        hits = self._scan(row.values)
        if excluded:
            hits = (hit for hit in hits if hit.reference.id not in excluded)
        best = heapq.nsmallest(MAX_CANDIDATES, hits, key=_rank)
        candidates = tuple(candidate(self._plan, row.values, hit.reference, hit.scores) for hit in best)
        return row_match(candidates, self._threshold)

    def _scan(self, values: Mapping[str, Any]) -> Iterator[_Hit]:
        for position, reference in enumerate(self._rows):
            scores = field_scores(self._plan, values, reference)
            score = confidence(self._plan, scores)
            if score is not None and score > 0:
                yield _Hit(score, position, reference, scores)


def _rank(hit: _Hit) -> tuple[float, int]:
    return -hit.confidence, hit.position
