"""The archive: complete runs out to JSON lines (for audit, before retention deletes them) and back.

One line per run: `{"packmatch_export": 1, "tables": {table: [rows]}}` with every column of every
row the run owns, so an import gives back exactly what the API showed. Ids and times are strings
(ISO 8601 with their zone); everything else is stored JSON as it was.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
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
) -> Iterator[bytes]:
    """Each run created in [since, until) as one JSON line, oldest first."""
    with db.transaction() as conn:
        for tree in store.export_runs(conn, organization_id=organization_id, since=since, until=until):
            line = {"packmatch_export": FORMAT_VERSION, "tables": tree}
            yield json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


@dataclass
class ImportReport:
    imported: int = 0
    already_present: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line number, why)


def _tree(line: bytes) -> dict[str, Any]:
    try:
        document = json.loads(line)
    except ValueError:
        raise store.ImportRefused("not JSON") from None
    if not isinstance(document, dict) or document.get("packmatch_export") != FORMAT_VERSION:
        raise store.ImportRefused(f"not a packmatch export line (format {FORMAT_VERSION})")
    tables = document.get("tables")
    if not isinstance(tables, dict):
        raise store.ImportRefused("not a packmatch export line (no tables)")
    return tables


def import_lines(db: Database, lines: Iterable[bytes]) -> ImportReport:
    """Insert every exported run not already present; a refused line never stops the others.

    Lines go in transactions of up to IMPORT_BATCH runs, each run behind a savepoint, so a run
    that cannot go in (its organization or config is missing here) leaves nothing of itself.
    """
    report = ImportReport()
    batch: list[tuple[int, dict[str, Any]]] = []

    def flush() -> None:
        with db.transaction() as conn:
            for number, tree in batch:
                try:
                    with conn.begin_nested():
                        added = store.import_run(conn, tree)
                except store.ImportRefused as exc:
                    report.refused.append((number, str(exc)))
                    continue
                except sa.exc.IntegrityError:
                    report.refused.append((number, "it conflicts with rows of another run in this database"))
                    continue
                if added:
                    report.imported += 1
                else:
                    report.already_present += 1
        batch.clear()

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            batch.append((number, _tree(line)))
        except store.ImportRefused as exc:
            report.refused.append((number, str(exc)))
        if len(batch) >= IMPORT_BATCH:
            flush()
    if batch:
        flush()
    log.info(
        "runs.imported",
        imported=report.imported,
        already_present=report.already_present,
        refused=len(report.refused),
    )
    return report


def open_maybe_gzip(file: IO[bytes]) -> IO[bytes]:
    """The file itself, or its decompressed stream when it starts with gzip's magic bytes."""
    import gzip

    head = file.peek(2)[:2] if hasattr(file, "peek") else b""
    return gzip.GzipFile(fileobj=file) if head == b"\x1f\x8b" else file  # type: ignore[return-value]
