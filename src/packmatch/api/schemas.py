"""Request bodies. Responses are plain dicts built by `presenters` (documented in OpenAPI by examples)."""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Any, Literal, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from packmatch.domain.ids import Kind, parse_id
from packmatch.domain.models import (
    MAX_WEIGHT,
    FieldMapping,
    InputRow,
    MissingPolicy,
    PassCriteria,
    Presence,
    Strategy,
)
from packmatch.domain.values import nested_problems
from packmatch.domain.webhooks import WebhookEvent
from packmatch.errors import FieldProblem, ValidationFailed
from packmatch.quality.calibration import DEFAULT_SAMPLE_PAIRS
from packmatch.services.calibrations import MAX_ROWS as CALIBRATION_MAX_ROWS
from packmatch.services.calibrations import MAX_SAMPLE_PAIRS as CALIBRATION_MAX_SAMPLE_PAIRS
from packmatch.services.evaluations import MAX_ROWS as EVALUATION_MAX_ROWS

MAX_ROWS_PER_TYPE = 1000
MAX_SLOTS = 50
MAX_MAPPINGS = 100
MAX_VALUE_PROBLEMS = 20

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
DocumentType = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _has_non_finite(value: Any) -> bool:
    """Iterative, so that a deeply nested document cannot exhaust the stack."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return True
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _finite(value: dict[str, Any]) -> dict[str, Any]:
    """Python's JSON parser accepts NaN and ±Infinity; JSON (and PostgreSQL) do not."""
    if _has_non_finite(value):
        raise ValueError("NaN and Infinity are not JSON numbers.")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_finite)]

MAX_WAIT_SECONDS = 30


def _wait_seconds(value: Any) -> float:
    """`?wait=`: one message for every bad value (text, NaN, ±Infinity, negative, over 30)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 <= seconds <= MAX_WAIT_SECONDS):
        raise PydanticCustomError("wait_seconds", "wait must be a number of seconds from 0 to 30.")
    return seconds


WaitSeconds = Annotated[float, BeforeValidator(_wait_seconds)]


def _nul_paths(value: Any) -> list[str]:
    """Where strings (or keys) hold U+0000, which PostgreSQL text cannot store. Iterative, as above."""
    found: list[str] = []
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            found.append(path or "body")
        elif isinstance(item, dict):
            for key, sub in item.items():
                name = str(key).replace("\x00", "\\u0000")
                inner = f"{path}.{name}" if path else name
                if name != key:
                    found.append(inner)
                pending.append((inner, sub))
        elif isinstance(item, list):
            pending.extend((f"{path}[{i}]", sub) for i, sub in enumerate(item))
    return sorted(set(found))


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: Any) -> Any:
        if paths := _nul_paths(data):
            message = "Text must not contain NUL (U+0000) characters."
            raise ValidationFailed(message, details=[FieldProblem(p, message) for p in paths[:20]])
        return data


Model = TypeVar("Model", bound=BaseModel)


def validate_body(model: type[Model], document: Any) -> Model:
    """`document` (a parsed body) as `model`; errors raised as FastAPI raises a body's errors."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors) from None


class ReferenceDataCreate(Body):
    name: Name
    rows: list[JsonObject] = Field(max_length=5_000_000)


class CsvUploadName(Body):
    """The `name` of a CSV upload (a multipart text field, or taken from the file name)."""

    name: Name


class FieldMappingIn(Body):
    source: Identifier
    target: Identifier
    strategy: Strategy
    weight: float = Field(gt=0, le=MAX_WEIGHT, allow_inf_nan=False, strict=True)
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="Per strategy, each bounded (SPEC §4, docs/matching.md): exact `max_edits` (0–2); "
        "fuzzy `min_similarity` (0–1), `scorer`; numeric_range `tolerance_abs` (0–1e15), "
        "`tolerance_pct` (0–100); date_range `tolerance_days` (0–3650), `formats` (≤ 20 strptime "
        "patterns, checked), `allow_day_month_swap`.",
    )
    missing: MissingPolicy = Field(
        default=MissingPolicy.MISMATCH,
        description="`mismatch`: a missing or empty value scores 0; `ignore`: the field is left out "
        "of the row's confidence.",
    )

    def to_domain(self) -> FieldMapping:
        return FieldMapping(**self.model_dump())


class CalibrationRowIn(Body):
    values: JsonObject
    reference_row_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None,
        description="The reference row this input truly matches, or null for none. Give it on every "
        "row or on none: labelled rows make the calibration supervised.",
    )


def _refuse_nested(rows: list[CalibrationRowIn]) -> None:
    """Labelled rows' values are scalars (`domain.values`), as a run's input: each nested one named."""
    found = ((f"rows[{i}].values", row.values) for i, row in enumerate(rows))
    if problems := nested_problems(found, MAX_VALUE_PROBLEMS):
        raise ValidationFailed(f"Input values are invalid: {problems[0].message}", details=problems)


class CalibrationCreate(Body):
    rows: list[CalibrationRowIn] = Field(min_length=1, max_length=CALIBRATION_MAX_ROWS)
    sample_pairs: int = Field(
        default=DEFAULT_SAMPLE_PAIRS,
        ge=1_000,
        le=CALIBRATION_MAX_SAMPLE_PAIRS,
        strict=True,
        description="Random input × reference pairs drawn to estimate the u probabilities.",
    )
    propose_missing: bool = Field(
        default=True,
        strict=True,
        description="false keeps each mapping's `missing` policy (`ignore` is matched by the full "
        "scan for now: exact, but slower on big datasets).",
    )

    @model_validator(mode="after")
    def _scalar_values(self) -> CalibrationCreate:
        _refuse_nested(self.rows)
        return self

    def labels(self) -> list[str | None] | None:
        """The labels, or None when no row has one; rows labelled only in part → 400."""
        labelled = ["reference_row_id" in row.model_fields_set for row in self.rows]
        if not any(labelled):
            return None
        if not all(labelled):
            message = "Give reference_row_id (a row id or null) on every row or on none."
            problems = [
                FieldProblem(f"rows[{i}].reference_row_id", message)
                for i, ok in enumerate(labelled)
                if not ok
            ]
            raise ValidationFailed(message, details=problems[:20])
        return [row.reference_row_id for row in self.rows]


class EvaluationCreate(Body):
    rows: list[CalibrationRowIn] | None = Field(
        default=None,
        min_length=1,
        max_length=EVALUATION_MAX_ROWS,
        description="Labelled rows: `reference_row_id` is the row each should match, or null for none.",
    )
    from_reviews: bool = Field(
        default=False,
        strict=True,
        description="true: the labels are the config's recorded review decisions (instead of `rows`).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> EvaluationCreate:
        if (self.rows is not None) != self.from_reviews:
            return self
        message = "Send either `rows` or `from_reviews: true`, not both."
        if self.rows is None:
            message = "Send labelled `rows`, or `from_reviews: true`."
        raise ValidationFailed(message, details=[FieldProblem("rows", message)])

    @model_validator(mode="after")
    def _scalar_values(self) -> EvaluationCreate:
        if self.rows is not None:
            _refuse_nested(self.rows)
        return self


class MatchingConfigCreate(Body):
    name: Name
    reference_data_id: str
    field_mappings: list[FieldMappingIn] = Field(min_length=1, max_length=MAX_MAPPINGS)
    threshold: float = Field(default=0.85, ge=0.0, le=1.0, allow_inf_nan=False, strict=True)


class MatchingConfigReplace(MatchingConfigCreate):
    """PUT body: the create body; `reference_data_id` may be left out (it cannot change)."""

    reference_data_id: str | None = None  # type: ignore[assignment]


class SlotIn(Body):
    document_type: DocumentType
    matching_config_id: str
    presence: Presence


class PassCriteriaIn(Body):
    # strict: JSON `true`/`false` and numbers only, not "yes", 0 or "0.3" (pydantic's lax coercions)
    all_required_matched: bool = Field(default=True, strict=True)
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False, strict=True)
    allow_review_on_expected: bool = Field(default=True, strict=True)

    def to_domain(self) -> PassCriteria:
        return PassCriteria(**self.model_dump())


class PackageConfigCreate(Body):
    name: Name
    document_type_configs: list[SlotIn] = Field(min_length=1, max_length=MAX_SLOTS)
    pass_criteria: PassCriteriaIn = Field(default_factory=PassCriteriaIn)


class InputRowIn(Body):
    document_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    extraction_row_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    values: JsonObject


class PackageConfigReplace(PackageConfigCreate):
    """PUT body: the same fields as the create body, all replaced."""


class PackageRunCreate(Body):
    package_config_id: str
    input_documents: dict[str, Annotated[list[InputRowIn], Field(max_length=MAX_ROWS_PER_TYPE)]]

    @model_validator(mode="after")
    def _scalar_values(self) -> PackageRunCreate:
        """Input values are scalars (`domain.values`): each nested one named by row and field."""
        rows = (
            (f"input_documents.{name}[{i}].values", row.values)
            for name, rows in self.input_documents.items()
            for i, row in enumerate(rows)
        )
        if problems := nested_problems(rows, MAX_VALUE_PROBLEMS):
            raise ValidationFailed(f"Input values are invalid: {problems[0].message}", details=problems)
        return self

    def to_domain(self) -> tuple[uuid.UUID, dict[str, list[InputRow]]]:
        """The package config's id and the input documents, as `Runs.accept` takes them."""
        config_id = parse_id(Kind.PACKAGE_CONFIG, self.package_config_id, field="package_config_id")
        documents = {
            name: [InputRow(**row.model_dump()) for row in rows]
            for name, rows in self.input_documents.items()
        }
        return config_id, documents


MAX_BATCH_RUNS = 1000


class PackageRunBatchCreate(Body):
    """Each item is checked on its own (as a `PackageRunCreate`), so one bad item fails only itself."""

    runs: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=MAX_BATCH_RUNS,
        description="Up to 1,000 package runs, each the body of `POST /v1/matching/packages/runs`.",
    )


# --- reviews (SPEC §3 Reviews) ------------------------------------------------------------------

Decided = Literal["approved", "rejected"]
Notes = Annotated[str, StringConstraints(max_length=2000)] | None
ReferenceRowId = Annotated[str, StringConstraints(min_length=1, max_length=200)] | None
MAX_BULK_DECISIONS = 500


class ResultReviewCreate(Body):
    status: Decided
    notes: Notes = None
    reference_row_id: ReferenceRowId = Field(
        default=None, description="One of the result's candidates; the top candidate if omitted."
    )


class BulkDecision(ResultReviewCreate):
    result_id: str


class BulkResultReviewCreate(Body):
    decisions: list[BulkDecision] = Field(min_length=1, max_length=MAX_BULK_DECISIONS)


class RunReviewCreate(Body):
    decision: Decided
    notes: Notes = None


# --- webhooks ----------------------------------------------------------------------------------

WebhookUrl = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
WebhookEvents = Annotated[list[WebhookEvent], Field(min_length=1, max_length=20)]
# Printable ASCII without spaces: it is used as HMAC key bytes, and pasted into receivers' configs.
WebhookSecret = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{16,255}$")]


def _completed() -> list[WebhookEvent]:
    return [WebhookEvent.COMPLETED]


class WebhookReplace(Body):
    """PUT body: url, events and is_active are replaced (the secret stays)."""

    url: WebhookUrl
    events: WebhookEvents = Field(default_factory=_completed)
    is_active: bool = Field(default=True, strict=True)


class WebhookCreate(WebhookReplace):
    secret: WebhookSecret | None = Field(
        default=None, description="16–255 printable ASCII characters; generated (`whsec_…`) if omitted."
    )
