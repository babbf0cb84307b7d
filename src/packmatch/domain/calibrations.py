"""What a calibration answers (:mod:`packmatch.quality.calibration`): one model, shared with the API.

Pydantic and the domain only, so that `packmatch.responses` (and the light client) can use it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from packmatch.domain.models import FieldMapping, Frozen, MissingPolicy, Strategy

__all__ = ["CalibrationReport", "ConfigProposal", "Estimate", "FieldCalibration", "LevelEstimate"]


class LevelEstimate(Frozen):
    """One agreement level of a field: the share of matches (m) and non-matches (u) there."""

    level: str
    m: float
    u: float
    log2_ratio: float


class FieldCalibration(Frozen):
    source: str
    target: str
    strategy: Strategy
    m: float = Field(description="share of matches whose score is 1 (full agreement)")
    u: float = Field(description="share of random pairs whose score is 1")
    blank_share: float = Field(description="share of pairs with the value missing on a side")
    weight: float = Field(description="proposed weight (all weights sum to 1)")
    missing: MissingPolicy
    levels: list[LevelEstimate]
    explanation: str


class Estimate(Frozen):
    """Precision, recall and F1 of the best candidates at a threshold, on the candidate pairs:
    counted from labels, or expected under the fitted model."""

    basis: Literal["labels", "model"]
    threshold: float
    precision: float
    recall: float
    f1: float


class ConfigProposal(Frozen):
    """A matching config body for `PUT /v1/matching/configs/{id}`."""

    name: str
    field_mappings: list[FieldMapping]
    threshold: float


class CalibrationReport(Frozen):
    method: Literal["unsupervised", "supervised"]
    rows: int
    candidate_pairs: int
    random_pairs: int
    match_share: float = Field(description="estimated share of matches among the candidate pairs")
    iterations: int
    converged: bool
    fields: list[FieldCalibration]
    before: Estimate
    after: Estimate
    proposal: ConfigProposal
    explanation: str
