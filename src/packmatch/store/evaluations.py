"""Evaluations (docs/api.md, Evaluations): the record, its rows, its progress and its report.

Every read is scoped by organization and matching config, so another organization's evaluation is
a missing one. The worker's transitions are guarded by status: a redelivered message finds the
evaluation done and does nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from packmatch.domain.evaluations import (
    Evaluation,
    EvaluationProgress,
    EvaluationReport,
    EvaluationStatus,
    ReviewedRow,
)
from packmatch.domain.models import MatchingConfig
from packmatch.domain.reviews import ReviewStatus
from packmatch.store.pagination import Page, PageRequest, time_cursor, time_keyset_filter
from packmatch.store.tables import evaluations, match_results, matching_runs, reference_rows, run_slots

_RECORD = [c for c in evaluations.c if c.name not in ("rows", "config")]


def _evaluation(row: Any) -> Evaluation:
    m = row._mapping
    return Evaluation(
        id=m["id"],
        organization_id=m["organization_id"],
        matching_config_id=m["matching_config_id"],
        matching_config_version=m["matching_config_version"],
        source=m["source"],
        status=m["status"],
        progress=EvaluationProgress(done=m["progress_done"], total=m["progress_total"]),
        report=None if m["report"] is None else EvaluationReport.model_validate(m["report"]),
        error=m["error"],
        created_at=m["created_at"],
        started_at=m["started_at"],
        completed_at=m["completed_at"],
    )


def _select() -> sa.Select[Any]:
    return sa.select(*_RECORD)


def insert_evaluation(
    conn: Connection, evaluation: Evaluation, config: MatchingConfig, rows: Sequence[dict[str, Any]]
) -> None:
    conn.execute(
        evaluations.insert().values(
            id=evaluation.id,
            organization_id=evaluation.organization_id,
            matching_config_id=evaluation.matching_config_id,
            matching_config_version=config.version,
            config=config.model_dump(mode="json"),
            source=evaluation.source.value,
            status=evaluation.status.value,
            progress_done=evaluation.progress.done,
            progress_total=evaluation.progress.total,
            rows=list(rows),
            created_at=evaluation.created_at,
        )
    )


def get_evaluation(
    conn: Connection, organization_id: uuid.UUID, config_id: uuid.UUID, evaluation_id: uuid.UUID
) -> Evaluation | None:
    query = _select().where(
        evaluations.c.id == evaluation_id,
        evaluations.c.organization_id == organization_id,
        evaluations.c.matching_config_id == config_id,
    )
    row = conn.execute(query).first()
    return None if row is None else _evaluation(row)


def list_evaluations(
    conn: Connection, organization_id: uuid.UUID, config_id: uuid.UUID, request: PageRequest
) -> Page[Evaluation]:
    """One page, newest first (keyset on created_at, id); the rows column is never read."""
    scope = [evaluations.c.organization_id == organization_id, evaluations.c.matching_config_id == config_id]
    total = conn.execute(sa.select(sa.func.count()).select_from(evaluations).where(*scope)).scalar_one()
    where, order = time_keyset_filter(evaluations, request)
    found = conn.execute(_select().where(*scope, *where).order_by(*order).limit(request.limit + 1)).all()
    items = [_evaluation(row) for row in found[: request.limit]]
    more = len(found) > request.limit
    cursor = time_cursor(items[-1].created_at, items[-1].id) if more else None
    return Page(items, total, request.limit, cursor)


def start_evaluation(
    conn: Connection, evaluation_id: uuid.UUID, now: datetime, stale_before: datetime
) -> tuple[MatchingConfig, list[dict[str, Any]]] | None:
    """Mark a queued evaluation running (or restart one whose worker died: running since before
    ``stale_before``); its config snapshot and rows. None when it is gone, final, or running now
    elsewhere (a duplicate message does not start it twice)."""
    found = conn.execute(
        sa.select(evaluations.c.status, evaluations.c.started_at, evaluations.c.config, evaluations.c.rows)
        .where(evaluations.c.id == evaluation_id)
        .with_for_update()
    ).first()
    if found is None or found.status in (EvaluationStatus.DONE.value, EvaluationStatus.ERROR.value):
        return None
    if found.status == EvaluationStatus.RUNNING.value and found.started_at >= stale_before:
        return None
    conn.execute(
        evaluations.update()
        .where(evaluations.c.id == evaluation_id)
        .values(status=EvaluationStatus.RUNNING.value, started_at=now, progress_done=0)
    )
    return MatchingConfig.model_validate(found.config), list(found.rows)


def waiting(
    conn: Connection, created_before: datetime, stale_before: datetime, limit: int
) -> list[uuid.UUID]:
    """Evaluations whose message may be lost, oldest first: queued ones accepted before
    ``created_before``, and running ones started before ``stale_before`` (their worker died)."""
    status = evaluations.c.status
    query = (
        sa.select(evaluations.c.id)
        .where(
            sa.or_(
                sa.and_(status == EvaluationStatus.QUEUED.value, evaluations.c.created_at < created_before),
                sa.and_(status == EvaluationStatus.RUNNING.value, evaluations.c.started_at < stale_before),
            )
        )
        .order_by(evaluations.c.created_at)
        .limit(limit)
    )
    return list(conn.execute(query).scalars())


def record_progress(conn: Connection, evaluation_id: uuid.UUID, done: int) -> None:
    conn.execute(
        evaluations.update()
        .where(evaluations.c.id == evaluation_id, evaluations.c.status == EvaluationStatus.RUNNING.value)
        .values(progress_done=done)
    )


def _finish(conn: Connection, evaluation_id: uuid.UUID, values: dict[str, Any]) -> bool:
    done = conn.execute(
        evaluations.update()
        .where(
            evaluations.c.id == evaluation_id,
            evaluations.c.status.in_([EvaluationStatus.QUEUED.value, EvaluationStatus.RUNNING.value]),
        )
        .values(**values)
    )
    return done.rowcount == 1


def complete_evaluation(
    conn: Connection, evaluation_id: uuid.UUID, report: EvaluationReport, now: datetime
) -> bool:
    values = {
        "status": EvaluationStatus.DONE.value,
        "report": report.model_dump(mode="json"),
        "progress_done": report.rows,
        "completed_at": now,
        "rows": [],  # read once; the report is what is kept
    }
    return _finish(conn, evaluation_id, values)


def fail_evaluation(conn: Connection, evaluation_id: uuid.UUID, error: str, now: datetime) -> bool:
    values = {"status": EvaluationStatus.ERROR.value, "error": error, "completed_at": now, "rows": []}
    return _finish(conn, evaluation_id, values)


# --- labels from reviews -------------------------------------------------------------------------


def reviewed_rows(
    conn: Connection, organization_id: uuid.UUID, config_id: uuid.UUID, limit: int
) -> list[ReviewedRow]:
    """The `limit` most recently reviewed results of a matching config, with their input values."""
    decided = conn.execute(
        sa.select(
            match_results.c.document_id,
            match_results.c.position,
            match_results.c.review_status,
            match_results.c.review_reference_row_id,
            match_results.c.reviewed_at,
            matching_runs.c.package_run_id,
            matching_runs.c.document_type,
        )
        .join(matching_runs, matching_runs.c.id == match_results.c.matching_run_id)
        .where(
            matching_runs.c.organization_id == organization_id,
            matching_runs.c.matching_config_id == config_id,
            match_results.c.review_status != ReviewStatus.PENDING.value,
        )
        .order_by(match_results.c.reviewed_at.desc(), match_results.c.id.desc())
        .limit(limit)
    ).all()
    inputs = _slot_inputs(conn, {(r.package_run_id, r.document_type) for r in decided})
    found = []
    for r in decided:
        rows = inputs.get((r.package_run_id, r.document_type))
        if rows is None or r.position >= len(rows):
            continue  # the run was deleted meanwhile
        values = rows[r.position].get("values", {})
        status = ReviewStatus(r.review_status)
        found.append(ReviewedRow(r.document_id, values, status, r.review_reference_row_id, r.reviewed_at))
    return found


SlotKey = tuple[uuid.UUID, str]  # (package run, document type)


def _slot_inputs(conn: Connection, slots: set[SlotKey]) -> dict[SlotKey, list[Any]]:
    """The input rows of these slots (JSON, as stored)."""
    found: dict[SlotKey, list[Any]] = {}
    runs = sorted({run for run, _ in slots})
    for start in range(0, len(runs), 500):
        chunk = runs[start : start + 500]
        query = sa.select(run_slots.c.run_id, run_slots.c.document_type, run_slots.c.input_rows).where(
            run_slots.c.run_id.in_(chunk)
        )
        for row in conn.execute(query):
            if (row.run_id, row.document_type) in slots:
                found[(row.run_id, row.document_type)] = row.input_rows
    return found


def known_row_ids(conn: Connection, dataset_id: uuid.UUID, row_ids: Sequence[str]) -> set[str]:
    """Which of ``row_ids`` are rows of the dataset."""
    known: set[str] = set()
    wanted = sorted(set(row_ids))
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        query = sa.select(reference_rows.c.row_id).where(
            reference_rows.c.dataset_id == dataset_id, reference_rows.c.row_id.in_(chunk)
        )
        known.update(conn.execute(query).scalars())
    return known
