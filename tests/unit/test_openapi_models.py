"""The OpenAPI response models describe exactly what the presenters build, and every operation is documented.

Presenters are the single source of the response shapes; the models only describe them. Each test
here round-trips a presenter's output through its model (so a key added, renamed or dropped on
either side fails), and checks that the document served at `/openapi.json` covers every operation.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, get_args

import pytest
from pydantic import BaseModel
from starlette.requests import Request

from packmatch.api import errors, openapi, presenters
from packmatch.api import response_models as rm
from packmatch.api.app import create_app
from packmatch.api.openapi import error_statuses, locate, success_models
from packmatch.bootstrap import build_runtime
from packmatch.domain import models as domain
from packmatch.domain import webhooks
from packmatch.errors import FieldProblem
from packmatch.store.pagination import Page
from tests.conftest import fast_settings

VALUES = rm.sample_values()


def shown(model: type[BaseModel], body: dict[str, Any]) -> None:
    """Round trip: the body validates, and dumping it by alias (as JSON, as the API sends it) gives
    the body back."""
    assert model.model_validate(body).model_dump(mode="json", by_alias=True) == body


def running_run() -> domain.PackageRun:
    return rm.accepted_run(VALUES["package_run"])


def failed_slot_run() -> domain.PackageRun:
    run: domain.PackageRun = VALUES["package_run"]
    slot = run.slots[0].model_copy(update={"status": domain.SlotStatus.ERROR, "confidence": None})
    missing = slot.model_copy(
        update={"document_type": "contract", "matching_run_id": None, "status": domain.SlotStatus.MISSING}
    )
    return run.model_copy(
        update={"status": domain.RunStatus.ERROR, "error": "slot invoice failed", "slots": (slot, missing)}
    )


def queued_matching_run() -> domain.MatchingRun:
    update = {"status": domain.MatchingRunStatus.QUEUED, "avg_confidence": None, "rows_processed": 0}
    copied: domain.MatchingRun = VALUES["matching_run"].model_copy(
        update={**update, "started_at": None, "completed_at": None}
    )
    return copied


def unmatched_result() -> domain.MatchResult:
    update = {"matched": False, "matched_reference_row_id": None, "confidence": 0.0, "candidates": ()}
    copied: domain.MatchResult = VALUES["match_result"].model_copy(
        update={**update, "extraction_row_id": None}
    )
    return copied


def explained_result() -> domain.MatchResult:
    evidence = domain.Evidence(
        strategy=domain.Strategy.NUMERIC_RANGE,
        score=0.0,
        source_value="4,250.00",
        reference_value=None,
        reason="reference value missing",
    )
    candidate = domain.Candidate(reference_row_id="BK-2", confidence=0.123456, evidence={"total": evidence})
    copied: domain.MatchResult = VALUES["match_result"].model_copy(update={"candidates": (candidate,) * 5})
    return copied


def all_events_inactive_webhook() -> webhooks.Webhook:
    update = {"events": tuple(webhooks.WebhookEvent), "is_active": False}
    copied: webhooks.Webhook = VALUES["webhook"].model_copy(update=update)
    return copied


def retrying_delivery() -> webhooks.WebhookDelivery:
    update = {"status": webhooks.DeliveryStatus.PENDING, "attempts": 2, "last_status_code": 503,
              "last_error": "HTTP 503", "next_attempt_at": VALUES["webhook_delivery"].created_at,
              "delivered_at": None}  # fmt: skip
    copied: webhooks.WebhookDelivery = VALUES["webhook_delivery"].model_copy(update=update)
    return copied


def failed_delivery() -> webhooks.WebhookDelivery:
    update = {"status": webhooks.DeliveryStatus.FAILED, "attempts": 5, "last_status_code": None,
              "last_error": "connection refused", "next_attempt_at": None, "delivered_at": None}  # fmt: skip
    copied: webhooks.WebhookDelivery = VALUES["webhook_delivery"].model_copy(update=update)
    return copied


def test_only_the_created_webhook_shows_its_secret() -> None:
    assert "secret" not in presenters.webhook(VALUES["webhook"])
    assert presenters.created_webhook(VALUES["webhook"])["secret"] == VALUES["webhook"].secret


@pytest.mark.parametrize(
    ("model", "present", "value"),
    [
        (rm.ReferenceData, presenters.reference_data, VALUES["reference_data"]),
        (rm.ReferenceData, presenters.reference_data,
         VALUES["reference_data"].model_copy(update={"source_type": "csv", "columns": (), "row_count": 0})),
        (rm.ReferenceRow, presenters.reference_row, VALUES["reference_row"]),
        (rm.MatchingConfig, presenters.matching_config, VALUES["matching_config"]),
        (rm.PackageConfig, presenters.package_config, VALUES["package_config"]),
        (rm.PackageRun, presenters.package_run, VALUES["package_run"]),
        (rm.PackageRun, presenters.package_run, running_run()),
        (rm.PackageRun, presenters.package_run, failed_slot_run()),
        (rm.MatchingRun, presenters.matching_run, VALUES["matching_run"]),
        (rm.MatchingRun, presenters.matching_run, queued_matching_run()),
        (rm.MatchResult, presenters.match_result, VALUES["match_result"]),
        (rm.MatchResult, presenters.match_result, unmatched_result()),
        (rm.MatchResult, presenters.match_result, explained_result()),
        (rm.Webhook, presenters.webhook, VALUES["webhook"]),
        (rm.Webhook, presenters.webhook, all_events_inactive_webhook()),
        (rm.CreatedWebhook, presenters.created_webhook, VALUES["webhook"]),
        (rm.WebhookDelivery, presenters.webhook_delivery, VALUES["webhook_delivery"]),
        (rm.WebhookDelivery, presenters.webhook_delivery, retrying_delivery()),
        (rm.WebhookDelivery, presenters.webhook_delivery, failed_delivery()),
    ],
)  # fmt: skip
def test_presenter_output_is_its_documented_model(model: type[BaseModel], present: Any, value: Any) -> None:
    shown(model, present(value))


@pytest.mark.parametrize(
    ("model", "present", "value"),
    [
        (rm.ReferenceDataList, presenters.reference_data, VALUES["reference_data"]),
        (rm.ReferenceRowList, presenters.reference_row, VALUES["reference_row"]),
        (rm.MatchingConfigList, presenters.matching_config, VALUES["matching_config"]),
        (rm.PackageConfigList, presenters.package_config, VALUES["package_config"]),
        (rm.PackageRunList, presenters.package_run, VALUES["package_run"]),
        (rm.MatchResultList, presenters.match_result, VALUES["match_result"]),
        (rm.WebhookList, presenters.webhook, VALUES["webhook"]),
        (rm.WebhookDeliveryList, presenters.webhook_delivery, VALUES["webhook_delivery"]),
    ],
)
def test_a_page_is_its_documented_list_model(model: type[BaseModel], present: Any, value: Any) -> None:
    shown(model, presenters.page(Page(items=[value] * 2, total=7, limit=2, next_cursor="abc"), present))


def test_an_empty_last_page_is_a_list_model() -> None:
    shown(rm.PackageRunList, presenters.page(Page(items=[], total=0, limit=20, next_cursor=None), dict))


def test_a_reference_row_keeps_its_columns() -> None:
    row = rm.ReferenceRow.model_validate(presenters.reference_row(VALUES["reference_row"]))
    assert row.model_extra == {"reference": "ABC1234567", "amount": 4250.0}


def test_a_presenter_key_the_model_lacks_fails_the_round_trip() -> None:
    body = {**presenters.package_run(VALUES["package_run"]), "extra_key": 1}
    with pytest.raises(AssertionError):
        shown(rm.PackageRun, body)
    assert "extra_key" not in rm.PackageRun.model_validate(body).model_dump()  # clients tolerate it


@pytest.fixture
def request_() -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/v1/x",
        "headers": [],
        "query_string": b"",
        "state": {},
    }
    request = Request(scope)
    request.state.request_id = f"req_{uuid.uuid4()}"
    return request


@pytest.mark.parametrize("code", sorted(errors.STATUS_BY_CODE))
def test_every_error_the_api_sends_is_the_documented_envelope(request_: Request, code: str) -> None:
    response = errors.error_response(request_, code, "Something.", [FieldProblem("a[0].b", "Bad.")])
    rm.ErrorBody.model_validate_json(bytes(response.body))


def test_the_documented_error_codes_are_the_ones_the_api_sends() -> None:
    assert set(get_args(rm.ErrorCode)) == set(errors.STATUS_BY_CODE)


@pytest.mark.parametrize("entry", list(rm.examples().items()), ids=lambda entry: str(entry[0]))
def test_every_example_is_its_model(entry: tuple[Any, dict[str, Any]]) -> None:
    key, example = entry
    model = key[0] if isinstance(key, tuple) else key
    shown(model, example)


# --- the document ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def document() -> Iterator[dict[str, Any]]:
    runtime = build_runtime(fast_settings())
    yield create_app(runtime.services, runtime.settings).openapi()
    runtime.close()


def operations(document: dict[str, Any], prefix: str = "/v1/") -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        if path.startswith(prefix)
        for method, operation in item.items()
    ]


def test_every_api_operation_documents_a_success_body_with_an_example(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        success = {k: v for k, v in operation["responses"].items() if k.startswith("2")}
        assert success, (method, path)
        for response in success.values():
            media = response["content"]["application/json"]
            assert media["schema"]["$ref"].startswith("#/components/schemas/"), (method, path)
            assert "example" in media, (method, path)


def test_every_error_response_is_the_envelope(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document, prefix="/"):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_fastapis_422_validation_schema_is_gone(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        if method == "get":
            assert "422" not in operation["responses"], (method, path)


def test_api_operations_need_a_bearer_key_and_ops_do_not(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key `pmk_…` (`packmatch keys create`).",
    }
    for method, path, operation in operations(document, prefix="/"):
        expected: list[dict[str, list[str]]] | None = [{"ApiKey": []}] if path.startswith("/v1/") else None
        assert operation.get("security") == expected, (method, path)


def test_every_response_documents_its_request_id(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document, prefix="/"):
        for status, response in operation["responses"].items():
            assert response["headers"]["X-Request-Id"]["required"] is True, (method, path, status)


def test_writes_take_an_idempotency_key_and_reads_do_not(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        names = [p["name"] for p in operation.get("parameters", [])]
        assert ("Idempotency-Key" in names) == (method in {"post", "put", "delete"}), (method, path)


def test_creates_document_their_location(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status in {"201", "202"} & set(operation["responses"]):
            headers = operation["responses"][status]["headers"]
            if path in openapi.UNLOCATED:
                assert "Location" not in headers, (method, path)
            else:
                assert headers["Location"]["required"] is True, (method, path)


def test_a_create_links_to_the_operations_on_what_it_created(document: dict[str, Any]) -> None:
    links = document["paths"]["/v1/matching/reference-data"]["post"]["responses"]["201"]["links"]
    targets = {link["operationId"] for link in links.values()}
    by_id = document["paths"]["/v1/matching/reference-data/{dataset_id}"]
    assert {by_id["get"]["operationId"], by_id["delete"]["operationId"]} <= targets


def test_metrics_are_documented_as_text(document: dict[str, Any]) -> None:
    content = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain"]


# --- the rules, for routes that do not exist yet --------------------------------------------------


def test_an_item_put_is_documented_as_the_resource() -> None:
    assert success_models(locate("/v1/matching/configs/{any_name}"), "put") == {200: rm.MatchingConfig}


def test_a_webhook_create_is_documented_with_its_secret() -> None:
    assert success_models(locate("/v1/webhooks"), "post") == {201: rm.CreatedWebhook}


def test_nested_delivery_operations_are_documented(document: dict[str, Any]) -> None:
    item = document["paths"]["/v1/webhooks/{webhook_id}/deliveries/{delivery_id}"]["get"]
    redeliver = document["paths"]["/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"]["post"]
    assert item["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/WebhookDelivery"
    )
    assert redeliver["responses"]["202"]["headers"]["Location"]["required"] is True
    patterns = {p["name"]: p["schema"]["pattern"] for p in redeliver["parameters"] if p["in"] == "path"}
    assert patterns["webhook_id"].startswith("^(whk_)?")
    assert patterns["delivery_id"].startswith("^(whd_)?")
    assert {"404", "409", "422"} <= set(redeliver["responses"])


def test_an_item_delete_is_documented_as_deleted() -> None:
    assert success_models(locate("/v1/matching/packages/runs/{run_id}"), "delete") == {200: rm.Deleted}


def test_a_run_create_is_documented_as_202_or_200() -> None:
    assert success_models(locate("/v1/matching/packages/runs"), "post") == {
        202: rm.PackageRun,
        200: rm.PackageRun,
    }


def test_an_unknown_resource_has_no_success_model() -> None:
    assert success_models(locate("/v1/unknown"), "get") == {}


def test_a_delete_can_conflict_replay_mismatch_and_miss() -> None:
    assert {404, 409, 422} <= set(error_statuses(locate("/v1/matching/configs/{config_id}"), "delete"))


def test_a_body_in_several_media_types_can_be_unsupported() -> None:
    assert 415 in error_statuses(locate("/v1/matching/reference-data"), "post", negotiated=True)


def test_a_list_cannot_miss_or_conflict() -> None:
    statuses = error_statuses(locate("/v1/matching/packages/runs"), "get")
    assert statuses == [400, 401, 403, 429, 500, 503]


def test_exactly_the_single_run_and_result_answers_declare_their_etag(document: dict[str, Any]) -> None:
    declared = {
        (method, path)
        for method, path, operation in operations(document)
        if "ETag" in operation["responses"].get("200", {}).get("headers", {})
    }
    assert declared == openapi.ETAGGED
    assert {path for _, path in declared} <= set(document["paths"])
