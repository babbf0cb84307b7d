"""Domain values. Repositories return these; the engine takes and returns these; nothing here does I/O."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from packmatch.domain.reviews import ResultReview, RunReview


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Strategy(StrEnum):
    EXACT = "exact"
    FUZZY = "fuzzy"
    NUMERIC_RANGE = "numeric_range"
    DATE_RANGE = "date_range"


class Presence(StrEnum):
    REQUIRED = "required"
    EXPECTED = "expected"
    OPTIONAL = "optional"


class RunStatus(StrEnum):
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"
    REVIEW = "review"
    ERROR = "error"


class SlotStatus(StrEnum):
    PENDING = "pending"
    MATCHED = "matched"
    UNMATCHED = "unmatched"
    MISSING = "missing"
    SKIPPED = "skipped"
    ERROR = "error"


class MatchingRunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ColumnType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"


# --- strategy options (validated when a config is written; the engine trusts them) -------------
# Every number in a config is bounded (SPEC §4): beyond these, values are mistakes, and some
# (a weight of 1e308) overflow the sums. The bounds are documented in docs/matching.md.

MAX_WEIGHT = 1_000_000.0
MAX_TOLERANCE_ABS = 1e15  # past this, float64 no longer holds cents
MAX_TOLERANCE_PCT = 100.0
MAX_TOLERANCE_DAYS = 3650.0  # ten years
MAX_EDITS = 2
MAX_FORMATS = 20
MAX_FORMAT_LENGTH = 100

Scorer = Literal[
    "token_set_ratio", "token_sort_ratio", "ratio", "partial_ratio", "WRatio", "jaro_winkler", "levenshtein"
]


class MissingPolicy(StrEnum):
    """What a missing or empty value on either side does to a row's confidence (SPEC §4)."""

    MISMATCH = "mismatch"  # the field scores 0 and counts
    IGNORE = "ignore"  # the field is left out of both sums


class ExactOptions(Frozen):
    max_edits: int = Field(default=0, ge=0, le=MAX_EDITS, strict=True)


class FuzzyOptions(Frozen):
    min_similarity: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    scorer: Scorer = "token_set_ratio"


class NumericRangeOptions(Frozen):
    tolerance_abs: float = Field(default=0.0, ge=0.0, le=MAX_TOLERANCE_ABS, allow_inf_nan=False)
    tolerance_pct: float = Field(default=0.0, ge=0.0, le=MAX_TOLERANCE_PCT, allow_inf_nan=False)


def _strptime_format(fmt: str) -> str:
    """A strptime pattern that parses what it formats, with at least one directive."""
    if "%" not in fmt.replace("%%", ""):
        raise ValueError(f"{fmt!r} has no % directive, so it would match one fixed text only")
    sample = datetime(2024, 9, 14, 10, 40, 30)
    try:
        datetime.strptime(sample.strftime(fmt), fmt)
    except ValueError as exc:
        raise ValueError(f"{fmt!r} is not a valid strptime format ({exc})") from None
    return fmt


DateFormat = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_FORMAT_LENGTH), AfterValidator(_strptime_format)
]


class DateRangeOptions(Frozen):
    tolerance_days: float = Field(default=0.0, ge=0.0, le=MAX_TOLERANCE_DAYS, allow_inf_nan=False)
    formats: tuple[DateFormat, ...] = Field(default=(), max_length=MAX_FORMATS)
    allow_day_month_swap: bool = Field(default=False, strict=True)


StrategyOptions = ExactOptions | FuzzyOptions | NumericRangeOptions | DateRangeOptions

OPTIONS_BY_STRATEGY: dict[Strategy, type[StrategyOptions]] = {
    Strategy.EXACT: ExactOptions,
    Strategy.FUZZY: FuzzyOptions,
    Strategy.NUMERIC_RANGE: NumericRangeOptions,
    Strategy.DATE_RANGE: DateRangeOptions,
}


class FieldMapping(Frozen):
    source: str
    target: str
    strategy: Strategy
    weight: float = Field(gt=0, le=MAX_WEIGHT, allow_inf_nan=False)
    options: dict[str, Any] = Field(default_factory=dict)
    missing: MissingPolicy = MissingPolicy.MISMATCH

    def parsed_options(self) -> StrategyOptions:
        return OPTIONS_BY_STRATEGY[self.strategy].model_validate(self.options)


# --- configuration ------------------------------------------------------------------------------


class Column(Frozen):
    name: str
    type: ColumnType


class ReferenceDataset(Frozen):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    source_type: Literal["json", "csv"]
    row_count: int
    columns: tuple[Column, ...]
    created_at: AwareDatetime
    updated_at: AwareDatetime


class ReferenceRow(NamedTuple):
    """One reference row. A NamedTuple, not a model: datasets hold millions of them."""

    id: str
    values: dict[str, Any]


class MatchingConfig(Frozen):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    reference_data_id: uuid.UUID
    field_mappings: tuple[FieldMapping, ...]
    threshold: float = Field(ge=0.0, le=1.0)
    version: int
    created_at: AwareDatetime
    updated_at: AwareDatetime


class Slot(Frozen):
    document_type: str
    matching_config_id: uuid.UUID
    presence: Presence


class PassCriteria(Frozen):
    all_required_matched: bool = True
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    allow_review_on_expected: bool = True


class PackageConfig(Frozen):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    slots: tuple[Slot, ...]
    pass_criteria: PassCriteria
    version: int
    created_at: AwareDatetime
    updated_at: AwareDatetime


class RunSnapshot(Frozen):
    """The package config and its matching configs as they were when a run was accepted."""

    package_config: PackageConfig
    matching_configs: dict[uuid.UUID, MatchingConfig]


# --- inputs and results -------------------------------------------------------------------------


class InputRow(Frozen):
    document_id: str = Field(min_length=1)
    extraction_row_id: str | None = None
    values: dict[str, Any]


class Evidence(Frozen):
    strategy: Strategy
    score: float
    source_value: Any
    reference_value: Any
    reason: str | None = None


class Candidate(Frozen):
    reference_row_id: str
    confidence: float
    evidence: dict[str, Evidence]


class RowMatch(Frozen):
    """The engine's answer for one input row."""

    matched: bool
    matched_reference_row_id: str | None
    confidence: float
    candidates: tuple[Candidate, ...]


class SlotResult(Frozen):
    document_type: str
    matching_config_id: uuid.UUID
    matching_run_id: uuid.UUID | None
    presence: Presence
    document_found: bool
    status: SlotStatus
    confidence: float | None
    error: str | None = None


class PackageRun(Frozen):
    id: uuid.UUID
    organization_id: uuid.UUID
    package_config_id: uuid.UUID
    status: RunStatus
    slots: tuple[SlotResult, ...]
    input_documents: dict[str, list[str]]
    error: str | None
    created_at: AwareDatetime
    completed_at: AwareDatetime | None
    review: RunReview | None = None


class MatchingRun(Frozen):
    id: uuid.UUID
    organization_id: uuid.UUID
    matching_config_id: uuid.UUID
    package_run_id: uuid.UUID
    document_type: str
    status: MatchingRunStatus
    rows_processed: int
    rows_matched: int
    avg_confidence: float | None
    started_at: AwareDatetime | None
    completed_at: AwareDatetime | None
    error: str | None
    created_at: AwareDatetime


class MatchResult(Frozen):
    id: uuid.UUID
    matching_run_id: uuid.UUID
    position: int
    document_id: str
    extraction_row_id: str | None
    matched: bool
    matched_reference_row_id: str | None
    confidence: float
    candidates: tuple[Candidate, ...]
    created_at: datetime
    review: ResultReview = ResultReview()
    excluded_by_review: tuple[str, ...] = ()
