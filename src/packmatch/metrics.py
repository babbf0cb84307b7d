"""Prometheus metrics: what packmatch counts as it works, and gauges of its state read at scrape time.

`PrometheusMetrics` is the real adapter of the services' `Metrics` port (services/ports.py); each
process builds one on a registry of its own (`metrics_registry`), so that tests can build many.

- `packmatch api` and `packmatch serve` expose theirs on `GET /metrics`, with `StateCollector`:
  runs in flight, the oldest running run's age and the queues' depths, read from the database and
  the broker when Prometheus scrapes (the same values on every API process: aggregate with `max`).
- `packmatch worker` runs its processes in prometheus_client's multiprocess mode (the values live in
  files under `PROMETHEUS_MULTIPROC_DIR`, which `packmatch worker` sets before anything imports
  prometheus_client) and serves them with Dramatiq's own message metrics on
  `PACKMATCH_WORKER_METRICS_PORT` (worker/metrics.py).

docs/operations.md lists every metric and the alerts built on them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from packmatch.domain.models import RunStatus, SlotStatus
from packmatch.domain.monitoring import QueueDepth, RunsInFlight
from packmatch.logging import get_logger

log = get_logger(__name__)

# Accept → final: milliseconds when idle, minutes under a backlog, an hour at the deadline.
RUN_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
SLOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def metrics_registry(*, process: bool = True) -> CollectorRegistry:
    """A registry of its own, with the process, platform and GC collectors unless `process=False`."""
    registry = CollectorRegistry(auto_describe=True)
    if process:
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
    return registry


class PrometheusMetrics:
    """The `Metrics` port on prometheus_client counters and histograms."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.runs_accepted = Counter("packmatch_runs_accepted", "Package runs accepted.", registry=registry)
        self.runs_finalized = Counter(
            "packmatch_runs_finalized", "Runs that reached a final status.", ["status"], registry=registry
        )
        self.run_duration = Histogram(
            "packmatch_run_duration_seconds",
            "Accept → final, per final status.",
            ["status"],
            buckets=RUN_BUCKETS,
            registry=registry,
        )
        self.slot_duration = Histogram(
            "packmatch_slot_duration_seconds",
            "Time to execute one document-type slot (match and record), per slot status.",
            ["status"],
            buckets=SLOT_BUCKETS,
            registry=registry,
        )
        self.slot_failures = Counter(
            "packmatch_slot_failures",
            "Failed slot attempts; will_retry=false ends the slot in error.",
            ["will_retry"],
            registry=registry,
        )
        self.reconciler_actions = Counter(
            "packmatch_reconciler_actions",
            "Runs the reconciler re-drove (fan_out, finalize) or ended (deadline_exceeded).",
            ["action"],
            registry=registry,
        )
        self.webhook_attempts = Counter(
            "packmatch_webhook_attempts",
            "Webhook delivery attempts: delivered, retrying (another attempt is scheduled) or failed.",
            ["outcome"],
            registry=registry,
        )
        self.webhook_duration = Histogram(
            "packmatch_webhook_attempt_duration_seconds",
            "Time from claiming a delivery to the receiver's answer (or the failure).",
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self.review_decisions = Counter(
            "packmatch_review_decisions",
            "Review decisions recorded, by kind (run, result) and outcome (approved, rejected).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.runs_pruned_total = Counter(
            "packmatch_runs_pruned",
            "Final package runs deleted by retention (with everything they own).",
            registry=registry,
        )
        self.results_pruned_total = Counter(
            "packmatch_results_pruned",
            "Match results deleted by retention with their runs.",
            registry=registry,
        )
        self.http_requests = Counter(
            "packmatch_http_requests",
            "HTTP requests answered, by route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.http_duration = Histogram(
            "packmatch_http_request_duration_seconds",
            "HTTP request duration, by route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=registry,
        )

    def run_accepted(self) -> None:
        self.runs_accepted.inc()

    def run_finalized(self, status: RunStatus, seconds: float) -> None:
        self.runs_finalized.labels(status.value).inc()
        self.run_duration.labels(status.value).observe(seconds)

    def slot_completed(self, status: SlotStatus, seconds: float) -> None:
        self.slot_duration.labels(status.value).observe(seconds)

    def slot_failed(self, *, will_retry: bool) -> None:
        self.slot_failures.labels("true" if will_retry else "false").inc()

    def reconciled(self, action: str) -> None:
        self.reconciler_actions.labels(action).inc()

    def webhook_attempt(self, outcome: str, seconds: float) -> None:
        self.webhook_attempts.labels(outcome).inc()
        self.webhook_duration.observe(seconds)

    def review_recorded(self, kind: str, outcome: str, count: int = 1) -> None:
        self.review_decisions.labels(kind, outcome).inc(count)

    def runs_pruned(self, runs: int, results: int) -> None:
        self.runs_pruned_total.inc(runs)
        self.results_pruned_total.inc(results)

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)


class StateCollector(Collector):
    """Gauges read when Prometheus scrapes; a probe that fails reports `packmatch_state_probe_up 0`."""

    def __init__(
        self,
        runs: Callable[[], RunsInFlight],
        queues: Callable[[], Sequence[QueueDepth]],
        clock: Callable[[], datetime],
        awaiting_review: Callable[[], int] | None = None,
    ) -> None:
        self._runs = runs
        self._queues = queues
        self._clock = clock
        self._awaiting_review = awaiting_review

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration, and no probe then

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "packmatch_state_probe_up", "1 if the probe read its source.", labels=["probe"]
        )
        probes = [("runs", self._collect_runs), ("queues", self._collect_queues)]
        if self._awaiting_review is not None:
            probes.append(("reviews", self._collect_reviews))
        for name, probe in probes:
            try:
                families = list(probe())
            except Exception as exc:
                log.warning("metrics.probe_failed", probe=name, error=type(exc).__name__)
                up.add_metric([name], 0)
                continue
            up.add_metric([name], 1)
            yield from families
        yield up

    def _collect_runs(self) -> Iterator[Metric]:
        runs = self._runs()
        yield GaugeMetricFamily("packmatch_runs_in_flight", "Package runs still running.", value=runs.count)
        oldest = 0.0
        if runs.oldest_created_at is not None:
            oldest = max(0.0, (self._clock() - runs.oldest_created_at).total_seconds())
        yield GaugeMetricFamily(
            "packmatch_oldest_running_run_age_seconds",
            "Age of the oldest run still running (0 when none is).",
            value=oldest,
        )

    def _collect_reviews(self) -> Iterator[Metric]:
        assert self._awaiting_review is not None
        yield GaugeMetricFamily(
            "packmatch_runs_awaiting_review",
            "Package runs with status review on which nobody has decided yet.",
            value=self._awaiting_review(),
        )

    def _collect_queues(self) -> Iterator[Metric]:
        depths = self._queues()
        labels = ["queue", "state"]
        messages = GaugeMetricFamily("packmatch_queue_messages", "Messages in a broker queue.", labels=labels)
        age = GaugeMetricFamily(
            "packmatch_queue_oldest_message_age_seconds",
            "Age of the oldest waiting message (0 when none waits; absent where the broker cannot tell).",
            labels=["queue"],
        )
        for depth in depths:
            for state, count in (("ready", depth.ready), ("delayed", depth.delayed), ("dead", depth.dead)):
                messages.add_metric([depth.queue, state], count)
            if depth.oldest_age_seconds is not None:
                age.add_metric([depth.queue], depth.oldest_age_seconds)
        yield messages
        yield age
