"""Benchmark the indexed Matcher against the full scan, on synthetic bookings (see data.py).

    .venv/bin/python benchmarks/engine.py                              # 10k, 100k and 1M rows
    .venv/bin/python benchmarks/engine.py --sizes 10000 --inputs 100   # a quick run

Each dataset size runs in a process of its own, so that its peak RSS is its own. For each config
shape it builds the index (timed), matches every input row with the indexed Matcher ``--repeat``
times (latency p50/p99 of the first pass, and of each input's fastest pass: the machine may be
shared), and matches a sample of the same inputs with the full scan, checking that both answer
exactly the same. The speed-up compares mean latencies of the first pass over that sample.
"""

from __future__ import annotations

import argparse
import gc
import math
import multiprocessing
import resource
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data import bookings, invoices

from packmatch.domain.models import (
    FieldMapping,
    InputRow,
    MatchingConfig,
    MissingPolicy,
    ReferenceRow,
    Strategy,
)
from packmatch.engine.brute import FullScanMatcher
from packmatch.engine.index import ReferenceIndex
from packmatch.engine.scoring import Matcher

# (source, target, strategy, options), weight: the options of the SPEC §3 example throughout.
Mapping = tuple[str, str, Strategy, dict[str, Any]]
NAME: Mapping = ("counterparty", "shipper", Strategy.FUZZY, {"min_similarity": 0.6})
AMOUNT: Mapping = ("total", "amount", Strategy.NUMERIC_RANGE, {"tolerance_pct": 2})
DAY: Mapping = ("ship_date", "departure", Strategy.DATE_RANGE, {"tolerance_days": 3})
KEY: Mapping = ("booking_ref", "booking_reference", Strategy.EXACT, {})
# Issue 16's options: (d) is (b) with Jaro–Winkler; (e) is (a) with max_edits, swap and a name
# whose missing values are ignored (all on the indexed search since decision 0013's index step).
JW_NAME: Mapping = (
    "counterparty",
    "shipper",
    Strategy.FUZZY,
    {"min_similarity": 0.6, "scorer": "jaro_winkler"},
)
KEY_EDITS: Mapping = ("booking_ref", "booking_reference", Strategy.EXACT, {"max_edits": 1})
DAY_SWAP: Mapping = (
    "ship_date",
    "departure",
    Strategy.DATE_RANGE,
    {"tolerance_days": 3, "allow_day_month_swap": True},
)
SHAPES: dict[str, list[tuple[Mapping, float]]] = {
    "a": [(KEY, 0.5), (NAME, 0.2), (AMOUNT, 0.2), (DAY, 0.1)],
    "b": [(NAME, 0.6), (AMOUNT, 0.4)],
    "c": [(AMOUNT, 0.5), (DAY, 0.5)],
    "d": [(JW_NAME, 0.6), (AMOUNT, 0.4)],
    "e": [(KEY_EDITS, 0.5), (NAME, 0.2), (AMOUNT, 0.2), (DAY_SWAP, 0.1)],
}
IGNORED = {("e", "counterparty")}  # (shape, source) mapped with missing: ignore
BRUTE_SAMPLE = {10_000: 40, 100_000: 10, 1_000_000: 3}


def config(shape: str) -> MatchingConfig:
    mappings = tuple(
        FieldMapping(
            source=s,
            target=t,
            strategy=strategy,
            weight=w,
            options=o,
            missing=MissingPolicy.IGNORE if (shape, s) in IGNORED else MissingPolicy.MISMATCH,
        )
        for (s, t, strategy, o), w in SHAPES[shape]
    )
    now = datetime.now(UTC)
    return MatchingConfig(
        id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        name=f"shape {shape}",
        reference_data_id=uuid.uuid4(),
        field_mappings=mappings,
        threshold=0.8,
        version=1,
        created_at=now,
        updated_at=now,
    )


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(match: Callable[[InputRow], Any], rows: Sequence[InputRow]) -> tuple[list[float], list[Any]]:
    """Each row's latency (ms) and result."""
    times, results = [], []
    for row in rows:
        started = time.perf_counter()
        results.append(match(row))
        times.append((time.perf_counter() - started) * 1000)
    return times, results


def run_shape(
    shape: str, rows: list[ReferenceRow], inputs: list[InputRow], sample: int, repeat: int
) -> dict[str, Any]:
    cfg = config(shape)
    before = rss_mb()
    started = time.perf_counter()
    index = ReferenceIndex.build(rows, cfg.field_mappings)
    build_s = time.perf_counter() - started
    growth = rss_mb() - before
    matcher = Matcher(cfg, index)
    first, fast = timed(matcher.match, inputs)
    best = np.min([first] + [timed(matcher.match, inputs)[0] for _ in range(repeat - 1)], axis=0)
    brute_ms, brute = timed(FullScanMatcher(cfg, rows).match, inputs[:sample])
    index_mb = index.nbytes / 2**20
    del index, matcher
    gc.collect()
    return {
        "shape": shape,
        "build_s": build_s,
        "index_mb": index_mb,
        "rss_growth_mb": growth,
        "p50_ms": float(np.percentile(first, 50)),
        "p99_ms": float(np.percentile(first, 99)),
        "best_p50_ms": float(np.percentile(best, 50)),
        "best_p99_ms": float(np.percentile(best, 99)),
        "max_ms": float(np.max(best)),
        "sample": sample,
        "brute_mean_ms": float(np.mean(brute_ms)) if sample else math.nan,
        "speedup": float(np.mean(brute_ms) / np.mean(first[:sample])) if sample else math.nan,
        "equal": fast[:sample] == brute,
    }


def run_size(size: int, args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    rows = bookings(size, args.seed, args.names)
    values = invoices(rows, args.inputs, args.seed)
    inputs = [InputRow(document_id=f"inv_{i}", values=v) for i, v in enumerate(values)]
    distinct = len({row.values["shipper"] for row in rows})
    generated = {"size": size, "generate_s": time.perf_counter() - started, "dataset_rss_mb": rss_mb()}
    sample = min(BRUTE_SAMPLE.get(size, 10) if args.brute is None else args.brute, args.inputs)
    results = [run_shape(shape, rows, inputs, sample, args.repeat) for shape in args.shapes]
    return generated | {"names": distinct, "shapes": results, "peak_rss_mb": peak_rss_mb()}


def report(result: dict[str, Any]) -> None:
    print(
        f"\n{result['size']:,} rows, {result['names']:,} distinct shippers (generated in "
        f"{result['generate_s']:.1f} s; dataset RSS {result['dataset_rss_mb']:.0f} MB; "
        f"peak RSS {result['peak_rss_mb']:.0f} MB)"
    )
    print(
        "  shape  build s  index MB  p50 ms  p99 ms  best p50  best p99  max ms"
        "  full scan ms (n)  speed-up  equal"
    )
    for s in result["shapes"]:
        print(
            f"  {s['shape']:>5}  {s['build_s']:7.2f}  {s['index_mb']:8.0f}  {s['p50_ms']:6.2f}  "
            f"{s['p99_ms']:6.2f}  {s['best_p50_ms']:8.2f}  {s['best_p99_ms']:8.2f}  {s['max_ms']:6.1f}  "
            f"{s['brute_mean_ms']:12.0f} ({s['sample']:>2})  {s['speedup']:7.0f}×  "
            f"{'yes' if s['equal'] else 'NO'}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--inputs", type=int, default=300, help="input rows per shape (default 300)")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the inputs (default 3)")
    parser.add_argument("--names", type=int, help="distinct shipper names (default: rows / 10)")
    parser.add_argument("--brute", type=int, help="inputs for the full scan (default 40 / 10 / 3)")
    parser.add_argument("--seed", type=int, default=20240914)
    args = parser.parse_args()
    print(f"{' '.join(sys.argv)}\ninputs: {args.inputs} per shape, {args.repeat} passes")
    spawn = multiprocessing.get_context("spawn")
    for size in args.sizes:
        with spawn.Pool(1) as pool:
            report(pool.apply(run_size, (size, args)))


if __name__ == "__main__":
    main()
