"""A matching config's field mappings made ready to run, and what every matcher builds from them.

- Row confidence against one reference row = Σ weightᵢ·scoreᵢ / Σ weightᵢ, rounded to 12 decimals
  so float noise cannot put an exact 0.85 below a 0.85 threshold.
- Evidence is keyed by the mapping's ``source`` field. When one source field feeds several
  mappings, the second is keyed ``"<source>#2"``, the third ``"<source>#3"``, and so on.
- A mapping with ``missing: ignore`` whose value is missing or empty on either side (its score's
  reason is one of :data:`MISSING_REASONS`) is left out of both sums; its evidence reason gains
  ``" (ignored)"``. A pair whose weighted fields are all left out has no confidence (``None``): it
  is never a candidate.
- A row is matched when it has a candidate and the best confidence is ≥ the threshold; a row with
  no candidate is never matched, even with a threshold of 0.

The full scan (:mod:`.brute`) and the indexed search (:mod:`.search`) both score their final
candidates with :func:`field_scores` and :func:`confidence`, so their answers are built the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from packmatch.domain.models import (
    Candidate,
    Evidence,
    FieldMapping,
    MissingPolicy,
    ReferenceRow,
    RowMatch,
    Strategy,
    StrategyOptions,
)
from packmatch.engine.strategies import STRATEGIES, FieldScore, StrategyFn

__all__ = [
    "CONFIDENCE_DIGITS",
    "IGNORED",
    "MAX_CANDIDATES",
    "MISSING_REASONS",
    "Plan",
    "PlannedField",
    "candidate",
    "confidence",
    "field_scores",
    "make_plan",
    "row_match",
    "weighted_confidence",
]

MAX_CANDIDATES = 5
CONFIDENCE_DIGITS = 12
MISSING_REASONS = frozenset({"source value missing", "reference value missing"})
IGNORED = " (ignored)"


class PlannedField(NamedTuple):
    """One field mapping, ready to run: options parsed, strategy looked up, evidence key fixed."""

    key: str
    source: str
    target: str
    strategy: Strategy
    weight: float
    compare: StrategyFn
    options: StrategyOptions
    ignore_missing: bool = False


class Plan(NamedTuple):
    fields: tuple[PlannedField, ...]
    total_weight: float


def make_plan(mappings: Sequence[FieldMapping]) -> Plan:
    keys = _evidence_keys([mapping.source for mapping in mappings])
    fields = tuple(
        PlannedField(
            key=key,
            source=mapping.source,
            target=mapping.target,
            strategy=mapping.strategy,
            weight=mapping.weight,
            compare=STRATEGIES[mapping.strategy],
            options=mapping.parsed_options(),
            ignore_missing=mapping.missing is MissingPolicy.IGNORE,
        )
        for key, mapping in zip(keys, mappings, strict=True)
    )
    return Plan(fields, math.fsum(field.weight for field in fields))


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


def field_scores(plan: Plan, values: Mapping[str, Any], reference: ReferenceRow) -> tuple[FieldScore, ...]:
    row = reference.values
    return tuple(
        field.compare(values.get(field.source), row.get(field.target), field.options) for field in plan.fields
    )


def left_out(field: PlannedField, score: FieldScore) -> bool:
    """Whether ``field`` leaves the sums: ``missing: ignore`` and a value missing on a side."""
    return field.ignore_missing and score.reason in MISSING_REASONS


def confidence(plan: Plan, scores: Sequence[FieldScore]) -> float | None:
    counted = [not left_out(f, s) for f, s in zip(plan.fields, scores, strict=True)]
    return weighted_confidence(plan, [score.score for score in scores], counted)


def weighted_confidence(
    plan: Plan, scores: Sequence[float], counted: Sequence[bool] | None = None
) -> float | None:
    """Σ weightᵢ·scoreᵢ / Σ weightᵢ over the ``counted`` fields (default: all), rounded to
    :data:`CONFIDENCE_DIGITS`; ``None`` when no field counts."""
    if counted is None:
        if plan.total_weight <= 0:
            return 0.0
        weighted = math.fsum(f.weight * s for f, s in zip(plan.fields, scores, strict=True))
        return round(weighted / plan.total_weight, CONFIDENCE_DIGITS)
    kept = [(f.weight, s) for f, s, c in zip(plan.fields, scores, counted, strict=True) if c]
    total = math.fsum(w for w, _ in kept)
    if total <= 0:
        return None
    return round(math.fsum(w * s for w, s in kept) / total, CONFIDENCE_DIGITS)


def _evidence(
    plan: Plan,
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
            reason=f"{score.reason}{IGNORED}" if left_out(field, score) else score.reason,
        )
        for field, score in zip(plan.fields, scores, strict=True)
    }


def candidate(
    plan: Plan, values: Mapping[str, Any], reference: ReferenceRow, scores: Sequence[FieldScore] | None = None
) -> Candidate:
    """``reference`` as a candidate for ``values``: its confidence and per-field evidence."""
    scores = field_scores(plan, values, reference) if scores is None else scores
    return Candidate(
        reference_row_id=reference.id,
        confidence=confidence(plan, scores) or 0.0,
        evidence=_evidence(plan, values, reference, scores),
    )


def row_match(candidates: tuple[Candidate, ...], threshold: float) -> RowMatch:
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
