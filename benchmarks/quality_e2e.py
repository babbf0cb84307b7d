"""quality.py --e2e N: N people (hardest level, no identifier) through the API, against Splink.

The timed packmatch workflow is what a user does over HTTP on a `packmatch serve` process (SQLite,
in-process workers): upload the N reference rows, create the config, calibrate it on a sample of
2,000 input rows (`POST …/calibrations`, keeping the config's `missing` policies so that the
proposal stays on the indexed search), PUT the proposal, create a package config, submit the N
input rows as runs of 1,000 rows, wait for them, and read every result. Splink's time is its whole
recipe (training and prediction) on the same data, in the same process run.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

from api_requests import Server
from quality_data import Dataset, generate

RUN_ROWS = 1_000
CALIBRATION_ROWS = 2_000


def _submit(server: Server, package_id: str, dataset: Dataset) -> list[str]:
    runs = []
    for start in range(0, len(dataset.inputs), RUN_ROWS):
        rows = [
            {"document_id": f"d{i}", "values": dataset.inputs[i]}
            for i in range(start, min(start + RUN_ROWS, len(dataset.inputs)))
        ]
        body = {"package_config_id": package_id, "input_documents": {"person": rows}}
        status, run = server.call("POST", "/v1/matching/packages/runs", body)
        if status != 202:
            raise RuntimeError(f"submit answered {status}: {str(run)[:200]}")
        runs.append(run["id"])
    return runs


def _wait(server: Server, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        run = server.call("GET", f"/v1/matching/packages/runs/{run_id}")[1]
        if run["status"] != "running":
            return dict(run)
        time.sleep(0.2)
    raise RuntimeError(f"{run_id} still running after an hour")


def _results(server: Server, matching_run_id: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    cursor = None
    while True:
        path = f"/v1/matching/runs/{matching_run_id}/results?limit=1000&order=asc"
        page = server.call("GET", path + (f"&cursor={cursor}" if cursor else ""))[1]
        found.update({r["document_id"]: r["matched_reference_row_id"] for r in page["data"]})
        cursor = page["pagination"]["next_cursor"]
        if not cursor:
            return found


def _packmatch(server: Server, dataset: Dataset, body: dict[str, Any]) -> tuple[list[str | None], float]:
    started = time.perf_counter()
    reference = server.call(
        "POST", "/v1/matching/reference-data", {"name": "people", "rows": dataset.reference}
    )
    config = server.call("POST", "/v1/matching/configs", {**body, "reference_data_id": reference[1]["id"]})[1]
    sample = [{"values": values} for values in dataset.inputs[:CALIBRATION_ROWS]]
    calibration_body = {"rows": sample, "propose_missing": False}
    status, report = server.call(
        "POST", f"/v1/matching/configs/{config['id']}/calibrations", calibration_body
    )
    if status != 200:
        raise RuntimeError(f"calibration answered {status}: {str(report)[:300]}")
    server.call("PUT", f"/v1/matching/configs/{config['id']}", report["proposal"])
    slots = [{"document_type": "person", "matching_config_id": config["id"], "presence": "required"}]
    package = server.call(
        "POST", "/v1/matching/packages/configs", {"name": "p", "document_type_configs": slots}
    )
    predicted: dict[str, str | None] = {}
    for run_id in _submit(server, package[1]["id"], dataset):
        run = _wait(server, run_id)
        predicted.update(_results(server, run["document_results"][0]["matching_run_id"]))
    seconds = time.perf_counter() - started
    print(f"  proposed threshold {report['proposal']['threshold']}", flush=True)
    return [predicted[f"d{i}"] for i in range(len(dataset.inputs))], seconds


def end_to_end(
    size: int,
    with_splink: bool,
    run_splink: Callable[[Dataset], Any],
    score: Callable[..., Any],
    names_config: Callable[[Dataset], dict[str, Any]],
) -> None:
    dataset = generate("people", "hard", size, with_id=False)
    print(f"end to end: people / hard / without id ({size} reference, {len(dataset.inputs)} input rows)")
    with tempfile.TemporaryDirectory() as workdir:
        server = Server(workdir)
        try:
            predicted, seconds = _packmatch(server, dataset, names_config(dataset))
        finally:
            server.stop()
    packmatch = score(predicted, dataset.truth, seconds)
    print(f"  packmatch API  {packmatch.line()}", flush=True)
    if with_splink:
        splink = run_splink(dataset)
        print(f"  splink         {splink.line()}")
        print(f"  API / Splink wall time: {packmatch.seconds / splink.seconds:.2f}×")
