"""Broker construction from a URL: `memory://` (in-process), `redis://…`, `amqp://…`."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import (
    AgeLimit,
    Callbacks,
    CurrentMessage,
    Pipelines,
    Retries,
    ShutdownNotifications,
    TimeLimit,
)

from packmatch.settings import Settings
from packmatch.worker.middleware import DeadLetterLog, LogContext


def _middleware(settings: Settings) -> list[dramatiq.Middleware]:
    # Dramatiq's defaults retry 20 times over up to 7 days and allow 10 minutes a message; ours are
    # set from settings. Actors decide retry-or-fail themselves (worker.retry) and raise Retry.
    return [
        AgeLimit(),
        TimeLimit(time_limit=settings.slot_time_limit_ms),
        ShutdownNotifications(),
        Callbacks(),
        Pipelines(),
        Retries(
            max_retries=settings.slot_max_retries,
            min_backoff=settings.slot_min_backoff_ms,
            max_backoff=settings.slot_max_backoff_ms,
        ),
        CurrentMessage(),
        LogContext(),
        DeadLetterLog(),
    ]


class _Dispatch:
    """Dramatiq's one Lua script (every broker command is a call of it) that, for `enqueue` calls
    made in a `one_round_trip` block on this thread, queues the call on that block's pipeline.
    A block inside another adds to the outer one's, which sends everything when it ends."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.pending = threading.local()

    def __call__(self, args: Sequence[Any], keys: Sequence[Any]) -> Any:
        batch: list[tuple[Sequence[Any], Sequence[Any]]] | None = getattr(self.pending, "batch", None)
        if batch is None or args[0] != "enqueue":
            return self.script(args=args, keys=keys)
        batch.append((args, keys))
        return None  # Dramatiq ignores what an enqueue returns

    @contextmanager
    def one_round_trip(self, client: redis.Redis) -> Iterator[None]:
        if getattr(self.pending, "batch", None) is not None:  # the outer block sends
            yield
            return
        batch: list[tuple[Sequence[Any], Sequence[Any]]] = []
        self.pending.batch = batch
        try:
            yield
        finally:
            self.pending.batch = None
            if batch:
                self._send(client, batch)

    def _send(self, client: redis.Redis, batch: list[tuple[Sequence[Any], Sequence[Any]]]) -> None:
        # EVALSHA straight on the pipeline: a script registered with it would cost a SCRIPT EXISTS
        # round trip first. A server that lost the script (restarted) answers NOSCRIPT to each
        # call; those are sent again one by one through the script, which loads it.
        pipe = client.pipeline(transaction=False)
        for args, keys in batch:
            pipe.evalsha(self.script.sha, len(keys), *keys, *args)
        answers = pipe.execute(raise_on_error=False)
        for (args, keys), answer in zip(batch, answers, strict=True):
            if isinstance(answer, redis.exceptions.NoScriptError):
                self.script(args=args, keys=keys)
            elif isinstance(answer, Exception):
                raise answer


class ClosingRedisBroker(RedisBroker):
    """Dramatiq's Redis broker, except that `close()` closes its connections (Dramatiq's does nothing)
    and that `one_round_trip()` sends the messages enqueued in it in one pipeline."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)  # type: ignore[no-untyped-call]
        self.dispatch_script = self.scripts["dispatch"] = _Dispatch(self.scripts["dispatch"])

    def one_round_trip(self) -> AbstractContextManager[None]:
        """Messages that this thread enqueues in the block reach Redis together when it ends: one
        round trip instead of one per message (each still Dramatiq's enqueue script)."""
        return self.dispatch_script.one_round_trip(self.client)

    def close(self) -> None:
        self.client.connection_pool.disconnect()


def one_round_trip(broker: dramatiq.Broker) -> AbstractContextManager[None]:
    """`broker.one_round_trip()` where the broker has it (Redis); elsewhere (RabbitMQ, the in-process
    stub) messages are sent one by one, as they are enqueued."""
    batched = getattr(broker, "one_round_trip", None)
    return nullcontext() if batched is None else batched()


def build_broker(settings: Settings) -> dramatiq.Broker:
    url = settings.broker_url
    middleware = _middleware(settings)
    if url.startswith("memory://"):
        return StubBroker(middleware=middleware)
    if url.startswith(("redis://", "rediss://", "unix://")):
        # Tuned so that a dead worker's messages come back in seconds, not minutes
        # (docs/reliability.md); the reconciler bounds recovery on its own as well.
        return ClosingRedisBroker(
            url=url,
            middleware=middleware,
            heartbeat_timeout=settings.redis_heartbeat_timeout_ms,
            maintenance_chance=settings.redis_maintenance_chance,
        )
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=middleware)
    raise ValueError("PACKMATCH_BROKER_URL must start with memory://, redis:// or amqp://")
