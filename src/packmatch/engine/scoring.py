"""Row confidence, candidate search and slot outcome (SPEC §4).

- Row confidence against one reference row = Σ weightᵢ·scoreᵢ / Σ weightᵢ, rounded to 12 decimals
  so float noise cannot put an exact 0.85 below a 0.85 threshold.
- Evidence is keyed by the mapping's ``source`` field. When one source field feeds several
  mappings, the second is keyed ``"<source>#2"``, the third ``"<source>#3"``, and so on.
- :class:`Matcher` returns up to :data:`MAX_CANDIDATES` reference rows with confidence > 0, best
  first, equal confidences in reference-row order. A row is matched when it has a candidate and
  the best confidence is ≥ the threshold; a row with no candidate is never matched, even with a
  threshold of 0.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from packmatch.domain.models import (
    Candidate,
    Evidence,
    FieldMapping,
    InputRow,
    MatchingConfig,
    ReferenceRow,
    RowMatch,
    SlotStatus,
    Strategy,
    StrategyOptions,
)
from packmatch.engine.strategies import STRATEGIES, FieldScore, StrategyFn

__all__ = ["MAX_CANDIDATES", "Matcher", "SlotOutcome", "score_row", "slot_outcome"]

MAX_CANDIDATES = 5
_DIGITS = 12


class _Field(NamedTuple):
    """One field mapping, ready to run: options parsed, strategy looked up, evidence key fixed."""

    key: str
    source: str
    target: str
    strategy: Strategy
    weight: float
    compare: StrategyFn
    options: StrategyOptions


class _Plan(NamedTuple):
    fields: tuple[_Field, ...]
    total_weight: float


class _Hit(NamedTuple):
    confidence: float
    position: int
    reference: ReferenceRow
    scores: tuple[FieldScore, ...]


def _plan(mappings: Sequence[FieldMapping]) -> _Plan:
    keys = _evidence_keys([mapping.source for mapping in mappings])
    fields = tuple(
        _Field(
            key=key,
            source=mapping.source,
            target=mapping.target,
            strategy=mapping.strategy,
            weight=mapping.weight,
            compare=STRATEGIES[mapping.strategy],
            options=mapping.parsed_options(),
        )
        for key, mapping in zip(keys, mappings, strict=True)
    )
    return _Plan(fields, math.fsum(field.weight for field in fields))


def _evidence_keys(sources: Sequence[str]) -> list[str]:
    """``source`` for the first use of a field, ``source#2``, ``source#3``… for the next ones."""
    counts: dict[str, int] = {}
    keys: list[str] = []
    for source in sources:
        count = counts.get(source, 0) + 1
        key = source if count == 1 else f"{source}#{count}"
        while key in keys:
            count += 1
            key = f"{source}#{count}"
        counts[source] = count
        keys.append(key)
    return keys


def _scores(plan: _Plan, values: Mapping[str, Any], reference: ReferenceRow) -> tuple[FieldScore, ...]:
    row = reference.values
    return tuple(
        field.compare(values.get(field.source), row.get(field.target), field.options) for field in plan.fields
    )


def _confidence(plan: _Plan, scores: Sequence[FieldScore]) -> float:
    if plan.total_weight <= 0:
        return 0.0
    weighted = math.fsum(f.weight * s.score for f, s in zip(plan.fields, scores, strict=True))
    return round(weighted / plan.total_weight, _DIGITS)


def _evidence(
    plan: _Plan,
    values: Mapping[str, Any],
    reference: ReferenceRow,
    scores: Sequence[FieldScore],
) -> dict[str, Evidence]:
    return {
        field.key: Evidence(
            strategy=field.strategy,
            score=score.score,
            source_value=values.get(field.source),
            reference_value=reference.values.get(field.target),
            reason=score.reason,
        )
        for field, score in zip(plan.fields, scores, strict=True)
    }


def score_row(
    mappings: Sequence[FieldMapping], values: Mapping[str, Any], reference: ReferenceRow
) -> tuple[float, dict[str, Evidence]]:
    """Confidence of one input row's ``values`` against one reference row, with evidence."""
    plan = _plan(mappings)
    scores = _scores(plan, values, reference)
    return _confidence(plan, scores), _evidence(plan, values, reference, scores)


class Matcher:
    """Finds the best reference rows for input rows under one matching config.

    A full scan of ``reference_rows`` (kept, not copied). This class is the seam where an indexed
    search can replace the scan, as long as it returns exactly what the scan returns.
    """

    def __init__(self, config: MatchingConfig, reference_rows: Sequence[ReferenceRow]) -> None:
        self._plan = _plan(config.field_mappings)
        self._threshold = config.threshold
        self._rows = reference_rows

    def match(self, row: InputRow) -> RowMatch:
        best = heapq.nsmallest(MAX_CANDIDATES, self._scan(row.values), key=_rank)
        candidates = tuple(self._candidate(row.values, hit) for hit in best)
        return _row_match(candidates, self._threshold)

    def _scan(self, values: Mapping[str, Any]) -> Iterator[_Hit]:
        for position, reference in enumerate(self._rows):
            scores = _scores(self._plan, values, reference)
            confidence = _confidence(self._plan, scores)
            if confidence > 0:
                yield _Hit(confidence, position, reference, scores)

    def _candidate(self, values: Mapping[str, Any], hit: _Hit) -> Candidate:
        return Candidate(
            reference_row_id=hit.reference.id,
            confidence=hit.confidence,
            evidence=_evidence(self._plan, values, hit.reference, hit.scores),
        )


def _rank(hit: _Hit) -> tuple[float, int]:
    return -hit.confidence, hit.position


def _row_match(candidates: tuple[Candidate, ...], threshold: float) -> RowMatch:
    if not candidates:
        return RowMatch(matched=False, matched_reference_row_id=None, confidence=0.0, candidates=())
    best = candidates[0]
    matched = best.confidence >= threshold
    return RowMatch(
        matched=matched,
        matched_reference_row_id=best.reference_row_id if matched else None,
        confidence=best.confidence,
        candidates=candidates,
    )


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
