"""`packmatch organizations delete NAME [--force]` (decision 0018): refused, with what it owns
listed, unless forced; forced, it deletes everything the organization owns and nothing else."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from packmatch.bootstrap import Runtime
from packmatch.store.tables import metadata
from tests.e2e.conftest import Api, invoice

pytestmark = pytest.mark.postgres

PACKMATCH = str(Path(sys.executable).parent / "packmatch")


def packmatch(database_url: str, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PACKMATCH_DATABASE_URL": database_url, "PACKMATCH_LOG_FORMAT": "json"}
    return subprocess.run([PACKMATCH, *argv], env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def acme(
    postgres_url: str,
    make_runtime: Callable[..., Runtime],
    start_api: Callable[[Runtime], Api],
) -> Api:
    """acme with a world, a final run, a webhook and a delivery; globex with a world of its own.

    Keys are not cached (`key_cache_seconds=0`): the CLI deletes in another process, whose effect a
    cached key would only show within the cache's time (docs/api.md)."""
    api = start_api(make_runtime(database_url=postgres_url, key_cache_seconds=0))
    config = api.shipment_world(("required",))
    api.create("/v1/webhooks", {"url": "https://erp.example.com/hook", "events": ["package_run.completed"]})
    assert api.run(config, {"invoice": [invoice()]}).json()["status"] == "passed"
    api.other_organization("globex").shipment_world(("required",))
    return api


def rows_per_table(api: Api) -> dict[str, int]:
    with api.runtime.services.accounts.db.transaction() as conn:
        return {
            t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in metadata.sorted_tables
        }


def test_deleting_an_organization_that_owns_things_is_refused_with_a_list(
    acme: Api, postgres_url: str
) -> None:
    before = rows_per_table(acme)
    done = packmatch(postgres_url, "organizations", "delete", "acme")
    err = done.stderr
    assert done.returncode == 1
    assert "organization 'acme' owns 1 runs, 1 webhooks, 1 package configs" in err
    assert "1 reference datasets, 1 api keys; `--force` deletes it with all of them" in err
    assert rows_per_table(acme) == before


def test_force_deletes_everything_it_owns_and_nothing_of_the_others(acme: Api, postgres_url: str) -> None:
    before = rows_per_table(acme)
    done = packmatch(postgres_url, "organizations", "delete", "acme", "--force")
    out = done.stdout
    after = rows_per_table(acme)
    assert done.returncode == 0, done.stderr
    assert out.startswith("deleted organization 'acme' with 1 runs, 1 webhooks")
    assert after["organizations"] == 1
    for table in ("package_runs", "matching_runs", "match_results", "webhooks", "webhook_deliveries"):
        assert before[table] > 0
        assert after[table] == 0, table
    for table in ("reference_datasets", "matching_configs", "package_configs", "api_keys"):
        assert after[table] == before[table] - 1, table  # globex's one stays
    assert after["reference_rows"] == before["reference_rows"] // 2
    assert acme.get("/v1/matching/configs").status_code == 401  # acme's key went with it


def test_even_a_key_alone_needs_force_and_a_deleted_organization_is_gone(postgres_url: str) -> None:
    assert packmatch(postgres_url, "keys", "create", "--organization", "initech").returncode == 0
    refused = packmatch(postgres_url, "organizations", "delete", "initech")
    assert (refused.returncode, "owns 1 api keys" in refused.stderr) == (1, True)
    forced = packmatch(postgres_url, "organizations", "delete", "initech", "--force")
    assert forced.stdout == "deleted organization 'initech' with 1 api keys\n"
    assert packmatch(postgres_url, "keys", "create", "--organization", "empty").returncode == 0
    packmatch(postgres_url, "organizations", "delete", "empty", "--force")
    gone = packmatch(postgres_url, "organizations", "delete", "empty")
    assert (gone.returncode, gone.stderr) == (1, "packmatch: no organization named 'empty'\n")
