"""Module that Dramatiq's CLI imports in every worker process.

Dramatiq binds actors to a broker when they are declared, so this module builds the runtime at
import time: the one documented exception to "nothing is built at import" (STYLE principle 7).
"""

from __future__ import annotations

import dramatiq

from packmatch.bootstrap import build_runtime
from packmatch.logging import configure_logging
from packmatch.settings import load_settings
from packmatch.worker.middleware import RunsReconciler, extra_middleware
from packmatch.worker.runner import multiprocess_metrics
from packmatch.worker.shutdown import ignore_repeated_sigterm

settings = load_settings()
configure_logging(settings.log_format, settings.log_level)
ignore_repeated_sigterm()
runtime = build_runtime(settings)
broker = runtime.broker
broker.add_middleware(RunsReconciler(runtime.reconciler_thread))
if settings.worker_metrics_port and multiprocess_metrics():
    from packmatch.worker.metrics import WorkerPrometheus

    broker.add_middleware(WorkerPrometheus())
for middleware in extra_middleware(settings.worker_middleware):
    broker.add_middleware(middleware)
dramatiq.set_broker(broker)
