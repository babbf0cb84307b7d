"""Reference datasets: create from JSON rows, inspect, page through rows, delete."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

from packmatch.domain.models import Column, ColumnType, ReferenceDataset, ReferenceRow
from packmatch.errors import Conflict, NotFound, ProblemList
from packmatch.services.ports import Clock, utcnow
from packmatch.store import reference_data as store
from packmatch.store.db import Database
from packmatch.store.pagination import Page, PageRequest

NOT_FOUND = "No reference data with this ID exists for your organization."


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_iso_date(value: Any) -> bool:
    if not isinstance(value, str) or len(value) < 10:
        return False
    try:
        date.fromisoformat(value[:10])
    except ValueError:
        return False
    return True


def infer_type(values: Iterable[Any]) -> ColumnType:
    """The narrowest type that every present value fits; `string` when they disagree."""
    present = [v for v in values if v is not None and v != ""]
    if present and all(isinstance(v, bool) for v in present):
        return ColumnType.BOOLEAN
    if present and all(_is_number(v) for v in present):
        return ColumnType.NUMBER
    if present and all(_is_iso_date(v) for v in present):
        return ColumnType.DATE
    return ColumnType.STRING


def infer_columns(rows: Sequence[Mapping[str, Any]]) -> tuple[Column, ...]:
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(k for k in row if k != "id"))
    return tuple(Column(name=n, type=infer_type(r.get(n) for r in rows)) for n in names)


def assign_row_ids(rows: Sequence[Mapping[str, Any]]) -> list[ReferenceRow]:
    """Rows keep their own `id`; others get `row_<n>` (1-based). Ids must be unique."""
    problems = ProblemList()
    seen: set[str] = set()
    result: list[ReferenceRow] = []
    for n, row in enumerate(rows, start=1):
        raw = row.get("id")
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, str | int) or raw == ""):
            problems.add(f"rows[{n - 1}].id", "Row id must be a non-empty string or an integer.")
            continue
        row_id = str(raw) if raw is not None else f"row_{n}"
        if row_id in seen:
            problems.add(f"rows[{n - 1}].id", f"Duplicate row id '{row_id}'.")
        seen.add(row_id)
        result.append(ReferenceRow(row_id, {k: v for k, v in row.items() if k != "id"}))
    problems.raise_if_any("Reference data rows are invalid.")
    return result


class ReferenceData:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def create(
        self, organization_id: uuid.UUID, name: str, rows: Sequence[Mapping[str, Any]]
    ) -> ReferenceDataset:
        reference_rows = assign_row_ids(rows)
        now = self.clock()
        dataset = ReferenceDataset(
            id=uuid.uuid4(),
            organization_id=organization_id,
            name=name,
            source_type="json",
            row_count=len(reference_rows),
            columns=infer_columns(rows),
            created_at=now,
            updated_at=now,
        )
        with self.db.transaction() as conn:
            store.insert_dataset(conn, dataset)
            store.insert_rows(conn, dataset.id, reference_rows)
        return dataset

    def get(self, organization_id: uuid.UUID, dataset_id: uuid.UUID) -> ReferenceDataset:
        with self.db.transaction() as conn:
            dataset = store.get_dataset(conn, organization_id, dataset_id)
        if dataset is None:
            raise NotFound(NOT_FOUND)
        return dataset

    def list(self, organization_id: uuid.UUID, request: PageRequest) -> Page[ReferenceDataset]:
        with self.db.transaction() as conn:
            return store.list_datasets(conn, organization_id, request)

    def rows(
        self, organization_id: uuid.UUID, dataset_id: uuid.UUID, request: PageRequest
    ) -> Page[ReferenceRow]:
        with self.db.transaction() as conn:
            dataset = store.get_dataset(conn, organization_id, dataset_id)
            if dataset is None:
                raise NotFound(NOT_FOUND)
            return store.page_rows(conn, dataset, request)

    def delete(self, organization_id: uuid.UUID, dataset_id: uuid.UUID) -> None:
        with self.db.transaction() as conn:
            if store.get_dataset(conn, organization_id, dataset_id) is None:
                raise NotFound(NOT_FOUND)
            if store.dataset_in_use(conn, dataset_id):
                raise Conflict("This reference data is used by a matching config; delete that first.")
            store.delete_dataset(conn, organization_id, dataset_id)
