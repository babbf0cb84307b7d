"""Review decisions by people (SPEC §3 Reviews): on one match result, or on a whole package run.

A decision never changes the machine's verdict: a run's `status` stays what the engine decided, and
the decision sits beside it (docs/decisions/0008-reviews-beside-the-verdict.md).
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReviewStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


DECISIONS = (ReviewStatus.APPROVED, ReviewStatus.REJECTED)
MAX_NOTES = 2000


class Reviewer(_Frozen):
    """The API key that decided, by id and name (never the key itself)."""

    key_id: uuid.UUID
    name: str | None


class ResultReview(_Frozen):
    """A result's current review: `pending` (and nothing else) until someone decides."""

    status: ReviewStatus = ReviewStatus.PENDING
    reference_row_id: str | None = None
    notes: str | None = None
    reviewed_by: Reviewer | None = None
    reviewed_at: AwareDatetime | None = None


class RunReview(_Frozen):
    """A package run's current review decision (approved or rejected)."""

    decision: ReviewStatus
    notes: str | None
    reviewed_by: Reviewer
    reviewed_at: AwareDatetime


class ReviewRecord(_Frozen):
    """One decision of a history, newest first: `decision` is a run's decision or a result's status;
    `reference_row_id` is set for results only. `created_at` is when it was decided."""

    id: uuid.UUID
    decision: ReviewStatus
    reference_row_id: str | None
    notes: str | None
    reviewed_by: Reviewer
    created_at: AwareDatetime
