"""Webhooks: create (the secret is shown once), read, replace (PUT), delete; deliveries and redelivery.

A URL is checked by the SSRF guard before it is stored without resolving its name (scheme, form and a
literal address); the name is resolved and its addresses judged before every attempt (deliveries).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from packmatch.domain.webhooks import DeliveryStatus, Webhook, WebhookDelivery, WebhookEvent
from packmatch.errors import Conflict, NotFound
from packmatch.logging import get_logger
from packmatch.sealing import SecretBox
from packmatch.services.ports import Clock, Publisher, utcnow
from packmatch.services.webhooks.address_guard import UrlPolicy
from packmatch.services.webhooks.deliveries import publish_deliveries
from packmatch.services.webhooks.signing import new_secret
from packmatch.store import webhooks as store
from packmatch.store.db import Database
from packmatch.store.pagination import Page, PageRequest

log = get_logger(__name__)

WEBHOOK_NOT_FOUND = "No webhook with this ID exists for your organization."
DELIVERY_NOT_FOUND = "No delivery with this ID exists for this webhook."
INACTIVE = "This webhook is not active; activate it (PUT with is_active: true) to redeliver."


@dataclass(frozen=True)
class WebhookInput:
    url: str
    events: Sequence[WebhookEvent]
    is_active: bool = True
    secret: str | None = None  # create only; generated when not given


def _find(
    conn: Connection, organization_id: uuid.UUID, webhook_id: uuid.UUID, delivery_id: uuid.UUID
) -> tuple[Webhook, WebhookDelivery]:
    hook = store.get_webhook(conn, organization_id, webhook_id)
    if hook is None:
        raise NotFound(WEBHOOK_NOT_FOUND)
    found = store.get_delivery(conn, organization_id, webhook_id, delivery_id)
    if found is None:
        raise NotFound(DELIVERY_NOT_FOUND)
    return hook, found


class Webhooks:
    def __init__(
        self,
        db: Database,
        publisher: Publisher,
        policy: UrlPolicy,
        clock: Clock = utcnow,
        secrets: SecretBox | None = None,
    ) -> None:
        self.db = db
        self.publisher = publisher
        self.policy = policy
        self.clock = clock
        self.secrets = secrets or SecretBox()

    def create(self, organization_id: uuid.UUID, data: WebhookInput) -> Webhook:
        self.policy.check_written(data.url)
        now = self.clock()
        hook = Webhook(
            id=uuid.uuid4(),
            organization_id=organization_id,
            url=data.url,
            events=tuple(dict.fromkeys(data.events)),
            is_active=data.is_active,
            secret=data.secret or new_secret(),
            created_at=now,
            updated_at=now,
        )
        assert hook.secret is not None
        with self.db.transaction() as conn:
            store.insert_webhook(conn, hook, self.secrets.seal(hook.secret))
        log.info("webhook.created", webhook_id=str(hook.id))
        return hook

    def get(self, organization_id: uuid.UUID, webhook_id: uuid.UUID) -> Webhook:
        with self.db.transaction() as conn:
            hook = store.get_webhook(conn, organization_id, webhook_id)
        if hook is None:
            raise NotFound(WEBHOOK_NOT_FOUND)
        return hook

    def list(self, organization_id: uuid.UUID, request: PageRequest) -> Page[Webhook]:
        with self.db.transaction() as conn:
            return store.list_webhooks(conn, organization_id, request)

    def replace(self, organization_id: uuid.UUID, webhook_id: uuid.UUID, data: WebhookInput) -> Webhook:
        """url, events and is_active are replaced; the secret stays."""
        current = self.get(organization_id, webhook_id)
        self.policy.check_written(data.url)
        hook = current.model_copy(
            update={
                "url": data.url,
                "events": tuple(dict.fromkeys(data.events)),
                "is_active": data.is_active,
                "updated_at": self.clock(),
            }
        )
        with self.db.transaction() as conn:
            if not store.update_webhook(conn, hook):
                raise NotFound(WEBHOOK_NOT_FOUND)
        return hook

    def rotate_secret(self, organization_id: uuid.UUID, webhook_id: uuid.UUID) -> Webhook:
        """A new generated secret, used from the next attempt on (an attempt under way keeps the old)."""
        secret, now = new_secret(), self.clock()
        with self.db.transaction() as conn:
            if not store.update_secret(conn, organization_id, webhook_id, self.secrets.seal(secret), now):
                raise NotFound(WEBHOOK_NOT_FOUND)
            hook = store.get_webhook(conn, organization_id, webhook_id)
        assert hook is not None
        log.info("webhook.secret_rotated", webhook_id=str(webhook_id))
        return hook.model_copy(update={"secret": secret})

    def reseal_all(self) -> int:
        """Seal every webhook's secret under the current key, so that old keys can be dropped."""
        resealed = 0
        with self.db.transaction() as conn:
            found = store.sealed_secrets(conn)
        for webhook_id, sealed in found:
            with self.db.transaction() as conn:
                resealed += store.reseal_secret(conn, webhook_id, sealed, self.secrets.reseal(sealed))
        log.info("webhook.secrets_resealed", webhooks=resealed)
        return resealed

    def delete(self, organization_id: uuid.UUID, webhook_id: uuid.UUID) -> None:
        with self.db.transaction() as conn:
            if not store.delete_webhook(conn, organization_id, webhook_id):
                raise NotFound(WEBHOOK_NOT_FOUND)
        log.info("webhook.deleted", webhook_id=str(webhook_id))

    def deliveries(
        self,
        organization_id: uuid.UUID,
        webhook_id: uuid.UUID,
        request: PageRequest,
        status: DeliveryStatus | None = None,
    ) -> Page[WebhookDelivery]:
        with self.db.transaction() as conn:
            if store.get_webhook(conn, organization_id, webhook_id) is None:
                raise NotFound(WEBHOOK_NOT_FOUND)
            return store.list_deliveries(conn, organization_id, webhook_id, request, status)

    def delivery(
        self, organization_id: uuid.UUID, webhook_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> WebhookDelivery:
        with self.db.transaction() as conn:
            return _find(conn, organization_id, webhook_id, delivery_id)[1]

    def redeliver(
        self, organization_id: uuid.UUID, webhook_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> WebhookDelivery:
        """Due again now, with the same delivery id: one more attempt (then the schedule goes on)."""
        with self.db.transaction() as conn:
            hook, _ = _find(conn, organization_id, webhook_id, delivery_id)
            if not hook.is_active:
                raise Conflict(INACTIVE)
            store.reset_for_redelivery(conn, delivery_id, self.clock())
            delivery = _find(conn, organization_id, webhook_id, delivery_id)[1]
        log.info("webhook.redelivered", delivery_id=str(delivery_id), webhook_id=str(webhook_id))
        publish_deliveries(self.publisher, [delivery_id], source="redeliver")
        return delivery
