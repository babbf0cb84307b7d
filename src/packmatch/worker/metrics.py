"""Worker metrics: Dramatiq's own message metrics and packmatch's, on one port per `packmatch worker`.

Each worker process writes its values to prometheus_client's multiprocess files; one extra process
(a Dramatiq "fork", started by the dramatiq CLI next to the worker processes) serves the files of
all of them on `PACKMATCH_WORKER_METRICS_HOST:PACKMATCH_WORKER_METRICS_PORT`.

prometheus_client decides at import whether it is in multiprocess mode, and Dramatiq's middleware
reads its directory (`dramatiq_prom_db`) at import as well, so `packmatch worker` names a fresh
directory in the environment (`runner.prepare_multiprocess_dir`) before anything imports either.
"""

from __future__ import annotations

from collections.abc import Callable
from wsgiref.simple_server import WSGIRequestHandler, make_server

from dramatiq.middleware.prometheus import Prometheus

from packmatch.logging import configure_logging, get_logger
from packmatch.settings import load_settings

log = get_logger(__name__)


class WorkerPrometheus(Prometheus):
    """Dramatiq's Prometheus middleware, served by packmatch's exposition process (`serve_metrics`)
    on the port the settings name instead of Dramatiq's `dramatiq_prom_port`."""

    @property
    def forks(self) -> list[Callable[[], int]]:
        return [serve_metrics]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None  # scrapes are not worth a log line each


def serve_metrics() -> int:
    """The exposition process: every worker process's values, merged, until SIGTERM."""
    from prometheus_client import CollectorRegistry, make_wsgi_app
    from prometheus_client.multiprocess import MultiProcessCollector

    settings = load_settings()
    configure_logging(settings.log_format, settings.log_level)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    host, port = settings.worker_metrics_host, settings.worker_metrics_port
    try:
        server = make_server(host, port, make_wsgi_app(registry), handler_class=_QuietHandler)
    except OSError as exc:
        # The workers go on without metrics rather than stop (the dramatiq CLI ignores a fork's exit).
        log.error("worker.metrics_unavailable", host=host, port=port, error=str(exc))
        return 0
    log.info("worker.metrics_listening", host=host, port=server.server_port)
    server.serve_forever()
    return 0
