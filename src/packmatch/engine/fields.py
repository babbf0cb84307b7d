"""One field's scores for many reference rows at once, equal to :mod:`.strategies` row by row.

Selective fields (``exact``, ``numeric_range``, ``date_range``) find, through their column, the only
rows where they can score above 0 (a hash lookup, a sorted range) and score just those.
``numeric_range`` and ``date_range`` repeat the strategy's float operations in numpy, in the same
order, so every score is bit-for-bit the strategy's; their search range is a proven upper bound on
the distance of any row that scores above 0.

A fuzzy field can score above 0 on any row. It scores the distinct texts of some rows, or of the
whole column, with rapidfuzz's ``process.cdist`` (in C), which skips texts below a cutoff. Those
scores are ``raw / 100``, within 1e-12 of the strategy's ``round(raw / 100, 12)`` (and exact at the
``min_similarity`` boundary); :meth:`FuzzyField.exact` returns the strategy's own values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
from rapidfuzz import process
from rapidfuzz.distance import OSA

from packmatch.domain.models import DateRangeOptions, ExactOptions, FuzzyOptions, NumericRangeOptions
from packmatch.engine.arrays import EMPTY_ROWS, Floats, Rows
from packmatch.engine.bounds import QueryBound
from packmatch.engine.columns import ExactColumn, RangeColumn, TextColumn, as_day, as_number
from packmatch.engine.normalise import normalise_text, parse_decimal
from packmatch.engine.strategies import (
    SCORER_SCALE,
    SCORERS,
    SWAP_FACTOR,
    TOLERANCE_SLACK,
    ZERO_NOISE,
    edit_score,
    swap_day_month,
)

__all__ = [
    "DateField",
    "ExactField",
    "FuzzyField",
    "NumericField",
    "fuzzy_score",
    "numeric_reach",
    "numeric_scores",
    "range_scores",
]

_REACH_MARGIN = 1 + 1e-6  # on a search range: far more than the float error in computing it
_CUTOFF_MARGIN = 1e-6  # on a rapidfuzz score_cutoff (0–100): more than raw/100 vs its rounding
_LOWER_MARGIN = 1e-9  # below a lower bound on raw/100: covers the strategy's rounding to 12 digits
_BOUNDARY = 1e-9  # fuzzy scores this close to min_similarity are decided the strategy's way
_PARALLEL_CHOICES = 20_000  # below this many texts, one thread scores faster than a pool
_FILTER_FROM = 256  # from this many texts of a length, max_edits filters them before the OSA cdist


@dataclass(frozen=True, slots=True)
class ExactField:
    column: ExactColumn
    options: ExactOptions

    def positives(self, source: Any) -> tuple[Rows, Floats]:
        """The rows ``exact`` scores above 0 (equal: 1; with ``max_edits`` k, texts e ≤ k edits
        apart: 1 − 0.5·e/k), and their scores."""
        text = normalise_text(source)
        if text is None:
            return EMPTY_ROWS, np.empty(0, dtype=np.float64)
        rows = self._equal_rows(source, text)
        equal = np.ones(len(rows), dtype=np.float64)
        if not self.options.max_edits:
            return rows, equal
        near, scores = self._near_rows(text)
        keep = ~np.isin(near, rows)  # equal by number value: those score 1
        return np.concatenate([rows, near[keep]]), np.concatenate([equal, scores[keep]])

    def _near_rows(self, text: str) -> tuple[Rows, Floats]:
        """Rows whose text is 1 to k edits (OSA) from ``text``, and their edit scores.

        An edit changes the length by at most one: only texts of length |text| ± k can be near.
        Of those, only texts that pass :func:`_may_be_near` are compared, by ``cdist`` with the
        distance cut off at k (a farther text reads k + 1)."""
        k = self.options.max_edits
        query = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        found: list[tuple[Rows, npt.NDArray[np.int32]]] = []
        for length in range(max(1, len(text) - k), len(text) + k + 1):
            start, codes, points = self.column.of_length(length)
            if not len(codes):
                continue
            if len(codes) >= _FILTER_FROM:
                maybe = _may_be_near(query, points, k)
                codes = codes[maybe]
                texts = [self.column.sorted_texts[start + i] for i in maybe.tolist()]
            else:
                texts = self.column.sorted_texts[start : start + len(codes)]
            workers = -1 if len(codes) >= _PARALLEL_CHOICES else 1
            scorer: Any = OSA.distance  # rapidfuzz's own scorer type, not expressible here
            matrix = process.cdist(
                [text], texts, scorer=scorer, score_cutoff=k, dtype=np.int32, workers=workers
            )
            distances = np.asarray(matrix[0])
            near = np.flatnonzero((distances <= k) & (distances > 0))  # 0: the same text, so equal
            found.append((codes[near], distances[near]))
        if not found:
            return EMPTY_ROWS, np.empty(0, dtype=np.float64)
        texts_near = np.concatenate([codes for codes, _ in found])
        distances = np.concatenate([d for _, d in found])
        table = np.array([0.0] + [edit_score(e, k) for e in range(1, k + 1)], dtype=np.float64)
        counts = self.column.text_rows.offsets[texts_near + 1] - self.column.text_rows.offsets[texts_near]
        return self.column.text_rows.rows_of_many(texts_near), np.repeat(table[distances], counts)

    def _equal_rows(self, source: Any, text: str) -> Rows:
        same_text = self.column.rows_with_text(text)
        number = parse_decimal(source)
        if number is None:
            return same_text
        # Numbers compare by value with numbers, and by text with values that are no number.
        not_numbers = same_text[~self.column.is_number[same_text]]
        return np.union1d(self.column.rows_with_number(number), not_numbers)


@dataclass(frozen=True, slots=True)
class NumericField:
    column: RangeColumn
    options: NumericRangeOptions

    def positives(self, source: Any) -> tuple[Rows, Floats]:
        """The rows ``numeric_range`` scores above 0, and their scores."""
        number = as_number(source)
        if number is None:
            return EMPTY_ROWS, np.empty(0, dtype=np.float64)
        reach = numeric_reach(number, self.options)
        rows, values = self.column.between(number - reach, number + reach)
        return _positive(rows, numeric_scores(number, values, self.options))


@dataclass(frozen=True, slots=True)
class DateField:
    column: RangeColumn
    options: DateRangeOptions

    def positives(self, source: Any) -> tuple[Rows, Floats]:
        """The rows ``date_range`` scores above 0, and their scores.

        With ``allow_day_month_swap``, a second range lookup around the swapped input date scores
        its rows 0.8 × the range score; a row found by both keeps the greater score.
        """
        day = as_day(source, self.options.formats)
        if day is None:
            return EMPTY_ROWS, np.empty(0, dtype=np.float64)
        rows, scores = self._around(day)
        swapped = swap_day_month(date.fromordinal(int(day))) if self.options.allow_day_month_swap else None
        if swapped is None:
            return _positive(rows, scores)
        swapped_rows, swapped_scores = self._around(float(swapped.toordinal()))
        both, at = np.unique(np.concatenate([rows, swapped_rows]), return_inverse=True)
        best = np.zeros(len(both), dtype=np.float64)
        np.maximum.at(best, at, np.concatenate([scores, SWAP_FACTOR * swapped_scores]))
        return _positive(both, best)

    def _around(self, day: float) -> tuple[Rows, Floats]:
        """The rows within reach of ``day`` and their range scores."""
        tolerance = self.options.tolerance_days
        reach = (tolerance * (1 + TOLERANCE_SLACK) + ZERO_NOISE) * _REACH_MARGIN + 1
        rows, days = self.column.between(day - reach, day + reach)
        with np.errstate(all="ignore"):
            return rows, range_scores(np.abs(day - days), tolerance, 0.0)


def _may_be_near(query: npt.NDArray[np.uint32], points: npt.NDArray[np.uint32], k: int) -> Rows:
    """Indices of the texts (code points: position × text) that may be at most k OSA edits from
    ``query``: those where at most k of the query's characters are missing from the text within
    k positions of their own.

    In an alignment with e ≤ k edits, a query character that is neither substituted nor deleted
    sits in the text at most k positions away (one per insertion or deletion before it, plus one
    if it was transposed: each is one of the e edits); substituted and deleted characters are at
    most e. So a text with more than k missing characters is more than k edits away. The last
    characters go first (identifiers tend to differ there); texts already out are dropped.
    """
    length = points.shape[0]
    rows = np.arange(points.shape[1])
    misses = np.zeros(len(rows), dtype=np.int64)
    for i in range(len(query) - 1, -1, -1):
        window = points[max(0, i - k) : min(length, i + k + 1)]
        misses += ~(window == query[i]).any(axis=0)
        keep = misses <= k
        if np.count_nonzero(keep) < len(keep) // 2:  # copy the rest once it has halved
            rows, misses, points = rows[keep], misses[keep], points[:, keep]
    return rows[misses <= k]


def _positive(rows: Rows, scores: Floats) -> tuple[Rows, Floats]:
    keep = scores > 0
    return rows[keep], scores[keep]


def numeric_reach(number: float, options: NumericRangeOptions) -> float:
    """An upper bound on |number - r| for any reference value r that ``numeric_range`` scores > 0.

    A score above 0 needs d ≤ 1e-12·max(1, |r|) or d ≤ max(abs, pct/100·|r|)·(1 + 1e-9) + 1e-12,
    with d = |number - r| and |r| ≤ |number| + d; solved for d (infinite when pct/100 nears 1).
    """
    slack = 1 + TOLERANCE_SLACK
    share = options.tolerance_pct / 100 * slack
    if share >= 0.5:
        return math.inf
    size = abs(number)
    reach = max(
        options.tolerance_abs * slack + ZERO_NOISE,
        (share * size + ZERO_NOISE) / (1 - share),
        ZERO_NOISE * (1 + size) / (1 - ZERO_NOISE),
    )
    return reach * _REACH_MARGIN


def numeric_scores(number: float, values: Floats, options: NumericRangeOptions) -> Floats:
    """``strategies.numeric_range`` of ``number`` against each value, in the same float operations."""
    with np.errstate(all="ignore"):
        scale = np.abs(values)
        tolerance = np.maximum(options.tolerance_abs, options.tolerance_pct / 100 * scale)
        difference = np.abs(number - values)
        return range_scores(difference, tolerance, ZERO_NOISE * np.maximum(1.0, scale))


def range_scores(
    difference: Floats, tolerance: Floats | float, noise: Floats | float
) -> npt.NDArray[np.float64]:
    """``strategies._range_score`` element-wise (call it under ``np.errstate(all="ignore")``)."""
    zero = difference <= noise
    within = difference <= tolerance * (1 + TOLERANCE_SLACK) + ZERO_NOISE
    counted = within & (np.asarray(tolerance) > 0) & np.isfinite(difference)
    partial = 1.0 - 0.5 * np.minimum(difference / tolerance, 1.0)
    return np.where(zero, 1.0, np.where(counted, partial, 0.0))


@dataclass(frozen=True, slots=True)
class FuzzyField:
    column: TextColumn
    options: FuzzyOptions

    def bound(self, query: str) -> QueryBound | None:
        """Upper bounds for ``query``'s scores, if the scorer has them (:mod:`.bounds`)."""
        return self.column.features.for_query(query, self.options.scorer)

    def codes(self, rows: Rows) -> Rows:
        """The text code of each row (-1: no text); the other methods take rows by their codes."""
        return self.column.codes[rows]

    def upper(self, bound: QueryBound | None, codes: Rows) -> Floats:
        """An upper bound on each row's score: 0 without text, else 1 or the text's bound."""
        present = codes >= 0
        if bound is None:
            return present.astype(np.float64)
        upper = np.zeros(len(codes), dtype=np.float64)
        upper[present] = bound.upper(codes[present]) / 100
        return upper

    def lower(self, bound: QueryBound | None, codes: Rows) -> Floats:
        """A lower bound on each row's score (0 where nothing better is known)."""
        lower = np.zeros(len(codes), dtype=np.float64)
        if bound is None:
            return lower
        present = codes >= 0
        lower[present] = bound.lower(codes[present]) / 100 - _LOWER_MARGIN
        lower[lower < self.options.min_similarity] = 0.0
        return lower

    def cutoff(self, need: float) -> float:
        """The rapidfuzz score_cutoff (0–100) below which a score is < ``need`` or 0 anyway."""
        return max(0.0, 100 * max(need, self.options.min_similarity) - _CUTOFF_MARGIN)

    def scores(self, query: str, codes: Rows, cutoff: float, upper: Floats) -> Floats:
        """Scores of rows (0 without text); 0 too when below ``cutoff`` (by score or ``upper``)."""
        scored = np.flatnonzero((codes >= 0) & (upper * 100 >= cutoff))
        distinct, inverse = np.unique(codes[scored], return_inverse=True)
        raw = self._similarities(query, self.column.texts[distinct], cutoff)
        scores = np.zeros(len(codes), dtype=np.float64)
        scores[scored] = self._from_raw(raw)[inverse]
        return scores

    def text_upper(self, bound: QueryBound | None) -> Floats | None:
        """An upper bound on the score of every distinct text, or None (all may reach 1)."""
        if bound is None:
            return None
        return bound.upper(np.arange(len(self.column.texts))) / 100

    def scan(self, query: str, cutoff: float, text_upper: Floats | None) -> Floats:
        """The score of every distinct text (by code); 0 when below ``cutoff`` (or its upper bound)."""
        if text_upper is None:
            return self._from_raw(self._similarities(query, self.column.texts, cutoff))
        scored = np.flatnonzero(text_upper * 100 >= cutoff)
        scores = np.zeros(len(self.column.texts), dtype=np.float64)
        scores[scored] = self._from_raw(self._similarities(query, self.column.texts[scored], cutoff))
        return scores

    def rows_scoring(self, text_scores: Floats) -> Rows:
        """The rows whose text has a score above 0 in ``text_scores`` (from :meth:`scan`)."""
        return self.column.rows.rows_of_many(np.flatnonzero(text_scores > 0))

    def gather(self, text_scores: Floats, codes: Rows) -> Floats:
        """The scores in ``text_scores`` (from :meth:`scan`) of each row's text."""
        present = codes >= 0
        scores = np.zeros(len(codes), dtype=np.float64)
        scores[present] = text_scores[codes[present]]
        return scores

    def exact(self, query: str | None, codes: Rows) -> Floats:
        """The strategy's own scores of rows: the scorer called once per distinct text."""
        scorer, texts, floor = SCORERS[self.options.scorer], self.column.texts, self.options.min_similarity
        scale = SCORER_SCALE[self.options.scorer]
        known: dict[int, float] = {-1: 0.0}
        scores = []
        for code in codes.tolist():
            if code not in known:
                known[code] = 0.0 if query is None else fuzzy_score(scorer(query, texts[code]), floor, scale)
            scores.append(known[code])
        return np.array(scores, dtype=np.float64)

    def _similarities(self, query: str, choices: npt.NDArray[np.object_], cutoff: float) -> Floats:
        if not len(choices):
            return np.empty(0, dtype=np.float64)
        workers = -1 if len(choices) >= _PARALLEL_CHOICES else 1
        scorer: Any = SCORERS[self.options.scorer]  # rapidfuzz's own scorer type, not expressible here
        native = cutoff * SCORER_SCALE[self.options.scorer] / 100  # cutoff is on 0–100
        matrix = process.cdist(
            [query], choices, scorer=scorer, score_cutoff=native, dtype=np.float64, workers=workers
        )
        return np.asarray(matrix[0], dtype=np.float64)

    def _from_raw(self, raw: Floats) -> Floats:
        scale = SCORER_SCALE[self.options.scorer]
        scores = raw / scale
        floor = self.options.min_similarity
        if floor > 0:
            near = np.flatnonzero(np.abs(scores - floor) <= _BOUNDARY)
            scores[scores < floor] = 0.0
            for i in near.tolist():
                scores[i] = fuzzy_score(float(raw[i]), floor, scale)
        return scores


def fuzzy_score(raw: float, min_similarity: float, scale: float = 100.0) -> float:
    """``strategies.fuzzy``'s score from the scorer's raw value (0–``scale``)."""
    similarity = round(raw / scale, 12)
    return 0.0 if similarity < min_similarity else similarity
