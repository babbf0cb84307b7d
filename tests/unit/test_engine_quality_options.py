"""The options of issue 16 scored as SPEC §4 says: missing policy, edits, scorers, day/month swap."""

from __future__ import annotations

from datetime import date

import pytest
from rapidfuzz.distance import JaroWinkler, Levenshtein

from packmatch.domain.models import DateRangeOptions, ExactOptions, FieldMapping, FuzzyOptions, ReferenceRow
from packmatch.engine.scoring import score_row
from packmatch.engine.strategies import date_range, exact, fuzzy


def mapping(source: str, strategy: str, weight: float, missing: str = "mismatch") -> FieldMapping:
    return FieldMapping(source=source, target=source, strategy=strategy, weight=weight, missing=missing)


def test_ignore_leaves_a_missing_field_out_of_both_sums_and_says_so() -> None:
    mappings = [mapping("ref", "exact", 0.5, "ignore"), mapping("name", "fuzzy", 0.5)]
    confidence, evidence = score_row(
        mappings, {"ref": "", "name": "acme"}, ReferenceRow("r", {"ref": "X", "name": "acme"})
    )
    assert confidence == 1.0
    assert evidence["ref"].reason == "source value missing (ignored)"


def test_mismatch_counts_a_missing_field_as_zero() -> None:
    mappings = [mapping("ref", "exact", 0.5), mapping("name", "fuzzy", 0.5)]
    confidence, evidence = score_row(
        mappings, {"ref": "", "name": "acme"}, ReferenceRow("r", {"ref": "X", "name": "acme"})
    )
    assert confidence == 0.5
    assert evidence["ref"].reason == "source value missing"


def test_a_pair_with_every_weighted_field_left_out_is_no_candidate() -> None:
    mappings = [mapping("ref", "exact", 1.0, "ignore")]
    confidence, _ = score_row(mappings, {"ref": None}, ReferenceRow("r", {"ref": "X"}))
    assert confidence == 0.0  # the pair has no confidence, so it is never a candidate


@pytest.mark.parametrize(
    ("source", "reference", "max_edits", "score"),
    [("INV12345", "INV12345", 1, 1.0), ("INV12345", "INV12354", 1, 0.5), ("INV12345", "INV12354", 2, 0.75),
     ("INV12345", "INV21354", 2, 0.5), ("INV12345", "INV21354", 1, 0.0), ("INV12345", "INV12354", 0, 0.0),
     ("4250.00", 4250, 1, 1.0)],
)  # fmt: skip
def test_exact_max_edits_grades_typos_and_transpositions(
    source: str, reference: object, max_edits: int, score: float
) -> None:
    assert exact(source, reference, ExactOptions(max_edits=max_edits)).score == score


@pytest.mark.parametrize(
    ("scorer", "function"), [("jaro_winkler", JaroWinkler), ("levenshtein", Levenshtein)]
)
def test_new_scorers_are_rapidfuzz_normalised_similarities(scorer: str, function: object) -> None:
    expected = round(function.normalized_similarity("martha", "marhta"), 12)  # type: ignore[attr-defined]
    assert fuzzy("Martha", "MARHTA", FuzzyOptions(scorer=scorer)).score == expected


def test_day_month_swap_scores_eight_tenths_of_the_swapped_date() -> None:
    options = DateRangeOptions(tolerance_days=2, allow_day_month_swap=True)
    assert date_range("2024-04-09", date(2024, 9, 4), options).score == 0.8
    assert date_range("2024-05-09", date(2024, 9, 4), options).score == pytest.approx(0.8 * 0.75)
    assert date_range("2024-04-09", date(2024, 9, 4), DateRangeOptions(tolerance_days=2)).score == 0.0
    assert date_range("2024-09-14", date(2024, 9, 14), options).score == 1.0
