"""The Procfile, run the way an operator runs it: `honcho start` with two workers sees a run through."""

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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.e2e.conftest import BOOKINGS, INVOICE_MAPPINGS, invoice

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# honcho gives process type k's instance n the port base + 100·k + n − 1 (web, then worker).
WORKER_PORT_OFFSETS = (100, 101)


def can_bind(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_base_port() -> int:
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = int(sock.getsockname()[1]) % 50_000 + 10_000
        if all(can_bind(base + offset) for offset in (0, *WORKER_PORT_OFFSETS)):
            return base
    raise RuntimeError("no free port range for honcho")


def wait_for(what: str, check: Callable[[], bool], seconds: float = 60) -> None:
    """Poll: honcho's processes offer no event to await across the process boundary."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@dataclass
class Honcho:
    process: subprocess.Popen[bytes]
    output: Path
    base: str
    key: str

    def lines(self, name: str) -> list[dict[str, Any]]:
        """JSON log lines of one honcho process (`worker.1 | {...}`)."""
        found = []
        for line in self.output.read_text(errors="replace").splitlines():
            prefix, _, rest = line.partition("| ")
            if name in prefix.split() and rest.startswith("{"):
                found.append(json.loads(rest))
        return found

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.key}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())


def api_ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError):
        return False


@pytest.fixture
def honcho(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Honcho]:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PACKMATCH_DATABASE_URL": postgres_url,
        "PACKMATCH_BROKER_URL": redis_url,
        "PACKMATCH_LOG_FORMAT": "json",
        "PACKMATCH_WORKER_THREADS": "2",
    }
    procfile = ["-f", str(REPO_ROOT / "Procfile"), "-d", str(tmp_path)]
    # The release step, as a platform runs it before starting the processes.
    subprocess.run(
        [BIN / "honcho", *procfile, "run", "packmatch", "migrate"], env=env, check=True, cwd=tmp_path
    )
    created = subprocess.run(
        [BIN / "packmatch", "keys", "create", "--organization", "acme"],
        env=env,
        check=True,
        capture_output=True,
    )
    base_port = free_base_port()
    output = tmp_path / "honcho.log"
    with output.open("wb") as out:
        process = subprocess.Popen(
            [BIN / "honcho", *procfile, "start", "-p", str(base_port), "-c", "worker=2", "web", "worker"],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Honcho(process, output, f"http://127.0.0.1:{base_port}", created.stdout.decode().strip())
    try:
        wait_for("the web process", lambda: api_ready(running.base))
        yield running
    finally:
        stop(process)


def stop(honcho: subprocess.Popen[bytes]) -> None:
    """SIGTERM honcho, which stops its processes and waits for them; kill what is left after that.

    honcho starts each process in a session of its own, so signalling honcho's group is not enough:
    a process left behind would go on consuming the next test's messages."""
    children = psutil.Process(honcho.pid).children(recursive=True) if honcho.poll() is None else []
    honcho.send_signal(signal.SIGTERM)
    try:
        honcho.wait(timeout=60)
    except subprocess.TimeoutExpired:
        honcho.kill()
        honcho.wait()
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


def test_honcho_runs_the_procfile_with_two_workers_and_a_run_goes_through(honcho: Honcho) -> None:
    def both_workers_started() -> bool:
        return all(any(e["event"] == "worker.started" for e in honcho.lines(f"worker.{n}")) for n in (1, 2))

    wait_for("both workers", both_workers_started)
    _, ref = honcho.call("POST", "/v1/matching/reference-data", {"name": "bookings", "rows": BOOKINGS})
    config = {
        "name": "Invoice to booking",
        "reference_data_id": ref["id"],
        "field_mappings": INVOICE_MAPPINGS,
    }
    _, mc = honcho.call("POST", "/v1/matching/configs", config)
    slots = [{"document_type": "invoice", "matching_config_id": mc["id"], "presence": "required"}]
    _, pkg = honcho.call(
        "POST", "/v1/matching/packages/configs", {"name": "Invoices", "document_type_configs": slots}
    )
    body = {"package_config_id": pkg["id"], "input_documents": {"invoice": [invoice()]}}
    status, run = honcho.call("POST", "/v1/matching/packages/runs?wait=30", body)
    assert (status, run["status"]) == (200, "passed")
    ports = {
        e["port"]
        for n in (1, 2)
        for e in honcho.lines(f"worker.{n}")
        if e["event"] == "worker.metrics_listening"
    }
    assert len(ports) == 2  # each worker instance serves its metrics on its own $PORT


def test_stopping_honcho_stops_every_worker_gracefully(honcho: Honcho) -> None:
    wait_for("both workers", lambda: all(honcho.lines(f"worker.{n}") for n in (1, 2)))
    honcho.process.send_signal(signal.SIGTERM)  # honcho passes it on to every process it runs
    honcho.process.wait(timeout=60)
    for n in (1, 2):
        assert any(e["event"] == "worker.stopping" for e in honcho.lines(f"worker.{n}"))
