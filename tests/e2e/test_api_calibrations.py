"""POST /v1/matching/configs/{id}/calibrations: a proposal the user applies with PUT, never applied."""

from __future__ import annotations

import random
from typing import Any

from tests.e2e.conftest import Api, error_body

CONFIGS = "/v1/matching/configs"
NAMES = ["Anna", "Ben", "Carla", "Dirk", "Eva", "Femke", "Gert", "Hanna", "Ivo", "Jana"]


def _people() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """120 reference people; 100 input rows copy the first 100 (a surname typo now and then)."""
    rng = random.Random(5)
    people = [
        {
            "id": f"p{i}",
            "given": rng.choice(NAMES),
            "surname": f"Family{rng.randrange(30)}",
            "born": f"19{rng.randint(40, 99)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "city": rng.choice(["Ghent", "Lille", "Lyon"]),
        }
        for i in range(120)
    ]
    rows = []
    for person in people[:100]:
        values = {k: v for k, v in person.items() if k != "id"}
        if rng.random() < 0.2:
            values["surname"] = values["surname"] + "x"
        rows.append({"values": values, "reference_row_id": person["id"]})
    return people, rows


def _config(api: Api) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    people, rows = _people()
    ref = api.create("/v1/matching/reference-data", {"name": "people", "rows": people})
    mappings = [
        {"source": f, "target": f, "strategy": s, "weight": 1}
        for f, s in (("given", "fuzzy"), ("surname", "fuzzy"), ("born", "date_range"), ("city", "exact"))
    ]
    body = {"name": "people", "reference_data_id": ref["id"], "field_mappings": mappings, "threshold": 0.9}
    return api.create(CONFIGS, body), rows


def _unlabelled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"values": row["values"]} for row in rows]


def test_an_unsupervised_calibration_proposes_a_config_and_applies_nothing(api: Api) -> None:
    config, rows = _config(api)
    response = api.post(f"{CONFIGS}/{config['id']}/calibrations", json={"rows": _unlabelled(rows)})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["method"] == "unsupervised"
    assert report["matching_config_id"] == config["id"]
    assert report["links"] == {"config": f"{CONFIGS}/{config['id']}"}
    assert [f["source"] for f in report["fields"]] == ["given", "surname", "born", "city"]
    assert all(0 < f["m"] <= 1 and 0 < f["u"] <= 1 and f["explanation"] for f in report["fields"])
    assert api.get(f"{CONFIGS}/{config['id']}").json()["version"] == 1  # nothing applied


def test_the_proposal_is_a_body_for_put(api: Api) -> None:
    config, rows = _config(api)
    report = api.post(f"{CONFIGS}/{config['id']}/calibrations", json={"rows": _unlabelled(rows)}).json()
    put = api.client.put(f"{CONFIGS}/{config['id']}", json=report["proposal"], headers=api.headers)
    assert put.status_code == 200, put.text
    assert put.json()["threshold"] == report["proposal"]["threshold"]
    assert put.json()["version"] == 2


def test_labelled_rows_make_it_supervised_with_evaluations_before_and_after(api: Api) -> None:
    config, rows = _config(api)
    response = api.post(f"{CONFIGS}/{config['id']}/calibrations", json={"rows": rows, "sample_pairs": 5000})
    report = response.json()
    assert report["method"] == "supervised"
    assert report["before"]["basis"] == report["after"]["basis"] == "labels"
    assert report["before"]["threshold"] == 0.9
    assert report["after"]["precision"] >= 0.99
    assert report["after"]["f1"] >= report["before"]["f1"]


def test_a_label_that_is_no_reference_row_is_a_400_naming_it(api: Api) -> None:
    config, rows = _config(api)
    rows[3]["reference_row_id"] = "nobody"
    response = api.post(f"{CONFIGS}/{config['id']}/calibrations", json={"rows": rows})
    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["rows[3].reference_row_id"]


def test_labels_on_some_rows_only_are_a_400(api: Api) -> None:
    config, rows = _config(api)
    rows[0] = {"values": rows[0]["values"]}
    response = api.post(f"{CONFIGS}/{config['id']}/calibrations", json={"rows": rows})
    assert "rows[0].reference_row_id" in [
        d["field"] for d in error_body(response, 400, "validation_error")["details"]
    ]


def test_bounds_and_other_organizations(api: Api) -> None:
    config, rows = _config(api)
    path = f"{CONFIGS}/{config['id']}/calibrations"
    error_body(api.post(path, json={"rows": []}), 400, "validation_error")
    error_body(api.post(path, json={"rows": rows, "sample_pairs": 10}), 400, "validation_error")
    error_body(api.post(path, json={"rows": [{"values": {}}] * 2001}), 400, "validation_error")
    error_body(api.other_organization().post(path, json={"rows": rows}), 404, "not_found")


def test_propose_missing_false_keeps_the_policies(api: Api) -> None:
    config, rows = _config(api)
    for row in rows[:30]:
        row["values"]["born"] = ""
    body = {"rows": _unlabelled(rows), "propose_missing": False}
    report = api.post(f"{CONFIGS}/{config['id']}/calibrations", json=body).json()
    assert {m["missing"] for m in report["proposal"]["field_mappings"]} == {"mismatch"}
    body["propose_missing"] = True
    report = api.post(f"{CONFIGS}/{config['id']}/calibrations", json=body).json()
    born = next(m for m in report["proposal"]["field_mappings"] if m["source"] == "born")
    assert born["missing"] == "ignore"


def test_nested_values_in_calibration_rows_are_refused_by_row_and_field(api: Api) -> None:
    config, rows = _config(api)
    bad = [rows[0], {"values": {**rows[1]["values"], "city": ["Ghent", "Lille"]}}]
    body = error_body(
        api.post(f"{CONFIGS}/{config['id']}/calibrations", json={"rows": bad}), 400, "validation_error"
    )
    assert [d["field"] for d in body["details"]] == ["rows[1].values.city"]
