"""Reference datasets and their rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from packmatch.domain.models import ReferenceDataset, ReferenceRow
from packmatch.store.pagination import (
    Page,
    PageRequest,
    keyset_page,
    position_after,
    position_cursor,
)
from packmatch.store.tables import matching_configs, reference_datasets, reference_rows

_INSERT_BATCH = 1000


def insert_dataset(conn: Connection, dataset: ReferenceDataset) -> None:
    values = dataset.model_dump(mode="python")
    values["columns"] = [c.model_dump(mode="json") for c in dataset.columns]
    conn.execute(reference_datasets.insert().values(**values))


def insert_rows(conn: Connection, dataset_id: uuid.UUID, rows: Iterable[ReferenceRow], start: int = 0) -> int:
    """Insert rows in batches; returns how many were written."""
    batch: list[dict[str, Any]] = []
    count = 0
    for position, row in enumerate(rows, start=start):
        batch.append({"dataset_id": dataset_id, "position": position, "row_id": row.id, "data": row.values})
        if len(batch) >= _INSERT_BATCH:
            conn.execute(reference_rows.insert(), batch)
            count += len(batch)
            batch = []
    if batch:
        conn.execute(reference_rows.insert(), batch)
        count += len(batch)
    return count


def _dataset(row: sa.Row[Any]) -> ReferenceDataset:
    return ReferenceDataset.model_validate(dict(row._mapping))


def get_dataset(
    conn: Connection, organization_id: uuid.UUID | None, dataset_id: uuid.UUID
) -> ReferenceDataset | None:
    query = sa.select(reference_datasets).where(reference_datasets.c.id == dataset_id)
    if organization_id is not None:
        query = query.where(reference_datasets.c.organization_id == organization_id)
    row = conn.execute(query).first()
    return None if row is None else _dataset(row)


def list_datasets(
    conn: Connection, organization_id: uuid.UUID, request: PageRequest
) -> Page[ReferenceDataset]:
    scope = [reference_datasets.c.organization_id == organization_id]
    return keyset_page(conn, reference_datasets, scope, request, _dataset)


def page_rows(conn: Connection, dataset: ReferenceDataset, request: PageRequest) -> Page[ReferenceRow]:
    after = position_after(request)
    query = sa.select(reference_rows.c.position, reference_rows.c.row_id, reference_rows.c.data).where(
        reference_rows.c.dataset_id == dataset.id
    )
    if request.order == "asc":
        if after is not None:
            query = query.where(reference_rows.c.position > after)
        query = query.order_by(reference_rows.c.position.asc())
    else:
        if after is not None:
            query = query.where(reference_rows.c.position < after)
        query = query.order_by(reference_rows.c.position.desc())
    rows = conn.execute(query.limit(request.limit + 1)).all()
    items = [ReferenceRow(r.row_id, r.data) for r in rows[: request.limit]]
    more = len(rows) > request.limit
    cursor = position_cursor(rows[request.limit - 1].position) if more else None
    return Page(items, dataset.row_count, request.limit, cursor)


def load_rows(conn: Connection, dataset_id: uuid.UUID) -> Sequence[ReferenceRow]:
    result = conn.execute(
        sa.select(reference_rows.c.row_id, reference_rows.c.data)
        .where(reference_rows.c.dataset_id == dataset_id)
        .order_by(reference_rows.c.position)
    )
    return [ReferenceRow(row_id, data) for row_id, data in result]


def dataset_in_use(conn: Connection, dataset_id: uuid.UUID) -> bool:
    query = sa.select(matching_configs.c.id).where(matching_configs.c.reference_data_id == dataset_id)
    return conn.execute(query.limit(1)).first() is not None


def delete_dataset(conn: Connection, organization_id: uuid.UUID, dataset_id: uuid.UUID) -> bool:
    conn.execute(reference_rows.delete().where(reference_rows.c.dataset_id == dataset_id))
    result = conn.execute(
        reference_datasets.delete().where(
            reference_datasets.c.id == dataset_id,
            reference_datasets.c.organization_id == organization_id,
        )
    )
    return result.rowcount == 1
