"""Webhook deliveries: the outbox written when a run ends, one attempt per message, and the relay.

- `record_deliveries` runs inside the transaction that finalizes a run (only if its guarded
  transition won): one `pending` delivery per active webhook of the organization whose events match,
  holding the run object as `GET /v1/matching/packages/runs/{id}` shows it.
  `record_event_deliveries` does the same for the review events, inside the transaction that
  records the decisions: one delivery per decision and subscribed webhook.
- `publish_deliveries`, after that commit, sends one `deliver_webhook` message per delivery.
- `Deliveries.deliver` (the actor) claims an attempt with a lease, signs and POSTs the body, and
  records the outcome: delivered, or failed with the next attempt scheduled *in the database*.
- `Deliveries.relay` (in the reconciler's pass) sends messages for due deliveries: retries whose time
  has come, and attempts whose message was lost or whose worker died mid-send.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from packmatch import __version__
from packmatch.domain.ids import Kind, format_id
from packmatch.domain.models import PackageRun
from packmatch.domain.public import package_run, timestamp
from packmatch.domain.webhooks import DeliveryJob, DeliveryStatus, WebhookEvent, event_for, retry_delay
from packmatch.logging import get_logger
from packmatch.sealing import SecretBox, SecretUnreadable
from packmatch.services.ports import Clock, Metrics, NoMetrics, Publisher, SendResult, WebhookSender, utcnow
from packmatch.services.webhooks.address_guard import Network, RefusedUrl, UrlPolicy
from packmatch.services.webhooks.signing import sign, standard_signature, standard_timestamp
from packmatch.store import webhooks as store
from packmatch.store.db import Database

log = get_logger(__name__)

USER_AGENT = f"packmatch-webhooks/{__version__}"


@dataclass(frozen=True)
class WebhookOptions:
    """The `PACKMATCH_WEBHOOK_*` settings the services need (defaults as in `Settings`)."""

    retry_schedule_seconds: tuple[float, ...] = (60.0, 300.0, 1800.0, 14400.0)
    timeout_seconds: float = 10.0
    lease_seconds: float = 30.0
    resolve_timeout_seconds: float = 2.0
    allow_private_networks: tuple[Network, ...] = ()
    secrets_keys: tuple[str, ...] = ()  # PACKMATCH_SECRETS_KEY, then the old keys


def _delivery_row(
    organization_id: uuid.UUID,
    webhook_id: uuid.UUID,
    event: WebhookEvent,
    subject: EventSubject,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "organization_id": organization_id,
        "webhook_id": webhook_id,
        "package_run_id": subject.package_run_id,
        "subject_id": subject.subject_id,
        "event": event.value,
        "status": DeliveryStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "enqueued_at": now,  # its message is sent right after the commit
        "payload": subject.payload,
        "created_at": now,
        "updated_at": now,
    }


@dataclass(frozen=True)
class EventSubject:
    """What one delivery announces: the subject's id (a run, a review decision), the package run it
    concerns, and the body's `data`."""

    subject_id: uuid.UUID
    package_run_id: uuid.UUID
    payload: dict[str, Any]


def record_deliveries(conn: Connection, run: PackageRun, now: datetime) -> list[uuid.UUID]:
    """The outbox rows for a run that has just become final (same transaction); their ids."""
    rows: list[dict[str, Any]] = []
    subject: EventSubject | None = None
    for hook in store.active_webhooks(conn, run.organization_id):
        event = event_for(run.status, hook.events)
        if event is None:
            continue
        subject = subject or EventSubject(run.id, run.id, package_run(run))
        rows.append(_delivery_row(run.organization_id, hook.id, event, subject, now))
    store.insert_deliveries(conn, rows)
    return [row["id"] for row in rows]


def record_event_deliveries(
    conn: Connection,
    organization_id: uuid.UUID,
    event: WebhookEvent,
    subjects: Callable[[], Sequence[EventSubject]],
    now: datetime,
) -> list[uuid.UUID]:
    """The outbox rows for `event` on each subject, for every active webhook subscribed to it
    (`subjects` is called only if there is one: rendering 500 payloads for nobody costs)."""
    hooks = [h for h in store.active_webhooks(conn, organization_id) if event in h.events]
    if not hooks:
        return []
    shown = subjects()
    rows = [_delivery_row(organization_id, h.id, event, subject, now) for h in hooks for subject in shown]
    store.insert_deliveries(conn, rows)
    return [row["id"] for row in rows]


def publish_deliveries(publisher: Publisher, delivery_ids: Sequence[uuid.UUID], source: str) -> None:
    """After commit. A message the broker refuses is not lost: the relay sends it later."""
    for delivery_id in delivery_ids:
        try:
            publisher.deliver_webhook(delivery_id)
        except Exception:
            log.exception("webhook.enqueue_failed", delivery_id=str(delivery_id), source=source)
            continue
        log.info("webhook.delivery_enqueued", delivery_id=str(delivery_id), source=source)


def request_body(job: DeliveryJob, now: datetime) -> bytes:
    body = {
        "event": job.delivery.event.value,
        "delivery_id": format_id(Kind.WEBHOOK_DELIVERY, job.delivery.id),
        "timestamp": timestamp(now),
        "data": job.data,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def request_headers(job: DeliveryJob, secret: str, body: bytes, now: datetime) -> dict[str, str]:
    """packmatch's own headers, then the Standard Webhooks ones (the same delivery id and instant)."""
    delivery_id = format_id(Kind.WEBHOOK_DELIVERY, job.delivery.id)
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Packmatch-Event": job.delivery.event.value,
        "X-Packmatch-Delivery-Id": delivery_id,
        "X-Packmatch-Timestamp": str(timestamp(now)),
        "X-Packmatch-Signature": sign(secret, body),
        "webhook-id": delivery_id,
        "webhook-timestamp": standard_timestamp(now),
        "webhook-signature": standard_signature(secret, delivery_id, now, body),
    }


class Deliveries:
    def __init__(
        self,
        db: Database,
        publisher: Publisher,
        sender: WebhookSender,
        policy: UrlPolicy,
        *,
        schedule: Sequence[float],
        lease_seconds: float,
        clock: Clock = utcnow,
        batch: int = 500,
        metrics: Metrics | None = None,
        secrets: SecretBox | None = None,
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.secrets = secrets or SecretBox()
        self.metrics = metrics or NoMetrics()
        self.sender = sender
        self.policy = policy
        self.schedule = tuple(schedule)
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock
        self.batch = batch

    def deliver(self, delivery_id: uuid.UUID) -> DeliveryStatus | None:
        """One attempt, if the delivery is due and nobody else holds it; returns its new status."""
        now = self.clock()
        with self.db.transaction() as conn:
            job = store.claim_delivery(conn, delivery_id, now, now + self.lease)
        if job is None:
            return None
        result = self._attempt(job)
        done = self.clock()
        attempt = job.delivery.attempts
        bound = log.bind(
            delivery_id=str(delivery_id),
            webhook_id=str(job.delivery.webhook_id),
            run_id=str(job.delivery.package_run_id),
            attempt=attempt,
            status_code=result.status_code,
        )
        if result.ok:
            assert result.status_code is not None
            with self.db.transaction() as conn:
                store.record_success(conn, delivery_id, result.status_code, done)
            self.metrics.webhook_attempt("delivered", (done - now).total_seconds())
            bound.info("webhook.delivered", duration_ms=round((done - now).total_seconds() * 1000, 1))
            return DeliveryStatus.DELIVERED
        status = self._failed(job, result, done, bound)
        outcome = "retrying" if status is DeliveryStatus.PENDING else "failed"
        self.metrics.webhook_attempt(outcome, (done - now).total_seconds())
        return status

    def signing_secret(self, job: DeliveryJob) -> str:
        """The webhook's secret in clear, to sign this attempt: the only place it is opened."""
        return self.secrets.reveal(job.sealed_secret)

    def _attempt(self, job: DeliveryJob) -> SendResult:
        """Never raises: whatever goes wrong is a failed attempt, so the schedule still applies."""
        try:
            destination = self.policy.check(job.url)  # again: DNS may have changed since create
            now = self.clock()
            body = request_body(job, now)
            headers = request_headers(job, self.signing_secret(job), body, now)
            return self.sender.post(destination, headers, body)
        except RefusedUrl as refused:
            return SendResult(None, f"refused: {refused.reason}")
        except SecretUnreadable:
            log.error("webhook.secret_unreadable", delivery_id=str(job.delivery.id))
            return SendResult(None, "secret unreadable: the key that sealed it is not configured")
        except Exception as exc:
            log.exception(
                "webhook.attempt_crashed", delivery_id=str(job.delivery.id), error_type=type(exc).__name__
            )
            return SendResult(None, "internal error")

    def _failed(self, job: DeliveryJob, result: SendResult, now: datetime, bound: Any) -> DeliveryStatus:
        attempt = job.delivery.attempts
        delay = retry_delay(attempt, self.schedule)
        next_at = None if delay is None else now + timedelta(seconds=delay)
        error = result.error or f"HTTP {result.status_code}"
        with self.db.transaction() as conn:
            store.record_failure(conn, job.delivery.id, attempt, result.status_code, error, next_at, now)
        bound.warning(
            "webhook.delivery_failed",
            will_retry=next_at is not None,
            error=error,
            next_attempt_at=timestamp(next_at),
        )
        return DeliveryStatus.PENDING if next_at is not None else DeliveryStatus.FAILED

    def relay(self) -> int:
        """Send messages for due deliveries; one that was sent less than a lease ago is left alone."""
        now = self.clock()
        with self.db.transaction() as conn:
            due = store.claim_due(conn, now, now - self.lease, self.batch)
        publish_deliveries(self.publisher, due, source="relay")
        return len(due)
