"""POST /v1/matching/packages/runs/batch: many runs in one request, each exactly like a single POST."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from dramatiq.brokers.stub import StubBroker

from packmatch.bootstrap import Runtime
from tests.e2e.conftest import Api, error_body, invoice

RUNS = "/v1/matching/packages/runs"
BATCH = f"{RUNS}/batch"
BOTH = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BOTH)
def api(
    request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime], sqlite_url: str, start_api: Any
) -> Api:
    """The embedded stack on SQLite, and the same API on PostgreSQL."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else sqlite_url
    started: Api = start_api(make_runtime(database_url=url))
    return started


def run_body(config_id: str, **documents: Any) -> dict[str, Any]:
    return {"package_config_id": config_id, "input_documents": documents or {"invoice": [invoice()]}}


def drained(api: Api, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs as stored once the worker has processed every message they sent."""
    broker = api.runtime.broker
    assert isinstance(broker, StubBroker)
    broker.join(api.runtime.settings.queue_name, fail_fast=False)
    return [api.get(f"{RUNS}/{run['id']}").json() for run in runs]


def total_runs(api: Api) -> int:
    count: int = api.get(RUNS).json()["pagination"]["total"]
    return count


def comparable(run: dict[str, Any]) -> tuple[Any, ...]:
    results = [(r["document_type"], r["status"], r["confidence"]) for r in run["document_results"]]
    return run["status"], run["input_documents"], results


def test_a_batch_accepts_every_run_in_input_order(api: Api) -> None:
    config = api.shipment_world()
    bodies = [run_body(config, invoice=[invoice(f"doc_{i}")]) for i in range(5)]

    response = api.post(BATCH, json={"runs": bodies})

    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert [run["status"] for run in data] == ["running"] * 5
    assert [run["input_documents"]["invoice"] for run in data] == [[f"doc_{i}"] for i in range(5)]
    assert len({run["id"] for run in data}) == 5
    assert total_runs(api) == 5


def test_batched_runs_reach_the_verdicts_single_posts_reach(api: Api) -> None:
    config = api.shipment_world()
    documents = [
        {"invoice": [invoice()], "delivery_note": [invoice("dn_1")]},
        {"invoice": [invoice(booking_reference="NOPE000000", carrier="Evergreen", total=1.0)]},
        {"invoice": [invoice("doc_2")]},
    ]
    singles = [api.run(config, docs).json() for docs in documents]

    response = api.post(BATCH, json={"runs": [run_body(config, **docs) for docs in documents]})
    batched = drained(api, response.json()["data"])

    assert [comparable(run) for run in batched] == [comparable(run) for run in singles]
    assert [run["status"] for run in batched] == ["passed", "failed", "review"]
    assert all(run["completed_at"] is not None for run in batched)


def test_a_bad_item_is_reported_with_its_index_and_blocks_no_other(api: Api) -> None:
    config = api.shipment_world()
    bodies = [
        run_body(config),
        run_body(str(uuid.uuid4())),
        run_body(config, invoice=[{"document_id": "", "values": {}}]),
        run_body(config, receipt=[invoice()]),
        run_body("pkg_not-a-uuid"),
        run_body(config, invoice=[invoice("doc_5")]),
    ]

    response = api.post(BATCH, json={"runs": bodies})

    assert response.status_code == 202, response.text
    data = response.json()["data"]
    assert [entry.get("status") for entry in data] == ["running", None, None, None, None, "running"]
    errors = {entry["index"]: entry["error"] for entry in data if "index" in entry}
    assert {i: (e["statusCode"], e["code"]) for i, e in errors.items()} == {
        1: (404, "not_found"),
        2: (400, "validation_error"),
        3: (400, "validation_error"),
        4: (400, "validation_error"),
    }
    fields = {i: [d["field"] for d in e["details"]] for i, e in errors.items()}
    assert fields[1] == ["runs[1].package_config_id"]
    assert fields[2] == ["runs[2].input_documents.invoice[0].document_id"]
    assert fields[3] == ["runs[3].input_documents.receipt"]
    assert fields[4] == ["runs[4].package_config_id"]
    assert total_runs(api) == 2


def test_an_atomic_batch_with_a_bad_item_accepts_nothing(api: Api) -> None:
    config = api.shipment_world()
    bodies = [run_body(config), run_body(str(uuid.uuid4())), run_body(config, receipt=[invoice()])]

    response = api.post(f"{BATCH}?atomic=true", json={"runs": bodies})

    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == [
        "runs[1].package_config_id",
        "runs[2].input_documents.receipt",
    ]
    assert "nothing was accepted" in body["message"]
    assert total_runs(api) == 0


def test_an_atomic_batch_of_good_items_accepts_them_all(api: Api) -> None:
    config = api.shipment_world()

    response = api.post(f"{BATCH}?atomic=true", json={"runs": [run_body(config), run_body(config)]})

    assert response.status_code == 202, response.text
    assert [run["status"] for run in drained(api, response.json()["data"])] == ["review", "review"]


@pytest.mark.parametrize("count", [0, 1001])
def test_a_batch_holds_one_to_a_thousand_runs(api: Api, count: int) -> None:
    config = api.shipment_world()

    response = api.post(BATCH, json={"runs": [run_body(config)] * count})

    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["runs"]
    assert total_runs(api) == 0


def test_a_replayed_batch_accepts_its_runs_once(api: Api) -> None:
    config = api.shipment_world()
    body = {"runs": [run_body(config), run_body(config)]}
    headers = {"Idempotency-Key": "batch-1"}

    first = api.post(BATCH, json=body, headers=headers)
    again = api.post(BATCH, json=body, headers=headers)

    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert total_runs(api) == 2


def test_another_organizations_config_is_not_found_in_a_batch(api: Api) -> None:
    theirs = api.other_organization().shipment_world()

    response = api.post(BATCH, json={"runs": [run_body(theirs)]})

    assert response.json()["data"][0]["error"]["code"] == "not_found"
    assert total_runs(api) == 0


def test_a_read_only_key_cannot_submit_a_batch(api: Api) -> None:
    config = api.shipment_world()
    key = api.runtime.services.accounts.create_key("acme", frozenset({"read"}))

    response = api.client.post(
        BATCH, json={"runs": [run_body(config)]}, headers={"Authorization": f"Bearer {key}"}
    )

    error_body(response, 403, "insufficient_scope")
    assert total_runs(api) == 0
