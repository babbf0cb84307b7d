"""Reviews through HTTP (SPEC §3 Reviews): results one by one and in bulk, runs, histories, ETags."""

from __future__ import annotations

from typing import Any

import pytest

from packmatch.store.tables import package_runs
from tests.e2e.conftest import Api, error_body, invoice

RUNS = "/v1/matching/packages/runs"


def reviewer(api: Api, name: str = "Dana (AP team)", scopes: str = "review") -> Api:
    key = api.runtime.services.accounts.create_key("acme", frozenset(scopes.split(",")), name)
    return Api(api.client, api.runtime, key)


def final_run(api: Api, config: str, documents: dict[str, Any]) -> dict[str, Any]:
    response = api.run(config, documents)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def review_run(api: Api) -> dict[str, Any]:
    """A run with verdict `review`: the expected delivery note is missing."""
    config = api.shipment_world(("required", "expected"))
    run = final_run(api, config, {"invoice": [invoice("doc_1"), invoice("doc_2", booking_reference="XYZ")]})
    assert run["status"] == "review"
    return run


def results_of(api: Api, run: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    mr = run["document_results"][0]["matching_run_id"]
    page = api.get(f"/v1/matching/runs/{mr}/results")
    assert page.status_code == 200, page.text
    return mr, page.json()["data"]


def test_results_and_runs_carry_an_undecided_review(stored_api: Api) -> None:
    run = review_run(stored_api)
    assert run["review"] is None
    _, results = results_of(stored_api, run)
    assert results[0]["review"] == {
        "status": "pending", "reference_row_id": None, "notes": None,
        "reviewed_by": None, "reviewed_at": None,
    }  # fmt: skip
    assert results[0]["excluded_by_review"] == []


def test_approving_a_result_takes_the_top_candidate_and_names_the_reviewer(stored_api: Api) -> None:
    run = review_run(stored_api)
    mr, results = results_of(stored_api, run)
    dana = reviewer(stored_api)
    response = dana.post(
        f"/v1/matching/runs/{mr}/results/{results[0]['id']}/review", json={"status": "approved"}
    )
    assert response.status_code == 200, response.text
    review = response.json()["review"]
    assert review["status"] == "approved"
    assert review["reference_row_id"] == results[0]["candidates"][0]["reference_row_id"]
    assert review["reviewed_by"]["name"] == "Dana (AP team)"
    assert review["reviewed_by"]["key_id"].startswith("key_")
    assert dana.key not in response.text
    assert response.headers["ETag"]


def test_a_reference_row_that_is_not_a_candidate_is_a_400(stored_api: Api) -> None:
    run = review_run(stored_api)
    mr, results = results_of(stored_api, run)
    path = f"/v1/matching/runs/{mr}/results/{results[0]['id']}/review"
    body = error_body(
        stored_api.post(path, json={"status": "approved", "reference_row_id": "nope"}),
        400,
        "validation_error",
    )
    assert body["details"][0]["field"] == "reference_row_id"
    bad = error_body(stored_api.post(path, json={"status": "maybe"}), 400, "validation_error")
    assert bad["details"][0]["field"] == "status"
    long = error_body(
        stored_api.post(path, json={"status": "rejected", "notes": "x" * 2001}), 400, "validation_error"
    )
    assert long["details"][0]["field"] == "notes"


def test_approving_a_result_without_candidates_is_a_conflict(stored_api: Api) -> None:
    config = stored_api.shipment_world(("required",))
    nothing = invoice("doc_9", booking_reference="NONE", carrier="zzz", total="1", ship_date="1990-01-01")
    run = final_run(stored_api, config, {"invoice": [nothing]})
    mr, results = results_of(stored_api, run)
    assert results[0]["candidates"] == []
    path = f"/v1/matching/runs/{mr}/results/{results[0]['id']}/review"
    error_body(stored_api.post(path, json={"status": "approved"}), 409, "conflict")


def test_review_status_filter_and_its_total(stored_api: Api) -> None:
    run = review_run(stored_api)
    mr, results = results_of(stored_api, run)
    reviewed = stored_api.post(
        f"/v1/matching/runs/{mr}/results/{results[0]['id']}/review", json={"status": "rejected"}
    )
    assert reviewed.status_code == 200
    rejected = stored_api.get(f"/v1/matching/runs/{mr}/results?review_status=rejected").json()
    pending = stored_api.get(f"/v1/matching/runs/{mr}/results?review_status=pending").json()
    assert [r["id"] for r in rejected["data"]] == [results[0]["id"]]
    assert (rejected["pagination"]["total"], pending["pagination"]["total"]) == (1, 1)
    error_body(stored_api.get(f"/v1/matching/runs/{mr}/results?review_status=maybe"), 400, "validation_error")


def test_bulk_review_is_all_or_nothing(stored_api: Api) -> None:
    run = review_run(stored_api)
    mr, results = results_of(stored_api, run)
    bad = {"decisions": [{"result_id": results[0]["id"], "status": "approved"},
                         {"result_id": results[1]["id"], "status": "maybe"}]}  # fmt: skip
    body = error_body(
        stored_api.post(f"/v1/matching/runs/{mr}/results/review", json=bad), 400, "validation_error"
    )
    assert body["details"][0]["field"] == "decisions[1].status"
    missing = "mres_00000000-0000-4000-8000-000000000000"
    unknown = {"decisions": [{"result_id": results[0]["id"], "status": "approved"},
                             {"result_id": missing, "status": "rejected"}]}  # fmt: skip
    body = error_body(
        stored_api.post(f"/v1/matching/runs/{mr}/results/review", json=unknown), 400, "validation_error"
    )
    assert body["details"][0]["field"] == "decisions[1].result_id"
    still = stored_api.get(f"/v1/matching/runs/{mr}/results?review_status=pending").json()
    assert still["pagination"]["total"] == 2
    good = {"decisions": [{"result_id": results[1]["id"], "status": "rejected", "notes": "wrong vendor"},
                          {"result_id": results[0]["id"], "status": "approved"}]}  # fmt: skip
    response = stored_api.post(f"/v1/matching/runs/{mr}/results/review", json=good)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [r["id"] for r in data] == [results[1]["id"], results[0]["id"]]
    assert [r["review"]["status"] for r in data] == ["rejected", "approved"]
    error_body(
        stored_api.post(f"/v1/matching/runs/{mr}/results/review", json={"decisions": []}),
        400,
        "validation_error",
    )


def test_a_run_review_keeps_the_status_and_feeds_the_queue_filters(stored_api: Api) -> None:
    run = review_run(stored_api)
    queue = f"{RUNS}?package_config_id={run['package_config_id']}&status=review&reviewed=false"
    assert stored_api.get(queue).json()["pagination"]["total"] == 1
    dana = reviewer(stored_api)
    response = dana.post(
        f"{RUNS}/{run['id']}/review", json={"decision": "approved", "notes": "checked by phone"}
    )
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["status"] == "review"
    assert shown["review"]["decision"] == "approved"
    assert shown["review"]["links"]["history"] == f"{RUNS}/{run['id']}/reviews"
    assert stored_api.get(queue).json()["pagination"]["total"] == 0
    approved = stored_api.get(f"{RUNS}?reviewed=true&review_decision=approved").json()
    assert [r["id"] for r in approved["data"]] == [run["id"]]
    assert stored_api.get(f"{RUNS}?review_decision=rejected").json()["pagination"]["total"] == 0
    error_body(stored_api.get(f"{RUNS}?review_decision=pending"), 400, "validation_error")


def test_a_running_or_error_run_cannot_be_reviewed(stored_api: Api) -> None:
    config = stored_api.shipment_world(("required",))
    run = final_run(stored_api, config, {"invoice": [invoice()]})
    for status, error in (("running", None), ("error", "slot 'invoice' failed")):
        with stored_api.runtime.services.db.transaction() as conn:
            conn.execute(package_runs.update().values(status=status, error=error))
        refused = stored_api.post(f"{RUNS}/{run['id']}/review", json={"decision": "approved"})
        error_body(refused, 409, "conflict")
    assert stored_api.get(f"{RUNS}/{run['id']}/reviews").json()["pagination"]["total"] == 0


def test_history_is_newest_first_and_keeps_every_decision(stored_api: Api) -> None:
    run = review_run(stored_api)
    for decision in ("approved", "rejected", "approved"):
        assert stored_api.post(f"{RUNS}/{run['id']}/review", json={"decision": decision}).status_code == 200
    history = stored_api.get(f"{RUNS}/{run['id']}/reviews").json()
    assert [h["decision"] for h in history["data"]] == ["approved", "rejected", "approved"]
    assert history["pagination"]["total"] == 3
    assert history["data"][0]["id"].startswith("rev_")
    oldest = stored_api.get(f"{RUNS}/{run['id']}/reviews?order=asc&limit=1").json()
    assert oldest["data"][0]["id"] == history["data"][2]["id"]
    mr, results = results_of(stored_api, run)
    path = f"/v1/matching/runs/{mr}/results/{results[0]['id']}"
    stored_api.post(f"{path}/review", json={"status": "rejected", "notes": "n1"})
    stored_api.post(f"{path}/review", json={"status": "approved"})
    items = stored_api.get(f"{path}/reviews").json()["data"]
    assert [(i["status"], i["notes"]) for i in items] == [("approved", None), ("rejected", "n1")]
    assert set(items[0]) == {"id", "status", "reference_row_id", "notes", "reviewed_by", "reviewed_at"}


def test_a_stale_if_match_is_a_412_and_writes_nothing(stored_api: Api) -> None:
    run = review_run(stored_api)
    got = stored_api.get(f"{RUNS}/{run['id']}")
    tag = got.headers["ETag"]
    ok = stored_api.post(
        f"{RUNS}/{run['id']}/review", json={"decision": "approved"}, headers={"If-Match": tag}
    )
    assert ok.status_code == 200, ok.text
    assert ok.headers["ETag"] != tag
    stale = stored_api.post(
        f"{RUNS}/{run['id']}/review", json={"decision": "rejected"}, headers={"If-Match": tag}
    )
    error_body(stale, 412, "precondition_failed")
    assert stored_api.get(f"{RUNS}/{run['id']}").json()["review"]["decision"] == "approved"
    mr, results = results_of(stored_api, run)
    path = f"/v1/matching/runs/{mr}/results/{results[0]['id']}"
    result_tag = stored_api.get(path).headers["ETag"]
    assert (
        stored_api.post(
            f"{path}/review", json={"status": "approved"}, headers={"If-Match": result_tag}
        ).status_code
        == 200
    )
    error_body(
        stored_api.post(f"{path}/review", json={"status": "rejected"}, headers={"If-Match": result_tag}),
        412,
        "precondition_failed",
    )
    bulk = {"decisions": [{"result_id": results[0]["id"], "status": "rejected"}]}
    error_body(
        stored_api.post(
            f"/v1/matching/runs/{mr}/results/review", json=bulk, headers={"If-Match": result_tag}
        ),
        412,
        "precondition_failed",
    )
    assert stored_api.get(path).json()["review"]["status"] == "approved"


def test_scopes_tenancy_and_ids(stored_api: Api) -> None:
    run = review_run(stored_api)
    reader = reviewer(stored_api, scopes="read")
    error_body(
        reader.post(f"{RUNS}/{run['id']}/review", json={"decision": "approved"}), 403, "insufficient_scope"
    )
    dana = reviewer(stored_api)
    assert dana.get(f"{RUNS}/{run['id']}").status_code == 200
    error_body(
        dana.post("/v1/matching/reference-data", json={"name": "x", "rows": []}), 403, "insufficient_scope"
    )
    other = stored_api.other_organization()
    error_body(other.post(f"{RUNS}/{run['id']}/review", json={"decision": "approved"}), 404, "not_found")
    error_body(other.get(f"{RUNS}/{run['id']}/reviews"), 404, "not_found")
    mr, results = results_of(stored_api, run)
    error_body(
        other.post(f"/v1/matching/runs/{mr}/results/{results[0]['id']}/review", json={"status": "approved"}),
        404,
        "not_found",
    )
    error_body(other.get(f"/v1/matching/runs/{mr}/results/{results[0]['id']}"), 404, "not_found")
    error_body(stored_api.post(f"{RUNS}/nope/review", json={"decision": "approved"}), 400, "validation_error")
    error_body(
        stored_api.post(
            f"/v1/matching/runs/{mr}/results/run_{results[0]['id'][5:]}/review", json={"status": "approved"}
        ),
        400,
        "validation_error",
    )


def test_idempotency_key_replays_a_review(stored_api: Api) -> None:
    run = review_run(stored_api)
    dana = reviewer(stored_api)
    headers = {"Idempotency-Key": "rev-1"}
    first = dana.post(f"{RUNS}/{run['id']}/review", json={"decision": "approved"}, headers=headers)
    again = dana.post(f"{RUNS}/{run['id']}/review", json={"decision": "approved"}, headers=headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    assert again.headers["ETag"] == first.headers["ETag"]  # the ETag of the body replayed
    assert dana.get(f"{RUNS}/{run['id']}/reviews").json()["pagination"]["total"] == 1
    mismatch = dana.post(f"{RUNS}/{run['id']}/review", json={"decision": "rejected"}, headers=headers)
    error_body(mismatch, 422, "idempotency_key_mismatch")


def test_a_rejected_pair_is_never_a_candidate_again_for_that_document(stored_api: Api) -> None:
    config = stored_api.shipment_world(("required",))
    first = final_run(stored_api, config, {"invoice": [invoice("doc_1")]})
    mr, results = results_of(stored_api, first)
    top = results[0]["candidates"][0]["reference_row_id"]
    rejected = stored_api.post(
        f"/v1/matching/runs/{mr}/results/{results[0]['id']}/review", json={"status": "rejected"}
    )
    assert rejected.json()["review"]["reference_row_id"] == top
    later = final_run(stored_api, config, {"invoice": [invoice("doc_1"), invoice("doc_2")]})
    _, again = results_of(stored_api, later)
    by_doc = {r["document_id"]: r for r in again}
    assert top not in [c["reference_row_id"] for c in by_doc["doc_1"]["candidates"]]
    assert by_doc["doc_1"]["excluded_by_review"] == [top]
    assert by_doc["doc_2"]["candidates"][0]["reference_row_id"] == top
    assert by_doc["doc_2"]["excluded_by_review"] == []


def test_metrics_count_decisions_and_the_runs_awaiting_review(stored_api: Api) -> None:
    run = review_run(stored_api)
    before = stored_api.client.get("/metrics").text
    assert "packmatch_runs_awaiting_review 1.0" in before
    assert stored_api.post(f"{RUNS}/{run['id']}/review", json={"decision": "approved"}).status_code == 200
    after = stored_api.client.get("/metrics").text
    assert "packmatch_runs_awaiting_review 0.0" in after
    assert 'packmatch_review_decisions_total{kind="run",outcome="approved"} 1.0' in after


def test_the_log_line_never_holds_the_notes(stored_api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    run = review_run(stored_api)
    note = "call Mrs Example on +41 79 000 00 00"
    response = stored_api.post(f"{RUNS}/{run['id']}/review", json={"decision": "approved", "notes": note})
    assert response.status_code == 200
    out = capsys.readouterr().out
    assert "review.recorded" in out
    assert note not in out


def test_approving_a_rejected_result_lifts_its_exclusion_for_later_runs(stored_api: Api) -> None:
    config = stored_api.shipment_world(("required",))
    first = final_run(stored_api, config, {"invoice": [invoice("doc_1")]})
    mr, results = results_of(stored_api, first)
    path = f"/v1/matching/runs/{mr}/results/{results[0]['id']}/review"
    top = results[0]["candidates"][0]["reference_row_id"]
    bulk = {"decisions": [{"result_id": results[0]["id"], "status": "rejected"}]}
    assert stored_api.post(f"/v1/matching/runs/{mr}/results/review", json=bulk).status_code == 200
    _, excluded = results_of(stored_api, final_run(stored_api, config, {"invoice": [invoice("doc_1")]}))
    assert excluded[0]["excluded_by_review"] == [top]
    assert stored_api.post(path, json={"status": "approved"}).status_code == 200
    _, again = results_of(stored_api, final_run(stored_api, config, {"invoice": [invoice("doc_1")]}))
    assert again[0]["excluded_by_review"] == []
    assert again[0]["candidates"][0]["reference_row_id"] == top


def test_bad_review_filters_are_400(stored_api: Api) -> None:
    error_body(stored_api.get(f"{RUNS}?reviewed=perhaps"), 400, "validation_error")


def test_bulk_decisions_lift_keep_and_add_exclusions_together(stored_api: Api) -> None:
    """Several decisions in one request (PostgreSQL: one statement): a rejection decided again
    keeps its exclusion, an approval lifts its own, both visible in a later run."""
    config = stored_api.shipment_world(("required",))
    documents = {"invoice": [invoice("doc_1"), invoice("doc_2")]}
    mr, results = results_of(stored_api, final_run(stored_api, config, documents))
    first, second = (r["id"] for r in results)
    bulk = f"/v1/matching/runs/{mr}/results/review"
    rejected = {"decisions": [{"result_id": first, "status": "rejected"},
                              {"result_id": second, "status": "rejected"}]}  # fmt: skip
    assert stored_api.post(bulk, json=rejected).status_code == 200
    _, later = results_of(stored_api, final_run(stored_api, config, documents))
    tops = [r["candidates"][0]["reference_row_id"] for r in results]
    assert [r["excluded_by_review"] for r in later] == [[tops[0]], [tops[1]]]
    mixed = {"decisions": [{"result_id": first, "status": "approved", "notes": "fine after all"},
                           {"result_id": second, "status": "rejected", "notes": "still wrong"}]}  # fmt: skip
    response = stored_api.post(bulk, json=mixed)
    assert response.status_code == 200, response.text
    assert [r["review"]["notes"] for r in response.json()["data"]] == ["fine after all", "still wrong"]
    _, again = results_of(stored_api, final_run(stored_api, config, documents))
    assert [r["excluded_by_review"] for r in again] == [[], [tops[1]]]
    history = stored_api.get(f"/v1/matching/runs/{mr}/results/{second}/reviews").json()["data"]
    assert [h["status"] for h in history] == ["rejected", "rejected"]
