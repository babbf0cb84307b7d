"""Webhook deliveries through real `packmatch api` and `packmatch worker` processes on PostgreSQL +
Redis, and a real local receiver that holds a request open: a delivery survives `kill -9` of the
worker sending it, and a held delivery never delays matching (its own queue, issue 13)."""

from __future__ import annotations

import signal

import pytest
import sqlalchemy as sa

from packmatch.services.webhooks.signing import verify
from tests.faults.conftest import cluster, create_key  # noqa: F401 (the fixture)
from tests.faults.processes import Cluster, wait_for
from tests.faults.workload import Client
from tests.webhook_receiver import HOLD, receiving

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(180)]

WEBHOOK_TIMINGS = {
    "PACKMATCH_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
    # The held request outlasts the kill; a new attempt may start once the dead one's lease is over.
    "PACKMATCH_WEBHOOK_TIMEOUT_SECONDS": "4",
    "PACKMATCH_WEBHOOK_LEASE_SECONDS": "5",
}
BOOKINGS = [{"id": "BK-1", "reference": "ABC1234567"}]
MAPPINGS = [{"source": "booking_reference", "target": "reference", "strategy": "exact", "weight": 1}]


def one_slot_world(client: Client) -> str:
    _, ref = client.call("POST", "/v1/matching/reference-data", {"name": "bookings", "rows": BOOKINGS})
    body = {"name": "Invoice", "reference_data_id": ref["id"], "field_mappings": MAPPINGS}
    _, mc = client.call("POST", "/v1/matching/configs", body)
    slots = [{"document_type": "invoice", "matching_config_id": mc["id"], "presence": "required"}]
    _, pkg = client.call(
        "POST", "/v1/matching/packages/configs", {"name": "Invoices", "document_type_configs": slots}
    )
    return str(pkg["id"])


def delivery_row(database_url: str) -> sa.Row[tuple[str, int]] | None:
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT status, attempts FROM webhook_deliveries")).first()
    finally:
        engine.dispose()


def test_a_worker_killed_mid_delivery_does_not_lose_it(
    request: pytest.FixtureRequest, postgres_url: str
) -> None:
    processes: Cluster = request.getfixturevalue("cluster")  # the fault scenarios' processes
    processes.env.update(WEBHOOK_TIMINGS)
    with receiving([HOLD]) as receiver:
        processes.start_api()
        client = Client(processes.base, create_key(postgres_url))
        status, hook = client.call("POST", "/v1/webhooks", {"url": receiver.url})
        assert status == 201, hook
        config_id = one_slot_world(client)
        run = {"package_config_id": config_id, "input_documents": {"invoice": [
            {"document_id": "doc_1", "values": {"booking_reference": "ABC1234567"}}]}}  # fmt: skip
        assert client.call("POST", "/v1/matching/packages/runs", run)[0] == 202
        first_worker = processes.start_worker()
        receiver.wait_for(1, timeout=60)  # the worker is inside the POST, the receiver holds it
        first_worker.signal_group(signal.SIGKILL)
        first_worker.popen.wait(timeout=30)
        processes.start_worker()
        requests = receiver.wait_for(2, timeout=60)
        wait_for("the delivery to be recorded", lambda: delivery_row(postgres_url) == ("delivered", 2), 30)
    assert requests[0].delivery_id == requests[1].delivery_id
    assert requests[0].json["data"]["id"] == requests[1].json["data"]["id"]
    assert all(verify(hook["secret"], r.body, r.headers["x-packmatch-signature"]) for r in requests)
    assert len(receiver.requests) == 2
    _, listed = client.call("GET", hook["links"]["deliveries"])
    assert [(d["id"], d["status"], d["attempts"]) for d in listed["data"]] == [
        (requests[0].delivery_id, "delivered", 2)
    ]


def test_a_slow_receiver_never_delays_matching(request: pytest.FixtureRequest, postgres_url: str) -> None:
    processes: Cluster = request.getfixturevalue("cluster")
    processes.env.update({**WEBHOOK_TIMINGS, "PACKMATCH_WEBHOOK_TIMEOUT_SECONDS": "60",
                          "PACKMATCH_WEBHOOK_LEASE_SECONDS": "90"})  # fmt: skip
    with receiving([HOLD]) as receiver:
        processes.start_api()
        client = Client(processes.base, create_key(postgres_url))
        assert client.call("POST", "/v1/webhooks", {"url": receiver.url})[0] == 201
        config_id = one_slot_world(client)
        run = {"package_config_id": config_id, "input_documents": {"invoice": [
            {"document_id": "doc_1", "values": {"booking_reference": "ABC1234567"}}]}}  # fmt: skip
        processes.start_worker(threads=1, queues="slots")
        processes.start_worker(threads=1, queues="webhooks")
        status, first = client.call("POST", "/v1/matching/packages/runs?wait=20", run)
        assert (status, first["status"]) == (200, "passed")
        receiver.wait_for(1, timeout=60)  # the webhooks worker's one thread is inside the POST, held
        for _ in range(3):  # the slots worker's one thread goes on matching meanwhile
            status, later = client.call("POST", "/v1/matching/packages/runs?wait=20", run)
            assert (status, later["status"]) == (200, "passed"), later
        assert len(receiver.requests) == 1  # the first delivery is still held
        receiver.release()
        receiver.wait_for(4, timeout=60)
