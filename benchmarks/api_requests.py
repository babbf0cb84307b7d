"""The API's CPU per request, by endpoint, against the cheapest request in the same run.

    .venv/bin/python benchmarks/api_requests.py                # 3,000 requests per endpoint
    .venv/bin/python benchmarks/api_requests.py --requests 10000

Starts `packmatch serve` on a scratch SQLite file (rate limit off), loads a small world, then sends
each endpoint's requests back to back over one keep-alive connection and reads the serving process's
CPU time before and after (its idle workers and reconciler included: measured alone, and printed).
The baseline is `GET /healthz` (no key, no database): what the framework costs by itself. Compare two
versions of the code by running this with each, alternately, and comparing ratios, not times.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import free_port, wait_for

PACKMATCH = str(Path(sys.executable).parent / "packmatch")


class Server:
    def __init__(self, workdir: str) -> None:
        self.env = {
            **os.environ,
            "PACKMATCH_DATABASE_URL": f"sqlite:///{workdir}/bench.db",
            "PACKMATCH_LOG_FORMAT": "json",
            "PACKMATCH_RATE_LIMIT_PER_MINUTE": "0",
        }
        keys = [PACKMATCH, "keys", "create", "--organization", "bench"]
        self.key = subprocess.run(keys, env=self.env, capture_output=True, check=True).stdout.decode().strip()
        self.port = free_port()
        self.process = subprocess.Popen(
            [PACKMATCH, "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        wait_for("the API to answer", self._ready, 60)
        self.headers = {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}

    def _ready(self) -> bool:
        try:
            return self.call("GET", "/healthz", keyed=False)[0] == 200
        except (ConnectionError, OSError, http.client.HTTPException):
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return False

    def call(self, method: str, path: str, body: Any = None, keyed: bool = True) -> tuple[int, Any]:
        headers = self.headers if keyed else {}
        self.conn.request(method, path, None if body is None else json.dumps(body), headers)
        response = self.conn.getresponse()
        return response.status, json.loads(response.read() or b"null")

    def cpu(self) -> float:
        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def world(server: Server) -> dict[str, str]:
    rows = [{"id": f"R{i}", "ref": f"X{i}", "name": f"Carrier {i}"} for i in range(100)]
    ref = server.call("POST", "/v1/matching/reference-data", {"name": "r", "rows": rows})[1]["id"]
    mappings = [
        {"source": "ref", "target": "ref", "strategy": "exact", "weight": 0.7},
        {"source": "name", "target": "name", "strategy": "fuzzy", "weight": 0.3},
    ]
    body = {"name": "m", "reference_data_id": ref, "field_mappings": mappings}
    mc = server.call("POST", "/v1/matching/configs", body)[1]["id"]
    slots = [{"document_type": "invoice", "matching_config_id": mc, "presence": "required"}]
    pkg = server.call("POST", "/v1/matching/packages/configs", {"name": "p", "document_type_configs": slots})
    run = {"package_config_id": pkg[1]["id"], "input_documents": {"invoice": [run_row()]}}
    done = server.call("POST", "/v1/matching/packages/runs?wait=10", run)[1]
    return {
        "run": done["id"],
        "package": pkg[1]["id"],
        "matching_run": done["document_results"][0]["matching_run_id"],
    }


def run_row() -> dict[str, Any]:
    return {"document_id": "d1", "values": {"ref": "X7", "name": "Carrier 7"}}


def measure(
    server: Server, count: int, method: str, path: str, body: Any = None, keyed: bool = True
) -> float:
    for _ in range(min(count // 10, 200)):  # warm-up
        server.call(method, path, body, keyed)
    before = server.cpu()
    for _ in range(count):
        status, answer = server.call(method, path, body, keyed)
        if status >= 400:
            raise RuntimeError(f"{method} {path} answered {status}: {str(answer)[:200]}")
    return 1000 * (server.cpu() - before) / count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="requests per endpoint")
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(tmp)
        try:
            ids = world(server)
            before = server.cpu()
            time.sleep(2.0)  # measuring a quiet interval, not waiting for an event
            idle = 1000 * (server.cpu() - before) / 2.0
            n = args.requests
            run_body = {"package_config_id": ids["package"], "input_documents": {"invoice": [run_row()]}}
            cases = [
                ("GET /healthz (baseline, no key)", measure(server, n, "GET", "/healthz", keyed=False)),
                ("GET a run", measure(server, n, "GET", f"/v1/matching/packages/runs/{ids['run']}")),
                ("GET the run list", measure(server, n, "GET", "/v1/matching/packages/runs?limit=20")),
                (
                    "GET a matching run's results",
                    measure(server, n, "GET", f"/v1/matching/runs/{ids['matching_run']}/results"),
                ),
                (
                    "POST a run (+ its matching)",
                    measure(server, n // 3, "POST", "/v1/matching/packages/runs", run_body),
                ),
            ]
        finally:
            server.stop()
    print(f"idle: {idle:.1f} ms of CPU per second (workers polling, reconciler)")
    base = cases[0][1]
    for name, ms in cases:
        print(f"{name:<36} {ms:7.3f} ms CPU/request  {ms / base:5.2f}× the baseline")


if __name__ == "__main__":
    main()
