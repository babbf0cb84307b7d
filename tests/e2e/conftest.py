"""HTTP-level fixtures: the real app with an in-process worker, driven through a TestClient."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from packmatch.api.app import create_app
from packmatch.bootstrap import Runtime
from packmatch.worker.runner import InProcessWorker

BOOKINGS = [
    {"id": "BK-1", "reference": "ABC1234567", "carrier_name": "Maersk Line", "amount": 4250.0,
     "departure": "2024-09-10"},
    {"id": "BK-2", "reference": "XYZ7654321", "carrier_name": "MSC Mediterranean", "amount": 1200.0,
     "departure": "2024-09-01"},
    {"id": "BK-3", "reference": "QRS1111111", "carrier_name": "Hapag-Lloyd", "amount": 999.5,
     "departure": "2024-08-20"},
]  # fmt: skip

INVOICE_MAPPINGS = [
    {"source": "booking_reference", "target": "reference", "strategy": "exact", "weight": 0.5},
    {"source": "carrier", "target": "carrier_name", "strategy": "fuzzy", "weight": 0.2,
     "options": {"min_similarity": 0.6}},
    {"source": "total", "target": "amount", "strategy": "numeric_range", "weight": 0.2,
     "options": {"tolerance_pct": 2}},
    {"source": "ship_date", "target": "departure", "strategy": "date_range", "weight": 0.1,
     "options": {"tolerance_days": 3}},
]  # fmt: skip

GOOD_INVOICE = {
    "booking_reference": "ABC1234567",
    "carrier": "Maersk Line",
    "total": "4,250.00",
    "ship_date": "2024-09-11",
}


@dataclass
class Api:
    """A client for one organization, plus the runtime behind it."""

    client: TestClient
    runtime: Runtime
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Any:
        return self.client.post(path, headers={**self.headers, **kwargs.pop("headers", {})}, **kwargs)

    def other_organization(self, name: str = "globex", scopes: str = "read,write") -> Api:
        key = self.runtime.services.accounts.create_key(name, frozenset(scopes.split(",")))
        return Api(self.client, self.runtime, key)

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.post(path, json=body)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def shipment_world(self, presences: tuple[str, ...] = ("required", "expected", "optional")) -> str:
        """Bookings + an invoice matching config + a package config with one slot per presence."""
        ref = self.create("/v1/matching/reference-data", {"name": "bookings", "rows": BOOKINGS})
        mc = self.create(
            "/v1/matching/configs",
            {"name": "Invoice to booking", "reference_data_id": ref["id"],
             "field_mappings": INVOICE_MAPPINGS, "threshold": 0.85},
        )  # fmt: skip
        names = ("invoice", "delivery_note", "contract")
        slots = [
            {"document_type": name, "matching_config_id": mc["id"], "presence": presence}
            for name, presence in zip(names, presences, strict=False)
        ]
        pkg = self.create(
            "/v1/matching/packages/configs",
            {"name": "Shipment bundle", "document_type_configs": slots},
        )
        return str(pkg["id"])

    def run(self, package_config_id: str, documents: dict[str, Any], wait: float = 30) -> Any:
        """POST a run; by default wait as long as SPEC §3 allows (a slow machine needed more than 10 s)."""
        body = {"package_config_id": package_config_id, "input_documents": documents}
        return self.post(f"/v1/matching/packages/runs?wait={wait}", json=body)


ENVELOPE_KEYS = {
    "statusCode",
    "code",
    "error",
    "message",
    "retryable",
    "request_id",
    "timestamp",
    "path",
    "details",
}


def error_body(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert the SPEC error envelope with this status and code; return the body."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert (body["statusCode"], body["code"]) == (status, code)
    return body


def chunked(*parts: bytes) -> Iterator[bytes]:
    """A body sent in chunks, without a Content-Length."""
    yield from parts


def chunked_json_rows() -> Iterator[bytes]:
    """A reference-data JSON body of about 2 KB, in chunks."""
    rows = [b'{"n": %d},' % n for n in range(200)]
    return chunked(b'{"name": "n", "rows": [', *rows, b'{"n": 0}]}')


def chunked_csv_upload() -> tuple[Iterator[bytes], dict[str, str]]:
    """A multipart CSV upload of about 10 KB in chunks, and its Content-Type header."""
    head = b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="b.csv"\r\n\r\nid,amount\n'
    rows = [b"%d,%d\n" % (n, n) for n in range(1000)]
    return chunked(head, *rows, b"\r\n--xyz--\r\n"), {"Content-Type": "multipart/form-data; boundary=xyz"}


def invoice(document_id: str = "doc_1", **values: Any) -> dict[str, Any]:
    return {"document_id": document_id, "extraction_row_id": "row_1", "values": {**GOOD_INVOICE, **values}}


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """`cli.main` points the root logger at the captured stderr; put the old handlers back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def start_api() -> Iterator[Callable[[Runtime], Api]]:
    workers: list[InProcessWorker] = []
    clients: list[TestClient] = []

    def start(runtime: Runtime) -> Api:
        worker = InProcessWorker(runtime.broker, threads=2)
        worker.start()
        workers.append(worker)
        client = TestClient(
            create_app(runtime.services, runtime.settings, metrics=runtime.api_metrics()),
            raise_server_exceptions=False,
        )
        clients.append(client)
        key = runtime.services.accounts.create_key("acme", frozenset({"read", "write"}))
        return Api(client, runtime, key)

    yield start
    for client in clients:
        client.close()
    for worker in workers:
        worker.stop()


@pytest.fixture
def api(make_runtime: Callable[..., Runtime], sqlite_url: str, start_api: Callable[[Runtime], Api]) -> Api:
    """The embedded stack: SQLite + in-process broker."""
    return start_api(make_runtime(database_url=sqlite_url))


@pytest.fixture(params=["sqlite", "postgres"])
def stored_api(
    request: pytest.FixtureRequest,
    make_runtime: Callable[..., Runtime],
    sqlite_url: str,
    start_api: Callable[[Runtime], Api],
) -> Api:
    """The app with an in-process worker, once on SQLite and once on PostgreSQL."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else sqlite_url
    return start_api(make_runtime(database_url=url))
