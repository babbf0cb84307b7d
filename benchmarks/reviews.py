"""Review throughput on PostgreSQL through the API stack, against `GET` of a result in the same run.

    .venv/bin/python benchmarks/reviews.py                      # 300 single reviews, 6 bulks of 500
    .venv/bin/python benchmarks/reviews.py --singles 1000 --bulks 10

Creates a scratch database, loads a world with one 500-row run, then drives the app in process
(TestClient: the whole middleware stack, idempotency included, without a socket): `--singles`
`POST …/results/{id}/review` one after another, and `--bulks` `POST …/results/review` of 500
decisions each. The baseline is `GET …/results/{id}` of the same results (same auth, one read).
Times are wall clock on a shared machine: compare ratios, and rerun when the machine is loaded.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import PostgresCpu, cpu_seconds
from fastapi.testclient import TestClient
from tests.e2e.conftest import BOOKINGS, INVOICE_MAPPINGS, invoice

from packmatch.api.app import create_app
from packmatch.bootstrap import build_runtime
from packmatch.logging import configure_logging
from packmatch.settings import Settings
from packmatch.store.db import migrate
from packmatch.worker.runner import InProcessWorker

ADMIN = os.environ.get(
    "PACKMATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@/postgres?host=/var/run/postgresql"
)


def scratch_database() -> tuple[str, sa.Engine, str]:
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"packmatch_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(ADMIN).set(database=name).render_as_string(hide_password=False)
    migrate(url)
    return url, admin, name


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


CPU: dict[str, tuple[float, float]] = {}  # per phase: this process's CPU s (client and app), PostgreSQL's


def timed(phase: str, work: Callable[[], None], profile: str | None, pg: PostgresCpu) -> float:
    """Wall seconds of `work`; with `profile`, under cProfile, the stats saved per phase."""
    profiler = cProfile.Profile() if profile else None
    backends = pg.backends()
    cpu, pg_cpu = time.process_time(), cpu_seconds(backends)
    started = time.perf_counter()
    if profiler is None:
        work()
    else:
        profiler.runcall(work)
    seconds = time.perf_counter() - started
    CPU[phase] = (time.process_time() - cpu, cpu_seconds(backends) - pg_cpu)
    if profiler is not None:
        profiler.dump_stats(f"{profile}-{phase}.pstats")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--singles", type=int, default=300)
    parser.add_argument("--bulks", type=int, default=6)
    parser.add_argument("--profile", metavar="PREFIX", help="cProfile each phase into PREFIX-<phase>.pstats")
    args = parser.parse_args()
    configure_logging("json", "WARNING")  # one `review.recorded` line per decision would dominate
    url, admin, name = scratch_database()
    settings = Settings(database_url=url, broker_url="memory://", log_format="json", rate_limit_per_minute=0)  # type: ignore[call-arg]
    runtime = build_runtime(settings)
    worker = InProcessWorker(runtime.broker, threads=2)
    worker.start()
    try:
        # Entered once: one event loop for all requests, as a server has (a TestClient used
        # without `with` starts a thread and an event loop per request).
        client = TestClient(create_app(runtime.services, settings)).__enter__()
        key = runtime.services.accounts.create_key("bench", frozenset({"read", "write", "review"}), "bench")
        h = {"Authorization": f"Bearer {key}"}
        ref = client.post(
            "/v1/matching/reference-data", json={"name": "b", "rows": BOOKINGS}, headers=h
        ).json()
        mc = client.post(
            "/v1/matching/configs",
            json={"name": "m", "reference_data_id": ref["id"], "field_mappings": INVOICE_MAPPINGS},
            headers=h,
        ).json()
        slots = [{"document_type": "invoice", "matching_config_id": mc["id"], "presence": "required"}]
        pkg = client.post(
            "/v1/matching/packages/configs", json={"name": "p", "document_type_configs": slots}, headers=h
        ).json()
        rows = [invoice(f"doc_{i}") for i in range(500)]
        run = client.post(
            "/v1/matching/packages/runs?wait=30",
            json={"package_config_id": pkg["id"], "input_documents": {"invoice": rows}},
            headers=h,
        ).json()
        mr = run["document_results"][0]["matching_run_id"]
        results = client.get(f"/v1/matching/runs/{mr}/results?limit=1000", headers=h).json()["data"]
        ids = [r["id"] for r in results]
        n = args.singles

        def gets() -> None:
            for i in range(n):
                response = client.get(f"/v1/matching/runs/{mr}/results/{ids[i % 500]}", headers=h)
                assert response.status_code == 200, response.text

        def singles() -> None:
            for i in range(n):
                body = {"status": "approved" if i % 2 else "rejected", "notes": "bench"}
                response = client.post(
                    f"/v1/matching/runs/{mr}/results/{ids[i % 500]}/review", json=body, headers=h
                )
                assert response.status_code == 200, response.text

        def bulks() -> None:
            for b in range(args.bulks):
                decisions = [{"result_id": rid, "status": "approved" if b % 2 else "rejected"} for rid in ids]
                response = client.post(
                    f"/v1/matching/runs/{mr}/results/review", json={"decisions": decisions}, headers=h
                )
                assert response.status_code == 200, response.text

        pg = PostgresCpu(url)
        get_rate = rate(n, timed("get", gets, args.profile, pg))
        single_rate = rate(n, timed("single", singles, args.profile, pg))
        bulk_rate = rate(args.bulks * 500, timed("bulk", bulks, args.profile, pg))

        print(f"GET one result (baseline): {get_rate:8.0f} requests/s")
        print(
            f"single result reviews:     {single_rate:8.0f} reviews/s   ({single_rate / get_rate:.2f}× GET)"
        )
        print(f"bulk (500 per request):    {bulk_rate:8.0f} results/s   ({bulk_rate / get_rate:.2f}× GET)")
        for phase, count in (("get", n), ("single", n), ("bulk", args.bulks * 500)):
            app, postgres = (1000 * seconds / max(count, 1) for seconds in CPU[phase])
            print(f"CPU ms per {phase:6} item: benchmark process {app:6.3f}  postgres {postgres:6.3f}")
        print(f"load average: {os.getloadavg()}")
        client.__exit__(None, None, None)
    finally:
        worker.stop()
        runtime.close()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
