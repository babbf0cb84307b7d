"""Retry or give up: the worker's translation of exceptions, returned as a value."""

from __future__ import annotations

from dataclasses import dataclass

from dramatiq.common import compute_backoff
from dramatiq.middleware.time_limit import TimeLimitExceeded

from packmatch.errors import PackmatchError
from packmatch.transient import is_transient

__all__ = ["RetryDecision", "decide_retry", "describe", "is_transient"]


# A failed slot's `error`, shown to API clients: one of these stable texts (our own errors speak for
# themselves). Never a Python class name or an exception's text: those go to the `slot.failed` log line.
TIME_LIMIT = "matching failed (time limit exceeded)"
UNAVAILABLE = "matching failed (database or broker unavailable; retries exhausted)"
INTERNAL = "matching failed (internal)"


def describe(exc: BaseException) -> str:
    """The slot's `error` for clients; the detail (`error_type`, traceback) is logged by the caller."""
    if isinstance(exc, TimeLimitExceeded):
        return TIME_LIMIT
    if isinstance(exc, PackmatchError):
        return exc.message
    if is_transient(exc):
        return UNAVAILABLE
    return INTERNAL


@dataclass(frozen=True)
class RetryDecision:
    retry: bool
    delay_ms: int
    reason: str


def decide_retry(
    exc: BaseException, *, attempt: int, max_retries: int, min_backoff_ms: int, max_backoff_ms: int
) -> RetryDecision:
    """Transient failures retry with exponential backoff and jitter until `max_retries`."""
    reason = describe(exc)
    if not is_transient(exc) or attempt >= max_retries:
        return RetryDecision(False, 0, reason)
    _, delay = compute_backoff(attempt, factor=min_backoff_ms, max_backoff=max_backoff_ms)
    return RetryDecision(True, delay, reason)
