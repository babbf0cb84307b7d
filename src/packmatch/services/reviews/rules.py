"""What a review decision may say, checked before anything is written (no I/O)."""

from __future__ import annotations

from datetime import datetime

from packmatch.domain.models import MatchResult, PackageRun, RunStatus
from packmatch.domain.public import etag, etag_matches, match_result, package_run
from packmatch.domain.reviews import ResultReview, Reviewer, ReviewStatus
from packmatch.errors import Conflict, FieldProblem, PackmatchError, ValidationFailed

REVIEWABLE = frozenset({RunStatus.PASSED, RunStatus.FAILED, RunStatus.REVIEW})


class PreconditionFailed(PackmatchError):
    code = "precondition_failed"


STALE = "If-Match does not match the current ETag: the resource changed. GET it again, then decide."


def check_run_reviewable(run: PackageRun) -> None:
    if run.status not in REVIEWABLE:
        raise Conflict(
            f"Only a final run with status passed, failed or review can be reviewed; this one is "
            f"{run.status.value}."
        )


def check_if_match(if_match: str | None, *shown: dict[str, object]) -> None:
    """412 unless every resource in `shown` has one of the ETags `If-Match` lists."""
    if if_match is None:
        return
    if not all(etag_matches(if_match, etag(item)) for item in shown):
        raise PreconditionFailed(STALE)


def run_etag(run: PackageRun) -> str:
    return etag(package_run(run))


def result_etag(result: MatchResult) -> str:
    return etag(match_result(result))


def decided_row(
    result: MatchResult, status: ReviewStatus, reference_row_id: str | None, field: str
) -> str | None:
    """The reference row a decision concerns: the given one (one of the result's candidates) or
    the top candidate. Raises `ValidationFailed` (a row that is no candidate) or `Conflict`
    (approving a result without candidates)."""
    candidates = [c.reference_row_id for c in result.candidates]
    if reference_row_id is not None:
        if reference_row_id not in candidates:
            raise ValidationFailed(
                f"{field}: not one of this result's candidates.",
                details=[FieldProblem(field, "Not one of this result's candidates.")],
            )
        return reference_row_id
    if not candidates:
        if status is ReviewStatus.APPROVED:
            raise Conflict("This result has no candidate to approve.")
        return None
    return candidates[0]


def new_review(
    status: ReviewStatus, row: str | None, notes: str | None, who: Reviewer, at: datetime
) -> ResultReview:
    return ResultReview(status=status, reference_row_id=row, notes=notes, reviewed_by=who, reviewed_at=at)
