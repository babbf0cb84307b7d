"""Matching runs: one per executed slot, with one result per input row (the verdict's evidence)."""

from __future__ import annotations

import uuid

from packmatch.domain.models import MatchingRun, MatchResult
from packmatch.domain.reviews import ReviewStatus
from packmatch.errors import NotFound
from packmatch.store import runs as store
from packmatch.store.db import Database
from packmatch.store.pagination import Page, PageRequest

NOT_FOUND = "No matching run with this ID exists for your organization."


class MatchingRuns:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, organization_id: uuid.UUID, matching_run_id: uuid.UUID) -> MatchingRun:
        with self.db.transaction() as conn:
            found = store.get_matching_run(conn, organization_id, matching_run_id)
        if found is None:
            raise NotFound(NOT_FOUND)
        return found

    def results(
        self,
        organization_id: uuid.UUID,
        matching_run_id: uuid.UUID,
        request: PageRequest,
        review_status: ReviewStatus | None = None,
    ) -> Page[MatchResult]:
        with self.db.transaction() as conn:
            found = store.get_matching_run(conn, organization_id, matching_run_id)
            if found is None:
                raise NotFound(NOT_FOUND)
            return store.page_results(conn, found, request, review_status)
