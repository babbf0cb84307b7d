"""reviews: decisions on package runs and match results, their history, exclusions, key names

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 20:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _review_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("review_notes", sa.Text(), nullable=True),
        sa.Column("reviewed_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("reviewed_by_name", sa.String(length=200), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
    ]


def _history(name: str, parent: str, parent_table: str, decision: str) -> None:
    extra = (
        [sa.Column("reference_row_id", sa.String(length=200), nullable=True)] if decision == "status" else []
    )
    op.create_table(
        name,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column(parent, sa.Uuid(), nullable=False),
        sa.Column(decision, sa.String(length=16), nullable=False),
        *extra,
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("reviewed_by_key_id", sa.Uuid(), nullable=False),
        sa.Column("reviewed_by_name", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f(f"fk_{name}_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            [parent],
            [f"{parent_table}.id"],
            name=op.f(f"fk_{name}_{parent}_{parent_table}"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )
    short = "run" if parent == "package_run_id" else "result"
    with op.batch_alter_table(name, schema=None) as batch_op:
        batch_op.create_index(f"ix_{name}_{short}_created", [parent, "created_at", "id"], unique=False)


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name", sa.String(length=200), nullable=True))

    with op.batch_alter_table("package_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("review_decision", sa.String(length=16), nullable=True))
        for column in _review_columns():
            batch_op.add_column(column)

    with op.batch_alter_table("match_results", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("review_status", sa.String(length=16), server_default="pending", nullable=False)
        )
        batch_op.add_column(sa.Column("review_reference_row_id", sa.String(length=200), nullable=True))
        for column in _review_columns():
            batch_op.add_column(column)
        batch_op.add_column(
            sa.Column("excluded_by_review", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )

    # A delivery's subject: the run for the deliveries so far, a review decision for the new events.
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subject_id", sa.Uuid(), nullable=True))
    op.execute("UPDATE webhook_deliveries SET subject_id = package_run_id")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.alter_column("subject_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.drop_constraint("uq_webhook_deliveries_run", type_="unique")
        batch_op.create_unique_constraint("uq_webhook_deliveries_subject", ["webhook_id", "subject_id"])

    _history("run_reviews", "package_run_id", "package_runs", "decision")
    _history("result_reviews", "result_id", "match_results", "status")

    op.create_table(
        "review_exclusions",
        sa.Column("matching_config_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.String(length=200), nullable=False),
        sa.Column("reference_row_id", sa.String(length=200), nullable=False),
        sa.Column("result_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["result_id"],
            ["match_results.id"],
            name=op.f("fk_review_exclusions_result_id_match_results"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "matching_config_id",
            "document_id",
            "reference_row_id",
            "result_id",
            name=op.f("pk_review_exclusions"),
        ),
    )
    with op.batch_alter_table("review_exclusions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_exclusions_result_id"), ["result_id"], unique=False)


def downgrade() -> None:
    op.drop_table("review_exclusions")
    op.drop_table("result_reviews")
    op.drop_table("run_reviews")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_webhook_deliveries_subject", type_="unique")
        batch_op.create_unique_constraint("uq_webhook_deliveries_run", ["webhook_id", "package_run_id"])
        batch_op.drop_column("subject_id")
    with op.batch_alter_table("match_results", schema=None) as batch_op:
        for name in ("excluded_by_review", "reviewed_at", "reviewed_by_name", "reviewed_by_key_id"):
            batch_op.drop_column(name)
        for name in ("review_notes", "review_reference_row_id", "review_status"):
            batch_op.drop_column(name)
    with op.batch_alter_table("package_runs", schema=None) as batch_op:
        for name in (
            "reviewed_at",
            "reviewed_by_name",
            "reviewed_by_key_id",
            "review_notes",
            "review_decision",
        ):
            batch_op.drop_column(name)
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("name")
