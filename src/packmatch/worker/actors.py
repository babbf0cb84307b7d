"""Thin, idempotent actors that take ids, and the publisher that sends to them.

Actors are declared on an explicit broker by `declare_actors` instead of at import time, so that
one process can hold one broker and tests can hold many.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage
from dramatiq.middleware.time_limit import TimeLimitExceeded

from packmatch.logging import get_logger
from packmatch.services.container import Services
from packmatch.services.evaluations import RESTART_AFTER
from packmatch.settings import Settings
from packmatch.worker.broker import one_round_trip
from packmatch.worker.retry import decide_retry, is_transient

log = get_logger(__name__)

ServicesProvider = Callable[[], Services]

# One evaluation's time limit (the service restarts a `running` one only after RESTART_AFTER, longer).
EVALUATION_TIME_LIMIT_MS = int(RESTART_AFTER.total_seconds() * 1000) - 60_000
EVALUATION_TIME_LIMIT_ERROR = "evaluation failed: time limit exceeded"


def _attempt() -> int:
    message = CurrentMessage.get_current_message()
    return 0 if message is None else int(message.options.get("retries", 0))


@dataclass(frozen=True)
class PipelineActors:
    fan_out: dramatiq.Actor[[str], None]
    match_slot: dramatiq.Actor[[str, int], None]
    finalize: dramatiq.Actor[[str], None]
    deliver_webhook: dramatiq.Actor[[str], None]
    evaluate: dramatiq.Actor[[str], None]


def declare_actors(broker: dramatiq.Broker, settings: Settings, services: ServicesProvider) -> PipelineActors:
    retry_options: dict[str, Any] = {
        "broker": broker,
        "queue_name": settings.queue_name,
        "max_retries": settings.slot_max_retries,
        "min_backoff": settings.slot_min_backoff_ms,
        "max_backoff": settings.slot_max_backoff_ms,
    }

    def fan_out(run_id: str) -> None:
        services().pipeline.fan_out(uuid.UUID(run_id))

    def finalize(run_id: str) -> None:
        services().pipeline.finalize(uuid.UUID(run_id))

    def deliver_webhook(delivery_id: str) -> None:
        # One attempt; a failed one is scheduled in the database and relayed when due, not held
        # here as a delayed message (NOTES-dramatiq: those wait in a worker's memory).
        services().deliveries.deliver(uuid.UUID(delivery_id))

    def evaluate(evaluation_id: str) -> None:
        evaluations = services().evaluations
        try:
            evaluations.execute(uuid.UUID(evaluation_id))
        except TimeLimitExceeded:  # a BaseException (see match_slot): the evaluation ends, not retried
            evaluations.fail(uuid.UUID(evaluation_id), EVALUATION_TIME_LIMIT_ERROR)

    def match_slot(run_id: str, position: int) -> None:
        pipeline = services().pipeline
        try:
            pipeline.execute_slot(uuid.UUID(run_id), position)
        # TimeLimitExceeded is a BaseException (Dramatiq interrupts the thread with it): without
        # naming it here a slot over its time limit would be retried and dead-lettered instead of
        # failing, and its run would wait for the deadline.
        except (Exception, TimeLimitExceeded) as exc:
            decision = decide_retry(
                exc,
                attempt=_attempt(),
                max_retries=settings.slot_max_retries,
                min_backoff_ms=settings.slot_min_backoff_ms,
                max_backoff_ms=settings.slot_max_backoff_ms,
            )
            pipeline.metrics.slot_failed(will_retry=decision.retry)
            log.warning(
                "slot.failed",
                position=position,
                will_retry=decision.retry,
                error=decision.reason,
                error_type=type(exc).__name__,
                exc_info=not is_transient(exc),
            )
            if decision.retry:
                raise dramatiq.Retry(decision.reason, delay=decision.delay_ms) from exc
            pipeline.fail_slot(uuid.UUID(run_id), position, decision.reason)

    def retry_control(retries: int, exc: BaseException) -> bool:
        # fan-out and finalize are idempotent: retry any transient failure, within the budget.
        return is_transient(exc) and retries < settings.slot_max_retries

    control = {**retry_options, "retry_when": retry_control}
    webhooks = {**control, "queue_name": settings.webhook_queue}  # a slow receiver never delays a slot
    return PipelineActors(
        fan_out=dramatiq.actor(actor_name="packmatch.fan_out", **control)(fan_out),
        match_slot=dramatiq.actor(
            actor_name="packmatch.match_slot", time_limit=settings.slot_time_limit_ms, **retry_options
        )(match_slot),
        finalize=dramatiq.actor(actor_name="packmatch.finalize", **control)(finalize),
        deliver_webhook=dramatiq.actor(actor_name="packmatch.deliver_webhook", **webhooks)(deliver_webhook),
        # On the slot queue (an evaluation is matching work); transient failures are retried, and
        # the evaluation restarts from its stored rows.
        evaluate=dramatiq.actor(
            actor_name="packmatch.evaluate", time_limit=EVALUATION_TIME_LIMIT_MS, **control
        )(evaluate),
    )


class DramatiqPublisher:
    """The services' Publisher port on top of the declared actors."""

    def __init__(self, broker: dramatiq.Broker, actors: PipelineActors) -> None:
        self.broker = broker
        self.actors = actors

    def fan_out(self, run_id: uuid.UUID) -> None:
        self.actors.fan_out.send(str(run_id))

    def match_slot(self, run_id: uuid.UUID, position: int) -> None:
        self.actors.match_slot.send(str(run_id), position)

    def match_slots(self, run_id: uuid.UUID, positions: Sequence[int]) -> None:
        # A run's messages in one Redis round trip (a pipeline); one by one on other brokers.
        with one_round_trip(self.broker):
            for position in positions:
                self.actors.match_slot.send(str(run_id), position)

    def finalize(self, run_id: uuid.UUID) -> None:
        self.actors.finalize.send(str(run_id))

    def together(self) -> AbstractContextManager[None]:
        return one_round_trip(self.broker)

    def deliver_webhook(self, delivery_id: uuid.UUID) -> None:
        self.actors.deliver_webhook.send(str(delivery_id))

    def evaluate(self, evaluation_id: uuid.UUID) -> None:
        self.actors.evaluate.send(str(evaluation_id))

    def ping(self) -> None:
        client = getattr(self.broker, "client", None)
        if client is not None:
            client.ping()
            return
        connection = getattr(self.broker, "connection", None)
        if connection is not None and not connection.is_open:
            raise ConnectionError("broker connection is closed")
