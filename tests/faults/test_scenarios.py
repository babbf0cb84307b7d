"""SPEC §6 under real faults: real `packmatch api` + `packmatch worker` processes, PostgreSQL, Redis.

Each scenario submits a load of three-slot runs over HTTP, starts a worker, injects one fault once
30 % of the slots are done, and then checks in SQL and in the logs that every run reached the
verdict its inputs call for, once, with one matching run per slot and one result per input row.
`python -m tests.faults.report` runs them and writes the table in docs/reliability.md.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults.checks import Figures
from tests.faults.conftest import Scenario
from tests.faults.faults import delete_dataset_underneath, restart_postgres, restart_redis_empty
from tests.faults.processes import wait_for

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(300)]

# The reconciler effectively off: recovery must come from the broker or the worker alone.
NO_RECONCILER = {"PACKMATCH_STALL_SECONDS": "600"}


def assert_recovered(figures: Figures, within: float = 60.0, **shown: object) -> None:
    assert (figures.lost, figures.stuck, figures.duplicated) == (0, 0, 0), (figures, shown)
    assert figures.finalized == figures.submitted, figures
    assert figures.recover_s < within, figures


def test_0_no_fault_baseline(scenario: Scenario) -> None:
    """The control: how long the rest of the load takes from the point where faults are injected."""
    scenario.submit()
    scenario.cluster.start_worker()
    running = scenario.wait_mid_load()
    assert_recovered(scenario.finish("0. no fault (baseline)", time.monotonic(), running))


def test_1_kill_9_of_the_worker_mid_load(scenario: Scenario) -> None:
    scenario.submit()
    worker = scenario.cluster.start_worker()
    running = scenario.wait_mid_load()
    fault_at = time.monotonic()
    worker.signal_group(signal.SIGKILL)
    worker.popen.wait(timeout=10)
    scenario.cluster.start_worker()
    assert_recovered(scenario.finish("1. kill -9 of the worker, then a new one", fault_at, running))


def test_1b_kill_9_recovered_by_the_broker_alone(scenario: Scenario) -> None:
    """The Redis heartbeat/maintenance tuning on its own brings the dead worker's messages back."""
    scenario.submit()
    worker = scenario.cluster.start_worker(NO_RECONCILER)
    running = scenario.wait_mid_load()
    fault_at = time.monotonic()
    worker.signal_group(signal.SIGKILL)
    worker.popen.wait(timeout=10)
    scenario.cluster.start_worker(NO_RECONCILER)
    figures = scenario.finish("1b. kill -9, reconciler off (broker requeue only)", fault_at, running)
    assert_recovered(figures)
    assert figures.redriven == 0


def test_2_redis_restarted_empty_mid_load(scenario: Scenario) -> None:
    scenario.submit()
    scenario.cluster.start_worker()
    running = scenario.wait_mid_load()
    fault_at = time.monotonic()
    restart_redis_empty(scenario.redis_url)
    figures = scenario.finish("2. Redis restarted empty", fault_at, running)
    assert_recovered(figures)
    assert figures.redriven > 0, "nothing was left to re-drive: the fault came too late"


def test_3_postgres_restarted_mid_load(scenario: Scenario) -> None:
    scenario.submit()
    scenario.cluster.start_worker()
    running = scenario.wait_mid_load()
    fault_at = time.monotonic()
    assert restart_postgres(scenario.database_url) > 0
    assert_recovered(scenario.finish("3. PostgreSQL restarted", fault_at, running))


def test_4_every_message_delivered_twice(scenario: Scenario) -> None:
    scenario.submit()
    started_at = time.monotonic()
    scenario.cluster.start_worker({"PACKMATCH_WORKER_MIDDLEWARE": "tests.faults.duplicate:DeliverTwice"})
    figures = scenario.finish("4. every message delivered twice", started_at, len(scenario.load.expected))
    assert_recovered(figures, within=90)
    events = scenario.cluster.worker_events()
    copies = sum(1 for e in events if e.get("event") == "fault.message_duplicated")
    assert copies >= 3 * figures.submitted  # 3 × match_slot per run, at least


def test_5_a_poison_slot_errors_its_run_and_no_other(scenario: Scenario) -> None:
    scenario.submit()
    scenario.cluster.start_worker()
    running = scenario.wait_mid_load()
    fault_at = time.monotonic()
    delete_dataset_underneath(scenario.database_url, scenario.load.world.poison_dataset_id)
    poisoned = scenario.load.submit(2, poisoned=True)
    figures = scenario.finish("5. poison slot (dataset deleted underneath)", fault_at, running + 2)
    runs = scenario.probe.runs()
    assert all(runs[run_id][0] != "running" for run_id in poisoned), [runs[r] for r in poisoned]
    assert_recovered(figures, poisoned=[runs[run_id] for run_id in poisoned])
    assert all(runs[run_id][0] == "error" for run_id in poisoned)
    assert sum(1 for status, _ in runs.values() if status == "error") == len(poisoned)
    assert all((runs[run_id][1] or "").startswith("slot contract: reference data") for run_id in poisoned)


def test_6_sigterm_during_load_loses_no_message(scenario: Scenario) -> None:
    """With the reconciler off, runs only finish if the stopping worker finished or returned its work."""
    scenario.submit()
    worker = scenario.cluster.start_worker(NO_RECONCILER)
    running = scenario.wait_mid_load()
    fault_at = time.monotonic()
    # To the whole process group, as systemd's default KillMode does: the worker processes get it
    # directly and again through Dramatiq's CLI, which must still be one graceful stop.
    worker.signal_group(signal.SIGTERM)
    wait_for("the worker to exit", lambda: worker.popen.poll() is not None, 60)
    assert worker.popen.returncode == 0
    events = {e.get("event") for e in worker.events()}
    assert "worker.stopping" in events
    assert "Killing worker process" not in worker.log.read_text()
    scenario.cluster.start_worker(NO_RECONCILER)
    figures = scenario.finish("6. SIGTERM during load, then a new worker", fault_at, running)
    assert_recovered(figures)
    assert figures.redriven == 0
