"""Webhook deliveries with a real worker and a real local receiver, on SQLite + memory and PostgreSQL + Redis.

Retries are compressed by configuration (`PACKMATCH_WEBHOOK_RETRY_SCHEDULE_SECONDS`); the relay
that sends due retries is the reconciler's pass, driven here by `Hooked.settle`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from packmatch.bootstrap import Runtime
from packmatch.domain.models import PackageRun, RunStatus
from packmatch.domain.public import package_run
from packmatch.domain.webhooks import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent
from packmatch.services.pipeline import Pipeline
from packmatch.services.ports import RecordingPublisher, utcnow
from packmatch.services.runs import Runs
from packmatch.services.webhooks.address_guard import UrlPolicy
from packmatch.services.webhooks.deliveries import Deliveries
from packmatch.services.webhooks.http import HttpSender
from packmatch.services.webhooks.signing import verify
from packmatch.services.webhooks.subscriptions import WebhookInput
from packmatch.store import webhooks as store
from packmatch.store.db import alembic_config
from packmatch.store.pagination import PageRequest
from packmatch.store.tables import matching_configs, organizations, reference_datasets, webhook_deliveries
from tests.integration.conftest import BACKENDS, Stack, backend_runtime, invoice_row
from tests.webhook_receiver import HOLD, Receiver, receiving

FAST = {
    "webhook_allow_private_networks": "127.0.0.0/8",
    "webhook_retry_schedule_seconds": "0.2,0.2,0.2",
    "webhook_timeout_seconds": 0.9,
    "webhook_lease_seconds": 1,
}


class Hooked(Stack):
    def webhook(self, url: str, *events: WebhookEvent, active: bool = True) -> Webhook:
        data = WebhookInput(url=url, events=events or (WebhookEvent.COMPLETED,), is_active=active)
        return self.runtime.services.webhooks.create(self.world.organization_id, data)

    def deliveries(self, hook: Webhook) -> list[WebhookDelivery]:
        page = self.runtime.services.webhooks.deliveries(self.world.organization_id, hook.id, PageRequest())
        return list(page.items)

    def delivery(self, hook: Webhook) -> WebhookDelivery:
        [only] = self.deliveries(hook)
        return only

    def quiet_run(self) -> tuple[PackageRun, Pipeline, RecordingPublisher]:
        """A run accepted by services whose messages go nowhere; executing its one slot ends it."""
        dropped = RecordingPublisher()
        db = self.runtime.services.db
        documents = {"invoice": [invoice_row(0)]}
        run = Runs(db, dropped).accept(self.world.organization_id, self.world.package_config_id, documents)
        return run, Pipeline(db, dropped), dropped

    def settle(self, done: Callable[[], bool], seconds: float = 30.0) -> None:
        """Drain the queue and run the relay (as the reconciler does) until `done()` holds."""
        deadline = time.monotonic() + seconds
        while True:
            self.drain()
            if done():
                return
            assert time.monotonic() < deadline, "the deliveries did not settle in time"
            self.runtime.services.deliveries.relay()
            time.sleep(0.05)


@pytest.fixture(params=BACKENDS)
def hooked(request: pytest.FixtureRequest, make_runtime: Callable[..., Runtime]) -> Iterator[Hooked]:
    stack = Hooked(backend_runtime(request, make_runtime, **FAST))
    with stack.worker:
        yield stack


def passed_run(stack: Stack) -> PackageRun:
    return stack.submit(invoice=[invoice_row(0)], delivery_note=[invoice_row(1)])


# --- the outbox ----------------------------------------------------------------------------------


def test_deliveries_are_recorded_by_the_finalize_that_wins_and_sent_after_it(hooked: Hooked) -> None:
    hook = hooked.webhook("http://127.0.0.1:9/never-called")
    run, pipeline, dropped = hooked.quiet_run()
    assert hooked.deliveries(hook) == []
    pipeline.execute_slot(run.id, 0)  # the last slot's transaction finalizes the run
    assert hooked.get(run).status is RunStatus.REVIEW
    delivery = hooked.delivery(hook)
    assert (delivery.package_run_id, delivery.status, delivery.attempts) == (
        run.id,
        DeliveryStatus.PENDING,
        0,
    )
    assert dropped.sent[-1] == ("deliver_webhook", delivery.id, None)
    assert pipeline.finalize(run.id) is None
    assert len(hooked.deliveries(hook)) == 1
    assert [s for s in dropped.sent if s[0] == "deliver_webhook"] == [("deliver_webhook", delivery.id, None)]


def test_inactive_and_non_matching_webhooks_get_no_delivery(hooked: Hooked, receiver: Receiver) -> None:
    completed = hooked.webhook(receiver.url)
    inactive = hooked.webhook(receiver.url, active=False)
    failed_only = hooked.webhook(receiver.url, WebhookEvent.FAILED, WebhookEvent.ERROR)
    run = passed_run(hooked)
    hooked.settle(lambda: hooked.delivery(completed).status is DeliveryStatus.DELIVERED)
    assert hooked.get(run).status is RunStatus.PASSED
    assert (hooked.deliveries(inactive), hooked.deliveries(failed_only)) == ([], [])
    assert len(receiver.requests) == 1


def test_a_status_event_is_delivered_only_to_its_subscribers(hooked: Hooked, receiver: Receiver) -> None:
    review = hooked.webhook(receiver.url, WebhookEvent.REVIEW)
    both = hooked.webhook(receiver.url, WebhookEvent.COMPLETED, WebhookEvent.REVIEW)
    hooked.submit(invoice=[invoice_row(0)])  # the expected slot is missing: review
    hooked.settle(lambda: len(receiver.requests) == 2)
    assert hooked.delivery(review).event is WebhookEvent.REVIEW
    assert hooked.delivery(both).event is WebhookEvent.COMPLETED


# --- sending -------------------------------------------------------------------------------------


def test_a_delivery_is_signed_and_carries_the_run_as_the_api_shows_it(
    hooked: Hooked, receiver: Receiver
) -> None:
    hook = hooked.webhook(receiver.url)
    run = passed_run(hooked)
    [request] = receiver.wait_for(1)
    delivery = hooked.delivery(hook)
    assert hook.secret is not None
    assert verify(hook.secret, request.body, request.headers["x-packmatch-signature"])
    body = request.json
    assert set(body) == {"event", "delivery_id", "timestamp", "data"}
    assert body["data"] == package_run(hooked.get(run))
    assert body["delivery_id"] == request.delivery_id == f"whd_{delivery.id}"
    assert request.headers["x-packmatch-event"] == body["event"] == "package_run.completed"
    assert request.headers["x-packmatch-timestamp"] == body["timestamp"]
    assert request.headers["content-type"] == "application/json"
    assert request.path == "/hooks/packmatch"


def test_a_receiver_failing_twice_gets_exactly_one_successful_delivery(hooked: Hooked) -> None:
    with receiving([500, 503]) as receiver:
        hook = hooked.webhook(receiver.url)
        passed_run(hooked)
        hooked.settle(lambda: hooked.delivery(hook).status is DeliveryStatus.DELIVERED)
        assert len(receiver.requests) == 3
    delivery = hooked.delivery(hook)
    assert (delivery.attempts, delivery.last_status_code, delivery.last_error) == (3, 200, None)
    assert delivery.next_attempt_at is None
    assert delivery.delivered_at is not None
    assert {r.delivery_id for r in receiver.requests} == {f"whd_{delivery.id}"}
    registry = hooked.runtime.metrics.registry
    attempts = {
        outcome: registry.get_sample_value("packmatch_webhook_attempts_total", {"outcome": outcome})
        for outcome in ("retrying", "delivered", "failed")
    }
    assert attempts == {"retrying": 2, "delivered": 1, "failed": None}


def test_a_delivery_fails_for_good_when_the_schedule_is_spent(hooked: Hooked) -> None:
    with receiving(default=500) as receiver:
        hook = hooked.webhook(receiver.url)
        passed_run(hooked)
        hooked.settle(lambda: hooked.delivery(hook).status is DeliveryStatus.FAILED)
    delivery = hooked.delivery(hook)
    schedule = hooked.runtime.settings.webhook_retry_schedule_seconds
    assert delivery.attempts == len(receiver.requests) == len(schedule) + 1
    assert (delivery.last_status_code, delivery.last_error, delivery.next_attempt_at) == (
        500,
        "HTTP 500",
        None,
    )


def test_a_redelivery_sends_the_same_delivery_again(hooked: Hooked) -> None:
    with receiving(default=500) as receiver:
        hook = hooked.webhook(receiver.url)
        passed_run(hooked)
        hooked.settle(lambda: hooked.delivery(hook).status is DeliveryStatus.FAILED)
        receiver.default = 200
        failed = hooked.delivery(hook)
        hooked.runtime.services.webhooks.redeliver(hooked.world.organization_id, hook.id, failed.id)
        hooked.settle(lambda: hooked.delivery(hook).status is DeliveryStatus.DELIVERED)
    assert hooked.delivery(hook).attempts == failed.attempts + 1
    assert {r.delivery_id for r in receiver.requests} == {f"whd_{failed.id}"}


def test_a_duplicate_message_changes_nothing(hooked: Hooked, receiver: Receiver) -> None:
    hook = hooked.webhook(receiver.url)
    passed_run(hooked)
    hooked.settle(lambda: hooked.delivery(hook).status is DeliveryStatus.DELIVERED)
    delivered = hooked.delivery(hook)
    hooked.runtime.publisher.deliver_webhook(delivered.id)
    hooked.drain()
    assert hooked.delivery(hook) == delivered
    assert len(receiver.requests) == 1


def test_a_message_delivered_twice_at_once_sends_once(hooked: Hooked) -> None:
    with receiving([HOLD]) as receiver:
        hook = hooked.webhook(receiver.url)
        passed_run(hooked)
        receiver.wait_for(1)  # the first attempt holds the lease while the receiver holds the request
        delivery_id = hooked.delivery(hook).id
        assert hooked.runtime.services.deliveries.deliver(delivery_id) is None
        receiver.release()
        hooked.settle(lambda: hooked.delivery(hook).status is DeliveryStatus.DELIVERED)
    assert {r.delivery_id for r in receiver.requests} == {f"whd_{delivery_id}"}
    assert hooked.delivery(hook).last_status_code == 200


def test_an_attempt_whose_worker_died_is_sent_again_after_its_lease(
    hooked: Hooked, receiver: Receiver
) -> None:
    hook = hooked.webhook(receiver.url)
    run, pipeline, _ = hooked.quiet_run()
    pipeline.execute_slot(run.id, 0)
    delivery = hooked.delivery(hook)
    now = utcnow()
    with (
        hooked.runtime.services.db.transaction() as conn
    ):  # a worker claims the attempt, then dies before it records anything
        assert store.claim_delivery(conn, delivery.id, now, now + hooked.runtime.services.deliveries.lease)
    hooked.settle(lambda: hooked.delivery(hook).status is DeliveryStatus.DELIVERED)
    assert hooked.delivery(hook).attempts == 2
    assert [r.delivery_id for r in receiver.requests] == [f"whd_{delivery.id}"]


def test_the_url_is_checked_again_before_each_attempt(hooked: Hooked, receiver: Receiver) -> None:
    hook = hooked.webhook(receiver.url)
    services = hooked.runtime.services
    strict = UrlPolicy(lambda host, port: ["127.0.0.1"])  # no private networks allowed
    services.deliveries.policy = strict
    passed_run(hooked)
    hooked.settle(lambda: hooked.delivery(hook).attempts >= 1)
    delivery = hooked.delivery(hook)
    assert delivery.last_error == (
        "refused: 127.0.0.1 is a loopback address not in PACKMATCH_WEBHOOK_ALLOW_PRIVATE_NETWORKS"
    )
    assert receiver.requests == []


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(hooked: Hooked) -> None:
    with receiving([HOLD]) as receiver:
        hook = hooked.webhook(receiver.url)
        deliveries: Deliveries = hooked.runtime.services.deliveries
        deliveries.sender = HttpSender(timeout=0.3)
        passed_run(hooked)
        hooked.settle(
            lambda: hooked.delivery(hook).attempts >= 1 and hooked.delivery(hook).last_error is not None
        )
        assert hooked.delivery(hook).last_error == "timed out after 0.3 s"


# --- deletes -------------------------------------------------------------------------------------


def test_deliveries_outlive_their_runs_and_go_with_their_webhook(hooked: Hooked, receiver: Receiver) -> None:
    hook = hooked.webhook(receiver.url)
    passed_run(hooked)
    hooked.settle(lambda: hooked.delivery(hook).status is DeliveryStatus.DELIVERED)
    org = hooked.world.organization_id
    hooked.runtime.services.configs.delete_package(org, hooked.world.package_config_id)
    assert hooked.delivery(hook).status is DeliveryStatus.DELIVERED
    hooked.runtime.services.webhooks.delete(org, hook.id)
    assert hooked.count(webhook_deliveries) == 0


def test_an_organizations_data_can_be_deleted_with_its_webhooks(hooked: Hooked, receiver: Receiver) -> None:
    hook = hooked.webhook(receiver.url)
    passed_run(hooked)
    hooked.settle(lambda: hooked.delivery(hook).status is DeliveryStatus.DELIVERED)
    services, world = hooked.runtime.services, hooked.world
    services.configs.delete_package(world.organization_id, world.package_config_id)
    with services.db.transaction() as conn:  # configs and datasets first: they RESTRICT each other
        conn.execute(matching_configs.delete())
        conn.execute(reference_datasets.delete())
        conn.execute(organizations.delete().where(organizations.c.id == world.organization_id))
    assert hooked.count(webhook_deliveries) == 0
    with hooked.runtime.services.db.transaction() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(organizations)).scalar_one() == 0


def test_the_relay_resends_only_what_is_due_and_not_on_its_way(hooked: Hooked) -> None:
    hook = hooked.webhook("http://127.0.0.1:9/never-called")
    run, pipeline, dropped = hooked.quiet_run()
    pipeline.execute_slot(run.id, 0)  # the delivery's message "lost": only recorded
    delivery = hooked.delivery(hook)
    current = hooked.runtime.services.deliveries

    def relay(later: timedelta) -> int:
        return Deliveries(
            current.db, dropped, current.sender, current.policy, schedule=(1,), lease_seconds=60,
            clock=lambda: utcnow() + later,
        ).relay()  # fmt: skip

    assert relay(timedelta(0)) == 0  # sent a moment ago: not presumed lost yet
    assert relay(timedelta(minutes=2)) == 1
    assert relay(timedelta(minutes=2)) == 0
    assert dropped.sent[-1] == ("deliver_webhook", delivery.id, None)


def test_an_unknown_delivery_message_does_nothing(hooked: Hooked) -> None:
    assert hooked.runtime.services.deliveries.deliver(uuid.uuid4()) is None


def test_the_migrated_sqlite_schema_matches_the_tables_and_0003_downgrades(sqlite_url: str) -> None:
    config = alembic_config(sqlite_url)
    command.check(config)  # PostgreSQL: test_store_postgres.py
    command.downgrade(config, "0002")
    engine = sa.create_engine(sqlite_url, poolclass=sa.NullPool)
    assert "webhooks" not in sa.inspect(engine).get_table_names()
    engine.dispose()
    command.upgrade(config, "head")
    command.check(config)


def test_a_crash_while_sending_is_a_failed_attempt_not_a_lost_delivery(
    hooked: Hooked, receiver: Receiver
) -> None:
    class Broken:
        def post(self, *args: object) -> None:
            raise RuntimeError("a bug in the sender")

    hook = hooked.webhook(receiver.url)
    hooked.runtime.services.deliveries.sender = Broken()  # type: ignore[assignment]
    passed_run(hooked)
    hooked.settle(
        lambda: hooked.delivery(hook).attempts >= 1 and hooked.delivery(hook).last_error is not None
    )
    delivery = hooked.delivery(hook)
    assert (delivery.status, delivery.last_error) == (DeliveryStatus.PENDING, "internal error")
    assert delivery.next_attempt_at is not None
