"""Evaluation of a matching config on labelled rows: counts, curve, thresholds and misses."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from packmatch.domain.models import Candidate, InputRow, MatchingConfig, ReferenceRow, RowMatch
from packmatch.engine.brute import FullScanMatcher
from packmatch.engine.index import ReferenceIndex
from packmatch.quality import THRESHOLDS, EvaluationReport, LabelledRow, MissKind, Outcome, evaluate, report
from packmatch.quality.evaluation import MAX_MISSES, metrics_at
from tests.unit.conftest import build_config as make_config
from tests.unit.conftest import build_mapping as make_mapping

PROPERTIES = settings(max_examples=150, deadline=None)

REFERENCE = [
    ReferenceRow("r1", {"name": "Acme Ltd", "city": "Berlin"}),
    ReferenceRow("r2", {"name": "Acme Logistics", "city": "Hamburg"}),
    ReferenceRow("r3", {"name": "Globex", "city": "Munich"}),
]


def _config(threshold: float = 0.85) -> MatchingConfig:
    return make_config(
        make_mapping("name", "fuzzy", weight=2.0), make_mapping("city", "exact"), threshold=threshold
    )


def _recount(found: Sequence[tuple[str | None, str | None, float]], t: float) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) straight from the definition: (label, top id, top confidence) per row."""
    tp = fp = fn = tn = 0
    for label, top, confidence in found:
        answer = top if top is not None and confidence >= t else None
        if answer is not None and answer == label:
            tp += 1
        if answer is not None and answer != label:
            fp += 1
        if label is not None and answer != label:
            fn += 1
        if label is None and answer is None:
            tn += 1
    return tp, fp, fn, tn


def test_each_kind_of_answer_counts_as_documented() -> None:
    rows = [
        LabelledRow(values={"name": "Acme Ltd", "city": "Berlin"}, reference_row_id="r1"),  # tp
        LabelledRow(values={"name": "Acme Ltd", "city": "Berlin"}, reference_row_id="r2"),  # fp + fn
        LabelledRow(values={"name": "Globex", "city": "Munich"}, reference_row_id=None),  # fp
        LabelledRow(values={"name": "Initech", "city": "Paris"}, reference_row_id=None),  # tn
        LabelledRow(values={"name": "Initech", "city": "Paris"}, reference_row_id="r3"),  # fn
    ]
    result = evaluate(_config(), REFERENCE, rows)
    m = result.metrics
    assert (m.tp, m.fp, m.fn, m.tn) == (1, 2, 2, 1)
    assert (m.precision, m.recall, m.f1) == (round(1 / 3, 4), round(1 / 3, 4), round(2 / 6, 4))
    assert result.rows == 5
    assert result.labelled_matches == 3
    kinds = {miss.row: miss.kind for miss in result.worst_misses}
    assert kinds == {1: MissKind.WRONG_MATCH, 2: MissKind.FALSE_MATCH, 4: MissKind.MISSED_MATCH}


def test_a_miss_shows_the_evidence_against_the_labelled_row() -> None:
    rows = [LabelledRow(values={"name": "Initech", "city": "Munich"}, reference_row_id="r3")]
    (miss,) = evaluate(_config(), REFERENCE, rows).worst_misses
    assert miss.kind is MissKind.MISSED_MATCH
    assert miss.matched_reference_row_id is None
    assert miss.label_evidence is not None
    assert miss.label_evidence["city"].score == 1.0
    assert miss.label_confidence is not None
    assert 0 < miss.label_confidence < 0.85
    assert miss.margin == round(0.85 - miss.label_confidence, 4)


def test_an_unknown_label_is_a_miss_without_evidence() -> None:
    rows = [LabelledRow(values={"name": "Initech", "city": "Paris"}, reference_row_id="nope")]
    (miss,) = evaluate(_config(), REFERENCE, rows).worst_misses
    assert miss.label_confidence is None
    assert miss.label_evidence is None
    assert miss.margin == 0.85


def test_no_rows_give_no_ratios() -> None:
    result = evaluate(_config(), REFERENCE, [])
    assert result.metrics.precision is None
    assert result.metrics.f1 is None
    assert result.best_f1_threshold is None
    assert result.precision_99_threshold is None
    assert len(result.curve) == 101
    assert result.curve[0].threshold == 0.0
    assert result.curve[-1].threshold == 1.0


def test_progress_is_reported_up_to_the_total() -> None:
    seen: list[tuple[int, int]] = []
    rows = [LabelledRow(values={"name": "Globex"}, reference_row_id="r3")] * 1200
    evaluate(_config(), REFERENCE, rows, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(500, 1200), (1000, 1200), (1200, 1200)]


def test_the_report_is_its_own_json_shape() -> None:
    rows = [LabelledRow(values={"name": "Acme", "city": "Berlin"}, reference_row_id="r2")]
    result = evaluate(_config(), REFERENCE, rows)
    assert EvaluationReport.model_validate_json(result.model_dump_json()) == result


# --- properties --------------------------------------------------------------------------------

IDS = st.sampled_from(["r1", "r2", "r3", "r4"])
CONFIDENCE = st.sampled_from([0.01, 0.3, 0.5, 0.849999999999, 0.85, 0.851, 0.99, 1.0]) | st.floats(
    0.0001, 1.0
)


@st.composite
def outcome_lists(draw: st.DrawFn) -> list[Outcome]:
    found = []
    for _ in range(draw(st.integers(0, 40))):
        label = draw(st.none() | IDS)
        tops = draw(st.none() | st.tuples(IDS, CONFIDENCE))
        candidates = (
            () if tops is None else (Candidate(reference_row_id=tops[0], confidence=tops[1], evidence={}),)
        )
        match = RowMatch(matched=False, matched_reference_row_id=None, confidence=0.0, candidates=candidates)
        found.append(Outcome(label, match))
    return found


def _flat(found: Sequence[Outcome]) -> list[tuple[str | None, str | None, float]]:
    return [
        (o.label, o.top.reference_row_id if o.top else None, o.top.confidence if o.top else 0.0)
        for o in found
    ]


def _report(found: Sequence[Outcome], config: MatchingConfig) -> EvaluationReport:
    rows = [LabelledRow(values={}, reference_row_id=o.label) for o in found]
    return report(config, ReferenceIndex.build([], config.field_mappings), rows, found)


@PROPERTIES
@given(found=outcome_lists(), threshold=st.sampled_from(THRESHOLDS) | st.floats(0.0, 1.0))
def test_counts_equal_a_brute_force_recount(found: list[Outcome], threshold: float) -> None:
    m = metrics_at(found, threshold)
    assert (m.tp, m.fp, m.fn, m.tn) == _recount(_flat(found), threshold)


@PROPERTIES
@given(found=outcome_lists())
def test_the_curve_equals_a_recount_at_every_threshold(found: list[Outcome]) -> None:
    result = _report(found, make_config(make_mapping("name")))
    for point in result.curve:
        assert (point.tp, point.fp, point.fn, point.tn) == _recount(_flat(found), point.threshold)
        assert point.tp + point.fn == result.labelled_matches


@PROPERTIES
@given(found=outcome_lists())
def test_the_chosen_thresholds_are_the_lowest_with_their_property(found: list[Outcome]) -> None:
    result = _report(found, make_config(make_mapping("name")))
    counts = [_recount(_flat(found), t) for t in THRESHOLDS]
    f1s = [2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None for tp, fp, fn, _ in counts]
    defined = [f for f in f1s if f is not None]
    expected_best = THRESHOLDS[f1s.index(max(defined))] if defined else None
    assert result.best_f1_threshold == expected_best
    precise = [
        t for t, (tp, fp, _, _) in zip(THRESHOLDS, counts, strict=True) if tp + fp and tp / (tp + fp) >= 0.99
    ]
    assert result.precision_99_threshold == (precise[0] if precise else None)


@PROPERTIES
@given(found=outcome_lists())
def test_worst_misses_are_the_wrong_rows_by_margin(found: list[Outcome]) -> None:
    result = _report(found, make_config(make_mapping("name")))
    wrong = [i for i, (label, top, c) in enumerate(_flat(found)) if (top if c >= 0.85 else None) != label]
    assert len(result.worst_misses) == min(MAX_MISSES, len(wrong))
    assert {miss.row for miss in result.worst_misses} <= set(wrong)
    keys = [(-miss.margin, miss.row) for miss in result.worst_misses]
    assert keys == sorted(keys)


ROW_VALUES = st.fixed_dictionaries(
    {"name": st.sampled_from(["Acme Ltd", "acme", "Acme Logistics", "Globex", "Initech", "", None])},
    optional={"city": st.sampled_from(["Berlin", "Hamburg", "Munich", "Paris", None])},
)


@PROPERTIES
@given(
    rows=st.lists(st.builds(LabelledRow, values=ROW_VALUES, reference_row_id=st.none() | IDS), max_size=20),
    threshold=st.sampled_from([0.0, 0.5, 0.85, 1.0]),
    scorer=st.sampled_from(["token_set_ratio", "jaro_winkler"]),
)
def test_evaluation_counts_what_a_full_scan_answers(
    rows: list[LabelledRow], threshold: float, scorer: str
) -> None:
    config = make_config(
        make_mapping("name", "fuzzy", weight=2.0, scorer=scorer),
        make_mapping("city", "exact"),
        threshold=threshold,
    )
    result = evaluate(config, REFERENCE, rows)
    scan = FullScanMatcher(config, REFERENCE)
    flat = []
    for row in rows:
        match = scan.match(InputRow(document_id="d", values=row.values))
        top = match.candidates[0] if match.candidates else None
        flat.append(
            (row.reference_row_id, top.reference_row_id if top else None, top.confidence if top else 0.0)
        )
    m = result.metrics
    assert (m.tp, m.fp, m.fn, m.tn) == _recount(flat, threshold)


def test_labels_from_reviews_prefer_an_approval_then_the_newest() -> None:
    from datetime import UTC, datetime

    from packmatch.domain.evaluations import ReviewedRow
    from packmatch.domain.reviews import ReviewStatus
    from packmatch.quality import labels_from_reviews

    def at(minute: int) -> datetime:
        return datetime(2024, 9, 14, 10, minute, tzinfo=UTC)

    reviewed = [
        ReviewedRow("d1", {"n": "old"}, ReviewStatus.APPROVED, "r1", at(1)),
        ReviewedRow("d1", {"n": "new"}, ReviewStatus.REJECTED, "r2", at(5)),
        ReviewedRow("d2", {"n": "x"}, ReviewStatus.REJECTED, "r3", at(3)),
        ReviewedRow("d3", {"n": "a"}, ReviewStatus.APPROVED, "r1", at(2)),
        ReviewedRow("d3", {"n": "b"}, ReviewStatus.APPROVED, "r2", at(4)),
    ]
    labels = labels_from_reviews(reviewed)
    assert [(row.values, row.reference_row_id) for row in labels] == [
        ({"n": "old"}, "r1"),
        ({"n": "b"}, "r2"),
        ({"n": "x"}, None),
    ]
