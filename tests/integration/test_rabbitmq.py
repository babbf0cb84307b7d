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
from packmatch.domain.models import PackageRun, RunStatus
from tests.integration.conftest import Stack, invoice_row

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq]


class Processed(dramatiq.Middleware):
    """Wakes waiters after every processed message: RabbitMQ's join() does not wait for unacked ones."""

    def __init__(self) -> None:
        self.condition = threading.Condition()

    def after_process_message(
        self, broker: dramatiq.Broker, message: MessageProxy, *, result: Any = None, exception: Any = None
    ) -> None:
        with self.condition:
            self.condition.notify_all()

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.condition:
            return self.condition.wait_for(predicate, timeout)


@pytest.fixture
def rabbit_stack(
    make_runtime: Callable[..., Runtime], postgres_url: str, amqp_url: str
) -> Iterator[tuple[Stack, Processed]]:
    queue = f"packmatch_test_{uuid.uuid4().hex[:8]}"
    runtime = make_runtime(database_url=postgres_url, broker_url=amqp_url, queue_name=queue)
    processed = Processed()
    runtime.broker.add_middleware(processed)
    stack = Stack(runtime)
    with stack.worker:
        yield stack, processed
    channel = pika.BlockingConnection(pika.URLParameters(amqp_url)).channel()
    for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
        channel.queue_delete(name)
    channel.connection.close()


def test_runs_reach_their_verdicts_over_rabbitmq(rabbit_stack: tuple[Stack, Processed]) -> None:
    stack, processed = rabbit_stack
    passed = stack.submit(invoice=[invoice_row(0)], delivery_note=[invoice_row(1)])
    failed = stack.submit(invoice=[invoice_row(2, ref="NOPE", carrier="Unknown", total=1)])

    def final(run: PackageRun) -> Callable[[], bool]:
        return lambda: stack.get(run).status is not RunStatus.RUNNING

    for run in (passed, failed):
        assert processed.wait_until(final(run), 30), f"run {run.id} was not finalized"
    assert stack.get(passed).status is RunStatus.PASSED
    assert stack.get(failed).status is RunStatus.FAILED


def test_the_publisher_reports_rabbitmq_reachable(rabbit_stack: tuple[Stack, Processed]) -> None:
    stack, _ = rabbit_stack
    stack.runtime.publisher.ping()
