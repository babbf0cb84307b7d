"""Keyset pagination: opaque cursors over (created_at, id), so pages never repeat or skip items."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import sqlalchemy as sa

from packmatch.errors import FieldProblem, ValidationFailed

T = TypeVar("T")
Order = Literal["asc", "desc"]


@dataclass(frozen=True)
class PageRequest:
    limit: int = 20
    cursor: str | None = None
    order: Order = "desc"


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    total: int
    limit: int
    next_cursor: str | None

    @property
    def has_more(self) -> bool:
        return self.next_cursor is not None


def _bad_cursor() -> ValidationFailed:
    message = "Invalid cursor. Pass next_cursor from a previous page unchanged."
    return ValidationFailed(message, details=[FieldProblem("cursor", message)])


def encode_cursor(payload: dict[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeError):
        raise _bad_cursor() from None
    if not isinstance(payload, dict):
        raise _bad_cursor()
    return payload


def time_cursor(created_at: datetime, item_id: uuid.UUID) -> str:
    return encode_cursor({"t": created_at.isoformat(), "i": str(item_id)})


def time_keyset_filter(
    table: sa.Table, request: PageRequest
) -> tuple[list[sa.ColumnElement[bool]], list[sa.UnaryExpression[Any]]]:
    """WHERE clauses and ORDER BY for a page of `table` ordered by (created_at, id)."""
    created, ident = table.c.created_at, table.c.id
    order = [created.desc(), ident.desc()] if request.order == "desc" else [created.asc(), ident.asc()]
    if request.cursor is None:
        return [], order
    payload = decode_cursor(request.cursor)
    try:
        at = datetime.fromisoformat(payload["t"])
        after = uuid.UUID(payload["i"])
    except (KeyError, TypeError, ValueError):
        raise _bad_cursor() from None
    if at.tzinfo is None:
        raise _bad_cursor()
    # A row-value comparison, not `created < at OR (created = at AND id < after)`: PostgreSQL
    # turns it into an index range, where the OR form filtered every row before the cursor (a page
    # in the middle of a million runs cost ~0.5 s; benchmarks/README.md, issue 18).
    key = sa.tuple_(created, ident)
    bound = sa.tuple_(sa.literal(at, created.type), sa.literal(after, ident.type))
    return [key < bound if request.order == "desc" else key > bound], order


def position_cursor(position: int) -> str:
    return encode_cursor({"p": position})


def position_after(request: PageRequest) -> int | None:
    if request.cursor is None:
        return None
    position = decode_cursor(request.cursor).get("p")
    if not isinstance(position, int) or isinstance(position, bool):
        raise _bad_cursor()
    return position


def keyset_page(
    conn: sa.Connection,
    table: sa.Table,
    filters: Sequence[sa.ColumnElement[bool]],
    request: PageRequest,
    convert: Any,
    *,
    total: int | None = None,
) -> Page[Any]:
    """One page of `table` rows matching `filters`, newest first unless `request.order` is asc.

    `convert` turns a result row into a domain value that has `created_at` and `id`. `total`, if
    the caller has it (store/counts.py), spares counting the rows (COUNT(*) grows with the table).
    """
    if total is None:
        total = conn.execute(sa.select(sa.func.count()).select_from(table).where(*filters)).scalar_one()
    where, order = time_keyset_filter(table, request)
    query = sa.select(table).where(*filters, *where).order_by(*order).limit(request.limit + 1)
    rows = conn.execute(query).all()
    items = [convert(row) for row in rows[: request.limit]]
    more = len(rows) > request.limit
    cursor = time_cursor(items[-1].created_at, items[-1].id) if more else None
    return Page(items, total, request.limit, cursor)
