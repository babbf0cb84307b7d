"""Domain values → the SPEC's JSON shapes (public ids, millisecond UTC timestamps, 4-decimal scores)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from packmatch.domain.calibrations import CalibrationReport
from packmatch.domain.evaluations import Evaluation
from packmatch.domain.ids import Kind, format_id
from packmatch.domain.models import (
    MatchingConfig,
    MatchingRun,
    PackageConfig,
    ReferenceDataset,
    ReferenceRow,
)

# The run's shape is shared with webhook payloads; these names stay part of this module.
from packmatch.domain.public import PACKAGE_CONFIGS as PACKAGE_CONFIGS
from packmatch.domain.public import PACKAGE_RUNS as PACKAGE_RUNS
from packmatch.domain.public import match_result as match_result
from packmatch.domain.public import package_run as package_run
from packmatch.domain.public import reviewer as reviewer
from packmatch.domain.public import score as score
from packmatch.domain.public import timestamp as timestamp
from packmatch.domain.reviews import ReviewRecord
from packmatch.domain.webhooks import Webhook, WebhookDelivery
from packmatch.store.pagination import Page

T = TypeVar("T")

REFERENCE_DATA = "/v1/matching/reference-data"
MATCHING_CONFIGS = "/v1/matching/configs"
MATCHING_RUNS = "/v1/matching/runs"
WEBHOOKS = "/v1/webhooks"


def page(result: Page[T], present: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    return {
        "data": [present(item) for item in result.items],
        "pagination": {
            "total": result.total,
            "limit": result.limit,
            "has_more": result.has_more,
            "next_cursor": result.next_cursor,
        },
    }


def reference_data(dataset: ReferenceDataset) -> dict[str, Any]:
    self_link = f"{REFERENCE_DATA}/{format_id(Kind.REFERENCE_DATA, dataset.id)}"
    return {
        "id": format_id(Kind.REFERENCE_DATA, dataset.id),
        "name": dataset.name,
        "source_type": dataset.source_type,
        "row_count": dataset.row_count,
        "columns": [{"name": c.name, "type": c.type.value} for c in dataset.columns],
        "created_at": timestamp(dataset.created_at),
        "updated_at": timestamp(dataset.updated_at),
        "links": {"self": self_link, "rows": f"{self_link}/rows"},
    }


def reference_row(row: ReferenceRow) -> dict[str, Any]:
    return {"id": row.id, **row.values}


def matching_config(config: MatchingConfig) -> dict[str, Any]:
    public_id = format_id(Kind.MATCHING_CONFIG, config.id)
    return {
        "id": public_id,
        "name": config.name,
        "reference_data_id": format_id(Kind.REFERENCE_DATA, config.reference_data_id),
        "field_mappings": [m.model_dump(mode="json") for m in config.field_mappings],
        "threshold": config.threshold,
        "version": config.version,
        "created_at": timestamp(config.created_at),
        "updated_at": timestamp(config.updated_at),
        "links": {"self": f"{MATCHING_CONFIGS}/{public_id}"},
    }


def package_config(config: PackageConfig) -> dict[str, Any]:
    public_id = format_id(Kind.PACKAGE_CONFIG, config.id)
    return {
        "id": public_id,
        "name": config.name,
        "document_type_configs": [
            {
                "document_type": s.document_type,
                "matching_config_id": format_id(Kind.MATCHING_CONFIG, s.matching_config_id),
                "presence": s.presence.value,
            }
            for s in config.slots
        ],
        "pass_criteria": config.pass_criteria.model_dump(mode="json"),
        "version": config.version,
        "created_at": timestamp(config.created_at),
        "updated_at": timestamp(config.updated_at),
        "links": {
            "self": f"{PACKAGE_CONFIGS}/{public_id}",
            "runs": f"{PACKAGE_RUNS}?package_config_id={public_id}",
        },
    }


def matching_run(run: MatchingRun) -> dict[str, Any]:
    self_link = f"{MATCHING_RUNS}/{format_id(Kind.MATCHING_RUN, run.id)}"
    package_run_id = format_id(Kind.PACKAGE_RUN, run.package_run_id)
    return {
        "id": format_id(Kind.MATCHING_RUN, run.id),
        "matching_config_id": format_id(Kind.MATCHING_CONFIG, run.matching_config_id),
        "package_run_id": package_run_id,
        "document_type": run.document_type,
        "status": run.status.value,
        "rows_processed": run.rows_processed,
        "rows_matched": run.rows_matched,
        "avg_confidence": score(run.avg_confidence),
        "started_at": timestamp(run.started_at),
        "completed_at": timestamp(run.completed_at),
        "error": run.error,
        "created_at": timestamp(run.created_at),
        "links": {
            "self": self_link,
            "config": f"{MATCHING_CONFIGS}/{format_id(Kind.MATCHING_CONFIG, run.matching_config_id)}",
            "results": f"{self_link}/results",
            "package_run": f"{PACKAGE_RUNS}/{package_run_id}",
        },
    }


def _review_record(record: ReviewRecord) -> dict[str, Any]:
    return {
        "id": format_id(Kind.REVIEW, record.id),
        "notes": record.notes,
        "reviewed_by": reviewer(record.reviewed_by),
        "reviewed_at": timestamp(record.created_at),
    }


def run_review_record(record: ReviewRecord) -> dict[str, Any]:
    """One decision of a run's history: `decision`."""
    shown = _review_record(record)
    return {"id": shown.pop("id"), "decision": record.decision.value, **shown}


def result_review_record(record: ReviewRecord) -> dict[str, Any]:
    """One decision of a result's history: `status` and the `reference_row_id` it concerned."""
    shown = _review_record(record)
    return {
        "id": shown.pop("id"),
        "status": record.decision.value,
        "reference_row_id": record.reference_row_id,
        **shown,
    }


def webhook(hook: Webhook, *, with_secret: bool = False) -> dict[str, Any]:
    """The secret is shown once, in the answer to the create."""
    self_link = f"{WEBHOOKS}/{format_id(Kind.WEBHOOK, hook.id)}"
    shown = {
        "id": format_id(Kind.WEBHOOK, hook.id),
        "url": hook.url,
        "events": [e.value for e in hook.events],
        "is_active": hook.is_active,
        "created_at": timestamp(hook.created_at),
        "updated_at": timestamp(hook.updated_at),
        "links": {"self": self_link, "deliveries": f"{self_link}/deliveries"},
    }
    return {**shown, "secret": hook.secret} if with_secret else shown


def created_webhook(hook: Webhook) -> dict[str, Any]:
    return webhook(hook, with_secret=True)


def webhook_delivery(delivery: WebhookDelivery) -> dict[str, Any]:
    webhook_link = f"{WEBHOOKS}/{format_id(Kind.WEBHOOK, delivery.webhook_id)}"
    self_link = f"{webhook_link}/deliveries/{format_id(Kind.WEBHOOK_DELIVERY, delivery.id)}"
    run_id = format_id(Kind.PACKAGE_RUN, delivery.package_run_id)
    return {
        "id": format_id(Kind.WEBHOOK_DELIVERY, delivery.id),
        "webhook_id": format_id(Kind.WEBHOOK, delivery.webhook_id),
        "event": delivery.event.value,
        "package_run_id": run_id,
        "status": delivery.status.value,
        "attempts": delivery.attempts,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "next_attempt_at": timestamp(delivery.next_attempt_at),
        "delivered_at": timestamp(delivery.delivered_at),
        "created_at": timestamp(delivery.created_at),
        "links": {
            "self": self_link,
            "webhook": webhook_link,
            "package_run": f"{PACKAGE_RUNS}/{run_id}",
            "redeliver": f"{self_link}/redeliver",
        },
    }


def calibration(config: MatchingConfig, report: CalibrationReport) -> dict[str, Any]:
    """A calibration's answer: the report, for which config version, and a link to that config."""
    config_id = format_id(Kind.MATCHING_CONFIG, config.id)
    return {
        "matching_config_id": config_id,
        "config_version": config.version,
        **report.model_dump(mode="json"),
        "links": {"config": f"{MATCHING_CONFIGS}/{config_id}"},
    }


def evaluation(found: Evaluation) -> dict[str, Any]:
    config_link = f"{MATCHING_CONFIGS}/{format_id(Kind.MATCHING_CONFIG, found.matching_config_id)}"
    ident = format_id(Kind.EVALUATION, found.id)
    return {
        "id": ident,
        "matching_config_id": format_id(Kind.MATCHING_CONFIG, found.matching_config_id),
        "matching_config_version": found.matching_config_version,
        "source": found.source.value,
        "status": found.status.value,
        "progress": found.progress.model_dump(mode="json"),
        "report": None if found.report is None else found.report.model_dump(mode="json"),
        "error": found.error,
        "created_at": timestamp(found.created_at),
        "started_at": None if found.started_at is None else timestamp(found.started_at),
        "completed_at": None if found.completed_at is None else timestamp(found.completed_at),
        "links": {"self": f"{config_link}/evaluations/{ident}", "config": config_link},
    }
