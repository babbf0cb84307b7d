"""Repositories and guarded transitions on a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from packmatch.bootstrap import Runtime
from packmatch.domain.models import Candidate, RowMatch, RunStatus, SlotStatus
from packmatch.services.ports import utcnow
from packmatch.store import runs as store
from packmatch.store.db import alembic_config, migrate
from packmatch.store.pagination import PageRequest
from packmatch.store.tables import match_results, matching_runs
from tests.integration.conftest import World, build_world, invoice_row

pytestmark = pytest.mark.postgres


@pytest.fixture
def runtime(make_runtime: Callable[..., Runtime], postgres_url: str) -> Runtime:
    return make_runtime(database_url=postgres_url)


@pytest.fixture
def world(runtime: Runtime) -> World:
    return build_world(runtime.services)


def accept(runtime: Runtime, world: World, rows: int = 2) -> store.SlotJob:
    documents = {"invoice": [invoice_row(i) for i in range(rows)]}
    run = runtime.services.runs.accept(world.organization_id, world.package_config_id, documents)
    with runtime.services.db.transaction() as conn:
        job = store.slot_job(conn, run.id, 0, utcnow())
    assert job is not None
    return job


def completion(job: store.SlotJob) -> store.SlotCompletion:
    candidate = Candidate(reference_row_id="BK-0", confidence=0.9, evidence={})
    matches = [
        RowMatch(matched=True, matched_reference_row_id="BK-0", confidence=0.9, candidates=(candidate,))
    ]
    return store.SlotCompletion(SlotStatus.MATCHED, 0.9, matches * len(job.rows), {})


def count(runtime: Runtime, table: sa.Table) -> int:
    with runtime.services.db.transaction() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_migrate_is_idempotent_and_matches_the_tables(postgres_url: str) -> None:
    migrate(postgres_url)
    migrate(postgres_url)
    command.check(alembic_config(postgres_url))


def test_migrators_started_at_once_take_turns(postgres_server_url: str, tmp_path: Path) -> None:
    """Processes (Alembic's context is one per process): every one succeeds, the schema is right."""
    admin = sa.create_engine(postgres_server_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"packmatch_migrate_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    env = {**os.environ, "PACKMATCH_DATABASE_URL": url, "PACKMATCH_LOG_FORMAT": "json"}
    packmatch = str(Path(sys.executable).parent / "packmatch")
    try:
        migrators = [
            subprocess.Popen([packmatch, "migrate"], env=env, cwd=tmp_path, stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        outcomes = [(m.communicate(timeout=120)[1].decode()[-500:], m.returncode) for m in migrators]
        assert [code for _, code in outcomes] == [0, 0, 0, 0], outcomes
        command.check(alembic_config(url))
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_slot_completes_once_however_often_it_is_delivered(runtime: Runtime, world: World) -> None:
    job = accept(runtime, world)
    db = runtime.services.db
    with db.transaction() as conn:
        again = store.slot_job(conn, job.run_id, 0, utcnow())
    assert again is not None  # a second delivery before the first completed reads the same job
    with db.transaction() as conn:
        assert store.complete_slot(conn, job, completion(job), utcnow()) == 0
    with db.transaction() as conn:
        assert store.complete_slot(conn, again, completion(again), utcnow()) is None
        assert store.slot_job(conn, job.run_id, 0, utcnow()) is None  # a later one finds it resolved
    assert (count(runtime, matching_runs), count(runtime, match_results)) == (1, len(job.rows))
    run = runtime.services.runs.get(world.organization_id, job.run_id)
    assert run.slots[0].matching_run_id == job.matching_run_id


def test_a_matching_run_left_running_by_the_previous_release_is_completed(
    runtime: Runtime, world: World
) -> None:
    """Before this release a slot's matching run was created `running` when the slot started."""
    job = accept(runtime, world)
    with runtime.services.db.transaction() as conn:
        conn.execute(matching_runs.insert().values(**legacy_matching_run(job, world)))
        assert store.complete_slot(conn, job, completion(job), utcnow()) == 0
    with runtime.services.db.transaction() as conn:
        found = conn.execute(sa.select(matching_runs.c.id, matching_runs.c.status)).one()
    assert tuple(found) == (job.matching_run_id, "completed")
    assert count(runtime, match_results) == len(job.rows)


def legacy_matching_run(job: store.SlotJob, world: World) -> dict[str, object]:
    return {
        "id": uuid.uuid4(),
        "organization_id": world.organization_id,
        "package_run_id": job.run_id,
        "document_type": "invoice",
        "matching_config_id": job.slot.matching_config_id,
        "status": "running",
        "rows_processed": 0,
        "rows_matched": 0,
        "created_at": utcnow(),
    }


def test_concurrent_completions_of_one_slot_have_one_winner(runtime: Runtime, world: World) -> None:
    job = accept(runtime, world)
    barrier = threading.Barrier(4)
    outcomes: list[int | None] = []

    def complete() -> None:
        barrier.wait()
        with runtime.services.db.transaction() as conn:
            outcomes.append(store.complete_slot(conn, job, completion(job), utcnow()))

    threads = [threading.Thread(target=complete) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=lambda o: -1 if o is None else o) == [None, None, None, 0]


def test_a_run_is_finalized_exactly_once(runtime: Runtime, world: World) -> None:
    job = accept(runtime, world)
    with runtime.services.db.transaction() as conn:
        assert store.finalize_run(conn, job.run_id, RunStatus.PASSED, None, utcnow())
        assert not store.finalize_run(conn, job.run_id, RunStatus.ERROR, "late", utcnow())
    run = runtime.services.runs.get(world.organization_id, job.run_id)
    assert (run.status, run.error) == (RunStatus.PASSED, None)
    assert run.completed_at is not None


def test_one_matching_run_per_slot_is_enforced_by_the_database(runtime: Runtime, world: World) -> None:
    job = accept(runtime, world)
    with runtime.services.db.transaction() as conn:
        store.complete_slot(conn, job, completion(job), utcnow())
    with pytest.raises(sa.exc.IntegrityError), runtime.services.db.transaction() as conn:
        conn.execute(matching_runs.insert().values(**legacy_matching_run(job, world)))


def test_runs_list_newest_first_and_filters_by_status(runtime: Runtime, world: World) -> None:
    jobs = [accept(runtime, world, rows=1) for _ in range(3)]
    with runtime.services.db.transaction() as conn:
        store.finalize_run(conn, jobs[1].run_id, RunStatus.FAILED, None, utcnow())
        everything = store.list_runs(conn, world.organization_id, PageRequest(limit=10))
        failed = store.list_runs(conn, world.organization_id, PageRequest(), status=RunStatus.FAILED)
    assert [r.id for r in everything.items] == [j.run_id for j in reversed(jobs)]
    assert [r.id for r in failed.items] == [jobs[1].run_id]
    assert failed.total == 1


def test_another_organization_cannot_read_a_run(runtime: Runtime, world: World) -> None:
    job = accept(runtime, world)
    other = build_world(runtime.services, organization="globex")
    with runtime.services.db.transaction() as conn:
        assert store.get_run(conn, other.organization_id, job.run_id) is None
        assert store.get_run(conn, world.organization_id, job.run_id) is not None


def test_a_pooled_connection_the_server_closed_is_replaced_before_use(
    runtime: Runtime, postgres_url: str
) -> None:
    """No ping on every checkout (`store.db._check_out`), yet a server restart or a terminated
    backend never reaches the first statement of the next transaction."""
    db = runtime.services.db
    with db.transaction() as conn:
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    admin = sa.create_engine(postgres_url, poolclass=sa.NullPool)
    try:
        with admin.begin() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        with admin.connect() as conn:  # the backend is gone once the server stops listing it
            gone = sa.text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid")
            while conn.execute(gone, {"pid": pid}).scalar_one():
                conn.rollback()
    finally:
        admin.dispose()
    with db.transaction() as conn:
        assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != pid
