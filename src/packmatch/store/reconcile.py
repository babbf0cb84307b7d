"""Queries for the reconciler: runs that stopped making progress, and runs past their deadline."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from packmatch.domain.models import RunStatus, SlotStatus
from packmatch.store.tables import matching_runs, package_runs, run_slots

RUNNING = RunStatus.RUNNING.value


@dataclass(frozen=True)
class StalledRun:
    id: uuid.UUID
    slots_pending: int
    fanned_out: bool


def claim_stalled(conn: Connection, idle_since: datetime, now: datetime, limit: int) -> list[StalledRun]:
    """Running runs without progress since `idle_since`; their clock restarts so one pass claims each."""
    rows = conn.execute(
        sa.select(package_runs.c.id, package_runs.c.slots_pending, package_runs.c.fanned_out_at)
        .where(package_runs.c.status == RUNNING, package_runs.c.progress_at < idle_since)
        .order_by(package_runs.c.progress_at)
        .limit(limit)
    ).all()
    claimed = []
    for row in rows:
        touched = conn.execute(
            package_runs.update()
            .where(
                package_runs.c.id == row.id,
                package_runs.c.status == RUNNING,
                package_runs.c.progress_at < idle_since,
            )
            .values(progress_at=now)
        )
        if touched.rowcount == 1:
            claimed.append(StalledRun(row.id, row.slots_pending, row.fanned_out_at is not None))
    return claimed


def overdue(conn: Connection, created_before: datetime, limit: int) -> list[uuid.UUID]:
    rows = conn.execute(
        sa.select(package_runs.c.id)
        .where(package_runs.c.status == RUNNING, package_runs.c.created_at < created_before)
        .order_by(package_runs.c.created_at)
        .limit(limit)
    )
    return list(rows.scalars())


def expire_pending_slots(conn: Connection, run_id: uuid.UUID, error: str, now: datetime) -> int:
    """Mark every still-pending slot of a run `error`; returns how many there were."""
    pending = run_slots.c.status == SlotStatus.PENDING.value
    names = list(
        conn.execute(
            sa.select(run_slots.c.document_type).where(run_slots.c.run_id == run_id, pending)
        ).scalars()
    )
    if not names:
        return 0
    conn.execute(
        run_slots.update()
        .where(run_slots.c.run_id == run_id, pending)
        .values(status=SlotStatus.ERROR.value, error=error)
    )
    conn.execute(
        matching_runs.update()
        .where(
            matching_runs.c.package_run_id == run_id,
            matching_runs.c.document_type.in_(names),
            matching_runs.c.status.in_(["queued", "running"]),
        )
        .values(status="failed", error=error, completed_at=now)
    )
    conn.execute(
        package_runs.update().where(package_runs.c.id == run_id).values(slots_pending=0, progress_at=now)
    )
    return len(names)
