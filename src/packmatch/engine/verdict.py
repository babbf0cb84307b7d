"""A package run's verdict from its slot results (SPEC §5).

Each slot gets one outcome with a human-readable reason; the run takes the worst outcome
(error > failed > review > passed). No slots at all → passed.

| slot                                                         | outcome                         |
|--------------------------------------------------------------|---------------------------------|
| any presence, status ``error``                               | error                           |
| required, ``missing``                                        | failed                          |
| required, ``unmatched``                                      | failed if all_required_matched, |
|                                                              | else review                     |
| required, ``matched`` with confidence < min_confidence       | failed                          |
| expected, ``missing``/``unmatched``/matched below minimum    | review if allow_review_on_      |
|                                                              | expected, else failed           |
| optional, anything but ``error``                             | passed (reported, not decisive) |
| otherwise                                                    | passed                          |

Two states cannot occur in a finished run and are treated as programming errors (outcome error):
a slot still ``pending``, and a required or expected slot ``skipped`` (only optional slots are
skipped; a required or expected slot without rows is ``missing``). A matched slot without a
confidence is compared as confidence 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from packmatch.domain.models import PassCriteria, Presence, RunStatus, SlotResult, SlotStatus

__all__ = ["SlotVerdict", "Verdict", "decide", "error_message"]

_SEVERITY = {RunStatus.PASSED: 0, RunStatus.REVIEW: 1, RunStatus.FAILED: 2, RunStatus.ERROR: 3}


@dataclass(frozen=True, slots=True)
class SlotVerdict:
    document_type: str
    outcome: RunStatus
    reason: str


@dataclass(frozen=True, slots=True)
class Verdict:
    status: RunStatus
    outcomes: tuple[SlotVerdict, ...]


def decide(slots: Sequence[SlotResult], criteria: PassCriteria) -> Verdict:
    """The run's final status and each slot's outcome, in slot order."""
    outcomes = tuple(_slot_verdict(slot, criteria) for slot in slots)
    status = max((o.outcome for o in outcomes), key=_SEVERITY.__getitem__, default=RunStatus.PASSED)
    return Verdict(status, outcomes)


def error_message(verdict: Verdict) -> str | None:
    """The run's ``error`` text: the erroring slots and their causes; ``None`` unless error."""
    if verdict.status is not RunStatus.ERROR:
        return None
    return "; ".join(o.reason for o in verdict.outcomes if o.outcome is RunStatus.ERROR)


def _slot_verdict(slot: SlotResult, criteria: PassCriteria) -> SlotVerdict:
    outcome, reason = _impossible(slot) or _by_presence(slot, criteria)
    return SlotVerdict(slot.document_type, outcome, reason)


def _impossible(slot: SlotResult) -> tuple[RunStatus, str] | None:
    name = slot.document_type
    if slot.status is SlotStatus.ERROR:
        return RunStatus.ERROR, f"slot {name}: {slot.error or 'failed (no cause recorded)'}"
    if slot.status is SlotStatus.PENDING:
        return RunStatus.ERROR, f"slot {name}: still pending when the verdict was decided"
    if slot.status is SlotStatus.SKIPPED and slot.presence is not Presence.OPTIONAL:
        return RunStatus.ERROR, (
            f"{slot.presence.value} slot '{name}' is skipped, which only optional slots can be"
        )
    return None


def _by_presence(slot: SlotResult, criteria: PassCriteria) -> tuple[RunStatus, str]:
    if slot.presence is Presence.OPTIONAL:
        return RunStatus.PASSED, f"optional slot '{slot.document_type}' is {slot.status.value}"
    shortfall = _shortfall(slot, criteria)
    if shortfall is None:
        return RunStatus.PASSED, f"{slot.presence.value} slot '{slot.document_type}' is matched"
    if slot.presence is Presence.EXPECTED:
        lenient = criteria.allow_review_on_expected
    else:
        lenient = slot.status is SlotStatus.UNMATCHED and not criteria.all_required_matched
    return (RunStatus.REVIEW if lenient else RunStatus.FAILED), shortfall


def _shortfall(slot: SlotResult, criteria: PassCriteria) -> str | None:
    """Why a required or expected slot falls short, or ``None`` when it is good enough."""
    prefix = f"{slot.presence.value} slot '{slot.document_type}'"
    if slot.status is SlotStatus.MISSING:
        return f"{prefix} is missing"
    if slot.status is SlotStatus.UNMATCHED:
        return f"{prefix} is unmatched"
    confidence = slot.confidence if slot.confidence is not None else 0.0
    if confidence < criteria.min_confidence:
        return (
            f"{prefix} matched with confidence {confidence:.4f}, "
            f"below min_confidence {criteria.min_confidence:.4f}"
        )
    return None
