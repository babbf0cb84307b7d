"""The services a process needs, built from one database and one publisher."""

from __future__ import annotations

from dataclasses import dataclass

from packmatch.sealing import SecretBox
from packmatch.services.accounts import DEFAULT_KEY_CACHE_SECONDS, Accounts
from packmatch.services.calibrations import Calibrations
from packmatch.services.configs import Configs
from packmatch.services.evaluations import Evaluations
from packmatch.services.matching_runs import MatchingRuns
from packmatch.services.pipeline import Pipeline
from packmatch.services.ports import Clock, Metrics, NoMetrics, Publisher, Resolver, WebhookSender, utcnow
from packmatch.services.reference.cache import DEFAULT_MAX_MB, ReferenceCache
from packmatch.services.reference.datasets import ReferenceData
from packmatch.services.reviews.results import ResultReviews
from packmatch.services.reviews.runs import RunReviews
from packmatch.services.run_batches import RunBatches
from packmatch.services.runs import Runs
from packmatch.services.webhooks.address_guard import SystemResolver, UrlPolicy
from packmatch.services.webhooks.deliveries import Deliveries, WebhookOptions
from packmatch.services.webhooks.http import HttpSender
from packmatch.services.webhooks.subscriptions import Webhooks
from packmatch.store.db import Database


@dataclass(frozen=True)
class Services:
    db: Database
    publisher: Publisher
    accounts: Accounts
    reference_data: ReferenceData
    configs: Configs
    calibrations: Calibrations
    evaluations: Evaluations
    runs: Runs
    run_batches: RunBatches
    matching_runs: MatchingRuns
    pipeline: Pipeline
    metrics: Metrics
    webhooks: Webhooks
    deliveries: Deliveries
    run_reviews: RunReviews
    result_reviews: ResultReviews

    @classmethod
    def build(
        cls,
        db: Database,
        publisher: Publisher,
        clock: Clock = utcnow,
        *,
        index_cache_mb: int = DEFAULT_MAX_MB,
        metrics: Metrics | None = None,
        webhooks: WebhookOptions | None = None,
        sender: WebhookSender | None = None,
        resolver: Resolver | None = None,
        key_cache_seconds: float = DEFAULT_KEY_CACHE_SECONDS,
    ) -> Services:
        metrics = metrics or NoMetrics()
        references = ReferenceCache.for_database(db, index_cache_mb)
        options = webhooks or WebhookOptions()
        policy = UrlPolicy(
            resolver or SystemResolver(options.resolve_timeout_seconds), options.allow_private_networks
        )
        secrets = SecretBox(options.secrets_keys)
        deliveries = Deliveries(
            db,
            publisher,
            sender or HttpSender(options.timeout_seconds),
            policy,
            schedule=options.retry_schedule_seconds,
            lease_seconds=options.lease_seconds,
            clock=clock,
            metrics=metrics,
            secrets=secrets,
        )
        runs = Runs(db, publisher, clock, metrics)
        return cls(
            db=db,
            publisher=publisher,
            accounts=Accounts(db, clock, key_cache_seconds=key_cache_seconds),
            reference_data=ReferenceData(db, clock),
            configs=Configs(db, clock),
            calibrations=Calibrations(db),
            evaluations=Evaluations(db, publisher, references, clock),
            runs=runs,
            run_batches=RunBatches(runs),
            matching_runs=MatchingRuns(db),
            pipeline=Pipeline(db, publisher, clock, references, metrics),
            metrics=metrics,
            webhooks=Webhooks(db, publisher, policy, clock, secrets),
            deliveries=deliveries,
            run_reviews=RunReviews(db, publisher, clock, metrics),
            result_reviews=ResultReviews(db, publisher, clock, metrics),
        )
