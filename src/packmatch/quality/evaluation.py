"""Evaluate a matching config on labelled rows with the real engine (SPEC §4, as a slot matches).

Each row is matched once by :class:`packmatch.engine.Matcher` — the same matcher, index and rules a
worker uses for a slot, without review exclusions (an evaluation measures the config, not past
reviews). A row's answer at any threshold ``t`` follows from that one match: its top candidate if
the candidate's confidence is ≥ ``t``, else nothing. So the whole curve costs one match per row.
How answers count is in :mod:`packmatch.domain.evaluations`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from packmatch.domain.evaluations import EvaluationReport, Miss, MissKind, QualityMetrics
from packmatch.domain.models import Candidate, Evidence, InputRow, MatchingConfig, ReferenceRow, RowMatch
from packmatch.engine.index import ReferenceIndex
from packmatch.engine.plan import Plan, candidate, make_plan
from packmatch.engine.scoring import Matcher
from packmatch.quality.labels import LabelledRow

__all__ = ["MAX_MISSES", "THRESHOLDS", "Outcome", "evaluate", "metrics_at", "outcomes", "report"]

THRESHOLDS: tuple[float, ...] = tuple(round(i / 100, 2) for i in range(101))
MAX_MISSES = 20
DIGITS = 4
PROGRESS_EVERY = 500  # rows between two progress calls

Progress = Callable[[int, int], None]  # (rows done, rows in all)


class Outcome(NamedTuple):
    """One labelled row's label and the engine's match (threshold-independent: its candidates)."""

    label: str | None
    match: RowMatch

    @property
    def top(self) -> Candidate | None:
        return self.match.candidates[0] if self.match.candidates else None


def evaluate(
    config: MatchingConfig,
    reference: ReferenceIndex | Sequence[ReferenceRow],
    rows: Sequence[LabelledRow],
    *,
    progress: Progress | None = None,
) -> EvaluationReport:
    """Match ``rows`` under ``config`` against ``reference`` (an index built for the config's
    mappings, e.g. the worker's cached one, or the rows themselves) and report the quality."""
    if not isinstance(reference, ReferenceIndex):
        reference = ReferenceIndex.build(reference, config.field_mappings)
    found = outcomes(Matcher(config, reference), rows, progress)
    return report(config, reference, rows, found)


def outcomes(
    matcher: Matcher, rows: Sequence[LabelledRow], progress: Progress | None = None
) -> list[Outcome]:
    """The engine's match of every row, calling ``progress(done, total)`` now and then."""
    found = []
    for i, row in enumerate(rows):
        match = matcher.match(
            InputRow.model_construct(document_id=f"row_{i}", extraction_row_id=None, values=row.values)
        )
        found.append(Outcome(row.reference_row_id, match))
        if progress is not None and (i + 1) % PROGRESS_EVERY == 0:
            progress(i + 1, len(rows))
    if progress is not None:
        progress(len(rows), len(rows))
    return found


def report(
    config: MatchingConfig, index: ReferenceIndex, rows: Sequence[LabelledRow], found: Sequence[Outcome]
) -> EvaluationReport:
    """The report of ``found`` (one outcome per row of ``rows``, in order) at every threshold."""
    curve = _curve(found)
    at_threshold = metrics_at(found, config.threshold)
    best = _best_f1(curve)
    return EvaluationReport(
        matching_config_version=config.version,
        rows=len(found),
        labelled_matches=sum(1 for o in found if o.label is not None),
        threshold=config.threshold,
        metrics=at_threshold,
        curve=curve,
        best_f1_threshold=None if best is None else best.threshold,
        best_f1=None if best is None else best.f1,
        precision_99_threshold=next((p.threshold for p in curve if _precise(p)), None),
        worst_misses=_worst_misses(config, index, rows, found),
    )


# --- counting ----------------------------------------------------------------------------------


def _answer(outcome: Outcome, threshold: float) -> str | None:
    top = outcome.top
    return top.reference_row_id if top is not None and top.confidence >= threshold else None


def metrics_at(found: Sequence[Outcome], threshold: float) -> QualityMetrics:
    """Counts and ratios at one threshold, row by row (the definition; :func:`_curve` is faster)."""
    tp = fp = fn = tn = 0
    for outcome in found:
        answer = _answer(outcome, threshold)
        tp += answer is not None and answer == outcome.label
        fp += answer is not None and answer != outcome.label
        fn += outcome.label is not None and answer != outcome.label
        tn += outcome.label is None and answer is None
    return _metrics(threshold, tp, fp, fn, tn)


def _curve(found: Sequence[Outcome]) -> tuple[QualityMetrics, ...]:
    """:func:`metrics_at` at every threshold of :data:`THRESHOLDS`, counted with sorted arrays: a
    row's answer is "linked" for every threshold up to its top confidence."""
    confidence = np.array([o.top.confidence if o.top else -1.0 for o in found], dtype=np.float64)
    labelled = np.array([o.label is not None for o in found], dtype=bool)
    right = np.array([o.top is not None and o.top.reference_row_id == o.label for o in found], dtype=bool)
    thresholds = np.array(THRESHOLDS, dtype=np.float64)

    def linked(rows: np.ndarray) -> np.ndarray:  # per threshold: rows whose top confidence ≥ it
        ordered = np.sort(confidence[rows])
        return len(ordered) - np.searchsorted(ordered, thresholds, side="left")

    tp = linked(right)
    fp = linked(~right)
    n_labelled, n_null = int(labelled.sum()), int((~labelled).sum())
    fp_null = linked(~labelled)  # links for rows that should have none
    return tuple(
        _metrics(t, int(tp[i]), int(fp[i]), n_labelled - int(tp[i]), n_null - int(fp_null[i]))
        for i, t in enumerate(THRESHOLDS)
    )


def _metrics(threshold: float, tp: int, fp: int, fn: int, tn: int) -> QualityMetrics:
    return QualityMetrics(
        threshold=threshold,
        precision=_ratio(tp, tp + fp),
        recall=_ratio(tp, tp + fn),
        f1=_ratio(2 * tp, 2 * tp + fp + fn),
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
    )


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, DIGITS) if whole else None


def _precise(point: QualityMetrics) -> bool:
    """precision ≥ 0.99, in integers (rounding cannot make 0.98995 count)."""
    return point.tp + point.fp > 0 and 100 * point.tp >= 99 * (point.tp + point.fp)


def _best_f1(curve: Sequence[QualityMetrics]) -> QualityMetrics | None:
    """The lowest threshold with the highest F1 (compared unrounded, as fractions)."""
    best: QualityMetrics | None = None
    for point in curve:
        if point.f1 is None:
            continue
        if best is None or _f1_key(point) > _f1_key(best):
            best = point
    return best


def _f1_key(point: QualityMetrics) -> float:
    return 2 * point.tp / (2 * point.tp + point.fp + point.fn)


# --- misses ------------------------------------------------------------------------------------


def _worst_misses(
    config: MatchingConfig, index: ReferenceIndex, rows: Sequence[LabelledRow], found: Sequence[Outcome]
) -> tuple[Miss, ...]:
    plan = make_plan(config.field_mappings)
    positions: dict[str, int] | None = None
    misses = []
    for i, outcome in enumerate(found):
        answer = _answer(outcome, config.threshold)
        if answer == outcome.label:
            continue
        label: Candidate | None = None
        if outcome.label is not None:
            label = next((c for c in outcome.match.candidates if c.reference_row_id == outcome.label), None)
            if label is None:
                positions = positions if positions is not None else {r: p for p, r in enumerate(index.ids)}
                label = _label_candidate(plan, index, positions, rows[i], outcome.label)
        misses.append(_miss(i, outcome, answer, label, config.threshold))
    misses.sort(key=lambda miss: (-miss.margin, miss.row))
    return tuple(misses[:MAX_MISSES])


def _label_candidate(
    plan: Plan, index: ReferenceIndex, positions: dict[str, int], row: LabelledRow, label: str
) -> Candidate | None:
    position = positions.get(label)
    return None if position is None else candidate(plan, row.values, index.row(position))


def _miss(row: int, outcome: Outcome, answer: str | None, label: Candidate | None, threshold: float) -> Miss:
    top = outcome.top.confidence if outcome.top is not None else 0.0
    label_confidence = None if label is None else label.confidence
    if outcome.label is None:
        kind, margin = MissKind.FALSE_MATCH, top - threshold
    elif answer is not None:
        kind, margin = MissKind.WRONG_MATCH, top - (label_confidence or 0.0)
    else:
        kind, margin = MissKind.MISSED_MATCH, threshold - (label_confidence or 0.0)
    return Miss(
        row=row,
        kind=kind,
        reference_row_id=outcome.label,
        matched_reference_row_id=answer,
        confidence=round(top, DIGITS),
        label_confidence=None if label_confidence is None else round(label_confidence, DIGITS),
        margin=round(max(margin, 0.0), DIGITS),
        candidates=tuple(_rounded(c) for c in outcome.match.candidates),
        label_evidence=None if label is None else _rounded(label).evidence,
    )


def _rounded(found: Candidate) -> Candidate:
    evidence = {key: _rounded_evidence(e) for key, e in found.evidence.items()}
    return found.model_copy(update={"confidence": round(found.confidence, DIGITS), "evidence": evidence})


def _rounded_evidence(evidence: Evidence) -> Evidence:
    return evidence.model_copy(update={"score": round(evidence.score, DIGITS)})
