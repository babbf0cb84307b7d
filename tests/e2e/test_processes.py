"""The production shape: real `packmatch api` and `packmatch worker` processes on PostgreSQL + Redis."""

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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import BOOKINGS, INVOICE_MAPPINGS, invoice

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

PACKMATCH = str(Path(sys.executable).parent / "packmatch")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Deployment:
    base: str
    key: str
    api_log: Path
    worker_log: Path
    worker: subprocess.Popen[bytes]
    worker_metrics: str
    worker_stderr: Path

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.key}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def events(self, log: Path) -> list[dict[str, Any]]:
        return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def wait_until_ready(base: str, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Poll /readyz while the server starts: a separate process offers no event to await."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, "the API process exited during start-up"
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    pytest.fail("the API did not become ready in time")


@contextlib.contextmanager
def deployed(database_url: str, broker_url: str, tmp_path: Path, **extra: str) -> Iterator[Deployment]:
    """`packmatch migrate`, a key, then `packmatch api` and `packmatch worker` on these services."""
    env = {
        **os.environ,
        "PACKMATCH_DATABASE_URL": database_url,
        "PACKMATCH_BROKER_URL": broker_url,
        "PACKMATCH_LOG_FORMAT": "json",
        "PACKMATCH_WORKER_METRICS_PORT": str(free_port()),
        **extra,
    }
    subprocess.run([PACKMATCH, "migrate"], env=env, check=True, capture_output=True)
    created = subprocess.run(
        [PACKMATCH, "keys", "create", "--organization", "acme"], env=env, check=True, capture_output=True
    )
    key = created.stdout.decode().strip()
    port = free_port()
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    worker_stderr = tmp_path / "worker.stderr"
    with api_log.open("wb") as api_out, worker_log.open("wb") as worker_out, worker_stderr.open("wb") as err:
        api = subprocess.Popen(
            [PACKMATCH, "api", "--port", str(port)], env=env, stdout=api_out, stderr=subprocess.STDOUT
        )
        worker = subprocess.Popen(
            [PACKMATCH, "worker", "--processes", "1", "--threads", "2"],
            env=env,
            stdout=worker_out,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, api)
        metrics = f"http://127.0.0.1:{env['PACKMATCH_WORKER_METRICS_PORT']}/metrics"
        yield Deployment(base, key, api_log, worker_log, worker, metrics, worker_stderr)
    finally:
        for process in (api, worker):
            process.send_signal(signal.SIGTERM)
        for process in (api, worker):
            process.wait(timeout=60)


@pytest.fixture
def deployment(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Deployment]:
    with deployed(postgres_url, redis_url, tmp_path) as running:
        yield running


@pytest.fixture
def rabbitmq_deployment(postgres_url: str, amqp_url: str, tmp_path: Path) -> Iterator[Deployment]:
    queue = f"packmatch_test_{uuid.uuid4().hex[:8]}"
    try:
        with deployed(postgres_url, amqp_url, tmp_path, PACKMATCH_QUEUE_NAME=queue) as running:
            yield running
    finally:
        channel = pika.BlockingConnection(pika.URLParameters(amqp_url)).channel()
        for name in (q + suffix for q in (queue, f"{queue}_webhooks") for suffix in ("", ".DQ", ".XQ")):
            channel.queue_delete(name)
        channel.connection.close()


def test_the_walkthrough_reaches_passed_and_is_listed(deployment: Deployment) -> None:
    status, ref = deployment.call(
        "POST", "/v1/matching/reference-data", {"name": "bookings", "rows": BOOKINGS}
    )
    assert status == 201
    status, mc = deployment.call(
        "POST",
        "/v1/matching/configs",
        {"name": "Invoice to booking", "reference_data_id": ref["id"], "field_mappings": INVOICE_MAPPINGS},
    )
    assert status == 201
    slots = [{"document_type": "invoice", "matching_config_id": mc["id"], "presence": "required"}]
    status, pkg = deployment.call(
        "POST", "/v1/matching/packages/configs", {"name": "Invoices", "document_type_configs": slots}
    )
    assert status == 201
    body = {"package_config_id": pkg["id"], "input_documents": {"invoice": [invoice()]}}
    status, run = deployment.call("POST", "/v1/matching/packages/runs?wait=20", body)
    assert (status, run["status"]) == (200, "passed")
    query = f"?package_config_id={pkg['id']}&status=passed"
    status, listed = deployment.call("GET", "/v1/matching/packages/runs" + query)
    assert status == 200
    assert [r["id"] for r in listed["data"]] == [run["id"]]
    matching_run_id = run["document_results"][0]["matching_run_id"]
    status, results = deployment.call("GET", f"/v1/matching/runs/{matching_run_id}/results")
    assert results["data"][0]["matched_reference_row_id"] == "BK-1"


def test_an_evaluation_runs_on_the_worker_process(deployment: Deployment) -> None:
    status, ref = deployment.call(
        "POST", "/v1/matching/reference-data", {"name": "bookings", "rows": BOOKINGS}
    )
    assert status == 201
    body = {"name": "Invoice to booking", "reference_data_id": ref["id"], "field_mappings": INVOICE_MAPPINGS}
    status, mc = deployment.call("POST", "/v1/matching/configs", body)
    assert status == 201
    rows = [
        {"values": invoice()["values"], "reference_row_id": "BK-1"},
        {"values": {}, "reference_row_id": None},
    ]
    status, accepted = deployment.call("POST", f"/v1/matching/configs/{mc['id']}/evaluations", {"rows": rows})
    assert (status, accepted["status"]) == (202, "queued")
    deadline = time.monotonic() + 30
    while (found := deployment.call("GET", accepted["links"]["self"])[1])["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, "the evaluation did not end in time"
        time.sleep(0.1)
    assert found["status"] == "done", found
    assert (found["report"]["metrics"]["tp"], found["report"]["metrics"]["tn"]) == (1, 1)
    completed = [e for e in deployment.events(deployment.worker_log) if e["event"] == "evaluation.completed"]
    assert [e["evaluation_id"] for e in completed] == [accepted["id"]]  # the public id (SPEC §7)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def worker_metrics_listening(deployment: Deployment) -> bool:
    """The worker logs when its metrics process listens: poll its log (no event crosses processes)."""
    return any(e["event"] == "worker.metrics_listening" for e in deployment.events(deployment.worker_log))


def test_the_worker_and_the_api_expose_their_metrics(deployment: Deployment) -> None:
    test_the_walkthrough_reaches_passed_and_is_listed(deployment)
    deadline = time.monotonic() + 30
    while not worker_metrics_listening(deployment):
        assert time.monotonic() < deadline, "the worker's metrics process did not start"
        time.sleep(0.1)
    worker = scrape(deployment.worker_metrics)
    slot = (("actor_name", "packmatch.match_slot"), ("queue_name", "packmatch"))
    assert worker[("dramatiq_messages_total", slot)] >= 1
    assert worker[("packmatch_runs_finalized_total", (("status", "passed"),))] == 1
    assert worker[("packmatch_slot_duration_seconds_count", (("status", "matched"),))] == 1
    api = scrape(deployment.base + "/metrics")
    assert api[("packmatch_runs_accepted_total", ())] == 1
    assert api[("packmatch_runs_in_flight", ())] == 0
    assert api[("packmatch_queue_messages", (("queue", "packmatch"), ("state", "dead")))] == 0


@pytest.mark.rabbitmq
def test_the_walkthrough_runs_on_rabbitmq(rabbitmq_deployment: Deployment) -> None:
    test_the_walkthrough_reaches_passed_and_is_listed(rabbitmq_deployment)
    api = scrape(rabbitmq_deployment.base + "/metrics")
    assert api[("packmatch_state_probe_up", (("probe", "queues"),))] == 1
    queue = next(labels for name, labels in api if name == "packmatch_queue_messages")
    assert dict(queue)["queue"].startswith("packmatch_test_")


def test_logs_are_json_events_without_secrets_or_values(deployment: Deployment) -> None:
    test_the_walkthrough_reaches_passed_and_is_listed(deployment)
    deployment.worker.send_signal(signal.SIGTERM)
    deployment.worker.wait(timeout=60)
    api_events = deployment.events(deployment.api_log)
    worker_events = deployment.events(deployment.worker_log)
    assert {"http.request", "run.accepted", "run.fanned_out"} <= {e["event"] for e in api_events}
    expected = {"worker.started", "slot.started", "slot.completed", "run.finalized"}
    assert expected | {"worker.stopping"} <= {e["event"] for e in worker_events}
    finalized = next(e for e in worker_events if e["event"] == "run.finalized")
    assert {"timestamp", "level", "logger", "run_id", "status", "duration_ms"} <= finalized.keys()
    text = deployment.api_log.read_text() + deployment.worker_log.read_text()
    assert deployment.key not in text
    assert "Bearer" not in text
    assert "ABC1234567" not in text


def test_the_worker_logs_every_line_as_json_on_stdout_alone(deployment: Deployment) -> None:
    """SPEC §7: `packmatch worker | jq` sees every event, Dramatiq's own lines included."""
    test_the_walkthrough_reaches_passed_and_is_listed(deployment)
    deployment.worker.send_signal(signal.SIGTERM)
    deployment.worker.wait(timeout=60)
    lines = deployment.worker_log.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    names = {e["event"] for e in events}
    assert {"worker.started", "slot.started", "slot.completed", "run.finalized"} <= names
    assert any(e["logger"].startswith("dramatiq") for e in events), "Dramatiq's own lines"
    assert deployment.worker_stderr.read_text() == ""
