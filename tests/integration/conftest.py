"""Integration fixtures: a world of configs recorded straight through the services."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from packmatch.domain.models import FieldMapping, InputRow, PassCriteria, Presence, Slot, Strategy
from packmatch.services.configs import MatchingConfigInput, PackageConfigInput
from packmatch.services.container import Services

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


def invoice_row(i: int, document_id: str | None = None, **values: object) -> InputRow:
    base = {"ref": f"REF{i:07d}", "carrier": BOOKINGS[i]["carrier_name"], "total": 1000.0 + i}
    return InputRow(document_id=document_id or f"doc_{i}", values={**base, **values})
