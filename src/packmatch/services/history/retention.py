"""Retention: final runs past their organization's age limit are deleted with all they own.

Deletion goes in bounded batches, each its own short transaction, oldest runs first: no long
lock, and an interrupted prune simply continues next time. A run still `running`, one whose
webhook deliveries are not done, and (unless the policy says otherwise) one awaiting review are
never touched.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from packmatch.logging import get_logger
from packmatch.services.ports import Clock, Metrics, NoMetrics, utcnow
from packmatch.store import retention as store
from packmatch.store.db import Database
from packmatch.store.retention import PruneCounts

if TYPE_CHECKING:
    import sqlalchemy as sa

log = get_logger(__name__)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long runs are kept: `default_days` for every organization (None: forever), overridden
    per organization name (0: forever). `max_runs_per_minute` paces a prune: it pauses between
    batches so that it never deletes faster (None: as fast as the database goes), leaving the
    pipeline beside it its share of the machine."""

    default_days: int | None = None
    by_organization: Mapping[str, int] = field(default_factory=dict)
    include_awaiting_review: bool = False
    batch: int = 500
    max_runs_per_minute: int | None = None

    def days_for(self, organization: str) -> int | None:
        days = self.by_organization.get(organization, self.default_days)
        return None if days == 0 else days

    @property
    def keeps_everything(self) -> bool:
        return self.default_days is None and not any(self.by_organization.values())


@dataclass(frozen=True)
class Cutoff:
    organization: str
    organization_id: uuid.UUID
    created_before: datetime


@dataclass(frozen=True)
class PlannedPrune:
    cutoff: Cutoff
    runs: int


class Retention:
    def __init__(
        self,
        db: Database,
        policy: RetentionPolicy,
        *,
        metrics: Metrics | None = None,
        clock: Clock = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.policy = policy
        self.metrics = metrics or NoMetrics()
        self.clock = clock
        self.monotonic = monotonic
        self.sleep = sleep

    def cutoffs(self, older_than: timedelta | None = None, organization: str | None = None) -> list[Cutoff]:
        """Per organization, the creation time before which its final runs go.

        `older_than` replaces the policy's ages (for `packmatch prune --older-than`), except that an
        organization set to keep everything (0) is only pruned when it is named as `organization`.
        """
        now = self.clock()
        with self.db.transaction() as conn:
            organizations = store.organization_ids(conn)
        found = []
        for name, ident in sorted(organizations.items()):
            if organization is not None and name != organization:
                continue
            if older_than is not None:
                if self.policy.by_organization.get(name) != 0 or organization == name:
                    found.append(Cutoff(name, ident, now - older_than))
                continue
            days = self.policy.days_for(name)
            if days is not None:
                found.append(Cutoff(name, ident, now - timedelta(days=days)))
        return found

    def unknown_organizations(self) -> list[str]:
        """The names the policy sets an age for that name no organization (a typo there would
        otherwise silently keep the default age)."""
        with self.db.transaction() as conn:
            organizations = store.organization_ids(conn)
        return sorted(set(self.policy.by_organization) - set(organizations))

    def _where(self, cutoff: Cutoff) -> list[sa.ColumnElement[bool]]:
        return store.prunable(
            cutoff.organization_id,
            cutoff.created_before,
            include_awaiting_review=self.policy.include_awaiting_review,
        )

    def plan(self, cutoffs: list[Cutoff]) -> list[PlannedPrune]:
        """What a prune would delete now (`--dry-run`)."""
        with self.db.transaction() as conn:
            return [PlannedPrune(c, store.count_prunable(conn, self._where(c))) for c in cutoffs]

    def prune(
        self,
        cutoffs: list[Cutoff],
        *,
        budget_seconds: float | None = None,
        on_batch: Callable[[PruneCounts], None] | None = None,
    ) -> tuple[PruneCounts, bool]:
        """Delete what is due, batch by batch; (what went, whether everything due is gone).

        With a budget it stops after the batch that crosses it (the rest goes next time); a pause
        for `max_runs_per_minute` counts against the budget.
        """
        started = self.monotonic()
        total = PruneCounts()
        for cutoff in cutoffs:
            where = self._where(cutoff)
            while True:
                if budget_seconds is not None and self.monotonic() - started >= budget_seconds:
                    return total, False
                batch_started = self.monotonic()
                with self.db.transaction() as conn:
                    ids = store.prunable_ids(conn, where, self.policy.batch)
                    counts = store.delete_runs(conn, ids)
                if not ids:
                    break
                total += counts
                self.metrics.runs_pruned(counts.runs, counts.results)
                log.info(
                    "retention.batch_pruned",
                    organization=cutoff.organization,
                    runs=counts.runs,
                    matching_runs=counts.matching_runs,
                    results=counts.results,
                    deliveries=counts.deliveries,
                    reviews=counts.reviews,
                    duration_ms=round((self.monotonic() - batch_started) * 1000, 1),
                )
                if on_batch is not None:
                    on_batch(total)
                if len(ids) < self.policy.batch:
                    break
                self._pace(started, total.runs, budget_seconds)
            evaluations, done = self._prune_evaluations(cutoff, started, budget_seconds)
            total += PruneCounts(evaluations=evaluations)
            if not done:
                return total, False
        return total, True

    def _prune_evaluations(
        self, cutoff: Cutoff, started: float, budget_seconds: float | None
    ) -> tuple[int, bool]:
        """After its runs, the organization's ended evaluations of the same age (few, but each holds
        a whole report); (how many went, whether all that are due did)."""
        total = 0
        while budget_seconds is None or self.monotonic() - started < budget_seconds:
            with self.db.transaction() as conn:
                gone = store.delete_evaluations(
                    conn, cutoff.organization_id, cutoff.created_before, self.policy.batch
                )
            total += gone
            if gone:
                log.info("retention.evaluations_pruned", organization=cutoff.organization, evaluations=gone)
            if gone < self.policy.batch:
                return total, True
        return total, False

    def _pace(self, started: float, runs: int, budget_seconds: float | None) -> None:
        """Pause until `runs` is within `max_runs_per_minute` of the time since `started`."""
        if self.policy.max_runs_per_minute is None:
            return
        pause = started + runs * 60 / self.policy.max_runs_per_minute - self.monotonic()
        if budget_seconds is not None:
            pause = min(pause, started + budget_seconds - self.monotonic())
        if pause > 0:
            self.sleep(pause)


class RetentionJob:
    """The worker's periodic prune, run from the reconciler's pass (one leader at a time).

    After a pass that pruned everything due it waits `interval_seconds`; a pass cut short by its
    budget continues on the next reconciler tick, so a backlog drains without ever holding the
    reconciler for long.
    """

    def __init__(
        self,
        retention: Retention,
        *,
        interval_seconds: float,
        budget_seconds: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retention = retention
        self.interval = interval_seconds
        self.budget = budget_seconds
        self.monotonic = monotonic
        self._next_at = 0.0  # the first pass prunes at once

    def prune_due(self) -> int:
        if self.retention.policy.keeps_everything or self.monotonic() < self._next_at:
            return 0
        started = time.monotonic()
        if unknown := self.retention.unknown_organizations():  # `packmatch prune` prints it instead
            log.warning("retention.unknown_organizations", organizations=unknown)
        counts, done = self.retention.prune(self.retention.cutoffs(), budget_seconds=self.budget)
        if done:
            self._next_at = self.monotonic() + self.interval
        if counts.runs or counts.evaluations:
            log.info(
                "retention.pruned",
                runs=counts.runs,
                results=counts.results,
                deliveries=counts.deliveries,
                reviews=counts.reviews,
                evaluations=counts.evaluations,
                finished=done,
                duration_ms=round((time.monotonic() - started) * 1000, 1),
            )
        return counts.runs
