"""A backlog older than the stall time is not a stall (issue 13), through real `packmatch api` and
`packmatch worker` processes on PostgreSQL + Redis: runs whose messages wait in the queue while no
worker runs are matched once each when one starts, and the reconciler re-drives none of them."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.e2e.test_webhook_processes import one_slot_world
from tests.faults.conftest import cluster, create_key  # noqa: F401 (the fixture)
from tests.faults.processes import Cluster, wait_for
from tests.faults.workload import Client

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(180)]

RUNS = "/v1/matching/packages/runs"
BACKLOG = 30
STALL_SECONDS = 1.0


def test_runs_queued_longer_than_the_stall_time_are_not_redriven(
    request: pytest.FixtureRequest, postgres_url: str
) -> None:
    processes: Cluster = request.getfixturevalue("cluster")
    processes.env.update(
        {"PACKMATCH_STALL_SECONDS": str(STALL_SECONDS), "PACKMATCH_RECONCILE_INTERVAL_SECONDS": "0.2"}
    )
    processes.start_api()
    client = Client(processes.base, create_key(postgres_url))
    config_id = one_slot_world(client)
    run = {"package_config_id": config_id, "input_documents": {"invoice": [
        {"document_id": "doc_1", "values": {"booking_reference": "ABC1234567"}}]}}  # fmt: skip
    run_ids = [client.call("POST", RUNS, run)[1]["id"] for _ in range(BACKLOG)]
    # The scenario is time passing with no worker: the backlog outlives the stall time (and the
    # reconciler's one-second grace for a message being sent).
    time.sleep(STALL_SECONDS + 2)
    worker = processes.start_worker(threads=1)

    def all_final() -> bool:
        status, page = client.call("GET", f"{RUNS}?status=running&limit=1")
        return status == 200 and page["pagination"]["total"] == 0

    wait_for("the backlog to be matched", all_final, 60)
    events = worker.events()
    redriven = [e for e in events if e.get("event") == "run.reconciled"]
    assert redriven == []  # before: every queued run was fanned out again
    started = Counter(e["run_id"] for e in events if e.get("event") == "slot.started")
    assert started == dict.fromkeys(run_ids, 1)
