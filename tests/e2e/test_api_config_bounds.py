"""Every number in a matching config is bounded, date formats are checked, new options accepted
(issue 13 items 2 and 3, issue 16): a 400 names the field, never a run that ends in `error`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import BOOKINGS, INVOICE_MAPPINGS, Api, error_body

MATCHING_CONFIGS = "/v1/matching/configs"


def create(api: Api, mapping: dict[str, Any]) -> Any:
    dataset = api.create("/v1/matching/reference-data", {"name": "bookings", "rows": BOOKINGS})
    body = {"name": "bounded", "reference_data_id": dataset["id"], "field_mappings": [mapping]}
    return api.post(MATCHING_CONFIGS, json=body)


def fields(response: Any) -> list[str]:
    return [d["field"] for d in error_body(response, 400, "validation_error")["details"]]


EXACT, FUZZY, NUMERIC, DATE = INVOICE_MAPPINGS


@pytest.mark.parametrize(
    ("mapping", "field"),
    [
        ({**EXACT, "weight": 1e308}, "field_mappings[0].weight"),
        ({**EXACT, "weight": 1_000_001}, "field_mappings[0].weight"),
        ({**DATE, "options": {"tolerance_days": 1e12}}, "field_mappings[0].options.tolerance_days"),
        ({**NUMERIC, "options": {"tolerance_abs": 1e308}}, "field_mappings[0].options.tolerance_abs"),
        ({**NUMERIC, "options": {"tolerance_pct": 101}}, "field_mappings[0].options.tolerance_pct"),
        ({**FUZZY, "options": {"min_similarity": 1e308}}, "field_mappings[0].options.min_similarity"),
        ({**EXACT, "options": {"max_edits": 3}}, "field_mappings[0].options.max_edits"),
        ({**EXACT, "options": {"max_edits": 1.5}}, "field_mappings[0].options.max_edits"),
        ({**DATE, "options": {"allow_day_month_swap": "yes"}},
         "field_mappings[0].options.allow_day_month_swap"),
        ({**FUZZY, "options": {"scorer": "soundex"}}, "field_mappings[0].options.scorer"),
        ({**EXACT, "missing": "skip"}, "field_mappings[0].missing"),
    ],
)  # fmt: skip
def test_out_of_range_numbers_and_options_are_a_400_naming_the_field(
    api: Api, mapping: dict[str, Any], field: str
) -> None:
    assert fields(create(api, mapping)) == [field]


@pytest.mark.parametrize("fmt", ["%q", "%", "%d.%m.%", "no directive", "%G-%m"])
def test_malformed_date_formats_are_a_400_naming_the_format(api: Api, fmt: str) -> None:
    mapping = {**DATE, "options": {"formats": ["%d.%m.%Y", fmt]}}
    assert fields(create(api, mapping)) == ["field_mappings[0].options.formats[1]"]


@pytest.mark.parametrize(
    "mapping",
    [
        {**EXACT, "weight": 1_000_000, "missing": "ignore", "options": {"max_edits": 2}},
        {**FUZZY, "options": {"scorer": "jaro_winkler", "min_similarity": 0.8}},
        {**FUZZY, "options": {"scorer": "levenshtein"}},
        {**NUMERIC, "options": {"tolerance_abs": 1e15, "tolerance_pct": 100}},
        {**DATE, "options": {"tolerance_days": 3650, "formats": ["%d.%m.%Y"], "allow_day_month_swap": True}},
    ],
)  # fmt: skip
def test_options_at_their_bounds_are_accepted_and_echoed(api: Api, mapping: dict[str, Any]) -> None:
    response = create(api, mapping)
    assert response.status_code == 201, response.text
    echoed = response.json()["field_mappings"][0]
    assert echoed["options"] == mapping["options"]
    assert echoed["missing"] == mapping.get("missing", "mismatch")


EDGE_ROWS = [
    {"id": "BK-1", "reference": "ABC1234567", "amount": 1.7976931348623157e308, "departure": "9999-12-31"},
    {"id": "BK-2", "reference": "XYZ7654321", "amount": -1e308, "departure": "0001-01-01"},
    {"id": "BK-3", "reference": "QRS1111111", "amount": 5e-324, "departure": "2024-09-10"},
]
EDGE_MAPPINGS = [
    {"source": "booking_reference", "target": "reference", "strategy": "exact", "weight": 1_000_000},
    {"source": "total", "target": "amount", "strategy": "numeric_range", "weight": 5e-324,
     "options": {"tolerance_abs": 1e15, "tolerance_pct": 100}},
    {"source": "ship_date", "target": "departure", "strategy": "date_range", "weight": 1e-300,
     "options": {"tolerance_days": 3650}},
]  # fmt: skip


@pytest.mark.parametrize(
    "values",
    [
        {"booking_reference": "ABC1234567", "total": -1.7976931348623157e308, "ship_date": "0001-01-01"},
        {"booking_reference": "XYZ7654321", "total": 1e308, "ship_date": "9999-12-31"},
        {"booking_reference": "QRS1111111", "total": "1e308", "ship_date": "2024-09-11"},
        {"booking_reference": "NOPE", "total": 5e-324, "ship_date": "2024-09-10"},
    ],
)
def test_numbers_at_a_floats_edges_are_scored_never_an_error(api: Api, values: dict[str, Any]) -> None:
    dataset = api.create("/v1/matching/reference-data", {"name": "edges", "rows": EDGE_ROWS})
    body = {"name": "edges", "reference_data_id": dataset["id"], "field_mappings": EDGE_MAPPINGS}
    config = api.create(MATCHING_CONFIGS, body)
    slots = [{"document_type": "invoice", "matching_config_id": config["id"], "presence": "required"}]
    package = api.create("/v1/matching/packages/configs", {"name": "edges", "document_type_configs": slots})
    response = api.run(package["id"], {"invoice": [{"document_id": "doc_1", "values": values}]})
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] in ("passed", "failed", "review"), run["error"]
    assert run["error"] is None
    assert all(0 <= (r["confidence"] or 0) <= 1 for r in run["document_results"])
