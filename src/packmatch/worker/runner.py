"""Running workers: in-process threads (serve, tests) or Dramatiq worker processes (production)."""

from __future__ import annotations

import os
import sys
import weakref

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

    def __init__(self, broker: dramatiq.Broker, *, threads: int = 4) -> None:
        # Prefetch equal to threads: Dramatiq's default (2 × threads) holds messages idle threads
        # elsewhere could run (NOTES-dramatiq).
        self.worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
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


def run_worker_processes(processes: int, threads: int) -> int:
    """Hand over to Dramatiq's CLI, which forks and supervises the worker processes."""
    # Read by dramatiq.worker at import in each worker process: prefetch = threads (NOTES-dramatiq).
    os.environ.setdefault("dramatiq_queue_prefetch", str(threads))
    from dramatiq.cli import main as dramatiq_main

    argv = [
        "dramatiq",
        "packmatch.worker.entry",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
        "--skip-logging",
    ]
    sys.argv = argv
    return int(dramatiq_main() or 0)  # type: ignore[no-untyped-call]
