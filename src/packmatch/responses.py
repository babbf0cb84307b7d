"""The API's response bodies as pydantic models, declared once for the server and the client.

The API's `presenters` build every response as a plain dict; these models describe those dicts
exactly, and `tests/unit/test_openapi_models.py` round-trips each presenter's output through its
model, so the two cannot drift apart. The OpenAPI document is generated from them
(`api/response_models.py`), and `packmatch.client` parses responses with them. This module imports
only pydantic and `packmatch.domain`, so that a client-only install (no server extra) can use it.

They ignore keys they do not know (a newer server may add fields; an old client keeps working),
while the OpenAPI document still says `additionalProperties: false` of what the server sends today.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from packmatch.domain import evaluations as quality
from packmatch.domain import models as domain
from packmatch.domain import webhooks as hooks
from packmatch.domain.calibrations import CalibrationReport
from packmatch.domain.ids import Kind

UUID_PATTERN = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"


def id_pattern(kind: Kind) -> str:
    return f"^{kind.value}_{UUID_PATTERN}$"


RefId = Annotated[str, Field(pattern=id_pattern(Kind.REFERENCE_DATA))]
McId = Annotated[str, Field(pattern=id_pattern(Kind.MATCHING_CONFIG))]
PkgId = Annotated[str, Field(pattern=id_pattern(Kind.PACKAGE_CONFIG))]
RunId = Annotated[str, Field(pattern=id_pattern(Kind.PACKAGE_RUN))]
MrId = Annotated[str, Field(pattern=id_pattern(Kind.MATCHING_RUN))]
MresId = Annotated[str, Field(pattern=id_pattern(Kind.MATCH_RESULT))]
WhkId = Annotated[str, Field(pattern=id_pattern(Kind.WEBHOOK))]
EvalId = Annotated[str, Field(pattern=id_pattern(Kind.EVALUATION))]
WhdId = Annotated[str, Field(pattern=id_pattern(Kind.WEBHOOK_DELIVERY))]
RequestId = Annotated[str, Field(pattern=id_pattern(Kind.REQUEST))]
Timestamp = Annotated[str, Field(pattern=TIMESTAMP_PATTERN, description="UTC, milliseconds, `Z`.")]
Score = Annotated[float, Field(ge=0.0, le=1.0, description="Rounded to 4 decimals.")]
Count = Annotated[int, Field(ge=0)]

# Every code `api.errors` can answer with; a unit test keeps this equal to `errors.STATUS_BY_CODE`.
ErrorCode = Literal[
    "validation_error",
    "unauthorized",
    "insufficient_scope",
    "not_found",
    "method_not_allowed",
    "conflict",
    "idempotency_key_in_use",
    "precondition_failed",
    "payload_too_large",
    "unsupported_media_type",
    "idempotency_key_mismatch",
    "rate_limited",
    "internal_error",
    "unavailable",
]


class Out(BaseModel):
    model_config = ConfigDict(extra="ignore", json_schema_extra={"additionalProperties": False})


class ErrorDetail(Out):
    field: str = Field(
        description="Dotted path of the offending input, e.g. `document_type_configs[1].presence`."
    )
    message: str


class ErrorBody(Out):
    """The error envelope of every non-2xx response."""

    status_code: int = Field(alias="statusCode", ge=400, le=599)
    code: ErrorCode
    error: str = Field(description="The HTTP reason phrase.")
    message: str
    retryable: bool
    request_id: RequestId = Field(description="Equal to the `X-Request-Id` header.")
    timestamp: Timestamp
    path: str
    details: list[ErrorDetail]


class Pagination(Out):
    total: Count = Field(description="Items matching the filters, on all pages.")
    limit: int = Field(ge=1, le=100)
    has_more: bool
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


T = TypeVar("T")


class Page(Out, Generic[T]):
    data: list[T]
    pagination: Pagination


class SelfLink(Out):
    self_: str = Field(alias="self")


class Column(Out):
    name: str
    type: domain.ColumnType


class ReferenceDataLinks(SelfLink):
    rows: str


class ReferenceData(Out):
    id: RefId
    name: str
    source_type: Literal["json", "csv"]
    row_count: Count
    columns: list[Column]
    created_at: Timestamp
    updated_at: Timestamp
    links: ReferenceDataLinks


class ReferenceRow(BaseModel):
    """A row as uploaded: its `id` plus one key per column."""

    model_config = ConfigDict(extra="allow")
    id: str


class FieldMapping(Out):
    source: str
    target: str
    strategy: domain.Strategy
    weight: float = Field(gt=0)
    options: dict[str, Any]
    missing: domain.MissingPolicy


class MatchingConfig(Out):
    id: McId
    name: str
    reference_data_id: RefId
    field_mappings: list[FieldMapping]
    threshold: float = Field(ge=0.0, le=1.0)
    version: int = Field(ge=1)
    created_at: Timestamp
    updated_at: Timestamp
    links: SelfLink


class DocumentTypeConfig(Out):
    document_type: str
    matching_config_id: McId
    presence: domain.Presence


class PassCriteria(Out):
    all_required_matched: bool
    min_confidence: float = Field(ge=0.0, le=1.0)
    allow_review_on_expected: bool


class PackageConfigLinks(SelfLink):
    runs: str


class PackageConfig(Out):
    id: PkgId
    name: str
    document_type_configs: list[DocumentTypeConfig]
    pass_criteria: PassCriteria
    version: int = Field(ge=1)
    created_at: Timestamp
    updated_at: Timestamp
    links: PackageConfigLinks


class DocumentResult(Out):
    document_type: str
    matching_config_id: McId
    matching_run_id: MrId | None
    presence: domain.Presence
    document_found: bool
    status: domain.SlotStatus
    confidence: Score | None


class PackageRunLinks(SelfLink):
    config: str


KeyId = Annotated[str, Field(pattern=id_pattern(Kind.API_KEY))]
RevId = Annotated[str, Field(pattern=id_pattern(Kind.REVIEW))]
Decision = Literal["approved", "rejected"]


class ReviewedBy(Out):
    """The API key that decided: its id and name (`keys create --name`), never the key itself."""

    key_id: KeyId
    name: str | None


class HistoryLink(Out):
    history: str


class RunReview(Out):
    """Null on the run until someone decides; the run's `status` never changes."""

    decision: Decision
    notes: str | None
    reviewed_by: ReviewedBy
    reviewed_at: Timestamp
    links: HistoryLink


class ResultReview(Out):
    status: Literal["pending", "approved", "rejected"]
    reference_row_id: str | None
    notes: str | None
    reviewed_by: ReviewedBy | None
    reviewed_at: Timestamp | None


class RunReviewRecord(Out):
    id: RevId
    decision: Decision
    notes: str | None
    reviewed_by: ReviewedBy
    reviewed_at: Timestamp


class ResultReviewRecord(Out):
    id: RevId
    status: Decision
    reference_row_id: str | None
    notes: str | None
    reviewed_by: ReviewedBy
    reviewed_at: Timestamp


class PackageRun(Out):
    id: RunId
    package_config_id: PkgId
    status: domain.RunStatus
    document_results: list[DocumentResult]
    input_documents: dict[str, list[str]] = Field(description="Distinct document ids per supplied type.")
    error: str | None
    created_at: Timestamp
    completed_at: Timestamp | None
    links: PackageRunLinks
    review: RunReview | None


class MatchingRunLinks(SelfLink):
    config: str
    results: str
    package_run: str


class MatchingRun(Out):
    id: MrId
    matching_config_id: McId
    package_run_id: RunId
    document_type: str
    status: domain.MatchingRunStatus
    rows_processed: Count
    rows_matched: Count
    avg_confidence: Score | None
    started_at: Timestamp | None
    completed_at: Timestamp | None
    error: str | None
    created_at: Timestamp
    links: MatchingRunLinks


class Evidence(Out):
    strategy: domain.Strategy
    score: Score
    source_value: Any
    reference_value: Any
    reason: str | None = Field(description="Null when the values were compared, else why the score is 0.")


class Candidate(Out):
    reference_row_id: str
    confidence: Score
    evidence: dict[str, Evidence] = Field(description="Keyed by source field (`field#2` for a repeat).")


class MatchResult(Out):
    id: MresId
    document_id: str
    extraction_row_id: str | None
    matched: bool
    matched_reference_row_id: str | None
    confidence: Score
    candidates: list[Candidate] = Field(max_length=5, description="Best first.")
    review: ResultReview
    excluded_by_review: list[str] = Field(
        description="Reference rows left out of this result's search: a reviewer rejected them for this "
        "document under this matching config."
    )


class WebhookLinks(SelfLink):
    deliveries: str


class Webhook(Out):
    id: WhkId
    url: str
    events: list[hooks.WebhookEvent]
    is_active: bool
    created_at: Timestamp
    updated_at: Timestamp
    links: WebhookLinks


class CreatedWebhook(Webhook):
    """The create's answer: the one time the secret is shown."""

    secret: str | None = Field(
        description="Signs every delivery (`X-Packmatch-Signature`, `webhook-signature`); never shown again."
        " `null` on an idempotent replay (header `Idempotent-Secret-Omitted: true`): call rotate-secret."
    )


class WebhookDeliveryLinks(SelfLink):
    webhook: str
    package_run: str
    redeliver: str


class WebhookDelivery(Out):
    id: WhdId
    webhook_id: WhkId
    event: hooks.WebhookEvent
    package_run_id: RunId
    status: hooks.DeliveryStatus
    attempts: Count = Field(description="Attempts made so far (each POST, retries and redeliveries).")
    last_status_code: int | None = Field(description="HTTP status of the last attempt; null if none came.")
    last_error: str | None = Field(description="Why the last attempt failed; null after a success.")
    next_attempt_at: Timestamp | None = Field(description="When the next attempt is due; null once final.")
    delivered_at: Timestamp | None
    created_at: Timestamp
    links: WebhookDeliveryLinks


class ReferenceDataList(Page[ReferenceData]):
    pass


class ReferenceRowList(Page[ReferenceRow]):
    pass


class MatchingConfigList(Page[MatchingConfig]):
    pass


class PackageConfigList(Page[PackageConfig]):
    pass


class PackageRunList(Page[PackageRun]):
    pass


class ResultPagination(Pagination):
    limit: int = Field(ge=1, le=1000)


class MatchResultList(Page[MatchResult]):
    pagination: ResultPagination


class RunReviewList(Page[RunReviewRecord]):
    pass


class ResultReviewList(Page[ResultReviewRecord]):
    pass


class ReviewedResults(Out):
    """The bulk review's answer: the reviewed results, in the order of `decisions`."""

    data: list[MatchResult]


class WebhookList(Page[Webhook]):
    pass


class WebhookDeliveryList(Page[WebhookDelivery]):
    pass


class BatchItemError(Out):
    """The error envelope's fields for one item of a batch that was not accepted."""

    status_code: int = Field(alias="statusCode", ge=400, le=599)
    code: ErrorCode
    error: str = Field(description="The HTTP reason phrase.")
    message: str
    details: list[ErrorDetail] = Field(
        description="Fields are the batch body's (`runs[3].package_config_id`)."
    )


class BatchItemRefused(Out):
    index: int = Field(ge=0, description="The item's position in `runs`.")
    error: BatchItemError


class PackageRunBatch(Out):
    """One entry per submitted run, in input order: the accepted run, or why that item was refused."""

    data: list[PackageRun | BatchItemRefused]


class Deleted(Out):
    deleted: Literal[True]


class Health(Out):
    status: Literal["ok"]


class Readiness(Out):
    status: Literal["ok"]
    checks: dict[str, Literal["ok"]]


class CalibrationLinks(Out):
    config: str


class Calibration(CalibrationReport):
    """`POST /v1/matching/configs/{id}/calibrations`: the report and the config version it is for."""

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra={"additionalProperties": False})

    matching_config_id: str
    config_version: int
    links: CalibrationLinks


class EvaluationLinks(SelfLink):
    config: str


class Evaluation(Out):
    """`…/matching/configs/{id}/evaluations/{eval_id}`: queued, running (progress), done (report) or error."""

    id: EvalId
    matching_config_id: McId
    matching_config_version: int = Field(description="The config version evaluated, as it was when accepted.")
    source: quality.EvaluationSource
    status: quality.EvaluationStatus
    progress: quality.EvaluationProgress
    report: quality.EvaluationReport | None = Field(description="Set when `status` is `done`.")
    error: str | None = Field(description="Set when `status` is `error`.")
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None
    links: EvaluationLinks


class EvaluationList(Page[Evaluation]):
    pass
