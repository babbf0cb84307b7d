"""`packmatch.client` end to end: against a real `packmatch serve` process, and against
`packmatch api` + `packmatch worker` on PostgreSQL + Redis; retries against a scripted transport."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from packmatch import __version__
from packmatch.api import response_models as rm
from packmatch.client import (
    AsyncClient,
    Client,
    Conflict,
    NotFound,
    PreconditionFailed,
    RateLimited,
    Retry,
    TransportError,
    Unauthorized,
    ValidationError,
    WaitTimeout,
)
from tests.e2e.conftest import BOOKINGS, INVOICE_MAPPINGS, invoice
from tests.e2e.test_processes import deployed, free_port, wait_until_ready

PACKMATCH = str(Path(sys.executable).parent / "packmatch")


@dataclass(frozen=True)
class Server:
    url: str
    key: str


@contextlib.contextmanager
def serving(tmp_path: Path, **extra: str) -> Iterator[Server]:
    """`packmatch serve` on a fresh SQLite file, with a key made by `packmatch keys create`."""
    env = {
        **os.environ,
        "PACKMATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'packmatch.db'}",
        "PACKMATCH_BROKER_URL": "memory://",
        "PACKMATCH_LOG_FORMAT": "json",
        "PACKMATCH_WEBHOOK_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8",
        **extra,
    }
    subprocess.run([PACKMATCH, "migrate"], env=env, check=True, capture_output=True)
    made = subprocess.run(
        [PACKMATCH, "keys", "create", "--organization", "acme", "--scopes", "read,write,review"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        process = subprocess.Popen(
            [PACKMATCH, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=log
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, process)
        yield Server(url, made.stdout.decode().strip())
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with serving(tmp_path) as running:
        yield running


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, api_key=server.key) as made:
        yield made


def world(client: Client, presence: str = "required") -> str:
    ref = client.reference_data.create("bookings", BOOKINGS)
    mc = client.matching_configs.create(
        {"name": "Invoice to booking", "reference_data_id": ref.id, "field_mappings": INVOICE_MAPPINGS}
    )
    slot = {"document_type": "invoice", "matching_config_id": mc.id, "presence": presence}
    return str(client.package_configs.create({"name": "bundle", "document_type_configs": [slot]}).id)


# --- against `packmatch serve` ------------------------------------------------------------------


def test_a_run_is_submitted_waited_for_and_explained(client: Client) -> None:
    pkg = world(client)
    run = client.runs.submit(pkg, {"invoice": [invoice()]}, wait=30)
    assert run.status == "passed"
    assert run.completed_at is not None
    [slot] = run.document_results
    assert slot.matching_run_id is not None
    assert client.matching_runs.get(slot.matching_run_id).package_run_id == run.id
    [result] = client.matching_runs.results(slot.matching_run_id)
    assert result.matched_reference_row_id == "BK-1"
    assert result.candidates[0].evidence["booking_reference"].score == 1.0


def test_submit_without_wait_answers_running_and_wait_final_gets_the_verdict(client: Client) -> None:
    pkg = world(client)
    run = client.runs.submit(pkg, {"invoice": [invoice()]})
    assert run.status in ("running", "passed")
    assert client.runs.wait_final(run.id, timeout=30).status == "passed"


def test_iterators_follow_every_page(client: Client) -> None:
    pkg = world(client)
    batch = client.runs.submit_batch(
        [{"package_config_id": pkg, "input_documents": {"invoice": [invoice(f"d{i}")]}} for i in range(5)]
    )
    ids = {item.id for item in batch.data}  # type: ignore[union-attr]
    assert len(ids) == 5
    listed = [run.id for run in client.runs.iter(package_config_id=pkg, limit=2)]
    assert len(listed) == 5
    assert set(listed) == ids
    assert client.runs.list(package_config_id=pkg, limit=2).pagination.has_more


def test_every_post_gets_its_own_idempotency_key_unless_one_is_given(client: Client) -> None:
    rows = [{"id": "r1", "v": "x"}]
    first = client.reference_data.create("a", rows)
    assert client.reference_data.create("a", rows).id != first.id  # automatic keys differ
    chosen = client.reference_data.create("b", rows, idempotency_key="erp-import-42")
    assert client.reference_data.create("b", rows, idempotency_key="erp-import-42").id == chosen.id
    assert client.reference_data.list().pagination.total == 3


def test_errors_are_typed_with_their_details(client: Client, server: Server) -> None:
    with pytest.raises(NotFound) as missing:
        client.runs.get("run_00000000-0000-4000-8000-000000000000")
    assert (missing.value.status_code, missing.value.code) == (404, "not_found")
    assert missing.value.request_id is not None
    assert missing.value.request_id.startswith("req_")
    ref = client.reference_data.create("bookings", BOOKINGS)
    bad = {
        "name": "x",
        "reference_data_id": ref.id,
        "field_mappings": [{**INVOICE_MAPPINGS[0], "target": "nope"}],
    }
    with pytest.raises(ValidationError) as invalid:
        client.matching_configs.create(bad)
    assert invalid.value.details[0]["field"].startswith("field_mappings[0]")
    client.matching_configs.create(
        {"name": "y", "reference_data_id": ref.id, "field_mappings": INVOICE_MAPPINGS}
    )
    with pytest.raises(Conflict):
        client.reference_data.delete(ref.id)  # a matching config uses it
    with Client(server.url, api_key="pmk_wrong") as stranger, pytest.raises(Unauthorized):
        stranger.runs.list()


def test_a_stale_etag_is_a_precondition_failure(client: Client) -> None:
    pkg = world(client)
    run = client.runs.submit(pkg, {"invoice": [invoice()]}, wait=30)
    with pytest.raises(PreconditionFailed):
        client.runs.review(run.id, "approved", if_match='"stale"')
    reviewed = client.runs.review(run.id, "approved", notes="ok", if_match=client.runs.etag(run.id))
    assert reviewed.review is not None
    assert reviewed.review.decision == "approved"
    assert [r.decision for r in client.runs.reviews(run.id)] == ["approved"]
    assert [r.id for r in client.runs.iter(package_config_id=pkg, reviewed=True)] == [run.id]


def test_wait_final_times_out_with_the_run_id() -> None:
    running = rm.examples()[(rm.PackageRun, 202)]
    client, requests, _ = scripted([httpx.Response(200, json=running)] * 3)
    with pytest.raises(WaitTimeout) as waited:
        client.runs.wait_final(running["id"], timeout=0.05)
    assert waited.value.run_id == running["id"]
    assert len(requests) >= 1


def test_the_async_client_does_the_same(server: Server, tmp_path: Path) -> None:
    csv = tmp_path / "vendors.csv"
    csv.write_text("id,vendor\nV-1,Acme\n")

    async def scenario() -> tuple[str, int]:
        async with AsyncClient(server.url, api_key=server.key) as client:
            uploaded = await client.reference_data.upload_csv(csv)
            assert (uploaded.name, uploaded.row_count) == ("vendors", 1)
            ref = await client.reference_data.create("bookings", BOOKINGS)
            body = {"name": "m", "reference_data_id": ref.id, "field_mappings": INVOICE_MAPPINGS}
            mc = await client.matching_configs.create(body)
            slot = {"document_type": "invoice", "matching_config_id": mc.id, "presence": "required"}
            pkg = await client.package_configs.create({"name": "p", "document_type_configs": [slot]})
            run = await client.runs.submit(pkg.id, {"invoice": [invoice()]}, wait=30)
            listed = [r async for r in client.runs.iter(package_config_id=pkg.id, limit=1)]
            return run.status, len(listed)

    assert asyncio.run(scenario()) == ("passed", 1)


def test_a_csv_upload_reports_its_progress(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "bookings.csv"
    path.write_text("id,reference,amount\n" + "".join(f"BK-{i},REF{i:07d},{i}.5\n" for i in range(5000)))
    seen: list[tuple[int, int | None]] = []
    dataset = client.reference_data.upload_csv(
        path, name="big", progress=lambda sent, total: seen.append((sent, total))
    )
    assert (dataset.name, dataset.row_count, dataset.source_type) == ("big", 5000, "csv")
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)
    assert [sent for sent, _ in seen] == sorted(sent for sent, _ in seen)
    assert next(iter(client.reference_data.rows(dataset.id, order="asc"))).id == "BK-0"


def labelled_rows() -> list[dict[str, Any]]:
    nothing = invoice(booking_reference="NONE", carrier="zzz", total="1")["values"]
    return [
        {"values": invoice()["values"], "reference_row_id": "BK-1"},
        {"values": nothing, "reference_row_id": None},
    ]


def labels_csv(path: Path) -> Path:
    """`labelled_rows()` as a CSV file (every cell quoted: `4,250.00` holds a comma)."""
    columns = list(invoice()["values"])
    lines = [",".join([*columns, "reference_row_id"])]
    for row in labelled_rows():
        lines.append(",".join([*(f'"{row["values"][c]}"' for c in columns), row["reference_row_id"] or ""]))
    path.write_text("\n".join(lines) + "\n")
    return path


def evaluated_config(client: Client) -> str:
    ref = client.reference_data.create("bookings", BOOKINGS)
    body = {"name": "Invoice to booking", "reference_data_id": ref.id, "field_mappings": INVOICE_MAPPINGS}
    return str(client.matching_configs.create(body).id)


def test_an_evaluation_is_created_from_rows_or_a_csv_file_and_waited_for(
    client: Client, tmp_path: Path
) -> None:
    mc = evaluated_config(client)
    accepted = client.evaluations.create(mc, labelled_rows())
    assert (accepted.status, accepted.source) == ("queued", "rows")
    done = client.evaluations.wait(mc, accepted.id, timeout=30)
    assert done.status == "done"
    assert done.report is not None
    assert (done.report.metrics.tp, done.report.metrics.tn) == (1, 1)

    uploaded = client.evaluations.upload_csv(mc, labels_csv(tmp_path / "labels.csv"))
    assert uploaded.source == "csv"
    assert client.evaluations.wait(mc, uploaded.id, timeout=30).report == done.report
    assert [e.id for e in client.evaluations.iter(mc, limit=1)] == [uploaded.id, accepted.id]
    with pytest.raises(ValidationError) as refused:
        client.evaluations.create(mc, [{"values": {}, "reference_row_id": "BK-404"}])
    assert refused.value.details[0]["field"] == "rows[0].reference_row_id"


def test_the_async_client_evaluates_too(server: Server, tmp_path: Path) -> None:
    path = labels_csv(tmp_path / "labels.csv")

    async def scenario() -> tuple[str, str]:
        async with AsyncClient(server.url, api_key=server.key) as client:
            ref = await client.reference_data.create("bookings", BOOKINGS)
            body = {"name": "m", "reference_data_id": ref.id, "field_mappings": INVOICE_MAPPINGS}
            mc = await client.matching_configs.create(body)
            uploaded = await client.evaluations.upload_csv(mc.id, path)
            done = await client.evaluations.wait(mc.id, uploaded.id, timeout=30)
            return uploaded.source, done.status

    assert asyncio.run(scenario()) == ("csv", "done")


def test_waiting_for_an_evaluation_times_out_with_its_id() -> None:
    example = rm.examples()[rm.Evaluation]
    running = {**example, "status": "running", "report": None, "completed_at": None}
    client, requests, _ = scripted([httpx.Response(200, json=running)] * 3)
    with pytest.raises(WaitTimeout, match=f"evaluation {running['id']} still running") as waited:
        client.evaluations.wait(running["matching_config_id"], running["id"], timeout=0.05)
    assert waited.value.run_id == running["id"]
    assert (
        requests[0].url.path
        == f"/v1/matching/configs/{running['matching_config_id']}/evaluations/{running['id']}"
    )


def test_the_user_agent_names_the_client_version() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"deleted": True})

    http = httpx.Client(base_url="http://packmatch.test", transport=httpx.MockTransport(answer))
    Client("http://packmatch.test", api_key="pmk_x", http=http).reference_data.delete("ref_1")
    assert seen[0].headers["user-agent"].startswith(f"packmatch-client/{__version__} ")
    assert seen[0].headers["idempotency-key"].startswith("pmc_")


# --- retries, against a scripted transport --------------------------------------------------------


def scripted(answers: list[Any]) -> tuple[Client, list[httpx.Request], list[float]]:
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        step = answers.pop(0)
        if isinstance(step, Exception):
            raise step
        return step  # type: ignore[no-any-return]

    http = httpx.Client(base_url="http://packmatch.test", transport=httpx.MockTransport(answer))
    client = Client("http://packmatch.test", api_key="pmk_x", http=http, retry=Retry(attempts=3))
    pauses: list[float] = []
    client.sleep = pauses.append  # type: ignore[assignment]
    return client, requests, pauses


ENVELOPE = {"code": "rate_limited", "message": "slow down", "details": [], "request_id": "req_1"}
DELETED = httpx.Response(200, json={"deleted": True})


def test_a_429_is_retried_after_its_retry_after_with_the_same_idempotency_key() -> None:
    client, requests, pauses = scripted(
        [httpx.Response(429, json=ENVELOPE, headers={"Retry-After": "7"}), DELETED]
    )
    assert client.reference_data.delete("ref_1").deleted is True
    assert pauses == [7.0]
    assert len({r.headers["idempotency-key"] for r in requests}) == 1
    assert len(requests) == 2


def test_503_and_connection_errors_back_off_then_give_up_typed() -> None:
    unavailable = httpx.Response(503, json={**ENVELOPE, "code": "unavailable"})
    client, _, pauses = scripted([httpx.ConnectError("refused"), unavailable, unavailable])
    with pytest.raises(Exception, match="503 unavailable"):
        client.reference_data.delete("ref_1")
    assert len(pauses) == 2
    assert 0.25 <= pauses[0] <= 0.5  # base·2ⁿ with jitter
    assert 0.5 <= pauses[1] <= 1.0
    client, _, _ = scripted([httpx.ConnectError("refused")] * 3)
    with pytest.raises(TransportError):
        client.reference_data.delete("ref_1")


def test_the_last_429_is_raised_with_its_retry_after() -> None:
    limited = httpx.Response(429, json=ENVELOPE, headers={"Retry-After": "3"})
    client, requests, _ = scripted([limited, limited, limited])
    with pytest.raises(RateLimited) as raised:
        client.runs.list()
    assert raised.value.retry_after == 3.0
    assert len(requests) == 3


def test_unknown_new_fields_in_an_answer_are_ignored() -> None:
    client, _, _ = scripted([httpx.Response(200, json={"deleted": True, "added_in_v2": 1})])
    assert client.reference_data.delete("ref_1").deleted is True


# --- against `packmatch api` + `packmatch worker` on PostgreSQL + Redis ---------------------------


@pytest.mark.postgres
@pytest.mark.redis
def test_the_client_against_api_and_worker_on_postgres(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    with (
        deployed(postgres_url, redis_url, tmp_path) as deployment,
        Client(deployment.base, deployment.key) as client,
    ):
        pkg = world(client, presence="expected")
        run = client.runs.submit(pkg, {"invoice": [invoice(total="1")]}, wait=30)
        assert run.status == "review"
        assert [r.id for r in client.runs.iter(status="review", reviewed=False)] == [run.id]
        [slot] = run.document_results
        assert slot.matching_run_id is not None
        [result] = client.matching_runs.results(slot.matching_run_id)
        reviewed = client.matching_runs.review_result(slot.matching_run_id, result.id, "approved")
        assert reviewed.review.status == "approved"
        assert client.runs.review(run.id, "approved").review is not None
        assert list(client.runs.iter(status="review", reviewed=False)) == []


def test_the_async_resources_are_generated_from_the_sync_ones() -> None:
    from packmatch.client import _generate

    source = (_generate.HERE / "resources.py").read_text()
    assert (_generate.HERE / "aresources.py").read_text() == _generate.generate(source), (
        "run `python -m packmatch.client._generate`"
    )
