from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from rapidfuzz import fuzz

from packmatch.domain.models import (
    OPTIONS_BY_STRATEGY,
    DateRangeOptions,
    ExactOptions,
    FuzzyOptions,
    NumericRangeOptions,
    Strategy,
)
from packmatch.engine.strategies import (
    STRATEGIES,
    FieldScore,
    date_range,
    exact,
    fuzzy,
    numeric_range,
)

EXACT = ExactOptions()


def numeric(tolerance_abs: float = 0.0, tolerance_pct: float = 0.0) -> NumericRangeOptions:
    return NumericRangeOptions(tolerance_abs=tolerance_abs, tolerance_pct=tolerance_pct)


def days(tolerance_days: float = 0.0, *formats: str) -> DateRangeOptions:
    return DateRangeOptions(tolerance_days=tolerance_days, formats=formats)


# --- registry -----------------------------------------------------------------------------------


def test_registry_has_a_function_for_every_strategy() -> None:
    assert set(STRATEGIES) == set(Strategy)


@pytest.mark.parametrize(
    ("strategy", "function"),
    [
        (Strategy.EXACT, exact),
        (Strategy.FUZZY, fuzzy),
        (Strategy.NUMERIC_RANGE, numeric_range),
        (Strategy.DATE_RANGE, date_range),
    ],
)
def test_registry_maps_each_strategy_to_its_function(strategy: Strategy, function: Any) -> None:
    assert STRATEGIES[strategy] is function


@pytest.mark.parametrize("strategy", [Strategy.FUZZY, Strategy.NUMERIC_RANGE, Strategy.DATE_RANGE])
def test_strategy_given_another_strategys_options_raises_type_error(strategy: Strategy) -> None:
    with pytest.raises(TypeError, match="expected"):
        STRATEGIES[strategy]("1", "1", EXACT)


# --- missing and unparseable values -------------------------------------------------------------

ALL_WITH_OPTIONS = [(s, OPTIONS_BY_STRATEGY[s]()) for s in Strategy]
VALID_SAMPLE = {
    Strategy.EXACT: "abc",
    Strategy.FUZZY: "abc",
    Strategy.NUMERIC_RANGE: "10",
    Strategy.DATE_RANGE: "2024-09-14",
}


@pytest.mark.parametrize(("strategy", "options"), ALL_WITH_OPTIONS)
@pytest.mark.parametrize("blank", [None, "", "   "])
def test_missing_source_value_scores_zero_with_reason(strategy: Strategy, options: Any, blank: Any) -> None:
    result = STRATEGIES[strategy](blank, VALID_SAMPLE[strategy], options)
    assert result == FieldScore(0.0, "source value missing")


@pytest.mark.parametrize(("strategy", "options"), ALL_WITH_OPTIONS)
@pytest.mark.parametrize("blank", [None, "", "   "])
def test_missing_reference_value_scores_zero_with_reason(
    strategy: Strategy, options: Any, blank: Any
) -> None:
    result = STRATEGIES[strategy](VALID_SAMPLE[strategy], blank, options)
    assert result == FieldScore(0.0, "reference value missing")


@pytest.mark.parametrize(("strategy", "options"), ALL_WITH_OPTIONS)
def test_missing_on_both_sides_blames_the_source(strategy: Strategy, options: Any) -> None:
    assert STRATEGIES[strategy](None, None, options) == FieldScore(0.0, "source value missing")


@pytest.mark.parametrize(
    ("strategy", "options", "source", "reference", "reason"),
    [
        (Strategy.NUMERIC_RANGE, numeric(), "abc", "10", "source value is not a number"),
        (Strategy.NUMERIC_RANGE, numeric(), "10", "1,5", "reference value is not a number"),
        (Strategy.NUMERIC_RANGE, numeric(), True, 1, "source value is not a number"),
        (Strategy.DATE_RANGE, days(), "14/09/2024", "2024-09-14", "source value is not a date"),
        (Strategy.DATE_RANGE, days(), "2024-09-14", "soon", "reference value is not a date"),
        (Strategy.DATE_RANGE, days(), 20240914, "2024-09-14", "source value is not a date"),
    ],
)
def test_unparseable_value_scores_zero_with_reason(
    strategy: Strategy, options: Any, source: Any, reference: Any, reason: str
) -> None:
    assert STRATEGIES[strategy](source, reference, options) == FieldScore(0.0, reason)


# --- exact --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reference"),
    [
        ("ABC1234567", "ABC1234567"),
        ("ABC1234567", "abc1234567"),
        ("  Acme   Ltd ", "acme ltd"),
        ("ＡＢＣ", "abc"),
        ("Straße", "STRASSE"),
        ("4250.00", 4250),
        ("4,250.00", 4250),
        ("$4,250.00", "4250"),
        ("EUR 4250", 4250.0),
        (4250.1, "4,250.10"),
        (True, "TRUE"),
    ],
)
def test_exact_scores_one_when_equal(source: Any, reference: Any) -> None:
    assert exact(source, reference, EXACT) == FieldScore(1.0)


@pytest.mark.parametrize(
    ("source", "reference"),
    [
        ("ABC1234567", "ABC1234568"),
        ("acme ltd", "acme limited"),
        ("4250.01", 4250),
        ("12345678901234567891", "12345678901234567890"),
        ("12,34", "1234"),
        (True, 1),
    ],
)
def test_exact_scores_zero_when_not_equal(source: Any, reference: Any) -> None:
    assert exact(source, reference, EXACT) == FieldScore(0.0, "not equal")


# --- fuzzy --------------------------------------------------------------------------------------


def test_fuzzy_defaults_to_token_set_ratio() -> None:
    result = fuzzy("acme", "acme shipping ltd", FuzzyOptions())
    assert result == FieldScore(1.0)


def test_fuzzy_compares_normalised_texts() -> None:
    assert fuzzy("  ACME   Ltd ", "acme ltd", FuzzyOptions(scorer="ratio")) == FieldScore(1.0)


@pytest.mark.parametrize(
    ("scorer", "source", "reference", "expected"),
    [
        ("ratio", "abc", "abd", round(fuzz.ratio("abc", "abd") / 100, 12)),
        ("ratio", "hello world", "world hello", round(fuzz.ratio("hello world", "world hello") / 100, 12)),
        ("token_sort_ratio", "hello world", "world hello", 1.0),
        ("token_set_ratio", "hello", "hello big world", 1.0),
        ("partial_ratio", "abc", "xxabcxx", 1.0),
        ("WRatio", "acme", "acme", 1.0),
        ("WRatio", "abc", "xyz", 0.0),
    ],
)
def test_fuzzy_uses_the_chosen_scorer(scorer: Any, source: str, reference: str, expected: float) -> None:
    assert fuzzy(source, reference, FuzzyOptions(scorer=scorer)) == FieldScore(expected)


def test_fuzzy_ratio_gives_a_fraction() -> None:
    assert fuzzy("abc", "abd", FuzzyOptions(scorer="ratio")).score == pytest.approx(2 / 3)


def test_fuzzy_below_min_similarity_scores_zero_with_reason() -> None:
    result = fuzzy("abc", "abd", FuzzyOptions(scorer="ratio", min_similarity=0.7))
    assert result == FieldScore(0.0, "below min_similarity")


def test_fuzzy_exactly_at_min_similarity_keeps_its_score() -> None:
    result = fuzzy("abcde", "abcxy", FuzzyOptions(scorer="ratio", min_similarity=0.6))
    assert result == FieldScore(0.6)


def test_fuzzy_compares_numbers_as_text() -> None:
    assert fuzzy(4250.0, "4250", FuzzyOptions(scorer="ratio")) == FieldScore(1.0)


# --- numeric_range ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reference", "options", "expected"),
    [
        (100, 100, numeric(), 1.0),
        ("$4,250.00", 4250, numeric(), 1.0),
        (101, 100, numeric(tolerance_abs=2), 0.75),
        (99, 100, numeric(tolerance_abs=2), 0.75),
        (102, 100, numeric(tolerance_abs=2), 0.5),
        (4335, 4250, numeric(tolerance_pct=2), 0.5),
        (4292.5, 4250, numeric(tolerance_pct=2), 0.75),
        (-98, -100, numeric(tolerance_pct=2), 0.5),
        (-99, -100, numeric(tolerance_pct=2), 0.75),
        (105, 100, numeric(tolerance_abs=5, tolerance_pct=2), 0.5),
        (104, 100, numeric(tolerance_abs=1, tolerance_pct=8), 0.75),
        (0.1 + 0.2, 0.3, numeric(), 1.0),
        (1.1, 1.0, numeric(tolerance_abs=0.1), 0.5),
        (4250 * 1.02, 4250, numeric(tolerance_pct=2), 0.5),
    ],
)
def test_numeric_range_scores_within_tolerance(
    source: Any, reference: Any, options: NumericRangeOptions, expected: float
) -> None:
    result = numeric_range(source, reference, options)
    assert result.score == pytest.approx(expected, abs=1e-9)
    assert result.reason is None


@pytest.mark.parametrize(
    ("source", "reference", "options"),
    [
        (101, 100, numeric()),
        (100.01, 100, numeric()),
        (102.01, 100, numeric(tolerance_abs=2)),
        (-97.9, -100, numeric(tolerance_pct=2)),
        (1, 0, numeric(tolerance_pct=50)),
        (1e308, -1e308, numeric(tolerance_abs=1)),
    ],
)
def test_numeric_range_scores_zero_outside_tolerance(
    source: Any, reference: Any, options: NumericRangeOptions
) -> None:
    assert numeric_range(source, reference, options) == FieldScore(0.0, "outside tolerance")


# --- date_range ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reference", "options", "expected"),
    [
        ("2024-09-14", "2024-09-14", days(), 1.0),
        ("2024-09-14T23:59:00Z", "2024-09-14", days(), 1.0),
        (date(2024, 9, 14), "2024-09-14T00:00:00.000Z", days(), 1.0),
        ("2024-09-15", "2024-09-14", days(2), 0.75),
        ("2024-09-13", "2024-09-14", days(2), 0.75),
        ("2024-09-17", "2024-09-14", days(3), 0.5),
        ("2024-09-15", "2024-09-14", days(1.5), 1 - 0.5 / 1.5),
        ("17.09.2024", "2024-09-14", days(3, "%d.%m.%Y"), 0.5),
        ("2024-09-14", "09/14/2024", days(0, "%d.%m.%Y", "%m/%d/%Y"), 1.0),
    ],
)
def test_date_range_scores_within_tolerance(
    source: Any, reference: Any, options: DateRangeOptions, expected: float
) -> None:
    result = date_range(source, reference, options)
    assert result.score == pytest.approx(expected)
    assert result.reason is None


@pytest.mark.parametrize(
    ("source", "reference", "options"),
    [
        ("2024-09-15", "2024-09-14", days()),
        ("2024-09-18", "2024-09-14", days(3)),
        ("2024-09-10", "2024-09-14", days(3)),
        ("2024-09-15T00:00:00Z", "2024-09-14T23:59:59Z", days()),
    ],
)
def test_date_range_scores_zero_outside_tolerance(
    source: Any, reference: Any, options: DateRangeOptions
) -> None:
    assert date_range(source, reference, options) == FieldScore(0.0, "outside tolerance")
