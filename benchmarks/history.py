"""History at scale (issue 18): run-list latency with totals from counts against the old COUNT(*),
and prune throughput, on PostgreSQL.

    .venv/bin/python benchmarks/history.py                       # 10k and 1M runs in one organization
    .venv/bin/python benchmarks/history.py --runs 10000 --full 10000 --prune

Each scale gets a scratch database. Runs are created through the store functions the service
uses, in transactions of `--batch` runs (the bulk path `RunBatches` takes): `new_run` +
`insert_runs` (accept), then for the first `--full` runs `slot_job` + `complete_slot` with
`--rows` results each, then `finalize_run` (70% passed, 15% failed, 15% review) and, for half the
`review` runs, `record_run_review`: every function that maintains the counts, none bypassed.
Creation times are spread over the past year. The counts are folded every 10 batches and at the
end (as the reconciler does every pass) and checked against COUNT(*) before anything is measured.

Then, `--repeat` times each, through `Runs.list` (service + store, no HTTP): the first page, a
deep page (a cursor from the middle of the history) and `status=review&reviewed=false`, with
totals from counts ("new") and with the pre-issue-18 COUNT(*) ("old", the same page code with
`keyset_page` counting). With `--prune`, prune throughput: `Retention.prune` of the runs older
than half a year, in batches of 500, and the cost of a partition drop estimated by a DROP TABLE of
a copy of the pruned results. Wall clock on a shared machine: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.conftest import BOOKINGS, INVOICE_MAPPINGS

from packmatch.bootstrap import build_runtime
from packmatch.domain.models import (
    Candidate,
    FieldMapping,
    InputRow,
    PassCriteria,
    Presence,
    RowMatch,
    RunStatus,
    Slot,
    SlotStatus,
)
from packmatch.domain.reviews import Reviewer, ReviewStatus, RunReview
from packmatch.logging import configure_logging
from packmatch.services.configs import MatchingConfigInput, PackageConfigInput
from packmatch.services.container import Services
from packmatch.services.history.counts import CountsDoctor, fold_counts
from packmatch.services.history.retention import Retention, RetentionPolicy
from packmatch.services.runs import RunFilters, load_snapshot, new_run
from packmatch.settings import Settings
from packmatch.store import reviews as review_store
from packmatch.store import runs as store
from packmatch.store.db import migrate
from packmatch.store.pagination import PageRequest, keyset_page, time_cursor
from packmatch.store.tables import package_runs
from packmatch.worker.runner import InProcessWorker

ADMIN = os.environ.get("PACKMATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
YEAR = timedelta(days=365)
STATUSES = [RunStatus.PASSED] * 14 + [RunStatus.FAILED] * 3 + [RunStatus.REVIEW] * 3
REVIEWER = Reviewer(key_id=uuid.uuid4(), name="bench")


def scratch_database() -> tuple[str, sa.Engine, str]:
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"packmatch_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(ADMIN).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    return url, admin, name


def world(services: Services) -> tuple[uuid.UUID, uuid.UUID]:
    key = services.accounts.create_key("bench", frozenset({"read", "write"}))
    org = services.accounts.authenticate(key).organization_id
    dataset = services.reference_data.create(org, "bookings", BOOKINGS)
    mappings = [FieldMapping.model_validate(m) for m in INVOICE_MAPPINGS]
    matching = services.configs.create_matching(
        org, MatchingConfigInput("invoice", dataset.id, mappings, 0.85)
    )
    slot = Slot(document_type="invoice", matching_config_id=matching.id, presence=Presence.REQUIRED)
    package = services.configs.create_package(org, PackageConfigInput("bundle", [slot], PassCriteria()))
    return org, package.id


MATCH = RowMatch(
    matched=True,
    matched_reference_row_id="BK-1",
    confidence=0.97,
    candidates=(Candidate(reference_row_id="BK-1", confidence=0.97, evidence={}),),
)


def _batch(
    conn: Any, org: uuid.UUID, package: uuid.UUID, times: list[datetime], full: bool, rows: int
) -> None:
    snapshot = load_snapshot(conn, org, package)
    documents = {
        "invoice": [InputRow(document_id=f"doc_{i}", values={"ref": "REF0000001"}) for i in range(rows)]
    }
    news = [new_run(org, snapshot, documents, at) for at in times]
    store.insert_runs(conn, [(n.run, n.snapshot, n.inputs) for n in news])
    rng = random.Random(len(times))
    for n in news:
        at, run_id = n.run.created_at, n.run.id
        done = at + timedelta(seconds=2)
        if full:  # as the worker's slot path does: read the job, record the outcome with its results
            job = store.slot_job(conn, run_id, 0, at)
            assert job is not None
            completion = store.SlotCompletion(SlotStatus.MATCHED, 0.97, [MATCH] * len(job.rows), {})
            store.complete_slot(conn, job, completion, done)
        status = rng.choice(STATUSES)
        store.finalize_run(conn, run_id, status, None, done, slots=n.run.slots)
        if status is RunStatus.REVIEW and rng.random() < 0.5:
            review = RunReview(
                decision=ReviewStatus.APPROVED, notes=None, reviewed_by=REVIEWER, reviewed_at=done
            )
            review_store.record_run_review(conn, org, run_id, review, uuid.uuid4())


def populate(
    services: Services, org: uuid.UUID, package: uuid.UUID, args: argparse.Namespace, n: int
) -> float:
    started = time.perf_counter()
    start = datetime.now(UTC) - YEAR
    step = YEAR / n

    def one(first: int) -> None:
        times = [start + step * i for i in range(first, min(n, first + args.batch))]
        with services.db.transaction() as conn:
            _batch(conn, org, package, times, full=first < args.full, rows=args.rows)
        if (first // args.batch) % 10 == 9:  # the reconciler folds the deltas while runs come in
            fold_counts(services.db)
        if first and first % (args.batch * 50) == 0:
            rate = first / (time.perf_counter() - started)
            print(f"  … {first} runs ({rate:.0f}/s)", file=sys.stderr, flush=True)

    with ThreadPoolExecutor(args.jobs) as pool:  # batches are independent transactions
        list(pool.map(one, range(0, n, args.batch)))
    return time.perf_counter() - started


def old_list(services: Services, org: uuid.UUID, request: PageRequest, f: RunFilters) -> int:
    """The run list before issue 18: the same page, its total from COUNT(*) over the runs."""
    filters = [package_runs.c.organization_id == org]
    if f.status is not None:
        filters.append(package_runs.c.status == f.status.value)
    if f.reviewed is not None:
        decision = package_runs.c.review_decision
        filters.append(decision.is_not(None) if f.reviewed else decision.is_(None))
    with services.db.transaction() as conn:
        page = keyset_page(conn, package_runs, filters, request, lambda row: row)
        slots = store._slots_by_run(conn, [row.id for row in page.items])
        [store._run(row, slots[row.id]) for row in page.items]
    return page.total


def latency(call: Callable[[], int], repeat: int) -> tuple[float, float, int]:
    """p50 and p99 (nearest rank: the slowest call below 100 repeats) in ms, and the last total."""
    times, total = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        total = call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[math.ceil(len(times) * 0.99) - 1], total


def measure_lists(services: Services, org: uuid.UUID, n: int, repeat: int) -> None:
    with services.db.transaction() as conn:
        middle = conn.execute(
            sa.select(package_runs.c.created_at, package_runs.c.id)
            .order_by(package_runs.c.created_at.desc(), package_runs.c.id.desc())
            .offset(n // 2)
            .limit(1)
        ).one()
    deep = PageRequest(limit=20, cursor=time_cursor(middle.created_at, middle.id))
    cases = [
        ("first page", PageRequest(limit=20), RunFilters()),
        ("deep page (cursor)", deep, RunFilters()),
        (
            "status=review&reviewed=false",
            PageRequest(limit=20),
            RunFilters(status=RunStatus.REVIEW, reviewed=False),
        ),
    ]
    for label, request, f in cases:
        new = latency(lambda r=request, f=f: services.runs.list(org, r, f).total, repeat)  # type: ignore[misc]
        old = latency(lambda r=request, f=f: old_list(services, org, r, f), max(5, repeat // 4))  # type: ignore[misc]
        assert new[2] == old[2], (label, new[2], old[2])
        print(
            f"| {n:,} | {label} | {new[0]:.2f} | {new[1]:.2f} | {old[0]:.1f} | {old[1]:.1f} | "
            f"{old[0] / new[0]:.1f}× | {new[2]:,} |",
            flush=True,
        )


def measure_prune(services: Services, admin: sa.Engine, url: str) -> None:
    cutoff = datetime.now(UTC) - YEAR / 2
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    with engine.begin() as conn:  # the cost of dropping a partition holding what prune deletes
        conn.execute(sa.text("CREATE TABLE partition_probe (LIKE match_results INCLUDING ALL)"))
        conn.execute(
            sa.text("INSERT INTO partition_probe SELECT * FROM match_results WHERE created_at < :c"),
            {"c": cutoff},
        )
        probe_rows = conn.execute(sa.text("SELECT count(*) FROM partition_probe")).scalar_one()
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE partition_probe"))
    drop_ms = (time.perf_counter() - started) * 1000
    engine.dispose()
    retention = Retention(services.db, RetentionPolicy(batch=500, include_awaiting_review=True))
    started = time.perf_counter()
    pruned, _ = retention.prune(retention.cutoffs(older_than=datetime.now(UTC) - cutoff))
    seconds = time.perf_counter() - started
    print(
        f"prune: {pruned.runs:,} runs, {pruned.results:,} results in {seconds:.1f} s = "
        f"{pruned.runs / seconds * 60:,.0f} runs/min, {pruned.results / seconds:,.0f} results/s; "
        f"DROP TABLE of a copy of those {probe_rows:,} results: {drop_ms:.0f} ms",
        flush=True,
    )


def pipeline_latency(runtime: Any, org: uuid.UUID, package: uuid.UUID, rate: float, seconds: float) -> str:
    """Runs accepted at `rate` per second for `seconds` through `Runs.accept` and executed by the
    in-process worker; accept→final p50/p99 from the runs' own times."""
    services, since = runtime.services, datetime.now(UTC)
    documents = {"invoice": [InputRow(document_id="doc_1", values={"ref": "REF0000001", "total": 1001.0})]}
    count = int(rate * seconds)
    started = time.perf_counter()
    for i in range(count):
        time.sleep(max(0.0, started + i / rate - time.perf_counter()))
        services.runs.accept(org, package, documents)
    runtime.broker.join(runtime.settings.queue_name, fail_fast=False)
    with services.db.transaction() as conn:
        rows = conn.execute(
            sa.select(package_runs.c.created_at, package_runs.c.completed_at).where(
                package_runs.c.created_at >= since, package_runs.c.completed_at.is_not(None)
            )
        ).all()
    waits = sorted((done - created).total_seconds() * 1000 for created, done in rows)
    p50, p99 = statistics.median(waits), waits[max(0, int(len(waits) * 0.99) - 1)]
    return f"{len(waits)}/{count} runs final, accept→final p50 {p50:.0f} ms, p99 {p99:.0f} ms"


def measure_pipeline_with_prune(
    runtime: Any, org: uuid.UUID, package: uuid.UUID, args: argparse.Namespace
) -> None:
    """The pipeline at `--pipeline-rate` alone, then while the runs older than 3 months are pruned."""
    with InProcessWorker(runtime.broker, threads=2):
        _pipeline_with_prune(runtime, org, package, args)


def timed_prune(retention: Retention, older_than: timedelta, result: dict[str, Any]) -> None:
    started = time.perf_counter()
    result["pruned"], _ = retention.prune(retention.cutoffs(older_than=older_than))
    result["seconds"] = time.perf_counter() - started


def _pipeline_with_prune(runtime: Any, org: uuid.UUID, package: uuid.UUID, args: argparse.Namespace) -> None:
    alone = pipeline_latency(runtime, org, package, args.pipeline_rate, args.pipeline_seconds)
    print(f"pipeline at {args.pipeline_rate}/s alone: {alone}", flush=True)
    # First the runs older than nine months at `--prune-rate` (if given), then those older than
    # three months as fast as the database goes: both beside the same pipeline, in one run.
    phases = [(YEAR * 3 / 4, args.prune_rate)] if args.prune_rate else []
    for older_than, rate in [*phases, (YEAR / 4, None)]:
        policy = RetentionPolicy(batch=500, include_awaiting_review=True, max_runs_per_minute=rate)
        retention = Retention(runtime.services.db, policy)
        result: dict[str, Any] = {}
        pruner = threading.Thread(target=timed_prune, args=(retention, older_than, result))
        pruner.start()
        during = pipeline_latency(runtime, org, package, args.pipeline_rate, args.pipeline_seconds)
        pruner.join()
        pruned, seconds = result["pruned"], result["seconds"]
        pace = f"paced at {rate:,}/min" if rate else "unpaced"
        print(
            f"pipeline at {args.pipeline_rate}/s while pruning ({pace}): {during}; the prune: "
            f"{pruned.runs:,} runs in {seconds:.1f} s = {pruned.runs / seconds * 60:,.0f} runs/min",
            flush=True,
        )


def one_scale(n: int, args: argparse.Namespace) -> None:
    url, admin, name = scratch_database()
    settings = Settings(database_url=url, broker_url="memory://", log_format="json", rate_limit_per_minute=0)  # type: ignore[call-arg]
    runtime = build_runtime(settings)
    services = runtime.services
    try:
        org, package = world(services)
        seconds = populate(services, org, package, args, n)
        while fold_counts(services.db, groups=1_000_000):
            pass
        assert CountsDoctor(services.db).check().drifts == []
        with admin.connect() as conn:
            size = conn.execute(sa.text(f"SELECT pg_size_pretty(pg_database_size('{name}'))")).scalar_one()
        print(
            f"created {n:,} runs in {seconds:.0f} s ({n / seconds:,.0f} runs/s), database {size}", flush=True
        )
        with services.db.transaction() as conn:
            conn.execute(sa.text("ANALYZE"))
        measure_lists(services, org, n, args.repeat)
        if args.prune:
            measure_prune(services, admin, url)
        if args.pipeline_rate:
            measure_pipeline_with_prune(runtime, org, package, args)
    finally:
        services.db.dispose()
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", default="10000,1000000", help="scales, comma separated")
    parser.add_argument("--full", type=int, default=50_000, help="runs (the oldest) whose slot is executed")
    parser.add_argument("--rows", type=int, default=5, help="input rows, so results, per executed run")
    parser.add_argument("--batch", type=int, default=1000, help="runs per transaction")
    parser.add_argument("--jobs", type=int, default=1, help="threads creating the runs, a batch each")
    parser.add_argument("--repeat", type=int, default=60)
    parser.add_argument("--prune", action="store_true", help="then prune the older half and time it")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument(
        "--pipeline-rate",
        type=float,
        default=0,
        help="then runs/s through the worker, alone and during a prune",
    )
    parser.add_argument("--pipeline-seconds", type=float, default=30)
    parser.add_argument(
        "--prune-rate",
        type=int,
        default=0,
        help="runs/min: also prune the oldest quarter at this pace beside the pipeline (max_runs_per_minute)",
    )
    args = parser.parse_args()
    configure_logging("json", "WARNING")
    print("| runs | list | new p50 ms | new p99 ms | old p50 ms | old p99 ms | old/new (p50) | total |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.runs.split(",")):
        one_scale(n, args)


if __name__ == "__main__":
    main()
