"""`packmatch demo` end to end: the bundled world through the real pipeline on a SQLite file."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from packmatch import cli
from packmatch.client import Client
from packmatch.demo import REVIEW_HINT, Bundle, load_world, run_demo
from packmatch.domain.models import PackageRun
from packmatch.services.container import Services
from packmatch.services.ports import RecordingPublisher
from packmatch.services.runs import RunFilters
from packmatch.settings import Settings
from packmatch.store.db import Database
from packmatch.store.pagination import PageRequest

WORLD = load_world()


@dataclass(frozen=True)
class Printed:
    verdict: str
    slots: list[str]


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh SQLite file as PACKMATCH_DATABASE_URL, embedded broker, no stray `.env`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PACKMATCH_BROKER_URL", raising=False)
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("PACKMATCH_DATABASE_URL", url)
    return url


pytestmark = pytest.mark.usefixtures("restore_logging")


def run_cli(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = cli.main(["demo"])
    return code, capsys.readouterr().out


def parse_table(out: str) -> dict[str, Printed]:
    """label → printed verdict and slot cells, from the table's lines (cells split by 2+ spaces)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("bundle "))
    table: dict[str, Printed] = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        label, verdict, *slots = re.split(r"\s{2,}", line)
        table[label] = Printed(verdict, slots)
    return table


def stored_runs(url: str) -> dict[str, PackageRun]:
    """label → run, read back from the database for the newest demo package config."""
    db = Database.from_url(url)
    try:
        services = Services.build(db, RecordingPublisher())
        org = services.accounts.list_keys(WORLD.organization)[0][1].organization_id
        package = services.configs.list_packages(org, PageRequest(limit=1)).items[0]
        page = services.runs.list(org, PageRequest(limit=100), RunFilters(package_config_id=package.id))
        return {bundle_of(run).label: run for run in page.items}
    finally:
        db.dispose()


def bundle_of(run: PackageRun) -> Bundle:
    """The sample bundle a run was submitted from, recognised by its document ids."""
    for bundle in WORLD.bundles:
        ids = {kind: [row.document_id for row in rows] for kind, rows in bundle.input_documents.items()}
        if ids == run.input_documents:
            return bundle
    raise AssertionError(f"run {run.id} matches no sample bundle")


def test_demo_exits_0_and_prints_every_sample_bundle(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_cli(capsys)

    assert code == 0
    assert sorted(parse_table(out)) == sorted(bundle.label for bundle in WORLD.bundles)


def test_demo_bundles_reach_passed_review_and_failed(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = run_cli(capsys)

    verdicts = {printed.verdict for printed in parse_table(out).values()}
    assert {"passed", "review", "failed"} <= verdicts


def test_each_printed_verdict_and_slot_is_the_stored_one(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = run_cli(capsys)

    runs = stored_runs(database_url)
    printed = parse_table(out)
    assert {label: p.verdict for label, p in printed.items()} == {
        label: run.status.value for label, run in runs.items()
    }
    assert {label: [cell.split()[0] for cell in p.slots] for label, p in printed.items()} == {
        label: [slot.status.value for slot in run.slots] for label, run in runs.items()
    }


def test_every_sample_bundle_gets_the_verdict_its_label_promises(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_cli(capsys)

    verdicts = {label: run.status for label, run in stored_runs(database_url).items()}
    assert verdicts == {bundle.label: bundle.expected_verdict for bundle in WORLD.bundles}


def test_demo_runs_twice_on_the_same_database(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    first_code, first = run_cli(capsys)
    second_code, second = run_cli(capsys)

    assert (first_code, second_code) == (0, 0)
    assert {k: v.verdict for k, v in parse_table(second).items()} == {
        label: run.status.value for label, run in stored_runs(database_url).items()
    }
    assert parse_table(second) == parse_table(first)


def test_demo_prints_an_api_key_that_reads_the_demo_organization(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = run_cli(capsys)

    key = re.search(r"pmk_\S+", out)
    assert key is not None
    db = Database.from_url(database_url)
    principal = Services.build(db, RecordingPublisher()).accounts.authenticate(key.group())
    db.dispose()
    assert "read" in principal.scopes
    assert {run.organization_id for run in stored_runs(database_url).values()} == {principal.organization_id}


class _NoWorker:
    """Stands in for the in-process worker: nothing consumes the queue."""

    def __init__(self, *_: object, **__: object) -> None:
        pass

    def __enter__(self) -> _NoWorker:
        return self

    def __exit__(self, *_: object) -> None:
        pass


def test_demo_returns_1_with_a_message_when_runs_stay_running(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("packmatch.demo.InProcessWorker", _NoWorker)

    code = run_demo(Settings(database_url=database_url), timeout_seconds=0.2)

    captured = capsys.readouterr()
    assert code == 1
    assert "still running" in captured.err
    assert captured.out == ""


def test_demo_approves_one_review_bundle_and_prints_the_queue_without_it(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = run_cli(capsys)

    approved = next(line for line in out.splitlines() if line.startswith("Approved run_"))
    run_id = approved.split()[1]
    queue = out.split("Reviewer queue", 1)[1]
    reviews = sum(1 for printed in parse_table(out).values() if printed.verdict == "review")
    assert f"{reviews - 1} run(s)" in queue.splitlines()[0]
    assert run_id not in queue


def test_demo_plain_hints_at_the_reviewer_page(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run_cli(capsys)

    assert out.splitlines()[-1] == f"Or review them in a browser: {REVIEW_HINT}"


Sent = tuple[str, str, int]  # method, path, status, as the demo's server answered


def recording_client(sent: list[Sent]) -> Callable[[str, str], Client]:
    """`packmatch.client.Client` over real HTTP, noting every answer it receives."""

    def make(base_url: str, api_key: str) -> Client:
        def record(response: httpx.Response) -> None:
            sent.append((response.request.method, response.request.url.path, response.status_code))

        return Client(
            base_url, api_key, http=httpx.Client(base_url=base_url, event_hooks={"response": [record]})
        )

    return make


def route(path: str) -> str:
    return re.sub(r"/[a-z]+_[0-9a-f-]{36}", "/{id}", path)


def test_demo_drives_the_product_over_http_through_the_client(
    database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[Sent] = []
    monkeypatch.setattr("packmatch.demo.Client", recording_client(sent))

    code, out = run_cli(capsys)

    assert code == 0
    assert [answer for answer in sent if not 200 <= answer[2] < 300] == []
    writes = Counter(f"{method} {route(path)}" for method, path, _ in sent if method != "GET")
    assert writes == {
        "POST /v1/matching/reference-data": len(WORLD.reference_data),
        "POST /v1/matching/configs": len(WORLD.matching_configs),
        "POST /v1/matching/packages/configs": 1,
        "POST /v1/matching/packages/runs": len(WORLD.bundles),
        "POST /v1/matching/packages/runs/{id}/review": 1,
    }
    assert len(stored_runs(database_url)) == len(WORLD.bundles)  # each one of those POSTs, none beside
    approved = next(line for line in out.splitlines() if line.startswith("Approved run_")).split()[1]
    assert ("POST", f"/v1/matching/packages/runs/{approved}/review", 200) in sent
    assert ("GET", "/v1/matching/packages/runs", 200) in sent  # the reviewer queue
