"""The rows a package run owns, as one unit: found by age, deleted in bounded batches, exported whole.

A run owns its slots, its review decisions, its matching runs (and through them their results,
the results' review decisions and the exclusions their rejections made) and its webhook
deliveries. The foreign keys cascade from `package_runs` to slots and matching runs and on to
results; deliveries have no foreign key (they outlive a deleted config), so they are deleted here
by run id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from packmatch.domain.evaluations import FINAL_EVALUATION_STATUSES
from packmatch.domain.models import RunStatus
from packmatch.domain.webhooks import DeliveryStatus
from packmatch.store import counts
from packmatch.store.tables import (
    UTCDateTime,
    evaluations,
    match_results,
    matching_runs,
    organizations,
    package_configs,
    package_runs,
    result_reviews,
    review_exclusions,
    run_reviews,
    run_slots,
    webhook_deliveries,
    webhooks,
)

FINAL = [status.value for status in RunStatus if status is not RunStatus.RUNNING]
_OPEN_DELIVERY = [DeliveryStatus.PENDING.value]


@dataclass(frozen=True)
class PruneCounts:
    runs: int = 0
    matching_runs: int = 0
    results: int = 0
    deliveries: int = 0
    reviews: int = 0  # review decisions of the runs and of their results
    evaluations: int = 0  # ended evaluations of the organization's configs

    def __add__(self, other: PruneCounts) -> PruneCounts:
        return PruneCounts(
            self.runs + other.runs,
            self.matching_runs + other.matching_runs,
            self.results + other.results,
            self.deliveries + other.deliveries,
            self.reviews + other.reviews,
            self.evaluations + other.evaluations,
        )


def awaiting_review() -> sa.ColumnElement[bool]:
    """A run a person still has to look at: its verdict is `review` and nobody has decided it."""
    return sa.and_(package_runs.c.status == RunStatus.REVIEW.value, package_runs.c.review_decision.is_(None))


def prunable(
    organization_id: uuid.UUID, created_before: datetime, *, include_awaiting_review: bool
) -> list[sa.ColumnElement[bool]]:
    """Final runs of one organization created before the cutoff whose deliveries are all done."""
    open_delivery = (
        sa.select(webhook_deliveries.c.id)
        .where(
            webhook_deliveries.c.package_run_id == package_runs.c.id,
            webhook_deliveries.c.status.in_(_OPEN_DELIVERY),
        )
        .exists()
    )
    where = [
        package_runs.c.organization_id == organization_id,
        package_runs.c.created_at < created_before,
        package_runs.c.status.in_(FINAL),
        ~open_delivery,
    ]
    if not include_awaiting_review:
        where.append(~awaiting_review())
    return where


def prunable_ids(conn: Connection, where: Sequence[sa.ColumnElement[bool]], limit: int) -> list[uuid.UUID]:
    """The oldest prunable runs first (the (organization, created_at, id) index serves the scan),
    locked until the transaction ends.

    On PostgreSQL a run locked by someone else (a reviewer deciding it) is skipped, not waited
    for: it goes next time, and meanwhile nobody can add a review or a delivery to a run this
    batch is deleting (SQLite serializes writers anyway).
    """
    query = (
        sa.select(package_runs.c.id)
        .where(*where)
        .order_by(package_runs.c.created_at, package_runs.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(of=package_runs, skip_locked=True)
    return list(conn.execute(query).scalars())


def count_prunable(conn: Connection, where: Sequence[sa.ColumnElement[bool]]) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(package_runs).where(*where)).scalar_one())


def delete_evaluations(
    conn: Connection, organization_id: uuid.UUID, created_before: datetime, limit: int
) -> int:
    """Delete up to `limit` of the organization's ended evaluations created before the time (their
    reports and labelled rows); one still queued or running is left to finish."""
    oldest = (
        sa.select(evaluations.c.id)
        .where(
            evaluations.c.organization_id == organization_id,
            evaluations.c.created_at < created_before,
            evaluations.c.status.in_([status.value for status in FINAL_EVALUATION_STATUSES]),
        )
        .order_by(evaluations.c.created_at, evaluations.c.id)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        oldest = oldest.with_for_update(skip_locked=True)
    ids = list(conn.execute(oldest).scalars())
    if not ids:
        return 0
    return int(conn.execute(sa.delete(evaluations).where(evaluations.c.id.in_(ids))).rowcount)


def delete_runs(conn: Connection, run_ids: Sequence[uuid.UUID]) -> PruneCounts:
    """Delete the runs and everything they own; the counts say what went (for logs and metrics)."""
    if not run_ids:
        return PruneCounts()
    ids = list(run_ids)
    of_runs = sa.select(matching_runs.c.id).where(matching_runs.c.package_run_id.in_(ids))
    # Deleted child first, explicitly: the same statements on SQLite and PostgreSQL, and each one
    # a set-based delete rather than a cascade fired row by row.
    of_results = sa.select(match_results.c.id).where(match_results.c.matching_run_id.in_(of_runs))
    conn.execute(sa.delete(review_exclusions).where(review_exclusions.c.result_id.in_(of_results)))
    reviews = conn.execute(
        sa.delete(result_reviews).where(result_reviews.c.result_id.in_(of_results))
    ).rowcount
    reviews += conn.execute(sa.delete(run_reviews).where(run_reviews.c.package_run_id.in_(ids))).rowcount
    results = conn.execute(
        sa.delete(match_results).where(match_results.c.matching_run_id.in_(of_runs))
    ).rowcount
    # After the results: a result review that held one of them has committed its delivery by now.
    deliveries = conn.execute(
        sa.delete(webhook_deliveries)
        .where(webhook_deliveries.c.package_run_id.in_(ids))
        .returning(*(webhook_deliveries.c[name] for name in counts.DELIVERY_GROUP))
    ).all()
    counts.add_deliveries(conn, ((counts.delivery_key(row), -1) for row in deliveries))
    matched = conn.execute(sa.delete(matching_runs).where(matching_runs.c.package_run_id.in_(ids))).rowcount
    conn.execute(sa.delete(run_slots).where(run_slots.c.run_id.in_(ids)))
    runs = conn.execute(
        sa.delete(package_runs)
        .where(package_runs.c.id.in_(ids))
        .returning(*(package_runs.c[name] for name in counts.RUN_GROUP))
    ).all()
    counts.add_runs(conn, ((counts.run_key(row), -1) for row in runs))
    return PruneCounts(
        runs=len(runs),
        matching_runs=matched,
        results=int(results),
        deliveries=len(deliveries),
        reviews=int(reviews),
    )


def organization_ids(conn: Connection) -> dict[str, uuid.UUID]:
    rows = conn.execute(sa.select(organizations.c.name, organizations.c.id)).all()
    return {name: ident for name, ident in rows}  # noqa: C416 (rows are tuples of two, typed)


# --- Export and import -------------------------------------------------------------------------

# The tables of one run, parent first, each with the column that ties its rows to the run and
# what that column points at: the run itself, one of its matching runs, or one of their results.
RUN_TABLES: tuple[tuple[sa.Table, str, str], ...] = (
    (package_runs, "id", "run"),
    (run_slots, "run_id", "run"),
    (matching_runs, "package_run_id", "run"),
    (match_results, "matching_run_id", "matching_run"),
    (webhook_deliveries, "package_run_id", "run"),
    (run_reviews, "package_run_id", "run"),
    (result_reviews, "result_id", "result"),
    (review_exclusions, "result_id", "result"),
)


def _to_json(table: sa.Table, row: Mapping[Any, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in table.c:
        value = row[column.name]
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        out[column.name] = value
    return out


def _from_json(table: sa.Table, row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for column in table.c:
        if column.name not in row:
            raise ValueError(f"{table.name}: column '{column.name}' is missing")
        value = row[column.name]
        if value is not None and isinstance(column.type, sa.Uuid):
            value = uuid.UUID(value)
        elif value is not None and isinstance(column.type, UTCDateTime | sa.DateTime):
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError(f"{table.name}.{column.name}: a time without a zone")
        out[column.name] = value
    return out


ExportKey = tuple[datetime, uuid.UUID]  # (created_at, id) of the last run of a page


def export_page(
    conn: Connection,
    *,
    organization_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
    after: ExportKey | None,
    batch: int = 200,
) -> tuple[list[dict[str, Any]], ExportKey | None]:
    """Up to `batch` complete final runs created in [since, until) after `after`, oldest first,
    each as {table: [rows]} in JSON types, and the key to ask for the next page (None: no more).

    Keyset-paged over (created_at, id), so a caller that reads each page in its own transaction
    holds no long transaction and never repeats or skips a run. Runs still `running` are left
    out: their rows are still changing, and retention never deletes them.
    """
    where: list[sa.ColumnElement[bool]] = [package_runs.c.status.in_(FINAL)]
    if organization_id is not None:
        where.append(package_runs.c.organization_id == organization_id)
    if since is not None:
        where.append(package_runs.c.created_at >= since)
    if until is not None:
        where.append(package_runs.c.created_at < until)
    if after is not None:
        at, ident = after
        where.append(
            sa.or_(
                package_runs.c.created_at > at,
                sa.and_(package_runs.c.created_at == at, package_runs.c.id > ident),
            )
        )
    query = (
        sa.select(package_runs)
        .where(*where)
        .order_by(package_runs.c.created_at, package_runs.c.id)
        .limit(batch)
    )
    runs = [row._mapping for row in conn.execute(query)]
    if not runs:
        return [], None
    return list(_trees(conn, runs)), (runs[-1]["created_at"], runs[-1]["id"])


def _trees(conn: Connection, runs: Sequence[Mapping[Any, Any]]) -> Iterator[dict[str, Any]]:
    ids = [run["id"] for run in runs]
    owner_of: dict[str, dict[uuid.UUID, uuid.UUID]] = {"run": {ident: ident for ident in ids}}
    owner_of["matching_run"], owner_of["result"] = {}, {}
    children: dict[str, dict[uuid.UUID, list[dict[str, Any]]]] = {}
    for table, link, points_at in RUN_TABLES[1:]:
        owners = owner_of[points_at]
        order = [table.c[link], *(c for c in table.primary_key.columns if c.name != link)]
        grouped: dict[uuid.UUID, list[dict[str, Any]]] = {}
        if owners:
            query = sa.select(table).where(table.c[link].in_(list(owners))).order_by(*order)
            for row in conn.execute(query):
                mapping = row._mapping
                run_id = owners[mapping[link]]
                grouped.setdefault(run_id, []).append(_to_json(table, mapping))
                if table is matching_runs:
                    owner_of["matching_run"][mapping["id"]] = run_id
                elif table is match_results:
                    owner_of["result"][mapping["id"]] = run_id
        children[table.name] = grouped
    for run in runs:
        tree: dict[str, Any] = {package_runs.name: [_to_json(package_runs, run)]}
        for table, _, _ in RUN_TABLES[1:]:
            tree[table.name] = children[table.name].get(run["id"], [])
        yield tree


class ImportRefused(ValueError):
    """The tree cannot go into this database (the message says why, without any stored value)."""


def _parsed(tree: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    try:
        tables = {
            table.name: [_from_json(table, row) for row in tree[table.name]] for table, _, _ in RUN_TABLES
        }
    except (KeyError, TypeError, AttributeError) as exc:
        raise ImportRefused(f"not an exported run (missing or malformed part: {exc})") from None
    except ValueError as exc:
        raise ImportRefused(f"not an exported run ({exc})") from None
    if len(tables[package_runs.name]) != 1:
        raise ImportRefused("not an exported run (it must hold exactly one package run)")
    if tables[package_runs.name][0]["status"] not in FINAL:
        raise ImportRefused("the run is still running (only final runs are archived)")
    return tables


# The tables whose rows have ids of their own, which another run here might already hold.
_OWN_IDS = (matching_runs, match_results, webhook_deliveries, run_reviews, result_reviews)


def check_run(conn: Connection, tree: Mapping[str, Any]) -> bool:
    """Whether `import_run` would insert this exported run (False: it is already here), reading
    only; ImportRefused if it cannot go in (malformed, or its organization or package config is
    missing, or one of its rows' ids belongs to another run here)."""
    return _insertable(conn, _parsed(tree))


def _insertable(conn: Connection, tables: Mapping[str, list[dict[str, Any]]]) -> bool:
    run = tables[package_runs.name][0]
    if conn.execute(sa.select(package_runs.c.id).where(package_runs.c.id == run["id"])).first():
        return False
    organization = sa.select(organizations.c.id).where(organizations.c.id == run["organization_id"])
    if not conn.execute(organization).first():
        raise ImportRefused("its organization is not in this database")
    config = sa.select(package_configs.c.id).where(
        package_configs.c.id == run["package_config_id"],
        package_configs.c.organization_id == run["organization_id"],
    )
    if not conn.execute(config).first():
        raise ImportRefused("its package config is not in this database")
    for table in _OWN_IDS:
        ids = [row["id"] for row in tables[table.name]]
        if ids and conn.execute(sa.select(table.c.id).where(table.c.id.in_(ids)).limit(1)).first():
            raise ImportRefused(f"its {table.name} rows conflict with rows of another run in this database")
    return True


def import_run(conn: Connection, tree: Mapping[str, Any]) -> bool:
    """Insert one exported run with everything it owns; False if the run is already here.

    Its organization and package config must exist in this database (the run's snapshot carries
    the configs as they were, but the foreign keys need the rows).
    """
    tables = _parsed(tree)
    if not _insertable(conn, tables):
        return False
    run = tables[package_runs.name][0]
    deliveries = tables[webhook_deliveries.name]
    if deliveries:  # those of webhooks this database does not have are left out
        wanted = {row["webhook_id"] for row in deliveries}
        known = set(conn.execute(sa.select(webhooks.c.id).where(webhooks.c.id.in_(wanted))).scalars())
        tables[webhook_deliveries.name] = [row for row in deliveries if row["webhook_id"] in known]
    for table, _, _ in RUN_TABLES:
        rows = tables[table.name]
        if rows:
            conn.execute(sa.insert(table), rows)
    counts.add_runs(conn, [(counts.run_key(run), 1)])
    counts.add_deliveries(conn, ((counts.delivery_key(row), 1) for row in tables[webhook_deliveries.name]))
    return True
