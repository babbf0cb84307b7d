"""The response models' OpenAPI examples, built by the presenters from sample domain values.

The models themselves live in `packmatch.responses` (shared with `packmatch.client`); they are
re-exported here for the OpenAPI document and its tests.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from packmatch.api import presenters
from packmatch.domain import evaluations as quality
from packmatch.domain import models as domain
from packmatch.domain import reviews
from packmatch.domain import webhooks as hooks
from packmatch.domain.calibrations import (
    CalibrationReport,
    ConfigProposal,
    Estimate,
    FieldCalibration,
    LevelEstimate,
)
from packmatch.responses import *  # noqa: F403 (the models, re-exported)
from packmatch.responses import (
    Calibration,
    CreatedWebhook,
    Deleted,
    Evaluation,
    EvaluationList,
    Health,
    MatchingConfig,
    MatchingConfigList,
    MatchingRun,
    MatchResult,
    MatchResultList,
    PackageConfig,
    PackageConfigList,
    PackageRun,
    PackageRunBatch,
    PackageRunList,
    Readiness,
    ReferenceData,
    ReferenceDataList,
    ReferenceRow,
    ReferenceRowList,
    ResultReviewList,
    ResultReviewRecord,
    ReviewedResults,
    RunReviewList,
    RunReviewRecord,
    Webhook,
    WebhookDelivery,
    WebhookDeliveryList,
    WebhookList,
)
from packmatch.store.pagination import Page as StorePage

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


def _calibration() -> CalibrationReport:
    level = LevelEstimate(level="1", m=0.93, u=0.0012, log2_ratio=9.598)
    field = FieldCalibration(
        source="booking_reference",
        target="reference",
        strategy=domain.Strategy.EXACT,
        m=0.93,
        u=0.0012,
        blank_share=0.04,
        weight=1.0,
        missing=domain.MissingPolicy.IGNORE,
        levels=[level],
        explanation="booking_reference: scores 1 for 93.0% of matches and 0.12% of random pairs, so full "
        "agreement is 775× more likely for a match (+9.6 bits); a score of 0 is 5.0% vs 99.9% (-4.3 bits). "
        "Weight 1. Blank in 4% of the pairs compared: missing ignore.",
    )
    mapping = domain.FieldMapping(
        source="booking_reference", target="reference", strategy="exact", weight=1.0, missing="ignore"
    )
    before = Estimate(basis="model", threshold=0.85, precision=0.998, recall=0.91, f1=0.952)
    return CalibrationReport(
        method="unsupervised", rows=1000, candidate_pairs=4870, random_pairs=20000, match_share=0.18,
        iterations=12, converged=True, fields=[field], before=before,
        after=before.model_copy(update={"threshold": 0.72, "precision": 0.993, "recall": 0.981, "f1": 0.987}),
        proposal=ConfigProposal(name="Invoice to booking", field_mappings=[mapping], threshold=0.72),
        explanation="m probabilities by EM (12 iterations), u from random pairs; …",
    )  # fmt: skip


def _evaluation() -> quality.Evaluation:
    point = quality.QualityMetrics(
        threshold=0.85, precision=0.995, recall=0.97, f1=0.9823, tp=970, fp=5, fn=30, tn=0
    )
    report = quality.EvaluationReport(
        matching_config_version=1,
        rows=1000,
        labelled_matches=1000,
        threshold=0.85,
        metrics=point,
        curve=(point,),
        best_f1_threshold=0.8,
        best_f1=0.9851,
        precision_99_threshold=0.83,
        worst_misses=(),
    )
    return quality.Evaluation(
        id=uuid.UUID("3b0c5a1e-8f5d-4d7a-9c1e-2f4b6a8d0e13"), organization_id=_ORG,
        matching_config_id=_MC, matching_config_version=1, source=quality.EvaluationSource.ROWS,
        status=quality.EvaluationStatus.DONE, progress=quality.EvaluationProgress(done=1000, total=1000),
        report=report, created_at=_AT, started_at=_AT, completed_at=_AT,
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


def queued(found: quality.Evaluation) -> quality.Evaluation:
    """The same evaluation as the 202 answer shows it: queued, nothing done yet."""
    progress = quality.EvaluationProgress(done=0, total=found.progress.total)
    update = {"status": quality.EvaluationStatus.QUEUED, "progress": progress, "report": None}
    return found.model_copy(update={**update, "started_at": None, "completed_at": None})


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
        Calibration: presenters.calibration(values["matching_config"], _calibration()),
        Evaluation: presenters.evaluation(_evaluation()),
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
        EvaluationList: _listed(shown[Evaluation]),
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
        (Evaluation, 202): presenters.evaluation(queued(_evaluation())),
    }
    return {**shown, **pages, **fixed, **by_status}
