"""The load of the fault scenarios, driven over HTTP like a client would.

A world of bookings, one matching config and a three-slot package config; every run's rows match
bookings exactly, so every run that is not poisoned must end `passed`. A second, "poison" package
config differs only in its `contract` slot, which matches against a dataset of its own that scenario
5 deletes underneath it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

BOOKING_COUNT = 150
ROWS_PER_SLOT = 3
SLOTS = ("invoice", "delivery_note", "contract")
CARRIERS = ("Maersk Line", "MSC Mediterranean", "Hapag-Lloyd", "CMA CGM", "Evergreen Marine", "ONE")
MAPPINGS = [
    {"source": "booking_reference", "target": "reference", "strategy": "exact", "weight": 0.5},
    {"source": "carrier", "target": "carrier_name", "strategy": "fuzzy", "weight": 0.2,
     "options": {"min_similarity": 0.6}},
    {"source": "total", "target": "amount", "strategy": "numeric_range", "weight": 0.2,
     "options": {"tolerance_pct": 2}},
    {"source": "ship_date", "target": "departure", "strategy": "date_range", "weight": 0.1,
     "options": {"tolerance_days": 3}},
]  # fmt: skip


def booking(i: int) -> dict[str, Any]:
    return {
        "id": f"BK-{i}",
        "reference": f"REF{i:07d}",
        "carrier_name": CARRIERS[i % len(CARRIERS)],
        "amount": 1000.0 + 7 * i,
        "departure": (date(2024, 1, 1) + timedelta(days=i % 300)).isoformat(),
    }


def document(i: int, row: int) -> dict[str, Any]:
    ref = booking(i)
    values = {
        "booking_reference": ref["reference"],
        "carrier": ref["carrier_name"],
        "total": f"{ref['amount']:,.2f}",
        "ship_date": ref["departure"],
    }
    return {"document_id": f"doc_{i}_{row}", "extraction_row_id": f"row_{row}", "values": values}


def run_documents(n: int) -> dict[str, list[dict[str, Any]]]:
    return {
        slot: [document((n * 11 + s * 5 + r) % BOOKING_COUNT, r) for r in range(ROWS_PER_SLOT)]
        for s, slot in enumerate(SLOTS)
    }


class ApiError(AssertionError):
    pass


@dataclass
class Client:
    base: str
    key: str

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.key}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def create(self, path: str, body: Any) -> str:
        status, created = self.call("POST", path, body)
        if status != 201:
            raise ApiError(f"POST {path} → {status}: {created}")
        return str(created["id"])


@dataclass
class World:
    package_config_id: str
    poison_config_id: str
    poison_dataset_id: str


def build_world(client: Client) -> World:
    bookings = [booking(i) for i in range(BOOKING_COUNT)]
    dataset = client.create("/v1/matching/reference-data", {"name": "bookings", "rows": bookings})
    poison_dataset = client.create(
        "/v1/matching/reference-data", {"name": "contracts", "rows": bookings[:30]}
    )
    config = {"field_mappings": MAPPINGS, "threshold": 0.85}
    matching = client.create(
        "/v1/matching/configs", {"name": "bookings", "reference_data_id": dataset, **config}
    )
    poison_matching = client.create(
        "/v1/matching/configs", {"name": "contracts", "reference_data_id": poison_dataset, **config}
    )

    def package(name: str, contract_config: str) -> str:
        slots = [
            {"document_type": slot, "presence": "required",
             "matching_config_id": contract_config if slot == "contract" else matching}
            for slot in SLOTS
        ]  # fmt: skip
        return client.create("/v1/matching/packages/configs", {"name": name, "document_type_configs": slots})

    return World(package("bundle", matching), package("poisoned bundle", poison_matching), poison_dataset)


@dataclass
class Load:
    """The runs a scenario submitted (202 answers only) and the verdict each must end with."""

    client: Client
    world: World
    expected: dict[str, str] = field(default_factory=dict)
    submitted_at: float = 0.0

    def submit(self, count: int, *, poisoned: bool = False, parallel: int = 4) -> list[str]:
        config = self.world.poison_config_id if poisoned else self.world.package_config_id
        start = len(self.expected)

        def one(n: int) -> str:
            body = {"package_config_id": config, "input_documents": run_documents(n)}
            status, run = self.client.call("POST", "/v1/matching/packages/runs", body)
            if status != 202:
                raise ApiError(f"run submission → {status}: {run}")
            return str(run["id"]).removeprefix("run_")

        with ThreadPoolExecutor(parallel) as pool:
            run_ids = list(pool.map(one, range(start, start + count)))
        for run_id in run_ids:
            self.expected[run_id] = "error" if poisoned else "passed"
        return run_ids
