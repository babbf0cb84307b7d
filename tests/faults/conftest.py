"""Fixtures for the fault scenarios: a cluster of real processes on this test's database and Redis DB."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from packmatch.services.accounts import Accounts
from packmatch.store.db import Database
from tests.faults.checks import Figures, Probe, Timeline, measure, record
from tests.faults.processes import REPO_ROOT, Cluster, timings, wait_for
from tests.faults.workload import Client, Load, build_world

RUNS = 60
RECOVERY_DEADLINE_SECONDS = 90.0


def create_key(database_url: str) -> str:
    db = Database.from_url(database_url)
    try:
        return Accounts(db).create_key("acme", frozenset({"read", "write"}))
    finally:
        db.dispose()


@pytest.fixture
def cluster(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    pythonpath = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("PACKMATCH_")}
    env = {
        **inherited,
        **timings(),
        "PACKMATCH_DATABASE_URL": postgres_url,
        "PACKMATCH_BROKER_URL": redis_url,
        "PACKMATCH_LOG_FORMAT": "json",
        "PACKMATCH_WORKER_METRICS_PORT": "0",  # several workers per scenario: no port to share
        "PACKMATCH_RATE_LIMIT_PER_MINUTE": "0",
        "PACKMATCH_WORKER_MIDDLEWARE": "",
        "PYTHONPATH": pythonpath,
    }
    cluster = Cluster(env, tmp_path)
    try:
        yield cluster
    finally:
        cluster.kill_all()


@dataclass
class Scenario:
    """One scenario's cluster, load and measurements."""

    cluster: Cluster
    probe: Probe
    load: Load
    database_url: str
    redis_url: str

    def submit(self, runs: int = RUNS) -> None:
        self.load.submit(runs)

    def wait_mid_load(self, fraction: float = 0.3) -> int:
        """Block until a share of the slots is done; returns how many runs are still running (> 0).

        Slots, not runs: FIFO queues finish fan-outs, then slots, then finalizations, so most runs
        become final together near the end of a load.
        """
        wait_for("the load to be under way", lambda: self.probe.slots_done() >= fraction, 60)
        running = self.probe.running() or 0
        assert running > 0, "the load finished before the fault could be injected; make it heavier"
        return running

    def finish(self, name: str, fault_at: float, running_at_fault: int) -> Figures:
        final_at = self.probe.wait_until_final(RECOVERY_DEADLINE_SECONDS)
        when = Timeline(fault_at, final_at, running_at_fault)
        figures = measure(name, self.load, self.probe, self.cluster.worker_events(), when)
        record(figures)
        return figures


@pytest.fixture
def scenario(cluster: Cluster, postgres_url: str, redis_url: str) -> Iterator[Scenario]:
    """The API up, a world of configs created over HTTP; no worker yet."""
    cluster.start_api()
    client = Client(cluster.base, create_key(postgres_url))
    probe = Probe(postgres_url)
    try:
        yield Scenario(cluster, probe, Load(client, build_world(client)), postgres_url, redis_url)
    finally:
        probe.close()


def now() -> float:
    return time.monotonic()
