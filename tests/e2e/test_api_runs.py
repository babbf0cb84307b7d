"""/v1/matching/packages/runs: submit (202 / ?wait=), get, list with filters; verdicts via HTTP."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Api, error_body, invoice

RUNS = "/v1/matching/packages/runs"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
SEED_RUN_KEYS = {
    "id",
    "package_config_id",
    "status",
    "document_results",
    "input_documents",
    "error",
    "created_at",
    "completed_at",
    "links",
}
SEED_DOCUMENT_RESULT_KEYS = {
    "document_type",
    "matching_config_id",
    "matching_run_id",
    "presence",
    "document_found",
    "status",
    "confidence",
}
# GOOD_INVOICE against BK-1: exact 1, fuzzy 1, numeric 1, date 1 day off of 3 → 1 − 0.5/3;
# (0.5 + 0.2 + 0.2 + 0.1 · 0.8333…) / 1.0 = 0.98333…
GOOD_CONFIDENCE = 0.9833


def final_run(api: Api, config_id: str, documents: dict[str, Any]) -> dict[str, Any]:
    response = api.run(config_id, documents)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def slot_statuses(run: dict[str, Any]) -> list[str]:
    return [r["status"] for r in run["document_results"]]


def unmatched_invoice() -> dict[str, Any]:
    return invoice(booking_reference="NOPE000000", carrier="Evergreen", total=1.0, ship_date="2020-01-01")


# --- submit -----------------------------------------------------------------------------------


def test_submit_without_wait_is_accepted_as_running(api: Api) -> None:
    response = api.run(api.shipment_world(), {"invoice": [invoice()]}, wait=0)
    assert response.status_code == 202
    run = response.json()
    assert (run["status"], run["completed_at"], run["error"]) == ("running", None, None)


def test_submit_sets_location_to_the_run(api: Api) -> None:
    response = api.run(api.shipment_world(), {"invoice": [invoice()]}, wait=0)
    run_id = response.json()["id"]
    assert response.headers["Location"] == f"{RUNS}/{run_id}"


def test_accepted_run_shows_pending_missing_and_skipped_slots(api: Api) -> None:
    run = api.run(api.shipment_world(), {"invoice": [invoice()]}, wait=0).json()
    assert slot_statuses(run) == ["pending", "missing", "skipped"]
    assert [r["confidence"] for r in run["document_results"]] == [None, None, None]


def test_submit_with_wait_answers_200_with_the_final_run(api: Api) -> None:
    response = api.run(api.shipment_world(), {"invoice": [invoice()]}, wait=10)
    assert response.status_code == 200
    assert response.json()["status"] == "review"
    assert response.headers["Location"] == response.json()["links"]["self"]


BAD_WAITS = ["-1", "31", "soon", "nan", "NaN", "inf", "-inf", "Infinity", "1e309", "30.01"]


@pytest.mark.parametrize("wait", BAD_WAITS)
def test_submit_with_a_bad_wait_names_the_parameter_and_its_range(api: Api, wait: str) -> None:
    config_id = api.shipment_world()
    body = {"package_config_id": config_id, "input_documents": {"invoice": [invoice()]}}
    response = api.post(f"{RUNS}?wait={wait}", json=body)
    error = error_body(response, 400, "validation_error")
    message = "wait must be a number of seconds from 0 to 30."
    assert error["details"] == [{"field": "wait", "message": message}]
    assert api.get(RUNS).json()["data"] == []


@pytest.mark.parametrize("wait", ["0", "0.5", "30"])
def test_submit_accepts_a_wait_within_the_range(api: Api, wait: str) -> None:
    response = api.run(api.shipment_world(), {"invoice": [invoice()]}, wait=float(wait))
    assert response.status_code in (200, 202), response.text


def test_submit_with_unknown_document_types_names_them(api: Api) -> None:
    response = api.run(api.shipment_world(), {"invoice": [invoice()], "invoices": [invoice()]})
    body = error_body(response, 400, "validation_error")
    assert "'invoices'" in body["message"]
    assert [d["field"] for d in body["details"]] == ["input_documents.invoices"]


def test_submit_row_without_document_id_names_the_field(api: Api) -> None:
    row = {"extraction_row_id": "r1", "values": {"booking_reference": "ABC1234567"}}
    response = api.run(api.shipment_world(), {"invoice": [invoice(), row]})
    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["input_documents.invoice[1].document_id"]


def test_submit_row_with_empty_document_id_names_the_field(api: Api) -> None:
    response = api.run(api.shipment_world(), {"invoice": [invoice(document_id="")]})
    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["input_documents.invoice[0].document_id"]


def test_submit_row_whose_values_are_not_an_object_names_the_field(api: Api) -> None:
    row = {"document_id": "doc_1", "values": ["ABC1234567"]}
    response = api.run(api.shipment_world(), {"invoice": [row]})
    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["input_documents.invoice[0].values"]


def test_submit_for_an_unknown_config_is_not_found(api: Api) -> None:
    body = error_body(api.run(f"pkg_{uuid.uuid4()}", {}), 404, "not_found")
    assert body["message"] == "No package config with this ID exists for your organization."


def test_submit_with_a_malformed_config_id_names_the_field(api: Api) -> None:
    body = error_body(api.run("mc_123", {}), 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["package_config_id"]


def test_submit_accepts_a_bare_uuid_config_id(api: Api) -> None:
    config_id = api.shipment_world()
    response = api.run(config_id.removeprefix("pkg_"), {"invoice": [invoice()]}, wait=0)
    assert response.status_code == 202
    assert response.json()["package_config_id"] == config_id


def test_submit_for_another_organizations_config_is_not_found(api: Api) -> None:
    config_id = api.shipment_world()
    error_body(api.other_organization().run(config_id, {"invoice": [invoice()]}), 404, "not_found")


def test_submit_with_a_read_only_key_is_insufficient_scope(api: Api) -> None:
    config_id = api.shipment_world()
    reader = api.other_organization("acme", scopes="read")
    error_body(reader.run(config_id, {"invoice": [invoice()]}), 403, "insufficient_scope")


# --- the run object ---------------------------------------------------------------------------


def test_run_has_exactly_the_seed_keys_plus_review(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"invoice": [invoice()]})
    assert set(run) == SEED_RUN_KEYS | {"review"}  # SPEC §3 Reviews: one more field


def test_document_results_have_exactly_the_seed_keys(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"invoice": [invoice()]})
    assert [set(r) for r in run["document_results"]] == [SEED_DOCUMENT_RESULT_KEYS] * 3


def test_run_ids_and_links_use_prefixed_uuids(api: Api) -> None:
    config_id = api.shipment_world()
    run = final_run(api, config_id, {"invoice": [invoice()]})
    assert re.fullmatch(f"run_{UUID}", run["id"])
    assert run["package_config_id"] == config_id
    assert run["links"] == {
        "self": f"{RUNS}/{run['id']}",
        "config": f"/v1/matching/packages/configs/{config_id}",
    }


def test_document_results_follow_the_config_slots(api: Api) -> None:
    config_id = api.shipment_world()
    config = api.get(f"/v1/matching/packages/configs/{config_id}").json()
    run = final_run(api, config_id, {"invoice": [invoice()]})
    slots = [
        {k: r[k] for k in ("document_type", "matching_config_id", "presence")}
        for r in run["document_results"]
    ]
    assert slots == config["document_type_configs"]


def test_final_run_timestamps_are_utc_with_milliseconds(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"invoice": [invoice()]})
    assert TIMESTAMP.match(run["created_at"])
    assert TIMESTAMP.match(run["completed_at"])
    assert run["completed_at"] >= run["created_at"]


def test_confidence_is_rounded_to_4_decimals(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"invoice": [invoice()]})
    assert run["document_results"][0]["confidence"] == GOOD_CONFIDENCE


def test_input_documents_lists_distinct_ids_in_first_seen_order(api: Api) -> None:
    rows = [invoice("doc_b"), invoice("doc_a"), invoice("doc_b"), invoice("doc_c"), invoice("doc_a")]
    notes = [invoice("dn_1"), invoice("dn_1")]
    run = final_run(api, api.shipment_world(), {"invoice": rows, "delivery_note": notes})
    assert run["input_documents"] == {"invoice": ["doc_b", "doc_a", "doc_c"], "delivery_note": ["dn_1"]}


def test_matched_slot_reports_its_matching_run(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"invoice": [invoice()]})
    result = run["document_results"][0]
    assert (result["status"], result["document_found"]) == ("matched", True)
    assert re.fullmatch(f"mr_{UUID}", result["matching_run_id"])


def test_slots_without_documents_have_no_matching_run_or_confidence(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"invoice": [invoice()]})
    absent = [
        (r["document_found"], r["matching_run_id"], r["confidence"]) for r in run["document_results"][1:]
    ]
    assert absent == [(False, None, None), (False, None, None)]


# --- verdicts ---------------------------------------------------------------------------------


def test_all_slots_matched_is_passed(api: Api) -> None:
    documents = {"invoice": [invoice()], "delivery_note": [invoice("dn_1")], "contract": [invoice("c_1")]}
    run = final_run(api, api.shipment_world(), documents)
    assert (run["status"], slot_statuses(run)) == ("passed", ["matched", "matched", "matched"])


def test_required_and_expected_matched_with_optional_absent_is_passed(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"invoice": [invoice()], "delivery_note": [invoice("dn")]})
    assert (run["status"], slot_statuses(run)) == ("passed", ["matched", "matched", "skipped"])


def test_missing_required_slot_is_failed(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"delivery_note": [invoice("dn_1")]})
    assert (run["status"], slot_statuses(run)) == ("failed", ["missing", "matched", "skipped"])


def test_unmatched_required_slot_is_failed(api: Api) -> None:
    documents = {"invoice": [unmatched_invoice()], "delivery_note": [invoice("dn_1")]}
    run = final_run(api, api.shipment_world(), documents)
    assert (run["status"], slot_statuses(run)) == ("failed", ["unmatched", "matched", "skipped"])


def test_missing_expected_slot_is_review(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"invoice": [invoice()]})
    assert (run["status"], slot_statuses(run)) == ("review", ["matched", "missing", "skipped"])


def test_unmatched_optional_slot_does_not_change_a_pass(api: Api) -> None:
    documents = {"invoice": [invoice()], "delivery_note": [invoice("dn")], "contract": [unmatched_invoice()]}
    run = final_run(api, api.shipment_world(), documents)
    assert (run["status"], slot_statuses(run)) == ("passed", ["matched", "matched", "unmatched"])


def test_final_run_has_no_error(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"delivery_note": [invoice("dn_1")]})
    assert (run["status"], run["error"]) == ("failed", None)


# --- get --------------------------------------------------------------------------------------


def test_get_returns_the_final_run(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"invoice": [invoice()]})
    response = api.get(run["links"]["self"])
    assert (response.status_code, response.json()) == (200, run)


def test_get_accepts_a_bare_uuid(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"invoice": [invoice()]})
    assert api.get(f"{RUNS}/{run['id'].removeprefix('run_')}").json() == run


def test_get_unknown_run_is_not_found(api: Api) -> None:
    body = error_body(api.get(f"{RUNS}/run_{uuid.uuid4()}"), 404, "not_found")
    assert body["message"] == "No package run with this ID exists for your organization."


def test_get_with_a_malformed_id_is_a_validation_error(api: Api) -> None:
    body = error_body(api.get(f"{RUNS}/run_42"), 400, "validation_error")
    assert body["message"] == "Invalid run ID format. Must be a UUID."


def test_get_with_a_matching_run_prefix_is_a_validation_error(api: Api) -> None:
    error_body(api.get(f"{RUNS}/mr_{uuid.uuid4()}"), 400, "validation_error")


def test_another_organizations_run_is_not_found(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"invoice": [invoice()]})
    error_body(api.other_organization().get(run["links"]["self"]), 404, "not_found")


# --- list -------------------------------------------------------------------------------------


def test_list_returns_runs_in_the_seed_shape(api: Api) -> None:
    run = final_run(api, api.shipment_world(), {"invoice": [invoice()]})
    body = api.get(RUNS).json()
    assert body == {
        "data": [run],
        "pagination": {"total": 1, "limit": 20, "has_more": False, "next_cursor": None},
    }


def test_list_filters_by_package_config(api: Api) -> None:
    first, second = api.shipment_world(), api.shipment_world()
    final_run(api, first, {"invoice": [invoice()]})
    wanted = final_run(api, second, {"invoice": [invoice()]})
    body = api.get(RUNS, params={"package_config_id": second}).json()
    assert ([r["id"] for r in body["data"]], body["pagination"]["total"]) == ([wanted["id"]], 1)


def test_config_runs_link_lists_that_configs_runs(api: Api) -> None:
    first, second = api.shipment_world(), api.shipment_world()
    final_run(api, first, {"invoice": [invoice()]})
    wanted = final_run(api, second, {"invoice": [invoice()]})
    link = api.get(f"/v1/matching/packages/configs/{second}").json()["links"]["runs"]
    assert [r["id"] for r in api.get(link).json()["data"]] == [wanted["id"]]


def test_list_filters_by_status(api: Api) -> None:
    config_id = api.shipment_world()
    final_run(api, config_id, {"invoice": [invoice()]})
    failed = final_run(api, config_id, {"delivery_note": [invoice()]})
    body = api.get(RUNS, params={"status": "failed"}).json()
    assert ([r["id"] for r in body["data"]], body["pagination"]["total"]) == ([failed["id"]], 1)


def test_list_combines_config_and_status_filters(api: Api) -> None:
    first, second = api.shipment_world(), api.shipment_world()
    final_run(api, first, {"invoice": [invoice()]})
    final_run(api, second, {"delivery_note": [invoice()]})
    wanted = final_run(api, second, {"invoice": [invoice()]})
    body = api.get(RUNS, params={"package_config_id": second, "status": "review"}).json()
    assert ([r["id"] for r in body["data"]], body["pagination"]["total"]) == ([wanted["id"]], 1)


def test_list_filter_accepts_a_bare_uuid_config_id(api: Api) -> None:
    config_id = api.shipment_world()
    run = final_run(api, config_id, {"invoice": [invoice()]})
    body = api.get(RUNS, params={"package_config_id": config_id.removeprefix("pkg_")}).json()
    assert [r["id"] for r in body["data"]] == [run["id"]]


def test_list_hides_another_organizations_runs(api: Api) -> None:
    final_run(api, api.shipment_world(), {"invoice": [invoice()]})
    body = api.other_organization().get(RUNS).json()
    assert (body["data"], body["pagination"]["total"]) == ([], 0)


def test_list_filtered_by_another_organizations_config_is_empty(api: Api) -> None:
    config_id = api.shipment_world()
    final_run(api, config_id, {"invoice": [invoice()]})
    body = api.other_organization().get(RUNS, params={"package_config_id": config_id}).json()
    assert (body["data"], body["pagination"]["total"]) == ([], 0)


def test_submit_with_a_non_finite_value_names_the_row_values(api: Api) -> None:
    config_id = api.shipment_world()
    content = (
        b'{"package_config_id": "%s", "input_documents": {"invoice": '
        b'[{"document_id": "d", "values": {"total": NaN}}]}}' % config_id.encode()
    )
    response = api.post(f"{RUNS}?wait=0", content=content, headers={"Content-Type": "application/json"})
    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["input_documents.invoice[0].values"]
