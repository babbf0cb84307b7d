"""Field comparison strategies (SPEC §4): one function per strategy, all with one signature.

A strategy takes the raw source value, the raw reference value and the mapping's parsed options,
and returns a :class:`FieldScore` in [0, 1]. Adding a strategy is one function here plus one entry
in :data:`STRATEGIES` (and its ``Strategy`` member and options model in the domain).

``FieldScore.reason`` is ``None`` for a computed score, otherwise one of these stable strings
(clients may see them in evidence, so they do not change casually):

- ``"source value missing"`` / ``"reference value missing"``: ``None``, empty or only whitespace;
  always checked on both sides before any parsing.
- ``"source value is not a number"`` / ``"reference value is not a number"`` (``numeric_range``).
- ``"source value is not a date"`` / ``"reference value is not a date"`` (``date_range``).
- ``"not equal"`` (``exact``, also when more than ``max_edits`` edits apart),
  ``"below min_similarity"`` (``fuzzy``), ``"outside tolerance"`` (``numeric_range``, ``date_range``).

Scorers (``fuzzy``): :data:`SCORERS` maps each name to a rapidfuzz function and :data:`SCORER_SCALE`
to the top of its range (100 for ``fuzz.*``, 1 for the normalised similarities of
``rapidfuzz.distance``); the score is ``round(raw / scale, 12)``.

``exact`` with ``max_edits`` = k > 0: texts that are not equal but e ≤ k edits apart (optimal string
alignment: insertions, deletions, substitutions and adjacent transpositions, each one edit) score
1 − 0.5·e/k. ``date_range`` with ``allow_day_month_swap``: the greater of the score of the source
date and 0.8 × the score of the source date with day and month swapped (when that is a date).

Float noise never flips a boundary: a difference within ``1e-12 * max(1, |reference|)`` counts as
zero, and ``d ≤ tol`` is tested with a relative slack of ``1e-9``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date
from typing import Any, NamedTuple, TypeVar

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

from packmatch.domain.models import (
    DateRangeOptions,
    ExactOptions,
    FuzzyOptions,
    NumericRangeOptions,
    Strategy,
    StrategyOptions,
)
from packmatch.engine.normalise import normalise_text, parse_date, parse_decimal, parse_number

__all__ = [
    "SCORERS",
    "SCORER_SCALE",
    "STRATEGIES",
    "SWAP_FACTOR",
    "TOLERANCE_SLACK",
    "ZERO_NOISE",
    "FieldScore",
    "StrategyFn",
    "date_range",
    "edit_score",
    "exact",
    "fuzzy",
    "numeric_range",
    "swap_day_month",
]

ZERO_NOISE = 1e-12
TOLERANCE_SLACK = 1e-9
SWAP_FACTOR = 0.8  # a date that matches only with day and month swapped scores at most this


class FieldScore(NamedTuple):
    """One field's score in [0, 1] and, when it needs explaining, why."""

    score: float
    reason: str | None = None


StrategyFn = Callable[[Any, Any, StrategyOptions], FieldScore]

_Options = TypeVar("_Options", bound=StrategyOptions)

SCORERS: dict[str, Callable[[str, str], float]] = {
    "token_set_ratio": fuzz.token_set_ratio,
    "token_sort_ratio": fuzz.token_sort_ratio,
    "ratio": fuzz.ratio,
    "partial_ratio": fuzz.partial_ratio,
    "WRatio": fuzz.WRatio,
    "jaro_winkler": JaroWinkler.normalized_similarity,
    "levenshtein": Levenshtein.normalized_similarity,
}
SCORER_SCALE: dict[str, float] = {
    name: 1.0 if name in ("jaro_winkler", "levenshtein") else 100.0 for name in SCORERS
}


def exact(source: Any, reference: Any, options: StrategyOptions) -> FieldScore:
    """1 when equal: by value if both sides are numbers, else by normalised text; then, with
    ``max_edits``, graded by the edit distance of the normalised texts."""
    opts = _expect(options, ExactOptions)
    missing = _missing(source, reference)
    if missing is not None:
        return missing
    source_number, reference_number = parse_decimal(source), parse_decimal(reference)
    source_text, reference_text = normalise_text(source), normalise_text(reference)
    if source_number is not None and reference_number is not None:
        equal = source_number == reference_number
    else:
        equal = source_text == reference_text
    if equal:
        return FieldScore(1.0)
    if opts.max_edits and source_text is not None and reference_text is not None:
        edits = OSA.distance(source_text, reference_text, score_cutoff=opts.max_edits)
        if edits <= opts.max_edits:
            return FieldScore(edit_score(edits, opts.max_edits))
    return FieldScore(0.0, "not equal")


def edit_score(edits: int, max_edits: int) -> float:
    """``exact``'s score for texts ``edits`` (> 0) apart: 1 − 0.5·e/k."""
    return 1.0 - 0.5 * edits / max_edits


def fuzzy(source: Any, reference: Any, options: StrategyOptions) -> FieldScore:
    """The chosen rapidfuzz scorer on normalised texts, / 100; 0 below ``min_similarity``."""
    opts = _expect(options, FuzzyOptions)
    source_text, reference_text = normalise_text(source), normalise_text(reference)
    if source_text is None:
        return FieldScore(0.0, "source value missing")
    if reference_text is None:
        return FieldScore(0.0, "reference value missing")
    similarity = round(SCORERS[opts.scorer](source_text, reference_text) / SCORER_SCALE[opts.scorer], 12)
    if similarity < opts.min_similarity:
        return FieldScore(0.0, "below min_similarity")
    return FieldScore(similarity)


def numeric_range(source: Any, reference: Any, options: StrategyOptions) -> FieldScore:
    """1 when equal, falling linearly to 0.5 at the tolerance, 0 beyond it."""
    opts = _expect(options, NumericRangeOptions)
    missing = _missing(source, reference)
    if missing is not None:
        return missing
    source_number = parse_number(source)
    if source_number is None:
        return FieldScore(0.0, "source value is not a number")
    reference_number = parse_number(reference)
    if reference_number is None:
        return FieldScore(0.0, "reference value is not a number")
    scale = abs(reference_number)
    tolerance = max(opts.tolerance_abs, opts.tolerance_pct / 100 * scale)
    difference = abs(source_number - reference_number)
    return _range_score(difference, tolerance, noise=ZERO_NOISE * max(1.0, scale))


def date_range(source: Any, reference: Any, options: StrategyOptions) -> FieldScore:
    """The numeric rule on whole days between the two dates, with ``tolerance_days``."""
    opts = _expect(options, DateRangeOptions)
    missing = _missing(source, reference)
    if missing is not None:
        return missing
    source_date = parse_date(source, opts.formats)
    if source_date is None:
        return FieldScore(0.0, "source value is not a date")
    reference_date = parse_date(reference, opts.formats)
    if reference_date is None:
        return FieldScore(0.0, "reference value is not a date")
    days = abs((source_date - reference_date).days)
    score = _range_score(float(days), opts.tolerance_days, noise=0.0)
    swapped = swap_day_month(source_date) if opts.allow_day_month_swap else None
    if swapped is None or score.score == 1.0:
        return score
    swapped_days = abs((swapped - reference_date).days)
    swapped_score = SWAP_FACTOR * _range_score(float(swapped_days), opts.tolerance_days, noise=0.0).score
    return FieldScore(swapped_score) if swapped_score > score.score else score


def swap_day_month(day: date) -> date | None:
    """``day`` with its day and month swapped, or None when that is no other date."""
    if day.day > 12 or day.day == day.month:
        return None
    try:
        return day.replace(month=day.day, day=day.month)
    except ValueError:
        return None


STRATEGIES: dict[Strategy, StrategyFn] = {
    Strategy.EXACT: exact,
    Strategy.FUZZY: fuzzy,
    Strategy.NUMERIC_RANGE: numeric_range,
    Strategy.DATE_RANGE: date_range,
}


def _range_score(difference: float, tolerance: float, *, noise: float) -> FieldScore:
    """SPEC §4's range rule: d = 0 → 1; 0 < d ≤ tol → 1 - 0.5·d/tol; else 0."""
    if difference <= noise:
        return FieldScore(1.0)
    within = difference <= tolerance * (1 + TOLERANCE_SLACK) + ZERO_NOISE
    if tolerance <= 0 or not within or not math.isfinite(difference):
        return FieldScore(0.0, "outside tolerance")
    return FieldScore(1.0 - 0.5 * min(difference / tolerance, 1.0))


def _missing(source: Any, reference: Any) -> FieldScore | None:
    if normalise_text(source) is None:
        return FieldScore(0.0, "source value missing")
    if normalise_text(reference) is None:
        return FieldScore(0.0, "reference value missing")
    return None


def _expect(options: StrategyOptions, kind: type[_Options]) -> _Options:
    """Narrow the options union; a mismatch is a programming error, not bad data."""
    if not isinstance(options, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(options).__name__}")
    return options
