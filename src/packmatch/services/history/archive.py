"""The archive: complete runs out to JSON lines (for audit, before retention deletes them) and back.

One line per run: `{"packmatch_export": 1, "tables": {table: [rows]}}` with every column of every
row the run owns, so an import gives back exactly what the API showed. Ids and times are strings
(ISO 8601 with their zone); everything else is stored JSON as it was.
"""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import sqlalchemy as sa

from packmatch.logging import get_logger
from packmatch.store import retention as store
from packmatch.store.db import Database

log = get_logger(__name__)

FORMAT_VERSION = 1
IMPORT_BATCH = 100


def export_lines(
    db: Database,
    *,
    organization_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch: int = 200,
) -> Iterator[bytes]:
    """Each final run created in [since, until) as one JSON line, oldest first.

    A page of `batch` runs is read in one short snapshot (each run's rows as one commit left them),
    which ends before its lines are written: a slow reader of the export holds no connection,
    snapshot or lock meanwhile.
    """
    after: store.ExportKey | None = None
    while True:
        with db.snapshot() as conn:
            trees, after = store.export_page(
                conn, organization_id=organization_id, since=since, until=until, after=after, batch=batch
            )
        for tree in trees:
            line = {"packmatch_export": FORMAT_VERSION, "tables": tree}
            yield json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        if after is None:
            return


@dataclass
class ImportReport:
    imported: int = 0
    already_present: int = 0


class ImportFailed(Exception):
    """The file cannot be imported; the message says where and why (without any stored value)."""


def _tree(line: bytes) -> dict[str, Any]:
    try:
        document = json.loads(line)
    except ValueError:
        raise store.ImportRefused("not JSON") from None
    version = document.get("packmatch_export") if isinstance(document, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        newer = f"export format {version} is newer than this packmatch reads ({FORMAT_VERSION})"
        raise store.ImportRefused(f"{newer}: upgrade packmatch")
    if version != FORMAT_VERSION:
        raise store.ImportRefused(f"not a packmatch export line (format {FORMAT_VERSION})")
    tables = document.get("tables")
    if not isinstance(tables, dict):
        raise store.ImportRefused("not a packmatch export line (no tables)")
    return tables


def _numbered(read: Callable[[], Iterable[bytes]]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, its run) for every non-blank line; ImportFailed at the first bad one."""
    try:
        for number, line in enumerate(read(), start=1):
            if not line.strip():
                continue
            try:
                yield number, _tree(line)
            except store.ImportRefused as exc:
                raise ImportFailed(f"line {number}: {exc}") from None
    except (EOFError, gzip.BadGzipFile, zlib.error):
        raise ImportFailed("the gzip stream is truncated or corrupt") from None


def _batches(read: Callable[[], Iterable[bytes]]) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    batch: list[tuple[int, dict[str, Any]]] = []
    for item in _numbered(read):
        batch.append(item)
        if len(batch) >= IMPORT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def import_lines(db: Database, read: Callable[[], Iterable[bytes]]) -> ImportReport:
    """Insert every exported run not already present: all of the file, or nothing of it.

    `read` gives the file's lines, once per pass. The first pass only reads: every line must be
    an export line of this format whose run can go in here (its organization and package config
    exist, none of its rows' ids belongs to another run), else ImportFailed names the first bad
    line and nothing is written. The second pass inserts in transactions of up to IMPORT_BATCH
    runs (a run already here, from an earlier import, is counted and skipped).
    """
    try:
        for batch in _batches(read):
            with db.transaction() as conn:
                for number, tree in batch:
                    try:
                        store.check_run(conn, tree)
                    except store.ImportRefused as exc:
                        raise ImportFailed(f"line {number}: {exc}") from None
    except ImportFailed as exc:
        raise ImportFailed(f"{exc}; nothing was imported") from None
    report = ImportReport()
    for batch in _batches(read):
        number, added, present = batch[0][0], 0, 0
        try:
            with db.transaction() as conn:
                for item in batch:
                    number, tree = item  # named by the error below if it fails
                    if store.import_run(conn, tree):
                        added += 1
                    else:
                        present += 1
        except (store.ImportRefused, sa.exc.IntegrityError) as exc:
            # Only a concurrent writer gets here (the first pass checked the same things).
            why = exc if isinstance(exc, store.ImportRefused) else "it conflicts with rows written meanwhile"
            raise ImportFailed(
                f"line {number}: {why}; the {report.imported} run(s) before its batch were imported "
                "(importing the file again skips them)"
            ) from None
        report.imported += added
        report.already_present += present
    log.info("runs.imported", imported=report.imported, already_present=report.already_present)
    return report


def open_maybe_gzip(file: IO[bytes]) -> IO[bytes]:
    """The file itself, or its decompressed stream when it starts with gzip's magic bytes."""
    head = file.peek(2)[:2] if hasattr(file, "peek") else b""
    return gzip.GzipFile(fileobj=file) if head == b"\x1f\x8b" else file  # type: ignore[return-value]
