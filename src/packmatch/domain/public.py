"""The public JSON shapes of a package run and a match result, shared by the API's presenters and
webhook payloads, and their ETags.

A webhook's `data` is the run (or result) exactly as `GET /v1/matching/packages/runs/{id}` shows it,
and the services that write deliveries and check `If-Match` may not import the API, so the
renderers live here.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from packmatch.domain.ids import Kind, format_id
from packmatch.domain.models import Candidate, MatchResult, PackageRun, SlotResult
from packmatch.domain.reviews import ResultReview, Reviewer, RunReview

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
        "review": None if run.review is None else run_review(run.review, f"{PACKAGE_RUNS}/{public_id}"),
    }


def reviewer(who: Reviewer | None) -> dict[str, Any] | None:
    return None if who is None else {"key_id": format_id(Kind.API_KEY, who.key_id), "name": who.name}


def run_review(review: RunReview, run_link: str) -> dict[str, Any]:
    return {
        "decision": review.decision.value,
        "notes": review.notes,
        "reviewed_by": reviewer(review.reviewed_by),
        "reviewed_at": timestamp(review.reviewed_at),
        "links": {"history": f"{run_link}/reviews"},
    }


def result_review(review: ResultReview) -> dict[str, Any]:
    return {
        "status": review.status.value,
        "reference_row_id": review.reference_row_id,
        "notes": review.notes,
        "reviewed_by": reviewer(review.reviewed_by),
        "reviewed_at": timestamp(review.reviewed_at),
    }


def _candidate(candidate: Candidate) -> dict[str, Any]:
    return {
        "reference_row_id": candidate.reference_row_id,
        "confidence": score(candidate.confidence),
        "evidence": {
            name: {
                "strategy": e.strategy.value,
                "score": score(e.score),
                "source_value": e.source_value,
                "reference_value": e.reference_value,
                "reason": e.reason,
            }
            for name, e in candidate.evidence.items()
        },
    }


def match_result(result: MatchResult) -> dict[str, Any]:
    return {
        "id": format_id(Kind.MATCH_RESULT, result.id),
        "document_id": result.document_id,
        "extraction_row_id": result.extraction_row_id,
        "matched": result.matched,
        "matched_reference_row_id": result.matched_reference_row_id,
        "confidence": score(result.confidence),
        "candidates": [_candidate(c) for c in result.candidates],
        "review": result_review(result.review),
        "excluded_by_review": list(result.excluded_by_review),
    }


def etag(shown: dict[str, Any]) -> str:
    """A strong ETag of a resource as shown: it changes whenever anything a client sees changes."""
    canonical = json.dumps(shown, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return '"' + hashlib.sha256(canonical.encode()).hexdigest()[:20] + '"'


def etag_matches(if_match: str, current: str) -> bool:
    """`If-Match` (one or more comma-separated ETags, or `*`) against the current ETag."""
    tags = [tag.strip() for tag in if_match.split(",")]
    return "*" in tags or current in tags
