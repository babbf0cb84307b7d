"""Read the broker's dead-letter queue: messages failed for good (`packmatch dead-letters`).

The Redis broker keeps them for 7 days in `<namespace>:<queue>.XQ` (a sorted set of ids scored by
the time they failed) and `<namespace>:<queue>.XQ.msgs` (the encoded messages). The in-memory
broker's dead letters live only inside the process that failed them; RabbitMQ keeps them in the
`<queue>.XQ` queue, which its management UI shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.message import Message

from packmatch.worker.subjects import subject_id


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    actor: str
    subject: str | None  # the message's first argument as the API shows it: run_…, whd_… or eval_…
    failed_at: datetime


@dataclass(frozen=True)
class DeadLetters:
    total: int
    items: list[DeadLetter]


def _dead_letter(data: bytes, score: float) -> DeadLetter:
    message: Message[object] = Message.decode(data)
    subject = subject_id(message.actor_name, message.args[0]) if message.args else None
    failed_at = datetime.fromtimestamp(score / 1000, UTC)
    return DeadLetter(message.message_id, message.actor_name, subject, failed_at)


def read_redis(broker: RedisBroker, queue_name: str, limit: int) -> DeadLetters:
    """The newest `limit` dead letters of a queue, newest first."""
    key = f"{broker.namespace}:{queue_name}.XQ"
    client = broker.client
    total = int(client.zcard(key))
    entries: list[tuple[bytes, float]] = []
    if limit > 0:
        entries = cast(list[tuple[bytes, float]], client.zrevrange(key, 0, limit - 1, withscores=True))
    if not entries:
        return DeadLetters(total, [])
    payloads = client.hmget(f"{key}.msgs", [redis_id for redis_id, _ in entries])
    items = [
        _dead_letter(data, score)
        for (_, score), data in zip(entries, payloads, strict=True)
        if data is not None  # expired between the two reads
    ]
    return DeadLetters(total, items)


def read_dead_letters(broker: dramatiq.Broker, queue_name: str, limit: int) -> DeadLetters | None:
    """The broker's dead letters, or None when this broker's cannot be listed from outside."""
    if isinstance(broker, RedisBroker):
        return read_redis(broker, queue_name, limit)
    return None
