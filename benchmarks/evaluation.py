"""Benchmark an evaluation: labelled invoices against synthetic bookings (see data.py).

    .venv/bin/python benchmarks/evaluation.py                         # 10k rows against 100k
    .venv/bin/python benchmarks/evaluation.py --reference 10000 --rows 1000

Labels: 80% of the rows are copied from a booking with realistic noise (data.py's `_from_booking`:
typos, currency formats, shifted days; label = that booking), 5% the same with one field blanked,
15% unrelated (label null). Times the index build, then `packmatch.quality.evaluate` (one engine
match per row, the curve, the misses) — what the worker's evaluation actor runs — and, as the
baseline measured in the same run, the bare matching of the same rows with `Matcher`.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data import _from_booking, _messy, _unrelated, bookings, company_pool

from packmatch.domain.models import FieldMapping, InputRow, MatchingConfig, Strategy
from packmatch.engine import Matcher, ReferenceIndex
from packmatch.quality import LabelledRow, evaluate

NOW = datetime(2024, 9, 14, tzinfo=UTC)


def _config() -> MatchingConfig:
    def mapping(
        source: str, target: str, strategy: Strategy, weight: float, **options: object
    ) -> FieldMapping:
        return FieldMapping(source=source, target=target, strategy=strategy, weight=weight, options=options)

    mappings = (
        mapping("booking_ref", "booking_reference", Strategy.EXACT, 0.5),
        mapping("counterparty", "shipper", Strategy.FUZZY, 0.2, min_similarity=0.6),
        mapping("total", "amount", Strategy.NUMERIC_RANGE, 0.2, tolerance_pct=2),
        mapping("ship_date", "departure", Strategy.DATE_RANGE, 0.1, tolerance_days=3),
    )
    return MatchingConfig(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        name="bench",
        reference_data_id=uuid.uuid4(),
        field_mappings=mappings,
        threshold=0.85,
        version=1,
        created_at=NOW,
        updated_at=NOW,
    )


def labelled(reference: list, count: int, seed: int) -> list[LabelledRow]:  # type: ignore[type-arg]
    rng = random.Random(seed)
    pool = company_pool(random.Random(seed + 1), 2000)
    rows = []
    for _ in range(count):
        draw = rng.random()
        if draw < 0.85:
            booking = reference[rng.randrange(len(reference))]
            values = _from_booking(rng, booking) if draw < 0.80 else _messy(rng, booking)
            rows.append(LabelledRow(values=values, reference_row_id=booking.id))
        else:
            rows.append(LabelledRow(values=_unrelated(rng, pool), reference_row_id=None))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    reference = bookings(args.reference, seed=7)
    rows = labelled(reference, args.rows, seed=11)
    config = _config()
    started = time.perf_counter()
    index = ReferenceIndex.build(reference, config.field_mappings)
    built = time.perf_counter() - started

    started = time.perf_counter()
    matcher = Matcher(config, index)
    for i, row in enumerate(rows):
        matcher.match(InputRow(document_id=f"d{i}", values=row.values))
    bare = time.perf_counter() - started

    started = time.perf_counter()
    result = evaluate(config, index, rows)
    evaluated = time.perf_counter() - started
    m = result.metrics
    print(f"{args.rows} labelled rows against {args.reference} reference rows")
    print(f"index build {built:.2f} s · bare matching {bare:.2f} s · evaluate {evaluated:.2f} s")
    print(f"evaluate / bare matching = {evaluated / bare:.2f}")
    print(f"at {result.threshold}: precision {m.precision} recall {m.recall} f1 {m.f1}")
    print(
        f"  tp {m.tp} fp {m.fp} fn {m.fn} tn {m.tn}; best F1 {result.best_f1} at {result.best_f1_threshold}"
    )
    print(f"  lowest threshold with precision ≥ 0.99: {result.precision_99_threshold}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
