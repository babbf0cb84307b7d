"""Package runs, their slots, matching runs and per-row results.

Fan-in lives here (NOTES-dramatiq: not in the broker): a slot completes with a guarded update
(only a `pending` slot changes), and only then is the run's `slots_pending` counter decremented,
in the same transaction. A duplicate or late delivery finds nothing to change and does nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from packmatch.domain.models import (
    Candidate,
    InputRow,
    MatchingRun,
    MatchingRunStatus,
    MatchResult,
    PackageRun,
    RowMatch,
    RunSnapshot,
    RunStatus,
    SlotResult,
    SlotStatus,
)
from packmatch.domain.reviews import ResultReview, Reviewer, ReviewStatus, RunReview
from packmatch.store import counts
from packmatch.store.pagination import (
    Page,
    PageRequest,
    keyset_page,
    position_after,
    position_cursor,
)
from packmatch.store.tables import match_results, matching_runs, package_runs, run_counts, run_slots

_SLOT_COLUMNS = [c for c in run_slots.c if c.name != "input_rows"]
_RUN_COLUMNS = [c for c in package_runs.c if c.name != "snapshot"]


@dataclass(frozen=True)
class SlotJob:
    """Everything a worker needs to execute one pending slot."""

    run_id: uuid.UUID
    organization_id: uuid.UUID
    position: int
    slot: SlotResult
    snapshot: RunSnapshot
    rows: tuple[InputRow, ...]
    progress_at: datetime  # the run's progress clock when the slot was read
    started_at: datetime
    matching_run_id: uuid.UUID  # the id its matching run gets if this delivery completes the slot


def insert_run(
    conn: Connection,
    run: PackageRun,
    snapshot: RunSnapshot,
    inputs: Sequence[Sequence[InputRow]],
) -> None:
    insert_runs(conn, [(run, snapshot, inputs)])


NewRunRows = tuple[PackageRun, RunSnapshot, Sequence[Sequence[InputRow]]]


def insert_runs(conn: Connection, runs: Sequence[NewRunRows]) -> None:
    """Record accepted runs and their slots: two statements however many runs there are."""
    if not runs:
        return
    conn.execute(package_runs.insert(), [_run_values(run, snapshot) for run, snapshot, _ in runs])
    conn.execute(
        run_slots.insert(),
        [
            {
                "run_id": run.id,
                "position": i,
                **slot.model_dump(mode="python"),
                "input_rows": [row.model_dump(mode="json") for row in rows],
            }
            for run, _, inputs in runs
            for i, (slot, rows) in enumerate(zip(run.slots, inputs, strict=True))
        ],
    )
    # counts: the accepted runs, one delta row per (organization, config)
    counts.add_runs(
        conn,
        (((run.organization_id, run.package_config_id, run.status.value, None), 1) for run, _, _ in runs),
    )


def _run_values(run: PackageRun, snapshot: RunSnapshot) -> dict[str, Any]:
    return {
        "id": run.id,
        "organization_id": run.organization_id,
        "package_config_id": run.package_config_id,
        "status": run.status.value,
        "snapshot": snapshot.model_dump(mode="json"),
        "input_documents": run.input_documents,
        "slots_pending": sum(1 for s in run.slots if s.status is SlotStatus.PENDING),
        "error": None,
        "created_at": run.created_at,
        "completed_at": None,
        "progress_at": run.created_at,
        # `Runs.accept` sends the slots' messages as soon as this commits.
        "fanned_out_at": run.created_at,
    }


def _slot(row: Any) -> SlotResult:
    m = row._mapping
    return SlotResult.model_validate({k: m[k] for k in SlotResult.model_fields})


def _slots_by_run(conn: Connection, run_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[SlotResult]]:
    rows = conn.execute(
        sa.select(*_SLOT_COLUMNS)
        .where(run_slots.c.run_id.in_(run_ids))
        .order_by(run_slots.c.run_id, run_slots.c.position)
    ).all()
    slots: dict[uuid.UUID, list[SlotResult]] = {run_id: [] for run_id in run_ids}
    for row in rows:
        slots[row.run_id].append(_slot(row))
    return slots


# The statements of the pipeline's hot path are built once, with bound parameters: building one per
# call (clauses, coercions, cache key) cost more CPU than running it (benchmarks/README.md). Bound
# parameter names carry a `p_` prefix: SQLAlchemy reserves column names in SET and VALUES clauses.
_SLOTS_OF_RUN = (
    sa.select(*_SLOT_COLUMNS)
    .where(run_slots.c.run_id == sa.bindparam("p_run_id"))
    .order_by(run_slots.c.position)
)
_SLOT_JOB = (
    sa.select(
        run_slots,
        package_runs.c.organization_id,
        package_runs.c.status.label("run_status"),
        package_runs.c.snapshot,
        package_runs.c.progress_at,
    )
    .join(package_runs, package_runs.c.id == run_slots.c.run_id)
    .where(run_slots.c.run_id == sa.bindparam("p_run_id"), run_slots.c.position == sa.bindparam("p_position"))
)
_TOUCH_RUN = (
    package_runs.update()
    .where(package_runs.c.id == sa.bindparam("p_run_id"), package_runs.c.status == RunStatus.RUNNING.value)
    .values(progress_at=sa.bindparam("p_now"))
)
_PENDING_SLOT = [
    run_slots.c.run_id == sa.bindparam("p_run_id"),
    run_slots.c.position == sa.bindparam("p_position"),
    run_slots.c.status == SlotStatus.PENDING.value,
]
_COMPLETE_SLOT = (
    run_slots.update()
    .where(*_PENDING_SLOT)
    .values(
        status=sa.bindparam("p_status"),
        confidence=sa.bindparam("p_confidence"),
        matching_run_id=sa.bindparam("p_matching_run_id"),
    )
)
_FAIL_SLOT = (
    run_slots.update()
    .where(*_PENDING_SLOT)
    .values(
        status=SlotStatus.ERROR.value,
        error=sa.bindparam("p_error"),
        matching_run_id=sa.bindparam("p_matching_run_id"),
    )
)
_COUNT_DOWN = (
    package_runs.update()
    .where(package_runs.c.id == sa.bindparam("p_run_id"))
    .values(slots_pending=package_runs.c.slots_pending - 1, progress_at=sa.bindparam("p_now"))
    .returning(package_runs.c.slots_pending)
)
_FINALIZE_RUN = (
    package_runs.update()
    .where(package_runs.c.id == sa.bindparam("p_run_id"), package_runs.c.status == RunStatus.RUNNING.value)
    .values(
        status=sa.bindparam("p_status"),
        error=sa.bindparam("p_error"),
        completed_at=sa.bindparam("p_now"),
        progress_at=sa.bindparam("p_now"),
    )
    .returning(*_RUN_COLUMNS)
)
_MATCHING_RUN_FIELDS = (
    "id",
    "organization_id",
    "package_run_id",
    "document_type",
    "matching_config_id",
    "status",
    "rows_processed",
    "rows_matched",
    "avg_confidence",
    "started_at",
    "completed_at",
    "error",
    "created_at",
)


_MATCHING_RUN_SLOT = ("package_run_id", "document_type")


def _record_matching_run(dialect: Any) -> Any:
    """A slot's matching run, written once, complete, in the transaction that completes the slot.

    The conflict is a `running` one that a worker of the previous release created when the slot
    started (none has results: those come with completion): it becomes this one, id included."""
    insert = dialect.insert(matching_runs).values({f: sa.bindparam(f"p_{f}") for f in _MATCHING_RUN_FIELDS})
    return insert.on_conflict_do_update(
        index_elements=list(_MATCHING_RUN_SLOT),
        set_={f: insert.excluded[f] for f in _MATCHING_RUN_FIELDS if f not in _MATCHING_RUN_SLOT},
    )


_RECORD_MATCHING_RUN = {
    "postgresql": _record_matching_run(postgresql),
    "sqlite": _record_matching_run(sqlite),
}
_INSERT_RESULTS = match_results.insert()


def _reviewer(m: Any) -> Reviewer | None:
    key_id = m["reviewed_by_key_id"]
    return None if key_id is None else Reviewer(key_id=key_id, name=m["reviewed_by_name"])


def _run_review(m: Any) -> RunReview | None:
    if m["review_decision"] is None:
        return None
    return RunReview(
        decision=ReviewStatus(m["review_decision"]),
        notes=m["review_notes"],
        reviewed_by=_reviewer(m),
        reviewed_at=m["reviewed_at"],
    )


def _run(row: Any, slots: list[SlotResult]) -> PackageRun:
    m = row._mapping
    fields = {k: m[k] for k in PackageRun.model_fields if k not in ("slots", "review")}
    return PackageRun.model_validate({**fields, "slots": slots, "review": _run_review(m)})


_RESULT_FIELDS = [
    k for k in MatchResult.model_fields if k not in ("candidates", "review", "excluded_by_review")
]


def result_of(row: Any) -> MatchResult:
    """A `match_results` row (all columns) as a domain value."""
    m = row._mapping
    review = ResultReview(
        status=ReviewStatus(m["review_status"]),
        reference_row_id=m["review_reference_row_id"],
        notes=m["review_notes"],
        reviewed_by=_reviewer(m),
        reviewed_at=m["reviewed_at"],
    )
    return MatchResult(
        **{k: m[k] for k in _RESULT_FIELDS},
        candidates=tuple(Candidate.model_validate(c) for c in m["candidates"]),
        review=review,
        excluded_by_review=tuple(m["excluded_by_review"]),
    )


def get_run(conn: Connection, organization_id: uuid.UUID | None, run_id: uuid.UUID) -> PackageRun | None:
    query = sa.select(*_RUN_COLUMNS).where(package_runs.c.id == run_id)
    if organization_id is not None:
        query = query.where(package_runs.c.organization_id == organization_id)
    row = conn.execute(query).first()
    if row is None:
        return None
    return _run(row, _slots_by_run(conn, [run_id])[run_id])


def list_runs(
    conn: Connection,
    organization_id: uuid.UUID,
    request: PageRequest,
    *,
    package_config_id: uuid.UUID | None = None,
    status: RunStatus | None = None,
    reviewed: bool | None = None,
    review_decision: ReviewStatus | None = None,
) -> Page[PackageRun]:
    def filters(table: sa.Table) -> list[sa.ColumnElement[bool]]:  # on the runs or their counts
        where = [table.c.organization_id == organization_id]
        if package_config_id is not None:
            where.append(table.c.package_config_id == package_config_id)
        if status is not None:
            where.append(table.c.status == status.value)
        if reviewed is not None:
            decision = table.c.review_decision
            where.append(decision.is_not(None) if reviewed else decision.is_(None))
        if review_decision is not None:
            where.append(table.c.review_decision == review_decision.value)
        return where

    total = counts.total(conn, run_counts, filters(run_counts))
    page = keyset_page(conn, package_runs, filters(package_runs), request, lambda row: row, total=total)
    slots = _slots_by_run(conn, [row.id for row in page.items])
    items = [_run(row, slots[row.id]) for row in page.items]
    return Page(items, page.total, page.limit, page.next_cursor)


def mark_fanned_out(conn: Connection, run_id: uuid.UUID, now: datetime) -> list[int]:
    """Record the fan-out and return the positions of the slots still pending."""
    conn.execute(
        package_runs.update()
        .where(package_runs.c.id == run_id, package_runs.c.status == RunStatus.RUNNING.value)
        .values(fanned_out_at=now, progress_at=now)
    )
    rows = conn.execute(
        sa.select(run_slots.c.position)
        .where(run_slots.c.run_id == run_id, run_slots.c.status == SlotStatus.PENDING.value)
        .order_by(run_slots.c.position)
    )
    return list(rows.scalars())


def slot_job(conn: Connection, run_id: uuid.UUID, position: int, now: datetime) -> SlotJob | None:
    """A pending slot of a running run, ready to execute; None if there is nothing to do. Reads only:
    what the slot records is written by `complete_slot`, with a guard against a second delivery."""
    found = conn.execute(_SLOT_JOB, {"p_run_id": run_id, "p_position": position}).first()
    if found is None or found.run_status != RunStatus.RUNNING.value:
        return None
    if found.status != SlotStatus.PENDING.value:
        return None
    return SlotJob(
        run_id=run_id,
        organization_id=found.organization_id,
        position=position,
        slot=_slot(found),
        snapshot=RunSnapshot.model_validate(found.snapshot),
        rows=tuple(InputRow.model_validate(r) for r in found.input_rows),
        progress_at=found.progress_at,
        started_at=now,
        matching_run_id=uuid.uuid4(),
    )


def touch_progress(conn: Connection, run_id: uuid.UUID, now: datetime) -> None:
    """A running run is still being worked on: the reconciler leaves it alone for a while."""
    conn.execute(_TOUCH_RUN, {"p_run_id": run_id, "p_now": now})


def _counted_down(guarded: sa.Update) -> sa.Update:
    """`guarded` and `_COUNT_DOWN` as one PostgreSQL statement (one round trip instead of two): the
    slot's update in a data-modifying CTE, and the run's count down only for the row it changed. The
    slot's row is still locked before the run's (the CTE is evaluated first, as an InitPlan)."""
    changed = guarded.returning(run_slots.c.run_id).cte("changed_slot")
    return (
        package_runs.update()
        .where(package_runs.c.id == sa.select(changed.c.run_id).scalar_subquery())
        .values(slots_pending=package_runs.c.slots_pending - 1, progress_at=sa.bindparam("p_now"))
        .returning(package_runs.c.slots_pending)
    )


def _resolve_slot(
    conn: Connection, guarded: tuple[sa.Update, sa.Update], values: dict[str, Any], now: datetime
) -> int | None:
    """Guarded completion of a pending slot (`guarded`: `_COMPLETING` or `_FAILING`); returns the
    run's remaining pending slots, or None if the slot was no longer pending."""
    alone, counted_down = guarded
    if conn.dialect.name == "postgresql":  # SQLite has no data-modifying CTEs: two statements there
        remaining_now = conn.execute(counted_down, {**values, "p_now": now}).scalar_one_or_none()
        return None if remaining_now is None else int(remaining_now)
    changed = conn.execute(alone, values)
    if changed.rowcount != 1:
        return None
    remaining = conn.execute(_COUNT_DOWN, {"p_run_id": values["p_run_id"], "p_now": now})
    return int(remaining.scalar_one())


# Each guarded update alone (then `_COUNT_DOWN`) and merged with it (PostgreSQL).
_COMPLETING = (_COMPLETE_SLOT, _counted_down(_COMPLETE_SLOT))
_FAILING = (_FAIL_SLOT, _counted_down(_FAIL_SLOT))


@dataclass(frozen=True)
class SlotCompletion:
    """What matching a slot's rows produced: the engine's answer for each row, in input order."""

    status: SlotStatus
    confidence: float
    matches: Sequence[RowMatch]
    excluded: Mapping[str, tuple[str, ...]]  # document id → reference rows left out by reviews

    @property
    def rows_matched(self) -> int:
        return sum(1 for m in self.matches if m.matched)


def complete_slot(conn: Connection, job: SlotJob, done: SlotCompletion, now: datetime) -> int | None:
    """Record a slot's outcome, its matching run and its results (three statements on PostgreSQL,
    four on SQLite, the results one bulk insert); returns the run's remaining pending slots, or None
    if the slot was no longer pending (another delivery completed it: this one's transaction writes
    nothing)."""
    matching_run_id = job.matching_run_id
    values = {
        "p_run_id": job.run_id,
        "p_position": job.position,
        "p_status": done.status.value,
        "p_confidence": done.confidence,
        "p_matching_run_id": matching_run_id,
    }
    remaining = _resolve_slot(conn, _COMPLETING, values, now)
    if remaining is None:
        return None
    conn.execute(_RECORD_MATCHING_RUN[_dialect(conn)], _matching_run_values(job, done, matching_run_id, now))
    if done.matches:
        conn.execute(_INSERT_RESULTS, _result_values(job, done, matching_run_id, now))
    return remaining


def _dialect(conn: Connection) -> str:
    return "postgresql" if conn.dialect.name == "postgresql" else "sqlite"


def _matching_run_values(
    job: SlotJob, done: SlotCompletion, matching_run_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    matches = done.matches
    values = {
        "id": matching_run_id,
        "organization_id": job.organization_id,
        "package_run_id": job.run_id,
        "document_type": job.slot.document_type,
        "matching_config_id": job.slot.matching_config_id,
        "status": MatchingRunStatus.COMPLETED.value,
        "rows_processed": len(matches),
        "rows_matched": done.rows_matched,
        "avg_confidence": sum(m.confidence for m in matches) / len(matches) if matches else None,
        "started_at": job.started_at,
        "completed_at": now,
        "error": None,
        "created_at": job.started_at,
    }
    return {f"p_{k}": v for k, v in values.items()}


def _result_values(
    job: SlotJob, done: SlotCompletion, matching_run_id: uuid.UUID, now: datetime
) -> list[dict[str, Any]]:
    """One `match_results` row per input row, straight from the engine's values (no model between)."""
    excluded = done.excluded
    return [
        {
            "id": uuid.uuid4(),
            "matching_run_id": matching_run_id,
            "position": i,
            "document_id": row.document_id,
            "extraction_row_id": row.extraction_row_id,
            "matched": m.matched,
            "matched_reference_row_id": m.matched_reference_row_id,
            "confidence": m.confidence,
            "candidates": [c.model_dump(mode="json") for c in m.candidates],
            "created_at": now,
            "excluded_by_review": list(excluded.get(row.document_id, ())),
        }
        for i, (row, m) in enumerate(zip(job.rows, done.matches, strict=True))
    ]


_FAILING_SLOT = (
    sa.select(run_slots.c.document_type, run_slots.c.matching_config_id, package_runs.c.organization_id)
    .join(package_runs, package_runs.c.id == run_slots.c.run_id)
    .where(run_slots.c.run_id == sa.bindparam("p_run_id"), run_slots.c.position == sa.bindparam("p_position"))
)


def fail_slot(conn: Connection, run_id: uuid.UUID, position: int, error: str, now: datetime) -> int | None:
    """Mark a pending slot `error`, with a `failed` matching run that says why."""
    slot = conn.execute(_FAILING_SLOT, {"p_run_id": run_id, "p_position": position}).first()
    if slot is None:
        return None
    values = {"p_run_id": run_id, "p_position": position, "p_error": error, "p_matching_run_id": uuid.uuid4()}
    remaining = _resolve_slot(conn, _FAILING, values, now)
    if remaining is not None:
        failed = {
            "id": values["p_matching_run_id"],
            "organization_id": slot.organization_id,
            "package_run_id": run_id,
            "document_type": slot.document_type,
            "matching_config_id": slot.matching_config_id,
            "status": MatchingRunStatus.FAILED.value,
            "rows_processed": 0,
            "rows_matched": 0,
            "avg_confidence": None,
            "started_at": None,
            "completed_at": now,
            "error": error,
            "created_at": now,
        }
        conn.execute(_RECORD_MATCHING_RUN[_dialect(conn)], {f"p_{k}": v for k, v in failed.items()})
    return remaining


def get_snapshot(conn: Connection, run_id: uuid.UUID) -> RunSnapshot | None:
    found = conn.execute(sa.select(package_runs.c.snapshot).where(package_runs.c.id == run_id))
    raw = found.scalar_one_or_none()
    return None if raw is None else RunSnapshot.model_validate(raw)


def finalize_run(
    conn: Connection,
    run_id: uuid.UUID,
    status: RunStatus,
    error: str | None,
    now: datetime,
    slots: Sequence[SlotResult] | None = None,
) -> PackageRun | None:
    """The one guarded transition from `running`: the final run, only for the caller that made it.
    `slots` (the run's, if the caller has read them) spares reading them again."""
    values = {"p_run_id": run_id, "p_status": status.value, "p_error": error, "p_now": now}
    changed = conn.execute(_FINALIZE_RUN, values).first()
    if changed is None:
        return None
    # counts: the run leaves `running` for its final status
    org, config, decision = changed.organization_id, changed.package_config_id, changed.review_decision
    counts.add_runs(
        conn,
        [((org, config, RunStatus.RUNNING.value, decision), -1), ((org, config, status.value, decision), 1)],
    )
    return _run(changed, list(slots) if slots is not None else slots_of(conn, run_id))


def slots_of(conn: Connection, run_id: uuid.UUID) -> list[SlotResult]:
    """A run's slots in config order (none if the run does not exist)."""
    return [_slot(row) for row in conn.execute(_SLOTS_OF_RUN, {"p_run_id": run_id})]


def _matching_run(row: Any) -> MatchingRun:
    return MatchingRun.model_validate(dict(row._mapping))


def get_matching_run(
    conn: Connection, organization_id: uuid.UUID, matching_run_id: uuid.UUID
) -> MatchingRun | None:
    row = conn.execute(
        sa.select(matching_runs).where(
            matching_runs.c.id == matching_run_id,
            matching_runs.c.organization_id == organization_id,
        )
    ).first()
    return None if row is None else _matching_run(row)


def get_result(conn: Connection, matching_run_id: uuid.UUID, result_id: uuid.UUID) -> MatchResult | None:
    row = conn.execute(
        sa.select(match_results).where(
            match_results.c.id == result_id, match_results.c.matching_run_id == matching_run_id
        )
    ).first()
    return None if row is None else result_of(row)


def page_results(
    conn: Connection,
    matching_run: MatchingRun,
    request: PageRequest,
    review_status: ReviewStatus | None = None,
) -> Page[MatchResult]:
    """Results in input-row order (`order=desc` reverses), paged by row position."""
    column = match_results.c.position
    after = position_after(request)
    filters = [match_results.c.matching_run_id == matching_run.id]
    if review_status is not None:
        filters.append(match_results.c.review_status == review_status.value)
    query = sa.select(match_results).where(*filters)
    ascending = request.order == "asc"
    if after is not None:
        query = query.where(column > after if ascending else column < after)
    query = query.order_by(column.asc() if ascending else column.desc()).limit(request.limit + 1)
    rows = conn.execute(query).all()
    items = [result_of(r) for r in rows[: request.limit]]
    more = len(rows) > request.limit
    total = matching_run.rows_processed
    if review_status is not None:
        total = conn.execute(
            sa.select(sa.func.count()).select_from(match_results).where(*filters)
        ).scalar_one()
    return Page(
        items,
        total,
        request.limit,
        position_cursor(items[-1].position) if more else None,
    )
