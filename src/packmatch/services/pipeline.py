"""The pipeline's use cases: fan out a run, execute one slot, finalize a run.

Every step is idempotent: it reads the truth from the database and changes only what is still
pending, so a message delivered twice or late does nothing the second time.

Round trips are what a run costs (benchmarks/README.md), so the normal path is short: `Runs.accept`
sends the slots' messages itself once its transaction commits; a slot reads its job, matches and
records its matching run and results in one transaction (on PostgreSQL, for slots of up to
`ROWS_IN_ONE_TRANSACTION` rows: it holds no lock while it matches), and the transaction that
resolves a run's last slot also gives the run its verdict. `fan_out` and `finalize` messages are
what the reconciler sends to re-drive a run that stalled.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from packmatch.domain.models import (
    InputRow,
    MatchingConfig,
    PackageRun,
    PassCriteria,
    RowMatch,
    RunStatus,
    SlotStatus,
)
from packmatch.engine import Matcher, decide, error_message, slot_outcome
from packmatch.engine.index import ReferenceIndex
from packmatch.logging import get_logger
from packmatch.services.ports import Clock, Metrics, NoMetrics, Publisher, utcnow
from packmatch.services.reference.cache import ReferenceCache
from packmatch.services.webhooks.deliveries import publish_deliveries, record_deliveries
from packmatch.store import reviews as review_store
from packmatch.store import runs as store
from packmatch.store.db import Database

log = get_logger(__name__)

Exclusions = Mapping[str, tuple[str, ...]]

# A slot that runs longer than this records progress again, so that the reconciler (which re-drives
# runs without progress for PACKMATCH_STALL_SECONDS, far above this) does not run it twice.
PROGRESS_EVERY_SECONDS = 5.0
# A slot with more rows than this matches outside a transaction (benchmarks/README.md: its read and
# write transactions cost nothing next to its matching, and no transaction stays open for seconds).
ROWS_IN_ONE_TRANSACTION = 100


def send_slots(publisher: Publisher, run_id: uuid.UUID, positions: Sequence[int]) -> None:
    """One message per pending slot, or `finalize` when there is none (a run without rows)."""
    if not positions:
        publisher.finalize(run_id)
    else:
        publisher.match_slots(run_id, positions)
    log.info("run.fanned_out", run_id=str(run_id), slots=len(positions))


@dataclass(frozen=True)
class Finalized:
    """A run that a transaction just moved out of `running`, with the webhook deliveries that the
    same transaction recorded (the outbox); reported once it has committed."""

    run: PackageRun
    at: datetime
    deliveries: list[uuid.UUID]

    def report(self, metrics: Metrics, publisher: Publisher) -> None:
        seconds = (self.at - self.run.created_at).total_seconds()
        metrics.run_finalized(self.run.status, seconds)
        log.info(
            "run.finalized",
            run_id=str(self.run.id),
            package_config_id=str(self.run.package_config_id),
            status=self.run.status.value,
            duration_ms=round(seconds * 1000, 1),
        )
        publish_deliveries(publisher, self.deliveries, source="finalize")


@dataclass(frozen=True)
class SlotCompleted:
    """A slot that a transaction just completed (and the run, when it was the last slot);
    reported once it has committed."""

    log: Any  # the slot's bound logger (run, document type, matching run)
    status: SlotStatus
    seconds: float
    finalized: Finalized | None

    def report(self, metrics: Metrics, publisher: Publisher) -> None:
        metrics.slot_completed(self.status, self.seconds)
        self.log.info("slot.completed", status=self.status.value, duration_ms=round(self.seconds * 1000, 1))
        if self.finalized is not None:
            self.finalized.report(metrics, publisher)


def finalize_in(
    conn: Connection,
    run_id: uuid.UUID,
    now: datetime,
    *,
    criteria: PassCriteria | None = None,
    error_override: str | None = None,
) -> Finalized | None:
    """Give a run whose slots have all resolved its verdict, inside the caller's transaction, and
    record its webhook deliveries there too.

    None when there is nothing to do: the run is gone, already final, or has a pending slot.
    `criteria` spares reading the snapshot when the caller has it; `error_override` replaces the
    verdict's error message (the reconciler's "deadline exceeded")."""
    slots = store.slots_of(conn, run_id)
    if not slots or any(slot.status is SlotStatus.PENDING for slot in slots):
        return None
    if criteria is None:
        snapshot = store.get_snapshot(conn, run_id)
        if snapshot is None:
            return None
        criteria = snapshot.package_config.pass_criteria
    verdict = decide(slots, criteria)
    message = error_message(verdict)
    if verdict.status is RunStatus.ERROR and error_override is not None:
        message = error_override
    return _ended(conn, store.finalize_run(conn, run_id, verdict.status, message, now, slots), now)


def _ended(conn: Connection, final: PackageRun | None, now: datetime) -> Finalized | None:
    """A run the guarded transition just ended (None: it was not running), with its outbox rows."""
    return None if final is None else Finalized(final, now, record_deliveries(conn, final, now))


class Pipeline:
    def __init__(
        self,
        db: Database,
        publisher: Publisher,
        clock: Clock = utcnow,
        references: ReferenceCache | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.clock = clock
        self.references = references if references is not None else ReferenceCache.for_database(db)
        self.metrics = metrics or NoMetrics()

    def fan_out(self, run_id: uuid.UUID) -> None:
        """Re-send the messages of a run's pending slots (the reconciler's re-drive)."""
        with self.db.transaction() as conn:
            run = store.get_run(conn, None, run_id)
            if run is None or run.status is not RunStatus.RUNNING:
                return
            positions = store.mark_fanned_out(conn, run_id, self.clock())
        send_slots(self.publisher, run_id, positions)

    def execute_slot(self, run_id: uuid.UUID, position: int) -> None:
        """One transaction per slot on the normal path: read the job, match, record the outcome
        (guarded: a second delivery finds the slot resolved and writes nothing)."""
        with self.db.connection() as conn:
            job = store.slot_job(conn, run_id, position, self.clock())
            if job is None:
                return
            # Rejected (document, reference row) pairs of this config: never candidates again.
            excluded = review_store.exclusions(
                conn, job.slot.matching_config_id, (r.document_id for r in job.rows)
            )
            self._before_matching(conn, job)
            completed = self._match_and_complete(conn, job, excluded)
            conn.commit()
        # Reported once committed: a commit that fails (the database restarted) is retried, and a
        # line logged before it would say `slot.completed` twice for one slot.
        if completed is not None:
            completed.report(self.metrics, self.publisher)

    def _before_matching(self, conn: Connection, job: store.SlotJob) -> None:
        """End the read transaction before matching when keeping it open could hurt: a long slot
        (an open transaction for its whole matching), SQLite (a read snapshot that goes stale blocks
        the write), a run whose progress clock is old (restarted now, so that the reconciler does
        not re-drive a slot that has just begun)."""
        stale = (job.started_at - job.progress_at).total_seconds() >= PROGRESS_EVERY_SECONDS
        if stale:
            store.touch_progress(conn, job.run_id, job.started_at)
        if stale or len(job.rows) > ROWS_IN_ONE_TRANSACTION or conn.dialect.name != "postgresql":
            conn.commit()

    def _match_and_complete(
        self, conn: Connection, job: store.SlotJob, excluded: Exclusions
    ) -> SlotCompleted | None:
        config = job.snapshot.matching_configs[job.slot.matching_config_id]
        started = time.perf_counter()
        bound = log.bind(
            run_id=str(job.run_id),
            document_type=job.slot.document_type,
            matching_run_id=str(job.matching_run_id),
        )
        bound.info("slot.started", rows=len(job.rows))
        matcher = Matcher(config, self._reference_rows(config))
        matches = self._match_rows(job.run_id, matcher, job.rows, excluded)
        outcome = slot_outcome(matches)
        done = store.SlotCompletion(outcome.status, outcome.confidence, matches, excluded)
        now = self.clock()
        remaining = store.complete_slot(conn, job, done, now)
        criteria = job.snapshot.package_config.pass_criteria
        finalized = finalize_in(conn, job.run_id, now, criteria=criteria) if remaining == 0 else None
        seconds = time.perf_counter() - started
        if remaining is None:
            bound.info("slot.duplicate_ignored", duration_ms=round(seconds * 1000, 1))
            return None
        return SlotCompleted(bound, done.status, seconds, finalized)

    def _match_rows(
        self, run_id: uuid.UUID, matcher: Matcher, rows: Sequence[InputRow], excluded: Exclusions
    ) -> list[RowMatch]:
        """Match every row; a long slot keeps telling the reconciler it is alive (progress_at)."""
        matches = []
        beat = time.monotonic()
        for row in rows:
            rejected = excluded.get(row.document_id)
            matches.append(matcher.match(row) if rejected is None else matcher.match(row, rejected))
            if time.monotonic() - beat >= PROGRESS_EVERY_SECONDS:
                with self.db.transaction() as conn:
                    store.touch_progress(conn, run_id, self.clock())
                beat = time.monotonic()
        return matches

    def _reference_rows(self, config: MatchingConfig) -> ReferenceIndex:
        """The config's reference rows, indexed for its mappings (read and built once per process;
        `PermanentError` if the dataset is gone by then)."""
        return self.references.index(config)

    def fail_slot(self, run_id: uuid.UUID, position: int, error: str) -> None:
        """Record that a slot failed for good; resolving the last slot finalizes the run."""
        with self.db.transaction() as conn:
            now = self.clock()
            remaining = store.fail_slot(conn, run_id, position, error, now)
            finalized = finalize_in(conn, run_id, now) if remaining == 0 else None
        if finalized is not None:
            finalized.report(self.metrics, self.publisher)

    def finalize(self, run_id: uuid.UUID, *, error_override: str | None = None) -> RunStatus | None:
        """Give a run its verdict once; returns the verdict, or None if there was nothing to do."""
        with self.db.transaction() as conn:
            finalized = finalize_in(conn, run_id, self.clock(), error_override=error_override)
        if finalized is None:
            return None
        finalized.report(self.metrics, self.publisher)
        return finalized.run.status

    def end_without_verdict(self, run_id: uuid.UUID, status: RunStatus, error: str) -> bool:
        """The guarded transition without a verdict (the reconciler's last resort), with its webhooks."""
        now = self.clock()
        with self.db.transaction() as conn:
            finalized = _ended(conn, store.finalize_run(conn, run_id, status, error, now), now)
        if finalized is None:
            return False
        finalized.report(self.metrics, self.publisher)
        return True
