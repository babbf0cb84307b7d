"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 08:38:35.741828
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "organizations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organizations")),
        sa.UniqueConstraint("name", name=op.f("uq_organizations_name")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_api_keys_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_table(
        "package_configs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "pass_criteria",
            sa.JSON(),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_package_configs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package_configs")),
    )
    with op.batch_alter_table("package_configs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_package_configs_org_created", ["organization_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "reference_datasets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source_type", sa.String(length=8), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column(
            "columns",
            sa.JSON(),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_reference_datasets_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_datasets")),
    )
    with op.batch_alter_table("reference_datasets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reference_datasets_org_created",
            ["organization_id", "created_at", "id"],
            unique=False,
        )

    op.create_table(
        "matching_configs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("reference_data_id", sa.Uuid(), nullable=False),
        sa.Column(
            "field_mappings",
            sa.JSON(),
            nullable=False,
        ),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_matching_configs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reference_data_id"],
            ["reference_datasets.id"],
            name=op.f("fk_matching_configs_reference_data_id_reference_datasets"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matching_configs")),
    )
    with op.batch_alter_table("matching_configs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_matching_configs_org_created", ["organization_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "package_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("package_config_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "snapshot",
            sa.JSON(),
            nullable=False,
        ),
        sa.Column(
            "input_documents",
            sa.JSON(),
            nullable=False,
        ),
        sa.Column("slots_pending", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("progress_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fanned_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_package_runs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["package_config_id"],
            ["package_configs.id"],
            name=op.f("fk_package_runs_package_config_id_package_configs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_package_runs")),
    )
    with op.batch_alter_table("package_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_package_runs_org_config_status_created",
            ["organization_id", "package_config_id", "status", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_package_runs_org_created", ["organization_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_package_runs_status_progress", ["status", "progress_at"], unique=False)

    op.create_table(
        "reference_rows",
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("row_id", sa.String(length=200), nullable=False),
        sa.Column(
            "data",
            sa.JSON(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["reference_datasets.id"],
            name=op.f("fk_reference_rows_dataset_id_reference_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "position", name=op.f("pk_reference_rows")),
        sa.UniqueConstraint("dataset_id", "row_id", name="uq_reference_rows_dataset_row_id"),
    )
    op.create_table(
        "matching_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("package_run_id", sa.Uuid(), nullable=False),
        sa.Column("document_type", sa.String(length=64), nullable=False),
        sa.Column("matching_config_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows_processed", sa.Integer(), nullable=False),
        sa.Column("rows_matched", sa.Integer(), nullable=False),
        sa.Column("avg_confidence", sa.Float(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_matching_runs_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["package_run_id"],
            ["package_runs.id"],
            name=op.f("fk_matching_runs_package_run_id_package_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matching_runs")),
        sa.UniqueConstraint("package_run_id", "document_type", name="uq_matching_runs_slot"),
    )
    op.create_table(
        "package_config_slots",
        sa.Column("package_config_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("document_type", sa.String(length=64), nullable=False),
        sa.Column("matching_config_id", sa.Uuid(), nullable=False),
        sa.Column("presence", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["matching_config_id"],
            ["matching_configs.id"],
            name=op.f("fk_package_config_slots_matching_config_id_matching_configs"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["package_config_id"],
            ["package_configs.id"],
            name=op.f("fk_package_config_slots_package_config_id_package_configs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("package_config_id", "position", name=op.f("pk_package_config_slots")),
        sa.UniqueConstraint(
            "package_config_id", "document_type", name="uq_package_config_slots_document_type"
        ),
    )
    with op.batch_alter_table("package_config_slots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_package_config_slots_matching_config_id"),
            ["matching_config_id"],
            unique=False,
        )

    op.create_table(
        "run_slots",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("document_type", sa.String(length=64), nullable=False),
        sa.Column("matching_config_id", sa.Uuid(), nullable=False),
        sa.Column("presence", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("document_found", sa.Boolean(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("matching_run_id", sa.Uuid(), nullable=True),
        sa.Column(
            "input_rows",
            sa.JSON(),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["package_runs.id"],
            name=op.f("fk_run_slots_run_id_package_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "position", name=op.f("pk_run_slots")),
        sa.UniqueConstraint("run_id", "document_type", name="uq_run_slots_document_type"),
    )
    op.create_table(
        "match_results",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("matching_run_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.String(length=200), nullable=False),
        sa.Column("extraction_row_id", sa.String(length=200), nullable=True),
        sa.Column("matched", sa.Boolean(), nullable=False),
        sa.Column("matched_reference_row_id", sa.String(length=200), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column(
            "candidates",
            sa.JSON(),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["matching_run_id"],
            ["matching_runs.id"],
            name=op.f("fk_match_results_matching_run_id_matching_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_match_results")),
        sa.UniqueConstraint("matching_run_id", "position", name="uq_match_results_row"),
    )


def downgrade() -> None:

    op.drop_table("match_results")
    op.drop_table("run_slots")
    with op.batch_alter_table("package_config_slots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_package_config_slots_matching_config_id"))

    op.drop_table("package_config_slots")
    op.drop_table("matching_runs")
    op.drop_table("reference_rows")
    with op.batch_alter_table("package_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_package_runs_status_progress")
        batch_op.drop_index("ix_package_runs_org_created")
        batch_op.drop_index("ix_package_runs_org_config_status_created")

    op.drop_table("package_runs")
    with op.batch_alter_table("matching_configs", schema=None) as batch_op:
        batch_op.drop_index("ix_matching_configs_org_created")

    op.drop_table("matching_configs")
    with op.batch_alter_table("reference_datasets", schema=None) as batch_op:
        batch_op.drop_index("ix_reference_datasets_org_created")

    op.drop_table("reference_datasets")
    with op.batch_alter_table("package_configs", schema=None) as batch_op:
        batch_op.drop_index("ix_package_configs_org_created")

    op.drop_table("package_configs")
    op.drop_table("api_keys")
    op.drop_table("organizations")
