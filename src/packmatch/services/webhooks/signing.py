"""Webhook signatures, two schemes on every delivery (docs/webhooks.md has a test vector for each).

- packmatch's own: `X-Packmatch-Signature: sha256=<hex HMAC-SHA256(secret as UTF-8, raw body)>`.
- Standard Webhooks (https://www.standardwebhooks.com): `webhook-id`, `webhook-timestamp` (epoch
  seconds) and `webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`. The key
  is what the spec's libraries derive from the secret: a `whsec_` secret is the base64 of its rest,
  decoded; any other secret is its own UTF-8 bytes (a receiver passes those bytes to its library, as
  `packmatch.client.verify_webhook` does). The `standardwebhooks` package signs, so a receiver using
  it agrees by construction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import datetime

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

SECRET_PREFIX = "whsec_"
SCHEME = "sha256="


def new_secret() -> str:
    """`whsec_` + 32 random bytes in standard base64: the form Standard Webhooks libraries expect."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, body: bytes) -> str:
    """The `X-Packmatch-Signature` header value for a body."""
    return SCHEME + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does: compare in constant time."""
    return hmac.compare_digest(sign(secret, body), signature)


def standard_webhook(secret: str) -> Webhook:
    """The Standard Webhooks signer for a secret, keyed as a receiver's library keys it.

    A `whsec_` secret is given to the library as the string (it base64-decodes the rest); any other
    secret, or a `whsec_` one the library cannot decode, as its UTF-8 bytes (used as they are).
    """
    if secret.startswith(SECRET_PREFIX):
        try:
            return Webhook(secret)
        except (binascii.Error, ValueError, EmptyWebhookSecretError):
            pass
    return Webhook(secret.encode())


def standard_timestamp(now: datetime) -> str:
    """`webhook-timestamp`: whole epoch seconds, as the spec's libraries sign and check them."""
    return str(int(now.timestamp()))


def standard_signature(secret: str, message_id: str, now: datetime, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`."""
    return standard_webhook(secret).sign(message_id, now, body)
