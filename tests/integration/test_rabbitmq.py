"""The pipeline on RabbitMQ (`PACKMATCH_BROKER_URL=amqp://…`) with PostgreSQL and a real worker."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import dramatiq
import pika
import pytest
from dramatiq.broker import MessageProxy

from packmatch.bootstrap import Runtime
from packmatch.domain.models import RunStatus
from tests.integration.conftest import Stack, invoice_row

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]


class Finalizations(dramatiq.Middleware):
    """Signals each processed finalize message: RabbitMQ's join() does not wait for unacked ones."""

    def __init__(self) -> None:
        self.done: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def event(self, run_id: str) -> threading.Event:
        with self.lock:
            return self.done.setdefault(run_id, threading.Event())

    def after_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy, *, result: Any = None, exception: Any = None
    ) -> None:
        if message.actor_name == "packmatch.finalize":
            self.event(str(message.args[0])).set()


@pytest.fixture
def rabbit_stack(
    make_runtime: Callable[..., Runtime], postgres_url: str, amqp_url: str
) -> Iterator[tuple[Stack, Finalizations]]:
    queue = f"packmatch_test_{uuid.uuid4().hex[:8]}"
    runtime = make_runtime(database_url=postgres_url, broker_url=amqp_url, queue_name=queue)
    finalizations = Finalizations()
    runtime.broker.add_middleware(finalizations)
    stack = Stack(runtime)
    with stack.worker:
        yield stack, finalizations
    channel = pika.BlockingConnection(pika.URLParameters(amqp_url)).channel()
    for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
        channel.queue_delete(name)
    channel.connection.close()


def test_runs_reach_their_verdicts_over_rabbitmq(rabbit_stack: tuple[Stack, Finalizations]) -> None:
    stack, finalizations = rabbit_stack
    passed = stack.submit(invoice=[invoice_row(0)], delivery_note=[invoice_row(1)])
    failed = stack.submit(invoice=[invoice_row(2, ref="NOPE", carrier="Unknown", total=1)])
    for run in (passed, failed):
        assert finalizations.event(str(run.id)).wait(timeout=30), "the run was not finalized"
    assert stack.get(passed).status is RunStatus.PASSED
    assert stack.get(failed).status is RunStatus.FAILED


def test_the_publisher_reports_rabbitmq_reachable(rabbit_stack: tuple[Stack, Finalizations]) -> None:
    stack, _ = rabbit_stack
    stack.runtime.publisher.ping()
