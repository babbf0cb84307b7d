"""Review decisions: the current one on each run or result, the history of all, and exclusions.

A bulk decision is a handful of set-based statements whatever its size (one locked read, one UPDATE
from a VALUES list on PostgreSQL, one INSERT of the history, one DELETE and one INSERT of the
exclusions), never one UPDATE per result.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from packmatch.domain.models import MatchResult, PackageRun, RunStatus
from packmatch.domain.reviews import ResultReview, Reviewer, ReviewRecord, ReviewStatus, RunReview
from packmatch.store.pagination import Page, PageRequest, keyset_page
from packmatch.store.runs import get_run, result_of
from packmatch.store.tables import (
    match_results,
    matching_runs,
    package_runs,
    result_reviews,
    review_exclusions,
    run_reviews,
)


@dataclass(frozen=True)
class ResultDecision:
    """A new review of one result, and the rejected pair it adds (None if it rejects nothing)."""

    result: MatchResult
    review: ResultReview
    review_id: uuid.UUID


def _for_update(conn: Connection, query: sa.Select[Any]) -> sa.Select[Any]:
    return query.with_for_update() if conn.dialect.name == "postgresql" else query


def lock_run(conn: Connection, organization_id: uuid.UUID, run_id: uuid.UUID) -> PackageRun | None:
    """The run, locked until the transaction ends (PostgreSQL; SQLite writers are serialized)."""
    locked = conn.execute(
        _for_update(
            conn,
            sa.select(package_runs.c.id).where(
                package_runs.c.id == run_id, package_runs.c.organization_id == organization_id
            ),
        )
    ).first()
    return None if locked is None else get_run(conn, organization_id, run_id)


def record_run_review(
    conn: Connection, organization_id: uuid.UUID, run_id: uuid.UUID, review: RunReview, review_id: uuid.UUID
) -> None:
    who = review.reviewed_by
    conn.execute(
        package_runs.update()
        .where(package_runs.c.id == run_id)
        .values(
            review_decision=review.decision.value,
            review_notes=review.notes,
            reviewed_by_key_id=who.key_id,
            reviewed_by_name=who.name,
            reviewed_at=review.reviewed_at,
        )
    )
    conn.execute(
        run_reviews.insert().values(
            id=review_id,
            organization_id=organization_id,
            package_run_id=run_id,
            decision=review.decision.value,
            notes=review.notes,
            reviewed_by_key_id=who.key_id,
            reviewed_by_name=who.name,
            created_at=review.reviewed_at,
        )
    )


@dataclass(frozen=True)
class ResultOwner:
    """The matching run a result belongs to: what a decision on it needs to know."""

    matching_run_id: uuid.UUID
    matching_config_id: uuid.UUID
    package_run_id: uuid.UUID


def matching_run_owner(
    conn: Connection, organization_id: uuid.UUID, matching_run_id: uuid.UUID
) -> ResultOwner | None:
    row = conn.execute(
        sa.select(matching_runs.c.matching_config_id, matching_runs.c.package_run_id).where(
            matching_runs.c.id == matching_run_id, matching_runs.c.organization_id == organization_id
        )
    ).first()
    return None if row is None else ResultOwner(matching_run_id, row.matching_config_id, row.package_run_id)


def lock_results(
    conn: Connection, matching_run_id: uuid.UUID, result_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, MatchResult]:
    """The results of this matching run among `result_ids`, locked until the transaction ends."""
    query = sa.select(match_results).where(
        match_results.c.matching_run_id == matching_run_id, match_results.c.id.in_(list(result_ids))
    )
    rows = conn.execute(_for_update(conn, query.order_by(match_results.c.id))).all()
    return {row.id: result_of(row) for row in rows}


def _current_values(decisions: Sequence[ResultDecision]) -> list[dict[str, Any]]:
    return [
        {
            "p_id": d.result.id,
            "p_status": d.review.status.value,
            "p_reference_row_id": d.review.reference_row_id,
            "p_notes": d.review.notes,
            "p_key_id": _who(d.review).key_id,
            "p_name": _who(d.review).name,
            "p_at": d.review.reviewed_at,
        }
        for d in decisions
    ]


def _who(review: ResultReview) -> Reviewer:
    assert review.reviewed_by is not None
    return review.reviewed_by


_UPDATE_ONE_RESULT = (
    match_results.update()
    .where(match_results.c.id == sa.bindparam("p_id"))
    .values(
        review_status=sa.bindparam("p_status"),
        review_reference_row_id=sa.bindparam("p_reference_row_id"),
        review_notes=sa.bindparam("p_notes"),
        reviewed_by_key_id=sa.bindparam("p_key_id"),
        reviewed_by_name=sa.bindparam("p_name"),
        reviewed_at=sa.bindparam("p_at"),
    )
)


def _update_from_values(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """PostgreSQL: one `UPDATE … FROM (VALUES …)` for all the results."""
    columns = [
        sa.column("id", sa.Uuid),
        sa.column("status", sa.String),
        sa.column("reference_row_id", sa.String),
        sa.column("notes", sa.Text),
        sa.column("key_id", sa.Uuid),
        sa.column("name", sa.String),
        sa.column("at", match_results.c.reviewed_at.type),
    ]
    data = [tuple(row.values()) for row in rows]
    given = sa.values(*columns, name="decided").data(data)
    conn.execute(
        match_results.update()
        .where(match_results.c.id == given.c.id)
        .values(
            review_status=given.c.status,
            review_reference_row_id=given.c.reference_row_id,
            review_notes=given.c.notes,
            reviewed_by_key_id=given.c.key_id,
            reviewed_by_name=given.c.name,
            reviewed_at=given.c.at,
        )
    )


def record_result_reviews(
    conn: Connection, organization_id: uuid.UUID, owner: ResultOwner, decisions: Sequence[ResultDecision]
) -> None:
    """The results' current reviews, their history entries and the exclusions they add or lift."""
    if not decisions:
        return
    values = _current_values(decisions)
    if conn.dialect.name == "postgresql" and len(values) > 1:
        _update_from_values(conn, values)
    else:
        conn.execute(_UPDATE_ONE_RESULT, values)  # SQLite: one executemany in process
    conn.execute(
        result_reviews.insert(),
        [
            {
                "id": d.review_id,
                "organization_id": organization_id,
                "result_id": d.result.id,
                "status": d.review.status.value,
                "reference_row_id": d.review.reference_row_id,
                "notes": d.review.notes,
                "reviewed_by_key_id": _who(d.review).key_id,
                "reviewed_by_name": _who(d.review).name,
                "created_at": d.review.reviewed_at,
            }
            for d in decisions
        ],
    )
    conn.execute(
        review_exclusions.delete().where(review_exclusions.c.result_id.in_([d.result.id for d in decisions]))
    )
    rejected = [
        {
            "matching_config_id": owner.matching_config_id,
            "document_id": d.result.document_id,
            "reference_row_id": d.review.reference_row_id,
            "result_id": d.result.id,
        }
        for d in decisions
        if d.review.status is ReviewStatus.REJECTED and d.review.reference_row_id is not None
    ]
    if rejected:
        conn.execute(review_exclusions.insert(), rejected)


def exclusions(
    conn: Connection, matching_config_id: uuid.UUID, document_ids: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """Each document's rejected reference rows under this matching config (sorted, distinct)."""
    wanted = sorted(set(document_ids))
    if not wanted:
        return {}
    rows = conn.execute(
        sa.select(review_exclusions.c.document_id, review_exclusions.c.reference_row_id)
        .where(
            review_exclusions.c.matching_config_id == matching_config_id,
            review_exclusions.c.document_id.in_(wanted),
        )
        .distinct()
        .order_by(review_exclusions.c.document_id, review_exclusions.c.reference_row_id)
    ).all()
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(row.document_id, []).append(row.reference_row_id)
    return {document: tuple(rows) for document, rows in found.items()}


def _record(decision_column: str) -> Any:
    def convert(row: Any) -> ReviewRecord:
        m = row._mapping
        return ReviewRecord(
            id=m["id"],
            decision=ReviewStatus(m[decision_column]),
            reference_row_id=m.get("reference_row_id"),
            notes=m["notes"],
            reviewed_by=Reviewer(key_id=m["reviewed_by_key_id"], name=m["reviewed_by_name"]),
            created_at=m["created_at"],
        )

    return convert


def page_run_reviews(conn: Connection, run_id: uuid.UUID, request: PageRequest) -> Page[ReviewRecord]:
    filters = [run_reviews.c.package_run_id == run_id]
    return keyset_page(conn, run_reviews, filters, request, _record("decision"))


def page_result_reviews(conn: Connection, result_id: uuid.UUID, request: PageRequest) -> Page[ReviewRecord]:
    filters = [result_reviews.c.result_id == result_id]
    return keyset_page(conn, result_reviews, filters, request, _record("status"))


def runs_awaiting_review(conn: Connection) -> int:
    """Runs whose verdict is `review` and on which nobody has decided yet (the reviewers' queue)."""
    count = conn.execute(
        sa.select(sa.func.count())
        .select_from(package_runs)
        .where(package_runs.c.status == RunStatus.REVIEW.value, package_runs.c.review_decision.is_(None))
    ).scalar_one()
    return int(count)


def reviewed_at_after(previous: datetime | None, now: datetime) -> datetime:
    """`now`, or just after the previous decision: a history never has two decisions at one instant."""
    from datetime import timedelta

    if previous is not None and now <= previous:
        return previous + timedelta(microseconds=1)
    return now
