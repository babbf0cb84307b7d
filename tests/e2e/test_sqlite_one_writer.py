"""SQLite takes one writer at a time (decision 0019): during an import, other writes get a clear
503 within the busy timeout, reads go on, and the import stays all-or-nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from packmatch.bootstrap import Runtime
from packmatch.store import reference_data
from tests.e2e.conftest import Api, error_body, invoice

REFERENCE_DATA = "/v1/matching/reference-data"
RUNS = "/v1/matching/packages/runs"
BUSY_TIMEOUT = 0.5


class HeldImport:
    """An import paused inside its transaction, its dataset row written: SQLite's write lock is taken."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.holding, self.release = threading.Event(), threading.Event()

    def arm(self) -> None:
        """The next import pauses."""
        insert_dataset = reference_data.insert_dataset

        def paused(conn: Any, dataset: Any) -> None:
            insert_dataset(conn, dataset)
            self.holding.set()
            assert self.release.wait(30)

        self.monkeypatch.setattr(reference_data, "insert_dataset", paused)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldImport]:
    holder = HeldImport(monkeypatch)
    yield holder
    holder.release.set()


@pytest.fixture
def api(make_runtime: Callable[..., Runtime], sqlite_url: str, start_api: Callable[[Runtime], Api]) -> Api:
    return start_api(make_runtime(database_url=sqlite_url, sqlite_busy_timeout_seconds=BUSY_TIMEOUT))


def csv_upload(api: Api) -> Any:
    content = b"id,reference\n" + b"".join(b"BK-%d,REF%07d\n" % (n, n) for n in range(5000))
    return api.post(REFERENCE_DATA, files={"file": ("big.csv", content, "text/csv")})


def test_a_write_during_an_import_is_a_clear_503_and_reads_go_on(api: Api, held: HeldImport) -> None:
    config_id = api.shipment_world(("required",))
    held.arm()
    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(csv_upload, api)
        assert held.holding.wait(30)
        started = time.monotonic()
        response = api.run(config_id, {"invoice": [invoice()]}, wait=0)
        waited = time.monotonic() - started
        body = error_body(response, 503, "unavailable")
        assert "SQLite takes one writer at a time" in body["message"]
        assert body["retryable"] is True
        assert int(response.headers["Retry-After"]) >= 1
        assert BUSY_TIMEOUT <= waited < BUSY_TIMEOUT + 5  # before: 30 s, then a generic message
        listed = api.get(REFERENCE_DATA)
        assert (listed.status_code, listed.json()["pagination"]["total"]) == (200, 1)  # not the import
        held.release.set()
        assert upload.result().status_code == 201
    assert api.get(REFERENCE_DATA).json()["pagination"]["total"] == 2
    assert api.run(config_id, {"invoice": [invoice()]}).status_code == 200


def test_a_json_import_holds_the_lock_too_and_another_create_is_a_clear_503(
    api: Api, held: HeldImport
) -> None:
    rows = [{"id": f"BK-{n}", "reference": f"REF{n:07d}"} for n in range(100)]
    held.arm()
    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(api.post, REFERENCE_DATA, json={"name": "rows", "rows": rows})
        assert held.holding.wait(30)
        other = api.post(REFERENCE_DATA, json={"name": "small", "rows": [{"id": "1", "a": 1}]})
        assert "SQLite takes one writer at a time" in error_body(other, 503, "unavailable")["message"]
        held.release.set()
        assert upload.result().status_code == 201
    assert api.get(REFERENCE_DATA).json()["pagination"]["total"] == 1
