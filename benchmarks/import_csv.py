"""Benchmark the CSV import of reference data: the bulk path against the old batched INSERT.

    .venv/bin/python benchmarks/import_csv.py                          # 100k and 1M rows
    .venv/bin/python benchmarks/import_csv.py --sizes 100000 --old-max 100000

The file is the bookings of data.py written as CSV (an `id` column, so the unique index checks
every row): `id,booking_reference,shipper,amount,departure,carrier`, ~75 bytes a row. Each import
runs in a process of its own (peak RSS is that import's own) against a fresh database: a
throw-away PostgreSQL database (PACKMATCH_BENCH_POSTGRES_URL's server) or a SQLite file. "new"
is `ReferenceData.create_from_csv`; "old" is the path it replaced, rebuilt from the pieces that
are still there: the exact per-record first pass, then per-record conversion and
`INSERT … ON CONFLICT DO NOTHING RETURNING` in batches of 1,000 (`store.RowWriter`). Both must
store the same text: `equal` compares a digest of every row's position, id and JSON text.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data import bookings

from packmatch.domain.models import ReferenceDataset, ReferenceRow
from packmatch.services.reference.csv_import import scan_records
from packmatch.services.reference.csv_reader import CsvRecords
from packmatch.services.reference.datasets import MAX_ROWS, ReferenceData
from packmatch.services.reference.rules import row_id
from packmatch.store import accounts
from packmatch.store import reference_data as store
from packmatch.store.db import Database, migrate
from packmatch.store.tables import reference_rows

POSTGRES = os.environ.get("PACKMATCH_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
HEADER = ["id", "booking_reference", "shipper", "amount", "departure", "carrier"]


def write_csv(path: Path, count: int, seed: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for row in bookings(count, seed):
            writer.writerow([row.id, *row.values.values()])


def old_import(db: Database, organization_id: uuid.UUID, name: str, file: IO[bytes]) -> ReferenceDataset:
    """The import as it was before the bulk path (no duplicates in this file: none reported)."""
    layout = scan_records(file, MAX_ROWS)
    file.seek(0)
    now = datetime.now(UTC)
    dataset = ReferenceDataset(
        id=uuid.uuid4(),
        organization_id=organization_id,
        name=name,
        source_type="csv",
        row_count=layout.row_count,
        columns=layout.columns,
        created_at=now,
        updated_at=now,
    )
    with db.transaction() as conn:
        store.insert_dataset(conn, dataset)
        writer: store.RowWriter[int] = store.RowWriter(conn, dataset.id, lambda line, taken: None)
        for n, (line, cells) in enumerate(CsvRecords(file, lambda line, message: None), start=1):
            own = None if layout.id_index is None else cells[layout.id_index]
            writer.add(line, ReferenceRow(row_id(n, own), layout.values(cells)))
        writer.flush()
    return dataset


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            url = f"sqlite:///{directory}/bench.db"
            migrate(url)
            yield url
        return
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"packmatch_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        url = sa.make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
        migrate(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def digest(db: Database, dataset_id: uuid.UUID) -> str:
    """A digest of every stored row's position, id and JSON text (as the database holds it)."""
    as_text = sa.cast if db.dialect == "postgresql" else sa.type_coerce
    query = (
        sa.select(reference_rows.c.position, reference_rows.c.row_id, as_text(reference_rows.c.data, sa.Text))
        .where(reference_rows.c.dataset_id == dataset_id)
        .order_by(reference_rows.c.position)
    )
    found = hashlib.sha256()
    with db.engine.connect() as conn:
        for position, identifier, data in conn.execution_options(yield_per=10_000).execute(query):
            found.update(f"{position}\t{identifier}\t{data}\n".encode())
    return found.hexdigest()


Importer = Callable[[Database, uuid.UUID, str, IO[bytes]], ReferenceDataset]


def new_import(db: Database, organization_id: uuid.UUID, name: str, file: IO[bytes]) -> ReferenceDataset:
    return ReferenceData(db).create_from_csv(organization_id, name, file)


def run_import(kind: str, path: str, which: str) -> dict[str, Any]:
    """In a process of its own: one import into a fresh database, timed."""
    importer: Importer = new_import if which == "new" else old_import
    with fresh_database(kind) as url:
        db = Database.from_url(url)
        with db.transaction() as conn:
            organization_id = accounts.get_or_create_organization(conn, "bench", datetime.now(UTC))
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        with open(path, "rb") as file:
            dataset = importer(db, organization_id, "bench", file)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        result = {
            "rows": dataset.row_count,
            "seconds": seconds,
            "cpu": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            "peak_rss_mb": after.ru_maxrss / 1024,
            "digest": digest(db, dataset.id),
        }
        db.dispose()
    return result


def measure(kind: str, path: str, which: str) -> dict[str, Any]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        result: dict[str, Any] = pool.apply(run_import, (kind, path, which))
    return result


def report(size: int, kind: str, new: dict[str, Any], old: dict[str, Any] | None) -> None:
    def line(which: str, r: dict[str, Any]) -> str:
        rate = r["rows"] / r["seconds"]
        return (
            f"  {kind:8} {which:3} {r['seconds']:8.2f} s {rate:11,.0f} rows/s  "
            f"client CPU {r['cpu']:6.2f} s  peak RSS {r['peak_rss_mb']:5.0f} MB"
        )

    print(line("new", new))
    if old is not None:
        ratio = (new["rows"] / new["seconds"]) / (old["rows"] / old["seconds"])
        equal = "yes" if old["digest"] == new["digest"] else "NO"
        print(f"{line('old', old)}\n  {kind:8} new/old {ratio:5.1f}×, same stored rows: {equal}")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument(
        "--databases", nargs="+", default=["postgres", "sqlite"], choices=["postgres", "sqlite"]
    )
    parser.add_argument("--old-max", type=int, default=1_000_000, help="run the old path up to this size")
    parser.add_argument("--seed", type=int, default=20240914)
    args = parser.parse_args()
    print(" ".join(sys.argv))
    with tempfile.TemporaryDirectory() as directory:
        for size in args.sizes:
            path = Path(directory) / f"bookings-{size}.csv"
            with multiprocessing.get_context("spawn").Pool(1) as pool:  # its rows stay out of our RSS
                pool.apply(write_csv, (path, size, args.seed))
            print(f"\n{size:,} rows, {path.stat().st_size / 2**20:.1f} MiB of CSV")
            for kind in args.databases:
                new = measure(kind, str(path), "new")
                old = measure(kind, str(path), "old") if size <= args.old_max else None
                report(size, kind, new, old)


if __name__ == "__main__":
    main()
