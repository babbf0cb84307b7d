"""`pagination.total` read from counts (issue 18) stays what a client can count by walking the pages,
through accepts, finalizations, reviews, prunes, a deleted config and webhook deliveries, on SQLite
and PostgreSQL."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from packmatch.bootstrap import Runtime
from packmatch.services.history.counts import CountsDoctor, fold_counts
from packmatch.services.history.retention import Retention, RetentionPolicy
from packmatch.store.counts import RUN_GROUP
from packmatch.store.tables import package_runs, run_counts
from tests.e2e.conftest import Api, invoice
from tests.e2e.test_history import cli

pytestmark = pytest.mark.usefixtures("restore_logging")

RUNS = "/v1/matching/packages/runs"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(
    request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime], start_api: Callable[[Runtime], Api]
) -> Api:
    url = str(request.getfixturevalue(f"{request.param}_url"))
    return start_api(make_runtime(database_url=url, webhook_allow_private_networks="127.0.0.0/8"))


def walked(api: Api, path: str, **params: Any) -> tuple[int, int]:
    """(pagination.total of the first page, the number of items found by following every cursor)."""
    body = api.get(path, params={**params, "limit": 2}).json()
    total, ids = body["pagination"]["total"], [item["id"] for item in body["data"]]
    while body["pagination"]["next_cursor"]:
        cursor = body["pagination"]["next_cursor"]
        body = api.get(path, params={**params, "limit": 2, "cursor": cursor}).json()
        ids += [item["id"] for item in body["data"]]
    assert len(set(ids)) == len(ids)  # pages never repeat an item
    return total, len(ids)


def assert_run_totals(api: Api, configs: list[str]) -> None:
    combos = itertools.product(
        [None, *configs],
        [None, "running", "passed", "review", "failed", "error"],
        [None, "true", "false"],
        [None, "approved", "rejected"],
    )
    for config, status, reviewed, decision in combos:
        given = {"package_config_id": config, "status": status, "reviewed": reviewed}
        params = {k: v for k, v in {**given, "review_decision": decision}.items() if v is not None}
        total, seen = walked(api, RUNS, **params)
        assert total == seen, params


def final(api: Api, config_id: str, documents: dict[str, Any]) -> dict[str, Any]:
    response = api.run(config_id, documents)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


def test_run_totals_follow_accepts_reviews_prunes_and_a_deleted_config(api: Api) -> None:
    one, two = api.shipment_world(("required", "expected")), api.shipment_world(("required",))
    runs = [final(api, one, {"invoice": [invoice()]}) for _ in range(3)]  # review: a slot is missing
    runs += [final(api, one, {"invoice": [invoice()], "delivery_note": [invoice()]})]  # passed
    runs += [final(api, two, {"invoice": [invoice()]}) for _ in range(2)]  # passed
    assert {run["status"] for run in runs} == {"review", "passed"}
    assert_run_totals(api, [one, two])

    for run, decision in zip(runs[:2], ["approved", "rejected"], strict=True):
        response = api.post(f"{RUNS}/{run['id']}/review", json={"decision": decision})
        assert response.status_code == 200, response.text
    api.post(f"{RUNS}/{runs[0]['id']}/review", json={"decision": "rejected"})  # changed its mind
    assert walked(api, RUNS, status="review", reviewed="false") == (1, 1)
    assert walked(api, RUNS, review_decision="rejected") == (2, 2)
    assert_run_totals(api, [one, two])

    later = datetime.now(UTC) + timedelta(days=2)
    retention = Retention(api.runtime.services.db, RetentionPolicy(batch=2), clock=lambda: later)
    pruned, _ = retention.prune(retention.cutoffs(older_than=timedelta(days=1)))
    assert pruned.runs == 5  # the one awaiting review stays
    assert_run_totals(api, [one, two])

    assert fold_counts(api.runtime.services.db) > 0
    with api.runtime.services.db.transaction() as conn:  # one row per group once folded
        groups = conn.execute(sa.select(*(run_counts.c[g] for g in RUN_GROUP)).distinct()).all()
        assert conn.execute(sa.select(sa.func.count()).select_from(run_counts)).scalar_one() == len(groups)
    assert_run_totals(api, [one, two])
    assert api.client.delete(f"/v1/matching/packages/configs/{one}", headers=api.headers).status_code == 200
    assert walked(api, RUNS) == (0, 0)
    assert CountsDoctor(api.runtime.services.db).check().drifts == []


def test_delivery_totals_follow_finalizations_and_prunes(api: Api) -> None:
    config = api.shipment_world(("required",))
    hook = api.create("/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "secret": "s" * 32})
    deliveries = f"/v1/webhooks/{hook['id']}/deliveries"
    for _ in range(4):
        final(api, config, {"invoice": [invoice()]})
    assert walked(api, deliveries) == (4, 4)
    for status in ("pending", "delivered", "failed"):
        total, seen = walked(api, deliveries, status=status)
        assert total == seen, status
    assert CountsDoctor(api.runtime.services.db).check().drifts == []


# --- packmatch doctor counts -------------------------------------------------------------------


def test_doctor_counts_reports_drift_one_line_each_and_fix_repairs_it(
    api: Api, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PACKMATCH_DATABASE_URL", str(api.runtime.settings.database_url))
    config = api.shipment_world(("required",))
    runs = [final(api, config, {"invoice": [invoice()]}) for _ in range(3)]
    assert cli(capsys, "doctor", "counts") == (0, "counts: no drift\n", "")
    with api.runtime.services.db.transaction() as conn:  # behind the counts' back
        conn.execute(sa.update(package_runs).values(status="failed"))

    code, out, err = cli(capsys, "doctor", "counts")
    assert code == 1
    group = f"runs organization=acme package_config={config}"
    assert out.splitlines() == [
        f"{group} status=failed review_decision=none: counted 0, rows 3",
        f"{group} status=passed review_decision=none: counted 3, rows 0",
    ]
    assert err.splitlines()[-1].startswith("packmatch: 2 count group(s) drift")  # above: the JSON logs
    code, out, _ = cli(capsys, "doctor", "counts", "--fix")
    assert (code, out.splitlines()[-1]) == (0, "counts: fixed 2 group(s)")
    assert cli(capsys, "doctor", "counts")[:2] == (0, "counts: no drift\n")
    assert walked(api, RUNS, status="failed") == (len(runs), len(runs))


def test_doctor_counts_on_an_unreachable_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PACKMATCH_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    code, out, err = cli(capsys, "doctor", "counts")
    assert (code, out) == (1, "")
    assert err.splitlines()[-1].startswith("packmatch: database error")
