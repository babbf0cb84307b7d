"""The client's own CPU cost per request, beyond httpx itself (issue 17: target ≤ 0.3 ms).

Both sides send the same requests through the same `httpx.Client` over an in-memory transport
(`httpx.MockTransport` answering canned, real response bodies), so that neither network nor server
is measured: only what runs in the caller's process. Baseline: what an integrator would write by
hand — `http.request(...)` then `response.json()`. Client: `packmatch.client.Client`, which also
builds the call, adds the headers and an `Idempotency-Key`, checks the status and validates the
body into the typed response model. Reported: process CPU time per request (mean of the best of
`--repeat` rounds of `--requests` each, to shed noise from a shared machine), and the difference.

    .venv/bin/python benchmarks/client.py [--requests 5000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from packmatch.api import response_models as rm
from packmatch.client import Client, routes

RUN = rm.examples()[rm.PackageRun]
PAGE = rm.examples()[rm.PackageRunList]
RESULTS = {**PAGE, "data": [rm.examples()[rm.MatchResult]] * 20}


def transport() -> httpx.MockTransport:
    bodies = {
        "/v1/matching/packages/runs": json.dumps(RUN).encode(),
        "/v1/matching/runs/mr_1/results": json.dumps(RESULTS).encode(),
    }

    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        body = bodies.get(path) or bodies["/v1/matching/packages/runs"]
        status = 202 if request.method == "POST" else 200
        return httpx.Response(status, content=body, headers={"Content-Type": "application/json"})

    return httpx.MockTransport(answer)


def cpu_per_call(call: Callable[[], Any], requests: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        for _ in range(requests):
            call()
        best = min(best, (time.process_time() - started) / requests)
    return best * 1000  # ms


def scenarios(http: httpx.Client, client: Client) -> dict[str, tuple[Callable[[], Any], Callable[[], Any]]]:
    auth = {"Authorization": "Bearer pmk_x"}
    documents = {"invoice": [{"document_id": "d", "values": {"a": 1}}]}
    body = {"package_config_id": RUN["package_config_id"], "input_documents": documents}
    run_id = RUN["id"]
    return {
        "GET a run": (
            lambda: http.get(f"/v1/matching/packages/runs/{run_id}", headers=auth).json(),
            lambda: client.runs.get(run_id),
        ),
        "POST a run": (
            lambda: http.post("/v1/matching/packages/runs", json=body, headers=auth).json(),
            lambda: client.runs.submit(RUN["package_config_id"], documents),
        ),
        "GET 20 results (one page)": (
            lambda: http.get("/v1/matching/runs/mr_1/results", headers=auth).json(),
            lambda: client.send(routes.listing("/v1/matching/runs/mr_1/results", rm.MatchResultList)),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    http = httpx.Client(base_url="http://packmatch.test", transport=transport())
    client = Client("http://packmatch.test", api_key="pmk_x", http=http)
    print(f"{'request':28} {'httpx + json (ms)':>18} {'client (ms)':>12} {'overhead (ms)':>14}")
    for name, (raw, typed) in scenarios(http, client).items():
        raw(), typed()  # warm up
        base = cpu_per_call(raw, args.requests, args.repeat)
        mine = cpu_per_call(typed, args.requests, args.repeat)
        print(f"{name:28} {base:18.3f} {mine:12.3f} {mine - base:14.3f}")


if __name__ == "__main__":
    main()
