"""What a scenario measures: counted in SQL (the system of record) and in the workers' JSON logs.

- submitted: runs the API accepted (202).
- finalized: of those, runs in a final status.
- lost: accepted runs whose work did not all land: missing from the database, a final verdict other
  than the one their inputs call for (e.g. "deadline exceeded"), or an executed slot without its
  matching run or with fewer results than input rows.
- stuck: runs still `running` when the scenario's deadline ran out.
- duplicated: a second matching run for a slot, more results than input rows, a slot completed
  twice or a run finalized twice (counted from `slot.completed` / `run.finalized` log events).
- recover_s: seconds from the fault to the moment every run was final.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.faults.processes import wait_for
from tests.faults.workload import Load

REPORT_ENV = "PACKMATCH_FAULTS_REPORT"


@dataclass(frozen=True)
class Figures:
    scenario: str
    submitted: int
    finalized: int
    lost: int
    stuck: int
    duplicated: int
    recover_s: float
    running_at_fault: int
    redriven: int
    dead_lettered: int


SLOT_WORK = sa.text(
    """
    SELECT s.run_id, s.document_type, s.status,
           json_array_length(s.input_rows) AS rows,
           (SELECT count(*) FROM matching_runs m
             WHERE m.package_run_id = s.run_id AND m.document_type = s.document_type) AS matching_runs,
           (SELECT count(*) FROM match_results r JOIN matching_runs m ON r.matching_run_id = m.id
             WHERE m.package_run_id = s.run_id AND m.document_type = s.document_type) AS results,
           EXISTS (SELECT 1 FROM matching_runs m
             WHERE m.id = s.matching_run_id AND m.package_run_id = s.run_id
               AND m.document_type = s.document_type AND m.status = 'completed') AS same_matching_run
    FROM run_slots s
    """
)


class Probe:
    """Reads the test database with a fresh connection each time, so it survives a restart."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.NullPool)

    def close(self) -> None:
        self.engine.dispose()

    def running(self) -> int | None:
        """Runs still running, or None while the database cannot be reached."""
        try:
            with self.engine.connect() as conn:
                query = "SELECT count(*) FROM package_runs WHERE status = 'running'"
                return int(conn.execute(sa.text(query)).scalar_one())
        except sa.exc.OperationalError:
            return None

    def slots_done(self) -> float:
        """The share of slots no longer pending (0 while the database cannot be reached)."""
        query = "SELECT count(*) FILTER (WHERE status <> 'pending'), count(*) FROM run_slots"
        try:
            with self.engine.connect() as conn:
                done, total = conn.execute(sa.text(query)).one()
        except sa.exc.OperationalError:
            return 0.0
        return done / total if total else 0.0

    def wait_until_final(self, seconds: float) -> float | None:
        """The monotonic time every run was final, or None if some were still running at the deadline."""
        try:
            return wait_for("every run to be final", lambda: self.running() == 0, seconds)
        except AssertionError:
            return None

    def runs(self) -> dict[str, tuple[str, str | None]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, status, error FROM package_runs")).all()
        return {str(row.id): (row.status, row.error) for row in rows}

    def slot_work(self) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(SLOT_WORK).all())


def _twice(keys: Iterable[tuple[str, ...]]) -> int:
    return sum(1 for count in Counter(keys).values() if count > 1)


def _outcome_ok(expected: str, status: str, error: str | None) -> bool:
    if expected == "error":
        return (
            status == "error" and "slot contract: " in (error or "") and "no longer exists" in (error or "")
        )
    return status == expected


def _slot_problems(slots: list[Any]) -> tuple[set[str], int]:
    """Runs with missing slot work, and the number of slots with duplicated work."""
    missing: set[str] = set()
    duplicated = 0
    for slot in slots:
        if slot.matching_runs > 1 or slot.results > slot.rows:
            duplicated += 1
        if slot.status in ("matched", "unmatched"):
            whole = slot.matching_runs == 1 and slot.same_matching_run and slot.results == slot.rows
            if not whole:
                missing.add(str(slot.run_id))
        elif slot.status == "pending":
            missing.add(str(slot.run_id))
    return missing, duplicated


@dataclass(frozen=True)
class Timeline:
    fault_at: float
    final_at: float | None  # None: some run was still running at the deadline
    running_at_fault: int


def measure(scenario: str, load: Load, probe: Probe, events: list[dict[str, Any]], when: Timeline) -> Figures:
    runs = probe.runs()
    accepted = load.expected
    stuck = sum(1 for run_id in accepted if runs.get(run_id, ("", None))[0] == "running")
    lost = {run_id for run_id in accepted if run_id not in runs}
    for run_id, expected in accepted.items():
        status, error = runs.get(run_id, ("running", None))
        if status != "running" and not _outcome_ok(expected, status, error):
            lost.add(run_id)
    missing_work, duplicated_slots = _slot_problems(probe.slot_work())
    lost |= {run_id for run_id in missing_work if runs.get(run_id, ("running", None))[0] != "running"}
    finalized = _twice((e["run_id"],) for e in events if e.get("event") == "run.finalized")
    completed = _twice(
        (e["run_id"], e["document_type"]) for e in events if e.get("event") == "slot.completed"
    )
    return Figures(
        scenario=scenario,
        submitted=len(accepted),
        finalized=sum(1 for run_id in accepted if runs.get(run_id, ("running", None))[0] != "running"),
        lost=len(lost),
        stuck=stuck,
        duplicated=duplicated_slots + finalized + completed,
        recover_s=round(when.final_at - when.fault_at, 1) if when.final_at is not None else float("nan"),
        running_at_fault=when.running_at_fault,
        redriven=sum(1 for e in events if e.get("event") == "run.reconciled"),
        dead_lettered=sum(1 for e in events if e.get("event") == "message.dead_lettered"),
    )


def record(figures: Figures) -> None:
    """Append the figures to the report file that `python -m tests.faults.report` reads, if asked."""
    path = os.environ.get(REPORT_ENV)
    if path:
        with Path(path).open("a") as out:
            out.write(json.dumps({**asdict(figures), "recorded_at": time.time()}) + "\n")
