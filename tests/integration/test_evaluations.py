"""The `packmatch.evaluate` actor on each pair of backends (SQLite + in-process broker, PostgreSQL +
Redis): a run to `done`, lost messages re-sent by the reconciler, a dead worker's evaluation
restarted after 30 minutes, failures and the time limit ending it in `error` with a stable message."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from packmatch.domain.evaluations import Evaluation, EvaluationSource, EvaluationStatus
from packmatch.errors import PermanentError
from packmatch.quality import LabelledRow
from packmatch.services import evaluations as service
from packmatch.services.evaluations import FAILED, RESTART_AFTER, Evaluations
from packmatch.services.ports import RecordingPublisher, utcnow
from packmatch.services.reconciler import Reconciler
from packmatch.store.tables import evaluations as evaluations_table
from packmatch.worker.actors import EVALUATION_TIME_LIMIT_ERROR
from tests.integration.conftest import BOOKINGS, RecordingLog, Stack


def labelled(count: int = 5) -> list[LabelledRow]:
    """One right invoice per booking, labelled with it."""
    return [
        LabelledRow(
            values={"ref": b["reference"], "carrier": b["carrier_name"], "total": b["amount"]},
            reference_row_id=str(b["id"]),
        )
        for b in BOOKINGS[:count]
    ]


def config_id(stack: Stack) -> uuid.UUID:
    world = stack.world
    package = stack.runtime.services.configs.get_package(world.organization_id, world.package_config_id)
    return package.slots[0].matching_config_id


def submit(stack: Stack, evaluations: Evaluations | None = None) -> Evaluation:
    evaluations = evaluations or stack.runtime.services.evaluations
    organization_id = stack.world.organization_id
    return evaluations.submit(organization_id, config_id(stack), labelled(), EvaluationSource.ROWS)


def submit_lost(stack: Stack) -> Evaluation:
    """An evaluation recorded as the API records it, whose message the broker lost."""
    services = stack.runtime.services
    return submit(stack, Evaluations(services.db, RecordingPublisher(), services.evaluations.references))


def get(stack: Stack, evaluation: Evaluation) -> Evaluation:
    evaluations = stack.runtime.services.evaluations
    return evaluations.get(stack.world.organization_id, config_id(stack), evaluation.id)


def reconciler(stack: Stack, later: timedelta) -> Reconciler:
    """The runtime's reconciler pieces, with a clock `later` from now."""
    services, settings = stack.runtime.services, stack.runtime.settings

    def clock() -> datetime:
        return utcnow() + later

    return Reconciler(
        services.db,
        stack.runtime.publisher,
        services.pipeline,
        stall_seconds=settings.stall_seconds,
        deadline_seconds=settings.run_deadline_seconds,
        clock=clock,
        evaluations=services.evaluations,
    )


def started_by_a_dead_worker(stack: Stack, evaluation: Evaluation, ago: timedelta) -> None:
    """As a worker leaves it that took the evaluation `ago` and died: `running`, halfway."""
    with stack.runtime.services.db.transaction() as conn:
        conn.execute(
            evaluations_table.update()
            .where(evaluations_table.c.id == evaluation.id)
            .values(status=EvaluationStatus.RUNNING.value, started_at=utcnow() - ago, progress_done=2)
        )


def test_an_evaluation_runs_on_the_worker_to_its_report(stack: Stack) -> None:
    accepted = submit(stack)
    assert accepted.status is EvaluationStatus.QUEUED
    stack.drain()
    done = get(stack, accepted)
    assert done.status is EvaluationStatus.DONE
    assert done.report is not None
    assert (done.report.rows, done.report.metrics.tp, done.report.metrics.f1) == (5, 5, 1.0)
    assert done.progress.done == done.progress.total == 5
    assert done.started_at is not None
    assert done.completed_at is not None


def test_a_queued_evaluation_whose_message_was_lost_is_sent_again(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = submit_lost(stack)
    stack.drain()
    assert get(stack, lost).status is EvaluationStatus.QUEUED
    recorder = RecordingLog()
    monkeypatch.setattr(service, "log", recorder)

    # Within the stall time its message may still be on its way: left alone.
    assert reconciler(stack, timedelta(0)).reconcile_once().evaluations_redriven == 0
    stalled = timedelta(seconds=stack.runtime.settings.stall_seconds + 1)
    report = reconciler(stack, stalled).reconcile_once()
    assert report.evaluations_redriven == 1
    assert ("evaluation.reconciled", {"evaluation_id": str(lost.id), "action": "evaluate"}) in recorder.events
    stack.drain()
    assert get(stack, lost).status is EvaluationStatus.DONE
    assert reconciler(stack, stalled).reconcile_once().evaluations_redriven == 0  # done: never again


def test_a_running_evaluation_whose_worker_died_is_restarted_after_30_minutes(stack: Stack) -> None:
    evaluation = submit_lost(stack)
    started_by_a_dead_worker(stack, evaluation, timedelta(minutes=29))
    stalled = timedelta(seconds=stack.runtime.settings.stall_seconds + 1)
    # Maybe still alive (the actor's time limit is 29 minutes): not re-sent, and a message does nothing.
    assert reconciler(stack, stalled).reconcile_once().evaluations_redriven == 0
    assert stack.runtime.services.evaluations.execute(evaluation.id) is None
    assert get(stack, evaluation).status is EvaluationStatus.RUNNING

    started_by_a_dead_worker(stack, evaluation, RESTART_AFTER + timedelta(seconds=1))
    assert reconciler(stack, stalled).reconcile_once().evaluations_redriven == 1
    stack.drain()
    done = get(stack, evaluation)
    assert done.status is EvaluationStatus.DONE
    assert done.report is not None
    assert done.report.rows == 5
    assert done.started_at is not None
    assert done.started_at > utcnow() - timedelta(minutes=1)  # started anew


def test_a_message_redelivered_after_30_minutes_restarts_a_dead_workers_evaluation(stack: Stack) -> None:
    services = stack.runtime.services
    evaluation = submit_lost(stack)
    started_by_a_dead_worker(stack, evaluation, timedelta(minutes=5))
    references = services.evaluations.references
    half_an_hour_later = Evaluations(
        services.db, RecordingPublisher(), references, clock=lambda: utcnow() + RESTART_AFTER
    )
    assert services.evaluations.execute(evaluation.id) is None  # now: its worker may be alive
    assert half_an_hour_later.execute(evaluation.id) is EvaluationStatus.DONE
    assert get(stack, evaluation).status is EvaluationStatus.DONE
    assert half_an_hour_later.execute(evaluation.id) is None  # final: a late duplicate does nothing


def failing(exc: BaseException) -> Callable[..., Any]:
    def evaluate(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return evaluate


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (RuntimeError("secret detail: /srv/data"), FAILED),
        (PermanentError("the config snapshot cannot be read"), "the config snapshot cannot be read"),
    ],
)
def test_a_failing_evaluation_ends_in_error_with_a_stable_message(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, exc: Exception, message: str
) -> None:
    monkeypatch.setattr(service, "evaluate", failing(exc))
    evaluation = submit(stack)
    stack.drain()
    failed = get(stack, evaluation)
    assert (failed.status, failed.error, failed.report) == (EvaluationStatus.ERROR, message, None)
    assert failed.completed_at is not None
    with stack.runtime.services.db.transaction() as conn:
        query = sa.select(evaluations_table.c.rows).where(evaluations_table.c.id == evaluation.id)
        assert conn.execute(query).scalar_one() == []  # its rows are not kept once it has ended


def test_an_evaluation_over_the_actors_time_limit_ends_in_error(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def hang(*args: Any, **kwargs: Any) -> Any:
        give_up = time.monotonic() + 15  # Python bytecode, so that the time limit can interrupt it
        while time.monotonic() < give_up:
            time.sleep(0.01)
        raise AssertionError("the time limit did not interrupt the evaluation")

    monkeypatch.setattr(service, "evaluate", hang)
    evaluation = submit_lost(stack)
    # The actor's own limit is 29 minutes; a message's `time_limit` option overrides it.
    stack.runtime.actors.evaluate.send_with_options(args=(str(evaluation.id),), time_limit=500)
    stack.drain()
    failed = get(stack, evaluation)
    assert (failed.status, failed.error) == (EvaluationStatus.ERROR, EVALUATION_TIME_LIMIT_ERROR)
