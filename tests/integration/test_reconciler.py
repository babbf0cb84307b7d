"""The reconciler repairs lost messages and ends overdue runs; one leader at a time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from packmatch.bootstrap import Runtime
from packmatch.domain.models import PackageRun, RunStatus, SlotStatus
from packmatch.services.pipeline import Pipeline
from packmatch.services.ports import Publisher, RecordingPublisher, utcnow
from packmatch.services.reconciler import DEADLINE_ERROR, Reconciler
from packmatch.services.runs import Runs
from packmatch.worker.reconciler import AdvisoryLock
from tests.integration.conftest import Stack, invoice_row


def lost_messages(stack: Stack) -> tuple[Runs, Pipeline]:
    """Services whose messages go nowhere, as if the broker lost them."""
    dropped = RecordingPublisher()
    db = stack.runtime.services.db
    return Runs(db, dropped), Pipeline(db, dropped)


def reconciler(stack: Stack, later: timedelta, publisher: Publisher | None = None) -> Reconciler:
    services = stack.runtime.services
    settings = stack.runtime.settings

    def clock() -> datetime:
        return utcnow() + later

    return Reconciler(
        services.db,
        publisher or stack.runtime.publisher,
        services.pipeline,
        stall_seconds=settings.stall_seconds,
        deadline_seconds=settings.run_deadline_seconds,
        clock=clock,
    )


def accept_lost(stack: Stack, runs: Runs) -> PackageRun:
    world = stack.world
    documents = {"invoice": [invoice_row(0)], "delivery_note": [invoice_row(1)]}
    return runs.accept(world.organization_id, world.package_config_id, documents)


def test_a_run_whose_fan_out_was_lost_is_redriven(stack: Stack) -> None:
    runs, _ = lost_messages(stack)
    run = accept_lost(stack, runs)
    stalled = timedelta(seconds=stack.runtime.settings.stall_seconds + 1)
    report = reconciler(stack, stalled).reconcile_once()
    stack.drain()
    assert (report.redriven, report.expired) == (1, 0)
    assert stack.get(run).status is RunStatus.PASSED


def test_a_run_whose_finalize_was_lost_is_finalized(stack: Stack) -> None:
    runs, pipeline = lost_messages(stack)
    run = accept_lost(stack, runs)
    pipeline.execute_slot(run.id, 0)
    pipeline.execute_slot(run.id, 1)
    assert stack.get(run).status is RunStatus.RUNNING
    stalled = timedelta(seconds=stack.runtime.settings.stall_seconds + 1)
    reconciler(stack, stalled).reconcile_once()
    stack.drain()
    assert stack.get(run).status is RunStatus.PASSED


def test_one_pass_claims_a_stalled_run_once(stack: Stack) -> None:
    runs, _ = lost_messages(stack)
    accept_lost(stack, runs)
    stalled = timedelta(seconds=stack.runtime.settings.stall_seconds + 1)
    dropped = RecordingPublisher()
    first = reconciler(stack, stalled, dropped).reconcile_once()
    second = reconciler(stack, stalled, dropped).reconcile_once()
    assert (first.redriven, second.redriven) == (1, 0)
    assert [kind for kind, _, _ in dropped.sent] == ["fan_out"]


def test_a_run_making_progress_is_left_alone(stack: Stack) -> None:
    runs, _ = lost_messages(stack)
    accept_lost(stack, runs)
    report = reconciler(stack, timedelta(0)).reconcile_once()
    assert report.redriven == 0


def test_a_run_past_its_deadline_ends_in_error(stack: Stack) -> None:
    runs, pipeline = lost_messages(stack)
    run = accept_lost(stack, runs)
    pipeline.execute_slot(run.id, 0)
    overdue = timedelta(seconds=stack.runtime.settings.run_deadline_seconds + 1)
    report = reconciler(stack, overdue).reconcile_once()
    final = stack.get(run)
    assert report.expired == 1
    assert (final.status, final.error) == (RunStatus.ERROR, DEADLINE_ERROR)
    assert [s.status for s in final.slots] == [SlotStatus.MATCHED, SlotStatus.ERROR]
    assert final.completed_at is not None


@pytest.mark.postgres
def test_only_one_process_leads_at_a_time(make_runtime: Callable[..., Runtime], postgres_url: str) -> None:
    first_engine = make_runtime(database_url=postgres_url).services.db.engine
    second_engine = make_runtime(database_url=postgres_url).services.db.engine
    first, second = AdvisoryLock(first_engine), AdvisoryLock(second_engine)
    assert first.acquire()
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()
