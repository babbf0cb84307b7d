from __future__ import annotations

from collections.abc import Callable

import pytest

from packmatch.domain.models import PassCriteria, RunStatus, SlotResult
from packmatch.engine.verdict import SlotVerdict, Verdict, decide, error_message

MakeSlot = Callable[..., SlotResult]

STRICT = PassCriteria(all_required_matched=True, min_confidence=0.8, allow_review_on_expected=False)
LENIENT = PassCriteria(all_required_matched=False, min_confidence=0.8, allow_review_on_expected=True)


@pytest.mark.parametrize(
    ("presence", "status", "confidence", "criteria", "expected"),
    [
        # any presence, status error → error
        ("required", "error", None, LENIENT, RunStatus.ERROR),
        ("expected", "error", None, LENIENT, RunStatus.ERROR),
        ("optional", "error", None, LENIENT, RunStatus.ERROR),
        # required, missing → failed
        ("required", "missing", None, STRICT, RunStatus.FAILED),
        ("required", "missing", None, LENIENT, RunStatus.FAILED),
        # required, unmatched → failed if all_required_matched, else review
        ("required", "unmatched", 0.5, STRICT, RunStatus.FAILED),
        ("required", "unmatched", 0.5, LENIENT, RunStatus.REVIEW),
        # required, matched below min_confidence → failed
        ("required", "matched", 0.79, STRICT, RunStatus.FAILED),
        ("required", "matched", 0.79, LENIENT, RunStatus.FAILED),
        # expected, missing / unmatched / matched below min → review if allowed, else failed
        ("expected", "missing", None, LENIENT, RunStatus.REVIEW),
        ("expected", "missing", None, STRICT, RunStatus.FAILED),
        ("expected", "unmatched", 0.5, LENIENT, RunStatus.REVIEW),
        ("expected", "unmatched", 0.5, STRICT, RunStatus.FAILED),
        ("expected", "matched", 0.79, LENIENT, RunStatus.REVIEW),
        ("expected", "matched", 0.79, STRICT, RunStatus.FAILED),
        # optional, anything but error → passed
        ("optional", "missing", None, STRICT, RunStatus.PASSED),
        ("optional", "skipped", None, STRICT, RunStatus.PASSED),
        ("optional", "unmatched", 0.1, STRICT, RunStatus.PASSED),
        ("optional", "matched", 0.79, STRICT, RunStatus.PASSED),
        ("optional", "matched", 0.95, STRICT, RunStatus.PASSED),
        # otherwise → passed
        ("required", "matched", 0.95, STRICT, RunStatus.PASSED),
        ("required", "matched", 0.8, STRICT, RunStatus.PASSED),
        ("expected", "matched", 0.95, STRICT, RunStatus.PASSED),
        ("expected", "matched", 0.8, STRICT, RunStatus.PASSED),
    ],
)
def test_slot_outcome_follows_the_spec_table(
    make_slot: MakeSlot,
    presence: str,
    status: str,
    confidence: float | None,
    criteria: PassCriteria,
    expected: RunStatus,
) -> None:
    verdict = decide([make_slot(presence, status, confidence)], criteria)
    assert verdict.outcomes[0].outcome is expected
    assert verdict.status is expected


def test_default_criteria_pass_a_matched_required_slot_of_any_confidence(
    make_slot: MakeSlot,
) -> None:
    assert decide([make_slot("required", "matched", 0.01)], PassCriteria()).status is (RunStatus.PASSED)


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([RunStatus.PASSED, RunStatus.PASSED], RunStatus.PASSED),
        ([RunStatus.PASSED, RunStatus.REVIEW], RunStatus.REVIEW),
        ([RunStatus.REVIEW, RunStatus.FAILED, RunStatus.PASSED], RunStatus.FAILED),
        ([RunStatus.FAILED, RunStatus.ERROR, RunStatus.REVIEW], RunStatus.ERROR),
        ([RunStatus.ERROR, RunStatus.PASSED], RunStatus.ERROR),
    ],
)
def test_run_takes_the_worst_slot_outcome(
    make_slot: MakeSlot, outcomes: list[RunStatus], expected: RunStatus
) -> None:
    slot_for = {
        RunStatus.PASSED: ("required", "matched", 0.9),
        RunStatus.REVIEW: ("expected", "missing", None),
        RunStatus.FAILED: ("required", "missing", None),
        RunStatus.ERROR: ("required", "error", None),
    }
    slots = [make_slot(*slot_for[outcome], document_type=f"slot_{i}") for i, outcome in enumerate(outcomes)]
    assert decide(slots, LENIENT).status is expected


def test_no_slots_pass() -> None:
    assert decide([], STRICT) == Verdict(RunStatus.PASSED, ())


def test_outcomes_follow_slot_order(make_slot: MakeSlot) -> None:
    slots = [
        make_slot("required", "matched", 0.9, document_type="invoice"),
        make_slot("optional", "skipped", document_type="contract"),
        make_slot("expected", "missing", document_type="delivery_note"),
    ]
    verdict = decide(slots, LENIENT)
    assert [o.document_type for o in verdict.outcomes] == ["invoice", "contract", "delivery_note"]


def test_pending_slot_is_an_error(make_slot: MakeSlot) -> None:
    verdict = decide([make_slot("optional", "pending")], LENIENT)
    assert verdict.outcomes == (
        SlotVerdict(
            "invoice",
            RunStatus.ERROR,
            "slot invoice: still pending when the verdict was decided",
        ),
    )


@pytest.mark.parametrize("presence", ["required", "expected"])
def test_skipped_non_optional_slot_is_an_error(make_slot: MakeSlot, presence: str) -> None:
    verdict = decide([make_slot(presence, "skipped")], LENIENT)
    assert verdict.status is RunStatus.ERROR


@pytest.mark.parametrize(
    ("slot_args", "criteria", "reason"),
    [
        (("required", "missing", None), STRICT, "required slot 'invoice' is missing"),
        (("required", "unmatched", 0.4), LENIENT, "required slot 'invoice' is unmatched"),
        (("expected", "unmatched", 0.4), LENIENT, "expected slot 'invoice' is unmatched"),
        (
            ("required", "matched", 0.75),
            STRICT,
            "required slot 'invoice' matched with confidence 0.7500, below min_confidence 0.8000",
        ),
        (("required", "matched", 0.9), STRICT, "required slot 'invoice' is matched"),
        (("optional", "skipped", None), STRICT, "optional slot 'invoice' is skipped"),
    ],
)
def test_each_outcome_has_a_readable_reason(
    make_slot: MakeSlot, slot_args: tuple[str, str, float | None], criteria: PassCriteria, reason: str
) -> None:
    assert decide([make_slot(*slot_args)], criteria).outcomes[0].reason == reason


def test_error_reason_quotes_the_slot_error(make_slot: MakeSlot) -> None:
    slot = make_slot("required", "error", error="reference dataset was deleted")
    assert decide([slot], STRICT).outcomes[0].reason == ("slot invoice: reference dataset was deleted")


def test_error_message_is_none_unless_the_run_errored(make_slot: MakeSlot) -> None:
    assert error_message(decide([make_slot("required", "missing")], STRICT)) is None


def test_error_message_names_every_erroring_slot_and_cause(make_slot: MakeSlot) -> None:
    slots = [
        make_slot("required", "error", document_type="invoice", error="timeout"),
        make_slot("required", "missing", document_type="contract"),
        make_slot("optional", "error", document_type="delivery_note", error=None),
    ]
    assert error_message(decide(slots, STRICT)) == (
        "slot invoice: timeout; slot delivery_note: failed (no cause recorded)"
    )
