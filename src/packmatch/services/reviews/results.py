"""Result review: approve or reject one match, or many at once (all or nothing), with history.

A rejection feeds back into matching: its (document, reference row) pair is recorded as an
exclusion of the matching config, read by later runs' slots (`Pipeline.execute_slot`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from packmatch.domain.ids import Kind, format_id
from packmatch.domain.models import MatchResult
from packmatch.domain.public import match_result
from packmatch.domain.reviews import Reviewer, ReviewRecord, ReviewStatus
from packmatch.domain.webhooks import WebhookEvent
from packmatch.errors import FieldProblem, NotFound, PackmatchError, ValidationFailed
from packmatch.services.matching_runs import NOT_FOUND as MATCHING_RUN_NOT_FOUND
from packmatch.services.ports import Clock, Metrics, NoMetrics, Publisher, utcnow
from packmatch.services.reviews.events import Recorded, announce
from packmatch.services.reviews.rules import check_if_match, decided_row, new_review
from packmatch.services.webhooks.deliveries import EventSubject, record_event_deliveries
from packmatch.store import reviews as store
from packmatch.store.db import Database
from packmatch.store.pagination import Page, PageRequest
from packmatch.store.runs import get_result

RESULT_NOT_FOUND = "No match result with this ID exists in this matching run for your organization."


@dataclass(frozen=True)
class Decision:
    """One decision of a (bulk) review, as the request gave it."""

    result_id: uuid.UUID
    status: ReviewStatus
    notes: str | None = None
    reference_row_id: str | None = None


class ResultReviews:
    def __init__(
        self, db: Database, publisher: Publisher, clock: Clock = utcnow, metrics: Metrics | None = None
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.clock = clock
        self.metrics = metrics or NoMetrics()

    def get(
        self, organization_id: uuid.UUID, matching_run_id: uuid.UUID, result_id: uuid.UUID
    ) -> MatchResult:
        with self.db.transaction() as conn:
            self._owner(conn, organization_id, matching_run_id)
            found = get_result(conn, matching_run_id, result_id)
        if found is None:
            raise NotFound(RESULT_NOT_FOUND)
        return found

    def review(
        self,
        organization_id: uuid.UUID,
        matching_run_id: uuid.UUID,
        decision: Decision,
        who: Reviewer,
        if_match: str | None = None,
    ) -> MatchResult:
        """One decision: 404 if the result is not this run's, 412 on a stale `If-Match`, 400/409
        if the decision does not fit the result."""
        return self._decide(organization_id, matching_run_id, [decision], who, if_match, bulk=False)[0]

    def review_many(
        self,
        organization_id: uuid.UUID,
        matching_run_id: uuid.UUID,
        decisions: Sequence[Decision],
        who: Reviewer,
        if_match: str | None = None,
    ) -> list[MatchResult]:
        """All or nothing: any item that does not fit → 400 naming `decisions[i].…`, nothing written."""
        return self._decide(organization_id, matching_run_id, decisions, who, if_match, bulk=True)

    def history(
        self,
        organization_id: uuid.UUID,
        matching_run_id: uuid.UUID,
        result_id: uuid.UUID,
        request: PageRequest,
    ) -> Page[ReviewRecord]:
        with self.db.transaction() as conn:
            self._owner(conn, organization_id, matching_run_id)
            if get_result(conn, matching_run_id, result_id) is None:
                raise NotFound(RESULT_NOT_FOUND)
            return store.page_result_reviews(conn, result_id, request)

    @staticmethod
    def _owner(conn: Connection, organization_id: uuid.UUID, matching_run_id: uuid.UUID) -> store.ResultOwner:
        owner = store.matching_run_owner(conn, organization_id, matching_run_id)
        if owner is None:
            raise NotFound(MATCHING_RUN_NOT_FOUND)
        return owner

    def _decide(
        self,
        organization_id: uuid.UUID,
        matching_run_id: uuid.UUID,
        decisions: Sequence[Decision],
        who: Reviewer,
        if_match: str | None,
        *,
        bulk: bool,
    ) -> list[MatchResult]:
        with self.db.transaction() as conn:
            owner, found = store.lock_owned_results(
                conn, organization_id, matching_run_id, {d.result_id for d in decisions}
            )
            if owner is None:
                raise NotFound(MATCHING_RUN_NOT_FOUND)
            if not bulk and not found:
                raise NotFound(RESULT_NOT_FOUND)
            _check_known(decisions, found)
            check_if_match(if_match, *(match_result(found[d.result_id]) for d in decisions))
            planned = self._plan(decisions, found, who, bulk=bulk)
            store.record_result_reviews(conn, organization_id, owner, planned)
            reviewed = [p.result.model_copy(update={"review": p.review}) for p in planned]
            subjects = lambda: [  # noqa: E731 (rendered only if a webhook subscribes)
                EventSubject(p.review_id, owner.package_run_id, match_result(r))
                for p, r in zip(planned, reviewed, strict=True)
            ]
            at = planned[0].review.reviewed_at
            assert at is not None
            deliveries = record_event_deliveries(
                conn, organization_id, WebhookEvent.RESULT_REVIEWED, subjects, at
            )
        mr = format_id(Kind.MATCHING_RUN, matching_run_id)
        recorded = [
            Recorded(
                "result",
                p.review.status.value,
                format_id(Kind.REVIEW, p.review_id),
                {"matching_run_id": mr, "result_id": format_id(Kind.MATCH_RESULT, p.result.id)},
            )
            for p in planned
        ]
        announce(recorded, deliveries, self.metrics, self.publisher)
        return reviewed

    def _plan(
        self, decisions: Sequence[Decision], found: dict[uuid.UUID, MatchResult], who: Reviewer, *, bulk: bool
    ) -> list[store.ResultDecision]:
        now = self.clock()
        planned, problems = [], []
        for i, decision in enumerate(decisions):
            result = found[decision.result_id]
            field = f"decisions[{i}].reference_row_id" if bulk else "reference_row_id"
            try:
                row = decided_row(result, decision.status, decision.reference_row_id, field)
            except PackmatchError as refused:
                if not bulk:
                    raise
                where = field if refused.details else f"decisions[{i}].status"
                problems.append(FieldProblem(where, refused.message.removeprefix(f"{field}: ")))
                continue
            at = store.reviewed_at_after(result.review.reviewed_at, now)
            review = new_review(decision.status, row, decision.notes, who, at)
            planned.append(store.ResultDecision(result, review, uuid.uuid4()))
        if problems:
            raise ValidationFailed(
                "Some decisions do not fit their results; nothing was recorded.", details=problems
            )
        return planned


def _check_known(decisions: Sequence[Decision], found: dict[uuid.UUID, MatchResult]) -> None:
    problems = []
    seen: set[uuid.UUID] = set()
    for i, decision in enumerate(decisions):
        if decision.result_id not in found:
            problems.append(
                FieldProblem(f"decisions[{i}].result_id", "No result with this ID in this matching run.")
            )
        elif decision.result_id in seen:
            problems.append(
                FieldProblem(f"decisions[{i}].result_id", "This result is already decided above.")
            )
        seen.add(decision.result_id)
    if problems:
        raise ValidationFailed(
            "Some decisions name results this matching run does not have; nothing was recorded.",
            details=problems,
        )
