"""The faults, each confined to this test's own database and Redis database number.

PostgreSQL and Redis on the test machines are shared with other test sessions, so neither server is
ever stopped: a restart is simulated at the scope this test owns (docs/reliability.md).
"""

from __future__ import annotations

import time

import redis
import sqlalchemy as sa

POSTGRES_OUTAGE_SECONDS = 3.0


def restart_redis_empty(redis_url: str) -> int:
    """Redis restarted without persistence, on one database number: FLUSHDB, then drop its clients.

    Every queued, delayed, unacked and dead-lettered message of the test database is gone, and
    every connection to it breaks as it would on a restart. Returns how many connections were cut.
    """
    client = redis.Redis.from_url(redis_url)
    try:
        db = client.connection_pool.connection_kwargs.get("db", 0)
        own = client.client_id()
        client.flushdb()
        cut = 0
        for entry in client.client_list():
            if int(entry["db"]) == db and int(entry["id"]) != own:
                cut += int(client.client_kill_filter(_id=entry["id"]))
        return cut
    finally:
        client.close()


def restart_postgres(database_url: str, outage: float = POSTGRES_OUTAGE_SECONDS) -> int:
    """PostgreSQL restarted, for one database: refuse new connections, end every open one, wait, reopen.

    The cluster is shared with other tests, so it is never stopped; from the application's side this
    looks the same as a restart (every connection dies mid-use; new ones fail until it is back).
    Returns how many connections were ended.
    """
    url = sa.make_url(database_url)
    name = url.database
    admin = sa.create_engine(
        url.set(database="postgres"), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            try:
                ended = conn.execute(
                    sa.text(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                ).scalar_one()
                time.sleep(outage)  # the outage itself, not a synchronisation
            finally:
                conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        return int(ended)
    finally:
        admin.dispose()


def delete_dataset_underneath(database_url: str, dataset_id: str) -> None:
    """Delete a reference dataset a matching config still uses, bypassing the foreign key.

    The API refuses this (409 while a config uses it); a bad migration or a hand-run SQL script is
    how it happens in real life. `session_replication_role = replica` skips FK triggers in this
    session only.
    """
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    uuid = dataset_id.removeprefix("ref_")
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            conn.execute(sa.text("DELETE FROM reference_rows WHERE dataset_id = :id"), {"id": uuid})
            conn.execute(sa.text("DELETE FROM reference_datasets WHERE id = :id"), {"id": uuid})
    finally:
        engine.dispose()
