"""Properties of the engine, and the Matcher checked against a brute-force full scan."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from packmatch.domain.models import (
    OPTIONS_BY_STRATEGY,
    Candidate,
    FieldMapping,
    InputRow,
    MatchingConfig,
    ReferenceRow,
    RowMatch,
    Strategy,
)
from packmatch.engine.brute import FullScanMatcher
from packmatch.engine.scoring import MAX_CANDIDATES, Matcher, score_row
from packmatch.engine.strategies import STRATEGIES

MakeConfig = Callable[..., MatchingConfig]

PROPERTIES = settings(max_examples=200, deadline=None)

FIELDS = ("a", "b", "c")

# Few distinct values that several strategies can read, so that ties and near misses are common.
CELLS = st.one_of(
    st.sampled_from(
        [
            None,
            "",
            "ACME",
            "acme ltd",
            " Acme  Ltd ",
            "4250",
            "4,250.00",
            4250,
            4251,
            4300.5,
            "2024-09-14",
            "2024-14-09",
            "2024-09-04",
            "2024-04-09",
            "ACNE",
            "CAME",
            "2024-09-15T10:00:00Z",
            "14.09.2024",
            date(2024, 9, 16),
        ]
    ),
    st.integers(-2, 2),
)
ANY_CELL = st.one_of(CELLS, st.text(max_size=8), st.floats(), st.booleans())

OPTIONS = {
    Strategy.EXACT: st.fixed_dictionaries({}, optional={"max_edits": st.sampled_from([0, 1, 2])}),
    Strategy.FUZZY: st.fixed_dictionaries(
        {
            "min_similarity": st.sampled_from([0.0, 0.5, 0.9]),
            "scorer": st.sampled_from(
                [
                    "token_set_ratio",
                    "token_sort_ratio",
                    "ratio",
                    "partial_ratio",
                    "WRatio",
                    "jaro_winkler",
                    "levenshtein",
                ]
            ),
        }
    ),
    Strategy.NUMERIC_RANGE: st.fixed_dictionaries(
        {
            "tolerance_abs": st.sampled_from([0.0, 0.5, 1.0, 100.0]),
            "tolerance_pct": st.sampled_from([0.0, 2.0, 50.0]),
        }
    ),
    Strategy.DATE_RANGE: st.fixed_dictionaries(
        {
            "tolerance_days": st.sampled_from([0.0, 1.0, 3.0]),
            "formats": st.sampled_from([[], ["%d.%m.%Y"]]),
        },
        optional={"allow_day_month_swap": st.booleans()},
    ),
}


@st.composite
def mappings(draw: st.DrawFn) -> FieldMapping:
    strategy = draw(st.sampled_from(list(Strategy)))
    source = draw(st.sampled_from(FIELDS))
    return FieldMapping(
        source=source,
        target=draw(st.one_of(st.just(source), st.sampled_from(FIELDS))),
        strategy=strategy,
        weight=draw(st.sampled_from([0.1, 0.2, 0.5, 1.0, 3.0])),
        options=draw(OPTIONS[strategy]),
        missing=draw(st.sampled_from(["mismatch", "ignore"])),
    )


MAPPINGS = st.lists(mappings(), min_size=1, max_size=4)
VALUES = st.fixed_dictionaries(dict.fromkeys(FIELDS, CELLS))
REFERENCE_ROWS = st.lists(VALUES, max_size=12).map(
    lambda rows: [ReferenceRow(f"r{i}", values) for i, values in enumerate(rows)]
)
THRESHOLDS = st.one_of(st.sampled_from([0.0, 0.5, 0.85, 1.0]), st.floats(0.0, 1.0))


def brute_force(
    mappings: list[FieldMapping],
    threshold: float,
    rows: list[ReferenceRow],
    values: dict[str, Any],
) -> RowMatch:
    """SPEC §4 read literally: score every row, sort by (-confidence, index), keep 5 > 0."""
    scored = [(*score_row(mappings, values, row), i, row.id) for i, row in enumerate(rows)]
    ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[2]))
    candidates = tuple(
        Candidate(reference_row_id=row_id, confidence=confidence, evidence=evidence)
        for confidence, evidence, _, row_id in ranked[:5]
    )
    best = candidates[0] if candidates else None
    matched = best is not None and best.confidence >= threshold
    return RowMatch(
        matched=matched,
        matched_reference_row_id=best.reference_row_id if best and matched else None,
        confidence=best.confidence if best else 0.0,
        candidates=candidates,
    )


def run_matcher(
    make_config: MakeConfig,
    mappings: list[FieldMapping],
    threshold: float,
    rows: list[ReferenceRow],
    values: dict[str, Any],
) -> RowMatch:
    matcher = Matcher(make_config(*mappings, threshold=threshold), rows)
    return matcher.match(InputRow(document_id="doc", values=values))


@PROPERTIES
@given(st.sampled_from(list(Strategy)), st.data(), ANY_CELL, ANY_CELL)
def test_every_strategy_scores_in_unit_interval(
    strategy: Strategy, data: st.DataObject, source: Any, reference: Any
) -> None:
    options = OPTIONS_BY_STRATEGY[strategy].model_validate(data.draw(OPTIONS[strategy]))
    result = STRATEGIES[strategy](source, reference, options)
    assert 0.0 <= result.score <= 1.0


@PROPERTIES
@given(st.sampled_from(list(Strategy)), st.data(), ANY_CELL, ANY_CELL)
def test_a_positive_score_needs_no_reason(
    strategy: Strategy, data: st.DataObject, source: Any, reference: Any
) -> None:
    options = OPTIONS_BY_STRATEGY[strategy].model_validate(data.draw(OPTIONS[strategy]))
    result = STRATEGIES[strategy](source, reference, options)
    assert result.score == 0.0 or result.reason is None


@PROPERTIES
@given(MAPPINGS, VALUES, VALUES)
def test_row_confidence_is_in_unit_interval(
    mappings: list[FieldMapping], values: dict[str, Any], reference: dict[str, Any]
) -> None:
    confidence, evidence = score_row(mappings, values, ReferenceRow("r", reference))
    assert 0.0 <= confidence <= 1.0
    assert all(0.0 <= e.score <= 1.0 for e in evidence.values())


@PROPERTIES
@given(MAPPINGS, THRESHOLDS, REFERENCE_ROWS, VALUES)
def test_candidates_are_at_most_five_positive_and_best_first(
    make_config: MakeConfig,
    mappings: list[FieldMapping],
    threshold: float,
    rows: list[ReferenceRow],
    values: dict[str, Any],
) -> None:
    result = run_matcher(make_config, mappings, threshold, rows, values)
    order = {row.id: i for i, row in enumerate(rows)}
    ranks = [(-c.confidence, order[c.reference_row_id]) for c in result.candidates]
    assert len(result.candidates) <= MAX_CANDIDATES
    assert all(c.confidence > 0 for c in result.candidates)
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)


@PROPERTIES
@given(MAPPINGS, THRESHOLDS, REFERENCE_ROWS, VALUES)
def test_matched_exactly_when_best_confidence_reaches_threshold(
    make_config: MakeConfig,
    mappings: list[FieldMapping],
    threshold: float,
    rows: list[ReferenceRow],
    values: dict[str, Any],
) -> None:
    result = run_matcher(make_config, mappings, threshold, rows, values)
    reaches = bool(result.candidates) and result.confidence >= threshold
    assert result.matched is reaches
    best_id = result.candidates[0].reference_row_id if reaches else None
    assert result.matched_reference_row_id == best_id


@PROPERTIES
@given(MAPPINGS, THRESHOLDS, REFERENCE_ROWS, VALUES)
def test_matcher_equals_a_brute_force_full_scan(
    make_config: MakeConfig,
    mappings: list[FieldMapping],
    threshold: float,
    rows: list[ReferenceRow],
    values: dict[str, Any],
) -> None:
    expected = brute_force(mappings, threshold, rows, values)
    assert run_matcher(make_config, mappings, threshold, rows, values) == expected


@PROPERTIES
@given(MAPPINGS, THRESHOLDS, REFERENCE_ROWS, VALUES, st.data())
def test_matcher_with_exclusions_equals_a_full_scan_without_those_rows(
    make_config: MakeConfig,
    mappings: list[FieldMapping],
    threshold: float,
    rows: list[ReferenceRow],
    values: dict[str, Any],
    data: st.DataObject,
) -> None:
    """Rows a reviewer rejected are left out exactly as if the dataset did not have them."""
    ids = [row.id for row in rows]
    excluded = frozenset(data.draw(st.lists(st.sampled_from(ids or ["r0"]), max_size=4)))
    kept = [row for row in rows if row.id not in excluded]
    expected = brute_force(mappings, threshold, kept, values)
    matcher = Matcher(make_config(*mappings, threshold=threshold), rows)
    assert matcher.match(InputRow(document_id="doc", values=values), excluded) == expected
    full_scan = FullScanMatcher(make_config(*mappings, threshold=threshold), rows)
    assert full_scan.match(InputRow(document_id="doc", values=values), excluded) == expected
