"""SPEC §2 Idempotency-Key: replay, mismatch, in progress, 5xx not kept, scoped per API key, races."""

from __future__ import annotations

import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, ClassVar

import pytest
import sqlalchemy as sa
import starlette.formparsers
import structlog
from fastapi.testclient import TestClient

from packmatch.bootstrap import Runtime
from packmatch.services.idempotency import Idempotency
from packmatch.services.ports import utcnow
from packmatch.store import idempotency as store
from packmatch.store.idempotency import IdempotencyRecord
from packmatch.store.tables import idempotency_keys
from tests.e2e.conftest import Api, chunked_csv_upload, chunked_json_rows, error_body, invoice

REFERENCE_DATA = "/v1/matching/reference-data"
MATCHING_CONFIGS = "/v1/matching/configs"
RUNS = "/v1/matching/packages/runs"
BOOKINGS = {"name": "bookings", "rows": [{"id": "BK-1", "reference": "ABC1234567"}]}
REPLAYED = "Idempotent-Replayed"


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def total(api: Api, path: str) -> int:
    count: int = api.get(path).json()["pagination"]["total"]
    return count


def stored_keys(api: Api) -> int:
    with api.runtime.services.db.transaction() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(idempotency_keys)).scalar_one())


def api_key_id(api: Api) -> uuid.UUID:
    return api.runtime.services.accounts.authenticate(api.key).key_id


def delete(api: Api, path: str, key: str) -> Any:
    return api.client.delete(path, headers={**api.headers, **keyed(key)})


# --- replay -----------------------------------------------------------------------------------


def test_replay_returns_the_first_status_body_and_location(api: Api) -> None:
    first = api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("create-bookings"))
    again = api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("create-bookings"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]


def test_replay_is_marked_and_the_first_response_is_not(api: Api) -> None:
    first = api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("k"))
    again = api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("k"))
    assert REPLAYED not in first.headers
    assert again.headers[REPLAYED] == "true"


def test_replay_creates_nothing_new(api: Api) -> None:
    for _ in range(3):
        api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("k"))
    assert total(api, REFERENCE_DATA) == 1


def test_replay_has_its_own_request_id(api: Api) -> None:
    first = api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("k"))
    again = api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("k"))
    assert again.headers["X-Request-Id"].startswith("req_")
    assert again.headers["X-Request-Id"] != first.headers["X-Request-Id"]


def test_replayed_run_submission_keeps_202_and_location_and_accepts_one_run(api: Api) -> None:
    body = {"package_config_id": api.shipment_world(), "input_documents": {"invoice": [invoice()]}}
    first = api.post(f"{RUNS}?wait=0", json=body, headers=keyed("submit-1"))
    again = api.post(f"{RUNS}?wait=0", json=body, headers=keyed("submit-1"))
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert total(api, RUNS) == 1


def test_without_the_header_nothing_is_recorded(api: Api) -> None:
    api.post(REFERENCE_DATA, json=BOOKINGS)
    api.post(REFERENCE_DATA, json=BOOKINGS)
    assert total(api, REFERENCE_DATA) == 2
    assert stored_keys(api) == 0


def test_get_ignores_the_header(api: Api) -> None:
    response = api.client.get(REFERENCE_DATA, headers={**api.headers, **keyed("x" * 300)})
    assert response.status_code == 200
    assert stored_keys(api) == 0


def test_multipart_retry_with_a_new_boundary_is_a_replay(api: Api) -> None:
    """curl and httpx choose a fresh random boundary per request; the retry is still the same body."""
    files = {"file": ("bookings.csv", b"id,reference\nBK-1,ABC1234567\n", "text/csv")}
    first = api.post(REFERENCE_DATA, files=files, headers=keyed("upload-1"))
    again = api.post(REFERENCE_DATA, files=files, headers=keyed("upload-1"))
    assert first.request.headers["content-type"] != again.request.headers["content-type"]
    assert again.headers[REPLAYED] == "true"
    assert again.status_code == first.status_code
    assert {**again.json(), "request_id": None} == {**first.json(), "request_id": None}


def test_multipart_upload_of_another_file_is_a_mismatch(api: Api) -> None:
    api.post(REFERENCE_DATA, files={"file": ("a.csv", b"id\n1\n", "text/csv")}, headers=keyed("upload-2"))
    response = api.post(
        REFERENCE_DATA, files={"file": ("a.csv", b"id\n2\n", "text/csv")}, headers=keyed("upload-2")
    )
    error_body(response, 422, "idempotency_key_mismatch")


class CountingSpool(tempfile.SpooledTemporaryFile):  # type: ignore[type-arg]
    """A spool that adds what is written to it to `written` (one entry per spool)."""

    written: ClassVar[list[int]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._index = len(self.written)
        self.written.append(0)

    def write(self, data: Any) -> int:
        self.written[self._index] += len(data)
        return super().write(data)


@pytest.fixture
def spools(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes written to each spool of a request body, the idempotency layer's and Starlette's."""
    CountingSpool.written = []
    monkeypatch.setattr(tempfile, "SpooledTemporaryFile", CountingSpool)
    monkeypatch.setattr(starlette.formparsers, "SpooledTemporaryFile", CountingSpool)
    return CountingSpool.written


def big_csv() -> bytes:
    return b"id,reference,note\n" + b"".join(b"BK-%d,REF%07d,%s\n" % (n, n, b"x" * 40) for n in range(40_000))


def test_an_upload_with_a_key_is_spooled_once_and_replays(api: Api, spools: list[int]) -> None:
    content = big_csv()  # ~2.4 MiB: past the 1 MiB a spool keeps in memory
    files = {"file": ("bookings.csv", content, "text/csv")}
    first = api.post(REFERENCE_DATA, files=files, headers=keyed("big-csv"))
    assert first.status_code == 201, first.text
    body_size = len(first.request.content)
    assert [n for n in spools if n] == [body_size]  # before: the body, then the file part again
    assert first.json()["row_count"] == 40_000
    again = api.post(REFERENCE_DATA, files=files, headers=keyed("big-csv"))
    assert (again.status_code, again.headers[REPLAYED], again.json()["id"]) == (
        201,
        "true",
        first.json()["id"],
    )
    other = api.post(
        REFERENCE_DATA,
        files={"file": ("b.csv", content + b"BK-x,1,2\n", "text/csv")},
        headers=keyed("big-csv"),
    )
    error_body(other, 422, "idempotency_key_mismatch")
    assert total(api, REFERENCE_DATA) == 1


def test_an_upload_without_a_key_is_spooled_once(api: Api, spools: list[int]) -> None:
    content = big_csv()
    response = api.post(REFERENCE_DATA, files={"file": ("bookings.csv", content, "text/csv")})
    assert response.status_code == 201, response.text
    assert [n for n in spools if n] == [len(content)]


def test_an_upload_with_a_key_and_a_name_field_after_the_file_is_read_whole(api: Api) -> None:
    content = big_csv()
    files = {"file": ("bookings.csv", content, "text/csv")}
    created = api.post(REFERENCE_DATA, files=files, data={"name": "named"}, headers=keyed("named-csv"))
    assert created.status_code == 201, created.text
    assert (created.json()["name"], created.json()["row_count"]) == ("named", 40_000)
    rows = api.get(f"{created.json()['links']['rows']}?limit=1&order=asc").json()
    assert rows["data"] == [{"id": "BK-0", "reference": "REF0000000", "note": "x" * 40}]


# --- body limits ------------------------------------------------------------------------------


def test_a_chunked_body_over_the_limit_is_413_before_anything_is_claimed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.runtime.settings, "max_body_bytes", 1000)
    headers = {"Content-Type": "application/json", **keyed("too-big")}
    error_body(
        api.post(REFERENCE_DATA, content=chunked_json_rows(), headers=headers), 413, "payload_too_large"
    )
    assert stored_keys(api) == 0
    retry = api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("too-big"))
    assert retry.status_code == 201, retry.text


def test_an_upload_over_the_csv_cap_is_413_before_it_is_spooled(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("packmatch.api.routes.reference_data.MAX_CSV_BYTES", 1000)
    body, headers = chunked_csv_upload()
    response = api.post(REFERENCE_DATA, content=body, headers={**headers, **keyed("big-upload")})
    error_body(response, 413, "payload_too_large")
    assert stored_keys(api) == 0


def test_an_upload_under_the_csv_cap_but_over_the_body_limit_is_accepted(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api.runtime.settings, "max_body_bytes", 1000)
    content = b"id,amount\n" + b"".join(b"%d,%d\n" % (n, n) for n in range(1000))
    files = {"file": ("b.csv", content, "text/csv")}
    response = api.post(REFERENCE_DATA, files=files, headers=keyed("csv-over-10-mib"))
    assert response.status_code == 201, response.text
    assert response.json()["row_count"] == 1000


# --- mismatch ---------------------------------------------------------------------------------


def test_same_key_with_a_different_body_is_a_mismatch(api: Api) -> None:
    api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("k"))
    response = api.post(REFERENCE_DATA, json={**BOOKINGS, "name": "other"}, headers=keyed("k"))
    body = error_body(response, 422, "idempotency_key_mismatch")
    assert body["retryable"] is False
    assert body["error"] == "Unprocessable Entity"
    assert response.headers["X-Request-Id"] == body["request_id"]
    assert total(api, REFERENCE_DATA) == 1


def test_same_key_on_another_path_is_a_mismatch(api: Api) -> None:
    api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("k"))
    response = api.post(MATCHING_CONFIGS, json={"name": "x"}, headers=keyed("k"))
    error_body(response, 422, "idempotency_key_mismatch")


def test_same_key_with_another_query_string_is_a_mismatch(api: Api) -> None:
    body = {"package_config_id": api.shipment_world(), "input_documents": {"invoice": [invoice()]}}
    api.post(f"{RUNS}?wait=0", json=body, headers=keyed("k"))
    error_body(api.post(f"{RUNS}?wait=1", json=body, headers=keyed("k")), 422, "idempotency_key_mismatch")
    assert total(api, RUNS) == 1


# --- the header itself --------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["x" * 256, ""], ids=["too-long", "empty"])
def test_a_key_outside_1_to_255_characters_is_a_validation_error(api: Api, key: str) -> None:
    response = api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed(key))
    body = error_body(response, 400, "validation_error")
    assert [d["field"] for d in body["details"]] == ["Idempotency-Key"]
    assert "Idempotency-Key" in body["message"]
    assert total(api, REFERENCE_DATA) == 0


def test_a_key_of_255_characters_is_accepted(api: Api) -> None:
    api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("x" * 255))
    again = api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("x" * 255))
    assert (again.status_code, again.headers[REPLAYED]) == (201, "true")


def test_a_request_without_a_valid_api_key_is_unauthorized_and_not_recorded(api: Api) -> None:
    response = api.client.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("k"))
    error_body(response, 401, "unauthorized")
    assert stored_keys(api) == 0
    assert api.post(REFERENCE_DATA, json={**BOOKINGS, "name": "other"}, headers=keyed("k")).status_code == 201


def test_a_read_only_key_is_forbidden_and_not_recorded(api: Api) -> None:
    reader = api.other_organization("acme", scopes="read")
    error_body(reader.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("k")), 403, "insufficient_scope")
    assert stored_keys(api) == 0


# --- what is kept -------------------------------------------------------------------------------


def test_a_4xx_is_kept_and_replayed_with_the_replays_request_id(api: Api) -> None:
    body = {"package_config_id": f"pkg_{uuid.uuid4()}", "input_documents": {}}
    first = api.post(RUNS, json=body, headers=keyed("k"))
    again = api.post(RUNS, json=body, headers=keyed("k"))
    first_body = error_body(first, 404, "not_found")
    again_body = error_body(again, 404, "not_found")
    assert again.headers[REPLAYED] == "true"
    assert again_body["request_id"] == again.headers["X-Request-Id"] != first_body["request_id"]
    assert {**again_body, "request_id": None} == {**first_body, "request_id": None}


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [(RuntimeError("boom"), 500, "internal_error"), (TimeoutError("db"), 503, "unavailable")],
    ids=["500", "503"],
)
def test_a_5xx_is_not_kept_so_the_client_can_retry(
    api: Api, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int, code: str
) -> None:
    service = api.runtime.services.reference_data
    real_create = service.create
    calls: list[int] = []

    def fails_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise error
        return real_create(*args, **kwargs)

    monkeypatch.setattr(service, "create", fails_once)
    with structlog.testing.capture_logs():  # keeps the console renderer from drawing the traceback
        error_body(api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("k")), status, code)
    assert stored_keys(api) == 0
    retried = api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("k"))
    assert retried.status_code == 201
    assert REPLAYED not in retried.headers
    assert total(api, REFERENCE_DATA) == 1


# --- scope --------------------------------------------------------------------------------------


def test_the_same_key_of_another_organization_is_independent(api: Api) -> None:
    other = api.other_organization()
    api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("shared"))
    response = other.post(REFERENCE_DATA, json={**BOOKINGS, "name": "theirs"}, headers=keyed("shared"))
    assert response.status_code == 201
    assert REPLAYED not in response.headers
    assert (total(api, REFERENCE_DATA), total(other, REFERENCE_DATA)) == (1, 1)


def test_the_same_key_of_another_api_key_of_the_same_organization_is_independent(api: Api) -> None:
    second = api.other_organization("acme")
    api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("shared"))
    response = second.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("shared"))
    assert (response.status_code, REPLAYED in response.headers) == (201, False)
    assert total(api, REFERENCE_DATA) == 2


# --- DELETE and PUT -----------------------------------------------------------------------------


def test_delete_is_replayed_instead_of_answering_404(api: Api) -> None:
    path = api.create(REFERENCE_DATA, BOOKINGS)["links"]["self"]
    first = delete(api, path, "delete-1")
    again = delete(api, path, "delete-1")
    assert (first.status_code, first.json()) == (200, {"deleted": True})
    assert (again.status_code, again.json(), again.headers[REPLAYED]) == (200, {"deleted": True}, "true")
    error_body(api.client.delete(path, headers=api.headers), 404, "not_found")


def test_delete_of_another_resource_with_the_same_key_is_a_mismatch(api: Api) -> None:
    first = api.create(REFERENCE_DATA, BOOKINGS)["links"]["self"]
    second = api.create(REFERENCE_DATA, BOOKINGS)["links"]["self"]
    delete(api, first, "delete-1")
    error_body(delete(api, second, "delete-1"), 422, "idempotency_key_mismatch")


def test_put_is_replayed_and_bumps_the_version_once(api: Api) -> None:
    ref = api.create(REFERENCE_DATA, BOOKINGS)
    mapping = {"source": "booking_reference", "target": "reference", "strategy": "exact", "weight": 1}
    body = {"name": "v1", "reference_data_id": ref["id"], "field_mappings": [mapping]}
    path = api.create(MATCHING_CONFIGS, body)["links"]["self"]
    headers = {**api.headers, **keyed("rename-1")}
    first = api.client.put(path, json={**body, "name": "v2"}, headers=headers)
    again = api.client.put(path, json={**body, "name": "v2"}, headers=headers)
    assert (first.status_code, first.json()["version"]) == (200, 2)
    assert (again.json(), again.headers[REPLAYED]) == (first.json(), "true")
    assert api.get(path).json()["version"] == 2


# --- in progress and races ------------------------------------------------------------------------


def test_a_duplicate_while_the_first_is_in_progress_is_409(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    service = api.runtime.services.reference_data
    real_create = service.create
    entered, release = threading.Event(), threading.Event()

    def blocking_create(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(30)
        return real_create(*args, **kwargs)

    monkeypatch.setattr(service, "create", blocking_create)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(api.post, REFERENCE_DATA, json=BOOKINGS, headers=keyed("slow"))
        assert entered.wait(30)
        duplicate = api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("slow"))
        release.set()
        first = pending.result(timeout=30)
    body = error_body(duplicate, 409, "idempotency_key_in_use")
    assert body["retryable"] is True
    assert first.status_code == 201
    after = api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("slow"))
    assert (after.headers[REPLAYED], after.json()) == ("true", first.json())
    assert total(api, REFERENCE_DATA) == 1


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.redis])])
def any_api(
    request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime], start_api: Callable[[Runtime], Api]
) -> Api:
    """The API on SQLite + in-memory broker, and on PostgreSQL + Redis."""
    if request.param == "sqlite":
        return start_api(make_runtime(database_url=request.getfixturevalue("sqlite_url")))
    return start_api(
        make_runtime(
            database_url=request.getfixturevalue("postgres_url"),
            broker_url=request.getfixturevalue("redis_url"),
        )
    )


def test_twenty_concurrent_duplicates_create_exactly_one_run(any_api: Api) -> None:
    body = {"package_config_id": any_api.shipment_world(), "input_documents": {"invoice": [invoice()]}}
    start = threading.Barrier(20)
    headers = {**any_api.headers, **keyed("burst")}

    def submit(_: int) -> Any:
        with TestClient(any_api.client.app, raise_server_exceptions=False) as client:  # one per thread
            start.wait(timeout=30)
            return client.post(f"{RUNS}?wait=0", json=body, headers=headers)

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(submit, range(20)))
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 202, 409}, statuses
    assert {r.json()["code"] for r in responses if r.status_code == 409} <= {"idempotency_key_in_use"}
    originals = [r for r in responses if r.status_code < 300 and REPLAYED not in r.headers]
    assert len(originals) == 1
    assert {r.json()["id"] for r in responses if r.status_code < 300} == {originals[0].json()["id"]}
    assert total(any_api, RUNS) == 1


# --- expiry and cleanup ---------------------------------------------------------------------------


def test_an_expired_key_is_ignored_and_replaced(api: Api) -> None:
    api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("old"))
    with api.runtime.services.db.transaction() as conn:
        conn.execute(idempotency_keys.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    response = api.post(REFERENCE_DATA, json={**BOOKINGS, "name": "new"}, headers=keyed("old"))
    assert (response.status_code, REPLAYED in response.headers) == (201, False)
    assert total(api, REFERENCE_DATA) == 2


def test_an_abandoned_claim_is_taken_over(api: Api) -> None:
    """A request whose process died mid-way leaves `in_progress` behind; after the lease it is free."""
    long_ago = utcnow() - timedelta(hours=1)
    claim = IdempotencyRecord.claim(
        api_key_id(api), "orphan", "0" * 64, "req_dead", long_ago, timedelta(days=1)
    )
    with api.runtime.services.db.transaction() as conn:
        assert store.claim(conn, claim)
    response = api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("orphan"))
    assert response.status_code == 201


def test_purge_deletes_only_expired_records(api: Api) -> None:
    api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("fresh"))
    api.post(REFERENCE_DATA, json=BOOKINGS, headers=keyed("stale"))
    with api.runtime.services.db.transaction() as conn:
        stale = idempotency_keys.c.idempotency_key == "stale"
        conn.execute(
            idempotency_keys.update().where(stale).values(expires_at=utcnow() - timedelta(minutes=1))
        )
    assert Idempotency(api.runtime.services.db).purge_expired() == 1
    assert stored_keys(api) == 1
