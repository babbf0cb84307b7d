"""Integration fixtures: a world of configs recorded straight through the services."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from dramatiq.brokers.stub import StubBroker

from packmatch.bootstrap import Runtime
from packmatch.domain.models import (
    FieldMapping,
    InputRow,
    PackageRun,
    PassCriteria,
    Presence,
    Slot,
    Strategy,
)
from packmatch.services.configs import MatchingConfigInput, PackageConfigInput
from packmatch.services.container import Services
from packmatch.worker.runner import InProcessWorker

SERVICES = [pytest.mark.postgres, pytest.mark.redis]

BOOKINGS = [
    {"id": f"BK-{i}", "reference": f"REF{i:07d}", "carrier_name": carrier, "amount": 1000.0 + i}
    for i, carrier in enumerate(["Maersk Line", "MSC", "Hapag-Lloyd", "CMA CGM", "Evergreen"])
]


@dataclass(frozen=True)
class World:
    organization_id: uuid.UUID
    package_config_id: uuid.UUID
    reference_data_id: uuid.UUID


def build_world(services: Services, organization: str = "acme") -> World:
    key = services.accounts.create_key(organization, frozenset({"read", "write"}))
    org = services.accounts.authenticate(key).organization_id
    dataset = services.reference_data.create(org, "bookings", BOOKINGS)
    mappings = [
        FieldMapping(source="ref", target="reference", strategy=Strategy.EXACT, weight=0.6),
        FieldMapping(source="carrier", target="carrier_name", strategy=Strategy.FUZZY, weight=0.2),
        FieldMapping(
            source="total",
            target="amount",
            strategy=Strategy.NUMERIC_RANGE,
            weight=0.2,
            options={"tolerance_abs": 5},
        ),
    ]
    matching = services.configs.create_matching(
        org, MatchingConfigInput("invoice", dataset.id, mappings, threshold=0.8)
    )
    slots = [
        Slot(document_type="invoice", matching_config_id=matching.id, presence=Presence.REQUIRED),
        Slot(document_type="delivery_note", matching_config_id=matching.id, presence=Presence.EXPECTED),
    ]
    package = services.configs.create_package(org, PackageConfigInput("bundle", slots, PassCriteria()))
    return World(org, package.id, dataset.id)


class RecordingLog:
    """Stands in for a module's structlog logger (monkeypatch the module's `log`): structlog's
    `capture_logs` cannot see loggers that an earlier test's configuration cached on first use.
    Keeps every call as (level, event, fields), the fields with what `bind` added."""

    def __init__(
        self,
        calls: list[tuple[str, str, dict[str, Any]]] | None = None,
        context: dict[str, Any] | None = None,
    ) -> None:
        self.calls = [] if calls is None else calls
        self.context = context or {}

    @property
    def events(self) -> list[tuple[str, dict[str, Any]]]:
        return [(event, fields) for _, event, fields in self.calls]

    def bind(self, **fields: Any) -> RecordingLog:
        return RecordingLog(self.calls, {**self.context, **fields})

    def __getattr__(self, level: str) -> Callable[..., None]:
        def record(event: str, **fields: Any) -> None:
            self.calls.append((level, event, {**self.context, **fields}))

        return record


def invoice_row(i: int, document_id: str | None = None, **values: object) -> InputRow:
    base = {"ref": f"REF{i:07d}", "carrier": BOOKINGS[i]["carrier_name"], "total": 1000.0 + i}
    return InputRow(document_id=document_id or f"doc_{i}", values={**base, **values})


class Stack:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.world = build_world(runtime.services)
        self.worker = InProcessWorker(runtime.broker, threads=2)

    def drain(self) -> None:
        """Block until every message (including retries and follow-ups) has been processed."""
        broker, settings = self.runtime.broker, self.runtime.settings
        for queue in (settings.queue_name, settings.webhook_queue):
            if isinstance(broker, StubBroker):
                broker.join(queue, fail_fast=False)
            else:
                broker.join(queue, timeout=60_000)
        if isinstance(broker, StubBroker):
            self.worker.worker.join()

    def submit(self, **documents: Any) -> PackageRun:
        services = self.runtime.services
        return services.runs.accept(self.world.organization_id, self.world.package_config_id, documents)

    def get(self, run: PackageRun) -> PackageRun:
        return self.runtime.services.runs.get(self.world.organization_id, run.id)

    def count(self, table: sa.Table) -> int:
        with self.runtime.services.db.transaction() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


BACKENDS = ["sqlite+memory", pytest.param("postgres+redis", marks=SERVICES)]


def backend_runtime(
    request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime], **overrides: object
) -> Runtime:
    """A runtime on the pair of backends `request.param` names (`BACKENDS`)."""
    if request.param == "sqlite+memory":
        return make_runtime(database_url=request.getfixturevalue("sqlite_url"), **overrides)
    return make_runtime(
        database_url=request.getfixturevalue("postgres_url"),
        broker_url=request.getfixturevalue("redis_url"),
        **overrides,
    )


@pytest.fixture(params=BACKENDS)
def stack(request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]) -> Iterator[Stack]:
    """A world of configs and a running in-process worker, on each pair of backends."""
    stack = Stack(backend_runtime(request, make_runtime))
    with stack.worker:
        yield stack
