"""Reference datasets and their rows."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import count, islice, repeat
from typing import Any, Generic, TypeVar, cast

import psycopg
import sqlalchemy as sa
from psycopg import sql
from psycopg.errors import UniqueViolation
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from packmatch.domain.models import ReferenceDataset, ReferenceRow, RunSnapshot, RunStatus
from packmatch.errors import Conflict
from packmatch.store.pagination import (
    Page,
    PageRequest,
    keyset_page,
    position_after,
    position_cursor,
)
from packmatch.store.tables import matching_configs, package_runs, reference_datasets, reference_rows

_INSERT_BATCH = 1000
_BULK_BATCH = 10_000
DATASET_IN_USE = "This reference data is used by a matching config; delete that first."
ROW_ID_UNIQUE = "uq_reference_rows_dataset_row_id"

K = TypeVar("K")


def insert_dataset(conn: Connection, dataset: ReferenceDataset) -> None:
    values = dataset.model_dump(mode="python")
    values["columns"] = [c.model_dump(mode="json") for c in dataset.columns]
    conn.execute(reference_datasets.insert().values(**values))


def set_dataset_shape(conn: Connection, dataset: ReferenceDataset) -> None:
    """Record a dataset's row count and columns, known once its rows are written."""
    columns = [c.model_dump(mode="json") for c in dataset.columns]
    conn.execute(
        reference_datasets.update()
        .where(reference_datasets.c.id == dataset.id)
        .values(row_count=dataset.row_count, columns=columns)
    )


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


def insert_new_rows(
    conn: Connection, dataset_id: uuid.UUID, rows: Sequence[ReferenceRow], start: int
) -> set[int]:
    """Insert rows at positions `start`, `start + 1`, …, skipping any whose id the dataset already
    has (its unique index decides, `ON CONFLICT DO NOTHING`); returns the positions written."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(reference_rows)
        .on_conflict_do_nothing(index_elements=["dataset_id", "row_id"])
        .returning(reference_rows.c.position)
    )
    values = [
        {"dataset_id": dataset_id, "position": position, "row_id": row.id, "data": row.values}
        for position, row in enumerate(rows, start=start)
    ]
    return set(conn.execute(statement, values).scalars()) if values else set()


class RowWriter(Generic[K]):
    """Writes a new dataset's rows in batches, leaving out (and reporting) rows whose id is taken.

    An id is taken when an earlier row of the batch in hand has it, or a row already written has
    it (the insert skips that row and says so); memory holds one batch however many rows stream
    past. `key` is the caller's handle on a row (an index, a line number), given to `on_duplicate`.
    """

    def __init__(
        self, conn: Connection, dataset_id: uuid.UUID, on_duplicate: Callable[[K, str], None]
    ) -> None:
        self._conn = conn
        self._dataset_id = dataset_id
        self._on_duplicate = on_duplicate
        self._batch: dict[str, tuple[K, ReferenceRow]] = {}
        self._position = 0

    def add(self, key: K, row: ReferenceRow) -> None:
        if row.id in self._batch:
            self._on_duplicate(key, row.id)
            return
        self._batch[row.id] = (key, row)
        if len(self._batch) >= _INSERT_BATCH:
            self.flush()

    def flush(self) -> None:
        batch = list(self._batch.values())
        written = insert_new_rows(self._conn, self._dataset_id, [row for _, row in batch], self._position)
        for position, (key, row) in enumerate(batch, start=self._position):
            if position not in written:
                self._on_duplicate(key, row.id)
        self._position += len(batch)
        self._batch = {}


# --- bulk writing: COPY on PostgreSQL, executemany on SQLite ---------------------------------

# A batch of new rows: their ids, and their values as JSON text exactly as json.dumps writes it
# (what SQLAlchemy's JSON type stores), written into the JSON column as it is.
RowBatch = tuple[Sequence[str], Sequence[str]]


class RowIdTaken(Exception):
    """Two rows written have the same id (the unique index said so). The transaction is unusable:
    roll it back; `first_duplicate_ids` then finds where the duplicates are."""


Rows = Sequence[Sequence[Any]]


@contextmanager
def _copy_into(conn: Connection, table: sa.Table) -> Iterator[psycopg.Copy]:
    """`COPY table FROM STDIN` on the connection's own psycopg connection: the same transaction."""
    columns = sql.SQL(", ").join(sql.Identifier(column.name) for column in table.columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(sql.Identifier(table.name), columns)
    raw = cast("psycopg.Connection[Any]", conn.connection.dbapi_connection)
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        yield copy


def _copy(conn: Connection, table: sa.Table, batches: Iterable[Rows]) -> None:
    """psycopg formats and escapes each row (in C) and streams the data while it is written."""
    with _copy_into(conn, table) as copy:
        for batch in batches:
            for row in batch:
                copy.write_row(row)


# COPY's text format written by hand for the rows: psycopg's write_row costs about 2 µs a row in
# Python (a tuple and a call per row), a third of the import's Python time at 1M rows, which on a
# 2-core machine is CPU taken from the server; a batch formatted with one `%` per row and escaped
# in one `replace` costs under 1 µs a row. The format: tab between fields, newline after a row, a
# backslash, tab, newline or CR in a value escaped with a backslash (PostgreSQL's COPY, "Text
# Format"). The JSON text holds backslashes but no control character (json.dumps escapes them);
# a batch with an id that holds a tab, newline or CR goes through write_row instead.
_NEEDS_WRITE_ROW = re.compile("[\t\n\r]")


def _copy_rows(conn: Connection, dataset_id: uuid.UUID, batches: Iterable[RowBatch]) -> None:
    dataset = str(dataset_id)
    line = f"{dataset}\t%d\t%s\t%s\n"
    position = 0
    with _copy_into(conn, reference_rows) as copy:
        for ids, data in batches:
            if _NEEDS_WRITE_ROW.search("".join(ids)):
                for row in zip(repeat(dataset), count(position), ids, data, strict=False):
                    copy.write_row(row)
            else:
                text = "".join(map(line.__mod__, zip(count(position), ids, data, strict=False)))
                copy.write(text.replace("\\", "\\\\"))
            position += len(ids)


def _insert_many(conn: Connection, table: sa.Table, batches: Iterable[Rows]) -> None:
    """One executemany per batch, without SQLAlchemy's per-row bind processing: the values are
    already what the driver stores."""
    statement = str(table.insert().compile(dialect=conn.dialect))
    for batch in batches:
        if batch:
            conn.exec_driver_sql(statement, list(batch))


def _bulk_write(conn: Connection, table: sa.Table, batches: Iterable[Rows]) -> None:
    if conn.dialect.name == "postgresql":
        _copy(conn, table, batches)
    else:
        _insert_many(conn, table, batches)


def _rows_of(dataset_id: Any, batches: Iterable[RowBatch]) -> Iterator[Rows]:
    position = 0
    for ids, data in batches:
        yield list(zip(repeat(dataset_id), count(position), ids, data, strict=False))
        position += len(ids)


def write_rows(conn: Connection, dataset_id: uuid.UUID, batches: Iterable[RowBatch]) -> None:
    """Append a new dataset's rows at positions 0, 1, …, batch after batch, at bulk speed (COPY on
    PostgreSQL). A row id seen twice → RowIdTaken; nothing is checked or skipped on the way."""
    if conn.dialect.name == "postgresql":
        try:
            _copy_rows(conn, dataset_id, batches)
        except UniqueViolation as exc:  # COPY goes around SQLAlchemy: psycopg's own error
            if exc.diag.constraint_name != ROW_ID_UNIQUE:
                raise
            raise RowIdTaken from None
        return
    to_db = reference_rows.c.dataset_id.type.bind_processor(conn.dialect)
    try:
        _insert_many(conn, reference_rows, _rows_of(to_db(dataset_id) if to_db else dataset_id, batches))
    except sa.exc.IntegrityError as exc:
        if "reference_rows.row_id" not in str(exc.orig):
            raise
        raise RowIdTaken from None


def _batched(rows: Iterable[tuple[int, str]]) -> Iterator[Rows]:
    rows = iter(rows)
    while batch := list(islice(rows, _BULK_BATCH)):
        yield batch


_row_ids = sa.Table(
    "packmatch_import_row_ids",
    sa.MetaData(),
    sa.Column("line", sa.Integer, nullable=False),
    sa.Column("row_id", sa.String(200), nullable=False),
    prefixes=["TEMPORARY"],
)


def first_duplicate_ids(
    conn: Connection, rows: Iterable[tuple[int, str]], limit: int
) -> list[tuple[int, str]]:
    """The first `limit` (line, id) whose id an earlier line has, in line order. The ids go into a
    temporary table (bulk, like the rows) and SQL numbers each id's lines; memory stays flat."""
    _row_ids.drop(conn, checkfirst=True)
    _row_ids.create(conn)
    _bulk_write(conn, _row_ids, _batched(rows))
    seen = sa.func.row_number().over(partition_by=_row_ids.c.row_id, order_by=_row_ids.c.line)
    numbered = sa.select(_row_ids.c.line, _row_ids.c.row_id, seen.label("seen")).subquery()
    query = (
        sa.select(numbered.c.line, numbered.c.row_id)
        .where(numbered.c.seen > 1)
        .order_by(numbered.c.line)
        .limit(limit)
    )
    found = [(line, row_id) for line, row_id in conn.execute(query)]
    _row_ids.drop(conn)
    return found


def get_dataset(
    conn: Connection, organization_id: uuid.UUID | None, dataset_id: uuid.UUID, *, lock: bool = False
) -> ReferenceDataset | None:
    """`lock=True` holds `FOR KEY SHARE` so a concurrent delete waits, then fails its FK check."""
    query = sa.select(reference_datasets).where(reference_datasets.c.id == dataset_id)
    if organization_id is not None:
        query = query.where(reference_datasets.c.organization_id == organization_id)
    if lock:
        query = query.with_for_update(read=True, key_share=True)
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


def runs_in_flight_using(conn: Connection, organization_id: uuid.UUID, dataset_id: uuid.UUID) -> int:
    """How many running runs of the organization have a matching config on this dataset in their
    snapshot (a run keeps its configs as they were; the dataset itself it reads when it executes)."""
    snapshots = conn.execute(
        sa.select(package_runs.c.snapshot).where(
            package_runs.c.organization_id == organization_id,
            package_runs.c.status == RunStatus.RUNNING.value,
        )
    ).scalars()
    return sum(
        any(
            c.reference_data_id == dataset_id for c in RunSnapshot.model_validate(s).matching_configs.values()
        )
        for s in snapshots
    )


def delete_dataset(conn: Connection, organization_id: uuid.UUID, dataset_id: uuid.UUID) -> bool:
    """Delete a dataset and its rows. A matching config that started using it meanwhile → Conflict."""
    query = reference_datasets.delete().where(
        reference_datasets.c.id == dataset_id,
        reference_datasets.c.organization_id == organization_id,
    )
    try:
        conn.execute(reference_rows.delete().where(reference_rows.c.dataset_id == dataset_id))
        result = conn.execute(query)
    except sa.exc.IntegrityError:
        raise Conflict(DATASET_IN_USE) from None
    return result.rowcount == 1
