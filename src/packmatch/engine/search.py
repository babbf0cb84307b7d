"""Exact top-5 search over a :class:`ReferenceIndex`: the answer of a full scan, without the scan.

For one input row:

1. **Selective fields** (exact, numeric_range, date_range) name the only rows where they score above
   0. The union of those rows is the *pool*; every other row scores 0 on every selective field.
2. **Fuzzy fields, inside the pool.** Every pool row gets an underestimate of its confidence (its
   selective part plus lower bounds of its fuzzy scores, :mod:`.bounds`); the 5th best of them is a
   floor. The best rows are scored first; then every other row whose upper bound (selective part
   plus upper bounds of its fuzzy scores) still reaches the floor is scored, best bound first, in
   growing chunks, each with a rapidfuzz cutoff below which a row cannot reach the floor. The floor
   rises as rows are scored; the rows whose bound falls below it leave the pool unscored.
3. **Fuzzy fields, outside the pool.** Any other row can reach at most the fuzzy weights times the
   best upper bound of any text. Only if that reaches the floor are the column's distinct texts
   whose upper bound reaches the cutoff scored (``cdist`` with that cutoff).
4. **Exact ranking.** Confidences so far are float approximations, off by < 1e-12 (numpy sums and
   unrounded fuzzy scores). Every row within ``2·EPS`` of the 5th best is scored exactly — fuzzy
   fields by the scorer itself, confidences by :func:`plan.weighted_confidence` once per distinct
   score vector — and ranked by (−confidence, row position), as the full scan ranks.

Why nothing is lost: every value used as a floor is the 5th largest of underestimates of distinct
rows, so five rows really reach it (within EPS), and a row that cannot reach it loses to all five.
A row is left out only when an upper bound of its confidence is below the floor less ``2·EPS``:
unscored rows by their bounds, rows with a fuzzy score below the cutoff by that cutoff, rows
outside the pool by the fuzzy weights. The rows left are scored within EPS, so step 4's band holds
every row whose exact confidence reaches its floor. With fewer than five rows above 0 there is no
floor: nothing is left out and no cutoff is above ``min_similarity``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from packmatch.domain.models import DateRangeOptions, ExactOptions, FuzzyOptions, NumericRangeOptions
from packmatch.engine.arrays import EMPTY_ROWS, Bools, Floats, Rows
from packmatch.engine.bounds import QueryBound
from packmatch.engine.columns import ExactColumn, RangeColumn, TextColumn
from packmatch.engine.fields import DateField, ExactField, FuzzyField, NumericField
from packmatch.engine.index import ReferenceIndex
from packmatch.engine.normalise import normalise_text
from packmatch.engine.plan import MAX_CANDIDATES, Plan, PlannedField, weighted_confidence

__all__ = ["EPS", "Search"]

EPS = 1e-9  # bound on |approximate - exact| confidence; the real error is below 1e-12
_FIRST_CHUNK = 64  # pool rows scored in the first fuzzy round; each round scores 4× more

Selective = ExactField | NumericField | DateField


class _Query(NamedTuple):
    """A fuzzy field with the input row's normalised text and the bounds of its scores."""

    slot: int
    field: FuzzyField
    text: str
    bound: QueryBound | None


@dataclass(slots=True)
class _Pool:
    """Rows (positions, in no order) and their field scores, one column per field."""

    rows: Rows
    scores: Floats

    def take(self, keep: Rows) -> _Pool:
        return _Pool(self.rows[keep], self.scores[keep])


class Search:
    """Finds the positions of the best reference rows for input rows, under one plan.

    Cheap to create; one per thread (it keeps a scratch array). The index is shared and read-only.
    """

    def __init__(self, plan: Plan, index: ReferenceIndex) -> None:
        self._plan = plan
        self._fields = [_bind(field, index) for field in plan.fields]
        weights = np.array([field.weight for field in plan.fields], dtype=np.float64)
        self._weights = weights / weights.max() if len(weights) else weights
        self._total = float(self._weights.sum())
        self._pool_index = np.full(len(index), -1, dtype=np.int32)  # -1 between calls of _selective

    def top(
        self, values: Mapping[str, Any], excluded: Rows | None = None, allowed: Bools | None = None
    ) -> list[int]:
        """Positions of up to 5 rows with confidence > 0, best first, ties in row order; never one
        of the ``excluded`` positions (a reviewer rejected them), and only rows where ``allowed``
        (a mask over all positions, default: every row) is true: the search runs as if the other
        rows were not in the index."""
        if not self._fields:
            return []
        pool = self._selective(values)
        if excluded is not None:
            pool = pool.take(np.flatnonzero(~np.isin(pool.rows, excluded)))
        if allowed is not None:
            pool = pool.take(np.flatnonzero(allowed[pool.rows]))
        queries = self._queries(values)
        if queries:
            # Rows "inside" are left out of step 3; the excluded rows with them.
            inside = pool.rows if excluded is None else np.concatenate([pool.rows, excluded])
            pool, floor = self._fuzzy_inside(pool, queries)
            pool = self._fuzzy_outside(pool, inside, queries, floor, allowed)
        return self._rank(pool, queries)

    # --- step 1 --------------------------------------------------------------------------------

    def _selective(self, values: Mapping[str, Any]) -> _Pool:
        found = [
            (slot, *field.positives(values.get(planned.source)))
            for slot, (planned, field) in enumerate(zip(self._plan.fields, self._fields, strict=True))
            if not isinstance(field, FuzzyField)
        ]
        at = self._pool_index  # row position → pool index; a mark array avoids sorting the union
        parts, size = [], 0
        try:
            for _, hits, _ in found:
                fresh = hits[at[hits] < 0]
                at[fresh] = np.arange(size, size + len(fresh))
                parts.append(fresh)
                size += len(fresh)
            scores = np.zeros((size, len(self._fields)), dtype=np.float64)
            for slot, hits, field_scores in found:
                scores[at[hits], slot] = field_scores
        finally:
            for part in parts:
                at[part] = -1
        return _Pool(np.concatenate([*parts, EMPTY_ROWS]), scores)

    def _queries(self, values: Mapping[str, Any]) -> list[_Query]:
        queries = []
        for slot, (planned, field) in enumerate(zip(self._plan.fields, self._fields, strict=True)):
            text = normalise_text(values.get(planned.source))
            if isinstance(field, FuzzyField) and text is not None:
                queries.append(_Query(slot, field, text, field.bound(text)))
        return queries

    # --- step 2 --------------------------------------------------------------------------------

    def _fuzzy_inside(self, pool: _Pool, queries: list[_Query]) -> tuple[_Pool, float | None]:
        """Fuzzy scores of the pool rows that can still reach the top; the others leave the pool.

        Until a row is scored, its selective part plus lower bounds of its fuzzy scores stand in
        for its confidence: the 5th best of these underestimates is a floor already. The rows with
        the best of them are scored first; they usually lift the floor above most rows' reach.
        """
        codes = {q.slot: q.field.codes(pool.rows) for q in queries}
        known = pool.scores @ self._weights
        lower = [self._weights[q.slot] * q.field.lower(q.bound, codes[q.slot]) for q in queries]
        hopeful = known + sum(lower, np.zeros(len(known)))
        first = _largest(hopeful, _FIRST_CHUNK)
        leaders = _Leaders(hopeful / self._total, first)
        self._score_rows(pool, codes, first, queries, known, leaders)
        others, upper, bound = self._reachable(codes, queries, known, first, leaders.floor)
        order = np.argsort(-bound, kind="stable")
        done, size = 0, _FIRST_CHUNK
        while done < len(order) and (
            leaders.floor is None or bound[order[done]] >= self._scaled(leaders.floor)
        ):
            chunk = order[done : done + size]
            chunk_upper = {slot: u[chunk] for slot, u in upper.items()}
            self._score_rows(pool, codes, others[chunk], queries, known, leaders, chunk_upper)
            done, size = done + len(chunk), size * 4
        return pool.take(np.concatenate([first, others[order[:done]]])), leaders.floor

    def _reachable(
        self, codes: dict[int, Rows], queries: list[_Query], known: Floats, scored: Rows, floor: float | None
    ) -> tuple[Rows, dict[int, Floats], Floats]:
        """The other pool rows whose bound reaches ``floor``: their fuzzy upper bounds and bounds."""
        rest = np.ones(len(known), dtype=bool)
        rest[scored] = False
        if floor is not None:
            rest &= known + sum(self._weights[q.slot] for q in queries) >= self._scaled(floor)
        others = np.flatnonzero(rest)
        upper = {q.slot: q.field.upper(q.bound, codes[q.slot][others]) for q in queries}
        bound = known[others] + sum((self._weights[s] * u for s, u in upper.items()), np.zeros(len(others)))
        if floor is None:
            return others, upper, bound
        keep = np.flatnonzero(bound >= self._scaled(floor))
        return others[keep], {slot: u[keep] for slot, u in upper.items()}, bound[keep]

    def _score_rows(
        self,
        pool: _Pool,
        codes: dict[int, Rows],
        rows: Rows,
        queries: list[_Query],
        known: Floats,
        leaders: _Leaders,
        upper: dict[int, Floats] | None = None,
    ) -> None:
        """Score the fuzzy fields of pool ``rows``, skipping what cannot lift a row to the floor."""
        if upper is None:
            upper = {q.slot: q.field.upper(q.bound, codes[q.slot][rows]) for q in queries}
        target = -np.inf if leaders.floor is None else self._scaled(leaders.floor)
        remaining = sum((self._weights[q.slot] * upper[q.slot] for q in queries), np.zeros(len(rows)))
        partial = known[rows]
        for query in queries:
            weight = self._weights[query.slot]
            remaining -= weight * upper[query.slot]
            cutoff = query.field.cutoff(
                float(np.min((target - partial - remaining) / weight, initial=np.inf))
            )
            scores = query.field.scores(query.text, codes[query.slot][rows], cutoff, upper[query.slot])
            pool.scores[rows, query.slot] = scores
            partial = partial + weight * scores
        leaders.raise_to(rows, partial / self._total)

    # --- step 3 --------------------------------------------------------------------------------

    def _fuzzy_outside(
        self, pool: _Pool, inside: Rows, queries: list[_Query], floor: float | None, allowed: Bools | None
    ) -> _Pool:
        """The pool plus the (allowed) rows outside step 1's pool whose fuzzy scores can reach the top.

        The texts' upper bounds are over the whole column: for a subset of rows they still bound."""
        weights = [float(self._weights[q.slot]) for q in queries]
        target = 0.0 if floor is None else self._scaled(floor)
        if floor is not None and sum(weights) < target:
            return pool
        text_upper = [q.field.text_upper(q.bound) for q in queries]
        reaches = [
            w * (1.0 if u is None else float(u.max(initial=0.0)))
            for w, u in zip(weights, text_upper, strict=True)
        ]
        if floor is not None and sum(reaches) < target:
            return pool
        needs = [(target - (sum(reaches) - r)) / w for w, r in zip(weights, reaches, strict=True)]
        lead = int(np.argmax(needs))
        scanned = [lead] if needs[lead] > 0 else list(range(len(queries)))
        text_scores = {
            i: queries[i].field.scan(queries[i].text, queries[i].field.cutoff(needs[i]), text_upper[i])
            for i in scanned
        }
        rows = _union([queries[i].field.rows_scoring(text_scores[i]) for i in scanned])
        rows = rows[~np.isin(rows, inside, kind="table")] if len(inside) else rows
        rows = rows if allowed is None else rows[allowed[rows]]
        scores = np.zeros((len(rows), len(self._fields)), dtype=np.float64)
        for i, query in enumerate(queries):
            codes = query.field.codes(rows)
            if i in text_scores:
                scores[:, query.slot] = query.field.gather(text_scores[i], codes)
            else:
                cutoff, upper = query.field.cutoff(needs[i]), query.field.upper(query.bound, codes)
                scores[:, query.slot] = query.field.scores(query.text, codes, cutoff, upper)
        return _Pool(np.concatenate([pool.rows, rows]), np.concatenate([pool.scores, scores]))

    # --- step 4 --------------------------------------------------------------------------------

    def _rank(self, pool: _Pool, queries: list[_Query]) -> list[int]:
        approximate = pool.scores @ self._weights / self._total
        positive = np.flatnonzero(approximate > 0)
        floor = _fifth(approximate[positive])
        band = positive if floor is None else positive[approximate[positive] >= floor - 2 * EPS]
        rows, scores = pool.rows[band], pool.scores[band]
        for query in queries:
            scores[:, query.slot] = query.field.exact(query.text, query.field.codes(rows))
        exact = self._confidences(scores)
        keep = np.flatnonzero(exact > 0)
        ranked = keep[np.lexsort((rows[keep], -exact[keep]))][:MAX_CANDIDATES]
        return [int(row) for row in rows[ranked]]

    def _confidences(self, scores: Floats) -> Floats:
        """Exact confidences, computed once per distinct vector of field scores."""
        known: dict[tuple[float, ...], float] = {}
        confidences = []
        for vector in map(tuple, scores.tolist()):
            if vector not in known:
                known[vector] = weighted_confidence(self._plan, vector) or 0.0
            confidences.append(known[vector])
        return np.array(confidences, dtype=np.float64)

    def _scaled(self, floor: float) -> float:
        """The weighted sum (in normalised weights) below which a row cannot reach ``floor``."""
        return (floor - 2 * EPS) * self._total


def _fifth(confidences: Floats) -> float | None:
    """The 5th largest confidence above 0, or None if fewer than five are above 0."""
    positive = confidences[confidences > 0]
    if len(positive) < MAX_CANDIDATES:
        return None
    return float(np.partition(positive, len(positive) - MAX_CANDIDATES)[len(positive) - MAX_CANDIDATES])


class _Leaders:
    """Approximate confidences of the pool rows, which only rise, and the rows of the top five."""

    def __init__(self, confidences: Floats, best: Rows) -> None:
        """``best`` holds the indices of (at least) the five largest ``confidences``."""
        self.confidences = confidences
        self.top = best[_largest(confidences[best], MAX_CANDIDATES)]
        self.floor = _fifth(confidences[self.top])

    def raise_to(self, rows: Rows, confidences: Floats) -> None:
        """Rows' new confidences; the new top five are among the old ones and these rows."""
        self.confidences[rows] = np.maximum(self.confidences[rows], confidences)
        contenders = np.concatenate([self.top[~np.isin(self.top, rows)], rows])
        self.top = contenders[_largest(self.confidences[contenders], MAX_CANDIDATES)]
        self.floor = _fifth(self.confidences[self.top])


def _union(rows: list[Rows]) -> Rows:
    """The distinct rows of several arrays, ascending."""
    if not rows:
        return EMPTY_ROWS
    merged = np.sort(np.concatenate(rows))
    distinct = np.ones(len(merged), dtype=bool)
    np.not_equal(merged[1:], merged[:-1], out=distinct[1:])
    return merged[distinct]


def _largest(values: Floats, count: int) -> Rows:
    """Indices of the ``count`` largest values (all of them if fewer), in no particular order."""
    if len(values) <= count:
        return np.arange(len(values))
    return np.argpartition(-values, count)[:count].astype(np.int64)


def _bind(planned: PlannedField, index: ReferenceIndex) -> Selective | FuzzyField:
    column, options = index.column(planned.target, planned.strategy, planned.options), planned.options
    if isinstance(column, ExactColumn) and isinstance(options, ExactOptions):
        return ExactField(column, options)
    if isinstance(column, TextColumn) and isinstance(options, FuzzyOptions):
        return FuzzyField(column, options)
    if isinstance(column, RangeColumn) and isinstance(options, NumericRangeOptions):
        return NumericField(column, options)
    if isinstance(column, RangeColumn) and isinstance(options, DateRangeOptions):
        return DateField(column, options)
    raise TypeError(f"no search for {planned.strategy} over a {type(column).__name__}")
