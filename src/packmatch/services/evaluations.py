"""Evaluations of a matching config (docs/api.md, Evaluations): accepted by the API, run on a worker.

The API records the evaluation with a snapshot of the config and the labelled rows, then sends one
message with its id (ids only, as every pipeline message). The worker matches every row with the
same cached index a slot uses (:func:`packmatch.quality.evaluate`), writes its progress every few
hundred rows and the report at the end. A lost message is re-sent by the reconciler (a queued
evaluation older than the stall time); a worker that died mid-way leaves it `running`, and a message
that comes after :data:`RESTART_AFTER` (the reconciler sends one) starts it again.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import IO

from sqlalchemy.engine import Connection

from packmatch.domain.evaluations import Evaluation, EvaluationProgress, EvaluationSource, EvaluationStatus
from packmatch.errors import FieldProblem, NotFound, PermanentError, ValidationFailed
from packmatch.logging import get_logger
from packmatch.quality import LabelledRow, evaluate, labels_from_reviews
from packmatch.services.calibrations import LocateLabel, check_labels, json_label
from packmatch.services.configs import MATCHING_NOT_FOUND
from packmatch.services.labelled_csv import read_labelled_csv
from packmatch.services.ports import Clock, Publisher, utcnow
from packmatch.services.reference.cache import ReferenceCache
from packmatch.store import configs as configs_store
from packmatch.store import evaluations as store
from packmatch.store.db import Database
from packmatch.store.pagination import Page, PageRequest
from packmatch.transient import is_transient

log = get_logger(__name__)

MAX_ROWS = 100_000
NOT_FOUND = "No evaluation with this ID exists for this matching config in your organization."
NO_REVIEWS = (
    "No review decisions are recorded for this matching config yet: review some of its results "
    "(SPEC §3 Reviews), or send labelled rows."
)
FAILED = "evaluation failed (internal)"
# A running evaluation whose worker died is started again by a message that comes after this long:
# longer than the worker's time limit for one evaluation (worker/actors.py), so a live one is never
# started twice.
RESTART_AFTER = timedelta(minutes=30)


class Evaluations:
    def __init__(
        self, db: Database, publisher: Publisher, references: ReferenceCache, clock: Clock = utcnow
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.references = references
        self.clock = clock

    # --- the API's side ------------------------------------------------------------------------

    def submit(
        self,
        organization_id: uuid.UUID,
        config_id: uuid.UUID,
        rows: Sequence[LabelledRow] | None,
        source: EvaluationSource,
        locate: LocateLabel = json_label,
    ) -> Evaluation:
        """Record an evaluation of ``rows`` (None: labels from the config's review decisions) and
        send it to the workers. 404 for an unknown config; 400 for a label that names no row (as
        ``locate`` names it)."""
        with self.db.transaction() as conn:
            config = configs_store.get_matching_config(conn, organization_id, config_id)
            if config is None:
                raise NotFound(MATCHING_NOT_FOUND)
            if rows is None:
                rows = labels_from_reviews(store.reviewed_rows(conn, organization_id, config_id, MAX_ROWS))
                if not rows:
                    raise ValidationFailed(NO_REVIEWS, details=[FieldProblem("from_reviews", NO_REVIEWS)])
            else:
                labels = [row.reference_row_id for row in rows if row.reference_row_id is not None]
                known = store.known_row_ids(conn, config.reference_data_id, labels)
                check_labels([row.reference_row_id for row in rows], known, locate)
            evaluation = Evaluation(
                id=uuid.uuid4(),
                organization_id=organization_id,
                matching_config_id=config.id,
                matching_config_version=config.version,
                source=source,
                status=EvaluationStatus.QUEUED,
                progress=EvaluationProgress(done=0, total=len(rows)),
                created_at=self.clock(),
            )
            store.insert_evaluation(conn, evaluation, config, [row.model_dump(mode="json") for row in rows])
        log.info(
            "evaluation.accepted",
            evaluation_id=str(evaluation.id),
            matching_config_id=str(config.id),
            source=source.value,
            rows=len(rows),
        )
        self._send(evaluation.id)
        return evaluation

    def submit_csv(self, organization_id: uuid.UUID, config_id: uuid.UUID, file: IO[bytes]) -> Evaluation:
        """:meth:`submit` the labelled rows of a CSV file (`labelled_csv`); its problems → 400 by line,
        more than :data:`MAX_ROWS` rows → 413."""
        labelled = read_labelled_csv(file, MAX_ROWS)
        return self.submit(organization_id, config_id, labelled.rows, EvaluationSource.CSV, labelled.locate)

    def get(self, organization_id: uuid.UUID, config_id: uuid.UUID, evaluation_id: uuid.UUID) -> Evaluation:
        with self.db.transaction() as conn:
            found = store.get_evaluation(conn, organization_id, config_id, evaluation_id)
            if found is None:
                self._config_exists(conn, organization_id, config_id)
                raise NotFound(NOT_FOUND)
        return found

    def list(
        self, organization_id: uuid.UUID, config_id: uuid.UUID, request: PageRequest
    ) -> Page[Evaluation]:
        with self.db.transaction() as conn:
            self._config_exists(conn, organization_id, config_id)
            return store.list_evaluations(conn, organization_id, config_id, request)

    @staticmethod
    def _config_exists(conn: Connection, organization_id: uuid.UUID, config_id: uuid.UUID) -> None:
        if configs_store.get_matching_config(conn, organization_id, config_id) is None:
            raise NotFound(MATCHING_NOT_FOUND)

    def _send(self, evaluation_id: uuid.UUID) -> None:
        # After the commit, as a run's messages: if the broker is down the evaluation stays queued
        # and the reconciler sends it again; the client still gets its 202.
        try:
            self.publisher.evaluate(evaluation_id)
        except Exception:
            log.exception("evaluation.enqueue_failed", evaluation_id=str(evaluation_id))

    # --- the worker's side ---------------------------------------------------------------------

    def execute(self, evaluation_id: uuid.UUID) -> EvaluationStatus | None:
        """Run one evaluation to its end (`done` or `error`); None when there was nothing to do
        (gone, final already, or running elsewhere). Transient failures propagate (retried)."""
        now = self.clock()
        with self.db.transaction() as conn:
            started = store.start_evaluation(conn, evaluation_id, now, now - RESTART_AFTER)
        if started is None:
            return None
        config, stored = started
        rows = [LabelledRow.model_validate(row) for row in stored]
        began = time.perf_counter()
        log.info("evaluation.started", evaluation_id=str(evaluation_id), rows=len(rows))

        def progress(done: int, total: int) -> None:
            with self.db.transaction() as conn:
                store.record_progress(conn, evaluation_id, done)

        try:
            report = evaluate(config, self.references.index(config), rows, progress=progress)
        except Exception as exc:
            if is_transient(exc):
                raise
            message = str(exc) if isinstance(exc, PermanentError) else FAILED
            log.exception("evaluation.failed", evaluation_id=str(evaluation_id), error=message)
            with self.db.transaction() as conn:
                store.fail_evaluation(conn, evaluation_id, message, self.clock())
            return EvaluationStatus.ERROR
        with self.db.transaction() as conn:
            store.complete_evaluation(conn, evaluation_id, report, self.clock())
        log.info(
            "evaluation.completed",
            evaluation_id=str(evaluation_id),
            matching_config_id=str(config.id),
            rows=report.rows,
            f1=report.metrics.f1,
            duration_ms=round((time.perf_counter() - began) * 1000, 1),
        )
        return EvaluationStatus.DONE

    def fail(self, evaluation_id: uuid.UUID, reason: str) -> None:
        """End an evaluation the worker gave up on (retries spent, time limit)."""
        with self.db.transaction() as conn:
            store.fail_evaluation(conn, evaluation_id, reason, self.clock())
        log.warning("evaluation.failed", evaluation_id=str(evaluation_id), error=reason)

    def redrive_waiting(self, created_before: datetime, limit: int = 100, now: datetime | None = None) -> int:
        """Send again (for the reconciler) the queued evaluations accepted before ``created_before``,
        whose message may be lost, and the running ones started more than :data:`RESTART_AFTER`
        before ``now``, whose worker died: a broker redelivers a dead worker's message within
        minutes, when it does nothing, so without this such an evaluation would stay `running`.
        A duplicate message does nothing."""
        stale_before = (now or self.clock()) - RESTART_AFTER
        with self.db.transaction() as conn:
            waiting = store.waiting(conn, created_before, stale_before, limit)
        for evaluation_id in waiting:
            self.publisher.evaluate(evaluation_id)
            log.info("evaluation.reconciled", evaluation_id=str(evaluation_id), action="evaluate")
        return len(waiting)
