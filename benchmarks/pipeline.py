"""Benchmark the queued pipeline end to end against the same bundles scored inline.

    .venv/bin/python benchmarks/pipeline.py                       # closed loop, then 50 runs/s open loop
    .venv/bin/python benchmarks/pipeline.py --rates 25 50 100 --duration 30 --workers 2 --threads 4

Starts a private Redis, real `packmatch api` and `packmatch worker` processes on a scratch
PostgreSQL database, loads three 10k-row datasets and a 3-slot package config (invoice, delivery
note, contract; one input row each), then:

- **closed loop**: `--concurrency` clients submit bundles back to back for `--duration` seconds;
- **open loop**: bundles submitted at a fixed rate (each of `--rates`) for `--duration` seconds;
- **batches**: `--batch-clients` clients POST `--batch-size` runs per `…/runs/batch` request, back to
  back, for `--duration` seconds;
- **big bundles**: `--big-runs` runs of one slot with `--big-rows` input rows each against a
  `--big-size`-row dataset, one after another: input rows matched and written per second end to
  end, CPU per input row, then every result read back through `GET …/results?limit=1000`;
- **inline**: the same bundles accepted, matched and finalized by the same services in this process
  with no HTTP and no queue (the synchronous baseline), and the engine alone; half of it before
  the queued phases and half after, since the machine's speed drifts (the report shows by how much).

For each it reports runs/s (finalized per second of the submission window), accept→final latency
from the runs' own `created_at`/`completed_at` (p50/p95/p99), and CPU seconds per run summed over
the API, the workers, Redis and the PostgreSQL backends of the benchmark's database (the client is
not counted). The CPU ratio compares the queued pipeline with the inline baseline of the same run.
`--profile DIR` records the API and worker processes with py-spy (GIL holders only, i.e. CPU) during
the closed loop, as raw collapsed stacks.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import Cluster, PostgresCpu, cpu_seconds, profiled, scratch_database, wait_for
from data import bookings, invoices
from engine import AMOUNT, DAY, KEY, NAME, Mapping

from packmatch.client import Client as PackmatchClient
from packmatch.client import Retry, models
from packmatch.domain.models import FieldMapping, InputRow, PassCriteria, Presence, Slot
from packmatch.engine import Matcher
from packmatch.engine.index import ReferenceIndex
from packmatch.logging import configure_logging
from packmatch.services.configs import MatchingConfigInput, PackageConfigInput
from packmatch.services.container import Services
from packmatch.services.ports import RecordingPublisher
from packmatch.store.db import Database, migrate
from packmatch.store.tables import package_runs

POSTGRES_URL = os.environ.get(
    "PACKMATCH_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

# document type → (presence, mappings with weights, dataset seed)
SLOTS: dict[str, tuple[Presence, list[tuple[Mapping, float]], int]] = {
    "invoice": (Presence.REQUIRED, [(KEY, 0.5), (NAME, 0.2), (AMOUNT, 0.2), (DAY, 0.1)], 1),
    "delivery_note": (Presence.EXPECTED, [(KEY, 0.6), (DAY, 0.4)], 2),
    "contract": (Presence.OPTIONAL, [(KEY, 0.5), (NAME, 0.5)], 3),
}


@dataclass
class World:
    key: str
    organization_id: uuid.UUID
    package_config_id: uuid.UUID
    bundles: list[dict[str, list[dict[str, Any]]]]


def build_world(services: Services, rows: int, bundles: int) -> World:
    key = services.accounts.create_key("bench", frozenset({"read", "write"}))
    org = services.accounts.authenticate(key).organization_id
    slots, inputs = [], {}
    for document_type, (presence, mappings, seed) in SLOTS.items():
        reference = bookings(rows, seed)
        dataset = services.reference_data.create(
            org, f"{document_type} reference", [{"id": r.id, **r.values} for r in reference]
        )
        fields = [
            FieldMapping(source=s, target=t, strategy=strategy, weight=w, options=o)
            for (s, t, strategy, o), w in mappings
        ]
        matching = services.configs.create_matching(
            org, MatchingConfigInput(document_type, dataset.id, fields, threshold=0.8)
        )
        slots.append(Slot(document_type=document_type, matching_config_id=matching.id, presence=presence))
        inputs[document_type] = invoices(reference, bundles, seed + 100)
    package = services.configs.create_package(org, PackageConfigInput("bundle", slots, PassCriteria()))
    made = [
        {
            kind: [{"document_id": f"{kind}-{i}", "extraction_row_id": "row_1", "values": rows_[i]}]
            for kind, rows_ in inputs.items()
        }
        for i in range(bundles)
    ]
    return World(key, org, package.id, made)


@dataclass
class BigWorld:
    package_config_id: uuid.UUID
    size: int
    rows: list[dict[str, Any]]


def build_big_world(services: Services, organization_id: uuid.UUID, size: int, rows: int) -> BigWorld:
    """One required slot (the invoice shape) against a `size`-row dataset, and one bundle of `rows`
    input rows for it."""
    presence, mappings, seed = SLOTS["invoice"]
    reference = bookings(size, seed + 10)
    dataset = services.reference_data.create(
        organization_id, "big reference", [{"id": r.id, **r.values} for r in reference]
    )
    fields = [
        FieldMapping(source=s, target=t, strategy=strategy, weight=w, options=o)
        for (s, t, strategy, o), w in mappings
    ]
    matching = services.configs.create_matching(
        organization_id, MatchingConfigInput("big invoice", dataset.id, fields, threshold=0.8)
    )
    slot = Slot(document_type="invoice", matching_config_id=matching.id, presence=presence)
    package = services.configs.create_package(
        organization_id, PackageConfigInput("big bundle", [slot], PassCriteria())
    )
    values = invoices(reference, rows, seed + 110)
    made = [
        {"document_id": f"big-{i}", "extraction_row_id": f"row_{i}", "values": v}
        for i, v in enumerate(values)
    ]
    return BigWorld(package.id, size, made)


class Client:
    """The load generator, on `packmatch.client` (one keep-alive connection pool shared by the
    threads; the client's own CPU is not counted, and `benchmarks/client.py` measures it)."""

    def __init__(self, base: str, key: str, package_config_id: uuid.UUID) -> None:
        # Idle connections are dropped after 2 s, before uvicorn's keep-alive (5 s) closes one
        # under a request in flight; one retry covers the remaining race (idempotency keys).
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256, keepalive_expiry=2.0)
        http = httpx.Client(base_url=base, limits=limits, timeout=30.0)
        self.api = PackmatchClient(base, key, http=http, retry=Retry(attempts=2))
        self.package = f"pkg_{package_config_id}"

    def submit(self, bundle: dict[str, Any]) -> float:
        """POST one run; returns the request's round trip in seconds."""
        started = time.perf_counter()
        run = self.api.runs.submit(self.package, bundle)
        if run.status != "running":
            raise RuntimeError(f"POST /runs answered a {run.status} run")
        return time.perf_counter() - started

    def submit_batch(self, bundles: list[dict[str, Any]]) -> float:
        """POST one batch of runs (`…/runs/batch`); returns the request's round trip in seconds."""
        runs = [{"package_config_id": self.package, "input_documents": b} for b in bundles]
        started = time.perf_counter()
        answer = self.api.runs.submit_batch(runs)
        refused = [entry for entry in answer.data if isinstance(entry, models.BatchItemRefused)]
        if refused:
            raise RuntimeError(f"the batch refused runs: {str(refused)[:300]}")
        return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Phase:
    name: str
    runs: int
    seconds: float
    cpu: dict[str, float]
    latencies: list[float]
    accept: list[float]

    @property
    def runs_per_s(self) -> float:
        return self.runs / self.seconds

    @property
    def cpu_per_run_ms(self) -> float:
        return 1000 * sum(self.cpu.values()) / max(self.runs, 1)


class Meter:
    """CPU of every serving process, read before and after a phase."""

    def __init__(self, cluster: Cluster | None, postgres: PostgresCpu) -> None:
        self.cluster = cluster
        self.postgres = postgres

    def read(self) -> dict[str, float]:
        found = {"postgres": cpu_seconds(self.postgres.backends())}
        if self.cluster is None:
            found["inline"] = time.process_time()
        else:
            for name in ("api", "worker", "redis"):
                found[name] = cpu_seconds(self.cluster.pids(name))
        return found

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {name: after[name] - before[name] for name in after}


def drained(engine: sa.Engine, since: datetime, submitted: int) -> Phase:
    """Wait until every run submitted since `since` is final; the phase's runs and latencies.

    The wait polls two counts (its backend's CPU counts as PostgreSQL's); the rows are read once."""
    recent = package_runs.c.created_at >= since
    counts = sa.select(sa.func.count(), sa.func.count(package_runs.c.completed_at)).where(recent)

    def all_final() -> bool:
        with engine.connect() as conn:
            created, final = conn.execute(counts).one()
        return bool(created >= submitted and final == created)

    wait_for("every submitted run to be final", all_final, 300)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(package_runs.c.created_at, package_runs.c.completed_at).where(recent)
        ).all()
    seconds = (max(c for _, c in rows) - min(a for a, _ in rows)).total_seconds()
    latencies = [(c - a).total_seconds() for a, c in rows]
    return Phase("", len(rows), seconds, {}, latencies, [])


class Bench:
    def __init__(self, args: argparse.Namespace, database_url: str, workdir: Path) -> None:
        self.args = args
        self.database_url = database_url
        self.db = Database.from_url(database_url)
        self.services = Services.build(self.db, RecordingPublisher())
        self.world = build_world(self.services, args.rows, args.bundles)
        self.postgres = PostgresCpu(database_url)
        self.cluster = Cluster(database_url, workdir)
        self.big: tuple[Phase, float] | None = None

    def start(self) -> None:
        broker = self.cluster.start_redis()
        self.cluster.start(broker, worker_processes=self.args.workers, worker_threads=self.args.threads)
        self.client = Client(self.cluster.base, self.world.key, self.world.package_config_id)
        self.meter = Meter(self.cluster, self.postgres)

    def queued(self, name: str, load: Any) -> Phase:
        since = self.services.runs.clock()
        before = self.meter.read()
        sent, accept = load()
        phase = drained(self.db.engine, since, sent)
        phase.cpu = Meter.delta(before, self.meter.read())
        phase.name, phase.accept = name, accept
        return phase

    def idle(self, seconds: float) -> float:
        """CPU the serving processes use per second with no load at all (polling, reconciler)."""
        before = self.meter.read()
        time.sleep(seconds)  # measuring a quiet interval, not waiting for an event
        return sum(Meter.delta(before, self.meter.read()).values()) / seconds

    def closed(self, concurrency: int, duration: float) -> Phase:
        def load() -> tuple[int, list[float]]:
            stop = time.monotonic() + duration
            accept: list[float] = []
            lock = threading.Lock()
            sequence = iter(range(10**9))

            def loop() -> None:
                while time.monotonic() < stop:
                    with lock:
                        i = next(sequence)
                    accept.append(self.client.submit(self.world.bundles[i % len(self.world.bundles)]))

            threads = [threading.Thread(target=loop) for _ in range(concurrency)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return len(accept), accept

        return self.queued(f"closed loop, {concurrency} clients", load)

    def open(self, rate: float, duration: float) -> Phase:
        def load() -> tuple[int, list[float]]:
            count = int(rate * duration)
            start = time.monotonic()
            with ThreadPoolExecutor(64) as pool:
                futures = []
                for i in range(count):
                    delay = start + i / rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    futures.append(
                        pool.submit(self.client.submit, self.world.bundles[i % len(self.world.bundles)])
                    )
                accept = [f.result() for f in futures]
            return count, accept

        return self.queued(f"open loop, {rate:g} runs/s", load)

    def batched(self, size: int, concurrency: int, duration: float) -> Phase:
        """Closed loop of batches: `concurrency` clients each POST `size` runs per request."""

        def load() -> tuple[int, list[float]]:
            stop = time.monotonic() + duration
            accept: list[float] = []
            counter = iter(range(10**9))
            lock = threading.Lock()

            def loop() -> None:
                while time.monotonic() < stop:
                    with lock:
                        first = next(counter) * size
                    bundles = [self.world.bundles[(first + j) % len(self.world.bundles)] for j in range(size)]
                    accept.append(self.client.submit_batch(bundles))

            threads = [threading.Thread(target=loop) for _ in range(concurrency)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return len(accept) * size, accept

        return self.queued(f"batches of {size}, {concurrency} clients", load)

    def big_bundles(self, big: BigWorld, runs: int) -> tuple[Phase, float]:
        """`runs` runs of one slot with `big.rows_per_run` input rows each against the big dataset;
        the phase counts input rows (not runs); also returns the results read back per second."""
        client = Client(self.cluster.base, self.world.key, big.package_config_id)

        def load() -> tuple[int, list[float]]:
            accept = [client.submit({"invoice": big.rows}) for _ in range(runs)]
            return runs, accept

        phase = self.queued(f"big bundles, {len(big.rows)} rows × {big.size:,}", load)
        return phase, self._read_results(client, big, runs)

    def _read_results(self, client: Client, big: BigWorld, runs: int) -> float:
        """Every result of the big runs read through `GET …/results?limit=1000`: results per second."""
        listed = client.api.runs.list(package_config_id=f"pkg_{big.package_config_id}", limit=min(runs, 100))
        matching_runs = [r.document_results[0].matching_run_id for r in listed.data]
        started, read = time.perf_counter(), 0
        for matching_run in matching_runs:
            assert matching_run is not None
            read += sum(1 for _ in client.api.matching_runs.results(matching_run, limit=1000))
        return read / (time.perf_counter() - started)

    def inline(self, count: int, when: str) -> tuple[Phase, Phase]:
        """The same bundles through the same services in this process: no HTTP, no queue."""
        runs, pipeline = self.services.runs, self.services.pipeline
        bundles = [self.world.bundles[i % len(self.world.bundles)] for i in range(count)]
        self._engine_only(bundles[:5])  # builds this process's indexes, as the workers' warm-up did
        meter = Meter(None, self.postgres)
        since, before = runs.clock(), meter.read()
        for bundle in bundles:
            documents = {k: [InputRow.model_validate(r) for r in rows] for k, rows in bundle.items()}
            run = runs.accept(self.world.organization_id, self.world.package_config_id, documents)
            for position, slot in enumerate(run.slots):  # the last one finalizes the run
                if slot.document_found:
                    pipeline.execute_slot(run.id, position)
        phase = drained(self.db.engine, since, count)
        phase.name, phase.cpu = f"inline, {when}", Meter.delta(before, meter.read())
        started = time.process_time()
        self._engine_only(bundles)
        engine = Phase(f"engine only, {when}", count, 0.0, {"inline": time.process_time() - started}, [], [])
        return phase, engine

    def _engine_only(self, bundles: list[dict[str, Any]]) -> None:
        configs = self._matchers()
        for bundle in bundles:
            for kind, rows in bundle.items():
                for row in rows:
                    configs[kind].match(InputRow.model_validate(row))

    def _matchers(self) -> dict[str, Matcher]:
        if not hasattr(self, "_cached"):
            services, org = self.services, self.world.organization_id
            package = services.configs.get_package(org, self.world.package_config_id)
            self._cached = {}
            for slot in package.slots:
                config = services.configs.get_matching(org, slot.matching_config_id)
                index: ReferenceIndex = services.pipeline.references.index(config)
                self._cached[slot.document_type] = Matcher(config, index)
        return self._cached


def merged(name: str, parts: list[Phase]) -> Phase:
    cpu = {key: sum(p.cpu.get(key, 0.0) for p in parts) for key in parts[0].cpu}
    latencies = [x for p in parts for x in p.latencies]
    return Phase(name, sum(p.runs for p in parts), sum(p.seconds for p in parts), cpu, latencies, [])


def report(phases: list[Phase], baselines: list[Phase], engines: list[Phase], idle: float) -> None:
    inline = merged("inline (services, no HTTP, no queue)", baselines)
    engine = merged("engine only (matching, no I/O)", engines)
    print(
        f"{'phase':<38} {'runs':>6} {'runs/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'POST p50':>8} {'CPU ms/run':>10}  {'CPU by process (ms/run)'}"
    )
    for phase in [*phases, *baselines, inline, engine]:
        ms = [1000 * x for x in phase.latencies]
        post = [1000 * x for x in phase.accept]
        per = "  ".join(f"{k} {1000 * v / max(phase.runs, 1):.1f}" for k, v in phase.cpu.items())
        rate = f"{phase.runs_per_s:7.1f}" if phase.seconds else f"{'':>7}"
        lat = (
            f"{percentile(ms, 50):7.1f} {percentile(ms, 95):7.1f} {percentile(ms, 99):7.1f}"
            if ms
            else " " * 23
        )
        post_p50 = percentile(post, 50) if post else float("nan")
        cpu = phase.cpu_per_run_ms
        print(f"{phase.name:<38} {phase.runs:6d} {rate} {lat} {post_p50:8.1f} {cpu:10.2f}  {per}")
    for phase in phases:
        ratio = phase.cpu_per_run_ms / inline.cpu_per_run_ms
        print(f"CPU per run, {phase.name}: {ratio:.2f}× the inline baseline")
    # The same work before and after the queued phases: how much the machine's speed moved meanwhile.
    first, last = (b.cpu_per_run_ms for b in baselines)
    drift = f"{first:.2f} → {last:.2f} ms/run ({last / first - 1:+.0%})"
    print(f"inline baseline before → after the queued phases: {drift}")
    print(f"idle (no load): {1000 * idle:.1f} ms of CPU per second across the serving processes")


def report_big(phase: Phase, read_per_s: float, args: argparse.Namespace) -> None:
    rows = phase.runs * args.big_rows
    ms = [1000 * x for x in phase.latencies]
    per_row = "  ".join(f"{k} {1e6 * v / rows:.0f}" for k, v in phase.cpu.items())
    print(
        f"big bundles: {phase.runs} runs of one slot × {args.big_rows} input rows against "
        f"{args.big_size:,} reference rows ({args.workers} worker processes)"
    )
    print(f"  matched and written: {rows / phase.seconds:,.0f} input rows/s end to end")
    print(f"  accept→final per run: p50 {percentile(ms, 50):.0f} ms, max {max(ms):.0f} ms")
    print(f"  CPU per input row (µs): {per_row}")
    print(f"  results read back through GET …/results?limit=1000: {read_per_s:,.0f} results/s")


def run_phases(
    bench: Bench, args: argparse.Namespace
) -> tuple[list[Phase], list[Phase], list[Phase], float, list[str]]:
    """The queued phases between two halves of the inline baseline (the machine's speed drifts)."""
    bench.closed(8, 3.0)  # warm-up: every worker process builds its indexes
    before, engine_before = bench.inline(args.inline_runs // 2, "before")
    idle = bench.idle(5.0)
    with profiled(bench.cluster, args.profile, args.duration):
        phases = [bench.closed(args.concurrency, args.duration)]
    phases += [bench.open(rate, args.duration) for rate in args.rates]
    phases += [bench.batched(args.batch_size, args.batch_clients, args.duration)]
    if args.big_runs:
        big = build_big_world(bench.services, bench.world.organization_id, args.big_size, args.big_rows)
        bench.big_bundles(big, 1)  # warm-up: the workers build the big dataset's index
        bench.big = bench.big_bundles(big, args.big_runs)
    after, engine_after = bench.inline(args.inline_runs - args.inline_runs // 2, "after")
    return phases, [before, after], [engine_before, engine_after], idle, bench.cluster.errors()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000, help="reference rows per dataset")
    parser.add_argument("--bundles", type=int, default=2000, help="distinct bundles, submitted round robin")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop clients")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--rates", type=float, nargs="*", default=[50.0], help="open-loop rates (runs/s)")
    parser.add_argument("--inline-runs", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=100, help="runs per batch request")
    parser.add_argument("--batch-clients", type=int, default=4, help="closed-loop batch clients")
    parser.add_argument("--big-size", type=int, default=100_000, help="reference rows of the big dataset")
    parser.add_argument("--big-rows", type=int, default=1000, help="input rows per big bundle")
    parser.add_argument("--big-runs", type=int, default=10, help="big bundles (0: no big-bundle phase)")
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="py-spy the API and workers in the closed loop",
    )
    args = parser.parse_args()
    # The inline baseline logs what the services log, like the processes do (JSON, INFO).
    configure_logging("json", "INFO", open(os.devnull, "w"))  # noqa: SIM115 (open for the whole run)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp, scratch_database(POSTGRES_URL) as url:
        migrate(url)
        bench = Bench(args, url, Path(tmp))
        try:
            bench.start()
            phases, baselines, engines, idle, errors = run_phases(bench, args)
        except BaseException:
            kept = Path(tempfile.mkdtemp(prefix="packmatch-bench-logs-"))
            for log in Path(tmp).glob("*.log"):
                shutil.copy(log, kept)
            print(f"the benchmark failed; the processes' logs are in {kept}", file=sys.stderr)
            raise
        finally:
            bench.cluster.stop()
            bench.db.dispose()
    shape = f"{args.workers} worker processes × {args.threads} threads"
    print(f"{args.rows:,}-row datasets, 3-slot bundles; {shape}")
    report(phases, baselines, engines, idle)
    if bench.big is not None:
        report_big(*bench.big, args)
    print(f"error log lines: {len(errors)}")
    for line in errors[:5]:
        print("  ", line[:300])


if __name__ == "__main__":
    main()
