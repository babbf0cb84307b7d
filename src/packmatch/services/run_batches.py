"""Accepting many package runs at once (`POST …/runs/batch`, `packmatch runs submit`).

Each run is accepted exactly as a single POST accepts it — the same snapshot, slots, messages,
logs and webhooks — but the batch costs one transaction: each package config is read once, and
the runs and their slots are written with two statements. An item that cannot be accepted is
reported with its index and never blocks the others, unless the batch is atomic: then any bad item
fails the whole batch with a 400 naming every bad item (`runs[3].package_config_id`), and nothing
is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from packmatch.domain.models import PackageRun, RunSnapshot
from packmatch.errors import FieldProblem, NotFound, PackmatchError, ValidationFailed
from packmatch.services.runs import InputDocuments, NewRun, Runs, check_document_types, load_snapshot, new_run
from packmatch.store import runs as store

MAX_BATCH_RUNS = 1000


@dataclass(frozen=True)
class BatchItem:
    """One run of a batch, already parsed: its package config and input documents."""

    package_config_id: uuid.UUID
    documents: InputDocuments


@dataclass(frozen=True)
class ItemFailed:
    """Why the batch item at `index` was not accepted; field paths are the batch body's."""

    index: int
    error: PackmatchError


BatchEntry = PackageRun | ItemFailed


def item_error(index: int, error: PackmatchError) -> ItemFailed:
    """`error` of item `index`, its field paths made absolute (`runs[3].input_documents.x`)."""
    prefix = f"runs[{index}]"
    fields = error.details or [FieldProblem("", error.message)]
    details = [FieldProblem(f"{prefix}.{p.field}" if p.field else prefix, p.message) for p in fields]
    relocated = type(error)(error.message, details=details)
    return ItemFailed(index, relocated)


class RunBatches:
    def __init__(self, runs: Runs) -> None:
        self.runs = runs

    def accept(
        self,
        organization_id: uuid.UUID,
        items: Sequence[BatchItem | ItemFailed],
        *,
        atomic: bool = False,
    ) -> list[BatchEntry]:
        now = self.runs.clock()
        with self.runs.db.transaction() as conn:
            entries = _prepare(conn, organization_id, items, now)
            failed = [e for e in entries if isinstance(e, ItemFailed)]
            if atomic and failed:
                raise _batch_refused(failed)
            accepted = [e for e in entries if isinstance(e, NewRun)]
            store.insert_runs(conn, [(n.run, n.snapshot, n.inputs) for n in accepted])
        self.runs.announce_all([new.run for new in accepted])
        return [e.run if isinstance(e, NewRun) else e for e in entries]


def _prepare(
    conn: Connection,
    organization_id: uuid.UUID,
    items: Sequence[BatchItem | ItemFailed],
    now: datetime,
) -> list[NewRun | ItemFailed]:
    snapshots: dict[uuid.UUID, RunSnapshot | PackmatchError] = {}
    entries: list[NewRun | ItemFailed] = []
    for index, item in enumerate(items):
        if isinstance(item, ItemFailed):
            entries.append(item)
            continue
        try:
            snapshot = _snapshot(conn, organization_id, item.package_config_id, snapshots)
            check_document_types(snapshot.package_config, item.documents)
        except NotFound as missing:
            problem = FieldProblem("package_config_id", missing.message)
            entries.append(item_error(index, NotFound(missing.message, details=[problem])))
            continue
        except PackmatchError as error:
            entries.append(item_error(index, error))
            continue
        entries.append(new_run(organization_id, snapshot, item.documents, now))
    return entries


def _snapshot(
    conn: Connection,
    organization_id: uuid.UUID,
    config_id: uuid.UUID,
    known: dict[uuid.UUID, RunSnapshot | PackmatchError],
) -> RunSnapshot:
    """Each package config is read once per batch, so every run of one config shares one snapshot."""
    if config_id not in known:
        try:
            known[config_id] = load_snapshot(conn, organization_id, config_id)
        except PackmatchError as error:
            known[config_id] = error
    found = known[config_id]
    if isinstance(found, PackmatchError):
        raise found
    return found


def _batch_refused(failed: Sequence[ItemFailed]) -> ValidationFailed:
    details = [problem for item in failed for problem in item.error.details]
    first = failed[0]
    message = f"{len(failed)} of the batch's runs cannot be accepted (first: runs[{first.index}]: "
    return ValidationFailed(f"{message}{first.error.message}); nothing was accepted.", details=details)
