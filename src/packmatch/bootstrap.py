"""Composition: settings → database → broker → actors → publisher → services.

Nothing is built at import time; each process calls `build_runtime` once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dramatiq

from packmatch.domain.monitoring import QueueDepth, RunsInFlight
from packmatch.metrics import PrometheusMetrics, StateCollector, metrics_registry
from packmatch.services.container import Services
from packmatch.services.history.retention import Retention, RetentionJob, RetentionPolicy
from packmatch.services.ports import utcnow
from packmatch.services.reconciler import Reconciler
from packmatch.services.webhooks.deliveries import WebhookOptions
from packmatch.settings import Settings
from packmatch.store import stats
from packmatch.store.db import Database, migrate
from packmatch.worker.actors import DramatiqPublisher, PipelineActors, declare_actors
from packmatch.worker.broker import build_broker
from packmatch.worker.queues import oldest_unacknowledged_sent, queue_depth
from packmatch.worker.reconciler import ReconcilerThread, leader_lock
from packmatch.worker.runner import multiprocess_metrics


@dataclass
class Runtime:
    settings: Settings
    broker: dramatiq.Broker
    actors: PipelineActors
    publisher: DramatiqPublisher
    metrics: PrometheusMetrics
    _services: Services | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _state_exposed: bool = False
    _retention_job: RetentionJob | None = None

    @property
    def services(self) -> Services:
        """Built on first use, so a forked or spawned worker process opens its own connections."""
        if self._services is None:
            with self._lock:
                if self._services is None:
                    db = Database.from_url(
                        self.settings.database_url,
                        sqlite_busy_timeout=self.settings.sqlite_busy_timeout_seconds,
                    )
                    cache_mb = self.settings.index_cache_mb
                    self._services = Services.build(
                        db,
                        self.publisher,
                        index_cache_mb=cache_mb,
                        metrics=self.metrics,
                        webhooks=webhook_options(self.settings),
                        key_cache_seconds=self.settings.key_cache_seconds,
                    )
        return self._services

    def api_metrics(self) -> PrometheusMetrics:
        """The metrics, plus the gauges an API scrape reads from the database and the broker."""
        with self._lock:
            if not self._state_exposed:
                self.metrics.registry.register(
                    StateCollector(self._runs_in_flight, self._queues, utcnow, self._awaiting_review)
                )
                self._state_exposed = True
        return self.metrics

    def _runs_in_flight(self) -> RunsInFlight:
        with self.services.db.transaction() as conn:
            return stats.runs_in_flight(conn)

    def _awaiting_review(self) -> int:
        from packmatch.store.reviews import runs_awaiting_review

        with self.services.db.transaction() as conn:
            return runs_awaiting_review(conn)

    def _queues(self) -> list[QueueDepth]:
        names = (self.settings.queue_name, self.settings.webhook_queue)
        return [queue_depth(self.broker, name) for name in names]

    def _oldest_waiting(self) -> datetime | None:
        """When the oldest unfinished message of the slot queue was sent, waiting in the queue or
        fetched by a worker that has not started it yet (Redis prefetches); None if there is none,
        or if the broker cannot tell (RabbitMQ: stalls are then counted from the last progress alone)."""
        sent = oldest_unacknowledged_sent(self.broker, self.settings.queue_name)
        return None if sent is None else datetime.fromtimestamp(sent, UTC)

    def reconciler(self) -> Reconciler:
        services = self.services
        return Reconciler(
            services.db,
            self.publisher,
            services.pipeline,
            stall_seconds=self.settings.stall_seconds,
            deadline_seconds=self.settings.run_deadline_seconds,
            deliveries=services.deliveries,
            retention=self.retention_job(),
            oldest_waiting=self._oldest_waiting,
            evaluations=services.evaluations,
        )

    def retention_job(self) -> RetentionJob:
        """One per process (it remembers when it last finished), built on first use."""
        db = self.services.db  # outside the lock: building the services takes it
        with self._lock:
            if self._retention_job is None:
                settings = self.settings
                retention = Retention(db, retention_policy(settings), metrics=self.metrics)
                self._retention_job = RetentionJob(
                    retention,
                    interval_seconds=settings.retention_interval_seconds,
                    budget_seconds=settings.retention_pass_seconds,
                )
            return self._retention_job

    def reconciler_thread(self) -> ReconcilerThread:
        lock = leader_lock(self.services.db.engine)
        return ReconcilerThread(self.reconciler, lock, self.settings.reconcile_interval_seconds)

    def close(self) -> None:
        if self._services is not None:
            self._services.db.dispose()
        self.broker.close()


def retention_policy(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        default_days=settings.retention_days,
        by_organization=settings.retention_days_by_organization,
        include_awaiting_review=settings.retention_include_awaiting_review,
        batch=settings.retention_batch,
        max_runs_per_minute=settings.retention_max_runs_per_minute,
    )


def webhook_options(settings: Settings) -> WebhookOptions:
    return WebhookOptions(
        retry_schedule_seconds=settings.webhook_retry_schedule_seconds,
        timeout_seconds=settings.webhook_timeout_seconds,
        lease_seconds=settings.webhook_lease_seconds,
        resolve_timeout_seconds=settings.webhook_resolve_timeout_seconds,
        allow_private_networks=settings.webhook_allow_private_networks,
        secrets_keys=settings.secrets_keys,
    )


def build_runtime(settings: Settings, *, migrate_first: bool = False) -> Runtime:
    if migrate_first:
        migrate(settings.database_url)
    broker = build_broker(settings)
    holder: list[Runtime] = []
    actors = declare_actors(broker, settings, lambda: holder[0].services)
    # In `packmatch worker` processes the values live in prometheus_client's multiprocess files and
    # are served by the metrics fork (worker/metrics.py): no process collectors of their own.
    metrics = PrometheusMetrics(metrics_registry(process=not multiprocess_metrics()))
    runtime = Runtime(settings, broker, actors, DramatiqPublisher(broker, actors), metrics)
    holder.append(runtime)
    return runtime
