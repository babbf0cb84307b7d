"""Response bodies as pydantic models, for the OpenAPI document only.

`presenters` builds every response as a plain dict and stays the single source of the shapes; these
models describe those dicts exactly (`extra="forbid"`), and `tests/unit/test_openapi_models.py`
validates each presenter's output against its model so that the two cannot drift apart. The routes
never use them as `response_model`, so FastAPI does not re-validate outputs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from packmatch.api import presenters
from packmatch.domain import models as domain
from packmatch.domain import reviews
from packmatch.domain import webhooks as hooks
from packmatch.domain.ids import Kind
from packmatch.store.pagination import Page as StorePage

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
    model_config = ConfigDict(extra="forbid")


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

    secret: str = Field(description="Signs every delivery (`X-Packmatch-Signature`); never shown again.")


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


# --- examples: built by the presenters from sample domain values, so they cannot drift ----------

_AT = datetime(2024, 9, 14, 10, 40, tzinfo=UTC)
_ORG = uuid.UUID("0e5a1c3b-8a51-4d0e-9f7a-0d9c2b9f1a11")
_REF = uuid.UUID("5f0c9a52-3c1e-4d43-9b7e-2a6f1c9d8e01")
_MC = uuid.UUID("b7e2f1a4-6d3c-4b8a-9e51-0c2d4f6a8b02")
_PKG = uuid.UUID("a1b2c3d4-e5f6-4890-abcd-ef1234567890")
_RUN = uuid.UUID("b2c3d4e5-f6a7-4901-bcde-f23456789012")
_MR = uuid.UUID("c3d4e5f6-a7b8-4012-8def-345678901234")
_MRES = uuid.UUID("d4e5f6a7-b8c9-4123-9ef0-456789012345")
_WHK = uuid.UUID("e5f6a7b8-c9d0-4234-8f01-567890123456")
_WHD = uuid.UUID("f6a7b8c9-d0e1-4345-9012-678901234567")
_KEY = uuid.UUID("a7b8c9d0-e1f2-4456-8123-789012345678")
_REV = uuid.UUID("b8c9d0e1-f2a3-4567-9234-890123456789")


def sample_values() -> dict[str, Any]:
    """One domain value per resource, as a client would see it after the README walk-through."""
    evidence = domain.Evidence(
        strategy=domain.Strategy.EXACT, score=1.0, source_value="ABC1234567", reference_value="ABC1234567"
    )
    candidate = domain.Candidate(
        reference_row_id="BK-1", confidence=0.9312, evidence={"booking_reference": evidence}
    )
    mapping = domain.FieldMapping(source="booking_reference", target="reference", strategy="exact", weight=1)
    slot = domain.Slot(document_type="invoice", matching_config_id=_MC, presence=domain.Presence.REQUIRED)
    common = {"organization_id": _ORG, "created_at": _AT}
    return {
        "reference_data": domain.ReferenceDataset(
            id=_REF, name="bookings", source_type="json", row_count=3, updated_at=_AT,
            columns=(domain.Column(name="reference", type=domain.ColumnType.STRING),), **common,
        ),
        "reference_row": domain.ReferenceRow("BK-1", {"reference": "ABC1234567", "amount": 4250.0}),
        "matching_config": domain.MatchingConfig(
            id=_MC, name="Invoice to booking", reference_data_id=_REF, field_mappings=(mapping,),
            threshold=0.85, version=1, updated_at=_AT, **common,
        ),
        "package_config": domain.PackageConfig(
            id=_PKG, name="Shipment bundle", slots=(slot,), pass_criteria=domain.PassCriteria(),
            version=1, updated_at=_AT, **common,
        ),
        "package_run": domain.PackageRun(
            id=_RUN, package_config_id=_PKG, status=domain.RunStatus.PASSED, error=None,
            slots=(domain.SlotResult(
                document_type="invoice", matching_config_id=_MC, matching_run_id=_MR,
                presence=domain.Presence.REQUIRED, document_found=True,
                status=domain.SlotStatus.MATCHED, confidence=0.93124,
            ),),
            input_documents={"invoice": ["doc_1"]}, completed_at=_AT, **common,
        ),
        "matching_run": domain.MatchingRun(
            id=_MR, matching_config_id=_MC, package_run_id=_RUN, document_type="invoice",
            status=domain.MatchingRunStatus.COMPLETED, rows_processed=1, rows_matched=1,
            avg_confidence=0.9312, started_at=_AT, completed_at=_AT, error=None, **common,
        ),
        "match_result": domain.MatchResult(
            id=_MRES, matching_run_id=_MR, position=0, document_id="doc_1", extraction_row_id="row_1",
            matched=True, matched_reference_row_id="BK-1", confidence=0.9312, candidates=(candidate,),
            created_at=_AT,
        ),
        "webhook": hooks.Webhook(
            id=_WHK, url="https://erp.example.com/hooks/packmatch", events=(hooks.WebhookEvent.COMPLETED,),
            is_active=True, secret="whsec_3q2-uA1vFtK9xS0bLrZc7mWd4ePjN8yHgQoT5iUa6fE", updated_at=_AT,
            **common,
        ),
        "webhook_delivery": hooks.WebhookDelivery(
            id=_WHD, webhook_id=_WHK, event=hooks.WebhookEvent.COMPLETED, package_run_id=_RUN,
            status=hooks.DeliveryStatus.DELIVERED, attempts=1, last_status_code=200, last_error=None,
            next_attempt_at=None, delivered_at=_AT, updated_at=_AT, **common,
        ),
    }  # fmt: skip


def _record() -> Any:
    who = reviews.Reviewer(key_id=_KEY, name="Dana (AP team)")
    return reviews.ReviewRecord(
        id=_REV, decision=reviews.ReviewStatus.APPROVED, reference_row_id="BK-1", notes=None,
        reviewed_by=who, created_at=_AT,
    )  # fmt: skip


def _listed(item: dict[str, Any]) -> dict[str, Any]:
    return presenters.page(StorePage(items=[item], total=1, limit=20, next_cursor=None), lambda x: x)


def accepted_run(run: domain.PackageRun) -> domain.PackageRun:
    """The same run as the 202 answer shows it: still running, its slots pending."""
    pending = tuple(
        s.model_copy(
            update={"matching_run_id": None, "status": domain.SlotStatus.PENDING, "confidence": None}
        )
        for s in run.slots
    )
    return run.model_copy(update={"status": domain.RunStatus.RUNNING, "slots": pending, "completed_at": None})


def redelivered(delivery: hooks.WebhookDelivery) -> hooks.WebhookDelivery:
    """The same delivery as the redeliver answer shows it: due again now."""
    return delivery.model_copy(update={"status": hooks.DeliveryStatus.PENDING, "next_attempt_at": _AT})


def examples() -> dict[Any, dict[str, Any]]:
    """By model, and by (model, status) where one status shows the resource differently."""
    values = sample_values()
    shown = {
        ReferenceData: presenters.reference_data(values["reference_data"]),
        ReferenceRow: presenters.reference_row(values["reference_row"]),
        MatchingConfig: presenters.matching_config(values["matching_config"]),
        PackageConfig: presenters.package_config(values["package_config"]),
        PackageRun: presenters.package_run(values["package_run"]),
        MatchingRun: presenters.matching_run(values["matching_run"]),
        MatchResult: presenters.match_result(values["match_result"]),
        Webhook: presenters.webhook(values["webhook"]),
        CreatedWebhook: presenters.created_webhook(values["webhook"]),
        WebhookDelivery: presenters.webhook_delivery(values["webhook_delivery"]),
        RunReviewRecord: presenters.run_review_record(_record()),
        ResultReviewRecord: presenters.result_review_record(_record()),
    }
    pages: dict[type[BaseModel], dict[str, Any]] = {
        ReferenceDataList: _listed(shown[ReferenceData]),
        ReferenceRowList: _listed(shown[ReferenceRow]),
        MatchingConfigList: _listed(shown[MatchingConfig]),
        PackageConfigList: _listed(shown[PackageConfig]),
        PackageRunList: _listed(shown[PackageRun]),
        MatchResultList: _listed(shown[MatchResult]),
        WebhookList: _listed(shown[Webhook]),
        WebhookDeliveryList: _listed(shown[WebhookDelivery]),
        RunReviewList: _listed(shown[RunReviewRecord]),
        ResultReviewList: _listed(shown[ResultReviewRecord]),
    }
    fixed: dict[type[BaseModel], dict[str, Any]] = {
        Deleted: {"deleted": True},
        Health: {"status": "ok"},
        Readiness: {"status": "ok", "checks": {"database": "ok", "broker": "ok"}},
    }
    refused = {
        "index": 1,
        "error": {
            "statusCode": 404,
            "code": "not_found",
            "error": "Not Found",
            "message": "No package config with this ID exists for your organization.",
            "details": [{"field": "runs[1].package_config_id", "message": "No package config with this ID…"}],
        },
    }
    fixed[ReviewedResults] = {"data": [shown[MatchResult]]}
    fixed[PackageRunBatch] = {"data": [presenters.package_run(accepted_run(values["package_run"])), refused]}
    by_status = {
        (PackageRun, 202): presenters.package_run(accepted_run(values["package_run"])),
        (WebhookDelivery, 202): presenters.webhook_delivery(redelivered(values["webhook_delivery"])),
    }
    return {**shown, **pages, **fixed, **by_status}
