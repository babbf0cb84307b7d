"""List totals kept as signed deltas: written by the transactions that change rows, read as a sum.

Runs are counted per (organization, package config, status, review decision) and webhook
deliveries per (organization, webhook, status). A writer inserts one delta row per group it
changes, in its own transaction, with one prebuilt statement: inserts only, so concurrent writers
never wait on a shared counter. `compact` (the reconciler, every pass) folds each group's deltas
into one row; in every snapshot the sum of a group's rows equals the number of its rows in the
source table, which is what a total reads (one indexed statement over the groups plus the deltas
since the last pass) and what `drift` checks.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from packmatch.store.tables import delivery_counts, package_runs, run_counts, webhook_deliveries

RUN_GROUP = ("organization_id", "package_config_id", "status", "review_decision")
DELIVERY_GROUP = ("organization_id", "webhook_id", "status")

_ADD_RUN_COUNTS = run_counts.insert()
_ADD_DELIVERY_COUNTS = delivery_counts.insert()


def _deltas(group: Sequence[str], changes: Iterable[tuple[tuple[Any, ...], int]]) -> list[dict[str, Any]]:
    summed: Counter[tuple[Any, ...]] = Counter()
    for key, n in changes:
        summed[key] += n
    return [{**dict(zip(group, key, strict=True)), "n": n} for key, n in summed.items() if n]


def add_runs(conn: Connection, changes: Iterable[tuple[tuple[Any, ...], int]]) -> None:
    """Record run-count changes: (organization, config, status, review decision) → +n or -n."""
    rows = _deltas(RUN_GROUP, changes)
    if rows:
        conn.execute(_ADD_RUN_COUNTS, rows)


def add_deliveries(conn: Connection, changes: Iterable[tuple[tuple[Any, ...], int]]) -> None:
    """Record delivery-count changes: (organization, webhook, status) → +n or -n."""
    rows = _deltas(DELIVERY_GROUP, changes)
    if rows:
        conn.execute(_ADD_DELIVERY_COUNTS, rows)


def run_key(row: Any) -> tuple[Any, ...]:
    """The group of a `package_runs` row (or any mapping with its columns)."""
    m = row._mapping if hasattr(row, "_mapping") else row
    return tuple(m[name] for name in RUN_GROUP)


def delivery_key(row: Any) -> tuple[Any, ...]:
    m = row._mapping if hasattr(row, "_mapping") else row
    return tuple(m[name] for name in DELIVERY_GROUP)


def total(conn: Connection, table: sa.Table, filters: Sequence[sa.ColumnElement[bool]]) -> int:
    """The total a list's `filters` select, read from the counts `table` (columns named alike)."""
    found = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(table.c.n), 0)).where(*filters))
    return int(found.scalar_one())


# --- Maintenance -------------------------------------------------------------------------------

_DELETE_CHUNK = 10_000  # ids per DELETE while folding (SQLite takes 32,766 parameters, PostgreSQL 65,535)


def _compact(conn: Connection, table: sa.Table, group: Sequence[str], groups: int, rows: int) -> int:
    columns = [table.c[name] for name in group]
    # The groups with more than one row (a scan of the counts, which are groups plus recent
    # deltas: small beside the rows they count), then up to `rows` of their rows: a backlog (the
    # reconciler stopped for a while) folds over several passes, never in one unbounded transaction.
    crowded = sa.select(*columns).group_by(*columns).having(sa.func.count() > 1).limit(groups).subquery()
    same = sa.and_(*(table.c[name].is_not_distinct_from(crowded.c[name]) for name in group))
    ids = list(conn.execute(sa.select(table.c.id).join(crowded, same).limit(rows)).scalars())
    # What these statements deleted is what is folded, so a second compactor cannot count twice.
    # The ids go in chunks: a statement takes at most 65,535 parameters (PostgreSQL), and a
    # `DELETE … IN (SELECT …)` over the same join is planned as a nested loop (quadratic).
    gone: list[Any] = []
    for start in range(0, len(ids), _DELETE_CHUNK):
        chunk = ids[start : start + _DELETE_CHUNK]
        gone += conn.execute(
            sa.delete(table).where(table.c.id.in_(chunk)).returning(*columns, table.c.n)
        ).all()
    if not gone:
        return 0
    folded = _deltas(group, ((tuple(row[:-1]), int(row[-1])) for row in gone))
    if folded:
        conn.execute(table.insert(), folded)
    return len(gone) - len(folded)


def compact(conn: Connection, groups: int = 1_000, rows: int = 50_000) -> int:
    """Fold the deltas of up to `groups` groups (at most `rows` rows) of each counts table into one
    row per group; returns how many rows went away."""
    return _compact(conn, run_counts, RUN_GROUP, groups, rows) + _compact(
        conn, delivery_counts, DELIVERY_GROUP, groups, rows
    )


@dataclass(frozen=True)
class Drift:
    """A group whose counted total differs from its rows."""

    counts: str  # "runs" or "deliveries"
    group: dict[str, Any]
    counted: int
    actual: int


_SOURCES: tuple[tuple[str, sa.Table, sa.Table, tuple[str, ...]], ...] = (
    ("runs", run_counts, package_runs, RUN_GROUP),
    ("deliveries", delivery_counts, webhook_deliveries, DELIVERY_GROUP),
)


def _drift_of(
    conn: Connection, name: str, counts: sa.Table, source: sa.Table, group: tuple[str, ...]
) -> list[Drift]:
    # One statement, so one snapshot: the rows and their counts as the same commits left them.
    both = sa.union_all(
        sa.select(
            *(source.c[g] for g in group), sa.literal(1).label("actual"), sa.literal(0).label("counted")
        ),
        sa.select(*(counts.c[g] for g in group), sa.literal(0).label("actual"), counts.c.n.label("counted")),
    ).subquery()
    keys = [both.c[g] for g in group]
    actual, counted = sa.func.sum(both.c.actual), sa.func.sum(both.c.counted)
    query = sa.select(*keys, actual, counted).group_by(*keys).having(actual != counted).order_by(*keys)
    return [
        Drift(name, dict(zip(group, row[:-2], strict=True)), int(row[-1]), int(row[-2]))
        for row in conn.execute(query)
    ]


def drift(conn: Connection) -> list[Drift]:
    """Every group whose counts disagree with a recount of its rows (a full scan of both tables)."""
    return [
        d for name, counts, source, group in _SOURCES for d in _drift_of(conn, name, counts, source, group)
    ]


def correct(conn: Connection, drifts: Sequence[Drift]) -> None:
    """Insert the deltas that make each drifting group right again (writers may go on meanwhile:
    a correction is a delta like theirs, so it commutes with them)."""
    for name, _, _, group in _SOURCES:
        changes = [
            (tuple(d.group[g] for g in group), d.actual - d.counted) for d in drifts if d.counts == name
        ]
        (add_runs if name == "runs" else add_deliveries)(conn, changes)


def _review_move() -> sa.Insert:
    """The deltas of a run's new review decision, from its row as it is before the update."""
    r = package_runs.c
    of_run = r.id == sa.bindparam("p_run_id")
    before = sa.select(r.organization_id, r.package_config_id, r.status, r.review_decision, sa.literal(-1))
    after = sa.select(
        r.organization_id,
        r.package_config_id,
        r.status,
        sa.bindparam("p_decision", type_=sa.String(16)),
        sa.literal(1),
    )
    both = sa.union_all(before.where(of_run), after.where(of_run))
    return run_counts.insert().from_select([*RUN_GROUP, "n"], both)


_REVIEW_MOVE = _review_move()


def move_run_review(conn: Connection, run_id: uuid.UUID, decision: str) -> None:
    """Call before the run's row takes `decision` (the run is locked by the caller)."""
    conn.execute(_REVIEW_MOVE, {"p_run_id": run_id, "p_decision": decision})
