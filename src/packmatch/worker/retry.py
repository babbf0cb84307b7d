"""Retry or give up: the worker's translation of exceptions, returned as a value."""

from __future__ import annotations

from dataclasses import dataclass

from dramatiq.common import compute_backoff
from dramatiq.middleware.time_limit import TimeLimitExceeded

from packmatch.errors import PackmatchError
from packmatch.transient import is_transient

__all__ = ["RetryDecision", "decide_retry", "describe", "is_transient"]


def describe(exc: BaseException) -> str:
    """A message for the run's `error`: our own errors speak for themselves; others by type only."""
    if isinstance(exc, TimeLimitExceeded):
        return "time limit exceeded"
    if isinstance(exc, PackmatchError):
        return exc.message
    if is_transient(exc):
        return f"{type(exc).__name__} (transient; retries exhausted)"
    return f"internal error ({type(exc).__name__})"


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
