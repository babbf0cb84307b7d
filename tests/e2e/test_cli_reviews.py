"""`packmatch keys create --name`, `keys list`, `runs pending-review` and `runs review`."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from packmatch import cli, reviewing
from tests.e2e.conftest import Api, invoice
from tests.e2e.test_api_reviews import final_run, reviewer


def through(api: Api) -> reviewing.Call:
    """A `Call` that sends to the in-process app, as the CLI sends to a server."""

    def call(method: str, path: str, body: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        response = api.client.request(method, path, headers=api.headers, json=body)
        return response.status_code, response.json()

    return call


def two_review_runs(api: Api) -> tuple[str, list[dict[str, Any]]]:
    config = api.shipment_world(("required", "expected"))
    runs = [final_run(api, config, {"invoice": [invoice(f"doc_{i}")]}) for i in range(2)]
    assert [r["status"] for r in runs] == ["review", "review"]
    return config, runs


def test_pending_review_lists_the_undecided_review_runs_oldest_first(api: Api) -> None:
    config, runs = two_review_runs(api)
    other_config = api.shipment_world(("required", "expected"))
    final_run(api, other_config, {"invoice": [invoice()]})
    out = io.StringIO()
    assert reviewing.pending_review(through(api), config, out) == 2
    assert [line.split()[0] for line in out.getvalue().splitlines()] == [r["id"] for r in runs]


def test_review_approves_a_run_and_it_leaves_the_queue(api: Api) -> None:
    config, runs = two_review_runs(api)
    dana = reviewer(api)
    out = io.StringIO()
    run = reviewing.review_run(through(dana), runs[0]["id"], "approved", "ok", out)
    assert (run["status"], run["review"]["decision"]) == ("review", "approved")
    assert "by Dana (AP team)" in out.getvalue()
    queue = io.StringIO()
    assert reviewing.pending_review(through(api), config, queue) == 1
    assert runs[0]["id"] not in queue.getvalue()


def test_review_of_a_missing_run_is_a_one_line_error(api: Api) -> None:
    with pytest.raises(reviewing.ReviewError, match="404 not_found"):
        reviewing.review_run(
            through(api), "run_00000000-0000-4000-8000-000000000000", "rejected", None, io.StringIO()
        )


def test_keys_create_with_a_name_shows_it_in_keys_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    monkeypatch.setenv("PACKMATCH_DATABASE_URL", f"sqlite:///{tmp_path / 'keys.db'}")
    code = cli.main(
        ["keys", "create", "--organization", "acme", "--scopes", "review", "--name", "Dana (AP team)"]
    )
    key = capsys.readouterr().out.strip()
    assert code == 0
    assert key.startswith("pmk_")
    assert cli.main(["keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert "Dana (AP team)" in listed
    assert "review" in listed
    assert key not in listed


def test_the_cli_needs_a_key(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, restore_logging: None
) -> None:
    monkeypatch.delenv("PACKMATCH_API_KEY", raising=False)
    assert cli.main(["runs", "pending-review"]) == 1
    assert "API key is needed" in capsys.readouterr().err
