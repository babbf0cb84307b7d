"""/v1/matching/configs and /v1/matching/packages/configs: create, list, get (SPEC §3 and the seed)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import BOOKINGS, INVOICE_MAPPINGS, Api, error_body

MATCHING_CONFIGS = "/v1/matching/configs"
PACKAGE_CONFIGS = "/v1/matching/packages/configs"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
SEED_PACKAGE_CONFIG_KEYS = {
    "id",
    "name",
    "document_type_configs",
    "pass_criteria",
    "created_at",
    "updated_at",
    "links",
}


def fields(body: dict[str, Any]) -> list[str]:
    return [d["field"] for d in body["details"]]


def bookings(api: Api) -> str:
    created = api.create("/v1/matching/reference-data", {"name": "bookings", "rows": BOOKINGS})
    return str(created["id"])


def matching_body(reference_data_id: str, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Invoice to booking", "reference_data_id": reference_data_id}
    return {**body, "field_mappings": INVOICE_MAPPINGS, **overrides}


def matching_config(api: Api, **overrides: Any) -> dict[str, Any]:
    return api.create(MATCHING_CONFIGS, matching_body(bookings(api), **overrides))


def package_body(mc_id: str, **overrides: Any) -> dict[str, Any]:
    slots = [
        {"document_type": "invoice", "matching_config_id": mc_id, "presence": "required"},
        {"document_type": "delivery_note", "matching_config_id": mc_id, "presence": "expected"},
        {"document_type": "contract", "matching_config_id": mc_id, "presence": "optional"},
    ]
    return {"name": "Shipment bundle", "document_type_configs": slots, **overrides}


def package_config(api: Api, **overrides: Any) -> dict[str, Any]:
    return api.create(PACKAGE_CONFIGS, package_body(matching_config(api)["id"], **overrides))


# --- matching configs: create -------------------------------------------------------------------


def test_matching_config_create_returns_the_spec_object(api: Api) -> None:
    ref_id = bookings(api)
    created = api.create(MATCHING_CONFIGS, matching_body(ref_id, threshold=0.8))
    assert re.fullmatch(f"mc_{UUID}", created["id"])
    assert {k: v for k, v in created.items() if k not in {"id", "created_at", "updated_at"}} == {
        "name": "Invoice to booking",
        "reference_data_id": ref_id,
        "field_mappings": [{"options": {}, "missing": "mismatch", **m} for m in INVOICE_MAPPINGS],
        "threshold": 0.8,
        "version": 1,
        "links": {"self": f"{MATCHING_CONFIGS}/{created['id']}"},
    }


def test_matching_config_create_sets_location(api: Api) -> None:
    response = api.post(MATCHING_CONFIGS, json=matching_body(bookings(api)))
    assert response.status_code == 201
    assert response.headers["Location"] == response.json()["links"]["self"]


def test_matching_config_timestamps_are_utc_with_milliseconds(api: Api) -> None:
    created = matching_config(api)
    assert TIMESTAMP.match(created["created_at"])
    assert created["updated_at"] == created["created_at"]


def test_matching_config_threshold_defaults_to_0_85(api: Api) -> None:
    assert matching_config(api)["threshold"] == 0.85


def test_matching_config_accepts_a_bare_uuid_reference_data_id(api: Api) -> None:
    ref_id = bookings(api)
    created = api.create(MATCHING_CONFIGS, matching_body(ref_id.removeprefix("ref_")))
    assert created["reference_data_id"] == ref_id


def test_matching_config_with_unknown_reference_data_is_not_found(api: Api) -> None:
    response = api.post(MATCHING_CONFIGS, json=matching_body(f"ref_{uuid.uuid4()}"))
    body = error_body(response, 404, "not_found")
    assert body["message"] == "No reference data with this ID exists for your organization."


def test_matching_config_with_malformed_reference_data_id_names_the_field(api: Api) -> None:
    body = error_body(api.post(MATCHING_CONFIGS, json=matching_body("ref_x")), 400, "validation_error")
    assert fields(body) == ["reference_data_id"]


def test_matching_config_with_another_organizations_reference_data_is_not_found(api: Api) -> None:
    ref_id = bookings(api)
    response = api.other_organization().post(MATCHING_CONFIGS, json=matching_body(ref_id))
    error_body(response, 404, "not_found")


def test_matching_config_target_must_be_a_dataset_column(api: Api) -> None:
    mappings = [*INVOICE_MAPPINGS[:1], {**INVOICE_MAPPINGS[1], "target": "ship_name"}]
    response = api.post(MATCHING_CONFIGS, json=matching_body(bookings(api), field_mappings=mappings))
    body = error_body(response, 400, "validation_error")
    assert fields(body) == ["field_mappings[1].target"]


@pytest.mark.parametrize("weight", [0, -0.5])
def test_matching_config_weight_must_be_positive(api: Api, weight: float) -> None:
    mappings = [{**INVOICE_MAPPINGS[0], "weight": weight}]
    response = api.post(MATCHING_CONFIGS, json=matching_body(bookings(api), field_mappings=mappings))
    assert fields(error_body(response, 400, "validation_error")) == ["field_mappings[0].weight"]


@pytest.mark.parametrize("threshold", [-0.01, 1.01])
def test_matching_config_threshold_must_be_within_0_and_1(api: Api, threshold: float) -> None:
    response = api.post(MATCHING_CONFIGS, json=matching_body(bookings(api), threshold=threshold))
    assert fields(error_body(response, 400, "validation_error")) == ["threshold"]


def test_matching_config_unknown_strategy_names_the_field(api: Api) -> None:
    mappings = [{**INVOICE_MAPPINGS[0], "strategy": "soundex"}]
    response = api.post(MATCHING_CONFIGS, json=matching_body(bookings(api), field_mappings=mappings))
    assert fields(error_body(response, 400, "validation_error")) == ["field_mappings[0].strategy"]


def test_matching_config_invalid_options_name_the_option(api: Api) -> None:
    mappings = [{**INVOICE_MAPPINGS[1], "options": {"min_similarity": 2}}]
    response = api.post(MATCHING_CONFIGS, json=matching_body(bookings(api), field_mappings=mappings))
    body = error_body(response, 400, "validation_error")
    assert fields(body) == ["field_mappings[0].options.min_similarity"]


def test_matching_config_needs_at_least_one_mapping(api: Api) -> None:
    response = api.post(MATCHING_CONFIGS, json=matching_body(bookings(api), field_mappings=[]))
    assert fields(error_body(response, 400, "validation_error")) == ["field_mappings"]


# --- matching configs: list and get -------------------------------------------------------------


def test_matching_config_get_returns_the_created_object(api: Api) -> None:
    created = matching_config(api)
    response = api.get(created["links"]["self"])
    assert (response.status_code, response.json()) == (200, created)


def test_matching_config_list_shows_the_created_object(api: Api) -> None:
    created = matching_config(api)
    body = api.get(MATCHING_CONFIGS).json()
    assert body == {
        "data": [created],
        "pagination": {"total": 1, "limit": 20, "has_more": False, "next_cursor": None},
    }


def test_matching_config_get_unknown_is_not_found(api: Api) -> None:
    body = error_body(api.get(f"{MATCHING_CONFIGS}/mc_{uuid.uuid4()}"), 404, "not_found")
    assert body["message"] == "No matching config with this ID exists for your organization."


def test_matching_config_get_with_a_malformed_id_is_a_validation_error(api: Api) -> None:
    body = error_body(api.get(f"{MATCHING_CONFIGS}/mc_nope"), 400, "validation_error")
    assert body["message"] == "Invalid matching config ID format. Must be a UUID."


def test_matching_config_get_with_a_package_config_prefix_is_a_validation_error(api: Api) -> None:
    mc_uuid = matching_config(api)["id"].removeprefix("mc_")
    error_body(api.get(f"{MATCHING_CONFIGS}/pkg_{mc_uuid}"), 400, "validation_error")


def test_another_organizations_matching_config_is_not_found(api: Api) -> None:
    created = matching_config(api)
    error_body(api.other_organization().get(created["links"]["self"]), 404, "not_found")


def test_another_organizations_matching_config_is_absent_from_the_list(api: Api) -> None:
    matching_config(api)
    body = api.other_organization().get(MATCHING_CONFIGS).json()
    assert (body["data"], body["pagination"]["total"]) == ([], 0)


# --- package configs: create ----------------------------------------------------------------------


def test_package_config_has_exactly_the_seed_keys_plus_version(api: Api) -> None:
    assert set(package_config(api)) == SEED_PACKAGE_CONFIG_KEYS | {"version"}


def test_package_config_create_returns_the_seed_object(api: Api) -> None:
    mc_id = matching_config(api)["id"]
    criteria = {"all_required_matched": True, "min_confidence": 0.8, "allow_review_on_expected": True}
    created = api.create(PACKAGE_CONFIGS, package_body(mc_id, pass_criteria=criteria))
    assert re.fullmatch(f"pkg_{UUID}", created["id"])
    assert {k: v for k, v in created.items() if k not in {"id", "created_at", "updated_at", "links"}} == {
        "name": "Shipment bundle",
        "document_type_configs": package_body(mc_id)["document_type_configs"],
        "pass_criteria": criteria,
        "version": 1,
    }


def test_package_config_links_self_and_its_runs(api: Api) -> None:
    created = package_config(api)
    assert created["links"] == {
        "self": f"{PACKAGE_CONFIGS}/{created['id']}",
        "runs": f"/v1/matching/packages/runs?package_config_id={created['id']}",
    }


def test_package_config_create_sets_location(api: Api) -> None:
    response = api.post(PACKAGE_CONFIGS, json=package_body(matching_config(api)["id"]))
    assert response.status_code == 201
    assert response.headers["Location"] == response.json()["links"]["self"]


def test_package_config_timestamps_are_utc_with_milliseconds(api: Api) -> None:
    created = package_config(api)
    assert TIMESTAMP.match(created["created_at"])
    assert created["updated_at"] == created["created_at"]


def test_package_config_pass_criteria_have_defaults(api: Api) -> None:
    assert package_config(api)["pass_criteria"] == {
        "all_required_matched": True,
        "min_confidence": 0.0,
        "allow_review_on_expected": True,
    }


def test_package_config_fills_omitted_pass_criteria_fields_with_defaults(api: Api) -> None:
    created = package_config(api, pass_criteria={"min_confidence": 0.5})
    assert created["pass_criteria"] == {
        "all_required_matched": True,
        "min_confidence": 0.5,
        "allow_review_on_expected": True,
    }


def test_package_config_unknown_presence_names_the_slot_field(api: Api) -> None:
    body = package_body(matching_config(api)["id"])
    body["document_type_configs"][1]["presence"] = "sometimes"
    response = api.post(PACKAGE_CONFIGS, json=body)
    assert fields(error_body(response, 400, "validation_error")) == ["document_type_configs[1].presence"]


@pytest.mark.parametrize("document_type", ["Invoice", "delivery-note", "", "x" * 65])
def test_package_config_document_type_must_be_1_to_64_of_a_z_0_9_underscore(
    api: Api, document_type: str
) -> None:
    sent = package_body(matching_config(api)["id"])
    sent["document_type_configs"][2]["document_type"] = document_type
    response = api.post(PACKAGE_CONFIGS, json=sent)
    body = error_body(response, 400, "validation_error")
    assert fields(body) == ["document_type_configs[2].document_type"]


def test_package_config_duplicate_document_type_names_the_second_slot(api: Api) -> None:
    sent = package_body(matching_config(api)["id"])
    sent["document_type_configs"][2]["document_type"] = "invoice"
    response = api.post(PACKAGE_CONFIGS, json=sent)
    body = error_body(response, 400, "validation_error")
    assert fields(body) == ["document_type_configs[2].document_type"]


def test_package_config_needs_at_least_one_slot(api: Api) -> None:
    response = api.post(PACKAGE_CONFIGS, json={"name": "empty", "document_type_configs": []})
    assert fields(error_body(response, 400, "validation_error")) == ["document_type_configs"]


def test_package_config_min_confidence_above_1_names_the_field(api: Api) -> None:
    response = api.post(
        PACKAGE_CONFIGS, json=package_body(matching_config(api)["id"], pass_criteria={"min_confidence": 1.5})
    )
    assert fields(error_body(response, 400, "validation_error")) == ["pass_criteria.min_confidence"]


def test_package_config_with_unknown_matching_config_is_not_found(api: Api) -> None:
    unknown = f"mc_{uuid.uuid4()}"
    response = api.post(PACKAGE_CONFIGS, json=package_body(unknown))
    body = error_body(response, 404, "not_found")
    assert body["message"] == f"No matching config with ID {unknown} exists for your organization."


def test_package_config_with_malformed_matching_config_id_names_the_slot_field(api: Api) -> None:
    sent = package_body(matching_config(api)["id"])
    sent["document_type_configs"][1]["matching_config_id"] = "ref_1"
    response = api.post(PACKAGE_CONFIGS, json=sent)
    body = error_body(response, 400, "validation_error")
    assert fields(body) == ["document_type_configs[1].matching_config_id"]


def test_package_config_with_another_organizations_matching_config_is_not_found(api: Api) -> None:
    mc_id = matching_config(api)["id"]
    response = api.other_organization().post(PACKAGE_CONFIGS, json=package_body(mc_id))
    error_body(response, 404, "not_found")


# --- package configs: list and get --------------------------------------------------------------


def test_package_config_get_returns_the_created_object(api: Api) -> None:
    created = package_config(api)
    response = api.get(created["links"]["self"])
    assert (response.status_code, response.json()) == (200, created)


def test_package_config_list_shows_the_created_object(api: Api) -> None:
    created = package_config(api)
    body = api.get(PACKAGE_CONFIGS).json()
    assert body == {
        "data": [created],
        "pagination": {"total": 1, "limit": 20, "has_more": False, "next_cursor": None},
    }


def test_package_config_get_unknown_is_not_found(api: Api) -> None:
    body = error_body(api.get(f"{PACKAGE_CONFIGS}/pkg_{uuid.uuid4()}"), 404, "not_found")
    assert body["message"] == "No package config with this ID exists for your organization."


def test_another_organizations_package_config_is_not_found(api: Api) -> None:
    created = package_config(api)
    error_body(api.other_organization().get(created["links"]["self"]), 404, "not_found")


def test_another_organizations_package_config_is_absent_from_the_list(api: Api) -> None:
    package_config(api)
    body = api.other_organization().get(PACKAGE_CONFIGS).json()
    assert (body["data"], body["pagination"]["total"]) == ([], 0)
