"""The OpenAPI document holds against the live app: schemathesis, in-process (ASGI), a small fixed budget.

Every operation gets positive and negative cases, with a valid API key and without one, and a
stateful run follows the documented links (create → get/put/delete → …). Checks: no 5xx, and status
codes, content types, headers and bodies exactly as documented. The long run and its figures are in
docs/api-testing.md; this one is deterministic (fixed seed) and keeps CI under a minute.

The document is loaded at import, from an app on an in-memory runtime (it depends on the routes
only); requests go to a module-scoped app with a worker and its own SQLite file. Schemathesis's
`pytest.from_fixture` would avoid the import-time load, but it fails on pytest 9 (it sets the
private `Function._nodeid`).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.python import asgi

from packmatch import demo
from packmatch.api.app import create_app
from packmatch.api.local_server import LocalServer
from packmatch.bootstrap import build_runtime
from packmatch.client import Client
from packmatch.worker.runner import InProcessWorker
from tests.conftest import fast_settings
from tests.e2e import schemathesis_hooks  # noqa: F401 (registers the hooks)
from tests.e2e.conftest import Api

SEED = 20240914
BASE_URL = "http://testserver"
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]


def served_document() -> dict[str, Any]:
    runtime = build_runtime(fast_settings())
    try:
        document: dict[str, Any] = create_app(runtime.services, runtime.settings).openapi()
        return document
    finally:
        runtime.close()


def loaded(max_examples: int, phases: set[str]) -> Any:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "generation": {"max-examples": max_examples, "deterministic": True, "database": "none"},
            "phases": {name: {"enabled": name in phases} for name in ("examples", "coverage", "fuzzing")},
        }
    )
    return schemathesis.openapi.from_dict(DOCUMENT, config=config)


DOCUMENT = served_document()
keyed = loaded(15, {"examples", "coverage", "fuzzing"})
keyless = loaded(3, {"examples", "fuzzing"})


@dataclass
class LiveApp:
    app: FastAPI
    key: str

    def call(self, authorized: bool = True) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.key}"} if authorized else {}
        # `?wait=` holds a response up to 30 s (SPEC §3) behind the runs queued before it; schemathesis's
        # own 10 s read timeout failed it on a machine three times slower than usual.
        return {"app": self.app, "base_url": BASE_URL, "headers": headers, "timeout": 60}


@pytest.fixture(scope="module")
def live(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """One app, worker and database for the module, seeded with the demo world (datasets, configs,
    finished runs) so that generated requests can name real resources (see schemathesis_hooks)."""
    path = tmp_path_factory.mktemp("schemathesis") / "packmatch.db"
    shutil.copyfile(sqlite_template, path)
    runtime = build_runtime(fast_settings(database_url=f"sqlite:///{path}"))
    worker = InProcessWorker(runtime.broker, threads=2)
    worker.start()
    world = demo.load_world()
    app = create_app(runtime.services, runtime.settings)
    key = demo.create_demo_key(runtime.services, world)
    with LocalServer(app) as server, Client(server.url, key) as client:
        package = demo.install_world(client, world)
        run_ids = demo.submit_bundles(client, package.id, world.bundles)
        assert demo.wait_for_runs(client, run_ids, timeout_seconds=30)
    yield LiveApp(app, key)
    asgi.shutdown_lifespans()  # schemathesis keeps each app's lifespan open until told
    worker.stop()
    runtime.close()


@keyed.parametrize()  # type: ignore[untyped-decorator]
def test_every_operation_answers_as_documented_with_a_key(
    case: schemathesis.Case[Any], live: LiveApp
) -> None:
    case.call_and_validate(**live.call())


@keyless.parametrize()  # type: ignore[untyped-decorator]
def test_every_operation_answers_as_documented_without_a_key(
    case: schemathesis.Case[Any], live: LiveApp
) -> None:
    response = case.call_and_validate(**live.call(authorized=False))
    if case.path.startswith("/v1/"):
        assert response.status_code in (401, 413), response.text


def test_linked_operations_answer_as_documented(live: LiveApp) -> None:
    class Machine(keyed.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return live.call()

    Machine.run(
        settings=settings(
            max_examples=15,
            stateful_step_count=8,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )


# --- regressions schemathesis found ---------------------------------------------------------------


def test_method_not_allowed_lists_every_method_of_the_path(api: Api) -> None:
    path = "/v1/matching/configs/mc_b7e2f1a4-6d3c-4b8a-9e51-0c2d4f6a8b02"
    response = api.client.options(path, headers=api.headers)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, PUT, DELETE"


@pytest.mark.parametrize(("scopes", "status"), [(None, 401), ("read", 403), ("read,write", 400)])
def test_unparseable_body_is_judged_after_the_key(api: Api, scopes: str | None, status: int) -> None:
    headers = {"Content-Type": "application/json"}
    if scopes is not None:
        headers |= api.other_organization("acme", scopes=scopes).headers
    response = api.client.post("/v1/matching/packages/runs", content=b"\x00\x00\x00\x00", headers=headers)
    assert response.status_code == status, response.text


def test_nul_characters_in_a_body_are_a_validation_error_naming_the_fields(api: Api) -> None:
    """PostgreSQL text cannot store U+0000: it was a 500 there (and a run that failed in the worker)."""
    body = {"name": "book\x00ings", "rows": [{"id": "BK\x00", "ref\x00": "x"}]}
    response = api.post("/v1/matching/reference-data", json=body)
    assert response.status_code == 400, response.text
    fields = [d["field"] for d in response.json()["details"]]
    assert fields == ["name", "rows[0].id", "rows[0].ref\\u0000"]


def test_nul_characters_in_run_input_are_rejected_before_the_run_is_accepted(api: Api) -> None:
    config_id = api.shipment_world()
    row = {"document_id": "doc\x00", "values": {"total": "4250\x00"}}
    response = api.run(config_id, {"invoice": [row]})
    assert response.status_code == 400, response.text
    assert api.get("/v1/matching/packages/runs").json()["pagination"]["total"] == 0


@pytest.mark.parametrize(
    "pass_criteria",
    [{"allow_review_on_expected": 0}, {"all_required_matched": "yes"}, {"min_confidence": "0.3"},
     {"min_confidence": False}],
)  # fmt: skip
def test_pass_criteria_take_json_booleans_and_numbers_only(api: Api, pass_criteria: dict[str, Any]) -> None:
    config_id = api.shipment_world()
    slots = api.get(f"/v1/matching/packages/configs/{config_id}").json()["document_type_configs"]
    body = {"name": "strict", "document_type_configs": slots, "pass_criteria": pass_criteria}
    response = api.post("/v1/matching/packages/configs", json=body)
    assert response.status_code == 400, response.text
    assert [d["field"] for d in response.json()["details"]] == [f"pass_criteria.{next(iter(pass_criteria))}"]


@pytest.mark.parametrize("change", [{"threshold": True}, {"threshold": "0.5"}, {"weight": "2"}])
def test_matching_config_numbers_are_json_numbers(api: Api, change: dict[str, Any]) -> None:
    ref = api.create("/v1/matching/reference-data", {"name": "b", "rows": [{"ref": "x"}]})
    mapping = {"source": "s", "target": "ref", "strategy": "exact", "weight": change.get("weight", 1)}
    body = {"name": "m", "reference_data_id": ref["id"], "field_mappings": [mapping], **change}
    body.pop("weight", None)
    assert api.post("/v1/matching/configs", json=body).status_code == 400
