"""Retention and the archive (issue 18): `packmatch prune`, `export runs`, `import runs` and the
worker's periodic prune, on SQLite and PostgreSQL, checked through the API a client sees."""

from __future__ import annotations

import gzip
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import structlog
import structlog.testing

from packmatch.bootstrap import Runtime, retention_policy
from packmatch.cli import main
from packmatch.services.history.retention import Retention, RetentionJob, RetentionPolicy
from packmatch.store.tables import (
    evaluations,
    match_results,
    matching_runs,
    package_runs,
    result_reviews,
    review_exclusions,
    run_reviews,
    run_slots,
    webhook_deliveries,
)
from tests.e2e.conftest import Api, invoice

pytestmark = pytest.mark.usefixtures("restore_logging")

RUNS = "/v1/matching/packages/runs"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def api(
    make_runtime: Callable[..., Runtime],
    database_url: str,
    start_api: Callable[[Runtime], Api],
    monkeypatch: pytest.MonkeyPatch,
) -> Api:
    monkeypatch.setenv("PACKMATCH_DATABASE_URL", database_url)  # for the CLI commands
    return start_api(make_runtime(database_url=database_url, webhook_allow_private_networks="127.0.0.0/8"))


def final_run(api: Api, config_id: str, documents: dict[str, Any]) -> dict[str, Any]:
    response = api.run(config_id, documents)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    assert run["status"] != "running"
    return run


def everything_about(api: Api, run: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of a run: the run, each matching run and all its results."""
    shown: dict[str, Any] = {"run": api.get(f"{RUNS}/{run['id']}").json(), "matching": []}
    for slot in shown["run"]["document_results"]:
        if slot.get("matching_run_id"):
            matching = api.get(f"/v1/matching/runs/{slot['matching_run_id']}").json()
            results = api.get(matching["links"]["results"], params={"limit": 1000}).json()
            shown["matching"].append({"run": matching, "results": results})
    return shown


def row_counts(api: Api) -> dict[str, int]:
    with api.runtime.services.db.transaction() as conn:
        return {
            table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (
                *(package_runs, run_slots, matching_runs, match_results, webhook_deliveries),
                *(run_reviews, result_reviews, review_exclusions),
            )
        }


def retention(api: Api, *, days_ahead: float = 2, **policy: Any) -> Retention:
    """Retention as seen from `days_ahead` days in the future (so today's runs are old)."""
    later = datetime.now(UTC) + timedelta(days=days_ahead)
    return Retention(api.runtime.services.db, RetentionPolicy(**policy), clock=lambda: later)


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `packmatch …` in this process; its stdout and stderr alone.

    `main` points logging at the captured stderr: the handlers go back at once, so that the
    in-process worker's later lines never reach a capture that has closed.
    """
    root = logging.getLogger()
    handlers, level, config = root.handlers[:], root.level, structlog.get_config()
    capsys.readouterr()  # what the API logged before
    try:
        code = main(list(argv))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**config)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- pruning ---------------------------------------------------------------------------------


def test_prune_deletes_old_final_runs_with_everything_they_own(api: Api) -> None:
    config_id = api.shipment_world(("required",))
    runs = [final_run(api, config_id, {"invoice": [invoice(f"doc_{n}")]}) for n in range(3)]
    assert {run["status"] for run in runs} == {"passed"}
    before = row_counts(api)
    assert before["match_results"] == 3

    counts, done = retention(api, default_days=1).prune(retention(api, default_days=1).cutoffs())

    assert done
    assert (counts.runs, counts.matching_runs, counts.results) == (3, 3, 3)
    assert row_counts(api) == dict.fromkeys(before, 0)
    for run in runs:
        assert api.get(f"{RUNS}/{run['id']}").status_code == 404
        matching_run_id = run["document_results"][0]["matching_run_id"]
        assert api.get(f"/v1/matching/runs/{matching_run_id}").status_code == 404


def test_prune_deletes_review_histories_and_exclusions_and_reports_its_progress(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    config_id = api.shipment_world(("required",))
    runs = [final_run(api, config_id, {"invoice": [invoice(f"doc_{n}")]}) for n in range(2)]
    for run, status in zip(runs, ("rejected", "approved"), strict=True):
        mr = run["document_results"][0]["matching_run_id"]
        [result] = api.get(f"/v1/matching/runs/{mr}/results").json()["data"]
        reviewed = api.post(f"/v1/matching/runs/{mr}/results/{result['id']}/review", json={"status": status})
        assert reviewed.status_code == 200, reviewed.text
    assert api.post(f"{RUNS}/{runs[0]['id']}/review", json={"decision": "approved"}).status_code == 200
    before = row_counts(api)
    assert (before["run_reviews"], before["result_reviews"], before["review_exclusions"]) == (1, 2, 1)
    metrics = api.runtime.metrics
    pruned_before = metrics.runs_pruned_total._value.get(), metrics.results_pruned_total._value.get()
    later = datetime.now(UTC) + timedelta(days=2)
    policy = RetentionPolicy(default_days=1, batch=1)
    old = Retention(api.runtime.services.db, policy, metrics=metrics, clock=lambda: later)

    with structlog.testing.capture_logs() as logs:
        counts, done = old.prune(old.cutoffs())

    assert done
    assert (counts.runs, counts.results, counts.reviews) == (2, 2, 3)
    assert row_counts(api) == dict.fromkeys(before, 0)
    batches = [line for line in logs if line["event"] == "retention.batch_pruned"]
    assert [(b["organization"], b["runs"], b["results"], b["reviews"]) for b in batches] == [
        ("acme", 1, 1, 2),
        ("acme", 1, 1, 1),
    ]
    assert set(batches[0]) == {
        *("event", "log_level", "organization", "runs", "matching_runs", "results", "deliveries"),
        *("reviews", "duration_ms"),
    }  # counts and the organization's name: no ids at all
    pruned_after = metrics.runs_pruned_total._value.get(), metrics.results_pruned_total._value.get()
    assert (pruned_after[0] - pruned_before[0], pruned_after[1] - pruned_before[1]) == (2, 2)
    assert cli(capsys, "doctor", "counts")[:2] == (0, "counts: no drift\n")


@pytest.mark.postgres
def test_prune_skips_a_run_a_reviewer_holds_instead_of_waiting(
    make_runtime: Callable[..., Runtime], postgres_url: str, start_api: Callable[[Runtime], Api]
) -> None:
    import threading

    from packmatch.store import reviews as review_store

    api = start_api(make_runtime(database_url=postgres_url))
    config_id = api.shipment_world(("required",))
    held, free = (final_run(api, config_id, {"invoice": [invoice(f"doc_{n}")]}) for n in range(2))
    db = api.runtime.services.db
    old = retention(api, default_days=1)
    outcome: list[Any] = []
    with db.transaction() as reviewer:  # a review of `held` in progress: its run row is locked
        held_id = uuid.UUID(held["id"].removeprefix("run_"))
        organization_id = reviewer.execute(
            sa.select(package_runs.c.organization_id).where(package_runs.c.id == held_id)
        ).scalar_one()
        assert review_store.lock_run(reviewer, organization_id, held_id) is not None
        pruning = threading.Thread(target=lambda: outcome.append(old.prune(old.cutoffs())))
        pruning.start()
        pruning.join(timeout=10)
        finished = not pruning.is_alive()
    pruning.join()
    assert finished, "prune waited for the reviewer's lock"
    assert outcome[0][0].runs == 1
    assert api.get(f"{RUNS}/{held['id']}").status_code == 200
    assert api.get(f"{RUNS}/{free['id']}").status_code == 404
    assert old.prune(old.cutoffs())[0].runs == 1  # the next pass takes it


def test_prune_deletes_ended_evaluations_of_the_same_age_but_not_a_running_one(api: Api) -> None:
    from tests.e2e.test_api_evaluations import CONFIGS, final, labelled_rows, matching_config

    path = f"{CONFIGS}/{matching_config(api)['id']}/evaluations"
    ended = [final(api, api.post(path, json={"rows": labelled_rows()}).headers["Location"]) for _ in range(3)]
    with api.runtime.services.db.transaction() as conn:  # as if a worker were still on the last one
        still = uuid.UUID(ended[2]["id"].removeprefix("eval_"))
        conn.execute(sa.update(evaluations).where(evaluations.c.id == still).values(status="running"))
    young = retention(api, days_ahead=0.5, default_days=1)
    assert young.prune(young.cutoffs())[0].evaluations == 0
    old = retention(api, default_days=1, batch=1)
    counts, done = old.prune(old.cutoffs())
    assert (counts.evaluations, done) == (2, True)
    assert [e["id"] for e in api.get(path).json()["data"]] == [ended[2]["id"]]


def test_prune_keeps_young_runs_and_runs_awaiting_review(api: Api) -> None:
    config_id = api.shipment_world(("required", "expected"))
    review = final_run(api, config_id, {"invoice": [invoice()]})  # the expected slot is missing
    passed = final_run(api, config_id, {"invoice": [invoice()], "delivery_note": [invoice()]})
    assert (review["status"], passed["status"]) == ("review", "passed")

    young = retention(api, days_ahead=0.5, default_days=1)
    assert young.prune(young.cutoffs())[0].runs == 0
    old = retention(api, default_days=1)
    assert old.prune(old.cutoffs())[0].runs == 1
    assert api.get(f"{RUNS}/{review['id']}").status_code == 200
    assert api.get(f"{RUNS}/{passed['id']}").status_code == 404

    everything = retention(api, default_days=1, include_awaiting_review=True)
    assert everything.prune(everything.cutoffs())[0].runs == 1
    assert api.get(f"{RUNS}/{review['id']}").status_code == 404


def test_prune_never_touches_a_running_run(api: Api) -> None:
    run = final_run(api, api.shipment_world(("required",)), {"invoice": [invoice()]})
    with api.runtime.services.db.transaction() as conn:  # as if it were still in flight
        conn.execute(sa.update(package_runs).values(status="running"))

    old = retention(api, default_days=1, include_awaiting_review=True)
    assert old.prune(old.cutoffs())[0].runs == 0
    assert api.get(f"{RUNS}/{run['id']}").status_code == 200


def test_a_pending_delivery_keeps_its_run(api: Api) -> None:
    config_id = api.shipment_world(("required",))
    api.create("/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "secret": "s" * 32})
    pending = final_run(api, config_id, {"invoice": [invoice()]})
    assert row_counts(api)["webhook_deliveries"] == 1

    old = retention(api, default_days=1)
    assert old.prune(old.cutoffs())[0].runs == 0
    with api.runtime.services.db.transaction() as conn:
        conn.execute(sa.update(webhook_deliveries).values(status="failed"))
    counts, _ = old.prune(old.cutoffs())
    assert (counts.runs, counts.deliveries) == (1, 1)
    assert api.get(f"{RUNS}/{pending['id']}").status_code == 404


def test_per_organization_ages_override_the_default(api: Api) -> None:
    other = api.other_organization("globex")
    for client in (api, other):
        final_run(client, client.shipment_world(("required",)), {"invoice": [invoice()]})
    keep_acme = retention(api, default_days=1, by_organization={"acme": 0})
    assert [c.organization for c in keep_acme.cutoffs()] == ["globex"]
    assert keep_acme.prune(keep_acme.cutoffs())[0].runs == 1
    assert api.get(RUNS).json()["pagination"]["total"] == 1
    assert other.get(RUNS).json()["pagination"]["total"] == 0

    only_acme = retention(api, by_organization={"acme": 1})
    assert [c.organization for c in only_acme.cutoffs()] == ["acme"]


def test_older_than_spares_an_organization_kept_forever_unless_it_is_named(api: Api) -> None:
    other = api.other_organization("globex")
    for client in (api, other):
        final_run(client, client.shipment_world(("required",)), {"invoice": [invoice()]})
    keep_acme = retention(api, by_organization={"acme": 0})
    assert [c.organization for c in keep_acme.cutoffs(timedelta(0))] == ["globex"]
    assert [c.organization for c in keep_acme.cutoffs(timedelta(0), "acme")] == ["acme"]
    assert [c.organization for c in retention(api).cutoffs(timedelta(0))] == ["acme", "globex"]


def test_prune_goes_in_batches_and_a_budget_leaves_the_rest_for_later(api: Api) -> None:
    config_id = api.shipment_world(("required",))
    for n in range(5):
        final_run(api, config_id, {"invoice": [invoice(f"doc_{n}")]})
    batches: list[int] = []
    small = retention(api, default_days=1, batch=2)
    assert small.prune(small.cutoffs(), budget_seconds=0) == (small.prune([], budget_seconds=0)[0], False)
    counts, done = small.prune(small.cutoffs(), on_batch=lambda total: batches.append(total.runs))
    assert done
    assert counts.runs == 5
    assert batches == [2, 4, 5]


class FakeTime:
    """A monotonic clock that moves only by the pauses it is asked for, and by `work` a batch."""

    def __init__(self, work: float = 0.0) -> None:
        self.now, self.work = 100.0, work
        self.pauses: list[float] = []

    def monotonic(self) -> float:
        self.now += self.work
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(round(seconds, 6))
        self.now += seconds


def paced(api: Api, time_source: FakeTime, **policy: Any) -> Retention:
    later = datetime.now(UTC) + timedelta(days=2)
    return Retention(
        api.runtime.services.db,
        RetentionPolicy(default_days=1, **policy),
        clock=lambda: later,
        monotonic=time_source.monotonic,
        sleep=time_source.sleep,
    )


def test_a_paced_prune_pauses_between_batches_to_keep_its_rate(api: Api) -> None:
    config_id = api.shipment_world(("required",))
    for n in range(5):
        final_run(api, config_id, {"invoice": [invoice(f"doc_{n}")]})
    clock = FakeTime()
    slow = paced(api, clock, batch=2, max_runs_per_minute=60)  # a run a second
    counts, done = slow.prune(slow.cutoffs())
    assert (counts.runs, done) == (5, True)
    # after 2 runs it is due at 2 s, after 4 at 4 s; none after the last, short batch
    assert clock.pauses == [2.0, 2.0]
    assert clock.now - 100.0 == pytest.approx(4.0)
    assert row_counts(api)["package_runs"] == 0


def test_a_pace_the_batches_already_keep_adds_no_pause_and_a_budget_caps_the_pause(api: Api) -> None:
    config_id = api.shipment_world(("required",))
    for n in range(5):
        final_run(api, config_id, {"invoice": [invoice(f"doc_{n}")]})
    busy = FakeTime(work=10.0)  # every clock reading 10 s later: each batch takes longer than its pace
    assert paced(api, busy, batch=2, max_runs_per_minute=60).prune(paced(api, busy).cutoffs())[0].runs == 5
    assert busy.pauses == []

    for n in range(4):
        final_run(api, config_id, {"invoice": [invoice(f"doc_{n}")]})
    capped = FakeTime()
    slow = paced(api, capped, batch=2, max_runs_per_minute=1)  # 2 runs: due only after 2 minutes
    counts, done = slow.prune(slow.cutoffs(), budget_seconds=30)
    assert (counts.runs, done, capped.pauses) == (2, False, [30.0])  # the pause ends with the budget
    assert row_counts(api)["package_runs"] == 2


def test_an_age_for_an_unknown_organization_is_reported(
    api: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api.shipment_world(("required",))
    assert retention(api, by_organization={"acme": 3, "acne": 1}).unknown_organizations() == ["acne"]
    monkeypatch.setenv("PACKMATCH_RETENTION_DAYS_BY_ORGANIZATION", '{"acne": 1}')
    code, _, err = cli(capsys, "prune", "--dry-run")
    assert code == 0
    warning = "packmatch: warning: no organization named 'acne' (PACKMATCH_RETENTION_DAYS_BY_ORGANIZATION)"
    assert warning in err.splitlines()


def test_the_worker_job_logs_an_age_for_an_unknown_organization(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from packmatch.services.history import retention as retention_module
    from tests.integration.conftest import RecordingLog

    recorder = RecordingLog()
    monkeypatch.setattr(retention_module, "log", recorder)
    api.shipment_world(("required",))
    job = RetentionJob(retention(api, by_organization={"acne": 1}), interval_seconds=1, budget_seconds=1)
    job.prune_due()
    warned = [(event, fields) for level, event, fields in recorder.calls if level == "warning"]
    assert warned == [("retention.unknown_organizations", {"organizations": ["acne"]})]


def test_cli_prune_takes_a_pace_and_refuses_a_bad_one(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    config_id = api.shipment_world(("required",))
    final_run(api, config_id, {"invoice": [invoice()]})
    for bad in ("0", "-5", "fast", "1" * 12):
        with pytest.raises(SystemExit) as exited:
            main(["prune", "--older-than", "0d", "--max-rate", bad])
        assert exited.value.code == 2
        assert "is not a whole number from 1 to 999,999,999" in capsys.readouterr().err
    code, out, _ = cli(capsys, "prune", "--older-than", "0d", "--max-rate", "600000")
    assert (code, out.split(",")[0]) == (0, "pruned 1 run(s)")


def test_the_worker_job_prunes_then_waits_its_interval(api: Api) -> None:
    config_id = api.shipment_world(("required",))
    final_run(api, config_id, {"invoice": [invoice("doc_1")]})
    clock = [1000.0]
    job = RetentionJob(
        retention(api, default_days=1), interval_seconds=300, budget_seconds=60, monotonic=lambda: clock[0]
    )
    assert job.prune_due() == 1
    final_run(api, config_id, {"invoice": [invoice("doc_2")]})
    clock[0] += 299
    assert job.prune_due() == 0  # not due yet
    clock[0] += 2
    assert job.prune_due() == 1


def test_the_worker_job_does_nothing_when_everything_is_kept(api: Api) -> None:
    final_run(api, api.shipment_world(("required",)), {"invoice": [invoice()]})
    job = RetentionJob(retention(api, days_ahead=10_000), interval_seconds=1, budget_seconds=1)
    assert job.prune_due() == 0
    assert row_counts(api)["package_runs"] == 1


def test_the_reconciler_pass_prunes_with_the_settings_policy(
    make_runtime: Callable[..., Runtime], sqlite_url: str, start_api: Callable[[Runtime], Api]
) -> None:
    api = start_api(make_runtime(database_url=sqlite_url, retention_days=1))
    assert retention_policy(api.runtime.settings).default_days == 1
    final_run(api, api.shipment_world(("required",)), {"invoice": [invoice()]})
    assert api.runtime.reconciler().reconcile_once().pruned == 0  # created today: not yet
    assert row_counts(api)["package_runs"] == 1


def test_the_reconciler_pass_prunes_a_run_past_retention_and_keeps_counts_exact(
    make_runtime: Callable[..., Runtime],
    sqlite_url: str,
    start_api: Callable[[Runtime], Api],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PACKMATCH_DATABASE_URL", sqlite_url)
    api = start_api(make_runtime(database_url=sqlite_url, retention_days=1))
    config_id = api.shipment_world(("required",))
    old, young = (final_run(api, config_id, {"invoice": [invoice(f"doc_{n}")]}) for n in range(2))
    with api.runtime.services.db.transaction() as conn:  # created three days ago (not a counted column)
        conn.execute(
            sa.update(package_runs)
            .where(package_runs.c.id == uuid.UUID(old["id"].removeprefix("run_")))
            .values(created_at=datetime.now(UTC) - timedelta(days=3))
        )
    assert api.runtime.reconciler().reconcile_once().pruned == 1
    assert api.get(f"{RUNS}/{old['id']}").status_code == 404
    assert api.get(f"{RUNS}/{young['id']}").status_code == 200
    assert api.get(RUNS).json()["pagination"]["total"] == 1
    assert cli(capsys, "doctor", "counts")[:2] == (0, "counts: no drift\n")


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_prune_dry_run_counts_and_prune_deletes(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    config_id = api.shipment_world(("required",))
    final_run(api, config_id, {"invoice": [invoice()]})

    code, out, _ = cli(capsys, "prune", "--older-than", "0d", "--dry-run")
    assert code == 0
    assert out.startswith("acme: 1 run(s) created before ")
    assert row_counts(api)["package_runs"] == 1

    code, out, _ = cli(capsys, "prune", "--older-than", "0d")
    assert (code, out) == (
        0,
        "pruned 1 run(s), 1 matching run(s), 1 result(s), 0 webhook deliver(ies), 0 review decision(s), "
        "0 evaluation(s)\n",
    )
    assert row_counts(api)["package_runs"] == 0


def test_cli_prune_without_a_policy_says_so(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "prune")
    assert code == 0
    assert out.startswith("nothing to prune")


def test_cli_prune_refuses_a_bad_age_and_an_unknown_organization(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["prune", "--older-than", "ninety days"])
    assert exited.value.code == 2
    assert "is not an age such as 90d" in capsys.readouterr().err
    code, _, err = cli(capsys, "prune", "--older-than", "1d", "--organization", "nobody")
    assert code == 1
    assert err.splitlines()[-1] == "packmatch: no organization named 'nobody' with a retention period"


# --- export and import -----------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True])
def test_export_prune_import_gives_back_exactly_what_the_api_showed(
    api: Api,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    compressed: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PACKMATCH_RETENTION_INCLUDE_AWAITING_REVIEW", "true")
    config_id = api.shipment_world()
    runs = [
        final_run(api, config_id, {"invoice": [invoice("a"), invoice("b", total="1")]}),
        final_run(api, config_id, {"invoice": [invoice()], "delivery_note": [invoice()]}),
    ]
    shown = [everything_about(api, run) for run in runs]
    archive = tmp_path / ("runs.jsonl.gz" if compressed else "runs.jsonl")

    argv = ["export", "runs", "--output", str(archive), *(["--gzip"] if compressed else [])]
    assert cli(capsys, *argv)[0] == 0
    raw = archive.read_bytes()
    lines = (gzip.decompress(raw) if compressed else raw).splitlines()
    assert [json.loads(line)["tables"]["package_runs"][0]["id"] for line in lines] == [
        run["id"].removeprefix("run_") for run in runs
    ]
    assert cli(capsys, "prune", "--older-than", "0d", "--dry-run")[1].startswith("acme: 2 run(s)")
    assert cli(capsys, "prune", "--older-than", "0d")[0] == 0
    assert all(api.get(f"{RUNS}/{run['id']}").status_code == 404 for run in runs)

    code, out, err = cli(capsys, "import", "runs", str(archive))
    assert (code, out) == (0, "imported 2 run(s); 0 already present\n")
    assert [json.loads(line)["event"] for line in err.splitlines()] == ["runs.imported"]
    assert [everything_about(api, run) for run in runs] == shown

    code, out, _ = cli(capsys, "import", "runs", str(archive))
    assert (code, out) == (0, "imported 0 run(s); 2 already present\n")


def test_export_filters_by_time_and_organization(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    other = api.other_organization("globex")
    for client in (api, other):
        final_run(client, client.shipment_world(("required",)), {"invoice": [invoice()]})
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()

    assert len(cli(capsys, "export", "runs")[1].splitlines()) == 2
    assert len(cli(capsys, "export", "runs", "--organization", "globex")[1].splitlines()) == 1
    assert cli(capsys, "export", "runs", "--since", tomorrow)[1] == ""
    assert len(cli(capsys, "export", "runs", "--until", tomorrow)[1].splitlines()) == 2
    assert cli(capsys, "export", "runs", "--organization", "nobody")[0] == 1


def exported_then_pruned(api: Api, capsys: pytest.CaptureFixture[str], runs: int = 2) -> list[bytes]:
    """Export lines of `runs` final runs, which are then pruned (so that they could go back in)."""
    config_id = api.shipment_world(("required",))
    for n in range(runs):
        final_run(api, config_id, {"invoice": [invoice(f"doc_{n}")]})
    _, exported, _ = cli(capsys, "export", "runs")
    assert cli(capsys, "prune", "--older-than", "0d")[0] == 0
    return [line.encode() for line in exported.splitlines()]


def import_refused(
    api: Api, capsys: pytest.CaptureFixture[str], archive: Path, content: bytes
) -> tuple[str, dict[str, int]]:
    """Import `content` expecting a refusal: the one line it says (rows must not change)."""
    archive.write_bytes(content)
    before = row_counts(api)
    code, out, err = cli(capsys, "import", "runs", str(archive))
    said = [line for line in err.splitlines() if not line.startswith("{")]
    assert (code, out, len(said)) == (1, "", 1), (code, out, err)
    assert row_counts(api) == before
    return said[0].removeprefix(f"packmatch: cannot import {archive}: "), row_counts(api)


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (b"not json", "line 2: not JSON; nothing was imported"),
        (b'{"not": "an export"}', "line 2: not a packmatch export line (format 1); nothing was imported"),
        (
            b'{"packmatch_export": 2, "tables": {}}',
            "line 2: export format 2 is newer than this packmatch reads (1): upgrade packmatch; "
            "nothing was imported",
        ),
    ],
    ids=["not-json", "not-an-export", "newer-format"],
)
def test_a_bad_line_refuses_the_whole_file_in_one_line(
    api: Api, capsys: pytest.CaptureFixture[str], tmp_path: Path, bad: bytes, says: str
) -> None:
    good = exported_then_pruned(api, capsys)
    said, rows = import_refused(api, capsys, tmp_path / "runs.jsonl", b"\n".join([good[0], bad, good[1]]))
    assert said == says
    assert rows["package_runs"] == 0  # not even the good line before it


def test_a_truncated_gzip_is_one_line_and_imports_nothing(
    api: Api, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    whole = gzip.compress(b"\n".join(exported_then_pruned(api, capsys)) + b"\n")
    said, rows = import_refused(api, capsys, tmp_path / "runs.jsonl.gz", whole[: len(whole) - 12])
    assert said == "the gzip stream is truncated or corrupt; nothing was imported"
    assert rows["package_runs"] == 0


def test_a_run_that_cannot_go_in_refuses_the_file_and_present_runs_are_skipped(
    api: Api, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = exported_then_pruned(api, capsys)
    foreign = json.loads(good[1])
    foreign["tables"]["package_runs"][0]["id"] = "00000000-0000-4000-8000-000000000001"
    foreign["tables"]["package_runs"][0]["organization_id"] = "00000000-0000-4000-8000-000000000002"
    archive = tmp_path / "runs.jsonl"
    said, rows = import_refused(api, capsys, archive, b"\n".join([good[0], json.dumps(foreign).encode()]))
    assert said == "line 2: its organization is not in this database; nothing was imported"
    assert rows["package_runs"] == 0

    running = json.loads(good[1])
    running["tables"]["package_runs"][0]["status"] = "running"
    said, _ = import_refused(api, capsys, archive, json.dumps(running).encode())
    assert said == "line 1: the run is still running (only final runs are archived); nothing was imported"

    archive.write_bytes(good[0] + b"\n")
    assert cli(capsys, "import", "runs", str(archive))[:2] == (0, "imported 1 run(s); 0 already present\n")
    archive.write_bytes(b"\n".join(good) + b"\n")  # an interrupted import, run again
    assert cli(capsys, "import", "runs", str(archive))[:2] == (0, "imported 1 run(s); 1 already present\n")

    stolen = json.loads(good[1])  # a new run id, but its matching run's id is another run's
    stolen["tables"]["package_runs"][0]["id"] = "00000000-0000-4000-8000-000000000003"
    said, _ = import_refused(api, capsys, archive, json.dumps(stolen).encode())
    assert said == (
        "line 1: its matching_runs rows conflict with rows of another run in this database; "
        "nothing was imported"
    )
    assert cli(capsys, "doctor", "counts")[:2] == (0, "counts: no drift\n")


def test_import_of_a_missing_file_is_one_line(api: Api, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "import", "runs", "/nonexistent/runs.jsonl")
    assert code == 1
    assert err.splitlines()[-1] == "packmatch: cannot read /nonexistent/runs.jsonl: No such file or directory"


def _fail_every_pending_delivery(api: Api) -> None:
    """End each pending delivery for good through the store code the worker uses (counts kept)."""
    from packmatch.store import webhooks as webhook_store

    db, d = api.runtime.services.db, webhook_deliveries.c
    pending = sa.select(d.id, d.attempts).where(d.status == "pending")
    for _ in range(50):  # the worker may take an attempt meanwhile: then the next round ends it
        with db.transaction() as conn:
            rows = conn.execute(pending).all()
            for delivery_id, attempts in rows:
                webhook_store.record_failure(
                    conn, delivery_id, attempts, 500, "refused", None, datetime.now(UTC)
                )
        if not rows:
            return
    raise AssertionError("deliveries stayed pending")


def reviews_and_deliveries(api: Api, runs: list[dict[str, Any]], webhook_id: str) -> dict[str, Any]:
    """Beyond `everything_about`: review histories, the deliveries and the lists' totals."""
    shown: dict[str, Any] = {"runs": [everything_about(api, run) for run in runs], "histories": []}
    for run in runs:
        shown["histories"].append(api.get(f"{RUNS}/{run['id']}/reviews").json())
        for slot in run["document_results"]:
            if slot.get("matching_run_id"):
                results = api.get(f"/v1/matching/runs/{slot['matching_run_id']}/results").json()["data"]
                for result in results:
                    path = f"/v1/matching/runs/{slot['matching_run_id']}/results/{result['id']}/reviews"
                    shown["histories"].append(api.get(path).json())
    deliveries = f"/v1/webhooks/{webhook_id}/deliveries"
    shown["deliveries"] = api.get(deliveries, params={"limit": 100}).json()
    shown["failed"] = api.get(deliveries, params={"status": "failed"}).json()["pagination"]
    shown["totals"] = [
        api.get(RUNS, params=query).json()["pagination"]["total"]
        for query in ({}, {"reviewed": "true"}, {"review_decision": "approved"}, {"status": "passed"})
    ]
    return shown


def test_a_round_trip_keeps_reviews_evidence_and_deliveries(
    api: Api, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config_id = api.shipment_world(("required",))
    events = ["package_run.completed", "package_run.reviewed", "matching_result.reviewed"]
    hook = {"url": "http://127.0.0.1:9/hook", "secret": "s" * 32, "events": events}
    webhook = api.create("/v1/webhooks", hook)
    runs = [final_run(api, config_id, {"invoice": [invoice(f"doc_{n}")]}) for n in range(2)]
    matching_run_id = runs[0]["document_results"][0]["matching_run_id"]
    [result] = api.get(f"/v1/matching/runs/{matching_run_id}/results").json()["data"]
    path = f"/v1/matching/runs/{matching_run_id}/results/{result['id']}/review"
    assert api.post(path, json={"status": "rejected", "notes": "wrong booking"}).status_code == 200
    assert api.post(path, json={"status": "approved"}).status_code == 200
    review = api.post(f"{RUNS}/{runs[0]['id']}/review", json={"decision": "approved", "notes": "ok"})
    assert review.status_code == 200, review.text
    _fail_every_pending_delivery(api)
    shown = reviews_and_deliveries(api, runs, webhook["id"])
    assert shown["deliveries"]["pagination"]["total"] == 5  # two completions, three review decisions
    assert len(shown["histories"][1]["data"]) == 2
    archive = tmp_path / "runs.jsonl"

    assert cli(capsys, "export", "runs", "--output", str(archive))[0] == 0
    assert cli(capsys, "prune", "--older-than", "0d")[1].startswith("pruned 2 run(s)")
    assert api.get(f"/v1/webhooks/{webhook['id']}/deliveries").json()["pagination"]["total"] == 0
    assert cli(capsys, "import", "runs", str(archive))[:2] == (0, "imported 2 run(s); 0 already present\n")

    assert reviews_and_deliveries(api, runs, webhook["id"]) == shown
    assert cli(capsys, "doctor", "counts")[:2] == (0, "counts: no drift\n")


def test_export_leaves_running_runs_out_and_holds_no_connection_between_pages(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    from packmatch.services.history.archive import export_lines

    config_id = api.shipment_world(("required",))
    runs = [final_run(api, config_id, {"invoice": [invoice(f"doc_{n}")]}) for n in range(3)]
    db = api.runtime.services.db
    with db.transaction() as conn:  # as if the first were still in flight
        conn.execute(
            sa.update(package_runs)
            .where(package_runs.c.id == uuid.UUID(runs[0]["id"].removeprefix("run_")))
            .values(status="running")
        )
    lines = export_lines(db, batch=1)
    first = next(lines)
    # the page's transaction ended before its line
    assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    ids = [json.loads(line)["tables"]["package_runs"][0]["id"] for line in [first, *lines]]
    assert ids == [run["id"].removeprefix("run_") for run in runs[1:]]
    assert len(cli(capsys, "export", "runs")[1].splitlines()) == 2


def test_an_export_page_is_one_snapshot(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from packmatch.services.history.archive import export_lines
    from packmatch.store import retention as retention_store

    final_run(api, api.shipment_world(("required",)), {"invoice": [invoice()]})
    db, trees = api.runtime.services.db, retention_store._trees

    def a_review_lands_meanwhile(conn: Any, runs: Any) -> Any:  # between the page and its rows
        with db.transaction() as other:
            other.execute(sa.update(match_results).values(review_status="rejected"))
        return trees(conn, runs)

    monkeypatch.setattr(retention_store, "_trees", a_review_lands_meanwhile)
    [line] = list(export_lines(db))
    [result] = json.loads(line)["tables"]["match_results"]
    assert result["review_status"] == "pending"  # as the run's page saw the database
