"""Accepting package runs and reading them back."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from packmatch.domain.models import (
    InputRow,
    PackageConfig,
    PackageRun,
    Presence,
    RunSnapshot,
    RunStatus,
    SlotResult,
    SlotStatus,
)
from packmatch.domain.reviews import ReviewStatus
from packmatch.errors import FieldProblem, NotFound, ValidationFailed
from packmatch.logging import get_logger
from packmatch.services.configs import PACKAGE_NOT_FOUND
from packmatch.services.pipeline import send_slots
from packmatch.services.ports import Clock, Metrics, NoMetrics, Publisher, utcnow
from packmatch.store import configs as config_store
from packmatch.store import runs as store
from packmatch.store.db import Database
from packmatch.store.pagination import Page, PageRequest

log = get_logger(__name__)

RUN_NOT_FOUND = "No package run with this ID exists for your organization."

InputDocuments = Mapping[str, Sequence[InputRow]]


@dataclass(frozen=True)
class RunFilters:
    package_config_id: uuid.UUID | None = None
    status: RunStatus | None = None
    reviewed: bool | None = None
    review_decision: ReviewStatus | None = None


def check_document_types(config: PackageConfig, documents: InputDocuments) -> None:
    known = {slot.document_type for slot in config.slots}
    unknown = [name for name in documents if name not in known]
    if unknown:
        names = ", ".join(f"'{n}'" for n in unknown)
        raise ValidationFailed(
            f"input_documents has keys that are not slots of the package config: {names}.",
            details=[
                FieldProblem(f"input_documents.{n}", "Not a document type of this package config.")
                for n in unknown
            ],
        )


def distinct_document_ids(documents: InputDocuments) -> dict[str, list[str]]:
    return {name: list(dict.fromkeys(row.document_id for row in rows)) for name, rows in documents.items()}


def initial_slots(config: PackageConfig, documents: InputDocuments) -> list[SlotResult]:
    slots = []
    for slot in config.slots:
        found = bool(documents.get(slot.document_type))
        if found:
            status = SlotStatus.PENDING
        else:
            status = SlotStatus.SKIPPED if slot.presence is Presence.OPTIONAL else SlotStatus.MISSING
        slots.append(
            SlotResult(
                document_type=slot.document_type,
                matching_config_id=slot.matching_config_id,
                matching_run_id=None,
                presence=slot.presence,
                document_found=found,
                status=status,
                confidence=None,
            )
        )
    return slots


@dataclass(frozen=True)
class NewRun:
    """A run about to be recorded: the run, the snapshot it works from, its input rows per slot."""

    run: PackageRun
    snapshot: RunSnapshot
    inputs: list[Sequence[InputRow]]


def load_snapshot(conn: Connection, organization_id: uuid.UUID, package_config_id: uuid.UUID) -> RunSnapshot:
    """The package config and its matching configs as a run accepted now works from: share-locked
    (PostgreSQL) so that a concurrent PUT or DELETE of any of them waits for this transaction, and
    the snapshot is one committed version of each (store/configs.py)."""
    config = config_store.get_package_config(conn, organization_id, package_config_id, lock="share")
    if config is None:
        raise NotFound(PACKAGE_NOT_FOUND)
    wanted = {slot.matching_config_id for slot in config.slots}
    matching = config_store.get_matching_configs(conn, organization_id, wanted, lock="share")
    return RunSnapshot(package_config=config, matching_configs=matching)


def new_run(
    organization_id: uuid.UUID, snapshot: RunSnapshot, documents: InputDocuments, now: datetime
) -> NewRun:
    config = snapshot.package_config
    run = PackageRun(
        id=uuid.uuid4(),
        organization_id=organization_id,
        package_config_id=config.id,
        status=RunStatus.RUNNING,
        slots=tuple(initial_slots(config, documents)),
        input_documents=distinct_document_ids(documents),
        error=None,
        created_at=now,
        completed_at=None,
    )
    return NewRun(run, snapshot, [documents.get(slot.document_type, ()) for slot in config.slots])


class Runs:
    def __init__(
        self, db: Database, publisher: Publisher, clock: Clock = utcnow, metrics: Metrics | None = None
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.clock = clock
        self.metrics = metrics or NoMetrics()

    def accept(
        self, organization_id: uuid.UUID, package_config_id: uuid.UUID, documents: InputDocuments
    ) -> PackageRun:
        now = self.clock()
        with self.db.transaction() as conn:
            snapshot = load_snapshot(conn, organization_id, package_config_id)
            check_document_types(snapshot.package_config, documents)
            new = new_run(organization_id, snapshot, documents, now)
            store.insert_run(conn, new.run, new.snapshot, new.inputs)
        self.announce(new.run)
        return new.run

    def announce(self, run: PackageRun) -> None:
        """After the commit that recorded `run`: log it, count it, send its slots' messages."""
        log.info(
            "run.accepted",
            run_id=str(run.id),
            package_config_id=str(run.package_config_id),
            slots=len(run.slots),
        )
        self.metrics.run_accepted()
        self._publish(run)

    def announce_all(self, runs: Sequence[PackageRun]) -> None:
        """`announce` each run, their messages sent together (one broker round trip for a batch)."""
        try:
            with self.publisher.together():
                for run in runs:
                    self.announce(run)
        except Exception:  # as in `_publish`: recorded runs the reconciler re-drives
            for i, run in enumerate(runs):  # the traceback once, not once a run
                (log.exception if i == 0 else log.error)("run.enqueue_failed", run_id=str(run.id))

    def _publish(self, run: PackageRun) -> None:
        # Sent after commit (SPEC §6), straight to the slots: a `fan_out` message would cost the
        # workers a message and a transaction per run. If the broker is down, the run is recorded
        # and the reconciler re-drives it; the client still gets its 202.
        pending = [i for i, slot in enumerate(run.slots) if slot.status is SlotStatus.PENDING]
        try:
            send_slots(self.publisher, run.id, pending)
        except Exception:
            log.exception("run.enqueue_failed", run_id=str(run.id))

    def get(self, organization_id: uuid.UUID, run_id: uuid.UUID) -> PackageRun:
        with self.db.transaction() as conn:
            run = store.get_run(conn, organization_id, run_id)
        if run is None:
            raise NotFound(RUN_NOT_FOUND)
        return run

    def list(self, organization_id: uuid.UUID, request: PageRequest, filters: RunFilters) -> Page[PackageRun]:
        with self.db.transaction() as conn:
            return store.list_runs(
                conn,
                organization_id,
                request,
                package_config_id=filters.package_config_id,
                status=filters.status,
                reviewed=filters.reviewed,
                review_decision=filters.review_decision,
            )
