"""The worker edge under failure: time limits, dead letters, extension middleware, repeated SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

import pytest
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from packmatch import cli
from packmatch.bootstrap import Runtime
from packmatch.domain.models import RunStatus, SlotStatus
from packmatch.services.pipeline import Pipeline
from packmatch.services.reconciler import Reconciler
from packmatch.worker import middleware as worker_middleware
from packmatch.worker.broker import build_broker
from packmatch.worker.dead_letters import read_dead_letters
from packmatch.worker.middleware import extra_middleware
from packmatch.worker.reconciler import AdvisoryLock, ReconcilerThread
from packmatch.worker.shutdown import ignore_repeated_sigterm
from tests.conftest import fast_settings
from tests.integration.conftest import SERVICES, RecordingLog, Stack, invoice_row


@pytest.fixture(params=["sqlite+memory", pytest.param("postgres+redis", marks=SERVICES)])
def make_stack(
    request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]
) -> Iterator[Callable[..., Stack]]:
    """Like the `stack` fixture, with settings overrides; the worker runs until teardown."""
    stacks: list[Stack] = []

    def build(**overrides: object) -> Stack:
        if request.param == "sqlite+memory":
            backends = {"database_url": request.getfixturevalue("sqlite_url")}
        else:
            backends = {
                "database_url": request.getfixturevalue("postgres_url"),
                "broker_url": request.getfixturevalue("redis_url"),
            }
        stack = Stack(make_runtime(**backends, **overrides))
        stack.worker.start()
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        stack.worker.stop()


def test_a_slot_over_its_time_limit_ends_in_error_naming_the_slot(
    make_stack: Callable[..., Stack], monkeypatch: pytest.MonkeyPatch
) -> None:
    def hang(self: Pipeline, config: Any) -> Any:
        give_up = time.monotonic() + 15  # Python bytecode, so that the time limit can interrupt it
        while time.monotonic() < give_up:
            time.sleep(0.01)
        raise AssertionError("the time limit did not interrupt the slot")

    monkeypatch.setattr(Pipeline, "_reference_rows", hang)
    stack = make_stack(slot_time_limit_ms=1000)
    run = stack.submit(invoice=[invoice_row(0)])
    stack.drain()
    final = stack.get(run)
    assert final.status is RunStatus.ERROR
    assert final.error == "slot invoice: matching failed (time limit exceeded)"
    assert final.slots[0].status is SlotStatus.ERROR


def test_a_message_failed_for_good_is_logged_and_listed(
    make_stack: Callable[..., Stack], monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(self: Pipeline, run_id: Any, **_: Any) -> None:
        raise sa.exc.OperationalError("SELECT", {}, Exception("database is down"))

    recorder = RecordingLog()
    monkeypatch.setattr(worker_middleware, "log", recorder)
    monkeypatch.setattr(Pipeline, "finalize", down)
    stack = make_stack()
    run = stack.submit()  # no rows: its one message is `finalize`
    stack.drain()
    dead = [fields for event, fields in recorder.events if event == "message.dead_lettered"]
    assert [(d["actor"], d["run_id"]) for d in dead] == [("packmatch.finalize", str(run.id))]
    assert dead[0]["retries"] == stack.runtime.settings.slot_max_retries + 1
    assert stack.get(run).status is RunStatus.RUNNING  # the reconciler's to re-drive
    listed = read_dead_letters(stack.runtime.broker, stack.runtime.settings.queue_name, 10)
    if isinstance(stack.runtime.broker, RedisBroker):
        assert listed is not None
        assert [(d.actor, d.subject) for d in listed.items] == [("packmatch.finalize", f"run_{run.id}")]
        assert listed.items[0].message_id == dead[0]["message_id"]
    else:
        assert listed is None


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
def test_the_dead_letters_command_says_the_memory_broker_keeps_none(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PACKMATCH_BROKER_URL", "memory://")
    assert cli.main(["dead-letters"]) == 0
    assert "no dead letters to list: the memory:// broker" in capsys.readouterr().out


@pytest.mark.redis
@pytest.mark.usefixtures("restore_logging")
def test_the_dead_letters_command_lists_redis_dead_letters_newest_first(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = build_broker(fast_settings(broker_url=redis_url))
    assert isinstance(broker, RedisBroker)
    subjects = [uuid.uuid4() for _ in range(3)]
    actors = ["packmatch.finalize", "packmatch.deliver_webhook", "packmatch.evaluate"]
    for n, (actor, subject) in enumerate(zip(actors, subjects, strict=True)):
        data = f'{{"queue_name":"packmatch","actor_name":"{actor}","args":["{subject}"],'
        data += f'"kwargs":{{}},"options":{{}},"message_id":"m{n}","message_timestamp":0}}'
        broker.client.zadd("dramatiq:packmatch.XQ", {f"x{n}": 1_700_000_000_000 + n * 1000})
        broker.client.hset("dramatiq:packmatch.XQ.msgs", f"x{n}", data)
    broker.close()
    monkeypatch.setenv("PACKMATCH_BROKER_URL", redis_url)
    assert cli.main(["dead-letters", "--limit", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    # Each message names its subject as the API shows it: a delivery and an evaluation are not runs.
    assert out == [
        f"2023-11-14T22:13:22.000Z  m2  packmatch.evaluate  eval_{subjects[2]}",
        f"2023-11-14T22:13:21.000Z  m1  packmatch.deliver_webhook  whd_{subjects[1]}",
    ]
    assert cli.main(["dead-letters", "--limit", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(f"packmatch.finalize  run_{subjects[0]}")


def test_redis_broker_tuning_comes_from_settings() -> None:
    settings = fast_settings(
        broker_url="redis://127.0.0.1:6379/15", redis_heartbeat_timeout_ms=7000, redis_maintenance_chance=1234
    )
    broker = build_broker(settings)
    assert isinstance(broker, RedisBroker)
    assert (broker.heartbeat_timeout, broker.maintenance_chance) == (7000, 1234)
    broker.close()


class Marker(Middleware):
    pass


def test_extra_middleware_is_built_from_module_class_paths() -> None:
    built = extra_middleware(f" {__name__}:Marker , ,{__name__}:Marker")
    assert [type(m) for m in built] == [Marker, Marker]
    assert extra_middleware("") == []


@pytest.mark.parametrize(
    "path", ["no_colon_here", f"{__name__}:Missing", f"{__name__}:RecordingLog", "no.such.module:X"]
)
def test_a_bad_middleware_path_stops_the_worker_at_start(path: str) -> None:
    with pytest.raises(ImportError):
        extra_middleware(path)


def test_a_repeated_sigterm_is_the_same_request_unless_it_comes_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []

    def dramatiq_handler(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    previous = signal.signal(signal.SIGTERM, dramatiq_handler)
    try:
        ignore_repeated_sigterm(window=1.0)
        handler = signal.getsignal(signal.SIGTERM)
        assert callable(handler)
        clock = iter([100.0, 100.01, 100.5, 101.5])
        monkeypatch.setattr(time, "monotonic", lambda: next(clock))
        for _ in range(4):
            handler(signal.SIGTERM, None)
        assert calls == [signal.SIGTERM, signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)


@pytest.mark.postgres
def test_a_stopping_reconciler_hands_over_its_leader_lock_at_once(
    make_runtime: Callable[..., Runtime], postgres_url: str
) -> None:
    runtime = make_runtime(database_url=postgres_url)
    leading = threading.Event()

    def reconciler() -> Reconciler:
        leading.set()
        return runtime.reconciler()

    thread = ReconcilerThread(reconciler, AdvisoryLock(runtime.services.db.engine), interval=0.05)
    thread.start()
    assert leading.wait(10)
    thread.stop()
    assert not thread.is_alive()
    successor = AdvisoryLock(make_runtime(database_url=postgres_url).services.db.engine)
    assert successor.acquire()
    successor.release()
