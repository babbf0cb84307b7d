"""CPU of the hot path's JSON and enqueues, the standard library's way and packmatch's, side by side.

    .venv/bin/python benchmarks/hot_path_parts.py               # 5 alternating rounds
    .venv/bin/python benchmarks/hot_path_parts.py --rounds 9 --calls 5000

Each part is measured both ways in the same process, in alternating rounds (the median is printed),
so that a machine shared with other work slows both alike:

- a package run's response body: Starlette's `json.dumps` against `jsontext.dumps_body`;
- a log line's rendering: structlog's `JSONRenderer()` against `JSONRenderer(serializer=dumps_log_line)`;
- reading a stored run snapshot (3 matching configs, ~3 kB): `json.loads` against `jsontext.loads`;
- a 3-slot run's `match_slot` messages on a private `redis-server`: three `send`s against
  `DramatiqPublisher.match_slots` (one pipeline), CPU of this process and wall time per run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import Cluster
from structlog.processors import JSONRenderer

from packmatch.jsontext import dumps_body, dumps_log_line, loads
from packmatch.settings import Settings
from packmatch.worker.actors import DramatiqPublisher, declare_actors
from packmatch.worker.broker import build_broker

STAMP = "2026-12-04T19:10:00.123Z"


def run_body() -> dict[str, Any]:
    """A 3-slot run as `presenters.package_run` shows it."""
    results = [
        {
            "document_type": kind,
            "matching_config_id": f"mc_{uuid.uuid4()}",
            "matching_run_id": f"mr_{uuid.uuid4()}",
            "presence": "required",
            "document_found": True,
            "status": "matched",
            "confidence": 0.9731,
        }
        for kind in ("invoice", "delivery_note", "contract")
    ]
    run_id = f"run_{uuid.uuid4()}"
    return {
        "id": run_id,
        "package_config_id": f"pkg_{uuid.uuid4()}",
        "status": "running",
        "document_results": results,
        "input_documents": {r["document_type"]: ["doc-1"] for r in results},
        "error": None,
        "created_at": STAMP,
        "completed_at": None,
        "links": {
            "self": f"/v1/matching/packages/runs/{run_id}",
            "config": "/v1/matching/packages/configs/x",
        },
        "review": None,
    }


def snapshot_text() -> str:
    mapping = {"source": "name", "target": "carrier_name", "strategy": "fuzzy", "weight": 0.2}
    configs = [
        {
            "id": str(uuid.uuid4()),
            "name": f"config {i}",
            "reference_data_id": str(uuid.uuid4()),
            "field_mappings": [{**mapping, "options": {"min_similarity": 0.5}, "missing": "zero"}] * 4,
            "threshold": 0.85,
            "version": 3,
        }
        for i in range(3)
    ]
    slots = [
        {"document_type": f"t{i}", "matching_config_id": c["id"], "presence": "required"}
        for i, c in enumerate(configs)
    ]
    document = {
        "package_config": {"id": str(uuid.uuid4()), "slots": slots, "version": 2},
        "matching_configs": configs,
    }
    return json.dumps(document)


def cpu_per_call(call: Callable[[], object], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        call()
    return (time.process_time() - started) / calls * 1e6


def compare(
    name: str, before: Callable[[], object], after: Callable[[], object], args: argparse.Namespace
) -> None:
    assert before() == after() or name.startswith("enqueue")
    rounds: dict[str, list[float]] = {"json": [], "orjson": []}
    for _ in range(args.rounds):
        rounds["json"].append(cpu_per_call(before, args.calls))
        rounds["orjson"].append(cpu_per_call(after, args.calls))
    old, new = statistics.median(rounds["json"]), statistics.median(rounds["orjson"])
    print(f"{name:34} {old:8.2f} µs  → {new:8.2f} µs CPU a call  ({(new - old) / old:+.0%})")


def json_parts(args: argparse.Namespace) -> None:
    body = run_body()
    compact = (",", ":")
    compare(
        "response body (3-slot run)",
        lambda: json.dumps(body, ensure_ascii=False, allow_nan=False, separators=compact).encode(),
        lambda: dumps_body(body),
        args,
    )
    event = {
        "run_id": f"run_{uuid.uuid4()}",
        "position": 1,
        "rows": 1,
        "duration_ms": 3.2,
        "event": "slot.completed",
        "level": "info",
        "logger": "packmatch.services.pipeline",
        "timestamp": "2026-12-04T19:10:00.123456Z",
        "request_id": f"req_{uuid.uuid4()}",
        "message_id": str(uuid.uuid4()),
    }
    old, new = JSONRenderer(separators=compact), JSONRenderer(serializer=dumps_log_line)
    compare(
        "log line rendering",
        lambda: old(None, "info", dict(event)),
        lambda: new(None, "info", dict(event)),
        args,
    )
    text = snapshot_text()
    compare(f"stored snapshot read ({len(text)} B)", lambda: json.loads(text), lambda: loads(text), args)


def enqueue_parts(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as workdir:
        cluster = Cluster(database_url="", workdir=Path(workdir))
        try:
            settings = Settings(broker_url=cluster.start_redis())
            broker = build_broker(settings)
            publisher = DramatiqPublisher(broker, declare_actors(broker, settings, lambda: None))  # type: ignore[arg-type, return-value]
            run_id = uuid.uuid4()

            def one_by_one() -> None:
                for position in range(3):
                    publisher.match_slot(run_id, position)

            def together() -> None:
                publisher.match_slots(run_id, range(3))

            calls = max(1, args.calls // 10)
            for name, send in (("one by one", one_by_one), ("one round trip", together)):
                send()
                wall = time.perf_counter()
                cpu = cpu_per_call(send, calls)
                print(
                    f"enqueue a 3-slot run, {name:15} {cpu:8.1f} µs CPU, "
                    f"{(time.perf_counter() - wall) / calls * 1e6:8.1f} µs wall a run"
                )
            broker.flush_all()
            broker.close()
        finally:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    json_parts(args)
    for _ in range(args.rounds // 2 + 1):
        enqueue_parts(args)


if __name__ == "__main__":
    main()
