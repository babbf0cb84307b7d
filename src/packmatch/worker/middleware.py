"""Worker middleware: log context per message, dead letters and lifecycle events."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from packmatch.logging import get_logger
from packmatch.worker.reconciler import ReconcilerThread
from packmatch.worker.subjects import subject_key

log = get_logger(__name__)


class LogContext(Middleware):
    """Worker threads are reused, so context is cleared and re-bound around every message."""

    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()
        context: dict[str, Any] = {
            "message_id": message.message_id,
            "actor": message.actor_name,
            "attempt": message.options.get("retries", 0) + 1,
        }
        if message.args:
            context[subject_key(message.actor_name)] = str(message.args[0])
        structlog.contextvars.bind_contextvars(**context)

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        structlog.contextvars.clear_contextvars()

    def after_skip_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        structlog.contextvars.clear_contextvars()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        log.info("worker.started", queues=sorted(broker.get_declared_queues()))

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        log.info("worker.stopping")


def message_ids(message: MessageProxy) -> dict[str, Any]:
    """What a log line may say about a message: its ids, never its other arguments."""
    ids: dict[str, Any] = {"message_id": message.message_id, "actor": message.actor_name}
    if message.args:
        ids[subject_key(message.actor_name)] = str(message.args[0])
    if message.actor_name == "packmatch.match_slot" and len(message.args) > 1:
        ids["position"] = message.args[1]
    return ids


class DeadLetterLog(Middleware):
    """Logs `message.dead_lettered` when a message is failed for good (the broker's dead-letter queue).

    The run it belonged to stays `running` until the reconciler re-drives or ends it; the log line
    and `packmatch dead-letters` make the message itself visible.
    """

    def after_nack(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        log.error(
            "message.dead_lettered",
            **message_ids(message),
            queue=message.queue_name,
            retries=message.options.get("retries", 0),
        )


class RunsReconciler(Middleware):
    """Runs the reconciler thread for as long as the worker runs (SPEC §1: `packmatch worker`)."""

    def __init__(self, make_thread: Callable[[], ReconcilerThread]) -> None:
        self.make_thread = make_thread
        self.thread: ReconcilerThread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.thread = self.make_thread()
        self.thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        if self.thread is not None:
            self.thread.stop()


def extra_middleware(paths: str) -> list[Middleware]:
    """Instances of the `module:Class` paths in `PACKMATCH_WORKER_MIDDLEWARE` (comma-separated).

    The extension point for operators (metrics, tracing) and for the fault-injection tests; each
    class is built without arguments. A bad path stops the worker at start-up.
    """
    found: list[Middleware] = []
    for path in filter(None, (part.strip() for part in paths.split(","))):
        module_name, _, class_name = path.partition(":")
        if not module_name or not class_name:
            raise ImportError(f"PACKMATCH_WORKER_MIDDLEWARE entry {path!r} is not 'module:Class'")
        factory = getattr(importlib.import_module(module_name), class_name, None)
        if factory is None:
            raise ImportError(
                f"PACKMATCH_WORKER_MIDDLEWARE entry {path!r}: {module_name} has no {class_name}"
            )
        instance = factory()
        if not isinstance(instance, Middleware):
            raise ImportError(f"PACKMATCH_WORKER_MIDDLEWARE entry {path!r} is not a Dramatiq middleware")
        found.append(instance)
    return found
