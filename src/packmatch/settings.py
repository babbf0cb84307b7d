"""One typed settings object, read from the environment (and an optional `.env` file)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from cryptography.fernet import Fernet
from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _comma_separated(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
RetrySchedule = Annotated[
    tuple[Annotated[float, Field(gt=0)], ...], NoDecode, BeforeValidator(_comma_separated)
]
Networks = Annotated[tuple[Network, ...], NoDecode, BeforeValidator(_comma_separated)]
SecretsKeys = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_comma_separated)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACKMATCH_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./packmatch.db"
    broker_url: str = "memory://"
    # SQLite has one writer at a time, and a CSV or JSON import holds it for the whole file: another
    # write waits this long for it, then is answered 503 (decision 0019; PostgreSQL is unaffected).
    sqlite_busy_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    rate_limit_per_minute: int = Field(default=600, ge=0)
    # Requests with a missing, malformed or unknown key: a small budget per client address
    # (decision 0009); 0 disables it. The address is the TCP peer's, or, when the peer is one of
    # these proxies (CIDRs, comma-separated; none by default), the last untrusted hop of
    # `X-Forwarded-For` (docs/security.md).
    rate_limit_per_address_per_minute: int = Field(default=60, ge=0)
    trusted_proxies: Networks = ()
    # How long an authenticated key is answered from the process's memory: a key revoked in
    # another process is refused at most this many seconds later (0: every request looks it up).
    key_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    # Pipeline tuning.
    slot_max_retries: int = Field(default=5, ge=0)
    slot_min_backoff_ms: int = Field(default=500, ge=1)
    slot_max_backoff_ms: int = Field(default=60_000, ge=1)
    slot_time_limit_ms: int = Field(default=300_000, ge=1000)
    # Recovery after a lost message or a dead worker ≤ stall + interval + the work itself (< 60 s);
    # docs/reliability.md explains the numbers.
    stall_seconds: float = Field(default=30.0, gt=0)
    run_deadline_seconds: float = Field(default=3600.0, gt=0)
    reconcile_interval_seconds: float = Field(default=5.0, gt=0)

    # Retention (docs/operations.md, "Retention and archiving"): final runs created more than this
    # many days ago are deleted with everything they own (None: keep everything). Per organization
    # name a JSON object overrides it ({"acme": 30, "audit": 0}; 0 keeps everything). Runs awaiting
    # review (verdict `review`) stay unless `retention_include_awaiting_review`. The worker's
    # reconciler prunes at most `retention_pass_seconds` per tick, every `retention_interval_seconds`.
    retention_days: int | None = Field(default=None, ge=1, le=36_500)
    retention_days_by_organization: dict[str, Annotated[int, Field(ge=0, le=36_500)]] = Field(
        default_factory=dict
    )
    retention_include_awaiting_review: bool = False
    retention_interval_seconds: float = Field(default=300.0, gt=0)
    retention_pass_seconds: float = Field(default=2.0, gt=0)
    retention_batch: int = Field(default=500, ge=1, le=10_000)
    # A prune (the worker's and `packmatch prune`'s) deletes at most this many runs a minute (None: no
    # pause between batches); `packmatch prune --max-rate` overrides it.
    retention_max_runs_per_minute: int | None = Field(default=None, ge=1, le=100_000_000)

    # Worker defaults (overridden by `packmatch worker --processes/--threads`).
    worker_processes: int = Field(default=2, ge=1)
    worker_threads: int = Field(default=4, ge=1)
    queue_name: str = "packmatch"
    # Webhook deliveries have a queue of their own (default `<queue_name>_webhooks`), so a slow
    # receiver never holds up matching: `packmatch worker --queues slots|webhooks|all`.
    webhook_queue_name: str = ""

    # HTTP.
    max_body_bytes: int = 10 * 1024 * 1024
    run_wait_poll_seconds: float = Field(default=0.05, gt=0)

    # Redis broker: a dead worker's unacked messages return once its heartbeat is older than the
    # timeout and a maintenance pass (a chance per broker command, out of 1,000,000) hits the queue.
    redis_heartbeat_timeout_ms: int = Field(default=15_000, ge=1000)
    redis_maintenance_chance: int = Field(default=100_000, ge=0, le=1_000_000)
    # Extra Dramatiq middleware for `packmatch worker`: comma-separated `module:Class` paths,
    # each built without arguments and added after packmatch's own (docs/reliability.md).
    worker_middleware: str = ""

    # `packmatch worker` serves Dramatiq's and packmatch's metrics of all its processes here;
    # port 0 turns the metrics off. Bind 0.0.0.0 where Prometheus scrapes from outside the host.
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9191, ge=0, le=65535)

    # Matching: each worker process keeps the reference indexes it built (shared by its threads)
    # up to this many MB, evicting the least recently used; 0 keeps none.
    index_cache_mb: int = Field(default=1024, ge=0)

    # Webhooks (docs/webhooks.md): a failed attempt is retried after each of these delays in turn,
    # then the delivery is failed; an attempt succeeds on a 2xx within the timeout. A worker holds
    # an attempt for the lease; past it (the worker died) the reconciler's relay sends it again.
    webhook_retry_schedule_seconds: RetrySchedule = Field(default=(60.0, 300.0, 1800.0, 14400.0))
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_lease_seconds: float = Field(default=30.0, gt=0)
    webhook_resolve_timeout_seconds: float = Field(default=2.0, gt=0)
    # Private, loopback, CGNAT, multicast and reserved addresses a webhook may target (CIDRs,
    # comma-separated). Link-local and cloud metadata addresses are refused whatever this says.
    webhook_allow_private_networks: Networks = ()
    # Webhook secrets are stored sealed (Fernet) with this key; old keys still open what they
    # sealed, until `packmatch secrets reseal` (docs/security.md). Unset: a public development key.
    secrets_key: str | None = None
    secrets_old_keys: SecretsKeys = ()

    @property
    def secrets_keys(self) -> tuple[str, ...]:
        """The current key first, then the old ones; empty without a configured key."""
        return (self.secrets_key, *self.secrets_old_keys) if self.secrets_key else ()

    @model_validator(mode="after")
    def _secrets_keys_are_fernet_keys(self) -> Settings:
        if self.secrets_old_keys and not self.secrets_key:
            raise ValueError("PACKMATCH_SECRETS_OLD_KEYS needs PACKMATCH_SECRETS_KEY (the current key)")
        for key in self.secrets_keys:
            try:
                Fernet(key)
            except (ValueError, TypeError):
                raise ValueError(
                    "PACKMATCH_SECRETS_KEY and PACKMATCH_SECRETS_OLD_KEYS hold Fernet keys: 32 url-safe "
                    "base64-encoded bytes (python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())')"
                ) from None
        return self

    @property
    def webhook_queue(self) -> str:
        return self.webhook_queue_name or f"{self.queue_name}_webhooks"

    @model_validator(mode="after")
    def _lease_outlasts_an_attempt(self) -> Settings:
        # A shorter lease would let a second worker start an attempt the first is still making.
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError("PACKMATCH_WEBHOOK_LEASE_SECONDS must exceed PACKMATCH_WEBHOOK_TIMEOUT_SECONDS")
        return self


def load_settings() -> Settings:
    return Settings()
