"""`verify_webhook`: check a delivery's Standard Webhooks signature as the `standardwebhooks` package does."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET_PREFIX = "whsec_"


def _webhook(secret: str) -> Webhook:
    """Keyed as packmatch signs: a `whsec_` secret as the string, any other as its UTF-8 bytes."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return Webhook(secret)
        except Exception:
            pass
    return Webhook(secret.encode())


def verify_webhook(headers: Mapping[str, str], body: bytes | str, secret: str | Sequence[str]) -> Any:
    """The parsed body of a genuine, fresh delivery; else `WebhookVerificationError`.

    `body` is the raw request body as received. `secret` may be several (old and new, during a
    rotation): the delivery is accepted when one of them signed it. Deliveries more than 5 minutes
    from this machine's clock are refused (replays); deduplicate on `headers["webhook-id"]`.
    """
    secrets = [secret] if isinstance(secret, str) else list(secret)
    plain = {str(k).lower(): str(v) for k, v in headers.items()}
    failure: WebhookVerificationError = WebhookVerificationError("no secret given")
    for candidate in secrets:
        try:
            return _webhook(candidate).verify(body, plain)
        except WebhookVerificationError as exc:
            failure = exc
    raise failure
