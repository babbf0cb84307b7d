"""Keyset pagination of lists (SPEC §2): limit, opaque cursors, order, filters, and their errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import Api, error_body, invoice

RUNS = "/v1/matching/packages/runs"


def submit(api: Api, config_id: str, count: int) -> list[str]:
    """Submit `count` runs without waiting (they finish in the background); their ids, oldest first."""
    ids = []
    for _ in range(count):
        response = api.run(config_id, {"invoice": [invoice()]}, wait=0)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


def list_runs(api: Api, **params: Any) -> dict[str, Any]:
    response = api.get(RUNS, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def walk(api: Api, cursor: str | None = None, **params: Any) -> list[dict[str, Any]]:
    """Every page of the run list from `cursor` on, following next_cursor until it is null."""
    pages = [list_runs(api, **params, **({"cursor": cursor} if cursor else {}))]
    while pages[-1]["pagination"]["next_cursor"] is not None:
        pages.append(list_runs(api, **params, cursor=pages[-1]["pagination"]["next_cursor"]))
    return pages


def ids_of(pages: list[dict[str, Any]]) -> list[str]:
    return [run["id"] for page in pages for run in page["data"]]


@pytest.fixture
def config_id(api: Api) -> str:
    return api.shipment_world()


@pytest.fixture
def forty_five_runs(api: Api, config_id: str) -> list[str]:
    return submit(api, config_id, 45)


# --- paging through 45 runs -------------------------------------------------------------------


def test_45_runs_in_pages_of_20_are_20_20_and_5(api: Api, forty_five_runs: list[str]) -> None:
    pages = walk(api, limit=20)
    assert [len(page["data"]) for page in pages] == [20, 20, 5]


def test_paging_returns_every_run_once_newest_first(api: Api, forty_five_runs: list[str]) -> None:
    assert ids_of(walk(api, limit=20)) == forty_five_runs[::-1]


def test_has_more_is_false_and_next_cursor_null_only_on_the_last_page(
    api: Api, forty_five_runs: list[str]
) -> None:
    pages = walk(api, limit=20)
    flags = [(p["pagination"]["has_more"], p["pagination"]["next_cursor"] is None) for p in pages]
    assert flags == [(True, False), (True, False), (False, True)]


def test_every_page_reports_the_total_and_the_limit(api: Api, config_id: str) -> None:
    submit(api, config_id, 5)
    pages = walk(api, limit=2)
    assert [(p["pagination"]["total"], p["pagination"]["limit"]) for p in pages] == [(5, 2)] * 3


def test_limit_defaults_to_20(api: Api, config_id: str) -> None:
    submit(api, config_id, 21)
    body = list_runs(api)
    assert (len(body["data"]), body["pagination"]["limit"], body["pagination"]["has_more"]) == (20, 20, True)


def test_limit_of_100_is_accepted(api: Api, config_id: str) -> None:
    submit(api, config_id, 3)
    body = list_runs(api, limit=100)
    assert (len(body["data"]), body["pagination"]["limit"]) == (3, 100)


def test_order_asc_reverses_the_list(api: Api, config_id: str) -> None:
    runs = submit(api, config_id, 5)
    assert ids_of(walk(api, limit=2, order="asc")) == runs
    assert ids_of(walk(api, limit=2, order="desc")) == runs[::-1]


# --- stability while runs are created ---------------------------------------------------------


def test_runs_created_between_pages_neither_repeat_nor_skip_newest_first(api: Api, config_id: str) -> None:
    before = submit(api, config_id, 25)
    first = list_runs(api, limit=10)
    submit(api, config_id, 5)
    rest = walk(api, limit=10, cursor=first["pagination"]["next_cursor"])
    assert ids_of([first, *rest]) == before[::-1]


def test_runs_created_between_pages_are_appended_oldest_first(api: Api, config_id: str) -> None:
    before = submit(api, config_id, 15)
    first = list_runs(api, limit=10, order="asc")
    after = submit(api, config_id, 5)
    rest = walk(api, limit=10, order="asc", cursor=first["pagination"]["next_cursor"])
    assert ids_of([first, *rest]) == before + after


# --- filters with pagination ------------------------------------------------------------------


def test_filtered_pages_count_only_matching_runs(api: Api, config_id: str) -> None:
    other_config = api.shipment_world()
    submit(api, other_config, 3)
    wanted = submit(api, config_id, 5)
    pages = walk(api, limit=2, package_config_id=config_id)
    assert ids_of(pages) == wanted[::-1]
    assert {p["pagination"]["total"] for p in pages} == {5}


def test_well_formed_config_id_matching_nothing_is_an_empty_page(api: Api, config_id: str) -> None:
    submit(api, config_id, 2)
    body = list_runs(api, package_config_id=f"pkg_{uuid.uuid4()}")
    assert body == {
        "data": [],
        "pagination": {"total": 0, "limit": 20, "has_more": False, "next_cursor": None},
    }


def test_status_with_no_runs_is_an_empty_page(api: Api, config_id: str) -> None:
    response = api.run(config_id, {"invoice": [invoice()]})
    assert response.json()["status"] == "review"
    assert list_runs(api, status="error")["data"] == []


# --- bad parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "101", "x", "-1", "2.5"])
def test_bad_limit_is_a_validation_error_on_limit(api: Api, limit: str) -> None:
    body = error_body(api.get(RUNS, params={"limit": limit}), 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["limit"]


@pytest.mark.parametrize("cursor", ["not-a-cursor", "e30", "eyJ0IjoxfQ", "W10", "!!!"])
def test_bad_cursor_is_a_validation_error_on_cursor(api: Api, cursor: str) -> None:
    body = error_body(api.get(RUNS, params={"cursor": cursor}), 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["cursor"]


def test_cursor_of_a_row_list_is_a_validation_error_on_a_time_ordered_list(api: Api) -> None:
    created = api.create("/v1/matching/reference-data", {"name": "two", "rows": [{"a": 1}, {"a": 2}]})
    row_cursor = api.get(created["links"]["rows"], params={"limit": 1}).json()["pagination"]["next_cursor"]
    error_body(api.get(RUNS, params={"cursor": row_cursor}), 400, "validation_error")


def test_unknown_order_is_a_validation_error_on_order(api: Api) -> None:
    body = error_body(api.get(RUNS, params={"order": "newest"}), 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["order"]


def test_unknown_status_is_a_validation_error_on_status(api: Api) -> None:
    body = error_body(api.get(RUNS, params={"status": "done"}), 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["status"]


@pytest.mark.parametrize("value", ["pkg_123", f"run_{uuid.UUID(int=1)}", "nonsense"])
def test_malformed_config_id_filter_is_a_validation_error(api: Api, value: str) -> None:
    body = error_body(api.get(RUNS, params={"package_config_id": value}), 400, "validation_error")
    assert body["message"] == "Invalid config ID format. Must be a UUID."
    assert [d["field"] for d in body["details"]] == ["package_config_id"]


# --- the other lists page the same way --------------------------------------------------------


def _three_of_each(api: Api) -> None:
    for _ in range(3):
        api.shipment_world()


@pytest.mark.parametrize(
    "path", ["/v1/matching/reference-data", "/v1/matching/configs", "/v1/matching/packages/configs"]
)
def test_config_lists_page_newest_first_without_repeats(api: Api, path: str) -> None:
    _three_of_each(api)
    everything = api.get(path, params={"limit": 100}).json()["data"]
    first = api.get(path, params={"limit": 2}).json()
    second = api.get(path, params={"limit": 2, "cursor": first["pagination"]["next_cursor"]}).json()
    assert [i["id"] for i in first["data"] + second["data"]] == [i["id"] for i in everything]
    assert [i["created_at"] for i in everything] == sorted(
        (i["created_at"] for i in everything), reverse=True
    )
    assert second["pagination"] == {"total": 3, "limit": 2, "has_more": False, "next_cursor": None}


@pytest.mark.parametrize(
    "path", ["/v1/matching/reference-data", "/v1/matching/configs", "/v1/matching/packages/configs"]
)
def test_config_lists_reject_a_bad_cursor(api: Api, path: str) -> None:
    body = error_body(api.get(path, params={"cursor": "nope"}), 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["cursor"]
