"""Typed exceptions, one per SPEC error code, built from the error envelope of a response."""

from __future__ import annotations

from typing import Any

from standardwebhooks.webhooks import WebhookVerificationError as WebhookVerificationError


class PackmatchError(Exception):
    """Base of everything the client raises."""


class TransportError(PackmatchError):
    """No HTTP answer: connection refused or reset, DNS, timeout (after the retries)."""


class WaitTimeout(PackmatchError):
    """`wait_final` / `submit(wait=…)` / `evaluations.wait`: the run (or evaluation) was not final
    when the time ran out. `run_id` is the id waited for, a run's or an evaluation's."""

    def __init__(self, run_id: str, seconds: float, what: str = "run") -> None:
        super().__init__(f"{what} {run_id} still running after {seconds:g} s")
        self.run_id = run_id


class ApiError(PackmatchError):
    """A non-2xx answer with the SPEC error envelope; `code` is its lowercase code."""

    code = "error"

    def __init__(self, status_code: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        self.status_code = status_code
        self.body = body
        self.code = str(body.get("code", type(self).code))
        self.message = str(body.get("message", ""))
        self.details: list[dict[str, Any]] = list(body.get("details") or [])
        self.request_id: str | None = body.get("request_id")
        self.retryable = bool(body.get("retryable", False))
        self.headers = headers or {}
        super().__init__(f"{status_code} {self.code}: {self.message}")


class ValidationError(ApiError):
    code = "validation_error"  # `details` names the fields: [{"field", "message"}, …]


class Unauthorized(ApiError):
    code = "unauthorized"


class InsufficientScope(ApiError):
    code = "insufficient_scope"


class NotFound(ApiError):
    code = "not_found"


class MethodNotAllowed(ApiError):
    code = "method_not_allowed"


class Conflict(ApiError):
    code = "conflict"


class IdempotencyKeyInUse(Conflict):
    code = "idempotency_key_in_use"


class PreconditionFailed(ApiError):
    code = "precondition_failed"


class PayloadTooLarge(ApiError):
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    code = "unsupported_media_type"


class IdempotencyKeyMismatch(ApiError):
    code = "idempotency_key_mismatch"


class RateLimited(ApiError):
    code = "rate_limited"

    @property
    def retry_after(self) -> float | None:
        """`Retry-After` in seconds, when the answer had one."""
        return retry_after(self.headers)


class ServerError(ApiError):
    code = "internal_error"


class Unavailable(ServerError):
    code = "unavailable"


BY_CODE: dict[str, type[ApiError]] = {
    cls.code: cls
    for cls in (
        ValidationError, Unauthorized, InsufficientScope, NotFound, MethodNotAllowed, Conflict,
        IdempotencyKeyInUse, PreconditionFailed, PayloadTooLarge, UnsupportedMediaType,
        IdempotencyKeyMismatch, RateLimited, ServerError, Unavailable,
    )
}  # fmt: skip


def retry_after(headers: dict[str, str]) -> float | None:
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def from_response(status_code: int, body: Any, headers: dict[str, str]) -> ApiError:
    """The exception for an error answer; a body that is not the envelope still gives one."""
    envelope = body if isinstance(body, dict) else {"message": str(body)[:200]}
    default = ServerError if status_code >= 500 else ApiError
    return BY_CODE.get(str(envelope.get("code")), default)(status_code, envelope, headers)
