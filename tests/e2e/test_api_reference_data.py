"""/v1/matching/reference-data: create from JSON, list, get, rows, delete (SPEC §3)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import BOOKINGS, Api, error_body

REFERENCE_DATA = "/v1/matching/reference-data"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
REF_ID = re.compile(r"^ref_[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MIXED_ROWS = [
    {"id": "V-1", "vendor": "Acme", "active": True, "since": "2020-01-31", "limit": 100},
    {"vendor": "Globex", "active": False, "since": "2021-06-01", "limit": 2.5, "note": "new"},
    {"vendor": "Initech", "limit": "n/a"},
]


def create_bookings(api: Api, name: str = "bookings") -> dict[str, Any]:
    return api.create(REFERENCE_DATA, {"name": name, "rows": BOOKINGS})


def delete(api: Api, path: str) -> Any:
    return api.client.delete(path, headers=api.headers)


def use_in_matching_config(api: Api, dataset_id: str) -> None:
    mapping = {"source": "ref", "target": "reference", "strategy": "exact", "weight": 1}
    body = {"name": "uses it", "reference_data_id": dataset_id, "field_mappings": [mapping]}
    api.create("/v1/matching/configs", body)


# --- create -----------------------------------------------------------------------------------


def test_create_returns_201_with_the_dataset_object(api: Api) -> None:
    response = api.post(REFERENCE_DATA, json={"name": "bookings", "rows": BOOKINGS})
    assert response.status_code == 201
    created = response.json()
    assert set(created) == {
        "id",
        "name",
        "source_type",
        "row_count",
        "columns",
        "created_at",
        "updated_at",
        "links",
    }
    assert (created["name"], created["source_type"], created["row_count"]) == ("bookings", "json", 3)


def test_create_gives_a_prefixed_uuid_id(api: Api) -> None:
    assert REF_ID.match(create_bookings(api)["id"])


def test_create_sets_location_to_the_self_link(api: Api) -> None:
    response = api.post(REFERENCE_DATA, json={"name": "bookings", "rows": BOOKINGS})
    created = response.json()
    assert response.headers["Location"] == created["links"]["self"] == f"{REFERENCE_DATA}/{created['id']}"


def test_create_links_the_rows(api: Api) -> None:
    created = create_bookings(api)
    assert created["links"]["rows"] == f"{REFERENCE_DATA}/{created['id']}/rows"


def test_create_timestamps_are_utc_with_milliseconds(api: Api) -> None:
    created = create_bookings(api)
    assert TIMESTAMP.match(created["created_at"])
    assert created["updated_at"] == created["created_at"]


def test_columns_are_the_union_of_row_keys_with_inferred_types(api: Api) -> None:
    created = api.create(REFERENCE_DATA, {"name": "vendors", "rows": MIXED_ROWS})
    assert created["columns"] == [
        {"name": "vendor", "type": "string"},
        {"name": "active", "type": "boolean"},
        {"name": "since", "type": "date"},
        {"name": "limit", "type": "string"},
        {"name": "note", "type": "string"},
    ]


def test_booking_columns_infer_number_and_date(api: Api) -> None:
    types = {c["name"]: c["type"] for c in create_bookings(api)["columns"]}
    assert types == {"reference": "string", "carrier_name": "string", "amount": "number", "departure": "date"}


def test_duplicate_row_ids_are_rejected_naming_the_row(api: Api) -> None:
    rows = [{"id": "A", "x": 1}, {"id": "A", "x": 2}]
    body = error_body(api.post(REFERENCE_DATA, json={"name": "dup", "rows": rows}), 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["rows[1].id"]


def test_blank_name_is_rejected_naming_the_field(api: Api) -> None:
    body = error_body(api.post(REFERENCE_DATA, json={"name": "  ", "rows": []}), 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["name"]


def test_rows_that_are_not_objects_are_rejected_naming_the_row(api: Api) -> None:
    response = api.post(REFERENCE_DATA, json={"name": "bad", "rows": [{"a": 1}, 7]})
    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["rows[1]"]


# --- list and get -----------------------------------------------------------------------------


def test_list_shows_created_datasets_newest_first(api: Api) -> None:
    first = create_bookings(api, "first")
    second = create_bookings(api, "second")
    body = api.get(REFERENCE_DATA).json()
    assert [d["id"] for d in body["data"]] == [second["id"], first["id"]]
    assert body["pagination"] == {"total": 2, "limit": 20, "has_more": False, "next_cursor": None}


def test_list_items_equal_the_created_objects(api: Api) -> None:
    created = create_bookings(api)
    assert api.get(REFERENCE_DATA).json()["data"] == [created]


def test_get_returns_the_created_object(api: Api) -> None:
    created = create_bookings(api)
    response = api.get(created["links"]["self"])
    assert (response.status_code, response.json()) == (200, created)


def test_get_unknown_dataset_is_not_found(api: Api) -> None:
    body = error_body(api.get(f"{REFERENCE_DATA}/ref_{uuid.uuid4()}"), 404, "not_found")
    assert body["message"] == "No reference data with this ID exists for your organization."


def test_get_with_a_malformed_id_is_a_validation_error(api: Api) -> None:
    body = error_body(api.get(f"{REFERENCE_DATA}/ref_123"), 400, "validation_error")
    assert body["message"] == "Invalid reference data ID format. Must be a UUID."


def test_get_with_another_types_prefix_is_a_validation_error(api: Api) -> None:
    dataset_uuid = create_bookings(api)["id"].removeprefix("ref_")
    error_body(api.get(f"{REFERENCE_DATA}/pkg_{dataset_uuid}"), 400, "validation_error")


# --- rows -------------------------------------------------------------------------------------


def test_rows_keep_their_own_ids_or_get_row_n(api: Api) -> None:
    created = api.create(REFERENCE_DATA, {"name": "vendors", "rows": MIXED_ROWS})
    rows = api.get(created["links"]["rows"]).json()["data"]
    assert [r["id"] for r in rows] == ["V-1", "row_2", "row_3"]


def test_rows_are_listed_in_input_order_with_their_values(api: Api) -> None:
    created = create_bookings(api)
    body = api.get(created["links"]["rows"]).json()
    assert body["data"] == BOOKINGS
    assert body["pagination"] == {"total": 3, "limit": 20, "has_more": False, "next_cursor": None}


def test_rows_page_with_a_cursor(api: Api) -> None:
    created = create_bookings(api)
    first = api.get(created["links"]["rows"], params={"limit": 2}).json()
    cursor = first["pagination"]["next_cursor"]
    second = api.get(created["links"]["rows"], params={"limit": 2, "cursor": cursor}).json()
    assert [r["id"] for r in first["data"]] == ["BK-1", "BK-2"]
    assert [r["id"] for r in second["data"]] == ["BK-3"]
    assert second["pagination"]["next_cursor"] is None


def test_rows_of_an_unknown_dataset_are_not_found(api: Api) -> None:
    error_body(api.get(f"{REFERENCE_DATA}/ref_{uuid.uuid4()}/rows"), 404, "not_found")


# --- delete -----------------------------------------------------------------------------------


def test_delete_answers_deleted_true(api: Api) -> None:
    response = delete(api, create_bookings(api)["links"]["self"])
    assert (response.status_code, response.json()) == (200, {"deleted": True})


def test_deleted_dataset_is_gone(api: Api) -> None:
    created = create_bookings(api)
    delete(api, created["links"]["self"])
    error_body(api.get(created["links"]["self"]), 404, "not_found")
    assert api.get(REFERENCE_DATA).json()["data"] == []


def test_delete_of_a_dataset_in_use_is_a_conflict(api: Api) -> None:
    created = create_bookings(api)
    use_in_matching_config(api, created["id"])
    error_body(delete(api, created["links"]["self"]), 409, "conflict")
    assert api.get(created["links"]["self"]).status_code == 200


def test_delete_of_an_unknown_dataset_is_not_found(api: Api) -> None:
    error_body(delete(api, f"{REFERENCE_DATA}/ref_{uuid.uuid4()}"), 404, "not_found")


# --- tenancy ----------------------------------------------------------------------------------


def test_another_organizations_dataset_is_not_found(api: Api) -> None:
    created = create_bookings(api)
    error_body(api.other_organization().get(created["links"]["self"]), 404, "not_found")


def test_another_organizations_rows_are_not_found(api: Api) -> None:
    created = create_bookings(api)
    error_body(api.other_organization().get(created["links"]["rows"]), 404, "not_found")


def test_another_organizations_dataset_is_absent_from_the_list(api: Api) -> None:
    create_bookings(api)
    body = api.other_organization().get(REFERENCE_DATA).json()
    assert (body["data"], body["pagination"]["total"]) == ([], 0)


def test_another_organization_cannot_delete_the_dataset(api: Api) -> None:
    created = create_bookings(api)
    error_body(delete(api.other_organization(), created["links"]["self"]), 404, "not_found")
    assert api.get(created["links"]["self"]).status_code == 200


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_finite_numbers_in_rows_are_rejected_naming_the_row(api: Api, number: bytes) -> None:
    content = b'{"name": "n", "rows": [{"a": 1}, {"a": {"b": [%s]}}]}' % number
    response = api.post(REFERENCE_DATA, content=content, headers={"Content-Type": "application/json"})
    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["rows[1]"]
