"""SPEC §2 conventions that hold on every endpoint: auth, scopes, the error envelope, request ids, ids."""

from __future__ import annotations

import re
import uuid

import pytest

from tests.e2e.conftest import ENVELOPE_KEYS, Api, error_body

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
REQUEST_ID = re.compile(r"^req_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
PACKAGE_CONFIGS = "/v1/matching/packages/configs"


def read_only(api: Api) -> Api:
    """A second key of the same organization (acme) with only the `read` scope."""
    return api.other_organization("acme", scopes="read")


# --- operations endpoints ----------------------------------------------------------------------


def test_healthz_answers_ok_without_a_key(api: Api) -> None:
    response = api.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_reports_database_and_broker_ok_without_a_key(api: Api) -> None:
    response = api.client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_docs_page_is_served_without_a_key(api: Api) -> None:
    response = api.client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


def test_openapi_document_lists_the_resource_paths_without_a_key(api: Api) -> None:
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    paths = set(response.json()["paths"])
    assert {
        "/v1/matching/reference-data",
        "/v1/matching/configs",
        PACKAGE_CONFIGS,
        "/v1/matching/packages/runs",
        "/v1/matching/runs/{matching_run_id}",
    } <= paths


# --- authentication and scopes ----------------------------------------------------------------


def test_request_without_a_key_is_unauthorized(api: Api) -> None:
    body = error_body(api.client.get(PACKAGE_CONFIGS), 401, "unauthorized")
    assert body["message"] == "Missing or invalid API key."


def test_request_with_an_unknown_key_is_unauthorized(api: Api) -> None:
    response = api.client.get(PACKAGE_CONFIGS, headers={"Authorization": "Bearer pmk_not-a-real-key"})
    error_body(response, 401, "unauthorized")


def test_request_with_a_non_bearer_scheme_is_unauthorized(api: Api) -> None:
    response = api.client.get(PACKAGE_CONFIGS, headers={"Authorization": f"Basic {api.key}"})
    error_body(response, 401, "unauthorized")


def test_request_with_a_revoked_key_is_unauthorized(api: Api) -> None:
    other = api.other_organization()
    accounts = api.runtime.services.accounts
    [(_, record)] = accounts.list_keys("globex")
    accounts.revoke(record.id)
    error_body(other.get(PACKAGE_CONFIGS), 401, "unauthorized")


def test_read_only_key_can_list(api: Api) -> None:
    response = read_only(api).get(PACKAGE_CONFIGS)
    assert response.status_code == 200
    assert response.json()["data"] == []


def test_read_only_key_cannot_post(api: Api) -> None:
    response = read_only(api).post("/v1/matching/reference-data", json={"name": "x", "rows": []})
    body = error_body(response, 403, "insufficient_scope")
    assert body["message"] == "This API key lacks the 'write' scope."


def test_read_only_key_cannot_delete(api: Api) -> None:
    reader = read_only(api)
    path = f"/v1/matching/reference-data/ref_{uuid.uuid4()}"
    error_body(api.client.delete(path, headers=reader.headers), 403, "insufficient_scope")


def test_read_only_key_post_creates_nothing(api: Api) -> None:
    read_only(api).post("/v1/matching/reference-data", json={"name": "x", "rows": [{"a": 1}]})
    assert api.get("/v1/matching/reference-data").json()["pagination"]["total"] == 0


# --- the error envelope -----------------------------------------------------------------------


def test_error_envelope_has_exactly_the_spec_keys(api: Api) -> None:
    body = error_body(api.get(f"{PACKAGE_CONFIGS}/pkg_{uuid.uuid4()}"), 404, "not_found")
    assert set(body) == ENVELOPE_KEYS


def test_error_envelope_describes_a_missing_resource(api: Api) -> None:
    path = f"{PACKAGE_CONFIGS}/pkg_{uuid.uuid4()}"
    body = error_body(api.get(path), 404, "not_found")
    assert body["error"] == "Not Found"
    assert body["message"] == "No package config with this ID exists for your organization."
    assert body["retryable"] is False
    assert body["path"] == path
    assert body["details"] == []


def test_error_envelope_timestamp_is_utc_with_milliseconds(api: Api) -> None:
    body = error_body(api.get(f"{PACKAGE_CONFIGS}/pkg_{uuid.uuid4()}"), 404, "not_found")
    assert TIMESTAMP.match(body["timestamp"]), body["timestamp"]


def test_error_request_id_equals_the_x_request_id_header(api: Api) -> None:
    response = api.client.get(PACKAGE_CONFIGS)
    body = error_body(response, 401, "unauthorized")
    assert REQUEST_ID.match(body["request_id"]), body["request_id"]
    assert response.headers["X-Request-Id"] == body["request_id"]


def test_validation_error_names_the_nested_field(api: Api) -> None:
    config_id = api.shipment_world()
    mc_id = api.get(f"{PACKAGE_CONFIGS}/{config_id}").json()["document_type_configs"][0]["matching_config_id"]
    slots = [
        {"document_type": "invoice", "matching_config_id": mc_id, "presence": "required"},
        {"document_type": "delivery_note", "matching_config_id": mc_id, "presence": "sometimes"},
    ]
    response = api.post(PACKAGE_CONFIGS, json={"name": "bundle", "document_type_configs": slots})
    body = error_body(response, 400, "validation_error")
    assert body["error"] == "Bad Request"
    assert [d["field"] for d in body["details"]] == ["document_type_configs[1].presence"]


def test_validation_error_names_a_missing_field(api: Api) -> None:
    response = api.post("/v1/matching/reference-data", json={"rows": []})
    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["name"]


def test_validation_error_names_an_unknown_field(api: Api) -> None:
    response = api.post("/v1/matching/reference-data", json={"name": "x", "rows": [], "colour": "red"})
    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["colour"]


def test_malformed_json_is_a_validation_error_on_the_body(api: Api) -> None:
    response = api.post(
        "/v1/matching/reference-data",
        content=b'{"name": "bookings", "rows": [',
        headers={"Content-Type": "application/json"},
    )
    body = error_body(response, 400, "validation_error")
    assert body["details"] == [{"field": "body", "message": "The body is not valid JSON."}]


def test_malformed_json_without_a_key_is_unauthorized(api: Api) -> None:
    response = api.client.post(
        "/v1/matching/reference-data",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    error_body(response, 401, "unauthorized")


def test_unknown_route_is_not_found_in_the_envelope(api: Api) -> None:
    body = error_body(api.get("/v1/matching/nothing-here"), 404, "not_found")
    assert body["message"] == "No route matches GET /v1/matching/nothing-here."
    assert body["path"] == "/v1/matching/nothing-here"


def test_wrong_method_is_405_in_the_envelope(api: Api) -> None:
    response = api.client.put(PACKAGE_CONFIGS, headers=api.headers, json={})
    body = error_body(response, 405, "method_not_allowed")
    assert body["error"] == "Method Not Allowed"
    assert "POST" in response.headers["Allow"]


def test_body_over_the_size_limit_is_413(api: Api) -> None:
    oversized = b"x" * (api.runtime.settings.max_body_bytes + 1)
    response = api.post(
        "/v1/matching/reference-data", content=oversized, headers={"Content-Type": "application/json"}
    )
    body = error_body(response, 413, "payload_too_large")
    assert response.headers["X-Request-Id"] == body["request_id"]


# --- request ids on every response --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/docs", "/openapi.json", PACKAGE_CONFIGS])
def test_every_response_carries_a_request_id(api: Api, path: str) -> None:
    response = api.get(path)
    assert response.status_code == 200
    assert REQUEST_ID.match(response.headers["X-Request-Id"])


def test_request_ids_differ_between_requests(api: Api) -> None:
    first = api.get("/healthz").headers["X-Request-Id"]
    second = api.get("/healthz").headers["X-Request-Id"]
    assert first != second


# --- path ids ---------------------------------------------------------------------------------


def test_path_id_that_is_not_a_uuid_is_a_validation_error(api: Api) -> None:
    body = error_body(api.get(f"{PACKAGE_CONFIGS}/pkg_not-a-uuid"), 400, "validation_error")
    assert body["message"] == "Invalid config ID format. Must be a UUID."


def test_path_id_with_another_types_prefix_is_a_validation_error(api: Api) -> None:
    body = error_body(api.get(f"{PACKAGE_CONFIGS}/mc_{uuid.uuid4()}"), 400, "validation_error")
    assert body["message"] == "Invalid config ID format. Must be a UUID."


def test_path_id_given_as_a_bare_uuid_is_accepted(api: Api) -> None:
    config_id = api.shipment_world()
    response = api.get(f"{PACKAGE_CONFIGS}/{config_id.removeprefix('pkg_')}")
    assert response.status_code == 200
    assert response.json()["id"] == config_id


def test_path_id_without_hyphens_is_a_validation_error(api: Api) -> None:
    response = api.get(f"{PACKAGE_CONFIGS}/pkg_{uuid.uuid4().hex}")
    error_body(response, 400, "validation_error")


def test_malformed_json_with_a_read_only_key_is_insufficient_scope(api: Api) -> None:
    response = read_only(api).post(
        "/v1/matching/reference-data", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    error_body(response, 403, "insufficient_scope")


@pytest.mark.parametrize(
    "raw",
    [
        "pkg_a1b2_3d4-e5f6-4890-abcd-ef1234567890",
        "pkg_a1b2c3d4e5f64890abcdef1234567890----",
        "pkg_+1b2c3d4-e5f6-4890-abcd-ef1234567890",
        "pkg_ a1b2c3d4-e5f6-4890-abcd-ef123456789",
    ],
)
def test_path_id_that_only_resembles_a_uuid_is_a_validation_error(api: Api, raw: str) -> None:
    error_body(api.get(f"{PACKAGE_CONFIGS}/{raw}"), 400, "validation_error")
