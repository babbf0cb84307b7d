"""One typed settings object, read from the environment (and an optional `.env` file)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACKMATCH_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./packmatch.db"
    broker_url: str = "memory://"
    rate_limit_per_minute: int = Field(default=600, ge=0)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    # Pipeline tuning.
    slot_max_retries: int = Field(default=5, ge=0)
    slot_min_backoff_ms: int = Field(default=500, ge=1)
    slot_max_backoff_ms: int = Field(default=60_000, ge=1)
    slot_time_limit_ms: int = Field(default=300_000, ge=1000)
    stall_seconds: float = Field(default=60.0, gt=0)
    run_deadline_seconds: float = Field(default=3600.0, gt=0)
    reconcile_interval_seconds: float = Field(default=10.0, gt=0)

    # Worker defaults (overridden by `packmatch worker --processes/--threads`).
    worker_processes: int = Field(default=2, ge=1)
    worker_threads: int = Field(default=4, ge=1)
    queue_name: str = "packmatch"

    # HTTP.
    max_body_bytes: int = 10 * 1024 * 1024
    run_wait_poll_seconds: float = Field(default=0.05, gt=0)


def load_settings() -> Settings:
    return Settings()
