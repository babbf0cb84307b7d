"""A labelled row: input values and the reference row a person says they should match.

``reference_row_id`` is ``None`` when the row should match nothing (a document with no booking).
Values are JSON scalars, as everywhere else (:mod:`packmatch.domain.values`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

Scalar = str | int | float | bool | None


class LabelledRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    values: dict[str, Scalar]
    reference_row_id: str | None = Field(default=None, min_length=1)
