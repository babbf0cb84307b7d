"""The reconciler repairs lost messages and ends overdue runs; one leader at a time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from packmatch.bootstrap import Runtime
from packmatch.domain.models import PackageRun, RunStatus, SlotStatus
from packmatch.engine import Matcher
from packmatch.services import pipeline as pipeline_module
from packmatch.services.pipeline import Pipeline
from packmatch.services.ports import Publisher, RecordingPublisher, utcnow
from packmatch.services.reconciler import DEADLINE_ERROR, Reconciler
from packmatch.services.runs import Runs
from packmatch.store import runs as runs_store
from packmatch.store.tables import package_runs
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
    runs, _ = lost_messages(stack)
    # No rows at all: no slot to run, so the run's only message is `finalize`, and it is lost.
    run = runs.accept(stack.world.organization_id, stack.world.package_config_id, {})
    assert stack.get(run).status is RunStatus.RUNNING
    stalled = timedelta(seconds=stack.runtime.settings.stall_seconds + 1)
    reconciler(stack, stalled).reconcile_once()
    stack.drain()
    assert stack.get(run).status is RunStatus.FAILED  # the required invoice is missing


def test_the_slot_that_resolves_a_run_last_finalizes_it(stack: Stack) -> None:
    runs, pipeline = lost_messages(stack)
    run = accept_lost(stack, runs)
    pipeline.execute_slot(run.id, 0)
    assert stack.get(run).status is RunStatus.RUNNING
    pipeline.fail_slot(run.id, 1, "boom")
    final = stack.get(run)
    assert (final.status, final.error) == (RunStatus.ERROR, "slot delivery_note: boom")


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


def test_a_long_slot_keeps_recording_progress(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """So that the reconciler does not take a slot that is still being worked on for a stalled one."""
    runs, _ = lost_messages(stack)
    world = stack.world
    run = runs.accept(
        world.organization_id, world.package_config_id, {"invoice": [invoice_row(i) for i in range(3)]}
    )
    ticks = iter(range(1, 100))

    def clock() -> datetime:
        return utcnow() + timedelta(minutes=next(ticks))

    seen: list[datetime] = []
    original = Matcher.match

    def match(self: Any, row: Any) -> Any:
        with stack.runtime.services.db.transaction() as conn:
            query = sa.select(package_runs.c.progress_at).where(package_runs.c.id == run.id)
            seen.append(conn.execute(query).scalar_one())
        return original(self, row)

    monkeypatch.setattr(pipeline_module, "PROGRESS_EVERY_SECONDS", 0.0)
    monkeypatch.setattr(Matcher, "match", match)
    Pipeline(stack.runtime.services.db, RecordingPublisher(), clock).execute_slot(run.id, 0)
    assert len(seen) == 3
    assert seen[0] < seen[1] < seen[2]


def test_a_run_whose_verdict_cannot_be_computed_still_ends_at_its_deadline(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """And it does not keep the reconciler from ending the other overdue runs."""
    runs, _ = lost_messages(stack)
    broken, fine = accept_lost(stack, runs), accept_lost(stack, runs)
    original = runs_store.get_snapshot

    def get_snapshot(conn: Any, run_id: Any) -> Any:
        if run_id == broken.id:
            raise ValueError("a snapshot this version cannot read")
        return original(conn, run_id)

    monkeypatch.setattr(runs_store, "get_snapshot", get_snapshot)
    overdue = timedelta(seconds=stack.runtime.settings.run_deadline_seconds + 1)
    report = reconciler(stack, overdue).reconcile_once()
    assert report.expired == 2
    for run in (broken, fine):
        final = stack.get(run)
        assert (final.status, final.error) == (RunStatus.ERROR, DEADLINE_ERROR)
