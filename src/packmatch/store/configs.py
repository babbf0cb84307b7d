"""Matching configs and package configs (slots live in their own table so references are queryable)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from packmatch.domain.models import MatchingConfig, PackageConfig, Slot
from packmatch.store.pagination import Page, PageRequest, keyset_page
from packmatch.store.tables import matching_configs, package_config_slots, package_configs


def _matching_values(config: MatchingConfig) -> dict[str, Any]:
    values = config.model_dump(mode="python")
    values["field_mappings"] = [m.model_dump(mode="json") for m in config.field_mappings]
    return values


def _matching(row: sa.Row[Any]) -> MatchingConfig:
    return MatchingConfig.model_validate(dict(row._mapping))


def insert_matching_config(conn: Connection, config: MatchingConfig) -> None:
    conn.execute(matching_configs.insert().values(**_matching_values(config)))


def get_matching_config(
    conn: Connection, organization_id: uuid.UUID, config_id: uuid.UUID
) -> MatchingConfig | None:
    row = conn.execute(
        sa.select(matching_configs).where(
            matching_configs.c.id == config_id,
            matching_configs.c.organization_id == organization_id,
        )
    ).first()
    return None if row is None else _matching(row)


def get_matching_configs(
    conn: Connection, organization_id: uuid.UUID, config_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, MatchingConfig]:
    rows = conn.execute(
        sa.select(matching_configs).where(
            matching_configs.c.id.in_(list(config_ids)),
            matching_configs.c.organization_id == organization_id,
        )
    ).all()
    return {row.id: _matching(row) for row in rows}


def list_matching_configs(
    conn: Connection, organization_id: uuid.UUID, request: PageRequest
) -> Page[MatchingConfig]:
    scope = [matching_configs.c.organization_id == organization_id]
    return keyset_page(conn, matching_configs, scope, request, _matching)


def insert_package_config(conn: Connection, config: PackageConfig) -> None:
    values = config.model_dump(mode="python", exclude={"slots"})
    values["pass_criteria"] = config.pass_criteria.model_dump(mode="json")
    conn.execute(package_configs.insert().values(**values))
    _insert_slots(conn, config.id, config.slots)


def _insert_slots(conn: Connection, config_id: uuid.UUID, slots: Iterable[Slot]) -> None:
    rows = [
        {"package_config_id": config_id, "position": i, **slot.model_dump(mode="python")}
        for i, slot in enumerate(slots)
    ]
    if rows:
        conn.execute(package_config_slots.insert(), rows)


def _slots_by_config(conn: Connection, config_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Slot]]:
    rows = conn.execute(
        sa.select(package_config_slots)
        .where(package_config_slots.c.package_config_id.in_(config_ids))
        .order_by(package_config_slots.c.package_config_id, package_config_slots.c.position)
    ).all()
    slots: dict[uuid.UUID, list[Slot]] = {config_id: [] for config_id in config_ids}
    for row in rows:
        slots[row.package_config_id].append(
            Slot(
                document_type=row.document_type,
                matching_config_id=row.matching_config_id,
                presence=row.presence,
            )
        )
    return slots


def _package(row: sa.Row[Any], slots: list[Slot]) -> PackageConfig:
    return PackageConfig.model_validate({**row._mapping, "slots": slots})


def get_package_config(
    conn: Connection, organization_id: uuid.UUID, config_id: uuid.UUID
) -> PackageConfig | None:
    row = conn.execute(
        sa.select(package_configs).where(
            package_configs.c.id == config_id,
            package_configs.c.organization_id == organization_id,
        )
    ).first()
    if row is None:
        return None
    return _package(row, _slots_by_config(conn, [row.id])[row.id])


def list_package_configs(
    conn: Connection, organization_id: uuid.UUID, request: PageRequest
) -> Page[PackageConfig]:
    scope = [package_configs.c.organization_id == organization_id]
    page = keyset_page(conn, package_configs, scope, request, lambda row: row)
    slots = _slots_by_config(conn, [row.id for row in page.items])
    items = [_package(row, slots[row.id]) for row in page.items]
    return Page(items, page.total, page.limit, page.next_cursor)
