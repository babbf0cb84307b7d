from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import ValidationError

from packmatch.domain.models import (
    Evidence,
    FieldMapping,
    InputRow,
    MatchingConfig,
    ReferenceRow,
    RowMatch,
    SlotStatus,
    Strategy,
)
from packmatch.engine.scoring import MAX_CANDIDATES, Matcher, SlotOutcome, score_row, slot_outcome

MakeMapping = Callable[..., FieldMapping]
MakeConfig = Callable[..., MatchingConfig]


def input_row(**values: Any) -> InputRow:
    return InputRow(document_id="doc_1", extraction_row_id="row_1", values=values)


def ref(row_id: str, **values: Any) -> ReferenceRow:
    return ReferenceRow(row_id, values)


@pytest.fixture
def spec_mappings(make_mapping: MakeMapping) -> tuple[FieldMapping, ...]:
    """The SPEC §3 example: weights 0.5 / 0.2 / 0.2 / 0.1."""
    return (
        make_mapping("booking_reference", "exact", target="reference", weight=0.5),
        make_mapping("carrier", "fuzzy", target="carrier_name", weight=0.2, min_similarity=0.6),
        make_mapping("total", "numeric_range", target="amount", weight=0.2, tolerance_pct=2),
        make_mapping("ship_date", "date_range", target="departure", weight=0.1, tolerance_days=3),
    )


SPEC_VALUES = {
    "booking_reference": "ABC1234567",
    "carrier": "Maersk Line",
    "total": 4250.0,
    "ship_date": "2024-09-14",
}


def spec_reference(row_id: str = "row_1", **overrides: Any) -> ReferenceRow:
    values = {
        "reference": "ABC1234567",
        "carrier_name": "MAERSK LINE",
        "amount": "4,250.00",
        "departure": "2024-09-14",
    }
    return ReferenceRow(row_id, values | overrides)


# --- score_row ----------------------------------------------------------------------------------


def test_score_row_is_one_when_every_field_matches(spec_mappings: Any) -> None:
    confidence, _ = score_row(spec_mappings, SPEC_VALUES, spec_reference())
    assert confidence == 1.0


def test_score_row_is_the_weighted_mean_of_field_scores(spec_mappings: Any) -> None:
    values = SPEC_VALUES | {"total": 4335, "ship_date": "2024-09-20"}
    confidence, _ = score_row(spec_mappings, values, spec_reference())
    assert confidence == 0.8  # 0.5·1 + 0.2·1 + 0.2·0.5 + 0.1·0


def test_score_row_normalises_weights_that_do_not_sum_to_one(make_mapping: MakeMapping) -> None:
    mappings = [make_mapping("a", weight=1), make_mapping("b", weight=3)]
    confidence, _ = score_row(mappings, {"a": "x", "b": "y"}, ref("r", a="x", b="nope"))
    assert confidence == 0.25


def test_score_row_scales_weights_without_changing_confidence(
    spec_mappings: tuple[FieldMapping, ...],
) -> None:
    scaled = [m.model_copy(update={"weight": m.weight * 10}) for m in spec_mappings]
    values = SPEC_VALUES | {"total": 4335, "ship_date": "2024-09-20"}
    reference = spec_reference()
    assert score_row(scaled, values, reference) == score_row(spec_mappings, values, reference)


def test_score_row_removes_float_noise_from_confidence(make_mapping: MakeMapping) -> None:
    mappings = [make_mapping("a", weight=0.1), make_mapping("b", weight=0.3)]
    confidence, _ = score_row(mappings, {"a": "x", "b": "y"}, ref("r", a="other", b="y"))
    assert confidence == 0.75  # 0.3 / 0.4 is 0.7499999999999999 in floats


def test_score_row_evidence_holds_raw_values_and_scores(spec_mappings: Any) -> None:
    values = SPEC_VALUES | {"total": "4,335.00"}
    _, evidence = score_row(spec_mappings, values, spec_reference())
    assert evidence["total"] == Evidence(
        strategy=Strategy.NUMERIC_RANGE,
        score=0.5,
        source_value="4,335.00",
        reference_value="4,250.00",
        reason=None,
    )


def test_score_row_evidence_is_keyed_by_source_field(spec_mappings: Any) -> None:
    _, evidence = score_row(spec_mappings, SPEC_VALUES, spec_reference())
    assert list(evidence) == ["booking_reference", "carrier", "total", "ship_date"]


def test_score_row_evidence_explains_a_missing_value(spec_mappings: Any) -> None:
    values = {k: v for k, v in SPEC_VALUES.items() if k != "carrier"}
    _, evidence = score_row(spec_mappings, values, spec_reference())
    assert evidence["carrier"] == Evidence(
        strategy=Strategy.FUZZY,
        score=0.0,
        source_value=None,
        reference_value="MAERSK LINE",
        reason="source value missing",
    )


def test_score_row_evidence_has_none_for_an_absent_reference_column(
    make_mapping: MakeMapping,
) -> None:
    _, evidence = score_row([make_mapping("a")], {"a": "x"}, ref("r"))
    assert (evidence["a"].reference_value, evidence["a"].reason) == (
        None,
        "reference value missing",
    )


def test_score_row_keys_a_repeated_source_field_with_a_suffix(make_mapping: MakeMapping) -> None:
    mappings = [
        make_mapping("name", "exact", target="legal_name"),
        make_mapping("name", "fuzzy", target="trading_name"),
        make_mapping("name", "fuzzy", target="short_name"),
    ]
    reference = ref("r", legal_name="Acme", trading_name="Acme", short_name="Acme")
    _, evidence = score_row(mappings, {"name": "acme"}, reference)
    assert list(evidence) == ["name", "name#2", "name#3"]


def test_score_row_suffix_never_collides_with_a_real_field(make_mapping: MakeMapping) -> None:
    mappings = [make_mapping("a#2"), make_mapping("a"), make_mapping("a")]
    _, evidence = score_row(mappings, {}, ref("r"))
    assert list(evidence) == ["a#2", "a", "a#3"]


# --- Matcher ------------------------------------------------------------------------------------


def test_matcher_matches_when_confidence_equals_threshold(
    spec_mappings: Any, make_config: MakeConfig
) -> None:
    values = SPEC_VALUES | {"total": 4335, "ship_date": "2024-09-17"}  # 0.5+0.2+0.1+0.05
    matcher = Matcher(make_config(*spec_mappings, threshold=0.85), [spec_reference()])
    result = matcher.match(input_row(**values))
    assert (result.matched, result.confidence) == (True, 0.85)


def test_matcher_does_not_match_just_below_threshold(spec_mappings: Any, make_config: MakeConfig) -> None:
    values = SPEC_VALUES | {"total": 4335, "ship_date": "2024-09-18"}  # date outside: 0.8
    matcher = Matcher(make_config(*spec_mappings, threshold=0.85), [spec_reference()])
    result = matcher.match(input_row(**values))
    assert result == RowMatch(
        matched=False,
        matched_reference_row_id=None,
        confidence=0.8,
        candidates=result.candidates,
    )
    assert [c.reference_row_id for c in result.candidates] == ["row_1"]


def test_matcher_names_the_best_row_when_matched(spec_mappings: Any, make_config: MakeConfig) -> None:
    rows = [spec_reference("r1", reference="OTHER"), spec_reference("r2")]
    result = Matcher(make_config(*spec_mappings), rows).match(input_row(**SPEC_VALUES))
    assert (result.matched, result.matched_reference_row_id, result.confidence) == (
        True,
        "r2",
        1.0,
    )


def test_matcher_orders_candidates_best_first(make_mapping: MakeMapping, make_config: MakeConfig) -> None:
    config = make_config(make_mapping("n", "numeric_range", tolerance_abs=10))
    rows = [ref("far", n=108), ref("exact", n=100), ref("near", n=102)]
    result = Matcher(config, rows).match(input_row(n=100))
    assert [(c.reference_row_id, c.confidence) for c in result.candidates] == [
        ("exact", 1.0),
        ("near", 0.9),
        ("far", 0.6),
    ]


def test_matcher_breaks_ties_by_reference_row_order(
    make_mapping: MakeMapping, make_config: MakeConfig
) -> None:
    config = make_config(make_mapping("n", "numeric_range", tolerance_abs=10))
    rows = [ref("c", n=95), ref("a", n=105), ref("best", n=100), ref("b", n=95)]
    result = Matcher(config, rows).match(input_row(n=100))
    assert [c.reference_row_id for c in result.candidates] == ["best", "c", "a", "b"]


def test_matcher_keeps_the_top_five_of_more_positive_rows(
    make_mapping: MakeMapping, make_config: MakeConfig
) -> None:
    config = make_config(make_mapping("n", "numeric_range", tolerance_abs=100))
    rows = [ref(f"r{d}", n=100 + d) for d in (50, 10, 70, 0, 90, 30, 20, 60)]
    result = Matcher(config, rows).match(input_row(n=100))
    assert MAX_CANDIDATES == 5
    assert [c.reference_row_id for c in result.candidates] == ["r0", "r10", "r20", "r30", "r50"]


def test_matcher_leaves_out_rows_with_zero_confidence(
    make_mapping: MakeMapping, make_config: MakeConfig
) -> None:
    config = make_config(make_mapping("code"))
    rows = [ref("miss1", code="B"), ref("hit", code="a"), ref("miss2", code="C")]
    result = Matcher(config, rows).match(input_row(code="A"))
    assert [c.reference_row_id for c in result.candidates] == ["hit"]


def test_matcher_without_positive_candidate_is_unmatched_with_zero_confidence(
    make_mapping: MakeMapping, make_config: MakeConfig
) -> None:
    config = make_config(make_mapping("code"), threshold=0.0)
    result = Matcher(config, [ref("r1", code="B")]).match(input_row(code="A"))
    assert result == RowMatch(matched=False, matched_reference_row_id=None, confidence=0.0, candidates=())


def test_matcher_with_no_reference_rows_is_unmatched(
    make_mapping: MakeMapping, make_config: MakeConfig
) -> None:
    result = Matcher(make_config(make_mapping("code")), []).match(input_row(code="A"))
    assert result.candidates == ()
    assert result.matched is False


def test_matcher_with_zero_threshold_matches_any_positive_candidate(
    make_mapping: MakeMapping, make_config: MakeConfig
) -> None:
    config = make_config(make_mapping("n", "numeric_range", tolerance_abs=10), threshold=0.0)
    result = Matcher(config, [ref("r1", n=110)]).match(input_row(n=100))
    assert (result.matched, result.matched_reference_row_id) == (True, "r1")


def test_matcher_candidate_evidence_equals_score_row(spec_mappings: Any, make_config: MakeConfig) -> None:
    values = SPEC_VALUES | {"total": 4335}
    reference = spec_reference()
    result = Matcher(make_config(*spec_mappings), [reference]).match(input_row(**values))
    assert result.candidates[0].evidence == score_row(spec_mappings, values, reference)[1]


def test_matcher_rejects_invalid_options_when_built(
    make_mapping: MakeMapping, make_config: MakeConfig
) -> None:
    config = make_config(make_mapping("n", "numeric_range", tolerance_days=3))
    with pytest.raises(ValidationError):
        Matcher(config, [])


# --- slot_outcome -------------------------------------------------------------------------------


def row_match(confidence: float, *, matched: bool) -> RowMatch:
    return RowMatch(
        matched=matched,
        matched_reference_row_id="r" if matched else None,
        confidence=confidence,
        candidates=(),
    )


def test_slot_outcome_is_matched_when_any_row_matched() -> None:
    matches = [row_match(0.4, matched=False), row_match(0.9, matched=True)]
    assert slot_outcome(matches) == SlotOutcome(SlotStatus.MATCHED, 0.9)


def test_slot_outcome_is_unmatched_when_no_row_matched() -> None:
    matches = [row_match(0.4, matched=False), row_match(0.6, matched=False)]
    assert slot_outcome(matches) == SlotOutcome(SlotStatus.UNMATCHED, 0.6)


def test_slot_outcome_confidence_is_the_best_row_confidence() -> None:
    matches = [row_match(0.9, matched=True), row_match(0.95, matched=True)]
    assert slot_outcome(matches).confidence == 0.95


def test_slot_outcome_of_no_rows_is_unmatched_with_zero_confidence() -> None:
    assert slot_outcome([]) == SlotOutcome(SlotStatus.UNMATCHED, 0.0)
