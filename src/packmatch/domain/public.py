"""The public JSON shape of a package run, shared by the API's presenters and webhook payloads.

A webhook's `data` is the run exactly as `GET /v1/matching/packages/runs/{id}` shows it, and the
services that write deliveries may not import the API, so the renderer lives here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from packmatch.domain.ids import Kind, format_id
from packmatch.domain.models import PackageRun, SlotResult

PACKAGE_CONFIGS = "/v1/matching/packages/configs"
PACKAGE_RUNS = "/v1/matching/packages/runs"


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def score(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _document_result(slot: SlotResult) -> dict[str, Any]:
    mr = slot.matching_run_id
    return {
        "document_type": slot.document_type,
        "matching_config_id": format_id(Kind.MATCHING_CONFIG, slot.matching_config_id),
        "matching_run_id": None if mr is None else format_id(Kind.MATCHING_RUN, mr),
        "presence": slot.presence.value,
        "document_found": slot.document_found,
        "status": slot.status.value,
        "confidence": score(slot.confidence),
    }


def package_run(run: PackageRun) -> dict[str, Any]:
    public_id = format_id(Kind.PACKAGE_RUN, run.id)
    config_id = format_id(Kind.PACKAGE_CONFIG, run.package_config_id)
    return {
        "id": public_id,
        "package_config_id": config_id,
        "status": run.status.value,
        "document_results": [_document_result(s) for s in run.slots],
        "input_documents": run.input_documents,
        "error": run.error,
        "created_at": timestamp(run.created_at),
        "completed_at": timestamp(run.completed_at),
        "links": {
            "self": f"{PACKAGE_RUNS}/{public_id}",
            "config": f"{PACKAGE_CONFIGS}/{config_id}",
        },
    }
