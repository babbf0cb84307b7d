"""list counts: runs and webhook deliveries counted as signed deltas (store/counts.py)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 06:40:00

The counts start from a recount of the existing rows (one row per group). Run this while no
writer runs, or follow it with `packmatch doctor counts --fix`: a run accepted between the recount
and the new code starting is not counted.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _org() -> sa.Column[object]:
    return sa.Column(
        "organization_id",
        sa.Uuid,
        sa.ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "run_counts",
        sa.Column("id", _ID, primary_key=True),
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
    )
    op.create_index(
        "ix_run_counts_org_config_status", "run_counts", ["organization_id", "package_config_id", "status"]
    )
    op.create_table(
        "delivery_counts",
        sa.Column("id", _ID, primary_key=True),
        _org(),
        sa.Column("webhook_id", sa.Uuid, sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_delivery_counts_webhook_status", "delivery_counts", ["webhook_id", "status"])
    run_group = "organization_id, package_config_id, status, review_decision"
    op.execute(
        f"INSERT INTO run_counts ({run_group}, n) "
        f"SELECT {run_group}, COUNT(*) FROM package_runs GROUP BY {run_group}"
    )
    delivery_group = "organization_id, webhook_id, status"
    op.execute(
        f"INSERT INTO delivery_counts ({delivery_group}, n) "
        f"SELECT {delivery_group}, COUNT(*) FROM webhook_deliveries GROUP BY {delivery_group}"
    )


def downgrade() -> None:
    op.drop_table("delivery_counts")
    op.drop_table("run_counts")
