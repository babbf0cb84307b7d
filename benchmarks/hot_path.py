"""CPU of the pipeline's hot path in one process: accepting a run, executing its slots, logging.

    .venv/bin/python benchmarks/hot_path.py --runs 300                 # accept + slots, PostgreSQL
    .venv/bin/python benchmarks/hot_path.py --runs 300 --profile out.prof   # cProfile of the slots

The same 3-slot bundles as `benchmarks/pipeline.py` (smaller datasets: the matching is not what this
measures) accepted with `Runs.accept` and executed with `Pipeline.execute_slot` on a scratch
PostgreSQL database, with no HTTP and no queue; the publisher records messages in memory. It
reports CPU per run of this process and of its PostgreSQL backends, accept and slots apart, and
the engine alone. To compare two versions of the code in one sitting, run it alternately with each
on `PYTHONPATH` (benchmarks/README.md, "Issue 15, third step").
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import PostgresCpu, cpu_seconds, scratch_database
from pipeline import POSTGRES_URL, build_world

from packmatch.domain.models import InputRow
from packmatch.logging import configure_logging
from packmatch.services.container import Services
from packmatch.services.ports import RecordingPublisher
from packmatch.store.db import Database, migrate


def measure(services: Services, postgres: PostgresCpu, args: argparse.Namespace) -> None:
    world = build_world(services, args.rows, args.runs)
    documents = [{k: [InputRow.model_validate(r) for r in v] for k, v in b.items()} for b in world.bundles]
    accept = services.runs.accept
    for bundle in documents[:5]:  # warm-up: indexes built, statements compiled
        run = accept(world.organization_id, world.package_config_id, bundle)
        for position in range(len(run.slots)):
            services.pipeline.execute_slot(run.id, position)
    pids = postgres.backends()
    started_pg, started = cpu_seconds(pids), time.process_time()
    runs = [accept(world.organization_id, world.package_config_id, bundle) for bundle in documents]
    accepted_pg, accepted = cpu_seconds(pids), time.process_time()
    profile = cProfile.Profile() if args.profile else None
    if profile is not None:
        profile.enable()
    for run in runs:
        for position, slot in enumerate(run.slots):
            if slot.document_found:
                services.pipeline.execute_slot(run.id, position)
    if profile is not None:
        profile.disable()
        profile.dump_stats(args.profile)
    done_pg, done = cpu_seconds(pids), time.process_time()
    report("accept", len(runs), accepted - started, accepted_pg - started_pg)
    report("slots", len(runs), done - accepted, done_pg - accepted_pg)


def report(name: str, runs: int, cpu: float, postgres: float) -> None:
    print(f"{name:8} {1000 * cpu / runs:6.3f} ms/run  postgres {1000 * postgres / runs:6.3f} ms/run")


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--rows", type=int, default=2000, help="reference rows per dataset")
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the slots into this file")
    args = parser.parse_args()
    configure_logging("json", "INFO", open(os.devnull, "w"))  # noqa: SIM115 (open for the whole run)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with scratch_database(POSTGRES_URL) as url:
        migrate(url)
        db = Database.from_url(url)
        try:
            measure(Services.build(db, RecordingPublisher()), PostgresCpu(url), args)
        finally:
            db.dispose()


if __name__ == "__main__":
    main()
