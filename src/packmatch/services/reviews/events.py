"""What a recorded decision announces once its transaction has committed: a `review.recorded` log
line per decision (ids and outcome, never the notes), the decision counters, webhook messages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from packmatch.logging import get_logger
from packmatch.services.ports import Metrics, Publisher
from packmatch.services.webhooks.deliveries import publish_deliveries

log = get_logger(__name__)


@dataclass(frozen=True)
class Recorded:
    """One decision, as the log line names it (public ids)."""

    kind: str  # "run" or "result"
    outcome: str  # "approved" or "rejected"
    review_id: str
    subject: dict[str, str]


def announce(
    recorded: Sequence[Recorded], deliveries: Sequence[uuid.UUID], metrics: Metrics, publisher: Publisher
) -> None:
    counts: dict[tuple[str, str], int] = {}
    for item in recorded:
        log.info(
            "review.recorded", kind=item.kind, status=item.outcome, review_id=item.review_id, **item.subject
        )
        counts[(item.kind, item.outcome)] = counts.get((item.kind, item.outcome), 0) + 1
    for (kind, outcome), count in counts.items():
        metrics.review_recorded(kind, outcome, count)
    publish_deliveries(publisher, deliveries, source="review")
