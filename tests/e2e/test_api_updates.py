"""PUT and DELETE of matching configs and package configs (SPEC §3), and runs keeping their snapshot."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker
from fastapi.testclient import TestClient

from packmatch.api.app import create_app
from packmatch.bootstrap import Runtime
from packmatch.domain.ids import Kind, parse_id
from packmatch.services import configs as configs_service
from packmatch.store.tables import match_results, matching_runs, package_runs, run_slots
from packmatch.worker.runner import InProcessWorker
from tests.e2e.conftest import BOOKINGS, GOOD_INVOICE, INVOICE_MAPPINGS, Api, error_body, invoice

REFERENCE_DATA = "/v1/matching/reference-data"
MATCHING_CONFIGS = "/v1/matching/configs"
PACKAGE_CONFIGS = "/v1/matching/packages/configs"
RUNS = "/v1/matching/packages/runs"
GOOD_CONFIDENCE = 0.9833  # GOOD_INVOICE against BK-1 with INVOICE_MAPPINGS (see test_api_runs)
LATER = datetime(2030, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
LATER_SHOWN = "2030-01-02T03:04:05.678Z"
CARRIER_ONLY = [{"source": "carrier", "target": "carrier_name", "strategy": "exact", "weight": 1}]


@pytest.fixture
def api(
    request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime], sqlite_url: str, start_api: Any
) -> Api:
    """The embedded stack on SQLite, or (for tests marked ON_BOTH_DATABASES) also on PostgreSQL."""
    result: Api = start_api(make_runtime(database_url=database_url(request, sqlite_url)))
    return result


def database_url(request: pytest.FixtureRequest, sqlite_url: str) -> str:
    postgres = getattr(request, "param", "") == "postgres"
    return str(request.getfixturevalue("postgres_url")) if postgres else sqlite_url


BOTH = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
ON_BOTH_DATABASES = pytest.mark.parametrize("api", BOTH, indirect=True)
PAUSED_ON_BOTH_DATABASES = pytest.mark.parametrize("paused", BOTH, indirect=True)


def fields(body: dict[str, Any]) -> list[str]:
    return [d["field"] for d in body["details"]]


def put(api: Api, path: str, body: dict[str, Any]) -> Any:
    return api.client.put(path, json=body, headers=api.headers)


def delete(api: Api, path: str) -> Any:
    return api.client.delete(path, headers=api.headers)


def replaced(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = put(api, path, body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def bookings(api: Api) -> str:
    return str(api.create(REFERENCE_DATA, {"name": "bookings", "rows": BOOKINGS})["id"])


def matching_body(**overrides: Any) -> dict[str, Any]:
    return {"name": "Invoice to booking", "field_mappings": INVOICE_MAPPINGS, **overrides}


def matching_config(api: Api, **overrides: Any) -> dict[str, Any]:
    return api.create(MATCHING_CONFIGS, matching_body(reference_data_id=bookings(api), **overrides))


def slot(document_type: str, mc_id: str, presence: str = "required") -> dict[str, str]:
    return {"document_type": document_type, "matching_config_id": mc_id, "presence": presence}


def package_body(mc_id: str, **overrides: Any) -> dict[str, Any]:
    slots = [slot("invoice", mc_id), slot("delivery_note", mc_id, "expected")]
    return {"name": "Shipment bundle", "document_type_configs": slots, **overrides}


def package_config(api: Api, mc_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    return api.create(PACKAGE_CONFIGS, package_body(mc_id or matching_config(api)["id"], **overrides))


def final_run(api: Api, pkg_id: str) -> dict[str, Any]:
    response = api.run(pkg_id, {"invoice": [invoice()]})
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def without_volatile(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in {"version", "updated_at"}}


# --- matching configs: PUT --------------------------------------------------------------------


def test_put_matching_config_replaces_name_mappings_and_threshold(api: Api) -> None:
    created = matching_config(api)
    body = matching_body(name="Carrier only", field_mappings=CARRIER_ONLY, threshold=0.5)
    updated = replaced(api, created["links"]["self"], body)
    assert (updated["name"], updated["threshold"]) == ("Carrier only", 0.5)
    assert updated["field_mappings"] == [{**CARRIER_ONLY[0], "options": {}, "missing": "mismatch"}]
    assert {k: updated[k] for k in ("id", "reference_data_id", "created_at", "links")} == {
        k: created[k] for k in ("id", "reference_data_id", "created_at", "links")
    }


@ON_BOTH_DATABASES
def test_put_matching_config_bumps_the_version_each_time(api: Api) -> None:
    path = matching_config(api)["links"]["self"]
    versions = [replaced(api, path, matching_body(threshold=t))["version"] for t in (0.5, 0.6)]
    assert versions == [2, 3]


def test_concurrent_puts_that_read_the_same_version_still_get_their_own(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On SQLite a read takes no lock: hold both PUTs after they have read version 1, then let
    # them write. (On PostgreSQL the second PUT would wait for the first one's row lock instead.)
    path = matching_config(api)["links"]["self"]
    both_have_read = threading.Barrier(2, timeout=30)
    check = configs_service.check_mappings

    def check_after_both_read(*args: Any) -> None:
        both_have_read.wait()
        check(*args)

    monkeypatch.setattr(configs_service, "check_mappings", check_after_both_read)
    with ThreadPoolExecutor(2) as pool:
        responses = list(pool.map(lambda name: put(api, path, matching_body(name=name)), ["a", "b"]))
    assert sorted(r.json()["version"] for r in responses) == [2, 3]
    assert api.get(path).json()["version"] == 3


def test_put_matching_config_sets_updated_at_and_keeps_created_at(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = matching_config(api)
    monkeypatch.setattr(api.runtime.services.configs, "clock", lambda: LATER)
    updated = replaced(api, created["links"]["self"], matching_body())
    assert (updated["created_at"], updated["updated_at"]) == (created["created_at"], LATER_SHOWN)


def test_put_matching_config_is_what_get_then_returns(api: Api) -> None:
    path = matching_config(api)["links"]["self"]
    updated = replaced(api, path, matching_body(name="Renamed"))
    assert api.get(path).json() == updated
    assert api.get(MATCHING_CONFIGS).json()["data"] == [updated]


def test_put_matching_config_without_threshold_resets_it_to_the_default(api: Api) -> None:
    created = matching_config(api, threshold=0.5)
    assert replaced(api, created["links"]["self"], matching_body())["threshold"] == 0.85


@pytest.mark.parametrize("form", ["prefixed", "bare"])
def test_put_matching_config_may_repeat_its_reference_data_id(api: Api, form: str) -> None:
    created = matching_config(api)
    ref_id = created["reference_data_id"] if form == "prefixed" else created["reference_data_id"][4:]
    updated = replaced(api, created["links"]["self"], matching_body(reference_data_id=ref_id))
    assert updated["reference_data_id"] == created["reference_data_id"]


def test_put_matching_config_cannot_change_its_reference_data(api: Api) -> None:
    created = matching_config(api)
    other = bookings(api)
    response = put(api, created["links"]["self"], matching_body(reference_data_id=other))
    body = error_body(response, 400, "validation_error")
    assert fields(body) == ["reference_data_id"]
    assert "cannot change" in body["details"][0]["message"]


def test_put_matching_config_with_a_malformed_reference_data_id_names_it(api: Api) -> None:
    path = matching_config(api)["links"]["self"]
    body = error_body(put(api, path, matching_body(reference_data_id="ref_x")), 400, "validation_error")
    assert fields(body) == ["reference_data_id"]


def test_put_matching_config_target_must_be_a_dataset_column(api: Api) -> None:
    path = matching_config(api)["links"]["self"]
    mappings = [{**CARRIER_ONLY[0], "target": "ship_name"}]
    response = put(api, path, matching_body(field_mappings=mappings))
    assert fields(error_body(response, 400, "validation_error")) == ["field_mappings[0].target"]


def test_put_matching_config_options_are_validated_per_strategy(api: Api) -> None:
    path = matching_config(api)["links"]["self"]
    mappings = [{**INVOICE_MAPPINGS[1], "options": {"min_similarity": 2}}]
    response = put(api, path, matching_body(field_mappings=mappings))
    body = error_body(response, 400, "validation_error")
    assert fields(body) == ["field_mappings[0].options.min_similarity"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"field_mappings": [{**CARRIER_ONLY[0], "weight": 0}]}, "field_mappings[0].weight"),
        ({"field_mappings": []}, "field_mappings"),
        ({"field_mappings": CARRIER_ONLY * 101}, "field_mappings"),
        ({"threshold": 1.5}, "threshold"),
        ({"name": " "}, "name"),
        ({"version": 7}, "version"),
    ],
)
def test_put_matching_config_body_is_validated_like_create(
    api: Api, change: dict[str, Any], field: str
) -> None:
    path = matching_config(api)["links"]["self"]
    assert fields(error_body(put(api, path, {**matching_body(), **change}), 400, "validation_error")) == [
        field
    ]


def test_rejected_put_leaves_the_matching_config_unchanged(api: Api) -> None:
    created = matching_config(api)
    put(api, created["links"]["self"], matching_body(reference_data_id=bookings(api), name="x"))
    assert api.get(created["links"]["self"]).json() == created


def test_put_unknown_matching_config_is_not_found(api: Api) -> None:
    bookings(api)
    body = error_body(put(api, f"{MATCHING_CONFIGS}/mc_{uuid.uuid4()}", matching_body()), 404, "not_found")
    assert body["message"] == "No matching config with this ID exists for your organization."


def test_put_another_organizations_matching_config_is_not_found(api: Api) -> None:
    created = matching_config(api)
    error_body(put(api.other_organization(), created["links"]["self"], matching_body()), 404, "not_found")
    assert api.get(created["links"]["self"]).json() == created


# --- matching configs: DELETE -----------------------------------------------------------------


def test_delete_matching_config_answers_deleted_true(api: Api) -> None:
    response = delete(api, matching_config(api)["links"]["self"])
    assert (response.status_code, response.json()) == (200, {"deleted": True})


def test_deleted_matching_config_is_gone(api: Api) -> None:
    path = matching_config(api)["links"]["self"]
    delete(api, path)
    error_body(api.get(path), 404, "not_found")
    assert api.get(MATCHING_CONFIGS).json()["pagination"]["total"] == 0


def test_deleting_a_matching_config_frees_its_reference_data(api: Api) -> None:
    created = matching_config(api)
    delete(api, created["links"]["self"])
    assert delete(api, f"{REFERENCE_DATA}/{created['reference_data_id']}").status_code == 200


@ON_BOTH_DATABASES
def test_delete_matching_config_in_use_is_a_conflict_naming_the_package_configs(api: Api) -> None:
    mc = matching_config(api)
    first, second = package_config(api, mc["id"]), package_config(api, mc["id"])
    body = error_body(delete(api, mc["links"]["self"]), 409, "conflict")
    assert body["message"] == (
        f"This matching config is used by 2 package configs ({first['id']}, {second['id']}); "
        "remove it from their document_type_configs or delete them first."
    )
    assert api.get(mc["links"]["self"]).status_code == 200


def test_delete_matching_config_conflict_counts_the_package_configs_it_does_not_name(api: Api) -> None:
    mc_id = matching_config(api)["id"]
    for _ in range(7):
        package_config(api, mc_id)
    body = error_body(delete(api, f"{MATCHING_CONFIGS}/{mc_id}"), 409, "conflict")
    assert "used by 7 package configs" in body["message"]
    assert " and 2 more)" in body["message"]


def test_matching_config_can_be_deleted_once_no_package_config_uses_it(api: Api) -> None:
    mc = matching_config(api)
    pkg = package_config(api, mc["id"])
    replaced(api, pkg["links"]["self"], package_body(matching_config(api)["id"]))
    assert delete(api, mc["links"]["self"]).status_code == 200


def test_delete_unknown_matching_config_is_not_found(api: Api) -> None:
    error_body(delete(api, f"{MATCHING_CONFIGS}/mc_{uuid.uuid4()}"), 404, "not_found")


def test_delete_another_organizations_matching_config_is_not_found(api: Api) -> None:
    path = matching_config(api)["links"]["self"]
    error_body(delete(api.other_organization(), path), 404, "not_found")
    assert api.get(path).status_code == 200


def test_delete_matching_config_with_a_malformed_id_is_a_validation_error(api: Api) -> None:
    error_body(delete(api, f"{MATCHING_CONFIGS}/pkg_{uuid.uuid4()}"), 400, "validation_error")


# --- package configs: PUT ---------------------------------------------------------------------


@ON_BOTH_DATABASES
def test_put_package_config_replaces_name_slots_and_pass_criteria(api: Api) -> None:
    created = package_config(api)
    mc_id = matching_config(api)["id"]
    criteria = {"all_required_matched": False, "min_confidence": 0.7, "allow_review_on_expected": False}
    body = package_body(mc_id, name="Invoice only", document_type_configs=[slot("bill", mc_id)])
    updated = replaced(api, created["links"]["self"], {**body, "pass_criteria": criteria})
    assert without_volatile(updated) == {
        **without_volatile(created),
        "name": "Invoice only",
        "document_type_configs": [slot("bill", mc_id)],
        "pass_criteria": criteria,
    }
    assert updated["version"] == 2


def test_put_package_config_sets_updated_at_and_keeps_created_at(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = package_config(api)
    mc_id = created["document_type_configs"][0]["matching_config_id"]
    monkeypatch.setattr(api.runtime.services.configs, "clock", lambda: LATER)
    updated = replaced(api, created["links"]["self"], package_body(mc_id))
    assert (updated["created_at"], updated["updated_at"]) == (created["created_at"], LATER_SHOWN)


def test_put_package_config_is_what_get_then_returns(api: Api) -> None:
    created = package_config(api)
    mc_id = created["document_type_configs"][0]["matching_config_id"]
    updated = replaced(api, created["links"]["self"], package_body(mc_id, name="Renamed"))
    assert api.get(created["links"]["self"]).json() == updated
    assert api.get(PACKAGE_CONFIGS).json()["data"] == [updated]


def test_put_package_config_without_pass_criteria_resets_them_to_the_defaults(api: Api) -> None:
    created = package_config(api, pass_criteria={"min_confidence": 0.9, "all_required_matched": False})
    mc_id = created["document_type_configs"][0]["matching_config_id"]
    updated = replaced(api, created["links"]["self"], package_body(mc_id))
    assert updated["pass_criteria"] == {
        "all_required_matched": True,
        "min_confidence": 0.0,
        "allow_review_on_expected": True,
    }


def test_put_package_config_duplicate_document_type_names_the_second_slot(api: Api) -> None:
    created = package_config(api)
    mc_id = created["document_type_configs"][0]["matching_config_id"]
    slots = [slot("invoice", mc_id), slot("invoice", mc_id, "optional")]
    response = put(api, created["links"]["self"], package_body(mc_id, document_type_configs=slots))
    body = error_body(response, 400, "validation_error")
    assert fields(body) == ["document_type_configs[1].document_type"]


def test_put_package_config_with_more_than_50_slots_is_rejected(api: Api) -> None:
    created = package_config(api)
    mc_id = created["document_type_configs"][0]["matching_config_id"]
    slots = [slot(f"type_{n}", mc_id) for n in range(51)]
    response = put(api, created["links"]["self"], package_body(mc_id, document_type_configs=slots))
    assert fields(error_body(response, 400, "validation_error")) == ["document_type_configs"]


def test_put_package_config_with_an_unknown_matching_config_is_not_found(api: Api) -> None:
    created = package_config(api)
    unknown = f"mc_{uuid.uuid4()}"
    body = error_body(put(api, created["links"]["self"], package_body(unknown)), 404, "not_found")
    assert body["message"] == f"No matching config with ID {unknown} exists for your organization."
    assert api.get(created["links"]["self"]).json() == created


def test_put_package_config_with_another_organizations_matching_config_is_not_found(api: Api) -> None:
    other = api.other_organization()
    theirs = other.create(MATCHING_CONFIGS, matching_body(reference_data_id=bookings(other)))
    created = package_config(api)
    error_body(put(api, created["links"]["self"], package_body(theirs["id"])), 404, "not_found")


def test_put_unknown_package_config_is_not_found(api: Api) -> None:
    mc_id = matching_config(api)["id"]
    body = error_body(
        put(api, f"{PACKAGE_CONFIGS}/pkg_{uuid.uuid4()}", package_body(mc_id)), 404, "not_found"
    )
    assert body["message"] == "No package config with this ID exists for your organization."


def test_put_another_organizations_package_config_is_not_found(api: Api) -> None:
    created = package_config(api)
    mc_id = created["document_type_configs"][0]["matching_config_id"]
    other = api.other_organization()
    error_body(put(other, created["links"]["self"], package_body(mc_id)), 404, "not_found")
    assert api.get(created["links"]["self"]).json() == created


# --- package configs: DELETE ------------------------------------------------------------------


def test_delete_package_config_answers_deleted_true(api: Api) -> None:
    response = delete(api, package_config(api)["links"]["self"])
    assert (response.status_code, response.json()) == (200, {"deleted": True})


def test_deleted_package_config_is_gone(api: Api) -> None:
    path = package_config(api)["links"]["self"]
    delete(api, path)
    error_body(api.get(path), 404, "not_found")
    assert api.get(PACKAGE_CONFIGS).json()["pagination"]["total"] == 0


def test_deleting_a_package_config_deletes_its_runs(api: Api) -> None:
    pkg = package_config(api)
    run = final_run(api, pkg["id"])
    delete(api, pkg["links"]["self"])
    error_body(api.get(run["links"]["self"]), 404, "not_found")
    body = api.get(RUNS).json()
    assert (body["data"], body["pagination"]["total"]) == ([], 0)


@ON_BOTH_DATABASES
def test_deleting_a_package_config_deletes_its_matching_runs_and_results(api: Api) -> None:
    pkg = package_config(api)
    matching_run_id = final_run(api, pkg["id"])["document_results"][0]["matching_run_id"]
    delete(api, pkg["links"]["self"])
    error_body(api.get(f"/v1/matching/runs/{matching_run_id}"), 404, "not_found")
    assert table_counts(api) == {"package_runs": 0, "run_slots": 0, "matching_runs": 0, "match_results": 0}


def test_deleting_a_package_config_keeps_the_runs_of_other_configs(api: Api) -> None:
    first = package_config(api)
    second = package_config(api, first["document_type_configs"][0]["matching_config_id"])
    kept = final_run(api, second["id"])
    final_run(api, first["id"])
    delete(api, first["links"]["self"])
    assert [r["id"] for r in api.get(RUNS).json()["data"]] == [kept["id"]]


def test_deleting_a_package_config_lets_its_matching_config_be_deleted(api: Api) -> None:
    pkg = package_config(api)
    delete(api, pkg["links"]["self"])
    mc_path = f"{MATCHING_CONFIGS}/{pkg['document_type_configs'][0]['matching_config_id']}"
    assert delete(api, mc_path).status_code == 200


def test_delete_unknown_package_config_is_not_found(api: Api) -> None:
    error_body(delete(api, f"{PACKAGE_CONFIGS}/pkg_{uuid.uuid4()}"), 404, "not_found")


def test_delete_another_organizations_package_config_is_not_found(api: Api) -> None:
    pkg = package_config(api)
    run = final_run(api, pkg["id"])
    error_body(delete(api.other_organization(), pkg["links"]["self"]), 404, "not_found")
    assert api.get(pkg["links"]["self"]).status_code == 200
    assert api.get(run["links"]["self"]).status_code == 200


def table_counts(api: Api) -> dict[str, int]:
    with api.runtime.services.db.transaction() as conn:
        return {
            table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (package_runs, run_slots, matching_runs, match_results)
        }


# --- runs keep their snapshot -----------------------------------------------------------------


class Paused:
    """The API of a runtime whose worker has not started: accepted runs wait, in flight, until
    `resume()` starts the worker and waits until it has handled every message."""

    def __init__(self, runtime: Runtime, api: Api) -> None:
        self.runtime = runtime
        self.api = api
        self.workers: list[InProcessWorker] = []

    def resume(self) -> None:
        worker = InProcessWorker(self.runtime.broker, threads=2)
        worker.start()
        self.workers.append(worker)
        broker = self.runtime.broker
        assert isinstance(broker, StubBroker)
        # fail_fast: a message that failed for good (dead-lettered) re-raises its exception here.
        broker.join(self.runtime.settings.queue_name, timeout=30_000, fail_fast=True)
        worker.worker.join()


@pytest.fixture
def paused(
    request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime], sqlite_url: str
) -> Iterator[Paused]:
    runtime = make_runtime(database_url=database_url(request, sqlite_url))
    key = runtime.services.accounts.create_key("acme", frozenset({"read", "write"}))
    with TestClient(create_app(runtime.services, runtime.settings), raise_server_exceptions=False) as client:
        stack = Paused(runtime, Api(client, runtime, key))
        yield stack
    for worker in stack.workers:
        worker.stop()


def accepted(api: Api, pkg_id: str) -> dict[str, Any]:
    response = api.run(pkg_id, {"invoice": [invoice()]}, wait=0)
    assert response.status_code == 202, response.text
    run: dict[str, Any] = response.json()
    assert run["status"] == "running"
    return run


@PAUSED_ON_BOTH_DATABASES
def test_a_run_scores_with_the_matching_config_as_it_was_when_accepted(paused: Paused) -> None:
    api = paused.api
    mc = matching_config(api)
    pkg = package_config(api, mc["id"])
    run = accepted(api, pkg["id"])
    replaced(api, mc["links"]["self"], matching_body(field_mappings=CARRIER_ONLY, threshold=1.0))
    paused.resume()
    final = api.get(run["links"]["self"]).json()
    invoice_slot = final["document_results"][0]
    assert (invoice_slot["status"], invoice_slot["confidence"]) == ("matched", GOOD_CONFIDENCE)
    matching_run = api.get(f"/v1/matching/runs/{invoice_slot['matching_run_id']}").json()
    [result] = api.get(matching_run["links"]["results"]).json()["data"]
    assert list(result["candidates"][0]["evidence"]) == list(GOOD_INVOICE)


@PAUSED_ON_BOTH_DATABASES
def test_a_run_keeps_the_slots_and_pass_criteria_it_was_accepted_with(paused: Paused) -> None:
    api = paused.api
    pkg = package_config(api)
    mc_id = pkg["document_type_configs"][0]["matching_config_id"]
    run = accepted(api, pkg["id"])
    strict = {"min_confidence": 0.99, "allow_review_on_expected": False}
    new = package_body(mc_id, document_type_configs=[slot("bill", mc_id)], pass_criteria=strict)
    replaced(api, pkg["links"]["self"], new)
    paused.resume()
    final = api.get(run["links"]["self"]).json()
    assert final["status"] == "review"  # the old criteria: an expected slot missing → review
    assert [(r["document_type"], r["status"]) for r in final["document_results"]] == [
        ("invoice", "matched"),
        ("delivery_note", "missing"),
    ]


def test_a_run_in_flight_survives_the_deletion_of_its_matching_config(paused: Paused) -> None:
    api = paused.api
    mc = matching_config(api)
    pkg = package_config(api, mc["id"])
    run = accepted(api, pkg["id"])
    replaced(api, pkg["links"]["self"], package_body(matching_config(api)["id"]))
    assert delete(api, mc["links"]["self"]).status_code == 200
    paused.resume()
    assert api.get(run["links"]["self"]).json()["status"] == "review"


@PAUSED_ON_BOTH_DATABASES
def test_reference_data_of_a_run_in_flight_cannot_be_deleted_until_it_finishes(paused: Paused) -> None:
    api = paused.api
    mc = matching_config(api)
    pkg = package_config(api, mc["id"])
    accepted(api, pkg["id"])
    replaced(api, pkg["links"]["self"], package_body(matching_config(api)["id"]))
    assert delete(api, mc["links"]["self"]).status_code == 200
    body = error_body(delete(api, f"{REFERENCE_DATA}/{mc['reference_data_id']}"), 409, "conflict")
    assert body["message"] == (
        "1 package run is still running against this reference data; delete it when they have finished."
    )


def test_reference_data_can_be_deleted_once_its_runs_have_finished(paused: Paused) -> None:
    api = paused.api
    mc = matching_config(api)
    pkg = package_config(api, mc["id"])
    run = accepted(api, pkg["id"])
    replaced(api, pkg["links"]["self"], package_body(matching_config(api)["id"]))
    delete(api, mc["links"]["self"])
    paused.resume()
    assert api.get(run["links"]["self"]).json()["status"] == "review"
    assert delete(api, f"{REFERENCE_DATA}/{mc['reference_data_id']}").status_code == 200


@PAUSED_ON_BOTH_DATABASES
def test_a_run_in_flight_when_its_package_config_is_deleted_is_dropped_quietly(paused: Paused) -> None:
    api = paused.api
    pkg = package_config(api)
    run = accepted(api, pkg["id"])
    assert delete(api, pkg["links"]["self"]).status_code == 200
    paused.resume()  # fan-out, slot and finalize messages for a run that is gone: none fails
    error_body(api.get(run["links"]["self"]), 404, "not_found")
    assert table_counts(api) == {"package_runs": 0, "run_slots": 0, "matching_runs": 0, "match_results": 0}


def test_pipeline_steps_for_a_deleted_run_do_nothing(paused: Paused) -> None:
    api = paused.api
    pkg = package_config(api)
    run_id = parse_id(Kind.PACKAGE_RUN, accepted(api, pkg["id"])["id"])
    delete(api, pkg["links"]["self"])
    pipeline = paused.runtime.services.pipeline
    pipeline.fan_out(run_id)
    pipeline.execute_slot(run_id, 0)
    pipeline.fail_slot(run_id, 0, "boom")
    assert pipeline.finalize(run_id) is None
    assert table_counts(api) == {"package_runs": 0, "run_slots": 0, "matching_runs": 0, "match_results": 0}


@PAUSED_ON_BOTH_DATABASES
def test_a_slot_being_matched_when_its_run_is_deleted_writes_nothing(
    paused: Paused, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = paused.api
    pkg = package_config(api)
    run_id = parse_id(Kind.PACKAGE_RUN, accepted(api, pkg["id"])["id"])
    pipeline = paused.runtime.services.pipeline
    load_reference_rows = pipeline._reference_rows

    def delete_meanwhile(config: Any) -> Any:
        # The slot has been read (its matching run is written only with its results); the package
        # config goes while it is scored.
        assert table_counts(api)["matching_runs"] == 0
        assert delete(api, pkg["links"]["self"]).status_code == 200
        return load_reference_rows(config)

    monkeypatch.setattr(pipeline, "_reference_rows", delete_meanwhile)
    pipeline.execute_slot(run_id, 0)
    assert table_counts(api) == {"package_runs": 0, "run_slots": 0, "matching_runs": 0, "match_results": 0}
    paused.resume()
