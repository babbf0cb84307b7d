"""Table definitions (SQLAlchemy Core). Alembic migrations in `migrations/` create the same schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, on PostgreSQL and SQLite alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        aware = value.astimezone(UTC)
        return aware.replace(tzinfo=None) if dialect.name == "sqlite" else aware

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Plain JSON (not JSONB) on PostgreSQL: it keeps key order, so rows and evidence read back in the
# order they were written. Nothing queries inside these documents.
JSONType = sa.JSON()

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.Uuid, primary_key=True)


def _org() -> sa.Column[Any]:
    return sa.Column(
        "organization_id",
        sa.Uuid,
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    )


def _review_columns(decision: str | None) -> list[sa.Column[Any]]:
    """The latest decision's columns; the reviewer's name is kept as it was when they decided."""
    columns = [] if decision is None else [sa.Column(decision, sa.String(16), nullable=True)]
    return [
        *columns,
        sa.Column("review_notes", sa.Text, nullable=True),
        sa.Column("reviewed_by_key_id", sa.Uuid, nullable=True),
        sa.Column("reviewed_by_name", sa.String(200), nullable=True),
        sa.Column("reviewed_at", UTCDateTime, nullable=True),
    ]


def _created() -> sa.Column[Any]:
    return sa.Column("created_at", UTCDateTime, nullable=False)


def _updated() -> sa.Column[Any]:
    return sa.Column("updated_at", UTCDateTime, nullable=False)


organizations = sa.Table(
    "organizations",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    _created(),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    _id(),
    _org(),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scopes", sa.String(100), nullable=False),
    _created(),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    # Who holds the key (`keys create --name`), shown in review decisions' `reviewed_by`.
    sa.Column("name", sa.String(200), nullable=True),
)

reference_datasets = sa.Table(
    "reference_datasets",
    metadata,
    _id(),
    _org(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("source_type", sa.String(8), nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False),
    sa.Column("columns", JSONType, nullable=False),
    _created(),
    _updated(),
    sa.Index("ix_reference_datasets_org_created", "organization_id", "created_at", "id"),
)

reference_rows = sa.Table(
    "reference_rows",
    metadata,
    sa.Column(
        "dataset_id",
        sa.Uuid,
        sa.ForeignKey("reference_datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("row_id", sa.String(200), nullable=False),
    sa.Column("data", JSONType, nullable=False),
    sa.UniqueConstraint("dataset_id", "row_id", name="uq_reference_rows_dataset_row_id"),
)

matching_configs = sa.Table(
    "matching_configs",
    metadata,
    _id(),
    _org(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column(
        "reference_data_id",
        sa.Uuid,
        sa.ForeignKey("reference_datasets.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    sa.Column("field_mappings", JSONType, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    _created(),
    _updated(),
    sa.Index("ix_matching_configs_org_created", "organization_id", "created_at", "id"),
)

package_configs = sa.Table(
    "package_configs",
    metadata,
    _id(),
    _org(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("pass_criteria", JSONType, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    _created(),
    _updated(),
    sa.Index("ix_package_configs_org_created", "organization_id", "created_at", "id"),
)

package_config_slots = sa.Table(
    "package_config_slots",
    metadata,
    sa.Column(
        "package_config_id",
        sa.Uuid,
        sa.ForeignKey("package_configs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("document_type", sa.String(64), nullable=False),
    sa.Column(
        "matching_config_id",
        sa.Uuid,
        sa.ForeignKey("matching_configs.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("presence", sa.String(16), nullable=False),
    sa.UniqueConstraint("package_config_id", "document_type", name="uq_package_config_slots_document_type"),
)

package_runs = sa.Table(
    "package_runs",
    metadata,
    _id(),
    _org(),
    sa.Column(
        "package_config_id",
        sa.Uuid,
        sa.ForeignKey("package_configs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("snapshot", JSONType, nullable=False),
    sa.Column("input_documents", JSONType, nullable=False),
    sa.Column("slots_pending", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    _created(),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Column("progress_at", UTCDateTime, nullable=False),
    sa.Column("fanned_out_at", UTCDateTime, nullable=True),
    # The latest review decision (SPEC §3 Reviews); every decision is kept in `run_reviews`.
    *_review_columns("review_decision"),
    sa.Index("ix_package_runs_org_created", "organization_id", "created_at", "id"),
    sa.Index(
        "ix_package_runs_org_config_status_created",
        "organization_id",
        "package_config_id",
        "status",
        "created_at",
    ),
    sa.Index("ix_package_runs_status_progress", "status", "progress_at"),
)

run_slots = sa.Table(
    "run_slots",
    metadata,
    sa.Column("run_id", sa.Uuid, sa.ForeignKey("package_runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("document_type", sa.String(64), nullable=False),
    sa.Column("matching_config_id", sa.Uuid, nullable=False),
    sa.Column("presence", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("document_found", sa.Boolean, nullable=False),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("matching_run_id", sa.Uuid, nullable=True),
    sa.Column("input_rows", JSONType, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.UniqueConstraint("run_id", "document_type", name="uq_run_slots_document_type"),
)

matching_runs = sa.Table(
    "matching_runs",
    metadata,
    _id(),
    _org(),
    sa.Column(
        "package_run_id",
        sa.Uuid,
        sa.ForeignKey("package_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("document_type", sa.String(64), nullable=False),
    sa.Column("matching_config_id", sa.Uuid, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("rows_processed", sa.Integer, nullable=False),
    sa.Column("rows_matched", sa.Integer, nullable=False),
    sa.Column("avg_confidence", sa.Float, nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    _created(),
    # One matching run per executed slot, whatever the number of deliveries (SPEC §6).
    sa.UniqueConstraint("package_run_id", "document_type", name="uq_matching_runs_slot"),
)

match_results = sa.Table(
    "match_results",
    metadata,
    _id(),
    sa.Column(
        "matching_run_id",
        sa.Uuid,
        sa.ForeignKey("matching_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("document_id", sa.String(200), nullable=False),
    sa.Column("extraction_row_id", sa.String(200), nullable=True),
    sa.Column("matched", sa.Boolean, nullable=False),
    sa.Column("matched_reference_row_id", sa.String(200), nullable=True),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("candidates", JSONType, nullable=False),
    _created(),
    # The latest review decision; every decision is kept in `result_reviews`.
    sa.Column("review_status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("review_reference_row_id", sa.String(200), nullable=True),
    *_review_columns(None),
    # Reference rows left out of this result's search by earlier rejections (SPEC §3 Feedback).
    sa.Column("excluded_by_review", JSONType, nullable=False, server_default=sa.text("'[]'")),
    # One result per input row (SPEC §6).
    sa.UniqueConstraint("matching_run_id", "position", name="uq_match_results_row"),
)

# One record per (API key, Idempotency-Key) (SPEC §2). The primary key is what makes concurrent
# duplicates safe: only one `in_progress` insert can win. Expired rows are deleted by
# `packmatch.services.idempotency.Idempotency.purge_expired` (indexed on `expires_at`).
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column(
        "api_key_id",
        sa.Uuid,
        sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("idempotency_key", sa.String(255), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("owner_request_id", sa.String(64), nullable=False),
    sa.Column("response_status", sa.Integer, nullable=True),
    sa.Column("response_headers", JSONType, nullable=True),
    sa.Column("response_body", sa.LargeBinary, nullable=True),
    _created(),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
)

# Webhooks (SPEC §3). The secret signs every delivery; it is stored sealed (Fernet, under
# PACKMATCH_SECRETS_KEY: packmatch/sealing.py) and never shown again.
webhooks = sa.Table(
    "webhooks",
    metadata,
    _id(),
    _org(),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("events", JSONType, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False),
    sa.Column("sealed_secret", sa.Text, nullable=False),
    _created(),
    _updated(),
    sa.Index("ix_webhooks_org_created", "organization_id", "created_at", "id"),
)

# The outbox: one row per (webhook, final run), inserted by the transaction that finalizes the run.
# `package_run_id` has no foreign key: a delivery keeps its payload (the run as it was when it
# ended) and its history after the run's package config, and so the run, is deleted.
# `lease_until` is set by the worker sending an attempt; `enqueued_at` by whoever last sent the
# attempt's message (so the relay re-sends only messages that look lost).
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    _id(),
    _org(),
    sa.Column(
        "webhook_id",
        sa.Uuid,
        sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("package_run_id", sa.Uuid, nullable=False, index=True),  # retention deletes by run
    # What the delivery announces: the run (its completion) or a review decision (`rev_…`).
    sa.Column("subject_id", sa.Uuid, nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_status_code", sa.Integer, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("enqueued_at", UTCDateTime, nullable=True),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.Column("payload", JSONType, nullable=False),
    _created(),
    _updated(),
    # One delivery per webhook and subject (a run's completion, however often a finalize message
    # arrives; one review decision).
    sa.UniqueConstraint("webhook_id", "subject_id", name="uq_webhook_deliveries_subject"),
    sa.Index("ix_webhook_deliveries_webhook_created", "webhook_id", "created_at", "id"),
    sa.Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
)


# Review decisions (SPEC §3 Reviews): every one is kept, newest first by `created_at` (= reviewed_at).
run_reviews = sa.Table(
    "run_reviews",
    metadata,
    _id(),
    _org(),
    sa.Column(
        "package_run_id",
        sa.Uuid,
        sa.ForeignKey("package_runs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("notes", sa.Text, nullable=True),
    sa.Column("reviewed_by_key_id", sa.Uuid, nullable=False),
    sa.Column("reviewed_by_name", sa.String(200), nullable=True),
    _created(),
    sa.Index("ix_run_reviews_run_created", "package_run_id", "created_at", "id"),
)

result_reviews = sa.Table(
    "result_reviews",
    metadata,
    _id(),
    _org(),
    sa.Column(
        "result_id",
        sa.Uuid,
        sa.ForeignKey("match_results.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reference_row_id", sa.String(200), nullable=True),
    sa.Column("notes", sa.Text, nullable=True),
    sa.Column("reviewed_by_key_id", sa.Uuid, nullable=False),
    sa.Column("reviewed_by_name", sa.String(200), nullable=True),
    _created(),
    sa.Index("ix_result_reviews_result_created", "result_id", "created_at", "id"),
)

# The rejected (document, reference row) pairs of a matching config: never candidates again for that
# document. One row per rejecting result, so that changing that result's decision lifts only its own.
review_exclusions = sa.Table(
    "review_exclusions",
    metadata,
    sa.Column("matching_config_id", sa.Uuid, primary_key=True),
    sa.Column("document_id", sa.String(200), primary_key=True),
    sa.Column("reference_row_id", sa.String(200), primary_key=True),
    sa.Column(
        "result_id",
        sa.Uuid,
        sa.ForeignKey("match_results.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
    ),
)


def _count_id() -> sa.Column[Any]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


# List totals (SPEC §2 `pagination.total`) at constant cost: every transaction that adds, moves or
# removes a run or a delivery inserts signed deltas here (never an UPDATE of a shared counter, so no
# hot row); the reconciler folds each group's deltas into one row. A total is the sum over the
# groups its filter selects (store/counts.py; `packmatch doctor counts` checks them against rows).
run_counts = sa.Table(
    "run_counts",
    metadata,
    _count_id(),
    _org(),
    sa.Column(
        "package_config_id",
        sa.Uuid,
        sa.ForeignKey("package_configs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("review_decision", sa.String(16), nullable=True),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Index("ix_run_counts_org_config_status", "organization_id", "package_config_id", "status"),
)

delivery_counts = sa.Table(
    "delivery_counts",
    metadata,
    _count_id(),
    _org(),
    sa.Column("webhook_id", sa.Uuid, sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("n", sa.BigInteger, nullable=False),
    sa.Index("ix_delivery_counts_webhook_status", "webhook_id", "status"),
)

# Evaluations of a matching config on labelled rows (docs/api.md, Evaluations). `config` is the
# matching config as it was when the evaluation was accepted; `rows` the labelled rows (JSON
# `{"values", "reference_row_id"}`), read once by the worker; `report` is set when it is done.
evaluations = sa.Table(
    "evaluations",
    metadata,
    _id(),
    _org(),
    sa.Column(
        "matching_config_id",
        sa.Uuid,
        sa.ForeignKey("matching_configs.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("matching_config_version", sa.Integer, nullable=False),
    sa.Column("config", JSONType, nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("progress_done", sa.Integer, nullable=False),
    sa.Column("progress_total", sa.Integer, nullable=False),
    sa.Column("rows", JSONType, nullable=False),
    sa.Column("report", JSONType, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    _created(),
    sa.Column("started_at", UTCDateTime, nullable=True),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Index("ix_evaluations_config_created", "matching_config_id", "created_at", "id"),
)
