"""Nothing leaks: across organizations (SPEC §2 tenancy), into logs (SPEC §7), or to clients (SPEC §2 errors).

(a) Another organization's resource is indistinguishable from a missing one on every path with an
id, and never listed. (b) No log line of the in-process app and worker holds the API key, the
Authorization header or an input value, through a walk-through with failures, validation errors
that echo input, and a 500. (c) No stack trace or SQL reaches a client, from the API or a worker.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
import structlog

from packmatch.logging import configure_logging
from tests.e2e.conftest import BOOKINGS, ENVELOPE_KEYS, INVOICE_MAPPINGS, Api, invoice

REFERENCE_DATA = "/v1/matching/reference-data"
MATCHING_CONFIGS = "/v1/matching/configs"
PACKAGE_CONFIGS = "/v1/matching/packages/configs"
PACKAGE_RUNS = "/v1/matching/packages/runs"
MATCHING_RUNS = "/v1/matching/runs"
NOT_FOR_CLIENTS = ("Traceback", 'File "', "sqlalchemy", "sqlite3", "psycopg", "SELECT ", "INSERT ", "[SQL")


@dataclass
class World:
    """One organization's resources, all reachable by id: acme's, as another organization sees them."""

    reference_data: dict[str, Any]
    matching_config: dict[str, Any]
    package_config: dict[str, Any]
    run: dict[str, Any]

    @property
    def matching_run_id(self) -> str:
        return str(self.run["document_results"][0]["matching_run_id"])


def build_world(api: Api, values: dict[str, Any] | None = None) -> World:
    ref = api.create(REFERENCE_DATA, {"name": "bookings", "rows": BOOKINGS})
    mc = api.create(
        MATCHING_CONFIGS,
        {"name": "Invoice to booking", "reference_data_id": ref["id"], "field_mappings": INVOICE_MAPPINGS},
    )
    slots = [{"document_type": "invoice", "matching_config_id": mc["id"], "presence": "required"}]
    pkg = api.create(PACKAGE_CONFIGS, {"name": "Invoices", "document_type_configs": slots})
    response = api.run(pkg["id"], {"invoice": [invoice(**(values or {}))]})
    assert response.status_code == 200, response.text  # final; with `values`, not necessarily passed
    return World(ref, mc, pkg, response.json())


@pytest.fixture
def world(api: Api) -> World:
    return build_world(api)


MC_BODY = {"name": "Renamed", "field_mappings": INVOICE_MAPPINGS}


def pkg_body(world: World) -> dict[str, Any]:
    slots = [
        {
            "document_type": "invoice",
            "matching_config_id": world.matching_config["id"],
            "presence": "required",
        }
    ]
    return {"name": "Renamed", "document_type_configs": slots}


# (method, path of the resource, body) for every operation with an id in its path
def id_operations(world: World) -> list[tuple[str, str, dict[str, Any] | None]]:
    ref = f"{REFERENCE_DATA}/{world.reference_data['id']}"
    mc = f"{MATCHING_CONFIGS}/{world.matching_config['id']}"
    pkg = f"{PACKAGE_CONFIGS}/{world.package_config['id']}"
    mr = f"{MATCHING_RUNS}/{world.matching_run_id}"
    return [
        ("GET", ref, None),
        ("GET", f"{ref}/rows", None),
        ("DELETE", ref, None),
        ("GET", mc, None),
        ("PUT", mc, MC_BODY),
        ("DELETE", mc, None),
        ("GET", pkg, None),
        ("PUT", pkg, pkg_body(world)),
        ("DELETE", pkg, None),
        ("GET", f"{PACKAGE_RUNS}/{world.run['id']}", None),
        ("GET", mr, None),
        ("GET", f"{mr}/results", None),
    ]


OPERATION_IDS = [
    "get reference data", "get rows", "delete reference data", "get matching config",
    "put matching config", "delete matching config", "get package config", "put package config",
    "delete package config", "get package run", "get matching run", "get results",
]  # fmt: skip


def missing_twin(path: str) -> str:
    """The same path with every id replaced by a fresh one of the same type."""
    parts = path.split("/")
    return "/".join(f"{p.split('_')[0]}_{uuid.uuid4()}" if p.count("-") == 4 else p for p in parts)


# --- (a) tenancy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(12), ids=OPERATION_IDS)
def test_another_organizations_id_is_not_found(api: Api, world: World, index: int) -> None:
    method, path, body = id_operations(world)[index]
    other = api.other_organization()
    response = other.client.request(method, path, json=body, headers=other.headers)
    assert response.status_code == 404, response.text
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("index", range(12), ids=OPERATION_IDS)
def test_another_organizations_id_answers_like_a_missing_one(api: Api, world: World, index: int) -> None:
    method, path, body = id_operations(world)[index]
    other = api.other_organization()
    theirs = other.client.request(method, path, json=body, headers=other.headers).json()
    missing = other.client.request(method, missing_twin(path), json=body, headers=other.headers).json()
    differ = {"request_id", "timestamp", "path"}
    assert {k: v for k, v in theirs.items() if k not in differ} == {
        k: v for k, v in missing.items() if k not in differ
    }


def test_another_organizations_writes_change_nothing(api: Api, world: World) -> None:
    other = api.other_organization()
    for method, path, body in id_operations(world):
        other.client.request(method, path, json=body, headers=other.headers)
    for _, path, _ in id_operations(world):
        assert api.get(path).status_code == 200, path
    assert api.get(world.matching_config["links"]["self"]).json() == world.matching_config
    assert api.get(world.package_config["links"]["self"]).json() == world.package_config


@pytest.mark.parametrize(
    "path",
    [REFERENCE_DATA, MATCHING_CONFIGS, PACKAGE_CONFIGS, PACKAGE_RUNS, f"{PACKAGE_RUNS}?status=passed"],
)
def test_lists_never_show_another_organizations_resources(api: Api, world: World, path: str) -> None:
    assert api.get(path).json()["pagination"]["total"] >= 1
    listed = api.other_organization().get(path).json()
    assert listed == {
        "data": [],
        "pagination": {"total": 0, "limit": 20, "has_more": False, "next_cursor": None},
    }


def test_runs_filtered_by_another_organizations_config_are_empty(api: Api, world: World) -> None:
    path = f"{PACKAGE_RUNS}?package_config_id={world.package_config['id']}"
    assert api.other_organization().get(path).json()["data"] == []


@pytest.mark.parametrize("kind", ["matching config", "package config", "run"])
def test_another_organizations_id_in_a_body_is_not_found(api: Api, world: World, kind: str) -> None:
    path, body = {
        "matching config": (
            MATCHING_CONFIGS,
            {
                "name": "x",
                "reference_data_id": world.reference_data["id"],
                "field_mappings": INVOICE_MAPPINGS,
            },
        ),
        "package config": (PACKAGE_CONFIGS, pkg_body(world)),
        "run": (PACKAGE_RUNS, {"package_config_id": world.package_config["id"], "input_documents": {}}),
    }[kind]
    response = api.other_organization().post(path, json=body)
    assert (response.status_code, response.json()["code"]) == (404, "not_found"), response.text


# --- (b) logs ------------------------------------------------------------------------------------


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The app's and the worker's log lines (JSON), captured; pytest's own handlers are left alone."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    named = {
        n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in ("uvicorn", "dramatiq")
    }
    structlog_config = structlog.get_config()
    stream = io.StringIO()
    configure_logging(fmt="json", stream=stream)
    ours = root.handlers[0]
    yield stream
    structlog.configure(**structlog_config)
    root.handlers[:] = [h for h in root.handlers if h is not ours] + [
        h for h in saved[0] if not type(h).__module__.startswith("_pytest")
    ]
    root.setLevel(saved[1])
    for name, (handlers, propagate) in named.items():
        logging.getLogger(name).handlers[:] = handlers
        logging.getLogger(name).propagate = propagate


def events(stream: io.StringIO) -> list[str]:
    return [json.loads(line)["event"] for line in stream.getvalue().splitlines()]


SECRET_VALUES = {
    "booking_reference": "LEAK-REF-7Q2X",
    "carrier": "LEAK-CARRIER-Zebra",
    "total": "4,250.00",
    "ship_date": "2024-09-11",
    "note": "LEAK-NOTE-ONLY-IN-VALUES",
}


def walk_through(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every kind of request once; returns the secrets that must not appear in any log line."""
    world = build_world(api, SECRET_VALUES)
    api.get(f"{PACKAGE_RUNS}?package_config_id={world.package_config['id']}")
    api.get(f"{MATCHING_RUNS}/{world.matching_run_id}/results")
    wrong_key = "pmk_LEAK-WRONG-KEY-0123456789abcdef"
    api.client.get(PACKAGE_CONFIGS, headers={"Authorization": f"Bearer {wrong_key}"})
    reader = api.other_organization("acme", scopes="read")
    reader.post(PACKAGE_RUNS, json={"package_config_id": world.package_config["id"], "input_documents": {}})
    echoed = {"document_id": "doc_9", "values": {"note": "LEAK-NOTE-IN-A-REJECTED-BODY"}}
    response = api.run(world.package_config["id"], {"LEAK_UNKNOWN_SLOT": [echoed]})
    assert "LEAK_UNKNOWN_SLOT" in response.text  # the 400 names it, for the client only
    not_an_object = {"document_id": "d", "values": "LEAK-NOT-AN-OBJECT"}
    api.run(world.package_config["id"], {"invoice": [not_an_object]})
    not_a_column = {**INVOICE_MAPPINGS[0], "target": "LEAK-TARGET"}
    ref_id = world.reference_data["id"]
    api.post(
        MATCHING_CONFIGS, json={"name": "x", "reference_data_id": ref_id, "field_mappings": [not_a_column]}
    )
    monkeypatch.setattr(api.runtime.services.runs, "accept", fail)
    assert api.run(world.package_config["id"], {"invoice": [invoice(**SECRET_VALUES)]}).status_code == 500
    secrets = [api.key, reader.key, wrong_key, "Bearer", "LEAK-NOTE-IN-A-REJECTED-BODY", "LEAK-NOT-AN-OBJECT"]
    return secrets + [v for v in SECRET_VALUES.values() if v.startswith("LEAK")]


def fail(*_: Any) -> None:
    raise RuntimeError("simulated failure in a service")


def test_logs_cover_the_walk_through(
    api: Api, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    walk_through(api, monkeypatch)
    expected = {"http.request", "run.accepted", "run.fanned_out", "slot.completed", "run.finalized"}
    assert expected | {"http.unhandled_error"} <= set(events(log_lines))


def test_no_log_line_holds_a_key_or_an_input_value(
    api: Api, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = walk_through(api, monkeypatch)
    text = log_lines.getvalue()
    assert [s for s in secrets if s in text] == []


def failing_insert(conn: Any, run: Any, snapshot: Any, inputs: Any) -> None:
    """A real database error raised while the input rows are written (a NOT NULL column left out)."""
    rows = [{"name": json.dumps(row.values)} for slot in inputs for row in slot]
    conn.execute(sa.text("INSERT INTO organizations (id, name) VALUES ('x', :name)"), rows)


def test_a_database_error_logs_no_input_value(
    api: Api, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(api)
    monkeypatch.setattr("packmatch.services.runs.store.insert_run", failing_insert)
    response = api.run(world.package_config["id"], {"invoice": [invoice(**SECRET_VALUES)]})
    assert response.status_code == 500
    assert "http.unhandled_error" in events(log_lines)
    assert "LEAK-NOTE-ONLY-IN-VALUES" not in log_lines.getvalue()


# --- (c) nothing internal reaches a client -------------------------------------------------------


def assert_clean(response: Any, status: int, code: str) -> None:
    body = response.json()
    assert (response.status_code, body["code"], set(body)) == (status, code, ENVELOPE_KEYS), response.text
    assert response.headers["X-Request-Id"] == body["request_id"]
    assert [marker for marker in NOT_FOR_CLIENTS if marker in response.text] == []


def sql_error(*_: Any) -> None:
    statement = "SELECT key_hash FROM api_keys WHERE organization_id = :org"
    raise sa.exc.IntegrityError(statement, {"org": "LEAK-PARAM"}, Exception("UNIQUE constraint failed"))


def transient_sql_error(*_: Any) -> None:
    statement = "SELECT key_hash FROM api_keys WHERE organization_id = :org"
    raise sa.exc.OperationalError(statement, {"org": "LEAK-PARAM"}, Exception("database is locked"))


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (fail, 500, "internal_error"),
        (sql_error, 500, "internal_error"),
        (transient_sql_error, 503, "unavailable"),
    ],
)
@pytest.mark.usefixtures("log_lines")  # JSON logs: structlog's console traceback takes seconds
def test_an_internal_error_reaches_the_client_as_the_envelope_only(
    api: Api, monkeypatch: pytest.MonkeyPatch, failure: Any, status: int, code: str
) -> None:
    monkeypatch.setattr(api.runtime.services.configs, "list_packages", failure)
    response = api.get(PACKAGE_CONFIGS)
    assert_clean(response, status, code)
    assert "LEAK-PARAM" not in response.text


@pytest.mark.usefixtures("log_lines")
def test_a_failure_in_authentication_reaches_the_client_as_the_envelope_only(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.runtime.services.accounts, "authenticate", sql_error)
    assert_clean(api.get(PACKAGE_CONFIGS), 500, "internal_error")


@pytest.mark.usefixtures("log_lines")
def test_a_failing_slot_shows_its_run_no_sql(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    world = build_world(api)
    monkeypatch.setattr(api.runtime.services.pipeline, "execute_slot", sql_error)
    run = api.run(world.package_config["id"], {"invoice": [invoice()]}).json()
    assert run["status"] == "error"
    text = json.dumps(run) + api.get(f"{MATCHING_RUNS}/{world.matching_run_id}").text
    if (matching_run_id := run["document_results"][0]["matching_run_id"]) is not None:
        text += api.get(f"{MATCHING_RUNS}/{matching_run_id}").text
    assert [marker for marker in (*NOT_FOR_CLIENTS, "LEAK-PARAM") if marker in text] == []


def test_a_validation_error_reaches_the_client_without_internals(api: Api) -> None:
    response = api.post(PACKAGE_RUNS, json={"package_config_id": "pkg_x", "input_documents": {"a": "b"}})
    assert_clean(response, 400, "validation_error")


def overflow(*_: Any) -> None:
    raise OverflowError("math range error")


@pytest.mark.parametrize(
    ("failure", "error_type"), [(overflow, "OverflowError"), (sql_error, "IntegrityError")]
)
def test_a_failing_slot_shows_a_stable_category_and_logs_the_detail(
    api: Api, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch, failure: Any, error_type: str
) -> None:
    """Issue 13 item 5: the run's `error` is `slot <type>: matching failed (internal)`, never a class
    name; the class and traceback are in the `slot.failed` log line, with the run's id."""
    world = build_world(api)
    monkeypatch.setattr(api.runtime.services.pipeline, "_reference_rows", failure)
    run = api.run(world.package_config["id"], {"invoice": [invoice()]}).json()
    assert (run["status"], run["error"]) == ("error", "slot invoice: matching failed (internal)")
    shown = json.dumps(run)
    if (matching_run_id := run["document_results"][0]["matching_run_id"]) is not None:
        shown += api.get(f"{MATCHING_RUNS}/{matching_run_id}").text
    assert error_type not in shown
    assert "Error" not in shown.replace('"error"', "")
    failed = [
        line for line in map(json.loads, log_lines.getvalue().splitlines()) if line["event"] == "slot.failed"
    ]
    assert [(line["run_id"], line["error_type"]) for line in failed] == [(run["id"], error_type)]
    assert "Traceback" in failed[0]["exception"]


# --- (d) logs carry the public ids the API shows (SPEC §7, issue 13 item 10) --------------------

UUID_TEXT = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
BARE_ID = re.compile(rf"^{UUID_TEXT}$")
NOT_PUBLIC_IDS = {"organization_id", "message_id"}  # no public form: the API shows neither


def wait_for_attempt(api: Api, hook: dict[str, Any]) -> None:
    deadline = time.monotonic() + 20
    while not [d for d in api.get(hook["links"]["deliveries"]).json()["data"] if d["attempts"] >= 1]:
        assert time.monotonic() < deadline, "the delivery was never attempted"
        time.sleep(0.02)


def id_walk_through(api: Api, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A passed run with a webhook delivery, a replayed POST and a failing slot; the public ids seen."""
    hook = api.create("/v1/webhooks", {"url": "http://does-not-resolve.invalid/hook"})
    api.post(f"{hook['links']['self']}/rotate-secret")
    world = build_world(api)
    wait_for_attempt(api, hook)
    api.get(f"{MATCHING_RUNS}/{world.matching_run_id}/results")
    body = {"package_config_id": world.package_config["id"], "input_documents": {"invoice": [invoice()]}}
    for _ in range(2):
        api.post(f"{PACKAGE_RUNS}?wait=10", json=body, headers={"Idempotency-Key": "walk-1"})
    monkeypatch.setattr(api.runtime.services.pipeline, "_reference_rows", overflow)
    failed = api.run(world.package_config["id"], {"invoice": [invoice()]}).json()
    return {
        "run_id": world.run["id"],
        "failed_run_id": failed["id"],
        "package_config_id": world.package_config["id"],
        "matching_run_id": world.matching_run_id,
        "reference_data_id": world.reference_data["id"],
        "webhook_id": hook["id"],
    }


def test_every_id_in_a_log_line_is_the_public_one(
    api: Api, log_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = id_walk_through(api, monkeypatch)
    lines = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    bare = [
        (line["event"], key)
        for line in lines
        for key, value in line.items()
        if key not in NOT_PUBLIC_IDS and isinstance(value, str) and BARE_ID.match(value)
    ]
    assert bare == []
    logged = {(key, line[key]) for line in lines for key in line if key.endswith("_id")}
    expected = {(key.removeprefix("failed_"), value) for key, value in shown.items()}
    assert expected <= logged
    delivery_lines = [line for line in lines if line["event"].startswith("webhook.")]
    assert {line["event"] for line in delivery_lines} >= {"webhook.created", "webhook.secret_rotated"}
    assert all(line.get("delivery_id", "whd_").startswith("whd_") for line in delivery_lines)
