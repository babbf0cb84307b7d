"""Running workers: in-process threads (serve, tests) or Dramatiq worker processes (production)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Sequence

import dramatiq

from packmatch.logging import get_logger

log = get_logger(__name__)

_booted: weakref.WeakSet[dramatiq.Broker] = weakref.WeakSet()


def boot_process(broker: dramatiq.Broker) -> None:
    """What Dramatiq's CLI does once per worker process; without it TimeLimit enforces nothing."""
    if broker not in _booted:
        _booted.add(broker)
        broker.emit_after("process_boot")


class InProcessWorker:
    """A Dramatiq worker inside this process, for `packmatch serve` and the tests."""

    def __init__(self, broker: dramatiq.Broker, *, threads: int = 4, queues: set[str] | None = None) -> None:
        # Prefetch equal to threads: Dramatiq's default (2 × threads) holds messages idle threads
        # elsewhere could run (NOTES-dramatiq). `queues`: only these (default: every declared one).
        self.worker = dramatiq.Worker(broker, queues=queues, worker_threads=threads, worker_timeout=100)
        self.worker.queue_prefetch = threads

    def start(self) -> None:
        boot_process(self.worker.broker)
        self.worker.start()

    def stop(self) -> None:
        self.worker.stop()

    def __enter__(self) -> InProcessWorker:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


# prometheus_client's multiprocess mode and Dramatiq's Prometheus middleware read these at import.
MULTIPROC_VARIABLES = ("PROMETHEUS_MULTIPROC_DIR", "dramatiq_prom_db")


def multiprocess_metrics() -> bool:
    """Whether this process runs under `packmatch worker` with a metrics directory named."""
    return all(name in os.environ for name in MULTIPROC_VARIABLES)


def prepare_multiprocess_dir() -> str:
    """A fresh directory for one `packmatch worker`'s metric files, named in the environment that
    its processes inherit (an earlier run's files would add to the new counts). Call it before
    anything imports prometheus_client or dramatiq.middleware.prometheus (worker/metrics.py)."""
    path = tempfile.mkdtemp(prefix="packmatch-metrics-")
    for name in MULTIPROC_VARIABLES:
        os.environ[name] = path
    return path


def run_worker_processes(
    processes: int, threads: int, *, metrics: bool = True, queues: Sequence[str] = ()
) -> int:
    """Hand over to Dramatiq's CLI, which forks and supervises the worker processes (consuming
    only `queues`, if named; every declared queue otherwise)."""
    # Read by dramatiq.worker at import in each worker process: prefetch = threads (NOTES-dramatiq).
    os.environ.setdefault("dramatiq_queue_prefetch", str(threads))
    metrics_dir = prepare_multiprocess_dir() if metrics else None
    try:
        return _dramatiq_cli(processes, threads, queues)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _dramatiq_cli(processes: int, threads: int, queues: Sequence[str] = ()) -> int:
    from dramatiq.cli import main as dramatiq_main

    argv = [
        "dramatiq",
        "packmatch.worker.entry",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--skip-logging",
        *(["--queues", *queues] if queues else []),
    ]
    sys.argv = argv
    # Dramatiq's supervisor copies its children's output (their JSON log lines: entry.py configures
    # logging in each of them) to sys.stderr; SPEC §7 wants every process's lines on stdout.
    with contextlib.redirect_stderr(sys.stdout):
        return int(dramatiq_main() or 0)  # type: ignore[no-untyped-call]
