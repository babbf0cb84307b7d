"""webhook secrets sealed at rest: `secret` (clear) → `sealed_secret` (Fernet, PACKMATCH_SECRETS_KEY)

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-04 01:00:00

Existing secrets are sealed under the key the settings name (the development key when none is set:
set PACKMATCH_SECRETS_KEY before migrating a database that matters). The downgrade opens them again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from packmatch.sealing import SecretBox
from packmatch.settings import Settings

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None

_webhooks = sa.table(
    "webhooks", sa.column("id"), sa.column("secret", sa.String), sa.column("sealed_secret", sa.Text)
)


def _box() -> SecretBox:
    return SecretBox(Settings().secrets_keys)


def upgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sealed_secret", sa.Text, nullable=True))
    box, conn = _box(), op.get_bind()
    for row in conn.execute(sa.select(_webhooks.c.id, _webhooks.c.secret)).all():
        sealed = box.seal(row.secret)
        conn.execute(_webhooks.update().where(_webhooks.c.id == row.id).values(sealed_secret=sealed))
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.alter_column("sealed_secret", existing_type=sa.Text, nullable=False)
        batch_op.drop_column("secret")


def downgrade() -> None:
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret", sa.String(length=255), nullable=True))
    box, conn = _box(), op.get_bind()
    for row in conn.execute(sa.select(_webhooks.c.id, _webhooks.c.sealed_secret)).all():
        clear = box.reveal(row.sealed_secret)
        conn.execute(_webhooks.update().where(_webhooks.c.id == row.id).values(secret=clear))
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.alter_column("secret", existing_type=sa.String(length=255), nullable=False)
        batch_op.drop_column("sealed_secret")
