"""A backlog longer than the stall time is not a stall (issue 13): the reconciler leaves runs whose
messages are merely waiting in the queue, and still re-drives those whose messages were lost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from packmatch.bootstrap import Runtime
from packmatch.domain.models import PackageRun
from packmatch.services.ports import utcnow
from packmatch.services.reconciler import Reconciler
from tests.integration.conftest import build_world, invoice_row

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def later(runtime: Runtime, seconds: float) -> Reconciler:
    """The runtime's own reconciler, with its clock moved `seconds` past the stall time."""
    ahead = timedelta(seconds=runtime.settings.stall_seconds + seconds)

    def clock() -> datetime:
        return utcnow() + ahead

    return _with_clock(runtime.reconciler(), clock)


def _with_clock(reconciler: Reconciler, clock: Callable[[], datetime]) -> Reconciler:
    reconciler.clock = clock
    return reconciler


def accept(runtime: Runtime) -> PackageRun:
    world = build_world(runtime.services)
    documents = {"invoice": [invoice_row(0)], "delivery_note": [invoice_row(1)]}
    return runtime.services.runs.accept(world.organization_id, world.package_config_id, documents)


def test_runs_waiting_in_a_backlog_are_not_redriven_and_lost_ones_are(
    postgres_url: str, redis_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    runtime = make_runtime(database_url=postgres_url, broker_url=redis_url)
    accept(runtime)  # no worker: its two slot messages wait in the queue, as behind a long backlog
    queue = f"dramatiq:{runtime.settings.queue_name}"
    client = runtime.broker.client  # type: ignore[attr-defined]
    assert client.llen(queue) == 2

    waiting = later(runtime, 60).reconcile_once()
    assert waiting.redriven == 0
    assert client.llen(queue) == 2  # no duplicate messages behind the backlog

    client.delete(queue, f"{queue}.msgs")  # now the messages are lost (Redis restarted empty)
    lost = later(runtime, 60).reconcile_once()
    assert lost.redriven == 1
    assert client.llen(queue) == 1  # its fan_out
