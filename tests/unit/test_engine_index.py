"""The reference index: its columns, its vectorised scores (bit-for-bit the strategies') and its bounds."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz import fuzz

from packmatch.domain.models import (
    DateRangeOptions,
    ExactOptions,
    FieldMapping,
    FuzzyOptions,
    InputRow,
    MatchingConfig,
    NumericRangeOptions,
    ReferenceRow,
)
from packmatch.engine import fields
from packmatch.engine.arrays import Postings
from packmatch.engine.brute import FullScanMatcher
from packmatch.engine.columns import build_dates, build_exact
from packmatch.engine.fields import (
    DateField,
    ExactField,
    fuzzy_score,
    numeric_reach,
    numeric_scores,
    range_scores,
)
from packmatch.engine.index import ReferenceIndex, signature
from packmatch.engine.normalise import normalise_text
from packmatch.engine.scoring import Matcher
from packmatch.engine.strategies import date_range, exact, fuzzy, numeric_range

MakeMapping = Callable[..., FieldMapping]
MakeConfig = Callable[..., MatchingConfig]

PROPERTIES = settings(max_examples=200, deadline=None)

FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(-1e4, 1e4),
    st.sampled_from([0.0, -0.0, 1e-12, 5e-13, 1.0, 100.0, 102.0, 98.0, 1e308, -1e308]),
)
NUMERIC_OPTIONS = st.builds(
    NumericRangeOptions,
    # the bounds of a config (issue 13): tolerance_abs ≤ 1e15, tolerance_pct ≤ 100
    tolerance_abs=st.one_of(st.sampled_from([0.0, 0.5, 1.0, 2.0, 1e15]), st.floats(0, 1e6)),
    tolerance_pct=st.one_of(st.sampled_from([0.0, 1.0, 2.0, 49.9, 50.0, 100.0]), st.floats(0, 100)),
)


# --- vectorised scores equal the strategies ------------------------------------------------------


@PROPERTIES
@given(FLOATS, st.lists(FLOATS, min_size=1, max_size=20), NUMERIC_OPTIONS)
def test_numeric_scores_are_bit_for_bit_the_strategys(
    source: float, references: list[float], options: NumericRangeOptions
) -> None:
    vectorised = numeric_scores(source, np.array(references, dtype=np.float64), options)
    expected = [numeric_range(source, reference, options).score for reference in references]
    assert vectorised.tolist() == expected


@PROPERTIES
@given(FLOATS, FLOATS, NUMERIC_OPTIONS)
def test_numeric_reach_bounds_every_row_that_scores(
    source: float, reference: float, options: NumericRangeOptions
) -> None:
    if numeric_range(source, reference, options).score > 0:
        assert abs(source - reference) <= numeric_reach(source, options)


@PROPERTIES
@given(
    st.integers(700_000, 800_000),
    st.lists(st.integers(700_000, 800_000), min_size=1, max_size=20),
    st.one_of(st.sampled_from([0.0, 1.0, 2.5, 3.0]), st.floats(0, 3650)),
)
def test_date_scores_are_bit_for_bit_the_strategys(
    source: int, references: list[int], tolerance: float
) -> None:
    options = DateRangeOptions(tolerance_days=tolerance)
    days = np.abs(float(source) - np.array(references, dtype=np.float64))
    with np.errstate(all="ignore"):
        vectorised = range_scores(days, tolerance, 0.0)
    expected = [date_range(date.fromordinal(source), date.fromordinal(r), options).score for r in references]
    assert vectorised.tolist() == expected


@PROPERTIES
@given(st.text(max_size=12), st.text(max_size=12), st.sampled_from([0.0, 0.3, 0.5, 2 / 3, 1.0]))
def test_fuzzy_score_from_a_raw_value_is_the_strategys(source: str, reference: str, floor: float) -> None:
    options = FuzzyOptions(min_similarity=floor)
    left, right = normalise_text(source), normalise_text(reference)
    if left is None or right is None:
        return
    raw = fuzz.token_set_ratio(left, right)
    assert fuzzy_score(raw, floor) == fuzzy(source, reference, options).score


# --- columns -----------------------------------------------------------------------------------


def test_postings_list_the_rows_of_each_key_in_row_order() -> None:
    postings = Postings.group(np.array([2, -1, 0, 2, 0, 1], dtype=np.int64), 3)
    assert [postings.rows_of(k).tolist() for k in range(3)] == [[2, 4], [5], [0, 3]]
    assert postings.rows_of_many(np.array([2, 1], dtype=np.int64)).tolist() == [0, 3, 5]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (4250, [0, 1, 3]),  # 4250 = "4,250.00" = 4250.0 by value
        ("4250", [0, 1, 3]),
        ("ACME", [2]),  # by normalised text
        ("nope", []),
        (None, []),
        ("  ", []),
    ],
)
def test_exact_field_finds_the_rows_exact_scores_one(source: Any, expected: list[int]) -> None:
    values = [4250, "4,250.00", " acme ", 4250.0, None, "", 4251]
    rows, scores = ExactField(build_exact(values), ExactOptions()).positives(source)
    assert rows.tolist() == expected
    assert rows.tolist() == [i for i, v in enumerate(values) if exact(source, v, ExactOptions()).score == 1]
    assert scores.tolist() == [1.0] * len(expected)


@pytest.mark.parametrize("tolerance_days", [0.0, 2.0, 40.0])
@pytest.mark.parametrize("source", ["2024-04-09", "2024-09-04", "04.09.2024", "2024-09-12", "2024-12-12", ""])
def test_date_field_with_day_month_swap_scores_the_rows_date_range_scores(
    source: str, tolerance_days: float
) -> None:
    values = ["2024-09-04", "2024-04-09", "2024-04-10", "2024-09-05", "2024-12-09", "2024-09-12", None, "x"]
    options = DateRangeOptions(tolerance_days=tolerance_days, allow_day_month_swap=True, formats=["%d.%m.%Y"])
    rows, scores = DateField(build_dates(values, options.formats), options).positives(source)
    found = dict(zip(rows.tolist(), scores.tolist(), strict=True))
    expected = {i: date_range(source, v, options).score for i, v in enumerate(values)}
    assert found == {i: score for i, score in expected.items() if score > 0}


@pytest.mark.parametrize("filter_from", [1, 1000])
@pytest.mark.parametrize("max_edits", [1, 2])
@pytest.mark.parametrize(
    "source", [4250, "4250", "acme", "amce", "cmea", "4205", "42", "acmee", "xacme", None]
)
def test_exact_field_with_max_edits_scores_the_rows_exact_scores(
    source: Any, max_edits: int, filter_from: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fields, "_FILTER_FROM", filter_from)
    values = [
        4250,
        "4,250.00",
        " acme ",
        4250.0,
        None,
        "",
        4251,
        "ACNE",
        "came",
        "425",
        "4,205",
        "cmae",
        "acm",
    ]
    options = ExactOptions(max_edits=max_edits)
    rows, scores = ExactField(build_exact(values), options).positives(source)
    found = dict(zip(rows.tolist(), scores.tolist(), strict=True))
    expected = {i: exact(source, v, options).score for i, v in enumerate(values)}
    assert found == {i: score for i, score in expected.items() if score > 0}


# --- the index ---------------------------------------------------------------------------------


def test_configs_that_read_columns_the_same_way_share_a_signature(make_mapping: MakeMapping) -> None:
    first = [make_mapping("x", "fuzzy", target="name", weight=0.3), make_mapping("y", "numeric_range")]
    second = [
        make_mapping("y", "numeric_range", weight=2, tolerance_pct=5),
        make_mapping("other", "fuzzy", target="name", scorer="ratio", min_similarity=0.5),
    ]
    assert signature(first) == signature(second)


def test_date_formats_are_part_of_the_signature(make_mapping: MakeMapping) -> None:
    iso = [make_mapping("d", "date_range")]
    dotted = [make_mapping("d", "date_range", formats=["%d.%m.%Y"])]
    assert signature(iso) != signature(dotted)


def test_an_index_keeps_ids_and_only_the_columns_it_reads(make_mapping: MakeMapping) -> None:
    rows = [ReferenceRow("r1", {"a": "x", "b": 1, "unused": "big"}), ReferenceRow("r2", {"b": 2})]
    index = ReferenceIndex.build(rows, [make_mapping("a"), make_mapping("b", "numeric_range")])
    assert len(index) == 2
    assert index.row(0) == ReferenceRow("r1", {"a": "x", "b": 1})
    assert index.row(1) == ReferenceRow("r2", {"a": None, "b": 2})
    assert index.nbytes > 0


def test_a_matcher_refuses_an_index_built_for_other_mappings(
    make_mapping: MakeMapping, make_config: MakeConfig
) -> None:
    index = ReferenceIndex.build([ReferenceRow("r1", {"a": "x"})], [make_mapping("a")])
    with pytest.raises(KeyError, match="built for other mappings"):
        Matcher(make_config(make_mapping("a", "fuzzy")), index)


def test_a_matcher_shares_a_prebuilt_index(make_mapping: MakeMapping, make_config: MakeConfig) -> None:
    rows = [ReferenceRow("r1", {"a": "acme"}), ReferenceRow("r2", {"a": "acme ltd"})]
    config = make_config(make_mapping("a", "fuzzy"), threshold=0.0)
    index = ReferenceIndex.build(rows, config.field_mappings)
    row = InputRow(document_id="d", values={"a": "ACME"})
    assert Matcher(config, index).match(row) == Matcher(config, rows).match(row)


def test_a_config_without_mappings_finds_no_candidate(make_config: MakeConfig) -> None:
    result = Matcher(make_config(), [ReferenceRow("r1", {"a": 1})]).match(
        InputRow(document_id="d", values={})
    )
    assert (result.matched, result.candidates) == (False, ())


# --- a medium-sized dataset: several pruning rounds, thousands of rows --------------------------

NAMES = ["acme ltd", "acme logistics", "blue ocean shipping", "nordic line", "red sea cargo", "ACME"]


def medium_rows(count: int, seed: int) -> list[ReferenceRow]:
    rng = random.Random(seed)
    return [
        ReferenceRow(
            f"r{i}",
            {
                "key": f"K{rng.randint(0, count // 3)}",
                "name": rng.choice(NAMES) + rng.choice(["", " gmbh", " inc"]),
                "amount": rng.choice([round(rng.uniform(90, 110), 2), f"{rng.randint(90, 110):,}.00", None]),
                "day": f"2024-09-{rng.randint(1, 28):02d}",
            },
        )
        for i in range(count)
    ]


@pytest.mark.parametrize(
    "shape",
    [
        [
            ("key", "exact", 0.5, {}),
            ("name", "fuzzy", 0.2, {}),
            ("amount", "numeric_range", 0.2, {"tolerance_pct": 2}),
            ("day", "date_range", 0.1, {"tolerance_days": 3}),
        ],
        [
            ("name", "fuzzy", 0.6, {"min_similarity": 0.5}),
            ("amount", "numeric_range", 0.4, {"tolerance_abs": 1}),
        ],
        [
            ("amount", "numeric_range", 0.5, {"tolerance_pct": 1}),
            ("day", "date_range", 0.5, {"tolerance_days": 2}),
        ],
        [("name", "fuzzy", 1.0, {"scorer": "WRatio"}), ("name", "fuzzy", 1.0, {"scorer": "ratio"})],
    ],
)
def test_a_medium_dataset_matches_exactly_like_the_full_scan(
    make_mapping: MakeMapping, make_config: MakeConfig, shape: list[tuple[str, str, float, dict[str, Any]]]
) -> None:
    rows = medium_rows(1500, seed=7)
    config = make_config(*(make_mapping(f, s, weight=w, **o) for f, s, w, o in shape))
    fast, slow = Matcher(config, rows), FullScanMatcher(config, rows)
    for values in [row.values for row in medium_rows(12, seed=8)] + [rows[5].values, {}]:
        row = InputRow(document_id="d", values=values)
        assert fast.match(row) == slow.match(row)


@PROPERTIES
@given(
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=30),
    st.one_of(st.floats(-1e4, 1e4), st.integers(-5, 5), st.just("1,000.5")),
    NUMERIC_OPTIONS,
)
def test_a_column_of_json_numbers_matches_like_the_full_scan(
    make_mapping: MakeMapping,
    make_config: MakeConfig,
    references: list[float],
    source: Any,
    options: NumericRangeOptions,
) -> None:
    config = make_config(make_mapping("n", "numeric_range", **options.model_dump()))
    rows = [ReferenceRow(f"r{i}", {"n": value}) for i, value in enumerate(references)]
    row = InputRow(document_id="d", values={"n": source})
    assert Matcher(config, rows).match(row) == FullScanMatcher(config, rows).match(row)


def test_a_medium_dataset_with_every_issue_16_option_matches_exactly_like_the_full_scan(
    make_config: MakeConfig,
) -> None:
    """missing: ignore (blank names and amounts: four blank patterns), max_edits and the swap."""
    rows = [
        ReferenceRow(row.id, row.values | ({"name": " "} if i % 7 == 0 else {}))
        for i, row in enumerate(medium_rows(1500, seed=7))
    ]
    shape = [
        ("key", "exact", 0.5, {"max_edits": 1}, "mismatch"),
        ("name", "fuzzy", 0.2, {}, "ignore"),
        ("amount", "numeric_range", 0.2, {"tolerance_pct": 2}, "ignore"),
        ("day", "date_range", 0.1, {"tolerance_days": 2, "allow_day_month_swap": True}, "ignore"),
    ]
    config = make_config(
        *(
            FieldMapping(source=f, target=f, strategy=s, weight=w, options=o, missing=m)
            for f, s, w, o, m in shape
        )
    )
    fast, slow = Matcher(config, rows), FullScanMatcher(config, rows)
    inputs = [row.values for row in medium_rows(12, seed=8)] + [rows[5].values, rows[7].values, {}]
    inputs += [{"key": "K1", "name": "", "day": "2024-04-09"}, {"key": "K12", "amount": 100}]
    for values in inputs:
        row = InputRow(document_id="d", values=values)
        assert fast.match(row) == slow.match(row)
