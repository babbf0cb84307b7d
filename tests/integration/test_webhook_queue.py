"""Webhook deliveries have their own queue (issue 13): while a slow receiver holds a delivery, the
slot worker goes on matching (`packmatch worker --queues slots` beside `--queues webhooks`)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from packmatch.bootstrap import Runtime
from packmatch.domain.models import PackageRun, RunStatus
from packmatch.domain.webhooks import WebhookEvent
from packmatch.services.webhooks.subscriptions import WebhookInput
from packmatch.worker.runner import InProcessWorker
from tests.integration.conftest import build_world, invoice_row
from tests.webhook_receiver import HOLD, receiving

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def final(runtime: Runtime, run: PackageRun, seconds: float = 10.0) -> RunStatus:
    """Poll the run (no event crosses the worker threads and the database) until it is final."""
    deadline = time.monotonic() + seconds
    while (status := runtime.services.runs.get(run.organization_id, run.id).status) is RunStatus.RUNNING:
        assert time.monotonic() < deadline, "the run did not finish while the delivery was held"
        time.sleep(0.02)
    return status


def test_slots_are_matched_while_a_slow_receiver_holds_a_delivery(
    postgres_url: str, redis_url: str, make_runtime: Callable[..., Runtime]
) -> None:
    runtime = make_runtime(
        database_url=postgres_url,
        broker_url=redis_url,
        webhook_allow_private_networks="127.0.0.0/8",
        webhook_timeout_seconds=25,
        webhook_lease_seconds=30,
    )
    settings, services = runtime.settings, runtime.services
    world = build_world(services)
    documents = {"invoice": [invoice_row(0)], "delivery_note": [invoice_row(1)]}
    slots = InProcessWorker(runtime.broker, threads=1, queues={settings.queue_name})
    webhooks = InProcessWorker(runtime.broker, threads=1, queues={settings.webhook_queue})
    with receiving([HOLD]) as receiver, slots, webhooks:
        data = WebhookInput(url=receiver.url, events=(WebhookEvent.COMPLETED,))
        services.webhooks.create(world.organization_id, data)
        first = services.runs.accept(world.organization_id, world.package_config_id, documents)
        assert final(runtime, first) is RunStatus.PASSED
        receiver.wait_for(1)  # its delivery is in flight: the receiver holds the request open
        second = services.runs.accept(world.organization_id, world.package_config_id, documents)
        assert final(runtime, second) is RunStatus.PASSED  # 10 s, well within the 25 s hold
        assert len(receiver.requests) == 1  # the first delivery is still held
        receiver.release()
