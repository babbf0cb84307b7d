"""Webhooks: subscriptions and the outbox's deliveries.

- `subscriptions`: the `/v1/webhooks` use cases (create, update, rotate the secret, delete).
- `deliveries`: claim an attempt, send it, record the outcome, schedule the next try.
- `http`: the one HTTP client that sends a delivery to a checked address.
- `signing`: secrets and the HMAC-SHA256 signature receivers verify.
- `address_guard`: the SSRF guard applied when a URL is written and before every attempt.
"""
