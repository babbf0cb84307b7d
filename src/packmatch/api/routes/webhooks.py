"""/v1/webhooks"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from packmatch.api import presenters
from packmatch.api.deps import PageDep, PrincipalDep, ServicesDep
from packmatch.api.schemas import WebhookCreate, WebhookReplace
from packmatch.domain.ids import Kind, parse_id
from packmatch.domain.webhooks import DeliveryStatus
from packmatch.services.webhooks.subscriptions import WebhookInput

router = APIRouter(prefix=presenters.WEBHOOKS, tags=["webhooks"])

DeliveryStatusFilter = Annotated[
    DeliveryStatus | None, Query(description="Only deliveries with this status.")
]


def _ids(webhook_id: str, delivery_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    return parse_id(Kind.WEBHOOK, webhook_id), parse_id(Kind.WEBHOOK_DELIVERY, delivery_id)


# The answers that carry the secret: no cache keeps them, and an `Idempotency-Key` record keeps them
# without the secret (a replay answers `"secret": null` with `Idempotent-Secret-Omitted: true`).
SHOWN_ONCE = "no-store"


@router.post(
    "",
    status_code=201,
    summary="Create a webhook",
    description="The answer carries the `secret` that signs deliveries (generated unless given); it is "
    "never shown again. The URL must pass the SSRF guard (docs/webhooks.md).",
)
def create(
    body: WebhookCreate, principal: PrincipalDep, services: ServicesDep, response: Response
) -> dict[str, Any]:
    data = WebhookInput(url=body.url, events=body.events, is_active=body.is_active, secret=body.secret)
    shown = presenters.created_webhook(services.webhooks.create(principal.organization_id, data))
    response.headers["Location"] = shown["links"]["self"]
    response.headers["Cache-Control"] = SHOWN_ONCE
    return shown


@router.get("", summary="List webhooks")
def list_(principal: PrincipalDep, services: ServicesDep, page: PageDep) -> dict[str, Any]:
    return presenters.page(services.webhooks.list(principal.organization_id, page), presenters.webhook)


@router.get("/{webhook_id}", summary="Get a webhook")
def get(webhook_id: str, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    hook = services.webhooks.get(principal.organization_id, parse_id(Kind.WEBHOOK, webhook_id))
    return presenters.webhook(hook)


@router.put(
    "/{webhook_id}",
    summary="Replace a webhook",
    description="Replaces `url`, `events` and `is_active` (omitted fields take their defaults); the "
    "secret stays. Deliveries of an inactive webhook wait, and resume when it is active again.",
)
def replace(
    webhook_id: str, body: WebhookReplace, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    data = WebhookInput(url=body.url, events=body.events, is_active=body.is_active)
    hook = services.webhooks.replace(principal.organization_id, parse_id(Kind.WEBHOOK, webhook_id), data)
    return presenters.webhook(hook)


@router.post(
    "/{webhook_id}/rotate-secret",
    summary="Replace a webhook's secret",
    description="Generates a new secret and answers with it (the one time it is shown). Attempts from now "
    "on are signed with it; verify against both secrets while you switch your receiver over.",
)
def rotate_secret(
    webhook_id: str, principal: PrincipalDep, services: ServicesDep, response: Response
) -> dict[str, Any]:
    hook = services.webhooks.rotate_secret(principal.organization_id, parse_id(Kind.WEBHOOK, webhook_id))
    shown = presenters.created_webhook(hook)
    response.headers["Location"] = shown["links"]["self"]
    response.headers["Cache-Control"] = SHOWN_ONCE
    return shown


@router.delete(
    "/{webhook_id}",
    summary="Delete a webhook and its deliveries",
    description="Deliveries not yet sent are dropped with it.",
)
def delete(webhook_id: str, principal: PrincipalDep, services: ServicesDep) -> dict[str, Any]:
    services.webhooks.delete(principal.organization_id, parse_id(Kind.WEBHOOK, webhook_id))
    return {"deleted": True}


@router.get("/{webhook_id}/deliveries", summary="List a webhook's deliveries")
def deliveries(
    webhook_id: str,
    principal: PrincipalDep,
    services: ServicesDep,
    page: PageDep,
    status: DeliveryStatusFilter = None,
) -> dict[str, Any]:
    ident = parse_id(Kind.WEBHOOK, webhook_id)
    found = services.webhooks.deliveries(principal.organization_id, ident, page, status)
    return presenters.page(found, presenters.webhook_delivery)


@router.get("/{webhook_id}/deliveries/{delivery_id}", summary="Get a delivery")
def delivery(
    webhook_id: str, delivery_id: str, principal: PrincipalDep, services: ServicesDep
) -> dict[str, Any]:
    found = services.webhooks.delivery(principal.organization_id, *_ids(webhook_id, delivery_id))
    return presenters.webhook_delivery(found)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Redeliver a delivery",
    description="Makes the delivery due now (same delivery id): one more attempt is sent shortly, "
    "whatever its status. 409 while the webhook is inactive.",
)
def redeliver(
    webhook_id: str, delivery_id: str, principal: PrincipalDep, services: ServicesDep, response: Response
) -> dict[str, Any]:
    found = services.webhooks.redeliver(principal.organization_id, *_ids(webhook_id, delivery_id))
    shown = presenters.webhook_delivery(found)
    response.headers["Location"] = shown["links"]["self"]
    return shown
