"""Package-run review: a person's decision beside the machine's verdict (the run's `status` stays)."""

from __future__ import annotations

import uuid

from packmatch.domain.ids import Kind, format_id
from packmatch.domain.models import PackageRun
from packmatch.domain.public import package_run
from packmatch.domain.reviews import Reviewer, ReviewRecord, ReviewStatus, RunReview
from packmatch.domain.webhooks import WebhookEvent
from packmatch.errors import NotFound
from packmatch.services.ports import Clock, Metrics, NoMetrics, Publisher, utcnow
from packmatch.services.reviews.events import Recorded, announce
from packmatch.services.reviews.rules import check_if_match, check_run_reviewable
from packmatch.services.runs import RUN_NOT_FOUND
from packmatch.services.webhooks.deliveries import EventSubject, record_event_deliveries
from packmatch.store import reviews as store
from packmatch.store.db import Database
from packmatch.store.pagination import Page, PageRequest
from packmatch.store.runs import get_run


class RunReviews:
    def __init__(
        self, db: Database, publisher: Publisher, clock: Clock = utcnow, metrics: Metrics | None = None
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.clock = clock
        self.metrics = metrics or NoMetrics()

    def review(
        self,
        organization_id: uuid.UUID,
        run_id: uuid.UUID,
        decision: ReviewStatus,
        notes: str | None,
        who: Reviewer,
        if_match: str | None = None,
    ) -> PackageRun:
        review_id = uuid.uuid4()
        with self.db.transaction() as conn:
            run = store.lock_run(conn, organization_id, run_id)
            if run is None:
                raise NotFound(RUN_NOT_FOUND)
            check_if_match(if_match, package_run(run))
            check_run_reviewable(run)
            previous = None if run.review is None else run.review.reviewed_at
            at = store.reviewed_at_after(previous, self.clock())
            review = RunReview(decision=decision, notes=notes, reviewed_by=who, reviewed_at=at)
            store.record_run_review(conn, organization_id, run_id, review, review_id)
            reviewed = run.model_copy(update={"review": review})
            subject = EventSubject(review_id, run_id, package_run(reviewed))
            deliveries = record_event_deliveries(
                conn, organization_id, WebhookEvent.RUN_REVIEWED, lambda: [subject], at
            )
        recorded = Recorded(
            "run",
            decision.value,
            format_id(Kind.REVIEW, review_id),
            {"run_id": format_id(Kind.PACKAGE_RUN, run_id)},
        )
        announce([recorded], deliveries, self.metrics, self.publisher)
        return reviewed

    def history(
        self, organization_id: uuid.UUID, run_id: uuid.UUID, request: PageRequest
    ) -> Page[ReviewRecord]:
        with self.db.transaction() as conn:
            if get_run(conn, organization_id, run_id) is None:
                raise NotFound(RUN_NOT_FOUND)
            return store.page_run_reviews(conn, run_id, request)
