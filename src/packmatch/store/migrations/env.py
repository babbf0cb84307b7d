"""Alembic environment: runs migrations on the URL set by `packmatch.store.db.alembic_config`.

On PostgreSQL the migration transaction first takes an advisory lock, so that migrators started
at once (every API host's `ExecStartPre`, a Job racing a release step) run one after the other:
the later ones find the schema current and do nothing.
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa
from alembic import context

from packmatch.store.tables import metadata

config = context.config
MIGRATION_LOCK = zlib.crc32(b"packmatch.migrate")  # the reconciler's leader lock is another key


def run_migrations_online() -> None:
    connectable = sa.create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=sa.NullPool)
    with connectable.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()
    connectable.dispose()


run_migrations_online()
