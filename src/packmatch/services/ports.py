"""The ports the services need from the outside world, each with a real adapter elsewhere."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from packmatch.domain.models import RunStatus, SlotStatus


class Publisher(Protocol):
    """Sends pipeline messages. Messages carry ids only; the database holds the truth."""

    def fan_out(self, run_id: uuid.UUID) -> None: ...

    def match_slot(self, run_id: uuid.UUID, position: int) -> None: ...

    def match_slots(self, run_id: uuid.UUID, positions: Sequence[int]) -> None:
        """One `match_slot` message per position, sent together where the broker can (one round trip)."""
        ...

    def finalize(self, run_id: uuid.UUID) -> None: ...

    def deliver_webhook(self, delivery_id: uuid.UUID) -> None: ...

    def evaluate(self, evaluation_id: uuid.UUID) -> None: ...

    def together(self) -> AbstractContextManager[None]:
        """Messages sent in the block go out together when it ends, where the broker can (one
        round trip for a whole batch of runs); a failure to send them is raised there."""
        ...

    def ping(self) -> None: ...


class Metrics(Protocol):
    """Counts what the pipeline does; the real adapter is `packmatch.metrics.PrometheusMetrics`."""

    def run_accepted(self) -> None: ...

    def run_finalized(self, status: RunStatus, seconds: float) -> None: ...

    def slot_completed(self, status: SlotStatus, seconds: float) -> None: ...

    def slot_failed(self, *, will_retry: bool) -> None: ...

    def reconciled(self, action: str) -> None: ...

    def webhook_attempt(self, outcome: str, seconds: float) -> None: ...

    def review_recorded(self, kind: str, outcome: str, count: int = 1) -> None: ...

    def runs_pruned(self, runs: int, results: int) -> None: ...


class NoMetrics:
    """Counts nothing: for one-shot commands and tests that do not look at metrics."""

    def run_accepted(self) -> None:
        return None

    def run_finalized(self, status: RunStatus, seconds: float) -> None:
        return None

    def slot_completed(self, status: SlotStatus, seconds: float) -> None:
        return None

    def slot_failed(self, *, will_retry: bool) -> None:
        return None

    def reconciled(self, action: str) -> None:
        return None

    def webhook_attempt(self, outcome: str, seconds: float) -> None:
        return None

    def review_recorded(self, kind: str, outcome: str, count: int = 1) -> None:
        return None

    def runs_pruned(self, runs: int, results: int) -> None:
        return None


Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class RecordingPublisher:
    """A fake publisher for tests of services: it records what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, uuid.UUID, int | None]] = []

    def fan_out(self, run_id: uuid.UUID) -> None:
        self.sent.append(("fan_out", run_id, None))

    def match_slot(self, run_id: uuid.UUID, position: int) -> None:
        self.sent.append(("match_slot", run_id, position))

    def match_slots(self, run_id: uuid.UUID, positions: Sequence[int]) -> None:
        for position in positions:
            self.match_slot(run_id, position)

    def finalize(self, run_id: uuid.UUID) -> None:
        self.sent.append(("finalize", run_id, None))

    def deliver_webhook(self, delivery_id: uuid.UUID) -> None:
        self.sent.append(("deliver_webhook", delivery_id, None))

    def evaluate(self, evaluation_id: uuid.UUID) -> None:
        self.sent.append(("evaluate", evaluation_id, None))

    def together(self) -> AbstractContextManager[None]:
        return nullcontext()

    def ping(self) -> None:
        return None


class Resolver(Protocol):
    """Name resolution: the addresses `host` has, or an exception (`OSError`, `TimeoutError`)."""

    def __call__(self, host: str, port: int) -> Sequence[str]: ...


@dataclass(frozen=True)
class SendResult:
    """One HTTP attempt: the status code if a response came, else what went wrong (no body, ever)."""

    status_code: int | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Destination:
    """Where a webhook attempt goes: the URL's parts and the addresses checked for its host."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as sent in the request line
    addresses: tuple[str, ...] = ()

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = {"http": 80, "https": 443}[self.scheme]
        return host if self.port == default else f"{host}:{self.port}"


class WebhookSender(Protocol):
    """POSTs a body to one of the destination's checked addresses (it never resolves the host again)."""

    def post(self, destination: Destination, headers: Mapping[str, str], body: bytes) -> SendResult: ...
