"""packmatch's Python client: typed, paging, idempotent and retrying, sync and async.

- `client` / `aclient`: `Client` and `AsyncClient` (httpx) and their send policy.
- `calls`: one API call as a value, headers (auth, user agent, `Idempotency-Key`), retries.
- `routes`: every SPEC §3 endpoint as a call builder, with its response model (`packmatch.responses`).
- `resources` / `aresources` (generated from it): the typed methods, grouped by resource.
- `uploads`: streamed CSV uploads with progress; `errors`: one exception per SPEC error code;
  `webhooks`: `verify_webhook` on the `standardwebhooks` package.

Needs only httpx, pydantic and standardwebhooks: `pip install packmatch` without the server extra.
See docs/client.md.
"""

from packmatch import responses as models
from packmatch.client.aclient import AsyncClient
from packmatch.client.calls import Retry
from packmatch.client.client import Client
from packmatch.client.errors import (
    ApiError,
    Conflict,
    IdempotencyKeyInUse,
    IdempotencyKeyMismatch,
    InsufficientScope,
    NotFound,
    PackmatchError,
    PayloadTooLarge,
    PreconditionFailed,
    RateLimited,
    ServerError,
    TransportError,
    Unauthorized,
    Unavailable,
    ValidationError,
    WaitTimeout,
    WebhookVerificationError,
)
from packmatch.client.webhooks import verify_webhook

__all__ = [
    "ApiError", "AsyncClient", "Client", "Conflict", "IdempotencyKeyInUse", "IdempotencyKeyMismatch",
    "InsufficientScope", "NotFound", "PackmatchError", "PayloadTooLarge", "PreconditionFailed",
    "RateLimited", "Retry", "ServerError", "TransportError", "Unauthorized", "Unavailable",
    "ValidationError", "WaitTimeout", "WebhookVerificationError", "models", "verify_webhook",
]  # fmt: skip
