"""Alembic environment: runs migrations on the URL set by `packmatch.store.db.alembic_config`."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from packmatch.store.tables import metadata

config = context.config


def run_migrations_online() -> None:
    connectable = sa.create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=sa.NullPool)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()


run_migrations_online()
