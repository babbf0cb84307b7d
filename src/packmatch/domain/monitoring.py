"""What monitoring reads of the system's state: runs in flight and broker queue depths."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RunsInFlight:
    count: int
    oldest_created_at: datetime | None


@dataclass(frozen=True)
class QueueDepth:
    """One broker queue: `ready` (waiting), `delayed` (retries not yet due), `dead` (failed for good),
    and the age of its oldest waiting message where the broker can tell without consuming it."""

    queue: str
    ready: int
    delayed: int
    dead: int
    oldest_age_seconds: float | None
