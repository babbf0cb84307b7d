"""Aggregates for monitoring: the runs still running (the `packmatch_runs_in_flight` gauges)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from packmatch.domain.models import RunStatus
from packmatch.domain.monitoring import RunsInFlight
from packmatch.store.tables import package_runs


def runs_in_flight(conn: Connection) -> RunsInFlight:
    """How many runs are running and when the oldest was accepted (served by the status index)."""
    row = conn.execute(
        sa.select(sa.func.count(), sa.func.min(package_runs.c.created_at)).where(
            package_runs.c.status == RunStatus.RUNNING.value
        )
    ).one()
    return RunsInFlight(int(row[0]), row[1])
