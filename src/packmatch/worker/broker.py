"""Broker construction from a URL: `memory://` (in-process), `redis://…`, `amqp://…`."""

from __future__ import annotations

import dramatiq
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


class ClosingRedisBroker(RedisBroker):
    """Dramatiq's Redis broker, except that `close()` closes its connections (Dramatiq's does nothing)."""

    def close(self) -> None:
        self.client.connection_pool.disconnect()


def build_broker(settings: Settings) -> dramatiq.Broker:
    url = settings.broker_url
    middleware = _middleware(settings)
    if url.startswith("memory://"):
        return StubBroker(middleware=middleware)
    if url.startswith(("redis://", "rediss://", "unix://")):
        # Tuned so that a dead worker's messages come back in seconds, not minutes
        # (docs/reliability.md); the reconciler bounds recovery on its own as well.
        return ClosingRedisBroker(  # type: ignore[no-untyped-call]
            url=url,
            middleware=middleware,
            heartbeat_timeout=settings.redis_heartbeat_timeout_ms,
            maintenance_chance=settings.redis_maintenance_chance,
        )
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(url=url, middleware=middleware)
    raise ValueError("PACKMATCH_BROKER_URL must start with memory://, redis:// or amqp://")
