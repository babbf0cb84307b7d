"""POST /v1/matching/configs/{id}/evaluations: accepted (202), run on a worker, read back with its report."""

from __future__ import annotations

import time
from typing import Any

from packmatch.domain.ids import Kind, parse_id
from packmatch.quality import LabelledRow, evaluate
from packmatch.store import configs as configs_store
from packmatch.store import reference_data as reference_store
from tests.e2e.conftest import BOOKINGS, Api, error_body, invoice

CONFIGS = "/v1/matching/configs"
MISSING_EVAL = "eval_00000000-0000-4000-8000-000000000000"


def matching_config(api: Api) -> dict[str, Any]:
    """The invoice → booking config of the shipment world (BOOKINGS, threshold 0.85)."""
    package_config = api.get(f"/v1/matching/packages/configs/{api.shipment_world(('required',))}").json()
    config_id = package_config["document_type_configs"][0]["matching_config_id"]
    found: dict[str, Any] = api.get(f"{CONFIGS}/{config_id}").json()
    return found


def labelled_rows() -> list[dict[str, Any]]:
    """Six rows: three good invoices for BK-1..3, a typo'd one, one for nothing, one wrongly labelled."""
    good = [
        {"booking_reference": b["reference"], "carrier": b["carrier_name"], "total": str(b["amount"]),
         "ship_date": b["departure"]}
        for b in BOOKINGS
    ]  # fmt: skip
    typo = {**good[0], "booking_reference": "ABC1234568"}
    nothing = {"booking_reference": "NONE", "carrier": "zzz", "total": "1", "ship_date": "1990-01-01"}
    return [
        *({"values": v, "reference_row_id": b["id"]} for v, b in zip(good, BOOKINGS, strict=True)),
        {"values": typo, "reference_row_id": "BK-1"},
        {"values": nothing, "reference_row_id": None},
        {"values": good[1], "reference_row_id": "BK-3"},
    ]


def final(api: Api, location: str, seconds: float = 30) -> dict[str, Any]:
    """Poll the evaluation (as a client does) until it is done or failed."""
    deadline = time.monotonic() + seconds
    while True:
        response = api.get(location)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("done", "error"):
            return body
        assert time.monotonic() < deadline, f"the evaluation is still {body['status']}"
        time.sleep(0.02)


def direct_report(api: Api, config: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What packmatch.quality.evaluate reports for the same config and rows, without the service."""
    organization_id = api.runtime.services.accounts.authenticate(api.key).organization_id
    with api.runtime.services.db.transaction() as conn:
        stored = configs_store.get_matching_config(
            conn, organization_id, parse_id(Kind.MATCHING_CONFIG, config["id"])
        )
        assert stored is not None
        reference = reference_store.load_rows(conn, stored.reference_data_id)
    labelled = [LabelledRow.model_validate(row) for row in rows]
    return evaluate(stored, reference, labelled).model_dump(mode="json")


def test_an_evaluation_is_accepted_then_reports_what_the_engine_does(stored_api: Api) -> None:
    config = matching_config(stored_api)
    rows = labelled_rows()
    response = stored_api.post(f"{CONFIGS}/{config['id']}/evaluations", json={"rows": rows})
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["id"].startswith("eval_")
    assert response.headers["Location"] == accepted["links"]["self"]
    assert accepted["links"] == {
        "self": f"{CONFIGS}/{config['id']}/evaluations/{accepted['id']}",
        "config": f"{CONFIGS}/{config['id']}",
    }
    assert (accepted["source"], accepted["matching_config_version"]) == ("rows", config["version"])
    assert accepted["progress"] == {"done": 0, "total": 6}
    assert accepted["report"] is None
    assert accepted["error"] is None

    done = final(stored_api, accepted["links"]["self"])
    assert done["status"] == "done", done
    assert done["progress"] == {"done": 6, "total": 6}
    assert done["started_at"] is not None
    assert done["completed_at"] >= done["started_at"]
    report = done["report"]
    assert report == direct_report(stored_api, config, rows)
    assert report["rows"] == 6
    assert report["labelled_matches"] == 5
    assert report["threshold"] == config["threshold"]
    # The mislabelled row (BK-2's invoice said to be BK-3) is a wrong match, shown with its evidence.
    wrong = [m for m in report["worst_misses"] if m["row"] == 5]
    assert wrong
    assert wrong[0]["kind"] == "wrong_match"
    assert wrong[0]["matched_reference_row_id"] == "BK-2"
    assert wrong[0]["label_evidence"] is not None

    listed = stored_api.get(f"{CONFIGS}/{config['id']}/evaluations").json()
    assert [e["id"] for e in listed["data"]] == [accepted["id"]]
    assert listed["pagination"]["total"] == 1


def test_review_decisions_are_the_labels_with_from_reviews(stored_api: Api) -> None:
    config = matching_config(stored_api)
    refused = stored_api.post(f"{CONFIGS}/{config['id']}/evaluations", json={"from_reviews": True})
    body = error_body(refused, 400, "validation_error")
    assert body["details"][0]["field"] == "from_reviews"

    package_config = stored_api.shipment_world(("required",))
    documents = {"invoice": [invoice("doc_1"), invoice("doc_2", booking_reference="XYZ7654321")]}
    run = stored_api.run(package_config, documents).json()
    mr = run["document_results"][0]["matching_run_id"]
    results = stored_api.get(f"/v1/matching/runs/{mr}/results").json()["data"]
    decisions = [
        {"result_id": results[0]["id"], "status": "approved"},
        {"result_id": results[1]["id"], "status": "rejected"},
    ]
    reviewed = stored_api.post(f"/v1/matching/runs/{mr}/results/review", json={"decisions": decisions})
    assert reviewed.status_code == 200, reviewed.text
    reviewed_config = run["document_results"][0]["matching_config_id"]

    response = stored_api.post(f"{CONFIGS}/{reviewed_config}/evaluations", json={"from_reviews": True})
    assert response.status_code == 202, response.text
    assert response.json()["source"] == "reviews"
    done = final(stored_api, response.headers["Location"])
    assert done["status"] == "done", done
    # Two reviewed documents: the approved one labelled with its row, the rejected one with none.
    report = done["report"]
    assert (report["rows"], report["labelled_matches"]) == (2, 1)
    metrics = report["metrics"]
    assert (metrics["tp"], metrics["fn"]) == (1, 0)  # the approved invoice links its approved row
    assert metrics["tp"] + metrics["fp"] + metrics["fn"] + metrics["tn"] == 2


def test_bad_evaluation_requests_get_a_clear_400(api: Api) -> None:
    config = matching_config(api)
    path = f"{CONFIGS}/{config['id']}/evaluations"
    neither = error_body(api.post(path, json={}), 400, "validation_error")
    assert neither["details"][0]["field"] == "rows"
    row = labelled_rows()[0]
    both = error_body(api.post(path, json={"rows": [row], "from_reviews": True}), 400, "validation_error")
    assert "not both" in both["message"]
    error_body(api.post(path, json={"rows": []}), 400, "validation_error")
    unknown = {"rows": [row, {**row, "reference_row_id": "BK-404"}]}
    body = error_body(api.post(path, json=unknown), 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["rows[1].reference_row_id"]
    nested = {"rows": [{"values": {"carrier": {"nested": 1}}, "reference_row_id": None}]}
    error_body(api.post(path, json=nested), 400, "validation_error")
    assert api.get(path).json()["pagination"]["total"] == 0  # nothing refused was recorded


def test_evaluations_of_another_organization_are_not_found(api: Api) -> None:
    config = matching_config(api)
    path = f"{CONFIGS}/{config['id']}/evaluations"
    accepted = api.post(path, json={"rows": labelled_rows()}).json()
    other = api.other_organization()
    error_body(other.post(path, json={"rows": labelled_rows()}), 404, "not_found")
    error_body(other.get(path), 404, "not_found")
    error_body(other.get(accepted["links"]["self"]), 404, "not_found")
    error_body(api.get(f"{path}/{MISSING_EVAL}"), 404, "not_found")
    error_body(api.get(f"{path}/not-an-id"), 400, "validation_error")
    final(api, accepted["links"]["self"])


def test_reading_evaluations_needs_read_and_submitting_needs_write(api: Api) -> None:
    config = matching_config(api)
    path = f"{CONFIGS}/{config['id']}/evaluations"
    reader = api.other_organization("acme", scopes="read")
    error_body(reader.post(path, json={"rows": labelled_rows()}), 403, "insufficient_scope")
    assert reader.get(path).status_code == 200
