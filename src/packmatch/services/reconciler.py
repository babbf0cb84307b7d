"""Re-drive runs that stopped making progress; end runs past their deadline (SPEC §6).

Messages can be lost (a broker restarted empty, a worker killed with messages in memory, a crash
between commit and send). The database still knows every unfinished run, so one periodic pass can
repair them: re-sending a message is always safe because every step is idempotent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from packmatch.domain.models import RunStatus
from packmatch.logging import get_logger
from packmatch.services.evaluations import Evaluations
from packmatch.services.history.counts import fold_counts
from packmatch.services.history.retention import RetentionJob
from packmatch.services.pipeline import Pipeline
from packmatch.services.ports import Clock, Publisher, utcnow
from packmatch.services.webhooks.deliveries import Deliveries
from packmatch.store import reconcile as store
from packmatch.store.db import Database
from packmatch.transient import is_transient

log = get_logger(__name__)

DEADLINE_ERROR = "deadline exceeded"

# When the oldest message still waiting in the slot queue was sent (None: none waits, or unknown).
OldestWaiting = Callable[[], datetime | None]
# A run's messages are sent just after the commit that stamped its progress clock.
SEND_GRACE = timedelta(seconds=1)


@dataclass(frozen=True)
class ReconcileReport:
    redriven: int = 0
    expired: int = 0
    webhooks_relayed: int = 0
    pruned: int = 0
    counts_folded: int = 0
    evaluations_redriven: int = 0


class Reconciler:
    def __init__(
        self,
        db: Database,
        publisher: Publisher,
        pipeline: Pipeline,
        *,
        stall_seconds: float,
        deadline_seconds: float,
        clock: Clock = utcnow,
        batch: int = 500,
        deliveries: Deliveries | None = None,
        retention: RetentionJob | None = None,
        oldest_waiting: OldestWaiting | None = None,
        evaluations: Evaluations | None = None,
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.pipeline = pipeline
        self.stall = timedelta(seconds=stall_seconds)
        self.deadline = timedelta(seconds=deadline_seconds)
        self.clock = clock
        self.batch = batch
        self.deliveries = deliveries  # webhook deliveries due (retries, lost messages) are relayed too
        self.retention = retention  # and final runs past retention are pruned, a bounded share a pass
        self.oldest_waiting = oldest_waiting
        self.evaluations = evaluations  # lost evaluation messages (queued, or a dead worker's) re-sent

    def reconcile_once(self) -> ReconcileReport:
        expired = self._expire_overdue()
        redriven = self._redrive_stalled()
        relayed = self.deliveries.relay() if self.deliveries is not None else 0
        pruned = self.retention.prune_due() if self.retention is not None else 0
        folded = fold_counts(self.db)  # after the prune, so that its deltas are folded too
        evaluations = 0
        if self.evaluations is not None:
            now = self.clock()
            evaluations = self.evaluations.redrive_waiting(self._idle_since(now), self.batch, now)
        return ReconcileReport(redriven, expired, relayed, pruned, folded, evaluations)

    def _expire_overdue(self) -> int:
        now = self.clock()
        with self.db.transaction() as conn:
            run_ids = store.overdue(conn, now - self.deadline, self.batch)
        for run_id in run_ids:
            try:
                self._expire(run_id, now)
            except Exception as exc:
                _skip_unless_transient(run_id, exc)
        return len(run_ids)

    def _expire(self, run_id: uuid.UUID, now: datetime) -> None:
        with self.db.transaction() as conn:
            slots = store.expire_pending_slots(conn, run_id, DEADLINE_ERROR, now)
        try:
            status = self.pipeline.finalize(run_id, error_override=DEADLINE_ERROR)
        except Exception as exc:
            if is_transient(exc):
                raise
            # The verdict cannot be computed (e.g. a snapshot an older version wrote): the deadline
            # still ends the run, without one.
            log.exception("run.verdict_failed", run_id=str(run_id))
            ended = self.pipeline.end_without_verdict(run_id, RunStatus.ERROR, DEADLINE_ERROR)
            status = RunStatus.ERROR if ended else None
        self.pipeline.metrics.reconciled("deadline_exceeded")
        log.warning(
            "run.reconciled", run_id=str(run_id), action="deadline_exceeded", slots=slots, status=status
        )

    def _idle_since(self, now: datetime) -> datetime:
        """Runs without progress since then are stalled. Time spent waiting in the queue is not a
        stall: a run whose clock last moved after the oldest waiting message was sent may still have
        its messages in the queue (FIFO), so it waits; a slot that starts restarts the clock."""
        idle_since = now - self.stall
        head = self.oldest_waiting() if self.oldest_waiting is not None else None
        return idle_since if head is None else min(idle_since, head - SEND_GRACE)

    def _redrive_stalled(self) -> int:
        now = self.clock()
        idle_since = self._idle_since(now)
        with self.db.transaction() as conn:
            stalled = store.claim_stalled(conn, idle_since, now, self.batch)
        for run in stalled:
            if run.slots_pending == 0:
                action = "finalize"
                self.publisher.finalize(run.id)
            else:
                action = "fan_out"
                self.publisher.fan_out(run.id)
            self.pipeline.metrics.reconciled(action)
            log.info("run.reconciled", run_id=str(run.id), action=action, slots_pending=run.slots_pending)
        return len(stalled)


def _skip_unless_transient(run_id: uuid.UUID, exc: Exception) -> None:
    """Log a run that cannot be repaired and go on with the others.

    When the database or broker is unreachable the pass ends instead; the next one tries again.
    """
    if is_transient(exc):
        raise exc
    log.exception("run.reconcile_failed", run_id=str(run_id))
