"""The indexed Matcher equals a brute-force full scan: ids, order, confidences and evidence.

The datasets are small but crowded — few distinct values, so ties, near misses, duplicates and
rows that only one field can reach are common — and every strategy, option and odd value
(missing, blank, unparseable, huge, of the wrong type) appears in every column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from packmatch.domain.models import (
    Candidate,
    FieldMapping,
    InputRow,
    MatchingConfig,
    ReferenceRow,
    RowMatch,
    Strategy,
)
from packmatch.engine import fields, search
from packmatch.engine.brute import FullScanMatcher
from packmatch.engine.index import ReferenceIndex
from packmatch.engine.scoring import Matcher, score_row

MakeConfig = Callable[..., MatchingConfig]

PROPERTIES = settings(max_examples=100, deadline=None)

FIELDS = ("a", "b", "c", "d")

TEXTS = [
    "ACME",
    "acme ltd",
    " Acme  Ltd ",
    "Acme Logistics GmbH",
    "logistics acme",
    "Blue Ocean Shipping",
    "blue-ocean shipping",
    "ocean blue",
    "ACNE",  # one substitution from "acme"
    "came",  # one transposition from "acme"
    "acme ltf",
    "acmes",  # one insertion
    "acm",  # one deletion
    "4205",  # a transposition from "4250"
    "Ａｃｍｅ",  # fullwidth: NFKC makes it "acme"
    "4250",
    "4,250.00",
    "USD 4,300",
    "€ -12.5",
    "1e5",
]
NUMBERS = [
    0,
    -0.0,
    1,
    -1,
    2,
    4250,
    4251,
    4300.5,
    4250.0,
    -12.5,
    1e300,
    -1e300,
    10**30,
    0.1,
    0.30000000000000004,
]
DATES = [
    *("2024-09-14", "2024-09-15T10:00:00Z", "14.09.2024", "2024-09-17", "2024-13-01", "2023-09-14"),
    *("2024-04-09", "2024-09-04", "04.09.2024", "2024-09-05", "2024-03-09", "2024-09-09"),  # swaps
]
ODD = [None, "", "   ", True, False, date(2024, 9, 16), datetime(2024, 9, 13, 23, 59), ["x"], {"k": 1}]

CELLS = st.one_of(
    st.sampled_from(TEXTS),
    st.sampled_from(NUMBERS),
    st.sampled_from(DATES),
    st.sampled_from(ODD),
    st.integers(-3, 3),
    st.floats(-5000, 5000).map(lambda x: round(x, 1)),
    st.text(alphabet="ab 1", max_size=5),
)

OPTIONS = {
    Strategy.EXACT: st.fixed_dictionaries({}, optional={"max_edits": st.sampled_from([0, 1, 2])}),
    Strategy.FUZZY: st.fixed_dictionaries(
        {
            "min_similarity": st.sampled_from([0.0, 0.0, 0.3, 0.5, 0.7142857142857143, 0.9, 1.0]),
            "scorer": st.sampled_from(
                ["token_set_ratio", "token_sort_ratio", "ratio", "partial_ratio", "WRatio"]
            ),
        }
    ),
    Strategy.NUMERIC_RANGE: st.fixed_dictionaries(
        {
            "tolerance_abs": st.sampled_from([0.0, 0.5, 1.0, 100.0, 1e6]),
            "tolerance_pct": st.sampled_from(
                [0.0, 1.0, 2.0, 49.0, 50.0, 99.0, 100.0]
            ),  # ≤ 100 since issue 13
        }
    ),
    Strategy.DATE_RANGE: st.fixed_dictionaries(
        {
            "tolerance_days": st.sampled_from([0.0, 1.0, 3.0, 2.5, 400.0]),
            "formats": st.sampled_from([[], ["%d.%m.%Y"]]),
        },
        optional={"allow_day_month_swap": st.booleans()},
    ),
}


# Few values that several strategies read, for crowded pools: many rows score on every field.
DENSE = st.sampled_from(
    [
        *("acme", "acme ltd", "Acme Logistics", "blue ocean", "amce", "acne ltd", "acm"),
        *(4250, 4251, "4,250.00", 4300.5, "4205"),
        *("2024-09-14", "2024-09-15", "14.09.2024", None, "2024-04-09", "2024-09-04", "2024-09-06"),
    ]
)
SELECTIVE = [Strategy.EXACT, Strategy.NUMERIC_RANGE, Strategy.DATE_RANGE]


@st.composite
def mappings(draw: st.DrawFn, strategies: list[Strategy] | None = None) -> FieldMapping:
    strategy = draw(st.sampled_from(strategies or list(Strategy)))
    source = draw(st.sampled_from(FIELDS))
    return FieldMapping(
        source=source,
        target=draw(st.one_of(st.just(source), st.sampled_from(FIELDS))),
        strategy=strategy,
        weight=draw(st.sampled_from([0.1, 0.2, 0.3, 0.5, 1.0, 3.0, 1e-3])),
        options=draw(OPTIONS[strategy]),
        missing=draw(st.sampled_from(["mismatch", "ignore"])),
    )


def values_from(cells: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(FIELDS, cells))


MAPPINGS = st.lists(mappings(), min_size=1, max_size=4)
THRESHOLDS = st.sampled_from([0.0, 0.5, 0.85, 1.0])


@st.composite
def mixed_mappings(draw: st.DrawFn) -> list[FieldMapping]:
    """At least one selective and one fuzzy field: pools to prune inside and rows to scan outside."""
    chosen = draw(st.lists(mappings(SELECTIVE), min_size=1, max_size=2))
    chosen += draw(st.lists(mappings([Strategy.FUZZY]), min_size=1, max_size=2))
    return draw(st.permutations(chosen))


@st.composite
def datasets(
    draw: st.DrawFn, min_rows: int = 0, max_rows: int = 40, cells: st.SearchStrategy[Any] = CELLS
) -> list[ReferenceRow]:
    """Rows drawn from a handful of distinct rows, so duplicates and ties are common."""
    distinct = draw(st.lists(values_from(cells), min_size=1, max_size=8))
    choice = st.sampled_from(distinct) | values_from(cells)
    rows = draw(st.lists(choice, min_size=min_rows, max_size=max_rows))
    return [ReferenceRow(f"r{i}", dict(values)) for i, values in enumerate(rows)]


def brute_force(
    mappings: list[FieldMapping], threshold: float, rows: list[ReferenceRow], values: dict[str, Any]
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


@contextmanager
def small_chunks() -> Iterator[None]:
    """Score one pool row per fuzzy round, use rapidfuzz's thread pool for any list and filter
    any texts before max_edits compares them."""
    with (
        mock.patch.object(search, "_FIRST_CHUNK", 1),
        mock.patch.object(fields, "_PARALLEL_CHOICES", 2),
        mock.patch.object(fields, "_FILTER_FROM", 1),
    ):
        yield


def assert_equal_to_brute_force(
    config: MatchingConfig, rows: list[ReferenceRow], inputs: list[dict[str, Any]]
) -> None:
    mappings = list(config.field_mappings)
    matcher = Matcher(config, ReferenceIndex.build(rows, mappings))
    for values in inputs:
        expected = brute_force(mappings, config.threshold, rows, values)
        assert matcher.match(InputRow(document_id="doc", values=values)) == expected, values


@PROPERTIES
@given(MAPPINGS, THRESHOLDS, datasets(), st.lists(values_from(CELLS), min_size=1, max_size=4))
def test_indexed_matcher_equals_a_brute_force_full_scan(
    make_config: MakeConfig,
    mappings: list[FieldMapping],
    threshold: float,
    rows: list[ReferenceRow],
    inputs: list[dict[str, Any]],
) -> None:
    assert_equal_to_brute_force(make_config(*mappings, threshold=threshold), rows, inputs)


@PROPERTIES
@given(MAPPINGS, datasets(), st.lists(values_from(CELLS), min_size=1, max_size=3))
def test_indexed_matcher_equals_a_full_scan_when_pruning_step_by_step(
    make_config: MakeConfig,
    mappings: list[FieldMapping],
    rows: list[ReferenceRow],
    inputs: list[dict[str, Any]],
) -> None:
    with small_chunks():
        assert_equal_to_brute_force(make_config(*mappings), rows, inputs)


@PROPERTIES
@given(
    mixed_mappings(),
    datasets(min_rows=20, max_rows=80, cells=DENSE),
    st.lists(values_from(DENSE), min_size=1, max_size=3),
)
def test_crowded_pools_with_selective_and_fuzzy_fields_equal_a_full_scan(
    make_config: MakeConfig,
    mappings: list[FieldMapping],
    rows: list[ReferenceRow],
    inputs: list[dict[str, Any]],
) -> None:
    with small_chunks():
        assert_equal_to_brute_force(make_config(*mappings), rows, inputs)


@PROPERTIES
@given(st.data())
def test_inputs_copied_from_reference_rows_equal_a_full_scan(
    make_config: MakeConfig, data: st.DataObject
) -> None:
    """Inputs equal to (or a field away from) reference rows that recur: a strong top 5, a prunable rest."""
    mappings = data.draw(st.one_of(MAPPINGS, mixed_mappings()))
    rows = data.draw(datasets(min_rows=1, max_rows=60, cells=st.one_of(CELLS, DENSE)))
    picked = data.draw(st.sampled_from(rows))
    for _ in range(data.draw(st.integers(0, 6))):
        at = data.draw(st.integers(0, len(rows)))
        rows.insert(at, ReferenceRow(f"copy{at}", dict(picked.values)))
    rows = [ReferenceRow(f"r{i}", row.values) for i, row in enumerate(rows)]
    copied = {m.source: picked.values.get(m.target) for m in mappings}
    inputs = [copied, copied | data.draw(values_from(CELLS))]
    with small_chunks():
        assert_equal_to_brute_force(make_config(*mappings), rows, inputs)


@PROPERTIES
@given(MAPPINGS, THRESHOLDS, datasets(max_rows=12), values_from(CELLS))
def test_full_scan_matcher_equals_the_brute_force_of_the_tests(
    make_config: MakeConfig,
    mappings: list[FieldMapping],
    threshold: float,
    rows: list[ReferenceRow],
    values: dict[str, Any],
) -> None:
    matcher = FullScanMatcher(make_config(*mappings, threshold=threshold), rows)
    expected = brute_force(mappings, threshold, rows, values)
    assert matcher.match(InputRow(document_id="doc", values=values)) == expected
