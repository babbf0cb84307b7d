"""history: deliveries found by run (retention deletes them with their run)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 20:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_webhook_deliveries_package_run_id", "webhook_deliveries", ["package_run_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_package_run_id", table_name="webhook_deliveries")
