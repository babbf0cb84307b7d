"""Queue depths for `/metrics`, read from real Redis and RabbitMQ brokers with no worker running."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pika
import pytest

from packmatch.bootstrap import Runtime
from packmatch.worker.queues import queue_depth


def send(runtime: Runtime, count: int, *, delay_ms: int | None = None) -> None:
    for position in range(count):
        runtime.actors.match_slot.send_with_options(args=(str(uuid.uuid4()), position), delay=delay_ms)


@pytest.mark.redis
def test_redis_counts_ready_delayed_and_dead_messages(
    make_runtime: Callable[..., Runtime], redis_url: str
) -> None:
    runtime = make_runtime(broker_url=redis_url)
    send(runtime, 3)
    send(runtime, 2, delay_ms=60_000)
    queue = runtime.settings.queue_name
    runtime.broker.client.zadd(f"dramatiq:{queue}.XQ", {"dead-1": 0})  # type: ignore[attr-defined]
    depth = queue_depth(runtime.broker, queue)
    assert (depth.queue, depth.ready, depth.delayed, depth.dead) == (queue, 3, 2, 1)
    assert depth.oldest_age_seconds is not None
    assert 0 <= depth.oldest_age_seconds < 60


@pytest.mark.redis
def test_an_empty_redis_queue_has_no_age(make_runtime: Callable[..., Runtime], redis_url: str) -> None:
    runtime = make_runtime(broker_url=redis_url)
    depth = queue_depth(runtime.broker, runtime.settings.queue_name)
    assert (depth.ready, depth.delayed, depth.dead, depth.oldest_age_seconds) == (0, 0, 0, 0.0)


@pytest.fixture
def rabbit_runtime(make_runtime: Callable[..., Runtime], amqp_url: str) -> Iterator[Runtime]:
    queue = f"packmatch_test_{uuid.uuid4().hex[:8]}"
    yield make_runtime(broker_url=amqp_url, queue_name=queue)
    channel = pika.BlockingConnection(pika.URLParameters(amqp_url)).channel()
    for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
        channel.queue_delete(name)
    channel.connection.close()


@pytest.mark.rabbitmq
def test_rabbitmq_counts_ready_and_delayed_messages(rabbit_runtime: Runtime) -> None:
    send(rabbit_runtime, 4)
    send(rabbit_runtime, 1, delay_ms=60_000)
    queue = rabbit_runtime.settings.queue_name
    # RabbitMQ's queue counts trail its publishes by a moment and it offers nothing to await.
    deadline = time.monotonic() + 10
    while (depth := queue_depth(rabbit_runtime.broker, queue)).ready + depth.delayed < 5:
        assert time.monotonic() < deadline, f"RabbitMQ still counts {depth}"
        time.sleep(0.05)
    assert (depth.ready, depth.delayed, depth.dead) == (4, 1, 0)
    assert depth.oldest_age_seconds is None  # RabbitMQ cannot tell without consuming
