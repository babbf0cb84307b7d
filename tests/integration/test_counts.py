"""List totals from counts (issue 18): after a randomized concurrent workload of accepts,
finalizations, reviews, delivery outcomes, prunes and folds from several threads on PostgreSQL,
the total of every filter combination equals COUNT(*) over the rows, and the doctor finds no drift."""

from __future__ import annotations

import itertools
import random
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from packmatch.bootstrap import Runtime
from packmatch.domain.models import RunStatus
from packmatch.domain.reviews import Reviewer, ReviewStatus
from packmatch.domain.webhooks import DeliveryStatus, WebhookEvent
from packmatch.errors import PackmatchError
from packmatch.services.configs import PackageConfigInput
from packmatch.services.history.counts import CountsDoctor, fold_counts
from packmatch.services.history.retention import Retention, RetentionPolicy
from packmatch.services.runs import RunFilters
from packmatch.services.webhooks.subscriptions import WebhookInput
from packmatch.store import webhooks as webhook_store
from packmatch.store.pagination import PageRequest
from packmatch.store.tables import package_runs, run_counts, webhook_deliveries
from tests.integration.conftest import World, build_world, invoice_row

pytestmark = pytest.mark.postgres

FINAL = [RunStatus.PASSED, RunStatus.FAILED, RunStatus.REVIEW, RunStatus.ERROR]
REVIEWER = Reviewer(key_id=uuid.uuid4(), name="Ana")


class Workload:
    """The operations the threads draw from, each through the service (or store) code that owns it."""

    def __init__(self, runtime: Runtime, world: World, configs: list[uuid.UUID], webhook: uuid.UUID) -> None:
        self.runtime, self.world, self.configs, self.webhook = runtime, world, configs, webhook
        self.services = runtime.services
        self.retention = Retention(self.services.db, RetentionPolicy(batch=7))
        self.done: dict[str, int] = {}
        self.lock = threading.Lock()

    def _ids(self, *where: sa.ColumnElement[bool], table: sa.Table = package_runs) -> list[Any]:
        with self.services.db.transaction() as conn:
            return list(conn.execute(sa.select(table.c.id).where(*where).limit(50)).scalars())

    def accept(self, rng: random.Random) -> None:
        documents = {"invoice": [invoice_row(rng.randrange(5))]}
        self.services.runs.accept(self.world.organization_id, rng.choice(self.configs), documents)

    def finalize(self, rng: random.Random) -> None:
        running = self._ids(package_runs.c.status == RunStatus.RUNNING.value)
        if running:
            self.services.pipeline.end_without_verdict(rng.choice(running), rng.choice(FINAL), "done")

    def review(self, rng: random.Random) -> None:
        final = [s.value for s in FINAL if s is not RunStatus.ERROR]
        runs = self._ids(package_runs.c.status.in_(final))
        if runs:
            decision = rng.choice([ReviewStatus.APPROVED, ReviewStatus.REJECTED])
            self.services.run_reviews.review(
                self.world.organization_id, rng.choice(runs), decision, None, REVIEWER
            )

    def deliver(self, rng: random.Random) -> None:
        pending = self._ids(webhook_deliveries.c.status == "pending", table=webhook_deliveries)
        if not pending:
            return
        delivery_id, now = rng.choice(pending), self.services.deliveries.clock()
        with self.services.db.transaction() as conn:
            if rng.random() < 0.5:
                webhook_store.record_success(conn, delivery_id, 200, now)
            else:
                webhook_store.record_failure(conn, delivery_id, 0, 500, "refused", None, now)

    def redeliver(self, rng: random.Random) -> None:
        ended = self._ids(webhook_deliveries.c.status != "pending", table=webhook_deliveries)
        if ended:
            self.services.webhooks.redeliver(self.world.organization_id, self.webhook, rng.choice(ended))

    def prune(self, rng: random.Random) -> None:
        self.retention.prune(self.retention.cutoffs(older_than=timedelta(0)))

    def fold(self, rng: random.Random) -> None:
        fold_counts(self.services.db, groups=rng.choice([1, 3, 1_000]))

    def run(self, seed: int, steps: int) -> None:
        rng = random.Random(seed)
        operations: list[Callable[[random.Random], None]] = [
            *[self.accept] * 4,
            *[self.finalize] * 3,
            *[self.review] * 2,
            *[self.deliver] * 2,
            self.redeliver,
            self.prune,
            self.fold,
        ]
        for _ in range(steps):
            operation = rng.choice(operations)
            try:
                operation(rng)
            except PackmatchError:  # a run pruned or already final meanwhile: a real outcome
                continue
            with self.lock:
                self.done[operation.__name__] = self.done.get(operation.__name__, 0) + 1


@pytest.fixture
def workload(make_runtime: Callable[..., Runtime], postgres_url: str) -> Workload:
    runtime = make_runtime(database_url=postgres_url, webhook_allow_private_networks="127.0.0.0/8")
    services = runtime.services
    world = build_world(services)
    first = services.configs.get_package(world.organization_id, world.package_config_id)
    second = services.configs.create_package(
        world.organization_id, PackageConfigInput("second", list(first.slots), first.pass_criteria)
    )
    hook = services.webhooks.create(
        world.organization_id, WebhookInput("http://127.0.0.1:9/hook", list(WebhookEvent))
    )
    return Workload(runtime, world, [world.package_config_id, second.id], hook.id)


def _run_filters(workload: Workload) -> list[RunFilters]:
    return [
        RunFilters(config, status, reviewed, decision)
        for config, status, reviewed, decision in itertools.product(
            [None, *workload.configs],
            [None, *RunStatus],
            [None, True, False],
            [None, ReviewStatus.APPROVED, ReviewStatus.REJECTED],
        )
    ]


def _count_rows(workload: Workload, f: RunFilters) -> int:
    r = package_runs.c
    where = [r.organization_id == workload.world.organization_id]
    if f.package_config_id is not None:
        where.append(r.package_config_id == f.package_config_id)
    if f.status is not None:
        where.append(r.status == f.status.value)
    if f.reviewed is not None:
        where.append(r.review_decision.is_not(None) if f.reviewed else r.review_decision.is_(None))
    if f.review_decision is not None:
        where.append(r.review_decision == f.review_decision.value)
    with workload.services.db.transaction() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(package_runs).where(*where)).scalar_one()
        )


def assert_totals_exact(workload: Workload) -> None:
    org, one = workload.world.organization_id, PageRequest(limit=1)
    for f in _run_filters(workload):
        assert workload.services.runs.list(org, one, f).total == _count_rows(workload, f), f
    d = webhook_deliveries.c
    for status in [None, *DeliveryStatus]:
        where = [d.webhook_id == workload.webhook] + ([] if status is None else [d.status == status.value])
        with workload.services.db.transaction() as conn:
            rows = conn.execute(sa.select(sa.func.count()).select_from(webhook_deliveries).where(*where))
            expected = int(rows.scalar_one())
        page = workload.services.webhooks.deliveries(org, workload.webhook, one, status)
        assert page.total == expected, status


def test_totals_equal_count_after_a_concurrent_randomized_workload(workload: Workload) -> None:
    threads = [threading.Thread(target=workload.run, args=(seed, 70)) for seed in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {"accept", "finalize", "review", "deliver", "prune", "fold"} <= set(workload.done), workload.done
    assert_totals_exact(workload)  # before folding: rolled-up rows plus pending deltas
    assert CountsDoctor(workload.services.db).check().drifts == []
    fold_counts(workload.services.db)
    assert_totals_exact(workload)
    with workload.services.db.transaction() as conn:
        groups = conn.execute(
            sa.select(sa.func.count()).select_from(run_counts).where(run_counts.c.n != 0)
        ).scalar_one()
        rows = conn.execute(sa.select(sa.func.count()).select_from(run_counts)).scalar_one()
    assert rows == groups  # one row per group once folded


def test_doctor_reports_drift_and_fix_repairs_it(workload: Workload) -> None:
    for seed in range(6):
        workload.accept(random.Random(seed))
    with workload.services.db.transaction() as conn:  # a run that went behind the counts' back
        conn.execute(sa.delete(package_runs).where(package_runs.c.id == workload._ids()[0]))
    doctor = CountsDoctor(workload.services.db)
    [drift] = doctor.check().drifts
    assert (drift.counts, drift.counted, drift.actual) == ("runs", drift.actual + 1, drift.actual)
    assert doctor.check(fix=True).fixed
    assert doctor.check().drifts == []
    assert_totals_exact(workload)


def test_a_backlog_of_deltas_beyond_one_statements_parameters_folds_over_passes(workload: Workload) -> None:
    for seed in range(3):
        workload.accept(random.Random(seed))
    org, config = workload.world.organization_id, workload.world.package_config_id
    backlog = [  # 70,000 deltas of one group that sum to nothing: more than a statement's 65,535 parameters
        {
            "organization_id": org,
            "package_config_id": config,
            "status": "passed",
            "review_decision": None,
            "n": n,
        }
        for n in [1, -1] * 35_000
    ]
    with workload.services.db.transaction() as conn:
        conn.execute(run_counts.insert(), backlog)
    passes = 0
    while fold_counts(workload.services.db):
        passes += 1
        assert_totals_exact(workload)
    assert passes >= 2  # 50,000 rows at most a pass
    with workload.services.db.transaction() as conn:
        rows = conn.execute(sa.select(sa.func.count()).select_from(run_counts)).scalar_one()
    assert rows <= 2  # one per group: the accepted runs' and the folded backlog's (n = 0)
