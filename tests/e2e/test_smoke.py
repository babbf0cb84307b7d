from __future__ import annotations

from tests.e2e.conftest import Api, invoice


def test_a_matching_invoice_with_missing_expected_slot_is_review(api: Api) -> None:
    config_id = api.shipment_world()
    response = api.run(config_id, {"invoice": [invoice()]})
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "review"
    assert [r["status"] for r in run["document_results"]] == ["matched", "missing", "skipped"]
