"""The pipeline's use cases: fan out a run, execute one slot, finalize a run.

Every step is idempotent: it reads the truth from the database and changes only what is still
pending, so a message delivered twice or late does nothing the second time.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from packmatch.domain.models import (
    InputRow,
    MatchingConfig,
    MatchResult,
    RowMatch,
    RunStatus,
    SlotStatus,
)
from packmatch.engine import Matcher, decide, error_message, slot_outcome
from packmatch.engine.index import ReferenceIndex
from packmatch.errors import PermanentError
from packmatch.logging import get_logger
from packmatch.services.deliveries import publish_deliveries, record_deliveries
from packmatch.services.ports import Clock, Publisher, utcnow
from packmatch.services.reference_cache import ReferenceCache
from packmatch.store import reference_data as datasets
from packmatch.store import runs as store
from packmatch.store.db import Database

log = get_logger(__name__)

# A slot that runs longer than this records progress again, so that the reconciler (which re-drives
# runs without progress for PACKMATCH_STALL_SECONDS, far above this) does not run it twice.
PROGRESS_EVERY_SECONDS = 5.0


class Pipeline:
    def __init__(
        self,
        db: Database,
        publisher: Publisher,
        clock: Clock = utcnow,
        references: ReferenceCache | None = None,
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.clock = clock
        self.references = references if references is not None else ReferenceCache.for_database(db)

    def fan_out(self, run_id: uuid.UUID) -> None:
        with self.db.transaction() as conn:
            run = store.get_run(conn, None, run_id)
            if run is None or run.status is not RunStatus.RUNNING:
                return
            positions = store.mark_fanned_out(conn, run_id, self.clock())
        if not positions:
            self.publisher.finalize(run_id)
        for position in positions:
            self.publisher.match_slot(run_id, position)
        log.info("run.fanned_out", run_id=str(run_id), slots=len(positions))

    def execute_slot(self, run_id: uuid.UUID, position: int) -> None:
        with self.db.transaction() as conn:
            job = store.load_slot_job(conn, run_id, position)
            if job is None or job.run_status is not RunStatus.RUNNING:
                return
            if job.slot.status is not SlotStatus.PENDING:
                return
            matching_run_id = store.start_matching_run(conn, job, self.clock())
        started = time.perf_counter()
        bound = log.bind(
            run_id=str(run_id),
            document_type=job.slot.document_type,
            matching_run_id=str(matching_run_id),
        )
        bound.info("slot.started", rows=len(job.rows))
        config = job.snapshot.matching_configs[job.slot.matching_config_id]
        reference = self._reference_rows(config)
        matcher = Matcher(config, reference)
        matches = self._match_rows(run_id, matcher, job.rows)
        now = self.clock()
        outcome = slot_outcome(matches)
        results = [
            MatchResult(
                id=uuid.uuid4(),
                matching_run_id=matching_run_id,
                position=i,
                document_id=row.document_id,
                extraction_row_id=row.extraction_row_id,
                matched=m.matched,
                matched_reference_row_id=m.matched_reference_row_id,
                confidence=m.confidence,
                candidates=m.candidates,
                created_at=now,
            )
            for i, (row, m) in enumerate(zip(job.rows, matches, strict=True))
        ]
        done = store.SlotCompletion(
            matching_run_id=matching_run_id,
            status=outcome.status,
            confidence=outcome.confidence,
            rows_matched=sum(1 for m in matches if m.matched),
            avg_confidence=sum(m.confidence for m in matches) / len(matches) if matches else None,
            results=results,
        )
        with self.db.transaction() as conn:
            remaining = store.complete_slot(conn, run_id, position, done, self.clock())
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        if remaining is None:
            bound.info("slot.duplicate_ignored", duration_ms=duration_ms)
            return
        bound.info("slot.completed", status=outcome.status.value, duration_ms=duration_ms)
        if remaining == 0:
            self.publisher.finalize(run_id)

    def _match_rows(self, run_id: uuid.UUID, matcher: Matcher, rows: Sequence[InputRow]) -> list[RowMatch]:
        """Match every row; a long slot keeps telling the reconciler it is alive (progress_at)."""
        matches = []
        beat = time.monotonic()
        for row in rows:
            matches.append(matcher.match(row))
            if time.monotonic() - beat >= PROGRESS_EVERY_SECONDS:
                with self.db.transaction() as conn:
                    store.touch_progress(conn, run_id, self.clock())
                beat = time.monotonic()
        return matches

    def _reference_rows(self, config: MatchingConfig) -> ReferenceIndex:
        """The config's reference rows, indexed for its mappings (built once per process)."""
        with self.db.transaction() as conn:
            if datasets.get_dataset(conn, None, config.reference_data_id) is None:
                raise PermanentError(f"reference data ref_{config.reference_data_id} no longer exists")
        return self.references.index(config)

    def fail_slot(self, run_id: uuid.UUID, position: int, error: str) -> None:
        """Record that a slot failed for good; the last slot to resolve triggers finalization."""
        with self.db.transaction() as conn:
            remaining = store.fail_slot(conn, run_id, position, error, self.clock())
        if remaining == 0:
            self.publisher.finalize(run_id)

    def finalize(self, run_id: uuid.UUID, *, error_override: str | None = None) -> RunStatus | None:
        """Give a run its verdict once; returns the verdict, or None if there was nothing to do.

        `error_override` replaces the verdict's error message (the reconciler's "deadline exceeded").
        """
        with self.db.transaction() as conn:
            run = store.get_run(conn, None, run_id)
            snapshot = store.get_snapshot(conn, run_id)
            if run is None or snapshot is None or run.status is not RunStatus.RUNNING:
                return None
            if any(slot.status is SlotStatus.PENDING for slot in run.slots):
                return None
            verdict = decide(run.slots, snapshot.package_config.pass_criteria)
            now = self.clock()
            message = error_message(verdict)
            if verdict.status is RunStatus.ERROR and error_override is not None:
                message = error_override
            if not store.finalize_run(conn, run_id, verdict.status, message, now):
                return None
            final = run.model_copy(update={"status": verdict.status, "error": message, "completed_at": now})
            deliveries = record_deliveries(conn, final, now)  # the outbox: same transaction
        duration_ms = round((now - run.created_at).total_seconds() * 1000, 1)
        log.info(
            "run.finalized",
            run_id=str(run_id),
            package_config_id=str(run.package_config_id),
            status=verdict.status.value,
            duration_ms=duration_ms,
        )
        publish_deliveries(self.publisher, deliveries, source="finalize")
        return verdict.status

    def end_without_verdict(self, run_id: uuid.UUID, status: RunStatus, error: str) -> bool:
        """The guarded transition without a verdict (the reconciler's last resort), with its webhooks."""
        now = self.clock()
        with self.db.transaction() as conn:
            run = store.get_run(conn, None, run_id)
            if run is None or not store.finalize_run(conn, run_id, status, error, now):
                return False
            final = run.model_copy(update={"status": status, "error": error, "completed_at": now})
            deliveries = record_deliveries(conn, final, now)
        publish_deliveries(self.publisher, deliveries, source="finalize")
        return True
