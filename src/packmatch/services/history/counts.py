"""List totals: folding the counts' deltas (every reconciler pass) and checking them against rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from packmatch.logging import get_logger
from packmatch.store import counts as store
from packmatch.store.counts import Drift
from packmatch.store.db import Database

log = get_logger(__name__)


def fold_counts(db: Database, groups: int = 1_000) -> int:
    """Fold the deltas written since the last pass (one short transaction); rows that went away."""
    with db.transaction() as conn:
        folded = store.compact(conn, groups)
    if folded:
        log.info("counts.folded", rows=folded)
    return folded


@dataclass(frozen=True)
class CountsCheck:
    drifts: Sequence[Drift]
    fixed: bool


class CountsDoctor:
    """`packmatch doctor counts`: recount every group from its rows and report (or fix) drift."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def check(self, *, fix: bool = False) -> CountsCheck:
        with self.db.transaction() as conn:
            drifts = store.drift(conn)
            if fix and drifts:
                store.correct(conn, drifts)
        for d in drifts:
            log.warning("counts.drift", counts=d.counts, counted=d.counted, actual=d.actual, fixed=fix)
        return CountsCheck(drifts, fixed=fix and bool(drifts))
