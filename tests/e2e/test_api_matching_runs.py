"""/v1/matching/runs/{id} and its results: the evidence behind a verdict (SPEC §3, §4)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Api, error_body, invoice

MATCHING_RUNS = "/v1/matching/runs"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
MATCHING_RUN_KEYS = {
    "id",
    "matching_config_id",
    "package_run_id",
    "document_type",
    "status",
    "rows_processed",
    "rows_matched",
    "avg_confidence",
    "started_at",
    "completed_at",
    "error",
    "created_at",
    "links",
}
RESULT_KEYS = {
    "id",
    "document_id",
    "extraction_row_id",
    "matched",
    "matched_reference_row_id",
    "confidence",
    "candidates",
    "review",  # SPEC §3 Reviews
    "excluded_by_review",
}
GOOD_CONFIDENCE = 0.9833  # see test_api_runs: the ship date is one day off with a 3-day tolerance


def run_with(api: Api, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A final package run whose invoice slot scored `rows`."""
    response = api.run(api.shipment_world(), {"invoice": rows})
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def invoice_matching_run(api: Api, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(package run, the invoice slot's matching run)."""
    run = run_with(api, rows)
    matching_run_id = run["document_results"][0]["matching_run_id"]
    response = api.get(f"{MATCHING_RUNS}/{matching_run_id}")
    assert response.status_code == 200, response.text
    return run, response.json()


def two_rows() -> list[dict[str, Any]]:
    unmatched = invoice(
        "doc_2", booking_reference="NOPE", carrier="Maersk Line", total=1, ship_date="2001-01-01"
    )
    return [invoice("doc_1"), {**unmatched, "extraction_row_id": "row_9"}]


def results_of(api: Api, matching_run: dict[str, Any], **params: Any) -> dict[str, Any]:
    response = api.get(matching_run["links"]["results"], params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- the matching run -------------------------------------------------------------------------


def test_matching_run_has_exactly_the_spec_keys(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, [invoice()])
    assert set(matching_run) == MATCHING_RUN_KEYS


def test_matching_run_describes_its_slot(api: Api) -> None:
    run, matching_run = invoice_matching_run(api, two_rows())
    slot = run["document_results"][0]
    assert re.fullmatch(f"mr_{UUID}", matching_run["id"])
    assert {k: matching_run[k] for k in ("matching_config_id", "package_run_id", "document_type")} == {
        "matching_config_id": slot["matching_config_id"],
        "package_run_id": run["id"],
        "document_type": "invoice",
    }


def test_completed_matching_run_counts_rows(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, two_rows())
    counts = {k: matching_run[k] for k in ("status", "rows_processed", "rows_matched", "error")}
    assert counts == {"status": "completed", "rows_processed": 2, "rows_matched": 1, "error": None}


def test_matching_run_avg_confidence_is_rounded_to_4_decimals(api: Api) -> None:
    rows = [invoice("doc_1"), invoice("doc_2"), invoice("doc_3", ship_date="2024-09-12")]
    _, matching_run = invoice_matching_run(api, rows)
    # (0.98333… + 0.98333… + 0.96666…) / 3 = 0.97777…
    assert matching_run["avg_confidence"] == 0.9778


def test_matching_run_timestamps_are_utc_with_milliseconds(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, [invoice()])
    stamps = [matching_run[k] for k in ("created_at", "started_at", "completed_at")]
    assert all(TIMESTAMP.match(s) for s in stamps), stamps


def test_matching_run_links_its_config_results_and_package_run(api: Api) -> None:
    run, matching_run = invoice_matching_run(api, [invoice()])
    self_link = f"{MATCHING_RUNS}/{matching_run['id']}"
    assert matching_run["links"] == {
        "self": self_link,
        "config": f"/v1/matching/configs/{matching_run['matching_config_id']}",
        "results": f"{self_link}/results",
        "package_run": run["links"]["self"],
    }


def test_matching_run_get_accepts_a_bare_uuid(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, [invoice()])
    response = api.get(f"{MATCHING_RUNS}/{matching_run['id'].removeprefix('mr_')}")
    assert response.json() == matching_run


def test_unknown_matching_run_is_not_found(api: Api) -> None:
    body = error_body(api.get(f"{MATCHING_RUNS}/mr_{uuid.uuid4()}"), 404, "not_found")
    assert body["message"] == "No matching run with this ID exists for your organization."


def test_matching_run_with_a_malformed_id_is_a_validation_error(api: Api) -> None:
    body = error_body(api.get(f"{MATCHING_RUNS}/mr_zzz"), 400, "validation_error")
    assert body["message"] == "Invalid matching run ID format. Must be a UUID."


def test_matching_run_with_a_package_run_prefix_is_a_validation_error(api: Api) -> None:
    error_body(api.get(f"{MATCHING_RUNS}/run_{uuid.uuid4()}"), 400, "validation_error")


def test_another_organizations_matching_run_is_not_found(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, [invoice()])
    error_body(api.other_organization().get(matching_run["links"]["self"]), 404, "not_found")


# --- results ----------------------------------------------------------------------------------


def test_results_have_exactly_the_spec_keys(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, two_rows())
    assert [set(r) for r in results_of(api, matching_run)["data"]] == [RESULT_KEYS] * 2


def test_results_are_one_per_input_row_in_input_order(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, two_rows())
    body = results_of(api, matching_run)
    rows = [(r["document_id"], r["extraction_row_id"]) for r in body["data"]]
    assert rows == [("doc_1", "row_1"), ("doc_2", "row_9")]
    assert body["pagination"] == {"total": 2, "limit": 20, "has_more": False, "next_cursor": None}


def test_result_ids_are_prefixed_uuids(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, two_rows())
    assert all(re.fullmatch(f"mres_{UUID}", r["id"]) for r in results_of(api, matching_run)["data"])


def test_matched_row_names_its_reference_row(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, [invoice()])
    result = results_of(api, matching_run)["data"][0]
    assert (result["matched"], result["matched_reference_row_id"]) == (True, "BK-1")
    assert result["confidence"] == GOOD_CONFIDENCE


def test_unmatched_row_has_no_reference_row(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, two_rows())
    result = results_of(api, matching_run)["data"][1]
    assert (result["matched"], result["matched_reference_row_id"]) == (False, None)


def test_unmatched_row_keeps_its_best_candidate_below_the_threshold(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, two_rows())
    result = results_of(api, matching_run)["data"][1]
    # Only the carrier (weight 0.2) agrees with BK-1.
    assert result["confidence"] == 0.2
    assert [(c["reference_row_id"], c["confidence"]) for c in result["candidates"]] == [("BK-1", 0.2)]


def test_candidates_are_best_first(api: Api) -> None:
    row = invoice(booking_reference="XYZ7654321", carrier="Maersk Line", total=1200, ship_date="2024-09-10")
    _, matching_run = invoice_matching_run(api, [row])
    candidates = results_of(api, matching_run)["data"][0]["candidates"]
    # BK-2: reference and amount agree (0.5 + 0.2); BK-1: carrier and date (0.2 + 0.1); BK-3: none.
    assert [(c["reference_row_id"], c["confidence"]) for c in candidates] == [("BK-2", 0.7), ("BK-1", 0.3)]


def test_evidence_explains_each_source_field(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, [invoice()])
    evidence = results_of(api, matching_run)["data"][0]["candidates"][0]["evidence"]
    shown = {
        name: (e["strategy"], e["score"], e["source_value"], e["reference_value"])
        for name, e in evidence.items()
    }
    assert shown == {
        "booking_reference": ("exact", 1.0, "ABC1234567", "ABC1234567"),
        "carrier": ("fuzzy", 1.0, "Maersk Line", "Maersk Line"),
        "total": ("numeric_range", 1.0, "4,250.00", 4250.0),
        "ship_date": ("date_range", 0.8333, "2024-09-11", "2024-09-10"),
    }


def test_evidence_for_a_missing_source_value_scores_zero(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, [invoice(ship_date=None)])
    evidence = results_of(api, matching_run)["data"][0]["candidates"][0]["evidence"]["ship_date"]
    assert (evidence["score"], evidence["source_value"], evidence["reference_value"]) == (
        0.0,
        None,
        "2024-09-10",
    )


def test_results_page_with_a_cursor(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, two_rows())
    first = results_of(api, matching_run, limit=1)
    second = results_of(api, matching_run, limit=1, cursor=first["pagination"]["next_cursor"])
    assert [r["document_id"] for r in first["data"] + second["data"]] == ["doc_1", "doc_2"]
    assert (first["pagination"]["has_more"], second["pagination"]["has_more"]) == (True, False)


def test_results_with_order_desc_are_in_reverse_input_order(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, two_rows())
    body = results_of(api, matching_run, order="desc")
    assert [r["document_id"] for r in body["data"]] == ["doc_2", "doc_1"]


def test_results_of_an_unknown_matching_run_are_not_found(api: Api) -> None:
    error_body(api.get(f"{MATCHING_RUNS}/mr_{uuid.uuid4()}/results"), 404, "not_found")


def test_another_organizations_results_are_not_found(api: Api) -> None:
    _, matching_run = invoice_matching_run(api, [invoice()])
    error_body(api.other_organization().get(matching_run["links"]["results"]), 404, "not_found")


@pytest.mark.parametrize(("limit", "status"), [(1000, 200), (1001, 400)])
def test_a_page_of_results_holds_up_to_a_thousand(api: Api, limit: int, status: int) -> None:
    run = api.run(api.shipment_world(), {"invoice": [invoice(f"doc_{i}") for i in range(3)]}).json()
    matching_run = run["document_results"][0]["matching_run_id"]

    response = api.get(f"/v1/matching/runs/{matching_run}/results", params={"limit": limit})

    assert response.status_code == status, response.text
    if status == 200:
        assert response.json()["pagination"]["limit"] == 1000
        assert len(response.json()["data"]) == 3
