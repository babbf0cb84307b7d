"""Real `packmatch api` and `packmatch worker` processes for the fault scenarios.

Each process runs in its own session (process group), so a fault can signal a worker's whole pool
and teardown can kill everything that was started, whatever the test did.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKMATCH = str(Path(sys.executable).parent / "packmatch")

# Short timings so that the suite runs in minutes. `PACKMATCH_FAULTS_TIMINGS=production` keeps the
# product's defaults instead (docs/reliability.md shows both tables).
TIMINGS_ENV = "PACKMATCH_FAULTS_TIMINGS"
TEST_TIMINGS = {
    "PACKMATCH_STALL_SECONDS": "4",
    "PACKMATCH_RECONCILE_INTERVAL_SECONDS": "1",
    "PACKMATCH_RUN_DEADLINE_SECONDS": "600",
    "PACKMATCH_REDIS_HEARTBEAT_TIMEOUT_MS": "5000",
    "PACKMATCH_REDIS_MAINTENANCE_CHANCE": "200000",
    "PACKMATCH_SLOT_MAX_RETRIES": "6",
    "PACKMATCH_SLOT_MIN_BACKOFF_MS": "500",
    "PACKMATCH_SLOT_MAX_BACKOFF_MS": "5000",
}


def timings() -> dict[str, str]:
    return {} if os.environ.get(TIMINGS_ENV) == "production" else TEST_TIMINGS


def wait_for(what: str, check: Callable[[], bool], seconds: float, interval: float = 0.2) -> float:
    """Poll `check` until it holds; returns the monotonic time it did. Fails after `seconds`.

    Separate processes offer no event to await, so this polls with a short interval under a deadline.
    """
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return time.monotonic()
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_events(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """JSON log lines of processes; a line cut short by `kill -9` is skipped."""
    events = []
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return events


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def events(self) -> list[dict[str, Any]]:
        return read_events([self.log])

    def signal_group(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)


@dataclass
class Cluster:
    """The processes of one test, on one database and one Redis database number."""

    env: dict[str, str]
    logs: Path
    processes: list[Process] = field(default_factory=list)
    base: str = ""

    def _start(self, name: str, args: list[str], env: dict[str, str]) -> Process:
        log = self.logs / f"{name}-{len(self.processes)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                [PACKMATCH, *args],
                env=env,
                cwd=self.logs,  # no stray `.env` or SQLite file; PYTHONPATH finds `tests.faults`
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def start_api(self) -> Process:
        port = free_port()
        api = self._start("api", ["api", "--port", str(port)], self.env)
        self.base = f"http://127.0.0.1:{port}"
        wait_for("the API to be ready", lambda: self._ready(api), 30, 0.1)
        return api

    def _ready(self, api: Process) -> bool:
        assert api.alive, f"the API exited during start-up:\n{api.log.read_text()[-2000:]}"
        try:
            with urllib.request.urlopen(self.base + "/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    def start_worker(
        self, extra_env: dict[str, str] | None = None, *, threads: int = 2, queues: str | None = None
    ) -> Process:
        args = ["worker", "--processes", "1", "--threads", str(threads)]
        args += [] if queues is None else ["--queues", queues]
        worker = self._start("worker", args, {**self.env, **(extra_env or {})})
        wait_for("the worker to start", lambda: self._booted(worker), 30)
        return worker

    @staticmethod
    def _booted(worker: Process) -> bool:
        assert worker.alive, f"the worker exited during start-up:\n{worker.log.read_text()[-2000:]}"
        return any(event.get("event") == "worker.started" for event in worker.events())

    def workers(self) -> list[Process]:
        return [p for p in self.processes if p.name == "worker"]

    def worker_events(self) -> list[dict[str, Any]]:
        return read_events(p.log for p in self.workers())

    def kill_all(self) -> None:
        """Teardown: every process group this cluster started, whatever state it is in."""
        for process in self.processes:
            process.signal_group(signal.SIGKILL)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=10)
