"""The Dramatiq pipeline with a real worker: on SQLite + in-process broker, and on PostgreSQL + Redis."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from packmatch.domain.models import RunStatus, SlotStatus
from packmatch.errors import PermanentError
from packmatch.services import pipeline as pipeline_module
from packmatch.services.pipeline import Pipeline
from packmatch.store.tables import match_results, matching_runs
from tests.integration.conftest import RecordingLog, Stack, invoice_row


def test_runs_reach_the_verdicts_of_their_inputs(stack: Stack) -> None:
    passed = stack.submit(invoice=[invoice_row(0)], delivery_note=[invoice_row(1)])
    review = stack.submit(invoice=[invoice_row(2)])
    failed = stack.submit(invoice=[invoice_row(3, ref="NOPE", carrier="Unknown", total=1)])
    stack.drain()
    assert [stack.get(r).status for r in (passed, review, failed)] == [
        RunStatus.PASSED,
        RunStatus.REVIEW,
        RunStatus.FAILED,
    ]
    final = stack.get(passed)
    assert final.completed_at is not None
    assert [s.status for s in final.slots] == [SlotStatus.MATCHED, SlotStatus.MATCHED]


def test_a_run_without_rows_for_any_slot_still_finalizes(stack: Stack) -> None:
    run = stack.submit()
    stack.drain()
    assert stack.get(run).status is RunStatus.FAILED


def test_duplicate_messages_change_nothing(stack: Stack) -> None:
    run = stack.submit(invoice=[invoice_row(0), invoice_row(1)], delivery_note=[invoice_row(2)])
    stack.runtime.publisher.fan_out(run.id)
    stack.drain()
    first = stack.get(run)
    for position in (0, 1):
        stack.runtime.publisher.match_slot(run.id, position)
    stack.runtime.publisher.fan_out(run.id)
    stack.runtime.publisher.finalize(run.id)
    stack.drain()
    assert stack.get(run) == first
    assert stack.count(matching_runs) == 2
    assert stack.count(match_results) == 3


def test_a_transient_failure_is_retried(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Pipeline._reference_rows
    calls: list[int] = []

    def flaky(self: Pipeline, config: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.OperationalError("SELECT", {}, Exception("connection reset"))
        return original(self, config)

    monkeypatch.setattr(Pipeline, "_reference_rows", flaky)
    run = stack.submit(invoice=[invoice_row(0)], delivery_note=[invoice_row(1)])
    stack.drain()
    assert stack.get(run).status is RunStatus.PASSED
    assert len(calls) == 3


def test_a_slot_is_reported_completed_only_once_its_transaction_commits(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The commit fails once after the slot was matched and recorded (the database restarted): the
    # transaction rolls back and the message is retried, so the first attempt must not have said
    # `slot.completed` (the fault scenarios count a second one as duplicated work).
    original = Pipeline._match_and_complete
    calls: list[int] = []

    def commit_lost(self: Pipeline, *args: Any) -> Any:
        done = original(self, *args)
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))
        return done

    monkeypatch.setattr(Pipeline, "_match_and_complete", commit_lost)
    recorder = RecordingLog()
    monkeypatch.setattr(pipeline_module, "log", recorder)
    run = stack.submit(invoice=[invoice_row(0)])
    stack.drain()
    assert stack.get(run).status is RunStatus.REVIEW
    assert len(calls) == 2
    events = [event for event, _ in recorder.events]
    assert events.count("slot.started") == 2  # the recorder saw both attempts
    completed = [fields for event, fields in recorder.events if event == "slot.completed"]
    assert [fields["document_type"] for fields in completed] == ["invoice"]
    assert events.count("run.finalized") == 1


def test_a_permanent_failure_ends_the_run_in_error_naming_the_slot(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    def gone(self: Pipeline, config: Any) -> Any:
        raise PermanentError("reference data ref_x no longer exists")

    monkeypatch.setattr(Pipeline, "_reference_rows", gone)
    run = stack.submit(invoice=[invoice_row(0)])
    stack.drain()
    final = stack.get(run)
    assert final.status is RunStatus.ERROR
    assert final.error is not None
    assert "invoice" in final.error
    assert "no longer exists" in final.error
    assert final.slots[0].status is SlotStatus.ERROR


def test_a_slot_that_keeps_failing_ends_in_error_when_retries_are_spent(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def down(self: Pipeline, config: Any) -> Any:
        calls.append(1)
        raise sa.exc.OperationalError("SELECT", {}, Exception("database is down"))

    monkeypatch.setattr(Pipeline, "_reference_rows", down)
    run = stack.submit(invoice=[invoice_row(0)])
    stack.drain()
    final = stack.get(run)
    assert final.status is RunStatus.ERROR
    assert "retries exhausted" in (final.error or "")
    assert len(calls) == stack.runtime.settings.slot_max_retries + 1
