"""Values are JSON scalars (issue 13 item 4): a nested object or array in reference data rows or in
input documents → 400 naming the row and the field, on every path that takes values."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import BOOKINGS, Api, error_body, invoice

REFERENCE_DATA = "/v1/matching/reference-data"
RUNS = "/v1/matching/packages/runs"
NESTED = [({"city": "Hamburg"}, "an object"), ([1, 2], "an array"), ([], "an array"), ({}, "an object")]


def dataset_count(api: Api) -> int:
    total: int = api.get(REFERENCE_DATA).json()["pagination"]["total"]
    return total


@pytest.mark.parametrize(("value", "kind"), NESTED)
def test_a_nested_reference_value_is_refused_naming_its_row_and_field(
    api: Api, value: Any, kind: str
) -> None:
    rows = [BOOKINGS[0], {**BOOKINGS[1], "carrier_name": value}, BOOKINGS[2]]
    response = api.post(REFERENCE_DATA, json={"name": "nested", "rows": rows})
    body = error_body(response, 400, "validation_error")
    message = f"rows[1].carrier_name must be a string, number, boolean or null, not {kind}."
    assert body["details"] == [{"field": "rows[1].carrier_name", "message": message}]
    assert "rows[1].carrier_name" in body["message"]
    assert dataset_count(api) == 0


def test_every_nested_reference_value_is_listed_in_row_order(api: Api) -> None:
    rows = [{"a": 1, "b": [1]}, {"a": {"x": 1}}, {"a": 2}, {"c": [{"d": 1}]}]
    body = error_body(api.post(REFERENCE_DATA, json={"name": "n", "rows": rows}), 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["rows[0].b", "rows[1].a", "rows[3].c"]


def test_scalar_reference_values_of_every_kind_are_accepted(api: Api) -> None:
    rows = [{"s": "x", "i": 1, "f": 2.5, "b": True, "n": None}]
    dataset = api.create(REFERENCE_DATA, {"name": "scalars", "rows": rows})
    assert {c["name"]: c["type"] for c in dataset["columns"]} == {
        "s": "string", "i": "number", "f": "number", "b": "boolean", "n": "string",
    }  # fmt: skip


def test_a_csv_cell_that_spells_json_stays_text(api: Api) -> None:
    content = b'id,meta,tags\nA,"{""city"": ""Hamburg""}","[1, 2]"\n'
    response = api.post(REFERENCE_DATA, files={"file": ("n.csv", content, "text/csv")})
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert {c["name"]: c["type"] for c in dataset["columns"]} == {"meta": "string", "tags": "string"}
    rows = api.get(f"{REFERENCE_DATA}/{dataset['id']}/rows").json()["data"]
    assert rows == [{"id": "A", "meta": '{"city": "Hamburg"}', "tags": "[1, 2]"}]


@pytest.mark.parametrize(("value", "kind"), NESTED)
def test_a_nested_input_value_is_refused_naming_its_row_and_field(api: Api, value: Any, kind: str) -> None:
    config = api.shipment_world()
    documents = {"invoice": [invoice("doc_1"), invoice("doc_2", carrier=value)]}
    body = error_body(api.run(config, documents, wait=0), 400, "validation_error")
    field = "input_documents.invoice[1].values.carrier"
    assert body["details"] == [
        {"field": field, "message": f"{field} must be a string, number, boolean or null, not {kind}."}
    ]
    assert api.get(RUNS).json()["data"] == []


def test_a_nested_input_value_fails_only_its_batch_item(api: Api) -> None:
    config = api.shipment_world()
    runs = [
        {"package_config_id": config, "input_documents": {"invoice": [invoice()]}},
        {"package_config_id": config, "input_documents": {"invoice": [invoice(total={"amount": 1})]}},
    ]
    response = api.post(f"{RUNS}/batch", json={"runs": runs})
    assert response.status_code == 202, response.text
    first, second = response.json()["data"]
    assert first["status"] == "running"
    assert second["index"] == 1
    assert second["error"]["code"] == "validation_error"
    field = "runs[1].input_documents.invoice[0].values.total"
    assert [d["field"] for d in second["error"]["details"]] == [field]
    assert api.get(RUNS).json()["pagination"]["total"] == 1
