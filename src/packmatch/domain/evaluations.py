"""Evaluations of a matching config on labelled rows: the record (:class:`Evaluation`, its status
and progress) and what it reports (:class:`EvaluationReport`, one model that is also the API's shape).
The work is done by :func:`packmatch.quality.evaluate`.

How a labelled row counts at a threshold ``t`` (the engine's top candidate is its answer, exactly as
a run's ``matched_reference_row_id``: it counts only when its confidence is ≥ ``t``):

========================  ==================================  ==================
label                     engine's answer at ``t``            counts as
========================  ==================================  ==================
a reference row ``r``     ``r``                               tp
a reference row ``r``     another row ``s``                   fp **and** fn
a reference row ``r``     nothing (no candidate ≥ ``t``)      fn
``null`` (no match)       a row ``s``                         fp
``null`` (no match)       nothing                             tn
========================  ==================================  ==================

So ``tp + fp`` is the number of links the engine makes, ``tp + fn`` the number of rows that have a
right link, and a wrong link is both a false link and a missed one (the usual pairwise counting of
record linkage). ``precision = tp / (tp + fp)`` (``null`` when the engine links nothing),
``recall = tp / (tp + fn)`` (``null`` when no row has a label), ``f1 = 2·tp / (2·tp + fp + fn)``
(``null`` when all three are 0). Every ratio and confidence is rounded to 4 decimals.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from packmatch.domain.models import Candidate, Evidence
from packmatch.domain.reviews import ReviewStatus


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class QualityMetrics(_Frozen):
    """Counts and ratios at one threshold (the table in this module's docstring)."""

    threshold: float
    precision: float | None
    recall: float | None
    f1: float | None
    tp: int
    fp: int
    fn: int
    tn: int


class MissKind(StrEnum):
    FALSE_MATCH = "false_match"  # label null, the engine linked a row: fp
    WRONG_MATCH = "wrong_match"  # label r, the engine linked another row: fp and fn
    MISSED_MATCH = "missed_match"  # label r, the engine linked nothing: fn


class Miss(_Frozen):
    """A row the engine got wrong at the config's threshold, with what it saw.

    ``margin`` says how wrong, in confidence: for a false match, top confidence − threshold; for a
    wrong match, top confidence − the labelled row's confidence; for a missed match, threshold − the
    labelled row's confidence (0 when that row is not in the dataset). Misses are reported largest
    margin first, then in input order.
    """

    row: int  # position in the evaluation's input, from 0
    kind: MissKind
    reference_row_id: str | None  # the label
    matched_reference_row_id: str | None  # the engine's answer at the threshold
    confidence: float  # the top candidate's confidence (0 without candidates)
    label_confidence: float | None  # confidence against the labelled row; null: no label, or not found
    margin: float
    candidates: tuple[Candidate, ...]  # the engine's top candidates (≤ 5), with per-field evidence
    label_evidence: dict[str, Evidence] | None  # per-field evidence against the labelled row


class EvaluationReport(_Frozen):
    """Quality of one matching config (at one version) on a set of labelled rows."""

    matching_config_version: int
    rows: int
    labelled_matches: int  # rows whose label is a reference row (tp + fn at any threshold)
    threshold: float  # the config's threshold
    metrics: QualityMetrics  # at ``threshold``
    curve: tuple[QualityMetrics, ...]  # at 0.00, 0.01, …, 1.00
    best_f1_threshold: float | None  # the lowest curve threshold with the best F1; null: F1 never defined
    best_f1: float | None
    precision_99_threshold: float | None  # the lowest curve threshold with precision ≥ 0.99; null: none
    worst_misses: tuple[Miss, ...]  # up to 20, at ``threshold``


# --- the record of one evaluation (SPEC-style resource `eval_…`) -------------------------------


class EvaluationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"


FINAL_EVALUATION_STATUSES = frozenset({EvaluationStatus.DONE, EvaluationStatus.ERROR})


class EvaluationSource(StrEnum):
    ROWS = "rows"  # a JSON body of labelled rows
    CSV = "csv"  # a CSV upload with a `reference_row_id` column
    REVIEWS = "reviews"  # the config's recorded review decisions


class EvaluationProgress(_Frozen):
    done: int = Field(ge=0)
    total: int = Field(ge=0)


class Evaluation(_Frozen):
    id: uuid.UUID
    organization_id: uuid.UUID
    matching_config_id: uuid.UUID
    matching_config_version: int  # the version evaluated (a snapshot taken when it was accepted)
    source: EvaluationSource
    status: EvaluationStatus
    progress: EvaluationProgress
    report: EvaluationReport | None = None  # set when `done`
    error: str | None = None  # set when `error`
    created_at: AwareDatetime
    started_at: AwareDatetime | None = None
    completed_at: AwareDatetime | None = None


class ReviewedRow(NamedTuple):
    """One reviewed result of a matching config, as evaluation labels are made from it: the input
    row's values and the result's current decision (`approved` with its reference row, or
    `rejected`)."""

    document_id: str
    values: dict[str, Any]
    status: ReviewStatus
    reference_row_id: str | None
    reviewed_at: datetime
