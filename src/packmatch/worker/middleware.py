"""Worker middleware: log context per message and lifecycle events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dramatiq
import structlog
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from packmatch.logging import get_logger
from packmatch.worker.reconciler import ReconcilerThread

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
            context["run_id"] = str(message.args[0])
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
