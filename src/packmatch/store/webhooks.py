"""Webhooks and their deliveries (the outbox).

A delivery moves only through guarded updates: a worker claims an attempt (`pending`, due, not
leased by a live worker, webhook active) by taking a lease and counting the attempt; it records a
failure only while that attempt is still the latest (`attempts` is the token), a success while the
delivery is still `pending`. The relay marks what it re-sends (`enqueued_at`), so a message
waiting in a queue is not sent again and again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from packmatch.domain.webhooks import DeliveryJob, DeliveryStatus, Webhook, WebhookDelivery
from packmatch.store import counts
from packmatch.store.pagination import Page, PageRequest, keyset_page
from packmatch.store.tables import delivery_counts, webhook_deliveries, webhooks

PENDING = DeliveryStatus.PENDING.value
_DELIVERY_COLUMNS = [
    c for c in webhook_deliveries.c if c.name not in ("payload", "lease_until", "enqueued_at")
]


def _webhook(row: Any) -> Webhook:
    """The webhook without its secret (sealed in the row, opened only to sign a delivery)."""
    return Webhook.model_validate({k: v for k, v in row._mapping.items() if k != "sealed_secret"})


def _delivery(row: Any) -> WebhookDelivery:
    m = row._mapping
    return WebhookDelivery.model_validate({k: m[k] for k in WebhookDelivery.model_fields})


def insert_webhook(conn: Connection, hook: Webhook, sealed_secret: str) -> None:
    values = hook.model_dump(mode="python", exclude={"secret"})
    values["events"] = [e.value for e in hook.events]
    conn.execute(webhooks.insert().values(**values, sealed_secret=sealed_secret))


def _owned(organization_id: uuid.UUID, webhook_id: uuid.UUID) -> list[sa.ColumnElement[bool]]:
    return [webhooks.c.id == webhook_id, webhooks.c.organization_id == organization_id]


def get_webhook(conn: Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID) -> Webhook | None:
    row = conn.execute(sa.select(webhooks).where(*_owned(organization_id, webhook_id))).first()
    return None if row is None else _webhook(row)


def list_webhooks(conn: Connection, organization_id: uuid.UUID, request: PageRequest) -> Page[Webhook]:
    return keyset_page(conn, webhooks, [webhooks.c.organization_id == organization_id], request, _webhook)


def update_webhook(conn: Connection, hook: Webhook) -> bool:
    """Write url, events, is_active and updated_at; false if the webhook is gone."""
    changed = conn.execute(
        webhooks.update()
        .where(*_owned(hook.organization_id, hook.id))
        .values(
            url=hook.url,
            events=[e.value for e in hook.events],
            is_active=hook.is_active,
            updated_at=hook.updated_at,
        )
    )
    return changed.rowcount == 1


def update_secret(
    conn: Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID, sealed_secret: str, now: datetime
) -> bool:
    changed = conn.execute(
        webhooks.update()
        .where(*_owned(organization_id, webhook_id))
        .values(sealed_secret=sealed_secret, updated_at=now)
    )
    return changed.rowcount == 1


def sealed_secrets(conn: Connection) -> list[tuple[uuid.UUID, str]]:
    """Every webhook's id and sealed secret (for resealing under a new key)."""
    return [
        (row.id, row.sealed_secret)
        for row in conn.execute(sa.select(webhooks.c.id, webhooks.c.sealed_secret))
    ]


def reseal_secret(conn: Connection, webhook_id: uuid.UUID, sealed: str, resealed: str) -> bool:
    """Replace the sealed secret if it is still the one read (a rotation in between wins)."""
    changed = conn.execute(
        webhooks.update()
        .where(webhooks.c.id == webhook_id, webhooks.c.sealed_secret == sealed)
        .values(sealed_secret=resealed)
    )
    return changed.rowcount == 1


def delete_webhook(conn: Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID) -> bool:
    """Delete a webhook; its deliveries go with it (ON DELETE CASCADE)."""
    return conn.execute(webhooks.delete().where(*_owned(organization_id, webhook_id))).rowcount == 1


# Read by every finalization, so built once (store/runs.py explains why).
_ACTIVE_WEBHOOKS = (
    sa.select(webhooks)
    .where(webhooks.c.organization_id == sa.bindparam("p_organization_id"), webhooks.c.is_active)
    .order_by(webhooks.c.created_at, webhooks.c.id)
)


def active_webhooks(conn: Connection, organization_id: uuid.UUID) -> list[Webhook]:
    return [_webhook(row) for row in conn.execute(_ACTIVE_WEBHOOKS, {"p_organization_id": organization_id})]


def insert_deliveries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        conn.execute(webhook_deliveries.insert(), list(rows))
        counts.add_deliveries(conn, ((counts.delivery_key(row), 1) for row in rows))


def _delivery_of(organization_id: uuid.UUID, webhook_id: uuid.UUID) -> list[sa.ColumnElement[bool]]:
    return [
        webhook_deliveries.c.webhook_id == webhook_id,
        webhook_deliveries.c.organization_id == organization_id,
    ]


def get_delivery(
    conn: Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    query = sa.select(*_DELIVERY_COLUMNS).where(
        webhook_deliveries.c.id == delivery_id, *_delivery_of(organization_id, webhook_id)
    )
    row = conn.execute(query).first()
    return None if row is None else _delivery(row)


def list_deliveries(
    conn: Connection,
    organization_id: uuid.UUID,
    webhook_id: uuid.UUID,
    request: PageRequest,
    status: DeliveryStatus | None = None,
) -> Page[WebhookDelivery]:
    def filters(table: sa.Table) -> list[sa.ColumnElement[bool]]:  # on the deliveries or their counts
        where = [table.c.webhook_id == webhook_id, table.c.organization_id == organization_id]
        if status is not None:
            where.append(table.c.status == status.value)
        return where

    total = counts.total(conn, delivery_counts, filters(delivery_counts))
    return keyset_page(conn, webhook_deliveries, filters(webhook_deliveries), request, _delivery, total=total)


_MOVED = (webhook_deliveries.c.organization_id, webhook_deliveries.c.webhook_id)


def _count_move(conn: Connection, moved: Any, before: str, after: str) -> bool:
    """counts: a delivery whose guarded update matched (`moved`, its RETURNING row) changed status."""
    if moved is None:
        return False
    if before != after:
        org, hook = moved
        counts.add_deliveries(conn, [((org, hook, before), -1), ((org, hook, after), 1)])
    return True


def _claimable(delivery_id: uuid.UUID, now: datetime) -> list[sa.ColumnElement[bool]]:
    active = sa.select(webhooks.c.id).where(
        webhooks.c.id == webhook_deliveries.c.webhook_id, webhooks.c.is_active
    )
    return [
        webhook_deliveries.c.id == delivery_id,
        webhook_deliveries.c.status == PENDING,
        webhook_deliveries.c.next_attempt_at <= now,
        sa.or_(webhook_deliveries.c.lease_until.is_(None), webhook_deliveries.c.lease_until < now),
        active.exists(),
    ]


def claim_delivery(
    conn: Connection, delivery_id: uuid.UUID, now: datetime, lease_until: datetime
) -> DeliveryJob | None:
    """Take the next attempt of a due delivery: the lease is ours and the attempt is counted."""
    claimed = conn.execute(
        webhook_deliveries.update()
        .where(*_claimable(delivery_id, now))
        .values(attempts=webhook_deliveries.c.attempts + 1, lease_until=lease_until, updated_at=now)
    )
    if claimed.rowcount != 1:
        return None
    row = conn.execute(
        sa.select(webhook_deliveries, webhooks.c.url, webhooks.c.sealed_secret)
        .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
        .where(webhook_deliveries.c.id == delivery_id)
    ).one()
    return DeliveryJob(
        delivery=_delivery(row), url=row.url, sealed_secret=row.sealed_secret, data=row.payload
    )


def record_success(conn: Connection, delivery_id: uuid.UUID, status_code: int, now: datetime) -> bool:
    changed = conn.execute(
        webhook_deliveries.update()
        .where(webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.status == PENDING)
        .values(
            status=DeliveryStatus.DELIVERED.value,
            last_status_code=status_code,
            last_error=None,
            next_attempt_at=None,
            lease_until=None,
            enqueued_at=None,
            delivered_at=now,
            updated_at=now,
        )
        .returning(*_MOVED)
    ).first()
    return _count_move(conn, changed, PENDING, DeliveryStatus.DELIVERED.value)


def record_failure(
    conn: Connection,
    delivery_id: uuid.UUID,
    attempt: int,
    status_code: int | None,
    error: str,
    next_attempt_at: datetime | None,
    now: datetime,
) -> bool:
    """A failed attempt, unless a later attempt (a worker that took over) or a success came first."""
    status = PENDING if next_attempt_at is not None else DeliveryStatus.FAILED.value
    changed = conn.execute(
        webhook_deliveries.update()
        .where(
            webhook_deliveries.c.id == delivery_id,
            webhook_deliveries.c.status == PENDING,
            webhook_deliveries.c.attempts == attempt,
        )
        .values(
            status=status,
            last_status_code=status_code,
            last_error=error,
            next_attempt_at=next_attempt_at,
            lease_until=None,
            enqueued_at=None,
            updated_at=now,
        )
        .returning(*_MOVED)
    ).first()
    return _count_move(conn, changed, PENDING, status)


def claim_due(conn: Connection, now: datetime, requeue_before: datetime, limit: int) -> list[uuid.UUID]:
    """Due deliveries whose message is not known to be on its way: marked as sent again, now."""
    d = webhook_deliveries.c
    active = sa.select(webhooks.c.id).where(webhooks.c.id == d.webhook_id, webhooks.c.is_active)
    unclaimed = [
        d.status == PENDING,
        d.next_attempt_at <= now,
        sa.or_(d.lease_until.is_(None), d.lease_until < now),
        sa.or_(d.enqueued_at.is_(None), d.enqueued_at < requeue_before),
    ]
    due = conn.execute(
        sa.select(d.id).where(*unclaimed, active.exists()).order_by(d.next_attempt_at).limit(limit)
    ).scalars()
    claimed = []
    for delivery_id in list(due):
        touched = conn.execute(
            webhook_deliveries.update().where(d.id == delivery_id, *unclaimed).values(enqueued_at=now)
        )
        if touched.rowcount == 1:
            claimed.append(delivery_id)
    return claimed


def reset_for_redelivery(conn: Connection, delivery_id: uuid.UUID, now: datetime) -> None:
    """Due again now, whatever its state; the attempt count goes on (it is the failure token)."""
    of_delivery = webhook_deliveries.c.id == delivery_id
    locked = sa.select(webhook_deliveries.c.status).where(of_delivery)
    if conn.dialect.name == "postgresql":
        locked = locked.with_for_update()
    before = conn.execute(locked).scalar_one_or_none()
    changed = conn.execute(
        webhook_deliveries.update()
        .where(of_delivery)
        .values(status=PENDING, next_attempt_at=now, enqueued_at=now, updated_at=now)
        .returning(*_MOVED)
    ).first()
    if before is not None:
        _count_move(conn, changed, before, PENDING)
