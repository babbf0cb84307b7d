"""Review decisions: the current one on each run or result, the history of all, and exclusions.

A decision, one or a bulk of 500, is two statements on PostgreSQL whatever its size: one locked
read of the results joined to their matching run, and one prebuilt statement over arrays that
updates the results, inserts the history and lifts and adds the exclusions; never one UPDATE per
result. SQLite takes a few more (executemany in process).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from packmatch.domain.models import MatchResult, PackageRun, RunStatus
from packmatch.domain.reviews import ResultReview, Reviewer, ReviewRecord, ReviewStatus, RunReview
from packmatch.store import counts
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
    counts.move_run_review(conn, run_id, review.decision.value)
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


def _owned_results_query(postgres: bool) -> sa.Select[Any]:
    query = (
        sa.select(match_results, matching_runs.c.matching_config_id, matching_runs.c.package_run_id)
        .join(matching_runs, matching_runs.c.id == match_results.c.matching_run_id)
        .where(
            matching_runs.c.id == sa.bindparam("p_run"),
            matching_runs.c.organization_id == sa.bindparam("p_org"),
            match_results.c.matching_run_id == sa.bindparam("p_run"),
            match_results.c.id.in_(sa.bindparam("p_ids", expanding=True)),
        )
        .order_by(match_results.c.id)
    )
    return query.with_for_update(of=match_results) if postgres else query


_LOCK_OWNED_RESULTS = {True: _owned_results_query(True), False: _owned_results_query(False)}


def lock_owned_results(
    conn: Connection, organization_id: uuid.UUID, matching_run_id: uuid.UUID, result_ids: Iterable[uuid.UUID]
) -> tuple[ResultOwner | None, dict[uuid.UUID, MatchResult]]:
    """The organization's matching run and its results among `result_ids`, locked until the
    transaction ends, in one statement; the owner is looked up alone only when none is found."""
    query = _LOCK_OWNED_RESULTS[conn.dialect.name == "postgresql"]
    params = {"p_run": matching_run_id, "p_org": organization_id, "p_ids": list(result_ids)}
    rows = conn.execute(query, params).all()
    if not rows:
        return matching_run_owner(conn, organization_id, matching_run_id), {}
    first = rows[0]
    owner = ResultOwner(matching_run_id, first.matching_config_id, first.package_run_id)
    return owner, {row.id: result_of(row) for row in rows}


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


# PostgreSQL: every write of a decision (one or 500) in one prebuilt statement over arrays, so
# that its plan is prepared once: the results' current reviews, their history, and their
# exclusions (a result's old pair lifted unless it is the one rejected again, the new one added).
_RECORD_RESULT_REVIEWS = sa.text(
    """
    WITH decided AS (
        SELECT * FROM unnest(
            CAST(:ids AS uuid[]), CAST(:statuses AS varchar[]), CAST(:rows AS varchar[]),
            CAST(:notes AS text[]), CAST(:review_ids AS uuid[]), CAST(:documents AS varchar[]),
            CAST(:ats AS timestamptz[])
        ) AS d(result_id, status, reference_row_id, notes, review_id, document_id, at)
    ), current AS (
        UPDATE match_results AS r SET review_status = d.status,
            review_reference_row_id = d.reference_row_id, review_notes = d.notes,
            reviewed_by_key_id = :key_id, reviewed_by_name = :name, reviewed_at = d.at
        FROM decided AS d WHERE r.id = d.result_id
    ), history AS (
        INSERT INTO result_reviews (id, organization_id, result_id, status, reference_row_id,
            notes, reviewed_by_key_id, reviewed_by_name, created_at)
        SELECT d.review_id, :organization_id, d.result_id, d.status, d.reference_row_id,
            d.notes, :key_id, :name, d.at FROM decided AS d
    ), lifted AS (
        DELETE FROM review_exclusions AS x USING decided AS d
        WHERE x.result_id = d.result_id AND NOT (d.status = 'rejected'
            AND x.matching_config_id = :config_id
            AND x.document_id IS NOT DISTINCT FROM d.document_id
            AND x.reference_row_id IS NOT DISTINCT FROM d.reference_row_id)
    )
    INSERT INTO review_exclusions (matching_config_id, document_id, reference_row_id, result_id)
    SELECT :config_id, d.document_id, d.reference_row_id, d.result_id FROM decided AS d
    WHERE d.status = 'rejected' AND d.reference_row_id IS NOT NULL
    ON CONFLICT DO NOTHING
    """
)


def _record_in_one_statement(
    conn: Connection, organization_id: uuid.UUID, owner: ResultOwner, decisions: Sequence[ResultDecision]
) -> None:
    who = _who(decisions[0].review)  # one request, one reviewer
    conn.execute(
        _RECORD_RESULT_REVIEWS,
        {
            "ids": [d.result.id for d in decisions],
            "statuses": [d.review.status.value for d in decisions],
            "rows": [d.review.reference_row_id for d in decisions],
            "notes": [d.review.notes for d in decisions],
            "review_ids": [d.review_id for d in decisions],
            "documents": [d.result.document_id for d in decisions],
            "ats": [d.review.reviewed_at for d in decisions],
            "key_id": who.key_id,
            "name": who.name,
            "organization_id": organization_id,
            "config_id": owner.matching_config_id,
        },
    )


def record_result_reviews(
    conn: Connection, organization_id: uuid.UUID, owner: ResultOwner, decisions: Sequence[ResultDecision]
) -> None:
    """The results' current reviews, their history entries and the exclusions they add or lift."""
    if not decisions:
        return
    if conn.dialect.name == "postgresql" and len(decisions) > 1:
        _record_in_one_statement(conn, organization_id, owner, decisions)
        return
    conn.execute(_UPDATE_ONE_RESULT, _current_values(decisions))  # SQLite: one executemany in process
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


def _exclusions_query(postgres: bool) -> sa.Select[Any]:
    wanted = (
        review_exclusions.c.document_id == sa.any_(sa.bindparam("p_documents", type_=ARRAY(sa.String)))
        if postgres  # one statement text whatever the count: prepared once per connection
        else review_exclusions.c.document_id.in_(sa.bindparam("p_documents", expanding=True))
    )
    return (
        sa.select(review_exclusions.c.document_id, review_exclusions.c.reference_row_id)
        .where(review_exclusions.c.matching_config_id == sa.bindparam("p_config"), wanted)
        .distinct()
        .order_by(review_exclusions.c.document_id, review_exclusions.c.reference_row_id)
    )


# Read by every slot (`Pipeline.execute_slot`): built once, not per call (10% of a worker's CPU).
_EXCLUSIONS = {True: _exclusions_query(True), False: _exclusions_query(False)}


def exclusions(
    conn: Connection, matching_config_id: uuid.UUID, document_ids: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """Each document's rejected reference rows under this matching config (sorted, distinct)."""
    wanted = sorted(set(document_ids))
    if not wanted:
        return {}
    query = _EXCLUSIONS[conn.dialect.name == "postgresql"]
    rows = conn.execute(query, {"p_config": matching_config_id, "p_documents": wanted}).all()
    found: dict[str, list[str]] = {}
    for document, row in rows:
        found.setdefault(document, []).append(row)
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
