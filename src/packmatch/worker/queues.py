"""How many messages wait in the broker: the queue-depth gauges of `/metrics` (and KEDA's signal).

Dramatiq keeps three queues per queue name: the queue itself (ready messages), `<queue>.DQ` (retries
and other delayed messages not yet due) and `<queue>.XQ` (dead letters). The Redis broker keeps
each as a list or sorted set of ids under `<namespace>:<queue>` plus a hash of the encoded
messages; RabbitMQ reports a count per queue; the in-memory broker keeps Python queues.
"""

from __future__ import annotations

import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.common import dq_name
from dramatiq.message import Message

from packmatch.domain.monitoring import QueueDepth


def queue_depth(broker: dramatiq.Broker, queue_name: str) -> QueueDepth:
    if isinstance(broker, RedisBroker):
        return _redis(broker, queue_name)
    if isinstance(broker, StubBroker):
        return _stub(broker, queue_name)
    counts = getattr(broker, "get_queue_message_counts", None)  # RabbitmqBroker
    if counts is None:
        raise TypeError(f"cannot read queue depths from {type(broker).__name__}")
    ready, delayed, dead = counts(queue_name)
    # RabbitMQ cannot show the oldest message without consuming it.
    return QueueDepth(queue_name, ready, delayed, dead, None)


def _redis(broker: RedisBroker, queue_name: str) -> QueueDepth:
    key = f"{broker.namespace}:{queue_name}"
    with broker.client.pipeline(transaction=False) as pipe:
        pipe.llen(key)
        pipe.llen(f"{key}.DQ")
        pipe.zcard(f"{key}.XQ")
        pipe.lindex(key, 0)
        ready, delayed, dead, first = pipe.execute()
    age = 0.0
    if first is not None:
        data = broker.client.hget(f"{key}.msgs", first)
        if isinstance(data, bytes):  # else consumed between the two reads: the head is younger
            sent_ms = Message.decode(data).message_timestamp
            age = max(0.0, time.time() - sent_ms / 1000)
    return QueueDepth(queue_name, int(ready), int(delayed), int(dead), age)


def oldest_unacknowledged_sent(broker: dramatiq.Broker, queue_name: str) -> float | None:
    """When (epoch seconds) the oldest message of `queue_name` that no worker has finished was sent:
    waiting in the queue, or fetched by a worker and not yet acknowledged (prefetched, or being
    processed). None if there is none, or if the broker cannot tell (RabbitMQ, in-memory)."""
    if not isinstance(broker, RedisBroker):
        return None
    namespace, client = broker.namespace, broker.client
    key = f"{namespace}:{queue_name}"
    workers: list[Any] = list(client.zrange(f"{namespace}:__heartbeats__", 0, -1))
    with client.pipeline(transaction=False) as pipe:
        pipe.lindex(key, 0)
        for worker in workers:
            name = worker.decode() if isinstance(worker, bytes) else str(worker)
            pipe.smembers(f"{namespace}:__acks__.{name}.{queue_name}")
        head, *fetched = pipe.execute()
    ids = ([head] if head is not None else []) + [m for members in fetched for m in members]
    if not ids:
        return None
    bodies = client.hmget(f"{key}.msgs", ids)
    sent = [Message.decode(body).message_timestamp / 1000 for body in bodies if isinstance(body, bytes)]
    return min(sent, default=None)


def _stub(broker: StubBroker, queue_name: str) -> QueueDepth:
    ready = broker.queues[queue_name].qsize() if queue_name in broker.queues else 0
    delayed_name = dq_name(queue_name)
    delayed = broker.queues[delayed_name].qsize() if delayed_name in broker.queues else 0
    dead = len(broker.dead_letters_by_queue.get(queue_name, []))
    return QueueDepth(queue_name, ready, delayed, dead, None)
