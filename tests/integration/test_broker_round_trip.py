"""A run's `match_slot` messages, and a whole batch's, reach Redis in one round trip (issue 15), and all
of them arrive."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis.client
from redis.connection import AbstractConnection

from packmatch.bootstrap import Runtime
from packmatch.domain.models import PackageRun, RunStatus
from packmatch.services import runs as runs_module
from packmatch.services.run_batches import BatchItem
from packmatch.worker.broker import ClosingRedisBroker
from tests.integration.conftest import RecordingLog, Stack, invoice_row

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts what this thread sends to Redis: one packed send per command, or per pipeline."""
    sent: list[int] = []
    original = AbstractConnection.send_packed_command
    me = threading.get_ident()

    def counted(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        if threading.get_ident() == me:
            sent.append(1)
        original(self, command, check_health)  # type: ignore[no-untyped-call]

    with monkeypatch.context() as patch:
        patch.setattr(AbstractConnection, "send_packed_command", counted)
        yield sent


@pytest.fixture
def redis_stack(postgres_url: str, redis_url: str, make_runtime: Callable[..., Runtime]) -> Stack:
    stack = Stack(make_runtime(database_url=postgres_url, broker_url=redis_url))
    assert isinstance(stack.runtime.broker, ClosingRedisBroker)
    return stack


def test_accepting_a_run_sends_its_slot_messages_in_one_round_trip(
    redis_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    redis_stack.submit(invoice=[invoice_row(0)])  # warm-up: pool connection, Lua stack size
    with round_trips(monkeypatch) as sent:
        run = redis_stack.submit(invoice=[invoice_row(1)], delivery_note=[invoice_row(2)])
    assert len(run.slots) == 2
    assert len(sent) == 1
    with redis_stack.worker:
        redis_stack.drain()
    assert redis_stack.get(run).status is RunStatus.PASSED


def test_many_runs_lose_no_message(redis_stack: Stack) -> None:
    runs = [
        redis_stack.submit(invoice=[invoice_row(i % 5)], delivery_note=[invoice_row(i % 5)])
        for i in range(30)
    ]
    with redis_stack.worker:
        redis_stack.drain()
    assert {redis_stack.get(run).status for run in runs} == {RunStatus.PASSED}


def test_a_server_that_lost_the_script_still_gets_every_message(redis_stack: Stack) -> None:
    broker = redis_stack.runtime.broker
    assert isinstance(broker, ClosingRedisBroker)
    broker.dispatch_script.script.sha = "0" * 40  # as if Redis restarted: NOSCRIPT for each call
    run = redis_stack.submit(invoice=[invoice_row(0)], delivery_note=[invoice_row(1)])
    with redis_stack.worker:
        redis_stack.drain()
    assert redis_stack.get(run).status is RunStatus.PASSED


def batch(stack: Stack, size: int) -> list[BatchItem]:
    config = stack.world.package_config_id
    documents = {"invoice": [invoice_row(0)], "delivery_note": [invoice_row(1)]}
    return [BatchItem(config, documents) for _ in range(size)]


def test_a_batch_of_runs_sends_every_slot_message_in_one_round_trip(
    redis_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = redis_stack.runtime.services
    redis_stack.submit(invoice=[invoice_row(0)])  # warm-up: pool connection, Lua stack size
    with round_trips(monkeypatch) as sent:
        entries = services.run_batches.accept(redis_stack.world.organization_id, batch(redis_stack, 20))
    assert len(sent) == 1  # 40 match_slot messages, one pipeline
    runs = [entry for entry in entries if isinstance(entry, PackageRun)]
    assert len(runs) == 20
    with redis_stack.worker:
        redis_stack.drain()
    assert {redis_stack.get(run).status for run in runs} == {RunStatus.PASSED}


def test_a_batch_whose_messages_cannot_be_sent_is_recorded_and_each_run_logged(
    redis_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    services = redis_stack.runtime.services
    recorder = RecordingLog()

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(runs_module, "log", recorder)
    monkeypatch.setattr(redis.client.Pipeline, "execute", refused)
    entries = services.run_batches.accept(redis_stack.world.organization_id, batch(redis_stack, 3))
    runs = [entry for entry in entries if isinstance(entry, PackageRun)]
    failures = [(level, f["run_id"]) for level, event, f in recorder.calls if event == "run.enqueue_failed"]
    assert failures == [
        ("exception", str(runs[0].id)),
        ("error", str(runs[1].id)),
        ("error", str(runs[2].id)),
    ]
    # recorded all the same: the reconciler re-drives them
    assert {redis_stack.get(run).status for run in runs} == {RunStatus.RUNNING}
