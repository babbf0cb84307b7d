"""Webhooks and their deliveries: which events exist, what a subscription matches, delivery states."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime

from packmatch.domain.models import Frozen, RunStatus


class WebhookEvent(StrEnum):
    """`completed` fires for every final run; the next three only for runs with that status; the
    `…reviewed` events for every review decision (SPEC §3 Reviews), to webhooks subscribed to them."""

    COMPLETED = "package_run.completed"
    FAILED = "package_run.failed"
    REVIEW = "package_run.review"
    ERROR = "package_run.error"
    RUN_REVIEWED = "package_run.reviewed"
    RESULT_REVIEWED = "matching_result.reviewed"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


_BY_STATUS = {
    RunStatus.FAILED: WebhookEvent.FAILED,
    RunStatus.REVIEW: WebhookEvent.REVIEW,
    RunStatus.ERROR: WebhookEvent.ERROR,
}


def event_for(status: RunStatus, subscribed: Iterable[WebhookEvent]) -> WebhookEvent | None:
    """The event a webhook receives for a run that ended with `status`, or None if it is not subscribed.

    One delivery per webhook: `package_run.completed` when it subscribes to that (SPEC §3: delivered
    for every final status), else the status's own event when it subscribes to that one.
    """
    events = set(subscribed)
    if WebhookEvent.COMPLETED in events:
        return WebhookEvent.COMPLETED
    specific = _BY_STATUS.get(status)
    return specific if specific in events else None


class Webhook(Frozen):
    id: uuid.UUID
    organization_id: uuid.UUID
    url: str
    events: tuple[WebhookEvent, ...]
    is_active: bool
    # In clear only in the answer to a create or a rotation (shown once); stored sealed, never read back.
    secret: str | None = None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class WebhookDelivery(Frozen):
    """One event for one webhook, retried until delivered or failed for good."""

    id: uuid.UUID
    webhook_id: uuid.UUID
    organization_id: uuid.UUID
    event: WebhookEvent
    package_run_id: uuid.UUID
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: AwareDatetime | None
    delivered_at: AwareDatetime | None
    created_at: AwareDatetime
    updated_at: AwareDatetime


class DeliveryJob(Frozen):
    """What a worker needs to send one attempt of a delivery (the webhook's secret, still sealed:
    `Deliveries.signing_secret` opens it)."""

    delivery: WebhookDelivery
    url: str
    sealed_secret: str
    data: dict[str, Any]


def retry_delay(attempts: int, schedule: Sequence[float]) -> float | None:
    """Seconds from the `attempts`-th failed attempt to the next one; None once the schedule is spent.

    With the default schedule (60, 300, 1800, 14400) a delivery is tried five times over about 4.6 h.
    """
    return schedule[attempts - 1] if 1 <= attempts <= len(schedule) else None
