"""A labelled row: input values and the reference row a person says they should match.

``reference_row_id`` is ``None`` when the row should match nothing (a document with no booking).
Values are JSON scalars, as everywhere else (:mod:`packmatch.domain.values`).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from packmatch.domain.evaluations import ReviewedRow
from packmatch.domain.reviews import ReviewStatus

Scalar = str | int | float | bool | None


class LabelledRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    values: dict[str, Scalar]
    reference_row_id: str | None = Field(default=None, min_length=1)


def labels_from_reviews(reviewed: Sequence[ReviewedRow]) -> list[LabelledRow]:
    """One labelled row per reviewed document, from the decisions people recorded (newest first).

    A document with an approved result is labelled with the reference row approved most recently
    (and that result's input values). A document whose results were all rejected — no approved
    alternative — is labelled ``None``: the reviewers said its candidates were wrong, and the
    evaluation counts any link for it as a false match. Documents keep the order of their newest
    decision."""
    ordered = sorted(reviewed, key=lambda r: r.reviewed_at, reverse=True)
    chosen: dict[str, ReviewedRow] = {}
    for row in ordered:
        best = chosen.get(row.document_id)
        if best is None or (best.status is not ReviewStatus.APPROVED and row.status is ReviewStatus.APPROVED):
            chosen[row.document_id] = row
    return [
        LabelledRow(
            values=row.values,
            reference_row_id=row.reference_row_id if row.status is ReviewStatus.APPROVED else None,
        )
        for row in chosen.values()
    ]
