"""A run accepted while its configs are being replaced or deleted works from one committed version
of each (issue 13): on PostgreSQL the accepting transaction share-locks what it reads."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from packmatch.bootstrap import Runtime
from packmatch.domain.ids import Kind, parse_id
from packmatch.store import configs as config_store
from packmatch.store import runs as run_store
from tests.e2e.conftest import BOOKINGS, INVOICE_MAPPINGS, Api, invoice

pytestmark = pytest.mark.postgres


def waiting_on_a_lock_or_done(api: Api, work: Future[Any]) -> None:
    """Until the concurrent request has finished, or is waiting on a row lock (PostgreSQL shows it)."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + 30
    while not work.done():
        with api.runtime.services.accounts.db.transaction() as conn:
            if conn.execute(query).scalar_one() > 0:
                return
        assert time.monotonic() < deadline, "the concurrent change neither finished nor waited"
        time.sleep(0.01)  # polling real state: no event crosses the database


def test_a_run_accepted_during_a_put_and_delete_sees_one_version(
    postgres_url: str,
    make_runtime: Callable[..., Runtime],
    start_api: Callable[[Runtime], Api],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = start_api(make_runtime(database_url=postgres_url))
    ref = api.create("/v1/matching/reference-data", {"name": "bookings", "rows": BOOKINGS})["id"]
    body = {"reference_data_id": ref, "field_mappings": INVOICE_MAPPINGS}
    first = api.create("/v1/matching/configs", {"name": "first", **body})["id"]
    second = api.create("/v1/matching/configs", {"name": "second", **body})["id"]
    slots = [{"document_type": "invoice", "matching_config_id": first, "presence": "required"}]
    pkg = api.create("/v1/matching/packages/configs", {"name": "v1", "document_type_configs": slots})
    moved = {"name": "v2", "document_type_configs": [{**slots[0], "matching_config_id": second}]}

    def replace_then_delete() -> list[int]:
        put = api.client.put(pkg["links"]["self"], json=moved, headers=api.headers)
        gone = api.client.delete(f"/v1/matching/configs/{first}", headers=api.headers)
        return [put.status_code, gone.status_code]

    read = config_store.get_matching_configs
    concurrent = ThreadPoolExecutor(1)
    changes: list[Future[list[int]]] = []

    def read_while_it_changes(*args: Any, **kwargs: Any) -> Any:
        # Between reading the package config and reading its matching configs, another client
        # moves the slot to `second` and deletes `first`; wait until that is done or blocked.
        if not changes:  # the first call is the accept's: the PUT starts only here
            changes.append(concurrent.submit(replace_then_delete))
            waiting_on_a_lock_or_done(api, changes[0])
        return read(*args, **kwargs)

    monkeypatch.setattr(config_store, "get_matching_configs", read_while_it_changes)
    response = api.run(pkg["id"], {"invoice": [invoice()]}, wait=0)
    assert changes[0].result(timeout=30) == [200, 200]
    concurrent.shutdown()
    assert response.status_code in (200, 202), response.text
    with api.runtime.services.accounts.db.transaction() as conn:
        snapshot = run_store.get_snapshot(conn, parse_id(Kind.PACKAGE_RUN, response.json()["id"]))
    assert snapshot is not None
    used = {slot.matching_config_id for slot in snapshot.package_config.slots}
    assert (snapshot.package_config.name, used) == ("v1", {parse_id(Kind.MATCHING_CONFIG, first)})
    assert set(snapshot.matching_configs) == used  # the version its slots name, not a missing one
