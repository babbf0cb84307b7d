"""Review events through the webhook outbox: `package_run.reviewed` and `matching_result.reviewed`,
delivered to a real local receiver, signed, and only to webhooks subscribed to them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from packmatch.bootstrap import Runtime
from packmatch.services.webhooks.signing import verify
from tests.e2e.conftest import Api, invoice
from tests.e2e.test_api_reviews import RUNS, final_run, results_of, reviewer
from tests.webhook_receiver import Receiver


@pytest.fixture
def api(make_runtime: Callable[..., Runtime], sqlite_url: str, start_api: Callable[[Runtime], Api]) -> Api:
    runtime = make_runtime(database_url=sqlite_url, webhook_allow_private_networks="127.0.0.0/8")
    return start_api(runtime)


def test_a_run_review_is_delivered_signed_with_the_reviewed_run(api: Api, receiver: Receiver) -> None:
    secret = "review-secret-0123456789"
    api.create("/v1/webhooks", {"url": receiver.url, "secret": secret, "events": ["package_run.reviewed"]})
    config = api.shipment_world(("required", "expected"))
    run = final_run(api, config, {"invoice": [invoice()]})
    dana = reviewer(api)
    assert (
        dana.post(f"{RUNS}/{run['id']}/review", json={"decision": "rejected", "notes": "n"}).status_code
        == 200
    )
    [request] = receiver.wait_for(1)
    assert verify(secret, request.body, request.headers["x-packmatch-signature"])
    assert request.headers["x-packmatch-event"] == "package_run.reviewed"
    body = request.json
    assert body["event"] == "package_run.reviewed"
    assert body["data"]["id"] == run["id"]
    assert body["data"]["status"] == "review"
    assert body["data"]["review"]["decision"] == "rejected"
    assert body["data"]["review"]["reviewed_by"]["name"] == "Dana (AP team)"


def test_result_reviews_are_delivered_one_per_decision(api: Api, receiver: Receiver) -> None:
    api.create("/v1/webhooks", {"url": receiver.url, "events": ["matching_result.reviewed"]})
    config = api.shipment_world(("required",))
    run = final_run(api, config, {"invoice": [invoice("doc_1"), invoice("doc_2")]})
    mr, results = results_of(api, run)
    decisions = [{"result_id": r["id"], "status": "approved"} for r in results]
    assert (
        api.post(f"/v1/matching/runs/{mr}/results/review", json={"decisions": decisions}).status_code == 200
    )
    received = receiver.wait_for(2)
    assert {r.json["data"]["id"] for r in received} == {r["id"] for r in results}
    assert {r.headers["x-packmatch-event"] for r in received} == {"matching_result.reviewed"}
    assert all(r.json["data"]["review"]["status"] == "approved" for r in received)
