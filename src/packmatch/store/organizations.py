"""What an organization owns, and deleting it with all of that (`packmatch organizations delete`)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from packmatch.store.tables import (
    api_keys,
    match_results,
    matching_configs,
    matching_runs,
    organizations,
    package_configs,
    package_runs,
    reference_datasets,
    reference_rows,
    webhook_deliveries,
    webhooks,
)

# What an operator is shown, in the order it is deleted (children before the rows they refer to:
# matching configs RESTRICT the deletion of their dataset, package slots that of their config).
OWNED: tuple[tuple[str, sa.Table], ...] = (
    ("runs", package_runs),
    ("webhooks", webhooks),
    ("package_configs", package_configs),
    ("matching_configs", matching_configs),
    ("reference_datasets", reference_datasets),
    ("api_keys", api_keys),
)


def find_for_update(conn: Connection, name: str) -> uuid.UUID | None:
    """The organization's id, its row locked (PostgreSQL) against a concurrent `keys create`."""
    query = sa.select(organizations.c.id).where(organizations.c.name == name).with_for_update()
    found: uuid.UUID | None = conn.execute(query).scalar_one_or_none()
    return found


def owned(conn: Connection, organization_id: uuid.UUID) -> dict[str, int]:
    """Counts of what the organization owns, by table (tables it has no row in are left out)."""
    counts: dict[str, int] = {}
    for label, table in OWNED:
        where = table.c.organization_id == organization_id
        count = conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
        if count:
            counts[label] = int(count)
    return counts


def delete_organization(conn: Connection, organization_id: uuid.UUID) -> None:
    """Delete the organization and everything it owns, in one transaction. The two big tables go
    first, set-based, rather than row by row through their cascades."""
    of_org = matching_runs.c.organization_id == organization_id
    conn.execute(
        sa.delete(match_results).where(
            match_results.c.matching_run_id.in_(sa.select(matching_runs.c.id).where(of_org))
        )
    )
    datasets = sa.select(reference_datasets.c.id).where(
        reference_datasets.c.organization_id == organization_id
    )
    conn.execute(sa.delete(reference_rows).where(reference_rows.c.dataset_id.in_(datasets)))
    conn.execute(sa.delete(webhook_deliveries).where(webhook_deliveries.c.organization_id == organization_id))
    for _, table in OWNED:  # the rest through their cascades (slots, reviews, idempotency records)
        conn.execute(sa.delete(table).where(table.c.organization_id == organization_id))
    conn.execute(sa.delete(organizations).where(organizations.c.id == organization_id))
